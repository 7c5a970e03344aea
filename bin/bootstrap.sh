#!/usr/bin/env bash
# Sourced by bin/run-pipeline and bin/run-tests: makes the locked Python 3.10 environment (.venv) ready.
#
# 1. uv: used from PATH, else installed from PyPI with the machine's python3 (pip --user, else a private
#    venv under ~/.cache/woonkly), else with uv's own installer.
# 2. Python 3.10: a pyenv-installed 3.10 if there is one (pyenv's python3.10 shim fails unless
#    PYENV_VERSION is set, so the interpreter is taken from $(pyenv root)/versions/3.10.*), else a working
#    python3.10 on PATH, else uv finds or downloads one itself.
# 3. `uv sync --frozen`: installs exactly what uv.lock pins, plus this package in editable mode, with the
#    packages compiled to bytecode (uv does not by default): where PYTHONDONTWRITEBYTECODE is set, as on these
#    machines, Python would otherwise recompile TensorFlow's and TFX's modules in every process (importing
#    tensorflow, tfx and tensorflow_recommenders: 53 s instead of 12-14 s; 22 s once at install, 1 s after).
set -euo pipefail

WOONKLY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TF_USE_LEGACY_KERAS=1

WOONKLY_TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/woonkly/uv-venv"

woonkly_find_uv() {
  if command -v uv >/dev/null 2>&1; then command -v uv; return 0; fi
  local user_base candidate
  user_base="$(python3 -m site --user-base 2>/dev/null || true)"
  for candidate in "$user_base/bin/uv" "$WOONKLY_TOOLS_VENV/bin/uv" "$HOME/.local/bin/uv"; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

# pip --user works for pyenv's and most Pythons; a Debian system Python refuses it (PEP 668, "externally
# managed"), so the fallback is a private venv; the last resort is uv's own installer.
woonkly_install_uv() {
  echo "bootstrap: installing uv from PyPI ..." >&2
  if python3 -m pip install --user --quiet uv 2>/dev/null; then return 0; fi
  if python3 -m venv "$WOONKLY_TOOLS_VENV" 2>/dev/null && "$WOONKLY_TOOLS_VENV/bin/pip" install --quiet uv; then
    return 0
  fi
  echo "bootstrap: pip could not install uv; trying uv's installer (needs internet) ..." >&2
  curl -LsSf https://astral.sh/uv/install.sh | sh
}

woonkly_find_python310() {
  local candidate
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.10.*/bin/python3; do
      if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
        echo "$candidate"; return 0
      fi
    done
  fi
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys' >/dev/null 2>&1; then
    command -v python3.10; return 0
  fi
  echo "3.10"  # let uv find a managed interpreter or download one
}

UV="$(woonkly_find_uv || true)"
if [ -z "$UV" ]; then
  woonkly_install_uv
  UV="$(woonkly_find_uv)" || { echo "bootstrap: uv is not installed and could not be installed; see https://docs.astral.sh/uv/" >&2; exit 1; }
fi

WOONKLY_PYTHON_REQUEST="$(woonkly_find_python310)"
(cd "$WOONKLY_ROOT" && "$UV" sync --frozen --all-extras --python "$WOONKLY_PYTHON_REQUEST" --quiet --compile-bytecode)
WOONKLY_PYTHON="$WOONKLY_ROOT/.venv/bin/python"
