//! Latency samples and their percentiles.
//!
//! Every sample is kept (the count is bounded by the scenario's message count), sorted once
//! at the end, and read with the nearest-rank method: the p-th percentile is the smallest
//! sample such that at least p % of the samples are at or below it.

/// Latency samples in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<u64>,
}

/// What a set of samples comes to, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples there were.
    pub count: usize,
    /// The median.
    pub p50_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
    /// The largest sample.
    pub max_us: f64,
}

impl Samples {
    /// No samples, with room for `capacity` before reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(capacity),
        }
    }

    /// Adds one sample.
    pub fn push(&mut self, nanos: u64) {
        self.nanos.push(nanos);
    }

    /// Moves every sample of `other` into `self`.
    pub fn merge(&mut self, mut other: Samples) {
        self.nanos.append(&mut other.nanos);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// Sorts the samples and summarises them; `None` when there are none.
    pub fn summary(mut self) -> Option<Summary> {
        self.nanos.sort_unstable();
        let us = |n: u64| n as f64 / 1_000.0;
        Some(Summary {
            count: self.nanos.len(),
            p50_us: us(percentile(&self.nanos, 50.0)?),
            p99_us: us(percentile(&self.nanos, 99.0)?),
            max_us: us(*self.nanos.last()?),
        })
    }
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted`, which must be sorted
/// ascending; `None` when `sorted` is empty or `p` is out of range.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.5), Some(1));
        let v = [10, 20, 30, 40, 50];
        assert_eq!(percentile(&v, 50.0), Some(30));
        assert_eq!(percentile(&v, 99.0), Some(50));
        assert_eq!(percentile(&v, 20.0), Some(10));
        assert_eq!(percentile(&v, 21.0), Some(20));
    }

    #[test]
    fn percentile_of_nothing_or_out_of_range() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1], 0.0), None);
        assert_eq!(percentile(&[1], 101.0), None);
        assert_eq!(percentile(&[1], f64::NAN), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    #[test]
    fn summary_sorts_merged_samples_and_converts_to_microseconds() {
        let mut a = Samples::with_capacity(4);
        for n in [9_000, 1_000, 5_000] {
            a.push(n);
        }
        let mut b = Samples::default();
        for n in (1..=97u64).map(|i| i * 100 + 1_000) {
            b.push(n);
        }
        a.merge(b);
        assert_eq!(a.len(), 100);
        let s = a.summary().unwrap();
        assert_eq!(s.count, 100);
        // sorted: 1000, 1100..=10700 (97 values), with 5000 and 9000 inserted;
        // 42 values are at or below 5000, so rank 50 is 5800
        assert_eq!(s.max_us, 10.7);
        assert_eq!(s.p99_us, 10.6);
        assert_eq!(s.p50_us, 5.8);
        assert_eq!(Samples::default().summary(), None);
    }
}
