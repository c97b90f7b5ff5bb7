#!/usr/bin/env bash
# Create or update the Python 3.11 environment (.venv) with Tailor installed, then let
# `tailor install` create the Rasa 3.6 environment (.venv-rasa, Python 3.10).
# Idempotent: a second run checks stamps and returns in a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '%s\n' "$*" >&2; }

find_py311() {
  local c
  for c in "${PYTHON311:-}" "$HOME"/.pyenv/versions/3.11*/bin/python3.11 "$(command -v python3.11 || true)" "$(command -v python3 || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

pip_quiet() {
  # pip prints one warning per missing local mirror folder on these machines; hide only those.
  local rc
  set +e
  "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory"
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

if [ ! -x .venv/bin/python ]; then
  PY=$(find_py311) || { say "error: Python 3.11 not found. Install it (e.g. 'pyenv install 3.11') and retry."; exit 2; }
  say "Creating .venv with $PY …"
  "$PY" -m venv .venv
fi

want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)
have=$(cat .venv/.tailor-installed 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  start=$(date +%s)
  say "Installing Tailor and its dependencies into .venv (about 1-3 minutes the first time) …"
  pip_quiet .venv/bin/python -m pip install -q --disable-pip-version-check -U pip
  # The CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build.
  if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    pip_quiet .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
  fi
  pip_quiet .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,openvino]"
  echo "$want" > .venv/.tailor-installed
  say "  .venv ready in $(( $(date +%s) - start )) s."
fi

.venv/bin/tailor install >&2

# Browser tests drive Debian's Chromium (no browser download at test time).
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Debian's chromium for the browser tests …"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "error: chromium is missing; install it with: sudo apt-get install chromium"; exit 2
  fi
fi

# The production profile's load balancer (and its tests) use Debian's nginx.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Debian's nginx for the production profile …"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  else
    say "note: nginx is missing (the production profile needs it): sudo apt-get install nginx"
  fi
fi
