#!/usr/bin/env bash
# Build the docs site, serve it on localhost, and take headless-Chromium screenshots of the
# home page and the most equation-heavy page, to check by eye that the math renders.
#
#   needs: pip install -e ".[docs]"    and Chromium from the OS packages (Debian):
#          apt-get update && apt-get install -y chromium
#   usage: scripts/docs_screenshot.sh [OUT_DIR]      (default: site-shots/)
#
# The KaTeX that renders the math is served by the site itself (docs/assets/katex/), so no
# network is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-site-shots}"
port="${PORT:-8765}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
    echo "no chromium found: apt-get update && apt-get install -y chromium" >&2
    exit 2
fi
mkdir -p "$out"
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$site"

# the page with the most display equations
heaviest="$(grep -c '\\tag{' docs/0*.md | sort -t: -k2 -n | tail -1 | cut -d: -f1)"
page="$(basename "$heaviest" .md)"

python -m http.server "$port" --bind 127.0.0.1 --directory "$site" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$site"' EXIT
for _ in $(seq 50); do  # wait until it answers
    python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
    sleep 0.1
done

shoot() {  # URL PNG
    "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --virtual-time-budget=5000 --window-size=1280,2000 --screenshot="$2" "$1" 2>/dev/null
    echo "wrote $2"
}
shoot "http://127.0.0.1:$port/" "$out/index.png"
shoot "http://127.0.0.1:$port/$page/" "$out/$page.png"
