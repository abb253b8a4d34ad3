#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install resnetlab into it.
#
# - Where torch is already importable by $PYTHON (Colab, a conda env, a user's env), the venv
#   sees those site-packages and keeps that torch: nothing is reinstalled.
# - Otherwise it installs the tested pair, torch 2.14.1 / torchvision 0.29.1
#   (override with RESNETLAB_TORCH_SPEC="torch==X torchvision==Y").
# - Re-running is cheap: the install step is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  if "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "bootstrap: reusing the torch of $PY ($("$PY" -c 'import torch; print(torch.__version__)'))"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi

if ! "$VENV/bin/python" -c "import torch, torchvision" >/dev/null 2>&1; then
  spec="${RESNETLAB_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
  echo "bootstrap: installing $spec (a few minutes, once)"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet $spec
fi

stamp="$VENV/.resnetlab-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing resnetlab and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi
