//! Round-trip time from the keepalive's pings: which ping is out and when
//! ([`PingClock`]), and what its pongs measured ([`Rtt`]). No clock here:
//! the instants are the `now`s the connection is driven with.
//!
//! Each ping carries its own payload (a sequence number as 8 hex digits),
//! so a pong is matched to the ping it answers: an unsolicited pong (a
//! peer's heartbeat), a pong to an application's own ping, or a late pong
//! to an earlier ping measures nothing. Only the latest ping is kept, as a
//! peer may answer only the latest of several (RFC 6455 §5.5.3).

use std::time::Duration;

/// The keepalive's latest ping: its number, whether it is out, and when it
/// went out. A view of fields its connection keeps among its others (a
/// struct of them would carry padding into every open WebSocket).
#[derive(Debug)]
pub(crate) struct PingClock<'a> {
    seq: &'a mut u32,
    /// The ping numbered `seq` awaits its pong.
    out: &'a mut bool,
    /// When it was queued: microseconds on a clock that wraps every
    /// 71.6 minutes (`ws::clock`), so a pong that takes longer than that
    /// measures the remainder (nothing else can tell, and a round trip that
    /// long is no round trip a game can use).
    sent_us: &'a mut u32,
}

impl<'a> PingClock<'a> {
    pub fn new(seq: &'a mut u32, out: &'a mut bool, sent_us: &'a mut u32) -> PingClock<'a> {
        PingClock { seq, out, sent_us }
    }

    /// A new ping is queued at `now_us` (a microsecond stamp): its payload.
    pub fn ping(&mut self, now_us: u32) -> [u8; 8] {
        *self.seq = self.seq.wrapping_add(1);
        *self.out = true;
        *self.sent_us = now_us;
        payload(*self.seq)
    }

    /// A pong with `payload` arrived at `now_us`: the round trip, if it
    /// answers the latest ping (which is then answered).
    pub fn pong(&mut self, data: &[u8], now_us: u32) -> Option<Duration> {
        if data != payload(*self.seq) || !std::mem::take(self.out) {
            return None;
        }
        Some(Duration::from_micros(now_us.wrapping_sub(*self.sent_us).into()))
    }
}

/// A ping's payload: its number as 8 lowercase hex digits.
fn payload(seq: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        let nibble = (seq >> (28 - 4 * i)) & 0xf;
        *b = b"0123456789abcdef"[nibble as usize];
    }
    out
}

/// What the pongs measured: the latest round trip and a smoothed one, in
/// microseconds (0: none yet), so a channel's info grows by 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rtt {
    latest_us: u32,
    smoothed_us: u32,
}

impl Rtt {
    /// Takes a sample: the latest is `rtt`, and the smoothed one moves an
    /// eighth of the way to it (TCP's SRTT, RFC 6298: 7/8 old + 1/8 new;
    /// the first sample sets it).
    pub fn sample(&mut self, rtt: Duration) {
        // At least 1 µs, so 0 keeps meaning "none"; at most ~71 minutes.
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        self.smoothed_us = if self.smoothed_us == 0 {
            us
        } else {
            ((u64::from(self.smoothed_us) * 7 + u64::from(us)) / 8).max(1) as u32
        };
        self.latest_us = us;
    }

    pub fn latest(&self) -> Option<Duration> {
        (self.latest_us != 0).then(|| Duration::from_micros(self.latest_us.into()))
    }

    pub fn smoothed(&self) -> Option<Duration> {
        (self.smoothed_us != 0).then(|| Duration::from_micros(self.smoothed_us.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_pong_answers_only_the_latest_ping_and_only_once() {
        // Microsecond stamps, the first just before the clock wraps.
        let t = u32::MAX - 4_999;
        let at = |ms: u32| t.wrapping_add(ms * 1000);
        let (mut seq, mut out, mut sent) = (0, false, 0);
        let mut clock = PingClock::new(&mut seq, &mut out, &mut sent);
        let first = clock.ping(at(0));
        assert_eq!(&first, b"00000001");
        assert_eq!(clock.pong(b"", at(5)), None, "unsolicited");
        let second = clock.ping(at(10));
        assert_eq!(&second, b"00000002");
        assert_eq!(clock.pong(&first, at(20)), None, "late, for the first ping");
        assert_eq!(clock.pong(&second, at(50)), Some(ms(40)), "across the wrap");
        assert_eq!(clock.pong(&second, at(60)), None, "answered already");
    }

    #[test]
    fn payloads_count_in_hex_and_wrap() {
        assert_eq!(&payload(0xdead_beef), b"deadbeef");
        let (mut seq, mut out, mut sent) = (u32::MAX, false, 0);
        let mut clock = PingClock::new(&mut seq, &mut out, &mut sent);
        assert_eq!(&clock.ping(0), b"00000000");
    }

    #[test]
    fn the_smoothed_rtt_moves_an_eighth_of_the_way() {
        let mut rtt = Rtt::default();
        assert_eq!((rtt.latest(), rtt.smoothed()), (None, None));
        rtt.sample(ms(80));
        assert_eq!((rtt.latest(), rtt.smoothed()), (Some(ms(80)), Some(ms(80))));
        rtt.sample(ms(160));
        assert_eq!((rtt.latest(), rtt.smoothed()), (Some(ms(160)), Some(ms(90))));
        rtt.sample(Duration::ZERO);
        assert_eq!(
            rtt.latest(),
            Some(Duration::from_micros(1)),
            "a sample of 0 still counts"
        );
    }
}
