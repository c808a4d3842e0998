#!/usr/bin/env bash
# tests/browser/run.sh -- the chat page of examples/chat_server in headless
# Chromium (Debian's `chromium` package, driven by playwright-core).
#
# Installs Chromium with apt-get when it is missing and we are root (CI is);
# installs playwright-core into tests/browser/node_modules from the lock
# file (Playwright's own browser download is not used). Needs the release
# chat_server (cargo build --release --example chat_server). Writes the
# screenshot tutorials/browser-chat.png.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "no $CHROMIUM: install Debian's chromium package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
"$CHROMIUM" --version

npm ci --no-audit --no-fund --loglevel=error
CHROMIUM="$CHROMIUM" node --test --test-reporter=spec chat.test.mjs
