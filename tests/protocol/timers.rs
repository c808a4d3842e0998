//! Every deadline of a connection, on the pair's clock: the server's pings
//! and idle timeout, the request timeout, the close timeout, the client's
//! keepalive and connect timeout. Nothing here sleeps.

use std::time::Duration;

use hvws::proto::timer::Timer;
use hvws::proto::Limits;

use crate::pair::{Pair, Side};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn keepalive(ping: u64, idle: u64) -> Limits {
    Limits {
        ping_interval: Some(secs(ping)),
        idle_timeout: Some(secs(idle)),
        ..Limits::default()
    }
}

#[test]
fn the_server_pings_a_silent_client_which_answers_and_stays() {
    let mut p = Pair::open_with(keepalive(30, 60), Limits::default());
    assert_eq!(p.server.timer().map(|d| d.timer), Some(Timer::Keepalive));
    p.advance(secs(29));
    assert_eq!(p.take_log(Side::Client), Vec::<String>::new());
    p.advance(secs(1));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
    assert_eq!(
        p.take_log(Side::Server),
        ["pong \"00000001\""],
        "the client core answers by itself"
    );
    // The pong counts as life: hours later, still open.
    for _ in 0..240 {
        p.advance(secs(30));
    }
    assert!(p.server.is_open());
    assert_eq!(p.take_log(Side::Server).len(), 240, "a pong per ping");
}

#[test]
fn the_server_gives_up_on_a_dead_client_at_the_idle_timeout() {
    let mut p = Pair::open_with(keepalive(30, 60), Limits::default());
    p.cut_to_server = true; // the client's answers are lost
    p.advance(secs(30));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
    p.advance(secs(29));
    assert_eq!(p.take_log(Side::Server), Vec::<String>::new(), "59 s: not yet");
    p.advance(secs(1));
    // The idle close is a closing handshake like any other: the server
    // waits close_timeout (5 s) for the answer, which never comes.
    assert_eq!(p.take_log(Side::Server), Vec::<String>::new(), "60 s: close sent");
    // The server's close reaches the client (only the client's bytes are
    // lost), which answers it and reports a clean close it did not start.
    assert_eq!(p.take_log(Side::Client), ["closed 1001 \"idle timeout\" clean remote"]);
    p.advance(secs(5));
    assert_eq!(
        p.take_log(Side::Server),
        ["closed 1001 \"idle timeout\" unclean local (peer sent nothing within the idle timeout)"]
    );
}

fn game_idle(idle: u64) -> Limits {
    Limits {
        ping_interval: Some(secs(3)),
        idle_timeout: Some(secs(idle)),
        idle_activity: hvws::IdleActivity::DataMessages,
        idle_close_code: 4001,
        idle_close_reason: "idle".into(),
        ..Limits::default()
    }
}

#[test]
fn game_idle_closes_a_player_who_only_answers_pings_and_both_sides_agree() {
    let mut p = Pair::open_with(game_idle(10), Limits::default());
    let opened = p.server.last_message_at(p.now).unwrap();
    p.advance(secs(3));
    p.advance(secs(3));
    p.advance(secs(3));
    assert_eq!(
        p.take_log(Side::Server),
        ["pong \"00000001\"", "pong \"00000002\"", "pong \"00000003\""],
        "alive"
    );
    assert_eq!(p.server.last_message_at(p.now), Some(opened), "pongs are not messages");
    p.advance(secs(1));
    // 10 s without a message: the game's close, answered at once by the
    // live client, so both sides report the same clean close.
    assert_eq!(
        p.take_log(Side::Server),
        ["closed 4001 \"idle\" clean local (peer sent nothing within the idle timeout)"]
    );
    assert_eq!(
        p.take_log(Side::Client),
        [
            "ping \"00000001\"",
            "ping \"00000002\"",
            "ping \"00000003\"",
            "closed 4001 \"idle\" clean remote"
        ]
    );
}

#[test]
fn game_idle_counts_from_the_last_data_message() {
    let mut p = Pair::open_with(game_idle(10), Limits::default());
    p.advance(secs(6));
    p.client_text("move");
    p.drive();
    let moved = p.server.last_message_at(p.now).unwrap();
    assert_eq!(moved, p.now);
    p.advance(secs(6));
    assert!(p.server.is_open(), "12 s after opening, 6 s after the move");
    p.take_log(Side::Server);
    p.advance(secs(4));
    assert_eq!(
        p.take_log(Side::Server),
        ["closed 4001 \"idle\" clean local (peer sent nothing within the idle timeout)"]
    );
}

#[test]
fn data_from_the_client_postpones_the_ping() {
    let mut p = Pair::open_with(keepalive(30, 60), Limits::default());
    p.advance(secs(20));
    p.client_text("still here");
    p.drive();
    p.advance(secs(20)); // 40 s after open, 20 s after the message
    assert_eq!(p.take_log(Side::Client), Vec::<String>::new(), "no ping yet");
    p.advance(secs(10));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
}

#[test]
fn a_zero_ping_interval_counts_as_one_millisecond() {
    let limits = Limits {
        ping_interval: Some(Duration::ZERO),
        ..Limits::default()
    };
    let mut p = Pair::open_with(limits, Limits::default());
    p.advance(Duration::from_millis(1));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
}

#[test]
fn a_request_that_never_completes_gets_408() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    let mut partial = b"GET /slow HTTP/1.1\r\nHost: x\r\n".to_vec();
    p.feed_server(&mut partial);
    assert_eq!(p.server.timer().map(|d| d.timer), Some(Timer::Request));
    p.now += secs(9);
    p.fire_timeouts();
    assert!(p.server.transmit().is_empty());
    p.now += secs(1);
    p.fire_timeouts();
    let out = String::from_utf8(p.server.transmit().take_all()).unwrap();
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"));
    assert!(!p.server.wants_input());
}

#[test]
fn an_idle_keep_alive_connection_gets_408_counted_from_its_last_answer() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    p.now += secs(8);
    let mut req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    p.feed_server(&mut req);
    let out = String::from_utf8(p.server.transmit().take_all()).unwrap();
    assert!(out.starts_with("HTTP/1.1 404"));
    p.now += secs(9); // 17 s since connecting, 9 since the request
    p.fire_timeouts();
    assert!(p.server.transmit().is_empty());
    p.now += secs(1);
    p.fire_timeouts();
    let out = String::from_utf8(p.server.transmit().take_all()).unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
}

#[test]
fn an_unanswered_close_is_reported_with_our_code_and_not_clean() {
    let mut p = Pair::open();
    p.cut_to_server = true;
    let (now, l) = (p.now, p.server_limits.clone());
    p.server.close(1000, "bye", now, &l).unwrap();
    p.drive();
    assert_eq!(
        p.server.timer().map(|d| d.timer),
        Some(hvws::proto::timer::Timer::CloseHandshake)
    );
    p.advance(secs(5));
    assert_eq!(
        p.take_log(Side::Server),
        ["closed 1000 \"bye\" unclean local (peer did not complete the closing handshake in time)"]
    );
    assert!(p.server_gone, "the socket is dropped at once");
}

#[test]
fn the_client_pings_a_quiet_server_and_gives_up_on_a_dead_one() {
    let mut p = Pair::open_with(Limits::default(), keepalive(5, 15));
    p.advance(secs(5));
    assert_eq!(p.take_log(Side::Server), ["ping \"00000001\""]);
    assert_eq!(p.take_log(Side::Client), ["pong \"00000001\""]);
    p.cut_to_client = true; // the server's answers are lost from now on
    p.advance(secs(5));
    p.advance(secs(5));
    assert_eq!(p.take_log(Side::Server), ["ping \"00000002\"", "ping \"00000003\""]);
    p.advance(secs(4));
    assert_eq!(
        p.take_log(Side::Client),
        Vec::<String>::new(),
        "14 s after the last pong"
    );
    p.advance(secs(1));
    assert_eq!(p.take_log(Side::Server), ["closed 1001 \"idle timeout\" clean remote"]);
    p.advance(secs(5)); // close_timeout: the server's answer is lost
    assert_eq!(
        p.take_log(Side::Client),
        ["closed 1001 \"idle timeout\" unclean local (peer sent nothing within the idle timeout)"]
    );
}

#[test]
fn a_handshake_that_never_completes_times_out() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    p.cut_to_client = true; // the 101 never arrives
    p.drive();
    assert_eq!(p.client.timer().map(|d| d.timer), Some(Timer::Connect));
    p.advance(secs(10));
    assert_eq!(
        p.take_log(Side::Client),
        ["closed 1006 \"\" unclean local (connecting timed out)"]
    );
}
