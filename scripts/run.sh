#!/usr/bin/env bash
# Set up .venv and run the main job: train the setup-1 trivariate infomorphic network on
# scikit-learn's 8x8 digits (no download) and print its test accuracy next to backprop and
# one-vs-all logistic regression on the same split.  Extra arguments go to `infomorphic train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/infomorphic train --config configs/digits.toml "$@"
