#!/usr/bin/env bash
# tests/browser/run.sh -- the chat page of examples/chat_server in headless
# Chromium (Debian's `chromium` package, driven by playwright-core), over
# http/ws, over https/wss with a test certificate Chromium is told to
# trust, and with permessage-deflate (chat_server --deflate; chat.test.mjs
# says how each is checked).
#
# Installs Chromium with apt-get when it is missing and we are root (CI is);
# installs playwright-core into tests/browser/node_modules from the lock
# file (Playwright's own browser download is not used). Builds the release
# chat_server and gen_test_certs with --features "tls deflate". The plain
# run writes the screenshot tutorials/browser-chat.png (SCREENSHOT=path
# elsewhere); the https run and the run with chat_server --deflate
# (permessage-deflate, checked in the handshake through the DevTools
# protocol) write none. sse.test.mjs reads examples/hv07_sse_and_streaming's
# Server-Sent Events with Chromium's own EventSource.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
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

(cd "$ROOT" && cargo build --release --features "tls deflate" --example chat_server --example gen_test_certs \
  --example hv07_sse_and_streaming)

npm ci --no-audit --no-fund --loglevel=error
CHROMIUM="$CHROMIUM" HV07="$ROOT/target/release/examples/hv07_sse_and_streaming" \
  node --test --test-reporter=spec chat.test.mjs sse.test.mjs
