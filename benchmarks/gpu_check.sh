#!/usr/bin/env bash
# One prepared check for a machine with CUDA (never needed by the tests or CI).
#
#     bash benchmarks/gpu_check.sh            # from anywhere; runs in the repository root
#
# Uses .venv/bin/python when the repository has one, else python3; installs and sets up
# nothing.  Without CUDA it prints one line on stderr and exits 2.  Otherwise it runs, each
# under its own time limit (about 8 minutes in all):
#
#   1. pytest -m gpu -q                      the CUDA tests (@pytest.mark.gpu)
#   2. infomorphic train, setup 2, N = 2000, 3 epochs on cuda (MNIST when it is available,
#      else the bundled digits data set), no baselines, into a temporary folder
#   3. benchmarks/bench_pid.py --device cuda (N = 100, 500, 2000, our engine only)
#   4. benchmarks/bench_train.py --device cuda --compare-legacy, setup 1, N = 100
#   5. benchmarks/bench_train.py --device cuda --compare-legacy, setup 2, N = 2000
#
# and prints ONE JSON line on stdout: per step its command, exit status (124: ran past its
# limit), seconds, the JSON line it printed (the benchmarks' results, the training summary)
# and, for pytest or a failed step, the last line of its output.  Progress goes to stderr.
# Exit status: 0 when every step passed, 1 otherwise, 2 without CUDA.
# Limits (seconds) can be changed through GPU_CHECK_LIMITS="pytest train pid train1 train2".

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi

if ! cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null) || [ "$cuda" != 1 ]; then
    if [ -z "${cuda:-}" ]; then
        echo "gpu_check: CUDA is not available ($PY cannot import torch)" >&2
    else
        echo "gpu_check: CUDA is not available (torch.cuda.is_available() is False with $PY)" >&2
    fi
    exit 2
fi

read -r LIM_PYTEST LIM_TRAIN LIM_PID LIM_TRAIN1 LIM_TRAIN2 <<< "${GPU_CHECK_LIMITS:-75 120 75 60 150}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
STEPS=()

# step NAME LIMIT COMMAND...: run COMMAND under a time limit, stdout and stderr to files in $WORK
step() {
    local name=$1 limit=$2
    shift 2
    echo "gpu_check: $name (limit ${limit} s): $*" >&2
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
    rc=$?
    t1=$(date +%s.%N)
    printf '%s\n' "$*" > "$WORK/$name.cmd"
    echo "$rc $t0 $t1" > "$WORK/$name.rc"
    STEPS+=("$name")
    echo "gpu_check: $name rc=$rc" >&2
}

DATASET=digits
if "$PY" -c 'import sys; from infomorphic.data.fetch import dataset_status; sys.exit(0 if dataset_status("mnist").available else 1)' 2>/dev/null; then
    DATASET=mnist
fi

step pytest "$LIM_PYTEST" "$PY" -m pytest -m gpu -q -p no:cacheprovider
step train "$LIM_TRAIN" "$PY" -c 'import sys; from infomorphic.cli import main; sys.argv[0] = "infomorphic"; main()' train --network trivariate --setup 2 --hidden 2000 --epochs 3 \
    --device cuda --dataset "$DATASET" --baselines none --out-dir "$WORK/runs" --name gpu-check --no-progress --json
step bench_pid "$LIM_PID" "$PY" benchmarks/bench_pid.py --device cuda --neurons 100 500 2000 --repeat 3 --no-dense
step bench_train_setup1 "$LIM_TRAIN1" "$PY" benchmarks/bench_train.py --device cuda --setup 1 --hidden 100 \
    --compare-legacy
step bench_train_setup2 "$LIM_TRAIN2" "$PY" benchmarks/bench_train.py --device cuda --setup 2 --hidden 2000 \
    --epochs 2 --compare-legacy

"$PY" - "$WORK" "$DATASET" "${STEPS[@]}" <<'EOF'
import json
import sys
from pathlib import Path

import torch

work, dataset, names = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def last_json(text: str):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


steps = {}
for name in names:
    rc, t0, t1 = (work / f"{name}.rc").read_text().split()
    out = (work / f"{name}.out").read_text(errors="replace")
    err = (work / f"{name}.err").read_text(errors="replace")
    entry = {"command": (work / f"{name}.cmd").read_text().strip(), "rc": int(rc),
             "timed_out": int(rc) in (124, 137), "seconds": round(float(t1) - float(t0), 2),
             "json": last_json(out)}
    if name == "pytest":
        entry["summary"] = last_line(out)
    if int(rc) != 0:
        entry["last_line"] = last_line(err) or last_line(out)
    steps[name] = entry
print(json.dumps({
    "check": "gpu", "ok": all(s["rc"] == 0 for s in steps.values()),
    "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
    "train_dataset": dataset, "steps": steps,
}))
sys.exit(0 if all(s["rc"] == 0 for s in steps.values()) else 1)
EOF
