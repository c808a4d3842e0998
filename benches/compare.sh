#!/usr/bin/env bash
# benches/compare.sh -- hvws against tokio-tungstenite, same machine, same run.
#
#   benches/compare.sh [ROUNDS]          (default 3 rounds)
#
# Environment: DURATION (measuring window per run, s, default 4), WARMUP
# (s, default 1), ONLY (run only workloads whose name contains this), OUT
# (results file, default target/bench/compare-DATE.tsv).
#
# Builds hvws's echo_server example, the peer (benches/peer-tokio) and the
# load generator (benches/wsload) in release mode, then runs every workload
# against both servers in interleaved rounds: round 1 hvws then peer, round 2
# peer then hvws, and so on. Each run starts a fresh server pinned to CPU 0
# (taskset) and the load generator pinned to CPU 1, and ends the server by
# its PID. Prints the medians, min..max and hvws/peer ratios as a Markdown
# table (benches/README.md explains each column).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
DURATION="${DURATION:-4}"
WARMUP="${WARMUP:-1}"
ONLY="${ONLY:-}"
mkdir -p target/bench
OUT="${OUT:-target/bench/compare-$(date -u +%Y%m%dT%H%M%SZ).tsv}"
: > "$OUT"

# 10,000 idle connections: the load generator holds their client ends.
ulimit -n 20000

cargo build --release --quiet --example echo_server
cargo build --release --quiet -p wsload -p peer-tokio

declare -A SERVER_CMD=(
  [hvws]="target/release/examples/echo_server --port"
  [tokio-tungstenite]="target/release/peer-tokio --port"
)
declare -A SERVER_PORT=([hvws]=9101 [tokio-tungstenite]=9102)

# name | wsload arguments
WORKLOADS=(
  "echo-32B-text-c100-k16|echo --conns 100 --inflight 16 --size 32"
  "echo-32B-text-c100-k1|echo --conns 100 --inflight 1 --size 32"
  "echo-64KiB-bin-c10-k4|echo --conns 10 --inflight 4 --size 65536 --binary"
  "bcast-32B-r1000-s1-w16|broadcast --receivers 1000 --senders 1 --size 32 --window 16"
  "idle-10000|idle --conns 10000"
  "churn-16-lanes|churn --lanes 16"
)

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

start_server() { # name
  local port="${SERVER_PORT[$1]}"
  # shellcheck disable=SC2086
  taskset -c 0 ${SERVER_CMD[$1]} "$port" >/dev/null &
  SERVER_PID=$!
  # CPU time and RSS are read from /proc/$SERVER_PID: it must be the server
  # itself (taskset execs it), not a shell around it.
  sleep 0.05
  case "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" in
    echo_server | peer-tokio) ;;
    *) echo "PID $SERVER_PID is not the $1 server" >&2; return 1 ;;
  esac
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "server $1 did not start on port $port" >&2
  return 1
}

run_one() { # server round workload-name args...
  local server="$1" round="$2" name="$3"
  shift 3
  start_server "$server"
  sleep 0.2
  # shellcheck disable=SC2068
  taskset -c 1 target/release/wsload $@ --addr "127.0.0.1:${SERVER_PORT[$server]}" --pid "$SERVER_PID" \
    --warmup "$WARMUP" --duration "$DURATION" \
    --out "$OUT" --server "$server" --round "$round" --workload "$name"
  stop_server
}

START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order=(hvws tokio-tungstenite); else order=(tokio-tungstenite hvws); fi
  for w in "${WORKLOADS[@]}"; do
    name="${w%%|*}"
    args="${w#*|}"
    if [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]]; then continue; fi
    for server in "${order[@]}"; do
      # shellcheck disable=SC2086
      run_one "$server" "$round" "$name" $args
    done
  done
done

echo
echo "## $(date -u +%Y-%m-%d) -- $ROUNDS rounds, ${WARMUP}s warm-up + ${DURATION}s per run, $(($(date +%s) - START))s in all"
echo "## hvws $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples Cargo.toml || echo '+changes'), $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
target/release/wsload report "$OUT" --a hvws --b tokio-tungstenite \
  --target "echo-32B-text-c100-k16 cpu_ns_per_msg <= 0.65" \
  --target "echo-32B-text-c100-k16 msg_per_s >= 1.5" \
  --target "echo-64KiB-bin-c10-k4 mb_per_s >= 1.0" \
  --target "bcast-32B-r1000-s1-w16 cpu_ns_per_delivery <= 0.70" \
  --target "churn-16-lanes cpu_us_per_conn <= 0.75"
echo
echo "results: $OUT"
