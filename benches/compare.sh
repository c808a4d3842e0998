#!/usr/bin/env bash
# benches/compare.sh -- hvws against tokio-tungstenite, same machine, same run.
#
#   benches/compare.sh [ROUNDS]          (default 3 rounds)
#
# Environment: DURATION (measuring window per run, s, default 4), WARMUP
# (s, default 1), ONLY (run only workloads whose name contains this), OUT
# (results file, default target/bench/compare-DATE.tsv), BASELINE (see below),
# PORT_BASE (default 9100: ports 9101-9104; another value lets two runs share a machine).
#
# Builds hvws's echo_server example, the peer (benches/peer-tokio) and the
# load generator (benches/wsload) in release mode, then runs every workload
# against both servers in interleaved rounds: round 1 hvws then peer, round 2
# peer then hvws, and so on. Each run starts a fresh server pinned to CPU 0
# (taskset) and the load generator pinned to CPU 1, and ends the server by
# its PID. Prints the medians, min..max and hvws/peer ratios as a Markdown
# table (benches/README.md explains each column).
#
# BASELINE=/path/to/echo_server adds a third server, hvws-base (port 9103),
# to every round: an echo_server built from another commit, e.g. before a
# change (it is not built here; build it in a worktree of that commit, with
# its own target dir). The three servers are run in an order that changes
# every round (hvws, peer, base; base, peer, hvws; peer, hvws, base; ...,
# repeating every 6 rounds): each comes first once in rounds 1-3 and once in
# 4-6, and hvws and hvws-base swap order every round. After the usual table it prints a second one, hvws/hvws-base
# (this tree over the baseline), without targets. Without BASELINE nothing
# changes.
#
#   BASELINE=/work/before/target/release/examples/echo_server benches/compare.sh 5
#
# Workloads named wss-* run over TLS (rustls, ring provider, TLS 1.3, full
# handshakes): a fresh CA and server certificate are made for every run
# (`wsload certs`, into target/bench/tls; no key is committed), hvws is
# benches/hvws-echo (the echo_server protocol with --tls-cert/--tls-key),
# the peer is peer-tokio with the same flags (tokio-rustls), and wsload
# trusts the CA (--tls). hvws-base joins them only with BASELINE_TLS, a
# binary that takes --tls-cert/--tls-key (hvws-echo built from another
# commit); BASELINE's echo_server has no TLS.
#
#   ONLY=wss benches/compare.sh 5        # only the wss rows
#
# Workloads named http-* are plain HTTP/1.1 (GET /hello, pipelined or not,
# and 1 MiB downloads from /static/): hvws is benches/hvws-echo with
# --static-dir, the peer is peer-tokio --http (hyper 1.x with the header-read
# timer axum::serve gives it, tower-http's ServeDir; recorded as server
# "hyper"), both serving target/bench/static,
# where a 1 MiB file of random bytes is made for every run. They get a
# table of their own (hvws/hyper). hvws-base joins them only with
# BASELINE_HTTP, a hvws-echo that takes --static-dir.
#
#   ONLY=http benches/compare.sh 5       # only the HTTP rows
#
# Workloads named topics-* measure hvws against itself, all on
# benches/hvws-echo (port 9104), each as two variants run in the same
# interleaved rounds (order swapped every round), with a table of their own:
#   * topics-r1000-*: `wsload topics` publishing 32 B text to one topic with
#     1,000 receivers and 1 sender (/pub?topic=t0, variant "publish"),
#     against the same load on /broadcast (variant "broadcast"); same
#     message, same 1,001 connections, same deliveries.
#   * topics-t1000x10-*: 10,000 connections on 1,000 topics (10 each), each
#     message published from a random connection to its topic ("publish"
#     only).
#   * rows ending in -sys run the same load with `wsload --syscalls`
#     (perf stat on the server's syscall tracepoints; no CPU figure, the
#     tracing slows syscalls): writes per delivery and per tick.
#   * topics-echo-*: echo 32 B, 100 connections x 16 in flight, on
#     `hvws-echo --threads 2` ("threads-2") against `--threads 1`
#     ("threads-1"), both ServerGroups. Here the server may run on both
#     CPUs (taskset -c 0,1) while wsload stays on CPU 1: on this 2-core
#     machine the second server thread shares a core with the load
#     generator.
# Servers and baselines of the other rows do not take part.
#
#   ONLY=topics benches/compare.sh 5     # only the topics rows (~5 min)
#
# Workloads named game-* are the game-loop benchmark (`wsload game`): C
# clients on /game each sending a 64-byte JSON input 20 times a second,
# the server running a 60 Hz frame loop that sends every client one
# 1 KiB snapshot per frame. hvws is benches/hvws-echo --game-hz 60
# --snapshot 1024 (FramePacer-style loop: tick until the frame, tick,
# broadcast_binary, flush), the peer peer-tokio --game-hz 60 --snapshot
# 1024 (a tokio interval task and a broadcast channel). A third field in
# the row gives hvws-echo more arguments (the flood row's --tick-budget,
# the writes rows' --write-budget: TickBudget::writes);
# the peer has no such setting. They get a table of their own.
# hvws-base does not take part.
#
#   ONLY=game benches/compare.sh 3       # only the game rows (~5 min)
set -euo pipefail

BASELINE="${BASELINE:-}"
if [ -n "$BASELINE" ]; then
  # Relative to the caller's directory, not to the root we cd to below.
  case "$BASELINE" in /*) ;; *) BASELINE="$PWD/$BASELINE" ;; esac
  if [ ! -f "$BASELINE" ] || [ ! -x "$BASELINE" ]; then
    echo "BASELINE=$BASELINE is not an executable file" >&2
    exit 1
  fi
fi

BASELINE_TLS="${BASELINE_TLS:-}"
if [ -n "$BASELINE_TLS" ]; then
  case "$BASELINE_TLS" in /*) ;; *) BASELINE_TLS="$PWD/$BASELINE_TLS" ;; esac
  if [ ! -f "$BASELINE_TLS" ] || [ ! -x "$BASELINE_TLS" ]; then
    echo "BASELINE_TLS=$BASELINE_TLS is not an executable file" >&2
    exit 1
  fi
fi

BASELINE_HTTP="${BASELINE_HTTP:-}"
if [ -n "$BASELINE_HTTP" ]; then
  case "$BASELINE_HTTP" in /*) ;; *) BASELINE_HTTP="$PWD/$BASELINE_HTTP" ;; esac
  if [ ! -f "$BASELINE_HTTP" ] || [ ! -x "$BASELINE_HTTP" ]; then
    echo "BASELINE_HTTP=$BASELINE_HTTP is not an executable file" >&2
    exit 1
  fi
fi

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
cargo build --release --quiet -p wsload -p peer-tokio -p hvws-echo

# The wss workloads' certificates, fresh for every run.
TLS_DIR=target/bench/tls
target/release/wsload certs --dir "$TLS_DIR" >/dev/null

# The http-static workload's file, fresh for every run: 1 MiB of random
# bytes (incompressible, and no two runs alike).
STATIC_DIR=target/bench/static
mkdir -p "$STATIC_DIR"
head -c 1048576 /dev/urandom > "$STATIC_DIR/1mib.bin"

declare -A SERVER_BIN=(
  [hvws]="target/release/examples/echo_server"
  [tokio-tungstenite]="target/release/peer-tokio"
)
# PORT_BASE (default 9100) moves every port, so that two runs on one
# machine do not meet: hvws on PORT_BASE+1, the peer +2, a baseline +3,
# the topics server +4.
PORT_BASE="${PORT_BASE:-9100}"
declare -A SERVER_PORT=([hvws]=$((PORT_BASE + 1)) [tokio-tungstenite]=$((PORT_BASE + 2)))
# Over TLS (wss-* workloads): the same servers' TLS-capable binaries.
declare -A SERVER_BIN_TLS=(
  [hvws]="target/release/hvws-echo"
  [tokio-tungstenite]="target/release/peer-tokio"
)
# Over HTTP (http-* workloads): the binaries and the flags that give them
# the HTTP routes.
declare -A SERVER_BIN_HTTP=(
  [hvws]="target/release/hvws-echo"
  [tokio-tungstenite]="target/release/peer-tokio"
)
# The game-* workloads: the binaries and the flags of their frame loop.
declare -A SERVER_BIN_GAME=(
  [hvws]="target/release/hvws-echo"
  [tokio-tungstenite]="target/release/peer-tokio"
)
GAME_ARGS="--game-hz 60 --snapshot 1024"
# hvws-echo's extra arguments for the game row being run (the row's third
# field).
GAME_HVWS_ARGS=""
declare -A SERVER_ARGS_HTTP=(
  [hvws]="--static-dir $STATIC_DIR"
  [tokio-tungstenite]="--http --static-dir $STATIC_DIR"
  [hvws-base]="--static-dir $STATIC_DIR"
)
if [ -n "$BASELINE" ]; then
  SERVER_BIN[hvws-base]="$BASELINE"
  SERVER_PORT[hvws-base]=$((PORT_BASE + 3))
fi
if [ -n "$BASELINE_TLS" ]; then
  SERVER_BIN_TLS[hvws-base]="$BASELINE_TLS"
  SERVER_PORT[hvws-base]=$((PORT_BASE + 3))
fi
if [ -n "$BASELINE_HTTP" ]; then
  SERVER_BIN_HTTP[hvws-base]="$BASELINE_HTTP"
  SERVER_PORT[hvws-base]=$((PORT_BASE + 3))
fi

# name | wsload arguments
WORKLOADS=(
  "echo-32B-text-c100-k16|echo --conns 100 --inflight 16 --size 32"
  "echo-32B-text-c100-k1|echo --conns 100 --inflight 1 --size 32"
  "echo-64KiB-bin-c10-k4|echo --conns 10 --inflight 4 --size 65536 --binary"
  "bcast-32B-r1000-s1-w16|broadcast --receivers 1000 --senders 1 --size 32 --window 16"
  "idle-10000|idle --conns 10000"
  "churn-16-lanes|churn --lanes 16"
  "wss-echo-32B-text-c100-k16|echo --conns 100 --inflight 16 --size 32"
  "wss-idle-10000|idle --conns 10000"
  "wss-churn-16-lanes|churn --lanes 16"
  "http-hello-c50-d16|http-hello --conns 50 --depth 16"
  "http-hello-c50-d1|http-hello --conns 50 --depth 1"
  "http-static-1MiB-c4|http-static --conns 4 --file target/bench/static/1mib.bin"
  "game-c1000-r20-s1KiB|game --clients 1000 --rate 20 --snapshot 1024"
  "game-c1000-r20-s1KiB-sleep|game --clients 1000 --rate 20 --snapshot 1024|--game-loop sleep"
  "game-c5000-r20-s1KiB|game --clients 5000 --rate 20 --snapshot 1024"
  "game-c5000-r20-s1KiB-ticks4|game --clients 5000 --rate 20 --snapshot 1024|--ticks-per-frame 4"
  "game-c1000-r20-s1KiB-writes150|game --clients 1000 --rate 20 --snapshot 1024|--write-budget 150"
  "game-c5000-r20-s1KiB-writes500|game --clients 5000 --rate 20 --snapshot 1024|--write-budget 500"
  "game-flood-c1000-budget256|game --clients 1000 --rate 20 --snapshot 1024 --flood|--tick-budget 256"
  "game-flood-c1000-nobudget|game --clients 1000 --rate 20 --snapshot 1024 --flood"
)

# The topics rows: name | variant | server CPUs | hvws-echo arguments |
# wsload arguments. Variants of one name run back to back, in this order
# in odd rounds and reversed in even ones.
TOPIC_RUNS=(
  "topics-r1000-32B-w16|publish|0||topics --topics 1 --receivers 1000 --senders 1 --size 32 --text --window 16"
  "topics-r1000-32B-w16|broadcast|0||topics --broadcast --topics 1 --receivers 1000 --senders 1 --size 32 --text --window 16"
  "topics-r1000-32B-w16-sys|publish|0||topics --topics 1 --receivers 1000 --senders 1 --size 32 --text --window 16 --syscalls"
  "topics-r1000-32B-w16-sys|broadcast|0||topics --broadcast --topics 1 --receivers 1000 --senders 1 --size 32 --text --window 16 --syscalls"
  "topics-t1000x10-32B-w256|publish|0||topics --topics 1000 --receivers 10000 --senders 0 --size 32 --text --window 256"
  "topics-t1000x10-32B-w256-sys|publish|0||topics --topics 1000 --receivers 10000 --senders 0 --size 32 --text --window 256 --syscalls"
  "topics-echo-32B-c100-k16|threads-2|0,1|--threads 2|echo --conns 100 --inflight 16 --size 32"
  "topics-echo-32B-c100-k16|threads-1|0,1|--threads 1|echo --conns 100 --inflight 16 --size 32"
)
TOPICS_PORT=$((PORT_BASE + 4))

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

start_server() { # name kind(plain|tls|http|game)
  local port="${SERVER_PORT[$1]}" bin="${SERVER_BIN[$1]:-}"
  local extra_args=()
  if [ "$2" = game ]; then
    bin="${SERVER_BIN_GAME[$1]}"
    read -r -a extra_args <<< "$GAME_ARGS"
    if [ "$1" = hvws ] && [ -n "$GAME_HVWS_ARGS" ]; then
      read -r -a more <<< "$GAME_HVWS_ARGS"
      extra_args+=("${more[@]}")
    fi
  elif [ "$2" = tls ]; then
    bin="${SERVER_BIN_TLS[$1]}"
    extra_args=(--tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem")
  elif [ "$2" = http ]; then
    bin="${SERVER_BIN_HTTP[$1]}"
    read -r -a extra_args <<< "${SERVER_ARGS_HTTP[$1]}"
  fi
  taskset -c 0 "$bin" --port "$port" "${extra_args[@]}" >/dev/null &
  SERVER_PID=$!
  # CPU time and RSS are read from /proc/$SERVER_PID: it must be the server
  # itself (taskset execs it), not a shell around it. Its comm is the name of
  # its executable, cut to 15 bytes (echo_server, peer-tokio, or whatever
  # BASELINE's file is called).
  sleep 0.05
  local comm
  comm="$(basename "$bin")"
  comm="${comm:0:15}"
  if [ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" != "$comm" ]; then
    echo "PID $SERVER_PID is not the $1 server" >&2
    return 1
  fi
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
  local server="$1" round="$2" name="$3" kind=plain label="$1"
  local tls_args=()
  shift 3
  if [[ "$name" == wss-* ]]; then
    kind=tls
    tls_args=(--tls "$TLS_DIR/ca.pem")
  elif [[ "$name" == http-* ]]; then
    kind=http
    # The peer is hyper here, not tokio-tungstenite.
    if [ "$server" = tokio-tungstenite ]; then label=hyper; fi
  elif [[ "$name" == game-* ]]; then
    kind=game
  fi
  start_server "$server" "$kind"
  sleep 0.2
  # shellcheck disable=SC2068
  taskset -c 1 target/release/wsload $@ "${tls_args[@]}" --addr "127.0.0.1:${SERVER_PORT[$server]}" --pid "$SERVER_PID" \
    --warmup "$WARMUP" --duration "$DURATION" \
    --out "$OUT" --server "$label" --round "$round" --workload "$name"
  stop_server
}

# Orders of the three servers with BASELINE, one per round, repeating: in 6
# rounds every server is first twice and every pair runs in each order 3
# times; hvws and hvws-base swap order every round.
ORDERS3=(
  "hvws tokio-tungstenite hvws-base"
  "hvws-base tokio-tungstenite hvws"
  "tokio-tungstenite hvws hvws-base"
  "hvws-base hvws tokio-tungstenite"
  "hvws hvws-base tokio-tungstenite"
  "tokio-tungstenite hvws-base hvws"
)

# One topics row: a fresh hvws-echo on CPUs $3 with arguments $4, wsload
# on CPU 1 with arguments $5.
run_topics() { # round name variant cpus server-args wsload-args
  local round="$1" name="$2" variant="$3" cpus="$4" server_args="$5" load_args="$6"
  # shellcheck disable=SC2086
  taskset -c "$cpus" target/release/hvws-echo --port "$TOPICS_PORT" $server_args >/dev/null &
  SERVER_PID=$!
  sleep 0.05
  if [ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" != hvws-echo ]; then
    echo "PID $SERVER_PID is not hvws-echo" >&2
    return 1
  fi
  local up=""
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$TOPICS_PORT") 2>/dev/null; then up=1; break; fi
    sleep 0.05
  done
  if [ -z "$up" ]; then echo "hvws-echo did not start on port $TOPICS_PORT" >&2; return 1; fi
  sleep 0.2
  # shellcheck disable=SC2086
  taskset -c 1 target/release/wsload $load_args --addr "127.0.0.1:$TOPICS_PORT" --pid "$SERVER_PID" \
    --warmup "$WARMUP" --duration "$DURATION" \
    --out "$OUT" --server "$variant" --round "$round" --workload "$name"
  stop_server
}

START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  if [ -n "$BASELINE$BASELINE_TLS$BASELINE_HTTP" ]; then
    read -r -a order <<< "${ORDERS3[$(((round - 1) % 6))]}"
  elif [ $((round % 2)) -eq 1 ]; then order=(hvws tokio-tungstenite); else order=(tokio-tungstenite hvws); fi
  for w in "${WORKLOADS[@]}"; do
    name="${w%%|*}"
    args="${w#*|}"
    GAME_HVWS_ARGS=""
    if [[ "$args" == *"|"* ]]; then
      GAME_HVWS_ARGS="${args#*|}"
      args="${args%%|*}"
    fi
    if [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]]; then continue; fi
    for server in "${order[@]}"; do
      if [ "$server" = hvws-base ]; then
        if [[ "$name" == game-* ]]; then continue
        elif [[ "$name" == wss-* ]]; then [ -n "$BASELINE_TLS" ] || continue
        elif [[ "$name" == http-* ]]; then [ -n "$BASELINE_HTTP" ] || continue
        else [ -n "$BASELINE" ] || continue; fi
      fi
      # shellcheck disable=SC2086
      run_one "$server" "$round" "$name" $args
    done
  done
  # The topics rows, variants of a name in turn (reversed in even rounds).
  names=()
  for r in "${TOPIC_RUNS[@]}"; do
    name="${r%%|*}"
    if [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]]; then continue; fi
    [[ " ${names[*]-} " == *" $name "* ]] || names+=("$name")
  done
  for name in ${names[@]+"${names[@]}"}; do
    runs=()
    for r in "${TOPIC_RUNS[@]}"; do
      if [ "${r%%|*}" = "$name" ]; then
        if [ $((round % 2)) -eq 1 ]; then runs+=("$r"); else runs=("$r" ${runs[@]+"${runs[@]}"}); fi
      fi
    done
    for r in "${runs[@]}"; do
      IFS='|' read -r _ variant cpus server_args load_args <<< "$r"
      run_topics "$round" "$name" "$variant" "$cpus" "$server_args" "$load_args"
    done
  done
done

echo
echo "## $(date -u +%Y-%m-%d) -- $ROUNDS rounds, ${WARMUP}s warm-up + ${DURATION}s per run, $(($(date +%s) - START))s in all"
echo "## hvws $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples benches/hvws-echo Cargo.toml || echo '+changes'), $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ -n "$BASELINE" ]; then
  # The commit of the tree the baseline binary sits in (if it is in one).
  base_rev='?'
  if base_top="$(git -C "$(dirname "$BASELINE")" rev-parse --show-toplevel 2>/dev/null)"; then
    base_rev="$(git -C "$base_top" rev-parse --short HEAD)$(git -C "$base_top" diff --quiet HEAD -- src examples Cargo.toml || echo '+changes')"
  fi
  echo "## hvws-base $base_rev ($BASELINE)"
fi
if [ -n "$BASELINE_TLS" ]; then
  echo "## hvws-base over TLS: $BASELINE_TLS"
fi
if [ -n "$BASELINE_HTTP" ]; then
  echo "## hvws-base over HTTP: $BASELINE_HTTP"
fi
echo "## load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -v "	http-" "$OUT" | grep -v "	game-" | grep -qv "	topics-"; then
echo
target/release/wsload report "$OUT" --except http- --except topics- --except game- --a hvws --b tokio-tungstenite \
  --target "echo-32B-text-c100-k16 cpu_ns_per_msg <= 0.65" \
  --target "echo-32B-text-c100-k16 msg_per_s >= 1.5" \
  --target "echo-64KiB-bin-c10-k4 mb_per_s >= 1.0" \
  --target "bcast-32B-r1000-s1-w16 cpu_ns_per_delivery <= 0.70" \
  --target "churn-16-lanes cpu_us_per_conn <= 0.75" \
  --target "wss-echo-32B-text-c100-k16 cpu_ns_per_msg <= 0.7" \
  --target "wss-idle-10000 rss_bytes_per_conn <= 0.5" \
  --target "wss-churn-16-lanes cpu_us_per_conn <= 0.9"
fi
if grep -q "	http-" "$OUT"; then
  echo
  echo "HTTP (hvws-echo against peer-tokio --http, hyper 1.x):"
  echo
  target/release/wsload report "$OUT" --only http- --a hvws --b hyper \
    --target "http-hello-c50-d16 cpu_ns_per_req <= 0.7" \
    --target "http-hello-c50-d1 cpu_ns_per_req <= 0.7" \
    --target "http-static-1MiB-c4 mb_per_s >= 1.0"
fi
if grep -q "	game-" "$OUT"; then
  echo
  echo "Game loop (hvws-echo --game-hz 60 against peer-tokio --game-hz 60; 64 B inputs at 20/s per client, 1 KiB snapshots):"
  echo
  target/release/wsload report "$OUT" --only game- --a hvws --b tokio-tungstenite \
    --target "game-c1000-r20-s1KiB cpu_pct <= 0.5" \
    --target "game-c5000-r20-s1KiB snapshots_per_s >= 4" \
    --target "game-c5000-r20-s1KiB-writes500 snapshots_per_s >= 4"
fi
if grep -q "	topics-" "$OUT"; then
  echo
  echo "Topics (hvws-echo: /pub?topic= against /broadcast; -sys rows: syscalls counted by perf, no CPU):"
  echo
  target/release/wsload report "$OUT" --only topics- --except topics-echo --a publish --b broadcast \
    --target "topics-r1000-32B-w16 cpu_ns_per_delivery <= 1.0"
  echo
  echo "Echo on hvws-echo --threads 2 against --threads 1 (server on CPUs 0-1, wsload on CPU 1):"
  echo
  target/release/wsload report "$OUT" --only topics-echo --a threads-2 --b threads-1
fi
if [ -n "$BASELINE$BASELINE_TLS$BASELINE_HTTP" ]; then
  echo
  echo "hvws (this tree) against hvws-base (BASELINE, BASELINE_TLS, BASELINE_HTTP):"
  echo
  target/release/wsload report "$OUT" --except topics- --a hvws --b hvws-base
fi
echo
echo "results: $OUT"
