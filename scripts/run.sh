#!/usr/bin/env bash
# Set up .venv and run the main job: decompose the built-in three-bit parity (XOR) and AND
# gates with the shared-exclusion PID and print their atom tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/infomorphic pid --example xor3 --example and3 "$@"
