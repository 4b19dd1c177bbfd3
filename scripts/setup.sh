#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
#   bash scripts/setup.sh          # the package and its CLI
#   bash scripts/setup.sh test     # plus everything CI runs: tests, mypy, ruff, docs, notebooks, TensorBoard,
#                                  PostgreSQL driver (psycopg)
# Exact versions come from constraints.txt (pyproject.toml only declares the ranges the code works
# with); torch 2.13.0 is the CPU wheel where pip finds one (here: the local wheel cache).
# The package is installed with --no-build-isolation, after torch, so that setup.py finds torch and
# compiles the PID kernel now instead of at first use.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: infomorphic needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=""
[ "${1:-}" = "test" ] && extras="[test,dev,docs,notebooks,tensorboard,postgres]"
stamp=".venv/.installed${extras:+-test}"
changed=0
for input in pyproject.toml setup.py constraints.txt src/infomorphic/_version.py src/infomorphic/pid/_sx_kernel.cpp; do
  [ -f "$stamp" ] && [ ! "$input" -nt "$stamp" ] || changed=1
done
if [ "$changed" = 1 ]; then
  # (this machine's pip configuration warns about missing local mirrors: hide that noise)
  pip() { .venv/bin/python -m pip --disable-pip-version-check "$@" 2> >(grep -v "WARNING: Location" >&2); }
  # what the build needs, first: setuptools, and torch (+ ninja) for the kernel
  pip install --quiet -c constraints.txt setuptools torch ninja
  start=$(date +%s)
  pip install --quiet -c constraints.txt --no-build-isolation -e ".${extras}"
  echo "installed infomorphic${extras} in .venv ($(( $(date +%s) - start )) s, PID kernel included)" >&2
  touch "$stamp"
fi
