//! The multipart form parser on arbitrary bytes, fed whole and in pieces:
//! the same form or the same error either way, bounded buffers, and never
//! a panic. The input's format is in `hvws::http_fuzzing::multipart`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::http_fuzzing::multipart(data);
});
