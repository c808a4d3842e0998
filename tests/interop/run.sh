#!/usr/bin/env bash
# tests/interop/run.sh -- hvws against WebSocket implementations nobody on
# this project wrote:
#
#   0. examples built without the `tls` and `deflate` features refuse
#      --tls-cert/--tls-key and --ca ("rebuild with --features tls") and
#      --deflate ("rebuild with --features deflate"); then everything is
#      built with both (cargo build --release --examples --features "tls
#      deflate") and examples/gen_test_certs makes a throwaway CA and server
#      certificate
#   1. Python `websockets` (PyPI) as a client of echo_server, chat_server and
#      tutorial04_patterns, of echo_server and chat_server over wss://
#      trusting the test CA, and with permessage-deflate of echo_server
#      --deflate, --deflate-takeover and chat_server --deflate
#                                   (tests/interop/test_websockets.py)
#   2. Node `ws` (npm) as a client of the same servers  (ws.test.mjs)
#   3. hvws's client (examples/interop_client) against a Python `websockets`
#      server (py_server.py) and a Node `ws` server (ws_server.mjs), each
#      over ws:// and over wss:// (--tls-cert/--tls-key there, --ca here),
#      and with permessage-deflate (--deflate on both sides; the Node server
#      once more with no context takeover), and the fallback: the server
#      compresses, the client offers nothing
#   4. examples/chat_client --deflate against chat_server --deflate, and
#      without --deflate against it (what each side agreed is printed)
#   5. hvws's HTTP client against a Node `http` server (http_server.mjs,
#      Node's own module): chunked bodies, SSE written over time,
#      redirect chains, `Connection: close`, kept-alive connections the
#      server closes (the retry of an idempotent request), a slow body
#      for the total timeout (tests/http_client_node.rs, which starts and
#      stops the server)
#   6. examples/chat_client over wss:// directly and through Debian's
#      tinyproxy, open and with Basic credentials, and examples/http_get
#      (the HTTP client) through the same proxies over https:// and
#      http://                                        (tls_proxy.sh)
#
# Installs what it needs inside this folder: a venv in .venv (from
# requirements.txt) and node_modules (from package-lock.json); both are
# git-ignored. tls_proxy.sh installs tinyproxy with apt-get when missing (as
# root). Servers started here are stopped by their PIDs on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/target/release/examples"
cd "$HERE"

step() { printf '\n--- %s\n' "$*"; }

PIDS=()
CERTS=""
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$CERTS" ]; then rm -rf "$CERTS"; fi
}
trap cleanup EXIT

step "examples built without the tls and deflate features refuse their flags"
(cd "$ROOT" && cargo build --release --example chat_server --example echo_server \
  --example chat_client --example interop_client --example http_get)
# `feature name args...` must exit non-zero at once, saying how to get the
# feature.
refuses() {
  local feature="$1" out status=0
  shift
  out="$(timeout 10 "$BIN/$1" "${@:2}" 2>&1)" || status=$?
  if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] || ! grep -q "rebuild with --features $feature" <<<"$out"; then
    echo "FAIL $1 ${*:2}: exit $status (124: still running), said: $out" >&2
    return 1
  fi
  echo "ok   $1 ${*:2}: exit $status: $out"
}
refuses tls chat_server --port 0 --tls-cert cert.pem --tls-key key.pem
refuses tls echo_server --port 0 --tls-cert cert.pem --tls-key key.pem
refuses tls chat_client --url wss://127.0.0.1:9/chat --ca ca.pem
refuses tls interop_client --url wss://127.0.0.1:9 --ca ca.pem
refuses tls http_get https://127.0.0.1:9/ --ca ca.pem
refuses deflate chat_server --port 0 --deflate
refuses deflate echo_server --port 0 --deflate
refuses deflate echo_server --port 0 --deflate-takeover
refuses deflate chat_client --url ws://127.0.0.1:9/chat --deflate
refuses deflate interop_client --url ws://127.0.0.1:9 --deflate

step "build the examples with --features \"tls deflate\""
(cd "$ROOT" && cargo build --release --examples --features "tls deflate")

step "test certificates (examples/gen_test_certs, made now, deleted on exit)"
CERTS="$(mktemp -d)"
"$BIN/gen_test_certs" --out "$CERTS"
export TLS_CERTS="$CERTS"

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

# Starts a server that prints "... ws://127.0.0.1:PORT" (or wss://); sets
# PEER_URL. Runs in this shell (not in $(...)), so its PID reaches the
# cleanup trap.
start_peer() {
  local log
  log="$(mktemp)"
  "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  PEER_URL=""
  for _ in $(seq 100); do
    PEER_URL="$(grep -o 'wss\?://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)"
    [ -n "$PEER_URL" ] && return 0
    sleep 0.1
  done
  echo "peer server did not start: $(cat "$log")" >&2
  return 1
}

TLS_FLAGS=(--tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem")

step "hvws client -> Python websockets server"
start_peer .venv/bin/python py_server.py
"$BIN/interop_client" --url "$PEER_URL" --peer python-websockets

step "hvws client -> Python websockets server over wss"
start_peer .venv/bin/python py_server.py "${TLS_FLAGS[@]}"
"$BIN/interop_client" --url "$PEER_URL" --ca "$CERTS/ca.pem" --peer python-websockets-wss

step "hvws client -> Node ws server"
start_peer node ws_server.mjs
"$BIN/interop_client" --url "$PEER_URL" --peer node-ws

step "hvws client -> Node ws server over wss"
start_peer node ws_server.mjs "${TLS_FLAGS[@]}"
"$BIN/interop_client" --url "$PEER_URL" --ca "$CERTS/ca.pem" --peer node-ws-wss

step "hvws client with permessage-deflate -> Python websockets server with it"
start_peer .venv/bin/python py_server.py --deflate
"$BIN/interop_client" --url "$PEER_URL" --deflate --peer python-websockets-deflate

step "hvws client offering nothing -> the same Python websockets server (it falls back)"
"$BIN/interop_client" --url "$PEER_URL" --peer python-websockets-deflate-not-offered

step "hvws client with permessage-deflate -> Node ws server with it"
start_peer node ws_server.mjs --deflate
"$BIN/interop_client" --url "$PEER_URL" --deflate --peer node-ws-deflate

step "hvws client offering nothing -> the same Node ws server (it falls back)"
"$BIN/interop_client" --url "$PEER_URL" --peer node-ws-deflate-not-offered

step "hvws client with permessage-deflate -> Node ws server, no context takeover"
start_peer node ws_server.mjs --deflate --no-context-takeover
"$BIN/interop_client" --url "$PEER_URL" --deflate --peer node-ws-deflate-no-context-takeover

step "chat_client --deflate -> chat_server --deflate, and chat_client offering nothing"
start_peer env RUST_LOG=info "$BIN/chat_server" --port 0 --deflate
CHAT_OUT="$(mktemp)"
PLAIN_OUT="$(mktemp)"
timeout 30 "$BIN/chat_client" --url "$PEER_URL/chat" --deflate | tee "$CHAT_OUT"
timeout 30 "$BIN/chat_client" --url "$PEER_URL/chat" >"$PLAIN_OUT"
agreed="$(grep -c '^\[\(alice\|bob\)\] extensions: permessage-deflate' "$CHAT_OUT" || true)"
declined="$(grep -c '^\[\(alice\|bob\)\] extensions: none$' "$PLAIN_OUT" || true)"
if [ "$agreed" -ne 2 ] || [ "$declined" -ne 2 ]; then
  echo "FAIL chat_client: $agreed of 2 agreed permessage-deflate with --deflate, $declined of 2 none without" >&2
  cat "$PLAIN_OUT" >&2
  exit 1
fi
echo "ok   chat_client --deflate: both agreed \"$(grep -m1 -o 'permessage-deflate.*' "$CHAT_OUT")\"; without: both none, and the chat completed"
rm -f "$CHAT_OUT" "$PLAIN_OUT"

step "hvws HTTP client -> Node http server (tests/http_client_node.rs)"
# It skips itself without node unless told not to.
(cd "$ROOT" && HVWS_REQUIRE_NODE=1 cargo test --quiet --test http_client_node)

step "chat_client over wss, directly and through tinyproxy; http_get through tinyproxy"
bash "$HERE/tls_proxy.sh" "$CERTS"
