#!/usr/bin/env bash
# Two processes on one SQLite study, a kill -9 of one of them, and a resume (digits, short trials).
#   bash scripts/demo_concurrent_search.sh [OUT_DIR] [TRIALS]
# Prints the trial counts and the best value before the kill, after it, and after the resume.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo-concurrent-search}
trials=${2:-16}
py=.venv/bin/python
rm -rf "$out"
counts() {
  "$py" - "$out" <<'PY'
import json, sys
from pathlib import Path
from infomorphic.goalsearch.search import counts, load_search
rec = json.loads((Path(sys.argv[1]) / "search.json").read_text())
study, _ = load_search(rec["storage"], rec["study_name"])
done = [t for t in study.trials if t.state.name == "COMPLETE"]
by_pid = {}
for t in study.trials:
    if "pid" in t.user_attrs:
        by_pid.setdefault(str(t.user_attrs["pid"]), {}).setdefault(t.state.name, 0)
        by_pid[str(t.user_attrs["pid"])][t.state.name] += 1
print(json.dumps({"counts": counts(study), "best_value": study.best_value if done else None,
                  "trials_by_process": by_pid}))
PY
}
common=(--dataset digits --hidden 20 --epochs 5 --batch-size 128 --set train_eval_size=200 --threads 1 --no-progress
        --atoms '{F}{C},{F}{L},{F}{C}{L},{FC}{FL}' --base-goal trivariate-mnist-tpe)
# process A creates the study; process B joins it a moment later
"$py" -m infomorphic.cli search "${common[@]}" --sampler tpe --startup-trials 4 --trials "$trials" --out "$out" \
  > "$out.A.log" 2>&1 &
pid_a=$!
while [ ! -f "$out/search.json" ]; do sleep 0.5; done
"$py" -m infomorphic.cli search --out "$out" --resume --trials "$trials" --no-progress > "$out.B.log" 2>&1 &
pid_b=$!
# let both processes finish a few trials, then kill B while it is inside a trial
finished() { "$py" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"select count(*) from trials where state in ('COMPLETE','PRUNED')\").fetchone()[0])" "$out/study.db"; }
while [ "$(finished)" -lt "${KILL_AFTER:-6}" ]; do sleep 1; done
echo "before kill -9 of B: $(counts)"
kill -9 "$pid_b"
echo "killed B (pid $pid_b)"
sleep 2
echo "after kill -9 of B: $(counts)"
wait "$pid_a" || true
echo "A finished: $(counts)"
"$py" -m infomorphic.cli search --out "$out" --resume --trials "$((trials + 4))" --no-progress > "$out.resume.log" 2>&1
echo "after resume to $((trials + 4)): $(counts)"
