//! The round-trip time a channel's info reports, timed by the server's
//! keepalive pings on the pair's clock: each ping carries its number, and
//! only the pong that echoes the latest one times it.

use std::time::Duration;

use hvws::proto::Limits;
use hvws::Opcode;

use crate::pair::{Pair, Side};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pings after 1 s of silence; no idle timeout.
fn pinging() -> Limits {
    Limits {
        ping_interval: Some(Duration::from_secs(1)),
        ..Limits::default()
    }
}

impl Pair {
    /// Lets the server's ping due now reach the client (which queues its
    /// pong), then holds the pong back for `delay` before delivering it.
    fn ping_with_pong_after(&mut self, delay: Duration) {
        self.fire_timeouts();
        self.step(); // the ping reaches the client; its pong is queued there
        self.now += delay;
        self.drive(); // the pong reaches the server
    }

    fn rtt(&self) -> (Option<Duration>, Option<Duration>) {
        let info = self.server.info().expect("the channel's info");
        (info.rtt(), info.smoothed_rtt())
    }

    /// The client queues a pong of its own with `payload`.
    fn client_pong(&mut self, payload: &[u8]) {
        let limits = self.client_limits.clone();
        let status = self.client.send_raw(Opcode::Pong, payload, true, &limits).unwrap();
        assert!(status.is_queued());
    }
}

#[test]
fn a_pong_40_ms_after_the_ping_is_a_40_ms_round_trip() {
    let mut p = Pair::open_with(pinging(), Limits::default());
    assert_eq!(p.rtt(), (None, None), "nothing measured before a ping");
    p.now += Duration::from_secs(1);
    p.ping_with_pong_after(ms(40));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
    assert_eq!(p.take_log(Side::Server), ["pong \"00000001\""]);
    assert_eq!(p.rtt(), (Some(ms(40)), Some(ms(40))), "the first sample sets both");

    // The next ping, 1 s after the pong: 120 ms this time. The smoothed
    // figure moves an eighth of the way: 40 + (120 - 40) / 8 = 50.
    p.now += Duration::from_secs(1);
    p.ping_with_pong_after(ms(120));
    assert_eq!(p.take_log(Side::Server), ["pong \"00000002\""]);
    assert_eq!(p.rtt(), (Some(ms(120)), Some(ms(50))));
}

#[test]
fn an_unsolicited_pong_times_nothing() {
    let mut p = Pair::open_with(pinging(), Limits::default());
    p.now += ms(300);
    p.client_pong(b"");
    p.drive();
    assert_eq!(
        p.take_log(Side::Server),
        ["pong \"\""],
        "the application still hears it"
    );
    assert_eq!(p.rtt(), (None, None));
}

#[test]
fn a_pong_with_another_payload_times_nothing() {
    let mut p = Pair::open_with(pinging(), Limits::default());
    p.cut_to_server = true; // the client's own answer is lost
    p.advance(Duration::from_secs(1));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\""]);
    p.cut_to_server = false;
    p.now += ms(30);
    p.client_pong(b"00000002"); // not the ping that is out
    p.client_pong(b"hello");
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["pong \"00000002\"", "pong \"hello\""]);
    assert_eq!(p.rtt(), (None, None));
    // The right one still counts, once.
    p.now += ms(10);
    p.client_pong(b"00000001");
    p.client_pong(b"00000001");
    p.drive();
    assert_eq!(p.rtt(), (Some(ms(40)), Some(ms(40))));
}

#[test]
fn a_late_pong_to_an_earlier_ping_times_nothing() {
    let mut p = Pair::open_with(pinging(), Limits::default());
    p.cut_to_server = true;
    p.advance(Duration::from_secs(1));
    p.advance(Duration::from_secs(1));
    assert_eq!(p.take_log(Side::Client), ["ping \"00000001\"", "ping \"00000002\""]);
    p.cut_to_server = false;
    p.now += ms(5);
    p.client_pong(b"00000001");
    p.drive();
    assert_eq!(p.rtt(), (None, None), "ping 1's pong after ping 2 went out");
    p.client_pong(b"00000002");
    p.drive();
    assert_eq!(p.rtt().0, Some(ms(5)), "ping 2 went out 5 ms ago");
}
