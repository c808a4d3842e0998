//! Micro-benchmarks of permessage-deflate's per-message work (feature
//! `deflate`), on the game-state snapshots of the load benchmark
//! (`benches/wsload/src/snapshot.rs`, about 1.2 KB of JSON each, 64
//! consecutive ticks): compress and inflate one message, with the server's
//! defaults (no context takeover: the thread's shared zlib state, reset
//! after every message) and with context takeover (a compressor of the
//! connection's own).
//!
//! ```text
//! cargo bench --features deflate --bench deflate
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use hvws::proto::deflate::Deflate;
use hvws::{DeflateConfig, DeflateParams};

#[allow(dead_code, missing_docs, unused_imports)]
#[path = "wsload/src/snapshot.rs"]
mod snapshot;

fn codec(no_context_takeover: bool) -> Deflate {
    let params = DeflateParams {
        no_context_takeover,
        peer_no_context_takeover: no_context_takeover,
        window_bits: 15,
        peer_window_bits: 15,
    };
    Deflate::new(params, &DeflateConfig::server())
}

fn per_message(c: &mut Criterion) {
    let ticks = snapshot::ticks(64);
    let mean = ticks.iter().map(Vec::len).sum::<usize>() / ticks.len();
    let mut g = c.benchmark_group("deflate");
    g.throughput(Throughput::Bytes(mean as u64));
    for (nct, name) in [(true, "no_context_takeover"), (false, "context_takeover")] {
        let mut d = codec(nct);
        let mut out = Vec::with_capacity(2048);
        let mut i = 0;
        g.bench_function(format!("compress/{name}"), |b| {
            b.iter(|| {
                out.clear();
                d.compress(black_box(&ticks[i % 64]), &mut out);
                i += 1;
                out.len()
            })
        });
    }
    // Inflating what a client sends with no context takeover (each
    // message on its own, as wsload and browsers that were asked to do).
    let mut sender = codec(true);
    let wire: Vec<Vec<u8>> = ticks
        .iter()
        .map(|t| {
            let mut w = Vec::new();
            sender.compress(t, &mut w);
            w
        })
        .collect();
    let mut d = codec(true);
    let mut i = 0;
    g.bench_function("inflate/no_context_takeover", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            d.decompress(black_box(&wire[i % 64]), &mut out, 1 << 20).unwrap();
            i += 1;
            out
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    per_message(&mut c);
    c.final_summary();
}
