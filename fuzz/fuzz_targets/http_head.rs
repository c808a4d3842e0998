//! The HTTP/1.1 request-head parser on arbitrary bytes: it must answer
//! Partial, a request, or a named error, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::http_head(data);
});
