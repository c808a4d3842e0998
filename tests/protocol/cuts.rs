//! Frames (and frame headers) cut at every kind of boundary must come out
//! whole and in order, whether a tail waits in the connection's buffer or
//! not. This replaces a loopback test whose cuts depended on 1 ms sleeps:
//! here every cut is made on purpose.

use hvws::proto::frame::{encode_frame, Opcode};
use hvws::proto::{Limits, ServerEvent};

use crate::pair::{Pair, Side};

fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + ((i * 7 + seed) % 26) as u8).collect()
}

/// Client frames for `sizes`, alternating text and binary, and the log
/// lines the server should write for them.
fn frames(sizes: &[usize]) -> (Vec<u8>, Vec<String>) {
    let (mut wire, mut expect) = (Vec::new(), Vec::new());
    for (i, &len) in sizes.iter().enumerate() {
        let data = payload(len, i);
        if i % 2 == 0 {
            encode_frame(&mut wire, true, Opcode::Text, &data, Some([0x37, 0xfa, 0x21, 0x3d]));
            expect.push(format!("text {}", String::from_utf8(data).unwrap()));
        } else {
            encode_frame(&mut wire, true, Opcode::Binary, &data, Some([9, 8, 7, 6]));
            expect.push(format!("binary {len} bytes"));
        }
    }
    (wire, expect)
}

/// Feeds `wire` to an open server connection in reads of `cuts` bytes
/// (cycling), and returns what it reported.
fn feed_in_pieces(wire: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut p = Pair::open();
    let mut pos = 0;
    for k in 0.. {
        if pos == wire.len() {
            break;
        }
        let n = cuts[k % cuts.len()].min(wire.len() - pos);
        p.feed_server(&mut wire[pos..pos + n].to_vec());
        pos += n;
    }
    p.take_log(Side::Server)
}

#[test]
fn frames_cut_at_every_position_come_out_whole() {
    // Small frames of each header size class, cut into two reads at every
    // byte: inside a header, at its end, inside a payload, between frames.
    let (wire, expect) = frames(&[0, 1, 125, 126, 300, 3]);
    for cut in 0..=wire.len() {
        let got = feed_in_pieces(&wire, &[cut.max(1), usize::MAX]);
        assert_eq!(got, expect, "cut at {cut}");
    }
}

#[test]
fn large_frames_cut_by_reads_of_every_size_come_out_whole() {
    let (wire, expect) = frames(&[0, 1, 125, 126, 300, 65535, 65536, 70_000, 200_000, 3, 14, 64 << 10]);
    for cuts in [
        &[1, 2, 13, 14, 4096, 70_001, 5, 100_000, 1, 65_536][..],
        &[7],
        &[14],
        &[4096],
        &[65_535],
        &[256 << 10],
    ] {
        assert_eq!(feed_in_pieces(&wire, cuts), expect, "reads of {cuts:?}");
    }
}

#[test]
fn fragments_and_pings_cut_byte_by_byte() {
    let mut wire = Vec::new();
    let mask = Some([1, 2, 3, 4]);
    encode_frame(&mut wire, false, Opcode::Text, "καλη".as_bytes(), mask);
    encode_frame(&mut wire, true, Opcode::Ping, b"p", mask);
    encode_frame(&mut wire, false, Opcode::Continuation, "μέ".as_bytes(), mask);
    encode_frame(&mut wire, true, Opcode::Continuation, "ρα".as_bytes(), mask);
    let got = feed_in_pieces(&wire, &[1]);
    assert_eq!(got, ["ping \"p\"", "text καλημέρα"]);
}

#[test]
fn invalid_utf8_is_caught_however_the_frame_is_cut() {
    let mut wire = Vec::new();
    encode_frame(&mut wire, true, Opcode::Text, b"ok \xff bad", Some([1, 2, 3, 4]));
    for cut in 1..wire.len() {
        let got = feed_in_pieces(&wire, &[cut, usize::MAX]);
        assert_eq!(got.len(), 1, "cut at {cut}: {got:?}");
        assert!(got[0].starts_with("closed 1007"), "cut at {cut}: {got:?}");
    }
}

#[test]
fn no_tail_is_kept_once_frames_end_on_a_read_boundary() {
    let (wire, _) = frames(&[10, 20]);
    let mut p = Pair::open();
    let (a, b) = wire.split_at(5);
    assert!(!p.server.has_tail());
    p.feed_server(&mut a.to_vec());
    assert!(p.server.has_tail(), "the cut frame's first 5 bytes are kept");
    p.feed_server(&mut b.to_vec());
    assert!(
        !p.server.has_tail(),
        "and nothing (no box, no buffer) after the last frame"
    );
    assert_eq!(p.take_log(Side::Server).len(), 2);
    let _ = Limits::default();
}

/// A read that cut a frame header used to leave the connection decoding
/// from its own buffer for the rest of the read: each small frame after it
/// grew that buffer by a header's worth and shifted it (1,000 empty frames:
/// a 3,426-byte tail, quadratic in the frames). Once the carried frame is
/// done, the rest is read in place.
#[test]
fn small_frames_after_a_cut_header_are_read_in_place() {
    let mut wire = Vec::new();
    for _ in 0..1_000 {
        encode_frame(&mut wire, true, Opcode::Binary, b"", Some([1, 2, 3, 4]));
    }
    let mut p = Pair::open();
    let (now, limits) = (p.now, p.server_limits.clone());
    let mut first = wire[..1].to_vec();
    let input = p.server.begin_input(&mut first, Vec::new());
    p.server.end_input(input);
    let mut rest = wire[1..].to_vec();
    let mut input = p.server.begin_input(&mut rest, Vec::new());
    let (mut events, mut longest_tail) = (0, 0);
    while let Some(ev) = p.server.poll_input(&mut input, now, &limits) {
        assert!(matches!(ev, ServerEvent::Binary(ref b) if b.is_empty()), "{ev:?}");
        events += 1;
        longest_tail = longest_tail.max(input.tail_len());
    }
    p.server.end_input(input);
    assert_eq!(events, 1_000);
    assert!(longest_tail <= 14, "the tail grew to {longest_tail} bytes");
}

/// The buffer lent for a tail came back only when it was used; a read that
/// completed a kept tail dropped it, so streams of large frames (which
/// straddle reads all the time) kept sending pooled buffers to the
/// allocator.
#[test]
fn a_spare_buffer_lent_to_a_read_comes_back() {
    let mut wire = Vec::new();
    encode_frame(&mut wire, true, Opcode::Binary, &[7; 100], Some([1, 2, 3, 4]));
    let mut p = Pair::open();
    let (now, limits) = (p.now, p.server_limits.clone());
    let mut first = wire[..3].to_vec();
    let input = p.server.begin_input(&mut first, Vec::new());
    p.server.end_input(input);
    assert!(p.server.has_tail());
    let mut rest = wire[3..].to_vec();
    let mut input = p.server.begin_input(&mut rest, Vec::with_capacity(64 << 10));
    let mut got = Vec::new();
    while let Some(ev) = p.server.poll_input(&mut input, now, &limits) {
        got.push(crate::pair::server_line(&ev));
    }
    let back = p.server.end_input(input);
    assert_eq!(got, ["binary 100 bytes"]);
    assert!(back.capacity() >= 64 << 10, "{} bytes came back", back.capacity());
}

#[test]
fn pipelined_requests_after_a_cut_head_are_read_in_place() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    let one = b"GET /a HTTP/1.1\r\n\r\n";
    let mut wire = one.repeat(2_000);
    p.feed_server(&mut wire[..5].to_vec());
    let (now, limits) = (p.now, p.server_limits.clone());
    let mut rest = wire.split_off(5);
    let mut input = p.server.begin_input(&mut rest, Vec::new());
    let (mut n, mut longest_tail) = (0, 0);
    while let Some(ev) = p.server.poll_input(&mut input, now, &limits) {
        assert!(matches!(ev, ServerEvent::Request(_)));
        p.server.respond(&hvws::HttpResponse::new(204), now, &limits);
        p.server.transmit().clear();
        p.server.handle_flushed();
        n += 1;
        // A cut head takes the whole read into the tail once (where the
        // head ends is unknown); from the second request on, it is read
        // in place.
        if n > 1 {
            longest_tail = longest_tail.max(input.tail_len());
        }
    }
    p.server.end_input(input);
    assert_eq!(n, 2_000);
    assert_eq!(longest_tail, 0, "requests after the first came from the tail");
}
