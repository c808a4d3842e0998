#!/usr/bin/env bash
# benches/deflate.sh -- permessage-deflate (issue 11): hvws, Node `ws` and
# Python `websockets`, compression on and off, in the same run.
#
#   benches/deflate.sh [ROUNDS]          (default 3 rounds)
#
# Environment: DURATION (measuring window per run, s, default 4), WARMUP
# (s, default 1), ONLY (run only workloads whose name contains this),
# SERVERS (space-separated subset of the servers below), IDLE_CONNS
# (default 5000), OUT (results file, default target/bench/deflate-DATE.tsv).
#
# Workloads (wsload --json: ~1.2 KB JSON game-state snapshots, every reply
# checked byte for byte):
#   echo-json-c100-k16    echo on 100 connections, 16 in flight each
#   bcast-json-r1000-w16  1 sender, 1,000 receivers, 16 messages in flight
#   idle-json             IDLE_CONNS idle connections: RSS per connection
#   active-json           the same, each having echoed one snapshot first
# Servers (NAME: what runs; the client offers permessage-deflate as a
# browser does on every row, with --deflate where it must be agreed):
#   hvws                  benches/hvws-echo, no deflate (declines)
#   hvws-deflate          hvws-echo --deflate: the server defaults (no
#                         context takeover either way, level 6, window 15)
#   hvws-takeover         hvws-echo --deflate-takeover: context takeover
#                         both ways (a compressor per connection)
#   node-ws               benches/peer-node (ws 8), perMessageDeflate: false
#   node-ws-deflate       perMessageDeflate: true (context takeover)
#   node-ws-deflate-nct   ... with server/clientNoContextTakeover
#   python-websockets     benches/peer-python (websockets 17), compression=None
#   python-websockets-deflate  its default compression (window 12,
#                         memLevel 5, context takeover)
#
# Each run starts a fresh server pinned to CPU 0 (taskset; Node's thread
# pool too) and wsload pinned to CPU 1, and ends the server by its PID.
# The servers run in an order that rotates every round. Installs Node's
# `ws` into benches/peer-node/node_modules (npm ci, from the lock file)
# and `websockets` into benches/peer-python/.venv (pip, from
# requirements.txt); both are git-ignored.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
DURATION="${DURATION:-4}"
WARMUP="${WARMUP:-1}"
ONLY="${ONLY:-}"
IDLE_CONNS="${IDLE_CONNS:-5000}"
mkdir -p target/bench
OUT="${OUT:-target/bench/deflate-$(date -u +%Y%m%dT%H%M%SZ).tsv}"
: > "$OUT"
ulimit -n 20000

cargo build --release --quiet -p wsload -p hvws-echo
(cd benches/peer-node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
if [ ! -x benches/peer-python/.venv/bin/python ]; then python3 -m venv benches/peer-python/.venv; fi
benches/peer-python/.venv/bin/python -m pip install -q --disable-pip-version-check -r benches/peer-python/requirements.txt
NODE_WS="$(cd benches/peer-node && node -p 'require("ws/package.json").version')"
PY_WS="$(benches/peer-python/.venv/bin/python -c 'import websockets; print(websockets.__version__)')"

ALL_SERVERS=(hvws hvws-deflate hvws-takeover node-ws node-ws-deflate node-ws-deflate-nct
  python-websockets python-websockets-deflate)
read -r -a SERVERS <<< "${SERVERS:-${ALL_SERVERS[*]}}"
PY=benches/peer-python/.venv/bin/python
# name | executable's comm | port | command
declare -A CMD=(
  [hvws]="target/release/hvws-echo"
  [hvws-deflate]="target/release/hvws-echo --deflate"
  [hvws-takeover]="target/release/hvws-echo --deflate-takeover"
  [node-ws]="node benches/peer-node/server.mjs"
  [node-ws-deflate]="node benches/peer-node/server.mjs --deflate"
  [node-ws-deflate-nct]="node benches/peer-node/server.mjs --deflate --no-context-takeover"
  [python-websockets]="$PY benches/peer-python/server.py --no-deflate"
  [python-websockets-deflate]="$PY benches/peer-python/server.py"
)
declare -A COMM=([hvws]=hvws-echo [node]=node [python]=python)
PORT=9111

# name | wsload arguments (the permessage-deflate flag is added per server)
WORKLOADS=(
  "echo-json-c100-k16|echo --conns 100 --inflight 16 --json"
  "bcast-json-r1000-w16|broadcast --receivers 1000 --senders 1 --window 16 --json"
  "idle-json|idle --conns $IDLE_CONNS"
  "active-json|idle --conns $IDLE_CONNS --active"
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
  # shellcheck disable=SC2086
  taskset -c 0 ${CMD[$1]} --port "$PORT" >/dev/null &
  SERVER_PID=$!
  # CPU time and RSS are read from /proc/$SERVER_PID: it must be the server
  # itself (taskset execs it), not a shell around it.
  sleep 0.1
  local want="${COMM[${1%%-*}]}" comm
  comm="$(cat "/proc/$SERVER_PID/comm" 2>/dev/null || true)"
  if [[ "$comm" != "$want"* ]]; then
    echo "PID $SERVER_PID is $comm, not the $1 server" >&2
    return 1
  fi
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "server $1 did not start on port $PORT" >&2
  return 1
}

run_one() { # server round workload-name args...
  local server="$1" round="$2" name="$3" pmd=--offer
  shift 3
  case "$server" in *-deflate* | *-takeover) pmd=--deflate ;; esac
  start_server "$server"
  sleep 0.2
  # shellcheck disable=SC2068
  timeout 300 taskset -c 1 target/release/wsload $@ "$pmd" --addr "127.0.0.1:$PORT" --pid "$SERVER_PID" \
    --warmup "$WARMUP" --duration "$DURATION" \
    --out "$OUT" --server "$server" --round "$round" --workload "$name"
  stop_server
}

START=$(date +%s)
n=${#SERVERS[@]}
for round in $(seq "$ROUNDS"); do
  # Rotate the order every round, so no server always runs first or after
  # the same one.
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${SERVERS[$(((i + round - 1) % n))]}"); done
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
echo "## hvws $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches/hvws-echo Cargo.toml || echo '+changes'), Node $(node --version) ws $NODE_WS, Python $($PY -c 'import platform; print(platform.python_version())') websockets $PY_WS, $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
servers_csv="$(IFS=,; echo "${SERVERS[*]}")"
target/release/wsload matrix "$OUT" --servers "$servers_csv" \
  --ratio "echo-json-c100-k16 cpu_ns_per_msg hvws-deflate / node-ws-deflate <= 1" \
  --ratio "echo-json-c100-k16 cpu_ns_per_msg hvws-deflate / node-ws-deflate-nct <= 1" \
  --ratio "echo-json-c100-k16 cpu_ns_per_msg hvws-takeover / node-ws-deflate <= 1" \
  --ratio "bcast-json-r1000-w16 cpu_ns_per_delivery hvws-deflate / node-ws-deflate <= 1" \
  --ratio "bcast-json-r1000-w16 cpu_ns_per_delivery hvws-deflate / node-ws-deflate-nct <= 1" \
  --ratio "bcast-json-r1000-w16 cpu_ns_per_delivery hvws-takeover / node-ws-deflate <= 1" \
  --ratio "bcast-json-r1000-w16 cpu_ns_per_delivery hvws-deflate / hvws <= 1.5" \
  --ratio "echo-json-c100-k16 cpu_ns_per_msg hvws-deflate / hvws" \
  --ratio "echo-json-c100-k16 wire_bytes_per_msg hvws-deflate / hvws" \
  --ratio "bcast-json-r1000-w16 wire_bytes_per_msg hvws-deflate / hvws" \
  --ratio "idle-json rss_bytes_per_conn hvws-deflate / hvws <= 1" \
  --ratio "active-json rss_bytes_per_conn hvws-deflate / hvws"
echo
echo "results: $OUT"
