#!/usr/bin/env bash
# tests/interop/run.sh -- hvws against WebSocket implementations nobody on
# this project wrote:
#
#   1. Python `websockets` (PyPI) as a client of echo_server, chat_server and
#      tutorial04_patterns            (tests/interop/test_websockets.py)
#   2. Node `ws` (npm) as a client of the same servers  (ws.test.mjs)
#   3. hvws's client (examples/interop_client) against a Python `websockets`
#      server (py_server.py) and a Node `ws` server (ws_server.mjs)
#
# Installs what it needs inside this folder: a venv in .venv (from
# requirements.txt) and node_modules (from package-lock.json); both are
# git-ignored. Needs the release examples (cargo build --release --examples).
# Servers started here are stopped by their PIDs on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/target/release/examples"
cd "$HERE"

step() { printf '\n--- %s\n' "$*"; }

step "Python websockets in tests/interop/.venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -c 'import websockets; print("websockets", websockets.__version__)'

step "Node ws in tests/interop/node_modules"
npm ci --no-audit --no-fund --loglevel=error
node -e 'console.log("ws", require("ws/package.json").version)'

step "Python websockets client -> hvws servers"
BIN_DIR="$BIN" .venv/bin/python test_websockets.py

step "Node ws client -> hvws servers"
BIN_DIR="$BIN" node --test --test-reporter=spec ws.test.mjs

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Starts a server that prints "... ws://127.0.0.1:PORT"; sets PEER_URL. Runs
# in this shell (not in $(...)), so its PID reaches the cleanup trap.
start_peer() {
  local log
  log="$(mktemp)"
  "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  PEER_URL=""
  for _ in $(seq 100); do
    PEER_URL="$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)"
    [ -n "$PEER_URL" ] && return 0
    sleep 0.1
  done
  echo "peer server did not start: $(cat "$log")" >&2
  return 1
}

step "hvws client -> Python websockets server"
start_peer .venv/bin/python py_server.py
"$BIN/interop_client" --url "$PEER_URL" --peer python-websockets

step "hvws client -> Node ws server"
start_peer node ws_server.mjs
"$BIN/interop_client" --url "$PEER_URL" --peer node-ws
