#!/usr/bin/env bash
# Set up .venv with the test dependencies, lint and type-check the code, run the test suite (slow
# and GPU tests excluded; the tutorial notebooks are executed by tests/test_notebooks.py), then the
# slow PostgreSQL test, then build the documentation site with warnings as errors.
# With arguments (e.g. a test file), only those tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ "$#" -eq 0 ]; then
  # Lint and format check (settings in ruff.toml) and type check of the package (mypy.ini) first:
  # they take seconds, the suite ten minutes.
  .venv/bin/python -m ruff check src tests benchmarks experiments docs/hooks
  .venv/bin/python -m ruff format --check --quiet src tests benchmarks experiments docs/hooks
  .venv/bin/python -m mypy
fi
.venv/bin/python -m pytest -n 2 -q "$@"
[ "$#" -eq 0 ] || exit 0

# Goal search on a real PostgreSQL server (started by scripts/postgres_start.sh, which installs
# Debian's postgresql package when it is missing): three worker processes, kill -9, resume, about
# a minute.  It fails when no server can be started (INFOMORPHIC_NO_POSTGRES=1 skips it, except in CI).
.venv/bin/python -m pytest -q -m slow tests/goalsearch/test_postgres.py

# Documentation: mkdocs build --strict into a temporary folder (the site is never committed).
if ! .venv/bin/python -c 'import mkdocs, mkdocstrings_handlers.python, pymdownx' 2>/dev/null; then
  echo "error: building the docs needs mkdocs, mkdocstrings[python] and pymdown-extensions in .venv;" \
       "install them with: bash scripts/setup.sh test  (or: .venv/bin/pip install -e '.[docs]')" >&2
  exit 1
fi
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
start=$SECONDS
.venv/bin/python -m mkdocs build --strict --quiet --site-dir "$site"
echo "docs: mkdocs build --strict passed ($((SECONDS - start)) s)"
