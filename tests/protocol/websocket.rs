//! Messages, fragments, pings and the closing handshake between the two
//! cores, both directions.

use hvws::proto::Limits;
use hvws::{Opcode, SendError, SendStatus};

use crate::pair::{Pair, Side};

#[test]
fn text_and_binary_both_ways() {
    let mut p = Pair::open();
    p.client_text("hello server!");
    p.server_text("hello client!");
    let status = p.server.send_message(Opcode::Binary, &[0, 1, 2], &p.server_limits);
    assert_eq!(status, SendStatus::Queued);
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["text hello server!"]);
    assert_eq!(p.take_log(Side::Client), ["text hello client!", "binary 3 bytes"]);
}

#[test]
fn pings_are_answered_by_the_core_on_both_sides() {
    let mut p = Pair::open();
    let limits = p.client_limits.clone();
    p.client.send_raw(Opcode::Ping, b"c", true, &limits).unwrap();
    let limits = p.server_limits.clone();
    p.server.send_raw(Opcode::Ping, b"s", true, &limits).unwrap();
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["ping \"c\"", "pong \"s\""]);
    assert_eq!(p.take_log(Side::Client), ["ping \"s\"", "pong \"c\""]);
}

#[test]
fn fragments_go_out_in_order_with_whole_messages_held_behind_them() {
    let mut p = Pair::open();
    let l = p.server_limits.clone();
    p.server.send_raw(Opcode::Text, b"frag", false, &l).unwrap();
    // A whole message sent meanwhile waits for the final fragment.
    p.server_text("after");
    p.server.send_raw(Opcode::Ping, b"", true, &l).unwrap();
    p.server.send_raw(Opcode::Continuation, b"ment", true, &l).unwrap();
    p.drive();
    assert_eq!(p.take_log(Side::Client), ["ping \"\"", "text fragment", "text after"]);
    assert_eq!(
        p.server.send_raw(Opcode::Continuation, b"x", true, &l),
        Err(SendError::InvalidOpcode(Opcode::Continuation)),
        "no fragmented message is open"
    );
}

#[test]
fn the_peer_address_is_known_before_and_after_the_upgrade() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    assert_eq!(p.server.peer(), peer, "the HTTP phase");
    assert!(!p.server.is_tls());
    p.drive();
    assert!(p.server.info().is_some(), "a WebSocket now");
    assert_eq!(p.server.peer(), peer, "from the channel's info");
    assert_eq!(p.server.info().map(|i| i.peer_addr()), Some(peer));
    assert!(!p.server.is_tls());
    let (now, l) = (p.now, p.client_limits.clone());
    p.client.close(1000, "bye", now, &l).unwrap();
    p.drive();
    assert!(p.server.info().is_none(), "released after its close was reported");
    assert_eq!(p.server.peer().to_string(), "0.0.0.0:0", "documented: no longer known");
}

#[test]
fn frames_held_behind_each_fragmented_send_are_counted_and_follow_it() {
    let mut p = Pair::open();
    let l = p.server_limits.clone();
    // Twice: the holding place made for the first send is gone after it,
    // and made again for the second.
    for round in 0..2 {
        p.server.send_raw(Opcode::Binary, b"ab", false, &l).unwrap();
        let before = p.server.buffered();
        p.server_text("held");
        assert_eq!(p.server.buffered(), before + 6, "round {round}: the held frame counts");
        p.server.send_raw(Opcode::Continuation, b"cd", true, &l).unwrap();
        p.drive();
        assert_eq!(
            p.take_log(Side::Client),
            ["binary 4 bytes", "text held"],
            "round {round}"
        );
        assert_eq!(p.server.buffered(), 0);
    }
}

#[test]
fn a_close_started_by_the_server_is_the_same_close_on_both_sides() {
    let mut p = Pair::open();
    let (now, l) = (p.now, p.server_limits.clone());
    p.server.close(4000, "kicked", now, &l).unwrap();
    assert_eq!(p.server.send_message(Opcode::Text, b"late", &l), SendStatus::Closed);
    p.drive();
    assert_eq!(p.take_log(Side::Client), ["closed 4000 \"kicked\" clean remote"]);
    // The server reports the close it started: its own code and reason
    // (the client's answer echoes the code only).
    assert_eq!(p.take_log(Side::Server), ["closed 4000 \"kicked\" clean local"]);
    assert!(p.server_gone && p.client_gone, "both sockets are closed");
}

#[test]
fn a_close_started_by_the_client_is_answered_and_reported_once() {
    let mut p = Pair::open();
    let (now, l) = (p.now, p.client_limits.clone());
    p.client.close(1000, "bye", now, &l).unwrap();
    assert!(p.client.is_closing());
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["closed 1000 \"bye\" clean remote"]);
    assert_eq!(p.take_log(Side::Client), ["closed 1000 \"bye\" clean local"]);
    assert!(p.server_gone && p.client_gone);
}

#[test]
fn a_reason_too_long_for_a_close_frame_is_cut_at_a_character_boundary() {
    let mut p = Pair::open();
    let (now, l) = (p.now, p.server_limits.clone());
    // 200 bytes of a reason built from a parse error, say: it must still
    // kick, with as much of the reason as fits (123 bytes, whole chars).
    let reason = format!("bad input {}", "é".repeat(95));
    p.server.close(4000, &reason, now, &l).unwrap();
    p.drive();
    // 10 ASCII bytes and 56 two-byte chars: the 57th would end at byte 124.
    let cut = &reason[..122];
    assert_eq!(p.take_log(Side::Client), [format!("closed 4000 {cut:?} clean remote")]);
    assert_eq!(p.take_log(Side::Server), [format!("closed 4000 {cut:?} clean local")]);
}

#[test]
fn close_arguments_are_checked_before_anything_is_queued() {
    let mut p = Pair::open();
    let (now, l) = (p.now, p.client_limits.clone());
    assert_eq!(
        p.client.close(1001, "", now, &l),
        Err(SendError::InvalidCloseCode(1001))
    );
    assert!(p.client.is_open(), "nothing was sent");
    let l = p.server_limits.clone();
    assert_eq!(
        p.server.close(1006, "", now, &l),
        Err(SendError::InvalidCloseCode(1006))
    );
    assert_eq!(p.server.close(1011, "oops", now, &l), Ok(()), "servers may send 1011");
}

#[test]
fn a_frame_over_the_limit_fails_the_receiver_with_1009() {
    let small = Limits {
        max_message_size: 10,
        ..Limits::default()
    };
    let mut p = Pair::open_with(small, Limits::default());
    p.client_text("this is more than ten bytes");
    p.drive();
    assert_eq!(
        p.take_log(Side::Server),
        ["closed 1009 \"message of at least 27 bytes exceeds the limit of 10\" unclean local (protocol violation: message of at least 27 bytes exceeds the limit of 10)"]
    );
    assert_eq!(
        p.take_log(Side::Client),
        ["closed 1009 \"message of at least 27 bytes exceeds the limit of 10\" clean remote"]
    );
}

#[test]
fn a_peer_that_stops_reading_meets_the_write_cap() {
    let capped = Limits {
        max_write_buffer: 1000,
        ..Limits::default()
    };
    let mut p = Pair::open_with(capped, Limits::default());
    let l = p.server_limits.clone();
    // What one tick queues never counts, however much it is...
    for _ in 0..10 {
        assert!(p.server.send_message(Opcode::Binary, &[7; 500], &l).is_queued());
    }
    // ...but what a flush could not write does: the client is not reading.
    p.server.handle_flushed();
    assert_eq!(p.server.send_message(Opcode::Binary, b"x", &l), SendStatus::Dropped);
    let ev = p.server.poll_event(p.now, &l).expect("the slow consumer is closed");
    assert_eq!(
        crate::pair::server_line(&ev),
        "closed 1008 \"slow consumer\" unclean local (peer is not reading; output reached the write buffer cap)"
    );
    assert!(p.server.poll_event(p.now, &l).is_none(), "reported once");
}

#[test]
fn dropped_tcp_is_1006_on_the_side_that_sees_it() {
    let mut p = Pair::open();
    let l = p.server_limits.clone();
    let ev = p
        .server
        .handle_eof(p.now, &l)
        .expect("an open websocket reports its end");
    assert_eq!(crate::pair::server_line(&ev), "closed 1006 \"\" unclean remote");
    assert!(p.server.handle_eof(p.now, &l).is_none(), "once");
}
