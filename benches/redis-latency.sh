#!/usr/bin/env bash
# benches/redis-latency.sh [ROUNDS] -- the latency of a publish across
# processes through Redis (issue 14), against the same publish inside one
# process, measured in the same run:
#
#   remote: one sender on hvws-echo A, 10 receivers on hvws-echo B, both
#           `--redis` on one redis-server, topic t0; one message in flight
#           (`--window 1`), so each figure is a whole trip: client -> A ->
#           A's bridge -> Redis -> B's bridge -> B -> client.
#   local:  the same with the 10 receivers on A (A still publishes to Redis,
#           nobody on B listens).
#
# Each round starts fresh servers (a message of one run must not reach the
# next), local and remote in an order swapped every round. Reports
# wsload's fan-out p50/p99 (send -> the last receiver has it) per round.
set -euo pipefail
ROUNDS="${1:-3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
cargo build --release -q -p hvws-echo -p wsload
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on $1" >&2; return 1; }

run() { # MODE ROUND
  local rp pa pb a
  rp=$(free_port); pa=$(free_port); pb=$(free_port)
  redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 & PIDS+=($!)
  wait_port "$rp"
  target/release/hvws-echo --port "$pa" --redis "redis://127.0.0.1:$rp" >/dev/null 2>&1 & a=$!; PIDS+=($a)
  target/release/hvws-echo --port "$pb" --redis "redis://127.0.0.1:$rp" >/dev/null 2>&1 & PIDS+=($!)
  wait_port "$pa"; wait_port "$pb"
  sleep 0.5 # the bridges subscribe
  local extra=()
  [ "$1" = remote ] && extra=(--remote "127.0.0.1:$pb")
  target/release/wsload topics --addr "127.0.0.1:$pa" --pid "$a" --topics 1 --receivers 10 --senders 1 \
    --size 32 --text --window 1 --warmup 1 --duration 4 "${extra[@]}" 2>&1 | tail -1 |
    grep -o 'fanout_p50_us=[0-9.]* fanout_p99_us=[0-9.]* lost=[0-9]*' | sed "s/^/round $2 $1 /"
  cleanup
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run local "$r"; run remote "$r"; else run remote "$r"; run local "$r"; fi
done
