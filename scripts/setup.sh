#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
#   bash scripts/setup.sh          # the package and its CLI
#   bash scripts/setup.sh test     # plus the test dependencies (pytest, dit)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: infomorphic needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
stamp=".venv/.installed${extra:+-test}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (this machine's pip configuration warns about missing local mirrors: hide that noise)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}" \
    2> >(grep -v "WARNING: Location" >&2)
  touch "$stamp"
fi
