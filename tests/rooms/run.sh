#!/usr/bin/env bash
# tests/rooms/run.sh -- examples/room_server, chat_server --threads and
# echo_server --threads checked from outside, as clients and an operator
# would see them:
#
#   bash tests/rooms/run.sh
#
# Builds the three (debug, the default build), then tests/rooms/check.py (Python's
# standard library only: a small WebSocket client of its own) runs
# `room_server --port 0 --threads 4`, reads the port it prints, connects 12
# clients (the server's log says which thread each landed on), checks
# join/leave/say/rooms and every `error:` answer, exactly-once delivery of
# each `say` to each subscriber across the threads, then SIGTERM by PID:
# every client gets 1001 and the server exits 0. Its flags: --redis is
# refused (exit 2) in this build, without the `redis` feature (tests/redis/
# runs two room_servers with it), bad flags exit 2. Then
# `chat_server --port 0 --threads 4`: two clients on different threads get
# distinct names and see each other's join, lines and leave; GET /clients
# counts both threads. Then `echo_server --port 0 --threads 4`: /echo, and
# a /broadcast line reaching each of 12 clients once. Every wait has a
# timeout; processes are stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

cargo build --quiet --example room_server --example chat_server --example echo_server
exec python3 tests/rooms/check.py target/debug/examples
