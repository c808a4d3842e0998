//! Both sides of the opening handshake on arbitrary bytes: a client's
//! upgrade request as the server checks it, and a server's answer as the
//! client checks it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hvws::proto::fuzzing::handshake(data);
});
