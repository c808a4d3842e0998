//! The frame decoder, both roles, fed arbitrary bytes in arbitrary pieces
//! the way the driver feeds it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::frame_decoder(data);
});
