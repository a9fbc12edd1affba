#!/usr/bin/env bash
# Set up weightstats on a fresh machine: a virtual environment in .venv with everything installed.
# Usage: bash scripts/setup.sh          # the tool
#        bash scripts/setup.sh --test   # the tool, the test dependencies and headless Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
# torch/torchvision first and pinned: on the CPU machines this project targets, pip takes these two
# from the local wheel cache instead of downloading several GB.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "is ignored" || true
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
  # The HTML report is checked in a real headless browser (Debian's chromium).
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: chromium could not be installed; the browser test will be skipped" >&2
  fi
else
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/python -c "import weightstats, torch, torchvision; print('weightstats', weightstats.__version__, '| torch', torch.__version__)"
