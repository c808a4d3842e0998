//! The instants an open WebSocket keeps (its peer's last frame and last
//! message, its latest ping), in 32 bits each rather than an `Instant`'s
//! 16 bytes: every idle connection holds three, so they are paid 10,000
//! times over.
//!
//! A stamp counts milliseconds (or, for a ping, microseconds) on a
//! wrapping clock whose zero is the first instant any WebSocket was made
//! with (no clock is read here: the instants are the `now`s the connection
//! is driven with). Only differences between stamps mean anything, taken
//! with wrapping arithmetic ([`elapsed_ms`]), so they are exact (to the
//! unit) as long as the two instants are less than 2^32 units apart: 49.7
//! days for the millisecond stamps, 71.6 minutes for the microsecond ones,
//! which only time a ping's round trip. The keepalive keeps its stamps younger than
//! [`MAX_AGE_MS`], so the wrap-around never shows (see
//! `WsConn::age_stamps`).
//!
//! Stamps are rounded down, so the difference of two instants a whole
//! number of milliseconds apart is exact, and any other is off by less
//! than one: a keepalive deadline may fall up to a millisecond either side
//! of the instant an `Instant` would have given.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How old the keepalive lets a millisecond stamp get (12.4 days): older
/// ones are moved up to this age at each look, and intervals longer than
/// this count as this long, so the looks come at least this often and no
/// stamp gets near 2^32 ms (49.7 days) old, where its difference to `now`
/// would wrap (a look may come 37 days late and still see right).
pub(crate) const MAX_AGE_MS: u32 = 1 << 30;

/// A stamp up to this far ahead of `now` counts as `now`: an instant given
/// out of order (`Instant`s do not go back, but a caller may pass an older
/// one), not one 49.7 days old.
const AHEAD_MS: u32 = 60_000;

/// Milliseconds from stamp `then` to stamp `now`.
#[inline]
pub(crate) fn elapsed_ms(now: u32, then: u32) -> u32 {
    match now.wrapping_sub(then) {
        ahead if ahead > u32::MAX - AHEAD_MS => 0,
        d => d,
    }
}

/// The clock's zero: the first instant seen, process-wide (stamps from
/// different servers and clients may then be compared too; nothing does).
static ZERO: OnceLock<Instant> = OnceLock::new();

/// The clock's zero (for tests that put instants where the stamps wrap).
#[cfg(test)]
pub(crate) fn zero() -> Instant {
    *ZERO.get_or_init(Instant::now)
}

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

/// `at` in whole units of `unit` nanoseconds after the clock's zero,
/// modulo 2^32. Before the zero the count goes backwards from 2^32 (still
/// rounded down), so a difference of stamps is the same whichever side of
/// the zero the instants are on.
#[inline]
fn stamp(at: Instant, unit: u64) -> u32 {
    let zero = *ZERO.get_or_init(|| at);
    match at.checked_duration_since(zero) {
        Some(d) => {
            // (The seconds fit: 2^64 ns is 584 years.)
            let nanos = u64::from(d.subsec_nanos());
            (d.as_secs().wrapping_mul(1_000_000_000 / unit) + nanos / unit) as u32
        }
        None => before_zero(zero - at, unit),
    }
}

/// `stamp` of an instant `back` before the zero (only on platforms and in
/// tests whose instants go back that far; not on the hot path).
#[cold]
fn before_zero(back: Duration, unit: u64) -> u32 {
    let (back, unit) = (back.as_nanos(), u128::from(unit));
    // Rounded down: minus the whole units, one more if there is a part.
    (back.div_ceil(unit) as u32).wrapping_neg()
}

thread_local! {
    /// The last instant [`ms`] converted on this thread, and its stamp: a
    /// server converts its tick's `now` once per read of every connection
    /// (to stamp the frames it heard), so within a tick all but the first
    /// are this comparison instead of a subtraction and a division.
    static LAST_MS: Cell<Option<(Instant, u32)>> = const { Cell::new(None) };
}

/// `at` as a millisecond stamp.
#[inline]
pub(crate) fn ms(at: Instant) -> u32 {
    match LAST_MS.get() {
        Some((seen, ms)) if seen == at => ms,
        _ => {
            let ms = stamp(at, MS);
            LAST_MS.set(Some((at, ms)));
            ms
        }
    }
}

/// `at` as a microsecond stamp.
#[inline]
pub(crate) fn us(at: Instant) -> u32 {
    stamp(at, US)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_exact_on_either_side_of_the_zero_and_across_the_wrap() {
        let t = Instant::now();
        let zero = *ZERO.get_or_init(|| t);
        let ms1 = Duration::from_millis(1);
        // Around the zero (before it, if this platform has instants there).
        if let Some(before) = zero.checked_sub(Duration::from_micros(1500)) {
            assert_eq!(ms(zero).wrapping_sub(ms(before)), 2, "floor(0) - floor(-1.5)");
            assert_eq!(ms(before + ms1 * 7).wrapping_sub(ms(before)), 7);
            assert_eq!(us(zero).wrapping_sub(us(before)), 1500);
        }
        // Just before and after the millisecond clock wraps (49.7 days in).
        let wrap = zero + ms1 * u32::MAX;
        assert_eq!(ms(wrap), u32::MAX);
        assert_eq!(ms(wrap + ms1), 0);
        assert_eq!(ms(wrap + ms1 * 5).wrapping_sub(ms(wrap - ms1 * 3)), 8);
        // Rounded down.
        assert_eq!(ms(zero + Duration::from_micros(10_999)), 10);
        // The microsecond clock wraps after 71.6 minutes: a round trip
        // across it still measures.
        let us_wrap = zero + Duration::from_micros(u64::from(u32::MAX));
        let sent = us(us_wrap - Duration::from_micros(300));
        assert_eq!(us(us_wrap + Duration::from_micros(700)).wrapping_sub(sent), 1000);
        // A minute ahead counts as none; 49 days back, as 49 days.
        assert_eq!(elapsed_ms(5, 5 + 60_000), 0);
        assert_eq!(elapsed_ms(5, 5u32.wrapping_sub(49 * 86_400_000)), 49 * 86_400_000);
    }
}
