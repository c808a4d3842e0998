//! Review probes (scratch only).

use std::time::Instant as Wall;

use hvws::proto::frame::{encode_frame, Opcode};
use hvws::proto::ServerEvent;

use crate::pair::{Pair, Side};

/// `n` masked, empty binary frames (6 bytes each): a client sending many
/// tiny messages (inputs, acks) in one burst.
fn tiny_frames(n: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..n {
        encode_frame(&mut wire, true, Opcode::Binary, b"", Some([1, 2, 3, 4]));
    }
    wire
}

fn feed_timed(p: &mut Pair, reads: &mut [Vec<u8>]) -> std::time::Duration {
    let t = Wall::now();
    for r in reads.iter_mut() {
        p.feed_server(r);
    }
    t.elapsed()
}

/// A read that ends one byte into a frame header puts the connection in
/// "tail" mode; each step then tops the tail up with 14 bytes but consumes
/// only 6, so the tail grows by 8 bytes per frame and every `next()` drains
/// (memmoves) it: quadratic in the frames of the read.
#[test]
fn tiny_frames_after_a_cut_header_are_not_quadratic() {
    const N: usize = 40_000; // 240 KB: fits one 256 KiB read
    let wire = tiny_frames(N);

    let mut whole = Pair::open();
    let t_whole = feed_timed(&mut whole, &mut [wire.clone()]);
    assert_eq!(whole.take_log(Side::Server).len(), N);

    let mut cut = Pair::open();
    let t_cut = feed_timed(&mut cut, &mut [wire[..1].to_vec(), wire[1..].to_vec()]);
    assert_eq!(cut.take_log(Side::Server).len(), N);

    eprintln!("whole read: {t_whole:?}; cut after 1 header byte: {t_cut:?}");
    assert!(
        t_cut < t_whole * 5 + std::time::Duration::from_millis(100),
        "a 1-byte cut made the same read {:.1}x slower",
        t_cut.as_secs_f64() / t_whole.as_secs_f64()
    );
}

/// `begin_input(data, spare)` drops the pooled spare when the connection
/// already has a tail, and `end_input` then hands back `Vec::new()`: the
/// pool loses one (possibly 1 MiB) buffer per read that continues a frame.
#[test]
fn a_spare_buffer_handed_in_is_handed_back() {
    let mut p = Pair::open();
    let limits = p.server_limits.clone();
    let now = p.now;
    let mut wire = Vec::new();
    encode_frame(&mut wire, true, Opcode::Binary, &[7u8; 100], Some([1, 2, 3, 4]));
    // First read: 3 bytes, kept as the tail.
    let mut first = wire[..3].to_vec();
    let input = p.server.begin_input(&mut first, Vec::new());
    let _ = p.server.end_input(input);
    // Second read completes the frame; the driver hands in a pooled spare.
    let mut rest = wire[3..].to_vec();
    let spare = Vec::with_capacity(64 << 10);
    let mut input = p.server.begin_input(&mut rest, spare);
    let mut got = 0;
    while let Some(ev) = p.server.poll_input(&mut input, now, &limits) {
        if let ServerEvent::Binary(b) = ev {
            got += b.len();
        }
    }
    let back = p.server.end_input(input);
    assert_eq!(got, 100);
    assert!(
        back.capacity() >= 64 << 10,
        "spare of 64 KiB handed in, {} bytes of capacity handed back",
        back.capacity()
    );
}

#[test]
fn scaling() {
    for n in [10_000usize, 20_000, 40_000, 80_000] {
        let wire = tiny_frames(n);
        let mut whole = Pair::open();
        let t_whole = feed_timed(&mut whole, &mut [wire.clone()]);
        let mut cut = Pair::open();
        let t_cut = feed_timed(&mut cut, &mut [wire[..1].to_vec(), wire[1..].to_vec()]);
        assert_eq!(cut.take_log(Side::Server).len(), n);
        eprintln!("n={n}: whole {t_whole:?}, cut {t_cut:?}");
    }
}

#[test]
fn sizes() {
    eprintln!("size_of ServerConn = {}", std::mem::size_of::<hvws::proto::ServerConn>());
    eprintln!("size_of ClientConn = {}", std::mem::size_of::<hvws::proto::ClientConn>());
    eprintln!("size_of ChannelInfo = {}", std::mem::size_of::<hvws::ChannelInfo>());
    eprintln!("size_of Decoder = {}", std::mem::size_of::<hvws::proto::Decoder>());
}

#[test]
fn pipelined_requests_after_a_cut_head() {
    let req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    for n in [2_000usize, 4_000, 8_000] {
        let wire: Vec<u8> = req.iter().copied().cycle().take(req.len() * n).collect();
        let mut whole = Pair::new(Default::default(), Default::default());
        let t_whole = feed_timed(&mut whole, &mut [wire.clone()]);
        let mut cut = Pair::new(Default::default(), Default::default());
        let t_cut = feed_timed(&mut cut, &mut [wire[..3].to_vec(), wire[3..].to_vec()]);
        assert_eq!(cut.take_log(Side::Server).len(), n);
        eprintln!("http n={n} ({} KB): whole {t_whole:?}, cut {t_cut:?}", wire.len() >> 10);
    }
}

/// Deterministic form of the quadratic probe: once the frame that straddled
/// the read is done, the tail should hold at most one cut header's worth.
#[test]
fn the_tail_does_not_grow_with_tiny_frames_after_a_cut_header() {
    let wire = tiny_frames(1_000);
    let mut p = Pair::open();
    let (now, limits) = (p.now, p.server_limits.clone());
    let mut first = wire[..1].to_vec();
    let input = p.server.begin_input(&mut first, Vec::new());
    let _ = p.server.end_input(input);
    let mut rest = wire[1..].to_vec();
    let mut input = p.server.begin_input(&mut rest, Vec::new());
    let (mut events, mut max_tail) = (0, 0);
    while let Some(ev) = p.server.poll_input(&mut input, now, &limits) {
        drop(ev);
        events += 1;
        max_tail = max_tail.max(input.tail_len());
    }
    let _ = p.server.end_input(input);
    assert_eq!(events, 1_000);
    assert!(max_tail <= 14, "tail grew to {max_tail} bytes");
}
