"""Child processes: start each in its own process group, stop a whole group, tail a log file.

Everything here is synchronous and thread-safe; the runner calls it from worker threads.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

MAX_LINE = 64 * 1024  # a longer line without a newline is cut: output is never buffered unbounded


@dataclass
class Command:
    """One process a step wants to run."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] | None = None
    label: str = ""


def spawn(cmd: Command, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` as the leader of a new session/process group, output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        # The child gets its own dup of the descriptor; ours closes at the end of the block.
        return subprocess.Popen(cmd.argv, cwd=cmd.cwd, env=cmd.env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)


class ExitWaiter:
    """Sleeps until one of the children exits or a timeout passes, without polling: a pidfd
    becomes readable when its process exits (Linux 5.3+; elsewhere it just sleeps)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]):
        self.fds = []
        for p in procs:
            try:
                self.fds.append(os.pidfd_open(p.pid))
            except (AttributeError, OSError):  # no pidfd here, or the child is gone already
                pass

    def wait(self, timeout: float) -> None:
        if not self.fds:
            time.sleep(timeout)
            return
        ready, _, _ = select.select(self.fds, [], [], timeout)
        for fd in ready:  # an exited child's pidfd stays readable: stop watching it
            os.close(fd)
            self.fds.remove(fd)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                found.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(_group_members(pgid))  # only zombies answer killpg(0): those are dead


def kill_group(pgid: int, grace_s: float, procs: list[subprocess.Popen[bytes]] | None = None) -> bool:
    """SIGTERM the group, wait up to grace_s, then SIGKILL whatever is left. True if none left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for p in procs or ():
                p.poll()  # reap our direct child so it does not linger as a zombie
            if not group_alive(pgid):
                return True
            time.sleep(0.05)
    return not group_alive(pgid)


class LogTail:
    """Reads lines appended to a file since the last call; partial lines wait for their newline."""

    def __init__(self, path: Path, start_at_end: bool = True):
        self.path = path
        self.offset = path.stat().st_size if (start_at_end and path.exists()) else 0
        self._partial = b""

    def lines(self, final: bool = False) -> Iterator[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while True:
                    chunk = f.read(256 * 1024)
                    if not chunk:
                        break
                    self.offset += len(chunk)
                    data = self._partial + chunk
                    parts = data.split(b"\n")
                    self._partial = parts.pop()
                    if len(self._partial) > MAX_LINE:
                        parts.append(self._partial[:MAX_LINE])
                        self._partial = b""
                    for raw in parts:
                        # progress bars redraw with \r: each redraw is a line of its own
                        for seg in raw.split(b"\r"):
                            if seg:
                                yield seg.decode("utf-8", "replace")
        except FileNotFoundError:
            return
        if final and self._partial:
            yield self._partial.decode("utf-8", "replace")
            self._partial = b""


def tail_bytes(path: Path, max_bytes: int, end: int | None = None) -> str:
    """The last max_bytes of a file (up to byte `end`), starting at a line boundary when possible."""
    try:
        size = path.stat().st_size if end is None else end
        with open(path, "rb") as f:
            f.seek(max(0, size - max_bytes))
            data = f.read(min(max_bytes, size))
    except FileNotFoundError:
        return ""
    if size > max_bytes and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", "replace")


def process_alive(pid: int, create_time: float) -> bool:
    try:
        return bool(abs(psutil.Process(pid).create_time() - create_time) < 0.01)
    except psutil.Error:
        return False


LOG_EVENT_INTERVAL_S = 0.5  # new log lines are handed on in batches at most this often
TAIL_INTERVAL_S = 0.2       # log lines, progress and cancel are looked at this often


@dataclass
class Supervision:
    """How to watch a set of children: where their output goes and who hears about it."""

    log_path: Path
    cancel: threading.Event
    kill_grace_s: float
    on_started: Callable[[list[int]], None] = lambda pgids: None  # record the process groups
    on_line: Callable[[str], None] | None = None                   # every new log line, at once
    on_lines: Callable[[list[str]], None] | None = None            # batches of lines, for followers
    poll: Callable[[], None] | None = None
    poll_interval: float = 1.0


def supervise(commands: list[Command], sv: Supervision, tail: LogTail | None = None) -> list[int] | None:
    """Run `commands` in parallel, each the leader of its own process group, output appended to
    the log; return their exit codes, or None when `sv.cancel` was set (every group killed by then).
    `tail` reads the log from where the caller started it (lines it wrote itself are handed on
    too). Whatever happens (an exception in a callback, cancel, a crash), no process is left behind."""
    tail = tail or LogTail(sv.log_path)
    procs: list[subprocess.Popen[bytes]] = []
    exits: ExitWaiter | None = None
    try:
        for cmd in commands:
            procs.append(spawn(cmd, sv.log_path))
        sv.on_started([p.pid for p in procs])
        exits = ExitWaiter(procs)
        last_poll = last_flush = 0.0
        pending: list[str] = []
        while True:
            done = all(p.poll() is not None for p in procs)
            for line in tail.lines(final=done):
                pending.append(line)
                if sv.on_line:
                    sv.on_line(line)
            if pending and (done or time.monotonic() - last_flush >= LOG_EVENT_INTERVAL_S):
                last_flush = time.monotonic()
                if sv.on_lines:
                    sv.on_lines(pending)
                pending = []
            if sv.poll and (done or time.monotonic() - last_poll >= sv.poll_interval):
                last_poll = time.monotonic()
                sv.poll()
            if done:
                return [p.returncode for p in procs]
            exits.wait(TAIL_INTERVAL_S)  # wakes at once when a child exits
            if sv.cancel.is_set():
                kill_all(procs, sv.kill_grace_s)
                for line in tail.lines(final=True):  # what they printed before dying
                    if sv.on_line:
                        sv.on_line(line)
                return None
    finally:
        if exits is not None:
            exits.close()
        kill_all(procs, sv.kill_grace_s)


def kill_all(procs: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """Stop each child's whole process group (SIGTERM, SIGKILL after grace_s) and reap the child."""
    for p in procs:
        if p.poll() is None or group_alive(p.pid):
            kill_group(p.pid, grace_s, [p])
        p.wait()
