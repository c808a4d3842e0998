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

/// The hand-made seeds (`fuzz/seeds/router/`: parameters and
/// backtracking, wildcards and decoding, conflicts, CORS), then the corpus
/// the fuzzer kept; each run checks every answer against a naive model of
/// the router, so a seed fails if routing changes, not only if it panics.
#[test]
fn router_seeds_and_corpus() {
    let run = hvws::http_fuzzing::router;
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/router");
    let mut count = 0;
    for entry in fs::read_dir(&seeds).unwrap_or_else(|e| panic!("{}: {e}", seeds.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        assert!(
            std::panic::catch_unwind(|| run(&data)).is_ok(),
            "{} panicked",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 5, "only {count} seeds in {}", seeds.display());
    replay("router", run);
}

/// The seeds `hvws::http_fuzzing::multipart_seeds` makes (each must
/// parse, and as committed in `fuzz/seeds/`), then the corpus the fuzzer
/// kept.
#[test]
fn multipart_seeds_and_corpus() {
    let run = hvws::http_fuzzing::multipart;
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/multipart");
    for (name, seed) in hvws::http_fuzzing::multipart_seeds() {
        let (ct, body) = split_multipart_seed(&seed);
        let parsed = hvws::MultipartParser::new(ct, &hvws::FormLimits::default())
            .and_then(|mut p| p.feed(body).map(|()| p))
            .and_then(|p| p.finish());
        assert!(parsed.is_ok(), "seed {name} is not a valid form: {parsed:?}");
        assert!(std::panic::catch_unwind(|| run(&seed)).is_ok(), "seed {name} panicked");
        let committed = fs::read(seeds.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(committed, seed, "fuzz/seeds/multipart/{name} is stale: regenerate it");
    }
    replay("multipart", run);
}

/// The Content-Type line and the body of a `multipart` fuzz input.
fn split_multipart_seed(seed: &[u8]) -> (&str, &[u8]) {
    let rest = &seed[1..];
    let eol = rest.iter().position(|&b| b == b'\n').expect("a Content-Type line");
    (std::str::from_utf8(&rest[..eol]).unwrap(), &rest[eol + 1..])
}

/// Writes the seeds into `fuzz/seeds/multipart/`:
/// `cargo test --test fuzz_regressions -- --ignored write_multipart_seeds`.
#[test]
#[ignore = "writes fuzz/seeds/multipart; run by hand when the seeds change"]
fn write_multipart_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/multipart");
    fs::create_dir_all(&dir).unwrap();
    for (name, seed) in hvws::http_fuzzing::multipart_seeds() {
        fs::write(dir.join(name), seed).unwrap();
    }
}

/// The seeds `hvws::proto::fuzzing::deflate_decoder_seeds` makes (as now,
/// and as committed in `fuzz/seeds/`), then the corpus the fuzzer kept.
#[cfg(feature = "deflate")]
#[test]
fn deflate_decoder_seeds_and_corpus() {
    let run = hvws::proto::fuzzing::deflate_decoder;
    for (name, seed) in hvws::proto::fuzzing::deflate_decoder_seeds() {
        assert!(std::panic::catch_unwind(|| run(&seed)).is_ok(), "seed {name} panicked");
    }
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/deflate_decoder");
    for entry in fs::read_dir(&seeds).unwrap_or_else(|e| panic!("{}: {e}", seeds.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        assert!(
            std::panic::catch_unwind(|| run(&data)).is_ok(),
            "{} panicked",
            path.display()
        );
    }
    replay("deflate_decoder", run);
}

/// Writes the seeds into `fuzz/seeds/deflate_decoder/`:
/// `cargo test --features deflate --test fuzz_regressions -- --ignored write_deflate_decoder_seeds`.
#[cfg(feature = "deflate")]
#[test]
#[ignore = "writes fuzz/seeds/deflate_decoder; run by hand when the seeds change"]
fn write_deflate_decoder_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/deflate_decoder");
    fs::create_dir_all(&dir).unwrap();
    for (name, seed) in hvws::proto::fuzzing::deflate_decoder_seeds() {
        fs::write(dir.join(name), seed).unwrap();
    }
}

/// The hand-made seeds of `target` (`fuzz/seeds/<target>/`), each run
/// through `run`.
fn replay_seeds(target: &str, run: fn(&[u8])) {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut count = 0;
    for entry in fs::read_dir(&seeds).unwrap_or_else(|e| panic!("{}: {e}", seeds.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        assert!(
            std::panic::catch_unwind(|| run(&data)).is_ok(),
            "{} panicked",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 5, "only {count} seeds in {}", seeds.display());
}

/// The HTTP client's response reader: the seeds (`fuzz/seeds/http_response/`:
/// lengths, chunked with extensions and trailers, until close, interim
/// heads, bodiless statuses, HEAD), then the corpus, each read whole and in
/// pieces that must agree.
#[test]
fn http_response_seeds_and_corpus() {
    replay_seeds("http_response", hvws::proto::fuzzing::http_response);
    replay("http_response", hvws::proto::fuzzing::http_response);
}

/// The SSE reader: the seeds, then the corpus, whole and in pieces.
#[test]
fn sse_reader_seeds_and_corpus() {
    replay_seeds("sse_reader", hvws::proto::fuzzing::sse_reader);
    replay("sse_reader", hvws::proto::fuzzing::sse_reader);
}
