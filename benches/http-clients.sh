#!/usr/bin/env bash
# benches/http-clients.sh -- client CPU per request for keep-alive GET /hello:
# hvws's HttpClient against ureq and reqwest, same server, same run (issue 13).
#
#   benches/http-clients.sh [ROUNDS]        (default 3 rounds)
#
# Environment: DURATION (measuring window per run, s, default 4), WARMUP
# (requests before the window, default 2000), CLIENTS (default
# "hvws ureq reqwest"; hvws-blocking is hvws's send_blocking), OUT (results
# file, default target/bench/http-clients-DATE.txt), CALLGRIND (0 to skip the
# callgrind runs; they need valgrind), CG_SHORT / CG_LONG (requests in the two
# callgrind runs, default 2000 and 10000).
#
# Builds benches/http-clients and benches/hvws-echo in release mode. Every
# run starts a fresh hvws-echo (--port 0: a free port, read from its
# listening line) pinned to CPU 0 with taskset, then one client pinned to
# CPU 1, which makes WARMUP keep-alive GET /hello one after another on one
# connection and then as many as it can in DURATION seconds, checking that
# each answer is 200 "Hello, world!", and prints its own CPU time (utime +
# stime from /proc/self/stat) per request; the server is then ended by its
# PID. The clients' order changes every round (with three clients, every
# order once in 6 rounds). Prints a Markdown table: each client's median
# (min..max), and hvws's ratios to the others.
#
# Then, if valgrind is there, each client runs twice under callgrind
# (CG_SHORT and CG_LONG requests, against a fresh server each time); the
# difference divided by CG_LONG - CG_SHORT is the client's user-space
# instructions and malloc calls per request, the numbers that do not move
# with the machine's load.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
DURATION="${DURATION:-4}"
WARMUP="${WARMUP:-2000}"
read -r -a CLIENTS <<< "${CLIENTS:-hvws ureq reqwest}"
CALLGRIND="${CALLGRIND:-1}"
CG_SHORT="${CG_SHORT:-2000}"
CG_LONG="${CG_LONG:-10000}"
mkdir -p target/bench
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-target/bench/http-clients-$STAMP.txt}"
: > "$OUT"

export CARGO_INCREMENTAL=0
cargo build --release --quiet -p http-clients -p hvws-echo
SERVER=target/release/hvws-echo
CLIENT=target/release/http-clients

SERVER_PID=""
PORT=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

start_server() {
  local log="target/bench/http-clients-server.out"
  : > "$log"
  taskset -c 0 "$SERVER" --port 0 > "$log" &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 100); do
    # "echo on ws://127.0.0.1:PORT/echo, ..."
    PORT="$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)"
    [ -n "$PORT" ] && break
    sleep 0.05
  done
  if [ -z "$PORT" ]; then
    echo "hvws-echo did not print its address" >&2
    return 1
  fi
  # The PID must be the server itself (taskset execs it), not a shell.
  if [ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" != hvws-echo ]; then
    echo "PID $SERVER_PID is not hvws-echo" >&2
    return 1
  fi
}

# Every order of the clients, one per round, repeating (with three
# clients: each first twice in 6 rounds, every pair in each order 3 times).
orders() {
  local -a c=("$@")
  if [ "${#c[@]}" -eq 3 ]; then
    echo "${c[0]} ${c[1]} ${c[2]}"
    echo "${c[1]} ${c[2]} ${c[0]}"
    echo "${c[2]} ${c[0]} ${c[1]}"
    echo "${c[0]} ${c[2]} ${c[1]}"
    echo "${c[1]} ${c[0]} ${c[2]}"
    echo "${c[2]} ${c[1]} ${c[0]}"
  else
    # Any other number: rotate by one each round.
    local i j line
    for ((i = 0; i < ${#c[@]}; i++)); do
      line=""
      for ((j = 0; j < ${#c[@]}; j++)); do line+="${c[$(((i + j) % ${#c[@]}))]} "; done
      echo "${line% }"
    done
  fi
}
mapfile -t ORDERS < <(orders "${CLIENTS[@]}")

START=$(date +%s)
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  read -r -a order <<< "${ORDERS[$(((round - 1) % ${#ORDERS[@]}))]}"
  for client in "${order[@]}"; do
    start_server
    line="$(taskset -c 1 "$CLIENT" --client "$client" --url "http://127.0.0.1:$PORT/hello" \
      --warmup "$WARMUP" --duration "$DURATION" | grep '^result ')"
    stop_server
    echo "round=$round $line load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT" >&2
  done
done

echo
echo "## $(date -u +%Y-%m-%d) -- $ROUNDS rounds, $WARMUP requests warm-up + ${DURATION}s per run, $(($(date +%s) - START))s in all"
echo "## hvws $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml benches/http-clients || echo '+changes'), $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "## load average at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$CLIENT" report "$OUT"

if [ "$CALLGRIND" != 0 ] && command -v valgrind >/dev/null; then
  echo
  echo "callgrind (user space only; $CG_LONG - $CG_SHORT requests, difference of two runs):"
  echo
  echo "| client | instructions per request | malloc calls per request | realloc calls per request |"
  echo "|---|---:|---:|---:|"
  for client in "${CLIENTS[@]}"; do
    for n in "$CG_SHORT" "$CG_LONG"; do
      start_server
      taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="target/bench/callgrind-$client-$n.out" \
        "$CLIENT" --client "$client" --url "http://127.0.0.1:$PORT/hello" --warmup 100 --requests "$n" \
        >/dev/null 2>"target/bench/callgrind-$client-$n.log"
      stop_server
    done
    cg="$("$CLIENT" callgrind "target/bench/callgrind-$client-$CG_SHORT.out" "target/bench/callgrind-$client-$CG_LONG.out" "$CG_SHORT" "$CG_LONG")"
    # instr_per_req=X allocs_per_req=Y reallocs_per_req=Z
    read -r i a r <<< "$(echo "$cg" | sed 's/[a-z_]*=//g')"
    echo "$client $cg" >> "$OUT"
    echo "| $client | $i | $a | $r |"
  done
fi
echo
echo "results: $OUT (callgrind files: target/bench/callgrind-*.out)"
