//! A WebSocket with permessage-deflate agreed (server or client, with or
//! without context takeover), fed arbitrary frames in arbitrary pieces:
//! the inflate path, its size limit, and the echo compressed again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::deflate_decoder(data);
});
