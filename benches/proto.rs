//! Micro-benchmarks of the sans-IO core, no sockets: frame decode (unmask,
//! UTF-8 check, event) and encode for 32 B, 1 KiB and 64 KiB payloads, and
//! the server side of the opening handshake.
//!
//! ```text
//! cargo bench --bench proto
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use hvws::proto::frame::{encode_frame, Opcode};
use hvws::proto::handshake::{encode_accept, validate_request};
use hvws::proto::http1::parse_head;
use hvws::proto::{Decoded, Decoder, Event, Role};

const SIZES: [(usize, &str); 3] = [(32, "32B"), (1024, "1KiB"), (64 << 10, "64KiB")];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (len, name) in SIZES {
        for (op, kind) in [(Opcode::Text, "text"), (Opcode::Binary, "binary")] {
            let mut wire = Vec::new();
            encode_frame(&mut wire, true, op, &payload(len), Some([0x37, 0xfa, 0x21, 0x3d]));
            let mut decoder = Decoder::new(Role::Server, 1 << 20, 1 << 20);
            g.throughput(Throughput::Bytes(len as u64));
            // The decoder unmasks in place, so each run gets a fresh copy
            // (made outside the timed part).
            g.bench_function(format!("{kind}/{name}"), |b| {
                b.iter_batched_ref(
                    || wire.clone(),
                    |buf| match decoder.decode(buf) {
                        // The event is where a whole text frame's UTF-8 is checked.
                        Ok(Decoded::Frame { frame: Some(f), .. }) => match f.event(buf) {
                            Ok(Event::Text(t)) => black_box(t.len()),
                            Ok(Event::Binary(d)) => black_box(d.len()),
                            other => panic!("unexpected {other:?}"),
                        },
                        other => panic!("unexpected {other:?}"),
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (len, name) in SIZES {
        let data = payload(len);
        let mut out = Vec::with_capacity(len + 14);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("server/{name}"), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, Opcode::Binary, black_box(&data), None);
                black_box(out.len())
            })
        });
        g.bench_function(format!("client-masked/{name}"), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, Opcode::Binary, black_box(&data), Some([1, 2, 3, 4]));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// What a browser sends (Chromium, 2024), Sec-WebSocket-Key from the RFC.
const BROWSER_UPGRADE: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: game.example.com:8080\r\n\
Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\nOrigin: https://game.example.com\r\nSec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn handshake(c: &mut Criterion) {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut g = c.benchmark_group("handshake");
    g.bench_function("parse+validate", |b| {
        b.iter(|| {
            let head = parse_head(black_box(BROWSER_UPGRADE), peer, 8192, 0).unwrap().unwrap();
            black_box(validate_request(&head.request).is_ok())
        })
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("parse+validate+accept", |b| {
        b.iter(|| {
            let head = parse_head(black_box(BROWSER_UPGRADE), peer, 8192, 0).unwrap().unwrap();
            let key = validate_request(&head.request).unwrap();
            out.clear();
            encode_accept(key, None, None, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

// By hand rather than `criterion_group!`, whose generated function would
// trip the crate's `missing_docs = "deny"`.
fn main() {
    // Short defaults keep a full run near a minute; flags still override.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    decode(&mut c);
    encode(&mut c);
    handshake(&mut c);
    c.final_summary();
}
