//! The router: random patterns registered (routes, WebSocket paths, a CORS
//! policy) and random requests answered. It must never panic, and every
//! answer must be the one a naive model of the precedence rules gives
//! (see `hvws::http_fuzzing::router` for the input's layout).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::http_fuzzing::router(data);
});
