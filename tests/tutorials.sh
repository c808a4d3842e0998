#!/usr/bin/env bash
# tests/tutorials.sh -- runs every tutorial chapter's example with --selftest.
#
#   bash tests/tutorials.sh [cargo profile dir: debug (default) or release]
#
# Each examples/tutorialNN_*.rs (and hvNN_*.rs, dasHV's HV-01..07 under
# the names their issue gave) starts its server on 127.0.0.1:0, drives
# clients against it, checks that what its chapter (tutorials/NN-*.md)
# teaches actually happened, and exits 0 only then; so does
# examples/tutorial_server.rs, the server HV-01 and HV-02 call, and
# examples/room_server.rs, chapter 14's (rooms on two threads). Every run has
# a time limit. Then HV-01 and HV-02 run their transcripts once more, with
# --url, against a tutorial_server started on its own, as the chapters
# show. Then tests/check_tutorial_snippets.py checks that the chapters'
# Rust blocks are code from their examples. Prints "tutorials: N passed,
# M failed"; exits 1 if any failed.
#
# Chapters run in the default build, as users get them, except those whose
# example needs cargo features (its [[example]] in Cargo.toml lists them as
# required-features): those are built with the features in FEATURES below.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PROFILE="${1:-debug}"
cd "$ROOT"

# Example name -> the features its build needs (chapter 3: json, for serde
# on `Channel` and `broadcast_json`; chapter 7: https/wss; chapters 8 and 9:
# json, for `HttpResponse::json` and `HttpRequest::json`; chapter 13: json,
# for `ClientRequest::json` and `ClientResponse::json`).
declare -A FEATURES=([tutorial03_game_loop]=json [tutorial07_https]=tls [hv03_http_server]=json
  [hv04_http_server_advanced]=json [hv02_request_builder]=json)

build=(cargo build --quiet)
[ "$PROFILE" = release ] && build+=(--release)
# The default build skips examples with required-features; each of those is
# built on its own with its features (the other binaries are left as they are).
"${build[@]}" --examples || exit 1
for name in "${!FEATURES[@]}"; do
  "${build[@]}" --features "${FEATURES[$name]}" --example "$name" || exit 1
done

passed=0
failed=0
for src in examples/tutorial[0-9][0-9]_*.rs examples/tutorial_server.rs examples/hv[0-9][0-9]_*.rs \
  examples/room_server.rs; do
  name="$(basename "$src" .rs)"
  if [ ! -x "target/$PROFILE/examples/$name" ]; then
    failed=$((failed + 1))
    echo "FAIL $name: not built (if it needs cargo features, add it to FEATURES in $0)"
    continue
  fi
  log="$(mktemp)"
  start=$(date +%s%N)
  timeout 120 "target/$PROFILE/examples/$name" --selftest >"$log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf 'ok   %-26s %6d ms  %s\n' "$name" "$ms" "$(tail -n 1 "$log")"
  else
    failed=$((failed + 1))
    printf 'FAIL %s (exit %s after %d ms); its output:\n' "$name" "$rc" "$ms"
    sed 's/^/    /' "$log"
  fi
  rm -f "$log"
done
# HV-01 and HV-02 against a tutorial_server of their own (--port 0: it
# prints the port it bound), as chapters 12 and 13 run them by hand.
server_log="$(mktemp)"
"target/$PROFILE/examples/tutorial_server" --port 0 >"$server_log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$server_log" | head -n 1)"
  [ -n "$url" ] && break
  sleep 0.1
done
for name in hv01_http_client hv02_request_builder; do
  log="$(mktemp)"
  if [ -n "$url" ] && timeout 120 "target/$PROFILE/examples/$name" --url "$url" >"$log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok   %-26s --url %s  %s\n' "$name" "$url" "$(tail -n 1 "$log")"
  else
    failed=$((failed + 1))
    printf 'FAIL %s --url %s; its output:\n' "$name" "${url:-(tutorial_server printed no URL)}"
    sed 's/^/    /' "$log" "$server_log"
  fi
  rm -f "$log"
done
kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
rm -f "$server_log"

if python3 tests/check_tutorial_snippets.py; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL tutorials/*.md: a Rust block is not in its chapter's example (see above)"
fi
echo "tutorials: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
