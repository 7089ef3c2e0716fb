# Sourced by the other scripts: makes sure the repository's Python venv holds
# torch==2.11.0 (the libtorch that tch 0.24 builds against) and exports what the
# build and the binaries need. Idempotent; the first run downloads about 4.6 GB.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TORCH_VERSION="2.11.0"

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "rlcs: installing torch==$TORCH_VERSION into $VENV (first run only)..." >&2
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
      echo "rlcs: 'python3 -m venv' failed; install your distribution's venv package (e.g. apt-get install python3-venv)" >&2
      exit 1
    }
  fi
  "$VENV/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check "torch==$TORCH_VERSION"
fi

export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
TORCH_LIB="$("$VENV/bin/python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null)"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$ROOT"
