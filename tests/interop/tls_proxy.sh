#!/usr/bin/env bash
# tests/interop/tls_proxy.sh -- examples/chat_client over wss:// against
# examples/chat_server with a test certificate: directly, and through a real
# HTTP proxy (Debian's tinyproxy, a CONNECT tunnel), open and with Basic
# credentials; then the HTTP client (examples/http_get) through the same
# proxies, over https:// (CONNECT) and plain http:// (the whole URL sent to
# the proxy).
#
#   bash tests/interop/tls_proxy.sh CERT_DIR    # ca.pem, cert.pem, key.pem
#                                               # (examples/gen_test_certs)
#
# Checks, each printed as `ok` or `FAIL`, then `tls-proxy: N passed,
# M failed` (exit 1 if any failed):
#   1. with --ca the tutorial conversation completes (exit 0);
#   2. without --ca it fails (non-zero, not a hang) and says why on stderr;
#   3. through tinyproxy it completes, and tinyproxy's log shows the CONNECT
#      to the server's port and the tunnel it opened;
#   4. through tinyproxy with `BasicAuth user pass`: no credentials fail
#      with the 407 on stderr, wrong ones fail, `user:pass@` completes;
#   5. http_get GET /ping through tinyproxy: https:// answers `pong` and
#      the log shows the CONNECT; http:// answers `pong` and the log shows
#      the absolute-form `GET http://127.0.0.1:PORT/ping`;
#   6. the same with `BasicAuth user pass`: without credentials https://
#      fails (exit 2, the 407 on stderr) and http:// gets the proxy's
#      `HTTP 407` as its response; with `user:pass@` both answer `pong`.
#
# Needs the release examples built with --features tls. Installs tinyproxy
# with apt-get when it is missing and we are root (CI is). Every process
# started here is stopped by its PID on exit; every wait has a timeout.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/target/release/examples"
CERTS="${1:?usage: tls_proxy.sh CERT_DIR (with ca.pem, cert.pem, key.pem)}"
# How long one chat_client run may take before it counts as hung. It gives
# up by itself well before (5 s per step, a 10 s connect timeout).
CLIENT_SECS=30

if ! command -v tinyproxy >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian's tinyproxy"
    apt-get update -qq
    # Its package would start a system-wide tinyproxy where an init system
    # runs; ours is started below, on a port of our own, and stopped by PID.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy >/dev/null
  else
    echo "no tinyproxy: install Debian's tinyproxy package (sudo apt-get install tinyproxy)" >&2
    exit 1
  fi
fi
tinyproxy -v

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for `pattern` in `file` while the process `pid` lives.
wait_for_line() {
  local pid="$1" file="$2" pattern="$3"
  for _ in $(seq 100); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "no \"$pattern\" in $file:" >&2
  cat "$file" >&2
  return 1
}

# --- the server ------------------------------------------------------------------
"$BIN/chat_server" --port 0 --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem" \
  >"$WORK/chat_server.log" 2>&1 &
PIDS+=("$!")
wait_for_line "$!" "$WORK/chat_server.log" "chat on wss://127.0.0.1:"
PORT="$(grep -o 'wss://127\.0\.0\.1:[0-9]*' "$WORK/chat_server.log" | head -n 1 | cut -d: -f3)"
URL="wss://127.0.0.1:$PORT/chat"
echo "chat_server on $URL"

# A second one without TLS, for plain http:// through the proxy.
"$BIN/chat_server" --port 0 >"$WORK/chat_server_plain.log" 2>&1 &
PIDS+=("$!")
wait_for_line "$!" "$WORK/chat_server_plain.log" "chat on ws://127.0.0.1:"
PLAIN_PORT="$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$WORK/chat_server_plain.log" | head -n 1 | cut -d: -f3)"
echo "chat_server (plain) on http://127.0.0.1:$PLAIN_PORT"

# --- tinyproxy -----------------------------------------------------------------------
PROXY_PID=""
PROXY_PORT=""
PROXY_LOG=""

# Starts tinyproxy in the foreground (-d) with a config of its own,
# allowing CONNECT to the chat server's port only; extra config lines come
# as arguments. As root it warns that no User is set and keeps running as
# root, which is what we want: no other user has to read the config or
# write the log.
start_proxy() {
  local name="$1"
  shift
  PROXY_PORT="$(free_port)"
  PROXY_LOG="$WORK/$name.log"
  {
    echo "Port $PROXY_PORT"
    echo "Listen 127.0.0.1"
    echo "Timeout 30"
    echo "MaxClients 16"
    echo "Allow 127.0.0.1"
    echo "ConnectPort $PORT"
    echo "LogFile \"$PROXY_LOG\""
    # Info logs each request line (CONNECT host:port) and each tunnel.
    echo "LogLevel Info"
    printf '%s\n' "$@"
  } >"$WORK/$name.conf"
  tinyproxy -d -c "$WORK/$name.conf" >"$WORK/$name.out" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  if ! wait_for_line "$PROXY_PID" "$PROXY_LOG" "Accepting connections"; then
    cat "$WORK/$name.out" >&2
    return 1
  fi
  echo "tinyproxy ($name) on 127.0.0.1:$PROXY_PORT, PID $PROXY_PID"
}

stop_proxy() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}

# --- checks -----------------------------------------------------------------------------
PASSED=0
FAILED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "ok   $*"
}
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL $*"
}

# Runs chat_client with the given flags; sets STATUS, OUT and ERR (files).
client() {
  OUT="$WORK/client.out"
  ERR="$WORK/client.err"
  STATUS=0
  timeout "$CLIENT_SECS" "$BIN/chat_client" --url "$URL" "$@" >"$OUT" 2>"$ERR" || STATUS=$?
}

# `name` must succeed: exit 0 and the client's last word.
expect_success() {
  local name="$1"
  shift
  client "$@"
  if [ "$STATUS" -eq 0 ] && grep -q "all expected messages arrived" "$OUT"; then
    ok "$name: exit 0, all expected messages arrived"
    return 0
  fi
  fail "$name: exit $STATUS"
  cat "$OUT" "$ERR"
  return 1
}

# `name` must fail: a non-zero exit that is not the hang timeout (124), with
# `pattern` (grep -E) on stderr.
expect_failure() {
  local name="$1" pattern="$2"
  shift 2
  client "$@"
  if [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] && grep -Eq -- "$pattern" "$ERR"; then
    ok "$name: exit $STATUS, stderr: $(grep -Em1 -- "$pattern" "$ERR")"
    return 0
  fi
  fail "$name: exit $STATUS (124: hung), expected /$pattern/ on stderr"
  cat "$OUT" "$ERR"
  return 1
}

# tinyproxy logs `Request (file descriptor N): CONNECT 127.0.0.1:PORT
# HTTP/1.1` for each request and `Established connection to host ...` for
# each tunnel it opened; count the latter.
tunnels() {
  grep -c 'Established connection to host "127.0.0.1"' "$PROXY_LOG" || true
}

expect_success "wss with --ca" --ca "$CERTS/ca.pem" || true
expect_failure "wss without --ca" "certificate not trusted for 127\.0\.0\.1: UnknownIssuer" || true

start_proxy open
if expect_success "wss through tinyproxy" --ca "$CERTS/ca.pem" --proxy "http://127.0.0.1:$PROXY_PORT"; then
  if grep -q "CONNECT 127.0.0.1:$PORT HTTP/1" "$PROXY_LOG" && [ "$(tunnels)" -ge 2 ]; then
    ok "tinyproxy's log: $(grep -m1 -o "CONNECT 127.0.0.1:$PORT HTTP/1\.." "$PROXY_LOG"), $(tunnels) tunnels (alice, bob)"
  else
    fail "tinyproxy's log shows no CONNECT tunnel to 127.0.0.1:$PORT"
    cat "$PROXY_LOG"
  fi
fi
stop_proxy

start_proxy auth "BasicAuth user pass"
expect_failure "tinyproxy with BasicAuth, no credentials" "407 Proxy Authentication Required" \
  --ca "$CERTS/ca.pem" --proxy "http://127.0.0.1:$PROXY_PORT" || true
# tinyproxy 1.11 answers wrong credentials with 401 (not 407); either way
# the tunnel is refused.
expect_failure "tinyproxy with BasicAuth, wrong password" "proxy refused CONNECT with 40[17]" \
  --ca "$CERTS/ca.pem" --proxy "http://user:wrong@127.0.0.1:$PROXY_PORT" || true
refused_tunnels="$(tunnels)"
if expect_success "tinyproxy with BasicAuth, user:pass@" --ca "$CERTS/ca.pem" \
  --proxy "http://user:pass@127.0.0.1:$PROXY_PORT"; then
  if [ "$refused_tunnels" -eq 0 ] && [ "$(tunnels)" -ge 2 ]; then
    ok "tinyproxy's log: no tunnel without credentials, $(tunnels) with them"
  else
    fail "tinyproxy's log: $refused_tunnels tunnels before the credentials, $(tunnels) after"
    cat "$PROXY_LOG"
  fi
fi
stop_proxy

# --- the HTTP client through tinyproxy ----------------------------------------------
# Runs http_get with the given arguments; sets STATUS, OUT and ERR (files).
http_get() {
  OUT="$WORK/http_get.out"
  ERR="$WORK/http_get.err"
  STATUS=0
  timeout "$CLIENT_SECS" "$BIN/http_get" --timeout-ms 10000 "$@" >"$OUT" 2>"$ERR" || STATUS=$?
}

# `name` must print exactly `expected` (a status line and a body) and exit 0.
expect_http() {
  local name="$1" expected="$2"
  shift 2
  http_get "$@"
  if [ "$STATUS" -eq 0 ] && [ "$(cat "$OUT")" = "$(printf '%b' "$expected")" ]; then
    ok "http_get $name: $(tr '\n' ' ' <"$OUT")"
    return 0
  fi
  fail "http_get $name: exit $STATUS, expected $(printf '%q' "$expected")"
  cat "$OUT" "$ERR"
  return 1
}

# `pattern` (grep -F) must be in tinyproxy's log.
expect_logged() {
  if grep -qF -- "$1" "$PROXY_LOG"; then
    ok "tinyproxy's log: $1"
  else
    fail "tinyproxy's log has no $1"
    cat "$PROXY_LOG"
  fi
}

HTTPS_PING="https://127.0.0.1:$PORT/ping"
HTTP_PING="http://127.0.0.1:$PLAIN_PORT/ping"

start_proxy http-open
expect_http "https through tinyproxy" 'HTTP 200\npong' "$HTTPS_PING" --ca "$CERTS/ca.pem" \
  --proxy "http://127.0.0.1:$PROXY_PORT" && expect_logged "CONNECT 127.0.0.1:$PORT HTTP/1.1"
expect_http "http through tinyproxy" 'HTTP 200\npong' "$HTTP_PING" \
  --proxy "http://127.0.0.1:$PROXY_PORT" && expect_logged "GET $HTTP_PING HTTP/1.1"
stop_proxy

start_proxy http-auth "BasicAuth user pass"
http_get "$HTTPS_PING" --ca "$CERTS/ca.pem" --proxy "http://127.0.0.1:$PROXY_PORT"
if [ "$STATUS" -eq 2 ] && grep -q "proxy refused CONNECT with 407" "$ERR"; then
  ok "http_get https through tinyproxy with BasicAuth, no credentials: exit 2, $(cat "$ERR")"
else
  fail "http_get https through tinyproxy with BasicAuth, no credentials: exit $STATUS"
  cat "$OUT" "$ERR"
fi
http_get "$HTTP_PING" --proxy "http://127.0.0.1:$PROXY_PORT"
if [ "$STATUS" -eq 0 ] && [ "$(head -n 1 "$OUT")" = "HTTP 407" ]; then
  ok "http_get http through tinyproxy with BasicAuth, no credentials: the proxy's HTTP 407"
else
  fail "http_get http through tinyproxy with BasicAuth, no credentials: exit $STATUS"
  cat "$OUT" "$ERR"
fi
expect_http "https through tinyproxy with BasicAuth, user:pass@" 'HTTP 200\npong' "$HTTPS_PING" \
  --ca "$CERTS/ca.pem" --proxy "http://user:pass@127.0.0.1:$PROXY_PORT" || true
expect_http "http through tinyproxy with BasicAuth, user:pass@" 'HTTP 200\npong' "$HTTP_PING" \
  --proxy "http://user:pass@127.0.0.1:$PROXY_PORT" || true
stop_proxy

echo "tls-proxy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
