//! The Server-Sent Events reader on arbitrary bytes, fed whole and in
//! pieces: the same events and errors either way, within the cap, and never
//! a panic. The input's format is in `hvws::proto::fuzzing::sse_reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::sse_reader(data);
});
