#!/usr/bin/env bash
# Debian's Chromium for the explorer's browser tests (Playwright drives it;
# `playwright install` is never used: it downloads a browser).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "chromium is missing and apt-get needs root: install Debian's chromium package" >&2
    exit 1
fi
echo "installing Debian's chromium for the browser tests (apt-get)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium
