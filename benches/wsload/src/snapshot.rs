//! A game-state snapshot as a game server would broadcast it every tick:
//! about 1.2 KB of JSON with the same keys every time (eight players with
//! id, name, position, velocity, hit points, score, team; a few
//! projectiles) and numbers that move from tick to tick. What
//! permessage-deflate is for: repetitive keys compress well, changing
//! numbers less so.
//!
//! Every snapshot starts with a fixed-width stamp,
//! `{"seq":"<16 hex>","t":"<16 hex>",` (broadcast puts the sequence number
//! and send time there; echo leaves it at the tick), so a stamp can be
//! written in place and read back without parsing the JSON.

/// Bytes from the start of a snapshot to the end of its stamp's values.
pub const STAMP_END: usize = SEQ_AT + 16 + 7 + 16;
/// Where the sequence number's 16 hex digits start.
const SEQ_AT: usize = 8;
/// Where the time's 16 hex digits start.
const T_AT: usize = SEQ_AT + 16 + 7;

/// A small deterministic generator (xorshift64*), so every run sends the
/// same snapshots.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

const NAMES: [&str; 8] = [
    "Ada",
    "Brutus",
    "Cassiopeia",
    "Dmitri",
    "Elena",
    "Farouk",
    "Grete",
    "Hiroshi",
];
const TEAMS: [&str; 2] = ["red", "blue"];

/// `n` consecutive ticks of one match, each a snapshot.
pub fn ticks(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Positions and scores carry over from tick to tick, as in a game.
    let mut pos: Vec<(i64, i64)> = (0..8).map(|_| (rng.range(0, 102_400), rng.range(0, 76_800))).collect();
    let mut score: Vec<i64> = (0..8).map(|_| rng.range(0, 5000)).collect();
    (0..n)
        .map(|k| {
            let tick = 184_320 + k as i64;
            let mut s = String::with_capacity(1300);
            s.push_str(&format!(
                "{{\"seq\":\"{:016x}\",\"t\":\"{:016x}\",\"type\":\"state\",\"tick\":{tick},\"time\":{:.3},\"players\":[",
                k, 0, tick as f64 / 60.0
            ));
            for (i, name) in NAMES.iter().enumerate() {
                let (vx, vy) = (rng.range(-400, 400), rng.range(-400, 400));
                pos[i].0 = (pos[i].0 + vx).clamp(0, 102_400);
                pos[i].1 = (pos[i].1 + vy).clamp(0, 76_800);
                if rng.range(0, 10) == 0 {
                    score[i] += rng.range(10, 100);
                }
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    "{{\"id\":{},\"name\":\"{name}\",\"x\":{:.2},\"y\":{:.2},\"vx\":{:.2},\"vy\":{:.2},\
                     \"hp\":{},\"score\":{},\"team\":\"{}\",\"alive\":{}}}",
                    1001 + i,
                    pos[i].0 as f64 / 100.0,
                    pos[i].1 as f64 / 100.0,
                    vx as f64 / 100.0,
                    vy as f64 / 100.0,
                    rng.range(1, 101),
                    score[i],
                    TEAMS[i % 2],
                    rng.range(0, 20) != 0,
                ));
            }
            s.push_str("],\"projectiles\":[");
            for j in 0..4 {
                if j > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    "{{\"id\":{},\"owner\":{},\"x\":{:.2},\"y\":{:.2}}}",
                    rng.range(50_000, 60_000),
                    1001 + rng.range(0, 8),
                    rng.range(0, 102_400) as f64 / 100.0,
                    rng.range(0, 76_800) as f64 / 100.0,
                ));
            }
            s.push_str("]}");
            s.into_bytes()
        })
        .collect()
}

/// Writes a sequence number and a time into a snapshot's stamp.
pub fn put_stamp(msg: &mut [u8], seq: u64, t: u64) {
    msg[SEQ_AT..SEQ_AT + 16].copy_from_slice(format!("{seq:016x}").as_bytes());
    msg[T_AT..T_AT + 16].copy_from_slice(format!("{t:016x}").as_bytes());
}

/// Reads a snapshot's stamp: (sequence number, time).
pub fn get_stamp(msg: &[u8]) -> Option<(u64, u64)> {
    if msg.len() < STAMP_END || !msg.starts_with(b"{\"seq\":\"") {
        return None;
    }
    let hex = |at: usize| {
        std::str::from_utf8(&msg[at..at + 16])
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    Some((hex(SEQ_AT)?, hex(T_AT)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_about_a_kilobyte_and_carry_a_stamp() {
        let t = ticks(64);
        for s in &t {
            assert!((1024..1400).contains(&s.len()), "{}", s.len());
            assert!(std::str::from_utf8(s).unwrap().ends_with("]}"));
        }
        assert_ne!(t[0][STAMP_END..], t[1][STAMP_END..], "numbers move");
        let mut m = t[3].clone();
        assert_eq!(get_stamp(&m), Some((3, 0)));
        put_stamp(&mut m, 0xdead_beef, u64::MAX - 1);
        assert_eq!(get_stamp(&m), Some((0xdead_beef, u64::MAX - 1)));
        assert_eq!(&m[STAMP_END..STAMP_END + 2], b"\",");
    }
}
