//! Counting what each subscriber received in a fan-out run, so missing, duplicated and
//! unexpected deliveries are reported instead of silently lowering a rate.

/// What one subscriber received, by sequence number (0-based, below a fixed bound).
#[derive(Debug, Clone)]
pub struct Ledger {
    seen: Vec<u64>,
    bound: u64,
    unique: u64,
    duplicates: u64,
    unexpected: u64,
}

/// How a recorded delivery was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The first delivery of this sequence number.
    New,
    /// This sequence number was delivered before.
    Duplicate,
    /// A sequence number at or above the bound: never sent in the measured phase.
    Unexpected,
}

impl Ledger {
    /// A ledger for sequence numbers `0..bound`.
    pub fn new(bound: u64) -> Self {
        let words = usize::try_from(bound.div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            seen: vec![0; words],
            bound,
            unique: 0,
            duplicates: 0,
            unexpected: 0,
        }
    }

    /// Records one delivery of `seq`.
    pub fn record(&mut self, seq: u64) -> Recorded {
        if seq >= self.bound {
            self.unexpected += 1;
            return Recorded::Unexpected;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let mask = 1u64 << bit;
        if self.seen[word] & mask != 0 {
            self.duplicates += 1;
            Recorded::Duplicate
        } else {
            self.seen[word] |= mask;
            self.unique += 1;
            Recorded::New
        }
    }

    /// Whether every sequence number below `sent` has been delivered.
    pub fn has_all(&self, sent: u64) -> bool {
        self.missing(sent) == 0
    }

    /// How many of the sequence numbers `0..sent` were never delivered.
    pub fn missing(&self, sent: u64) -> u64 {
        let sent = sent.min(self.bound);
        let full = (sent / 64) as usize;
        let mut got: u64 = self.seen[..full]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let rest = sent % 64;
        if rest > 0 {
            got += u64::from((self.seen[full] & ((1u64 << rest) - 1)).count_ones());
        }
        sent - got
    }

    /// Distinct sequence numbers delivered.
    pub fn unique(&self) -> u64 {
        self.unique
    }
}

/// The sum over every subscriber of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Subscribers × messages sent.
    pub expected: u64,
    /// Distinct (subscriber, message) deliveries among those expected.
    pub delivered: u64,
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Deliveries of a message the subscriber already had.
    pub duplicates: u64,
    /// Deliveries of a sequence number that was never sent in the measured phase.
    pub unexpected: u64,
}

impl Totals {
    /// Adds one subscriber's ledger, given how many messages were sent.
    pub fn add(&mut self, ledger: &Ledger, sent: u64) {
        let missing = ledger.missing(sent);
        self.expected += sent;
        self.missing += missing;
        self.delivered += sent - missing;
        self.duplicates += ledger.duplicates;
        self.unexpected += ledger.unexpected;
    }

    /// Adds a subscriber that never connected or whose ledger was lost: all of its
    /// deliveries count as missing.
    pub fn add_lost(&mut self, sent: u64) {
        self.expected += sent;
        self.missing += sent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_new_duplicate_and_unexpected() {
        let mut l = Ledger::new(10);
        assert_eq!(l.record(3), Recorded::New);
        assert_eq!(l.record(3), Recorded::Duplicate);
        assert_eq!(l.record(10), Recorded::Unexpected);
        assert_eq!(l.record(0), Recorded::New);
        assert_eq!(l.unique(), 2);
    }

    #[test]
    fn missing_counts_only_what_was_sent() {
        let mut l = Ledger::new(200);
        for seq in (0..200).filter(|s| s % 3 != 0) {
            l.record(seq);
        }
        // 0, 3, ..., 198 are missing: 67 of 200
        assert_eq!(l.missing(200), 67);
        // of 0..64: 0, 3, ..., 63 → 22 missing; crosses no word boundary at 64
        assert_eq!(l.missing(64), 22);
        // of 0..65: 64 is not a multiple of 3, so still 22
        assert_eq!(l.missing(65), 22);
        assert_eq!(l.missing(0), 0);
        // asking beyond the bound is clamped to it
        assert_eq!(l.missing(1_000), 67);
        assert!(!l.has_all(3));
        assert!(l.has_all(0));
    }

    #[test]
    fn a_complete_ledger_misses_nothing() {
        let mut l = Ledger::new(129);
        for seq in (0..129).rev() {
            assert_eq!(l.record(seq), Recorded::New);
        }
        assert!(l.has_all(129));
        assert_eq!(l.missing(129), 0);
    }

    #[test]
    fn totals_sum_subscribers_and_lost_ones() {
        let mut full = Ledger::new(5);
        for s in 0..5 {
            full.record(s);
        }
        full.record(2);
        let mut partial = Ledger::new(5);
        partial.record(0);
        partial.record(4);
        partial.record(7);
        let mut t = Totals::default();
        t.add(&full, 5);
        t.add(&partial, 5);
        t.add_lost(5);
        assert_eq!(
            t,
            Totals {
                expected: 15,
                delivered: 7,
                missing: 8,
                duplicates: 1,
                unexpected: 1
            }
        );
    }
}
