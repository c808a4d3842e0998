//! Replays every input the fuzzers kept (`fuzz/regressions/`, a minimized
//! corpus that covers what they reached) through the same entry points the
//! fuzz targets use, so `cargo test` fails if a parser that once handled
//! them starts to panic or break an invariant.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        count += 1;
    }
    assert!(count > 100, "{target}: only {count} inputs in {}", dir.display());
}

#[test]
fn http_head_corpus() {
    replay("http_head", hvws::proto::fuzzing::http_head);
}

#[test]
fn handshake_corpus() {
    replay("handshake", hvws::proto::fuzzing::handshake);
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", hvws::proto::fuzzing::frame_decoder);
}
