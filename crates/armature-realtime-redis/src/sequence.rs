//! Sequence numbers: the publisher's counters ([`Sequencer`]) and the receiver's check
//! ([`GapTracker`]) that finds missed and repeated messages. No I/O.

use std::collections::HashMap;
use std::sync::Arc;

/// Numbers a publisher's messages per channel, from 1.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    next: HashMap<Arc<str>, u64>,
}

impl Sequencer {
    /// The next number on `channel`.
    pub(crate) fn next(&mut self, channel: &Arc<str>) -> u64 {
        if let Some(n) = self.next.get_mut(&**channel) {
            *n += 1;
            return *n;
        }
        self.next.insert(channel.clone(), 1);
        1
    }
}

/// What to do with a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next one expected (or the first seen from this origin): deliver it.
    Deliver,
    /// Deliver it, but `missed` messages before it never arrived.
    Gap {
        /// How many numbers were skipped.
        missed: u64,
    },
    /// Already seen (a resend after a reconnect): drop it.
    Duplicate,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    epoch: u64,
    seq: u64,
}

/// The last number seen per channel and origin.
#[derive(Debug, Default)]
pub(crate) struct GapTracker {
    channels: HashMap<Arc<str>, HashMap<Arc<str>, Last>>,
}

impl GapTracker {
    /// Checks message `seq` of `origin` (incarnation `epoch`) on `channel` and records it.
    ///
    /// The first message seen from an origin on a channel is delivered without a verdict on
    /// what came before (the node was not listening). A new epoch is a restarted origin:
    /// its numbers start again at 1, and anything before the first number seen is missed.
    pub(crate) fn check(&mut self, channel: &str, origin: &str, epoch: u64, seq: u64) -> Verdict {
        let origins = match self.channels.get_mut(channel) {
            Some(origins) => origins,
            None => self.channels.entry(Arc::from(channel)).or_default(),
        };
        let Some(last) = origins.get_mut(origin) else {
            origins.insert(Arc::from(origin), Last { epoch, seq });
            return Verdict::Deliver;
        };
        if last.epoch != epoch {
            *last = Last { epoch, seq };
            return match seq.saturating_sub(1) {
                0 => Verdict::Deliver,
                missed => Verdict::Gap { missed },
            };
        }
        if seq <= last.seq {
            return Verdict::Duplicate;
        }
        let missed = seq - last.seq - 1;
        last.seq = seq;
        if missed == 0 {
            Verdict::Deliver
        } else {
            Verdict::Gap { missed }
        }
    }

    /// Forgets a channel (after unsubscribing: what happens there is no longer this node's).
    pub(crate) fn forget(&mut self, channel: &str) {
        self.channels.remove(channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencer_counts_per_channel() {
        let mut s = Sequencer::default();
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        assert_eq!(s.next(&a), 1);
        assert_eq!(s.next(&a), 2);
        assert_eq!(s.next(&b), 1);
        assert_eq!(s.next(&a), 3);
    }

    #[test]
    fn in_order_gap_and_duplicate() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 5), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 6), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 9), Verdict::Gap { missed: 2 });
        assert_eq!(t.check("c", "a-", 1, 9), Verdict::Duplicate);
        assert_eq!(t.check("c", "a-", 1, 7), Verdict::Duplicate);
        assert_eq!(t.check("c", "a-", 1, 10), Verdict::Deliver);
    }

    #[test]
    fn origins_and_channels_are_independent() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 1), Verdict::Deliver);
        assert_eq!(t.check("c", "b-", 1, 1), Verdict::Deliver);
        assert_eq!(t.check("d", "a-", 1, 3), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 2), Verdict::Deliver);
        assert_eq!(t.check("c", "b-", 1, 3), Verdict::Gap { missed: 1 });
    }

    #[test]
    fn a_restarted_origin_starts_again() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 50), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 2, 1), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 2, 2), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 3, 4), Verdict::Gap { missed: 3 });
    }

    #[test]
    fn forgetting_a_channel_starts_fresh() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 1), Verdict::Deliver);
        t.forget("c");
        assert_eq!(t.check("c", "a-", 1, 40), Verdict::Deliver);
    }
}
