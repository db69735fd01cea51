#!/usr/bin/env bash
# Chromium for the UI browser test (tunix_rt_pipelines_tests/deployment/test_ui_browser.py).
# Debian's package, not `playwright install chromium`: that downloads from a CDN that machines
# without internet cannot reach. The Python side (playwright, whose wheel carries its driver)
# comes from the dev extra. Without a browser the test is skipped and says so.
set -euo pipefail
if [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1; then
    echo "chromium: $( (chromium --version || /usr/lib/chromium/chromium --version) 2>/dev/null | head -1)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no chromium, and no root apt-get to install it: the UI browser test will be skipped" >&2
    exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "apt-get could not install chromium: the UI browser test will be skipped" >&2
    exit 0
fi
chromium --version 2>/dev/null | head -1
