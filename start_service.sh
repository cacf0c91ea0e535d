#!/usr/bin/env bash
# Set up (first run: the service's venv, ffmpeg, and the GPT-SoVITS engine) and start the training service.
#   ./start_service.sh [-H HOST] [-p PORT] [-w WORKERS] [-m development|production] [-l LEVEL] [--daemon] [--access-log]
#                      [--insecure (a non-loopback HOST without any API key)]
#                      [--no-engine | --engine-only | --doctor] [engine installer options]
cd "$(dirname "$0")"
source ./scripts_common.sh

HOST=127.0.0.1 PORT=8000 WORKERS=1 MODE=development LEVEL=info DAEMON=0 EXTRA=() INSECURE=() ENGINE=auto INSTALL_ARGS=()
usage() {
  sed -n '2,5p' "$0"
  cat <<'USAGE'
  --no-engine     start without installing or checking the engine (audio steps and provided transcripts only;
                  also GSV_NO_ENGINE=1)
  --engine-only   install (or verify and repair) the engine, run the doctor, and exit
  --doctor        check the engine installation (python -m gsv_service.doctor) and exit
  Engine installer options (passed to python -m gsv_service.engine_install; see its --help):
  --engine-source URL|DIR  --in-place  --engine-dir DIR  --engine-venv DIR  --engine-python PY
  --torch-index URL|pypi   --versions v2ProPlus,v2  --models-from DIR  --hf-endpoint URL  --hf-mirror NAME|URL  --skip-models
  Configuration: environment or .env (GSV_ROOT, GSV_PYTHON, GSV_DATABASE_URL, ... see README)
USAGE
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    -H|--host) HOST="$2"; shift 2 ;;
    -p|--port) PORT="$2"; shift 2 ;;
    -w|--workers) WORKERS="$2"; shift 2 ;;
    -m|--mode) MODE="$2"; shift 2 ;;
    -l|--log) LEVEL="$2"; shift 2 ;;
    --daemon) DAEMON=1; shift ;;
    --access-log) EXTRA+=(--access-log); shift ;;
    --insecure) EXTRA+=(--insecure); INSECURE=(--insecure); shift ;;
    --no-engine) ENGINE=skip; shift ;;
    --engine-only) ENGINE=only; shift ;;
    --doctor) ENGINE=doctor; shift ;;
    --in-place|--skip-models|--skip-venv) INSTALL_ARGS+=("$1"); shift ;;
    --engine-source|--engine-dir|--engine-venv|--engine-python|--engine-commit|--torch-index|--versions|--models-from|--hf-endpoint|--hf-mirror)
      [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }
      INSTALL_ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage; exit 2 ;;
  esac
done
case "$MODE" in development|dev) WORKERS=1 ;; production|prod) ;; *) echo "mode must be development or production" >&2; exit 2 ;; esac
[[ "${GSV_NO_ENGINE:-}" == 1 && $ENGINE == auto ]] && ENGINE=skip

ensure_system_tools ffmpeg git
ensure_venv requirements.txt

case "$ENGINE" in
  doctor) exec "$VENV/bin/python" -m gsv_service.doctor ;;
  only) exec "$VENV/bin/python" -m gsv_service.engine_install "${INSTALL_ARGS[@]}" ;;
  auto)
    # Every start verifies the engine the installer made (seconds when all is there) and installs it on the
    # first; an engine the user configured by hand (GSV_ROOT without the installer's marker) is left alone.
    if "$VENV/bin/python" -m gsv_service.engine_install.decide "${INSTALL_ARGS[@]}"; then
      "$VENV/bin/python" -m gsv_service.engine_install --doctor-after-changes "${INSTALL_ARGS[@]}" || {
        echo "the engine install did not finish (see above); run ./start_service.sh again to go on, or start" \
             "without the engine: ./start_service.sh --no-engine" >&2
        exit 1
      }
    fi ;;
esac

mkdir -p logs run
PIDFILE=run/service.pid
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "already running (pid $(cat "$PIDFILE")); stop it with ./stop_service.sh" >&2; exit 1
fi

# Beyond loopback without an API key: refuse here, where the message is seen (also with --daemon).
"$VENV/bin/python" -m gsv_service.auth.bind "$HOST" "${INSECURE[@]}" || exit 2
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
