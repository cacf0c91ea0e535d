# Shared by start_service.sh and run_tests.sh: make .venv with the service's dependencies.
# Re-installs only when the requirements files change.
set -euo pipefail
VENV="${GSV_VENV:-.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {
  local reqs="$1"
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-$(basename "$reqs")"
  if [[ ! -f "$stamp" ]]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -r "$reqs"
    touch "$stamp"
  fi
}

ensure_system_tools() {
  # ffmpeg decodes uploads; espeak-ng makes speech for tests; chromium runs the page's browser tests.
  # Installed when we can (root + apt).
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} not found; install with: sudo apt-get install ${missing[*]}" >&2
  fi
}
