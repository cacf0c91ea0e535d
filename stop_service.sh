#!/usr/bin/env bash
# Stop the service started by start_service.sh.
#   ./stop_service.sh [-f|--force] [--cleanup]
#   graceful: SIGTERM, running steps are stopped and recorded as interrupted (resumable);
#   -f: SIGKILL after 5 s instead of waiting up to 60 s; --cleanup: also remove run/ and rotated logs.
cd "$(dirname "$0")"
FORCE=0 CLEANUP=0
for arg in "$@"; do
  case "$arg" in
    -f|--force) FORCE=1 ;;
    --cleanup) CLEANUP=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
PIDFILE=run/service.pid
WAIT=60; [[ $FORCE -eq 1 ]] && WAIT=5
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  PID=$(cat "$PIDFILE")
  kill -TERM "$PID"
  for ((i = 0; i < WAIT * 10; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then
    echo "service (pid $PID) still running after ${WAIT}s; sending SIGKILL"
    pkill -KILL -P "$PID" 2>/dev/null; kill -KILL "$PID" 2>/dev/null
  fi
  echo "stopped (pid $PID)"
else
  echo "service not running (no live pid in $PIDFILE)"
fi
rm -f "$PIDFILE"
if [[ $CLEANUP -eq 1 ]]; then
  rm -rf run logs/*.log.[0-9]* logs/server.out
  echo "cleaned run/ and rotated logs (tasks and the database are kept)"
fi
