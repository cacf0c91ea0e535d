"""GPT-SoVITS transcript lists (`wav_path|speaker|LANG|text`): parse, validate, write, and map
uploaded transcripts (a .list, or one .txt/.lab per slice) onto the slices.

Upstream's feature stage reads the list with `split("|")` into exactly four fields and accepts the
language column in a few spellings only (ZH, JA/JP, EN, KO, YUE, in some cases); we write
upper case and map every GPT-SoVITS language code onto those.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gsv_service.audio.slicer import parse_slice_name

LIST_LANGS = {"zh": "ZH", "all_zh": "ZH", "en": "EN", "ja": "JA", "jp": "JA", "all_ja": "JA",
              "ko": "KO", "all_ko": "KO", "yue": "YUE", "all_yue": "YUE"}
AUTO_LANGS = ("auto", "auto_yue")
FUZZY_MATCH_SAMPLES = 3200  # 100 ms at 32 kHz: an upstream slice whose cut moved by a frame or two
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class TranscriptError(ValueError):
    """Bad transcript content; the message names the line or slice."""


@dataclass
class Line:
    wav_path: str
    speaker: str
    lang: str
    text: str

    @property
    def name(self) -> str:
        return self.wav_path.replace("\\", "/").rsplit("/", 1)[-1]

    def format(self) -> str:
        return f"{self.wav_path}|{self.speaker}|{self.lang}|{self.text}"


def list_language(code: str | None) -> str | None:
    """The .list spelling of a GPT-SoVITS language code, or None (auto or unknown)."""
    return LIST_LANGS.get((code or "").strip().lower())


def guess_language(text: str, cantonese: bool = False) -> str | None:
    """The language a line's script suggests: kana -> JA, hangul -> KO, han -> ZH (or YUE),
    latin letters -> EN; None for a line without letters."""
    if _KANA.search(text):
        return "JA"
    if _HANGUL.search(text):
        return "KO"
    if _HAN.search(text):
        return "YUE" if cantonese else "ZH"
    return "EN" if _LATIN.search(text) else None


def line_language(text: str, task_language: str) -> str | None:
    """The LANG column for `text` in a task of `task_language` (auto: guessed from the script)."""
    return list_language(task_language) or guess_language(text, task_language == "auto_yue")


def clean_text(text: str) -> str:
    """One line of text: newlines and '|' (the field separator) become spaces, runs collapse."""
    return " ".join(text.replace("|", " ").split())


def check_text(text: str, where: str) -> str:
    if "|" in text or "\n" in text or "\r" in text:
        raise TranscriptError(f"{where}: the text may not contain '|' or a line break (the .list "
                              "format separates fields with '|')")
    text = " ".join(text.split())  # every other line separator (\v, \f, \x85, \u2028...) is whitespace
    if not text:
        raise TranscriptError(f"{where}: the text is empty; to leave a slice out, drop it instead")
    if _CONTROL.search(text):
        raise TranscriptError(f"{where}: the text contains a control character; send plain text")
    return text


def parse_list(content: str, source: str = ".list") -> tuple[list[Line], list[str]]:
    """Lines of a .list file, and a message for every line that is not `path|speaker|LANG|text`."""
    lines, problems = [], []
    for no, raw in enumerate(content.lstrip("\ufeff").splitlines(), 1):
        if not raw.strip():
            continue
        parts = raw.split("|")
        if len(parts) != 4:
            problems.append(f"{source} line {no}: expected 4 fields separated by '|' "
                            f"(wav_path|speaker|LANG|text), found {len(parts)}")
            continue
        path, speaker, lang, text = (p.strip() for p in parts)
        if not path:
            problems.append(f"{source} line {no}: the wav path is empty")
            continue
        lines.append(Line(path, speaker, lang, text))
    return lines, problems


def read_list(path: Path) -> tuple[list[Line], list[str]]:
    return parse_list(path.read_text(encoding="utf-8-sig", errors="replace"), path.name)


def write_list(path: Path, lines: list[Line]) -> None:
    """Atomically (temp file + rename), newline-terminated, as upstream's tools write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line.format() + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


# ---------- uploaded transcripts -> slices ----------

@dataclass
class Provided:
    """Texts uploaded by the user, by slice name (from .list) and by stem (from .txt/.lab)."""

    by_name: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (text, LANG or "")
    by_stem: dict[str, str] = field(default_factory=dict)               # stem -> text
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_name or self.by_stem)


def load_provided(folder: Path) -> Provided:
    out = Provided()
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    for p in files:
        if p.name.startswith("."):
            continue
        try:
            content = p.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            out.problems.append(f"{p.name}: not UTF-8 text; save it as UTF-8 and upload it again")
            continue
        if p.suffix.lower() == ".list":
            lines, problems = parse_list(content, p.name)
            out.problems += problems
            for line in lines:
                if line.name in out.by_name:
                    out.problems.append(f"{p.name}: {line.name} appears more than once; the last wins")
                out.by_name[line.name] = (clean_text(line.text), line.lang)
        else:  # .txt / .lab: the whole file is the text of the slice with the same stem
            out.by_stem[p.stem] = clean_text(content)
    return out


def _fuzzy(name: str, slices: dict[str, Path]) -> str | None:
    """The slice an upstream-named transcript line means when its cut points moved a little."""
    want = parse_slice_name(name)
    if want is None:
        return None
    best, best_err = None, FUZZY_MATCH_SAMPLES + 1
    for cand in slices:
        got = parse_slice_name(cand)
        if got and got[0] == want[0]:
            err = max(abs(got[1] - want[1]), abs(got[2] - want[2]))
            if err < best_err:
                best, best_err = cand, err
    return best


@dataclass
class Mapping:
    lines: list[Line]
    missing: list[str]   # slices without a transcript
    extra: list[str]     # transcripts without a slice
    empty: list[str]     # slices whose transcript is empty
    nearby: dict[str, str]  # transcript name -> slice it was matched to by time
    problems: list[str]


def _only_slice_of_each_recording(slice_names: Iterable[str]) -> dict[str, str]:
    """Recording stem -> its slice, for recordings cut into exactly one slice: a transcript named
    after such a recording (reading.txt beside reading.wav) is that slice's."""
    by_source: dict[str, list[str]] = {}
    for name in slice_names:
        parsed = parse_slice_name(name)
        if parsed:
            by_source.setdefault(Path(parsed[0]).stem, []).append(name)
    return {src: names[0] for src, names in by_source.items() if len(names) == 1}


def map_provided(slices: list[Path], provided: Provided, speaker: str, task_language: str) -> Mapping:
    """One .list line per slice that has a transcript; everything else reported by name."""
    by_name = {p.name: p for p in slices}
    texts: dict[str, tuple[str, str]] = {}
    nearby, extra = {}, []
    for name, value in provided.by_name.items():
        target = name if name in by_name else _fuzzy(name, by_name)
        if target is None or target in texts:
            extra.append(name)
            continue
        if target != name:
            nearby[name] = target
        texts[target] = value
    stems = {Path(n).stem: n for n in by_name}
    only_slice = _only_slice_of_each_recording(by_name)
    for stem, text in provided.by_stem.items():
        target = stems.get(stem) or (stem if stem in by_name else None) or only_slice.get(stem)
        if target is None:
            extra.append(f"{stem}.txt")
        elif target not in texts:
            texts[target] = (text, "")
    lines, missing, empty, problems = [], [], [], []
    for name in sorted(by_name):
        if name not in texts:
            missing.append(name)
            continue
        text, lang = texts[name]
        if not text:
            empty.append(name)
            continue
        code = list_language(lang) or line_language(text, task_language)
        if code is None:
            problems.append(f"{name}: cannot tell the language of {text[:40]!r}; set the task language")
            continue
        lines.append(Line(str(by_name[name].resolve()), speaker, code, text))
    return Mapping(lines, missing, extra, empty, nearby, provided.problems + problems)


def engine_language(code: str) -> str:
    """The language option of the engine's ASR scripts for a GPT-SoVITS language code."""
    code = code.lower()
    return {"auto_yue": "auto"}.get(code, code.removeprefix("all_"))


def map_engine_lines(lines: list[Line], slices: list[Path], speaker: str, task_language: str) -> Mapping:
    """The engine ASR's list, checked against the slices: its own speaker column (the folder name)
    and 'AUTO' language become ours; slices it skipped are listed by name."""
    by_name = {p.name: p for p in slices}
    texts: dict[str, Line] = {}
    extra, problems = [], []
    for given in lines:
        if given.name in by_name:
            texts[given.name] = given
        else:
            extra.append(given.name)
    out, missing, empty = [], [], []
    for name in sorted(by_name):
        line = texts.get(name)
        if line is None:
            missing.append(name)
            continue
        text = clean_text(line.text)
        if not text:
            empty.append(name)
            continue
        code = list_language(line.lang) or (None if line.lang.lower() not in ("", "auto", *AUTO_LANGS)
                                            else line_language(text, task_language))
        if code is None:
            problems.append(f"{name}: language {line.lang or '?'} is not one GPT-SoVITS trains on "
                            "(zh, en, ja, ko, yue); line left out")
            continue
        out.append(Line(str(by_name[name].resolve()), speaker, code, text))
    return Mapping(out, missing, extra, empty, {}, problems)


# ---------- review (GET/PUT /api/v1/task/{task_id}/transcripts) ----------
