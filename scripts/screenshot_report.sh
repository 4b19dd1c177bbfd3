#!/usr/bin/env bash
# Render a run's HTML report in headless Chromium and save a screenshot, to check it renders.
#   bash scripts/screenshot_report.sh RUN_DIR [OUT.png] [HEIGHT]
# Builds RUN_DIR/report/report.html first if it is missing.  Needs chromium (Debian:
# apt-get install chromium).  Exits non-zero if the browser is missing or the screenshot is
# blank; prints the screenshot path and its size.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=${1:?usage: screenshot_report.sh RUN_DIR [OUT.png] [HEIGHT]}
out=${2:-$run_dir/report/screenshot.png}
height=${3:-6000}
py=.venv/bin/python
[ -x "$py" ] || py=python3
html="$run_dir/report/report.html"
if [ ! -f "$html" ]; then
  "$py" -m infomorphic.cli report "$run_dir" >/dev/null
fi
browser=""
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then browser=$(command -v "$name"); break; fi
done
if [ -z "$browser" ]; then
  echo "error: no chromium found (apt-get install chromium)" >&2
  exit 3
fi
mkdir -p "$(dirname "$out")"
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
rm -f "$abs_out"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,"$height" \
  --screenshot="$abs_out" "file://$abs_html" >/dev/null 2>&1 || true
"$py" - "$abs_out" <<'PY'
import sys
import matplotlib.image as mpimg
path = sys.argv[1]
img = mpimg.imread(path)
std = float(img[..., :3].std())
if std < 0.02:
    sys.exit(f"error: screenshot {path} looks blank (pixel std {std:.4f})")
print(f"screenshot: {path} ({img.shape[1]}x{img.shape[0]} px, pixel std {std:.3f})")
PY
