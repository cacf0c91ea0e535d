#!/usr/bin/env bash
# Set up (first run) and start the GPT-SoVITS training service.
#   ./start_service.sh [-H HOST] [-p PORT] [-w WORKERS] [-m development|production] [-l LEVEL] [--daemon] [--access-log]
cd "$(dirname "$0")"
source ./scripts_common.sh

HOST=0.0.0.0 PORT=8000 WORKERS=1 MODE=development LEVEL=info DAEMON=0 EXTRA=()
usage() { sed -n '2,3p' "$0"; echo "  Configuration: environment or .env (GSV_ROOT, GSV_PYTHON, GSV_DATABASE_URL, ... see README)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -H|--host) HOST="$2"; shift 2 ;;
    -p|--port) PORT="$2"; shift 2 ;;
    -w|--workers) WORKERS="$2"; shift 2 ;;
    -m|--mode) MODE="$2"; shift 2 ;;
    -l|--log) LEVEL="$2"; shift 2 ;;
    --daemon) DAEMON=1; shift ;;
    --access-log) EXTRA+=(--access-log); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage; exit 2 ;;
  esac
done
case "$MODE" in development|dev) WORKERS=1 ;; production|prod) ;; *) echo "mode must be development or production" >&2; exit 2 ;; esac

ensure_system_tools ffmpeg
ensure_venv requirements.txt
mkdir -p logs run
PIDFILE=run/service.pid
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "already running (pid $(cat "$PIDFILE")); stop it with ./stop_service.sh" >&2; exit 1
fi

CMD=("$VENV/bin/python" training_service.py --host "$HOST" --port "$PORT" --workers "$WORKERS" --log-level "$LEVEL" "${EXTRA[@]}")
echo "GPT-SoVITS training service on http://$HOST:$PORT (Swagger UI: /docs), mode $MODE, $WORKERS worker(s)"
if [[ $DAEMON -eq 1 ]]; then
  nohup "${CMD[@]}" >>logs/server.out 2>&1 &
  echo $! > "$PIDFILE"
  echo "started in the background, pid $(cat "$PIDFILE"); output in logs/server.out"
else
  echo $$ > "$PIDFILE"
  trap 'rm -f "$PIDFILE"' EXIT
  exec "${CMD[@]}"
fi
