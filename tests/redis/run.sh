#!/usr/bin/env bash
# tests/redis/run.sh -- the Redis pub/sub bridge (feature `redis`) against a
# real redis-server:
#
#   1. installs Debian's redis-server if it is missing (apt-get; CI runs as
#      root);
#   2. starts one on a free loopback port, without persistence, in the
#      background, and stops it by its PID on exit;
#   3. builds room_server and runs tests/redis_bridge.rs, redis_hub.rs and
#      redis_rooms.rs (two room_server processes) against it with HVWS_REDIS_URL set and
#      HVWS_REDIS_REQUIRED=1 (a test that finds no URL fails instead of
#      skipping), one test at a time (the restart test starts and kills a
#      redis-server of its own, on another free port);
#   4. fails unless the tests really ran (cargo's "N passed" with N > 0).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp)"
OUT="$(mktemp)"
REDIS_PID=""
cleanup() {
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -f "$LOG" "$OUT"
}
trap cleanup EXIT

redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$LOG" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$REDIS_PID" 2>/dev/null; then
    echo "redis-server exited: $(cat "$LOG")" >&2
    exit 1
  fi
  sleep 0.1
done
echo "redis-server (pid $REDIS_PID) on 127.0.0.1:$PORT"

# room_server for tests/redis_rooms.rs (two processes on one Redis).
cargo build --features redis --example room_server
HVWS_ROOM_SERVER="$ROOT/target/debug/examples/room_server" \
HVWS_REDIS_URL="redis://127.0.0.1:$PORT" HVWS_REDIS_REQUIRED=1 \
  cargo test --features redis --test redis_bridge --test redis_hub --test redis_rooms -- --test-threads=1 2>&1 | tee "$OUT"

# One "test result" line per test binary (redis_bridge, redis_hub,
# redis_rooms); each
# must have run tests, none skipped.
results="$(grep -o 'test result: ok\. [0-9]* passed' "$OUT" | grep -o '[0-9]* passed' | cut -d' ' -f1 || true)"
binaries="$(printf '%s\n' "$results" | grep -c '^[1-9]' || true)"
passed="$(printf '%s\n' "$results" | awk '{ s += $1 } END { print s + 0 }')"
if [ "$binaries" -ne 3 ] || grep -q 'skipped, HVWS_REDIS_URL' "$OUT"; then
  echo "FAIL: the Redis tests did not all run (passed per binary: $(echo $results))" >&2
  exit 1
fi
echo "ok   $passed Redis bridge and hub tests ran against redis-server $PORT"
