//! The HTTP client's response reader (`Exchange`) on arbitrary server
//! bytes, fed whole and in pieces with small caps: the same head, body and
//! end either way, and never a panic. The input's format is in
//! `hvws::proto::fuzzing::http_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::http_response(data);
});
