#!/usr/bin/env bash
# Set up .venv with the test dependencies and run the test suite (slow and GPU tests excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/python -m pytest -n 2 -q "$@"
