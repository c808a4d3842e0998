#!/usr/bin/env bash
# tests/game/run.sh -- examples/game_server and examples/game_bot checked
# from outside, as a player and an operator would see them:
#
#   bash tests/game/run.sh
#
# Builds both (release), then tests/game/check.py runs the server on a free
# loopback port with a 1 s idle timeout and 4 bots (2 good, 1 bad, 1 silent)
# against it: welcomes and ids, snapshots that move each bot by its inputs,
# the bad bot kicked with 4000 "bad input..." and the silent one closed with
# 4001 "idle" while it answers pings, GET /state and /health; then SIGTERM
# (exit 0, every bot gets 1001), a restart on the same port, the good bots
# back and the kicked ones not. Every wait has a timeout; processes are
# stopped by PID. About 20 s after the build.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

cargo build --quiet --release --features json --example game_server --example game_bot
exec python3 tests/game/check.py target/release/examples
