//! A log-linear latency histogram: exact below 128 ns, then 64 buckets per
//! power of two (under 1.6% error), a few thousand counters in all.

/// Counts of nanosecond values.
#[derive(Debug, Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
}

const SUB: u64 = 64;

fn bucket(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() as u64 - 6;
    (shift * SUB + (v >> shift)) as usize
}

/// The middle of bucket `b`'s range.
fn value(b: usize) -> u64 {
    let b = b as u64;
    if b < 2 * SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let low = (b - shift * SUB) << shift;
    low + (1 << shift) / 2
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; bucket(u64::MAX) + 1],
            total: 0,
        }
    }
}

impl Hist {
    /// Adds one value, in nanoseconds.
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket(ns)] += 1;
        self.total += 1;
    }

    /// The `q` quantile (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(b) as f64 / 1000.0;
            }
        }
        unreachable!("rank <= total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            let mid = value(b) as f64;
            assert!((mid - v as f64).abs() <= (v as f64) / 60.0 + 1.0, "{v} -> {b} -> {mid}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert!((h.quantile_us(0.5) - 500.0).abs() < 10.0);
        assert!((h.quantile_us(0.99) - 990.0).abs() < 16.0);
    }
}
