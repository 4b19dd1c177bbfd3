#!/usr/bin/env bash
# Install infomorphic into a fresh virtual environment that already has a given torch (as in a
# user's environment), check that the install leaves that torch alone, then run the tests there.
#   bash scripts/check_install.sh 'torch==2.4.0'              # pip requirement for the torch
#   bash scripts/check_install.sh /path/to/torch-....whl tests/pid   # a wheel; pytest arguments
# Prints the torch before and after the install and, last, one JSON line:
#   {"torch": ..., "torch_unchanged": true, "pytest_exit": 0, ...}
# Everything happens in a temporary folder (a clone of this checkout's HEAD); nothing here changes.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/check_install.sh TORCH_REQUIREMENT_OR_WHEEL [PYTEST_ARGS...]" >&2
  exit 2
fi
torch_req=$1
shift
[ $# -gt 0 ] || set -- tests -q -n 2 -p no:cacheprovider --ignore=tests/test_notebooks.py
root=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet "$root" "$work/src"
"$PY" -m venv "$work/venv"
pip() { "$work/venv/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "WARNING: Location" >&2); }
# the user's environment: a torch, installed first (no constraints: whatever release was asked for)
pip install --quiet "$torch_req" "setuptools>=77" wheel ninja
before=$(pip freeze | grep -i -E '^torch( @|==)')
echo "before installing infomorphic: $before" >&2
# the project's other pins, without torch's, so that nothing asks for another torch
grep -v -i '^torch==' "$root/constraints.txt" > "$work/constraints-no-torch.txt"
start=$(date +%s)
pip install --quiet --no-build-isolation -c "$work/constraints-no-torch.txt" "$work/src[test]" \
  2>&1 | tee "$work/install.log" >&2
install_s=$(( $(date +%s) - start ))
after=$(pip freeze | grep -i -E '^torch( @|==)')
echo "after installing infomorphic:  $after" >&2
unchanged=false
[ "$before" = "$after" ] && unchanged=true
# the tests, against the installed package (run from the clone for its tests/; src/ is not on the
# path: pytest imports the installed infomorphic, as the JSON line's "installed_at" shows)
cd "$work/src"
set +e
INFOMORPHIC_KERNEL_BUILD_TIMEOUT=${INFOMORPHIC_KERNEL_BUILD_TIMEOUT:-600} \
  "$work/venv/bin/python" -m pytest "$@" 2>&1 | tail -n 15 >&2
rc=${PIPESTATUS[0]}
set -e
where=$("$work/venv/bin/python" -c 'import infomorphic, os; print(os.path.dirname(infomorphic.__file__))')
kernel=$("$work/venv/bin/python" -c 'from infomorphic.pid.kernel import load_kernel; m = load_kernel(); print(m.__file__ if m else "none (PyTorch path)")' 2>/dev/null || echo unknown)
printf '{"torch_requested": "%s", "torch_before": "%s", "torch_after": "%s", "torch_unchanged": %s, "install_s": %d, "installed_at": "%s", "kernel": "%s", "pytest_exit": %d}\n' \
  "$torch_req" "$before" "$after" "$unchanged" "$install_s" "$where" "$kernel" "$rc"
[ "$unchanged" = true ] && [ "$rc" = 0 ]
