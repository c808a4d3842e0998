//! Large payloads queued by reference (`ServerConn::send_shared`, shared
//! broadcasts): what reaches the wire, in what order, through sockets that
//! take a few bytes at a time; the backlog and the slow-consumer close
//! counting shared bytes as they count copied ones.

use hvws::proto::broadcast::Broadcast;
use hvws::proto::frame::{encode_frame, encode_header};
use hvws::proto::outbox::SHARE_MIN;
use hvws::proto::Limits;
use hvws::{Bytes, Opcode};

use crate::pair::{Pair, Side};

/// A payload whose bytes say where they are, so a byte out of place shows.
fn payload(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<u8>>())
}

fn frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    encode_frame(&mut f, true, opcode, payload, None);
    f
}

#[track_caller]
fn send_shared(p: &mut Pair, data: &Bytes) {
    let status = p
        .server
        .send_shared(Opcode::Binary, data.clone(), true, &p.server_limits.clone());
    assert!(status.is_queued(), "{status:?}");
}

#[test]
fn small_and_large_sends_interleaved_arrive_in_order_through_partial_writes() {
    let big1 = payload(SHARE_MIN, 1);
    let big2 = payload(3 * SHARE_MIN + 5, 2);
    for cap in [1_000, 4_096, 16_384 + 3, 70_000] {
        let mut p = Pair::open();
        p.wire_to_client.clear();
        p.server_write_cap = Some(cap);
        p.server_text("a");
        send_shared(&mut p, &big1);
        p.server_text("b");
        send_shared(&mut p, &big2);
        send_shared(&mut p, &big1); // back to back: header, payload, header, payload
        p.server_text("c");
        p.drive();
        assert_eq!(
            p.take_log(Side::Client),
            [
                "text a",
                &format!("binary {} bytes", big1.len()),
                "text b",
                &format!("binary {} bytes", big2.len()),
                &format!("binary {} bytes", big1.len()),
                "text c"
            ],
            "{cap} bytes a write"
        );
        let want = [
            frame(Opcode::Text, b"a"),
            frame(Opcode::Binary, &big1),
            frame(Opcode::Text, b"b"),
            frame(Opcode::Binary, &big2),
            frame(Opcode::Binary, &big1),
            frame(Opcode::Text, b"c"),
        ]
        .concat();
        assert!(p.wire_to_client == want, "{cap} bytes a write: the wire differs");
        assert_eq!(p.server.backlog(), 0);
        assert!(!p.server.has_output());
    }
}

#[test]
fn a_large_send_followed_by_a_close_arrives_before_the_close() {
    let big = payload(4 * SHARE_MIN, 3);
    let mut p = Pair::open();
    p.server_write_cap = Some(5_000);
    send_shared(&mut p, &big);
    let (now, limits) = (p.now, p.server_limits.clone());
    p.server.close(1000, "bye", now, &limits).unwrap();
    // Nothing may follow the close.
    assert_eq!(
        p.server.send_shared(Opcode::Binary, big.clone(), true, &limits),
        hvws::SendStatus::Closed
    );
    p.drive();
    assert_eq!(
        p.take_log(Side::Client),
        [
            format!("binary {} bytes", big.len()),
            "closed 1000 \"bye\" clean remote".into()
        ]
    );
    assert_eq!(p.take_log(Side::Server), ["closed 1000 \"bye\" clean local"]);
}

#[test]
fn the_backlog_counts_shared_bytes_and_a_slow_consumer_is_closed_after_them() {
    let limits = Limits {
        max_write_buffer: 2 * SHARE_MIN,
        ..Limits::default()
    };
    let mut p = Pair::open_with(limits.clone(), Limits::default());
    let big = payload(4 * SHARE_MIN, 4);
    // The peer reads nothing: the whole frame stays queued.
    p.server_write_cap = Some(0);
    send_shared(&mut p, &big);
    p.step();
    let queued = encode_len(big.len());
    assert_eq!(p.server.backlog(), queued, "header and shared payload, counted alike");
    assert_eq!(p.server.buffered(), queued);
    // Over the cap: refused, and the connection is closed as a slow
    // consumer (1008) once what is queued has gone.
    assert_eq!(
        p.server.send_shared(Opcode::Binary, big.clone(), true, &limits),
        hvws::SendStatus::Dropped
    );
    let ev = p.server.poll_event(p.now, &limits).expect("the slow consumer's close");
    assert_eq!(
        crate::pair::server_line(&ev),
        "closed 1008 \"slow consumer\" unclean local (peer is not reading; output reached the write buffer cap)"
    );
    // Part of it goes: the backlog shrinks by what was written.
    p.server_write_cap = Some(1_000);
    p.step();
    assert_eq!(
        p.server.backlog(),
        queued + 4 + 13 - 1_000,
        "the close frame queued too"
    );
    p.server_write_cap = None;
    p.drive();
    let log = p.take_log(Side::Client);
    assert_eq!(log[0], format!("binary {} bytes", big.len()));
    assert!(log[1].starts_with("closed 1008 \"slow consumer\""), "{log:?}");
}

/// A server frame's length: header plus payload.
fn encode_len(len: usize) -> usize {
    let mut h = Vec::new();
    encode_header(&mut h, true, Opcode::Binary, len, None);
    h.len() + len
}

#[test]
fn a_shared_broadcast_reaches_each_receiver_whole_and_in_order() {
    let big = payload(SHARE_MIN + 1, 5);
    let mut pairs: Vec<Pair> = (0..3).map(|_| Pair::open()).collect();
    let mut b = Broadcast::shared(Opcode::Binary, big.clone(), Vec::new());
    for (i, p) in pairs.iter_mut().enumerate() {
        p.wire_to_client.clear();
        p.server_write_cap = Some(1_000 + i * 3_000);
        p.server_text("before");
        let limits = p.server_limits.clone();
        assert!(p.server.push_broadcast(&mut b, &limits).is_queued());
        p.server_text("after");
    }
    for p in &mut pairs {
        p.drive();
        let want = [
            frame(Opcode::Text, b"before"),
            frame(Opcode::Binary, &big),
            frame(Opcode::Text, b"after"),
        ]
        .concat();
        assert!(p.wire_to_client == want, "the wire differs");
    }
}

#[test]
fn a_small_shared_payload_is_copied_and_arrives_the_same() {
    let small = payload(100, 6);
    let mut p = Pair::open();
    p.wire_to_client.clear();
    send_shared(&mut p, &small);
    p.drive();
    assert_eq!(p.take_log(Side::Client), ["binary 100 bytes"]);
    assert_eq!(p.wire_to_client, frame(Opcode::Binary, &small));
}
