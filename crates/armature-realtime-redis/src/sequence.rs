//! Sequence numbers: the publisher's counters ([`Sequencer`]) and the receiver's check
//! ([`GapTracker`]) that finds missed and repeated messages. No I/O.
//!
//! Both are pruned: an entry not used for [`IDLE`] is dropped, and each map holds at most a
//! fixed number of entries (the least recently used goes first). Room names come from the
//! network and nodes come and go, so neither may grow without bound. A publisher that drops a
//! channel's counter starts it again under a new *numbering epoch*, so a receiver that still
//! remembers the old numbers sees a restarted numbering (delivered), not a run of duplicates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An entry not used for this long is dropped.
pub(crate) const IDLE: Duration = Duration::from_secs(300);
/// Most channels the publisher keeps a counter for.
pub(crate) const MAX_CHANNELS: usize = 65_536;
/// Most origins the receiver remembers per channel.
pub(crate) const MAX_ORIGINS: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Counter {
    /// The numbering epoch's low 32 bits (a fresh one per new counter).
    numbering: u32,
    last: u64,
    used: Instant,
}

/// Numbers a publisher's messages per channel, from 1.
#[derive(Debug)]
pub(crate) struct Sequencer {
    next: HashMap<Arc<str>, Counter>,
    numbering: u32,
    swept: Instant,
    max: usize,
    idle: Duration,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer::with_limits(MAX_CHANNELS, IDLE)
    }
}

impl Sequencer {
    pub(crate) fn with_limits(max: usize, idle: Duration) -> Self {
        Sequencer {
            next: HashMap::new(),
            numbering: 0,
            swept: Instant::now(),
            max: max.max(1),
            idle,
        }
    }

    /// The numbering epoch (low 32 bits) and the next number on `channel`.
    pub(crate) fn next(&mut self, channel: &Arc<str>, now: Instant) -> (u32, u64) {
        if now.saturating_duration_since(self.swept) >= self.idle / 4 {
            self.swept = now;
            let idle = self.idle;
            self.next
                .retain(|_, c| now.saturating_duration_since(c.used) < idle);
        }
        if let Some(c) = self.next.get_mut(&**channel) {
            c.last += 1;
            c.used = now;
            return (c.numbering, c.last);
        }
        if self.next.len() >= self.max
            && let Some(oldest) = self
                .next
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
        {
            self.next.remove(&oldest);
        }
        self.numbering = self.numbering.wrapping_add(1);
        let numbering = self.numbering;
        self.next.insert(
            channel.clone(),
            Counter {
                numbering,
                last: 1,
                used: now,
            },
        );
        (numbering, 1)
    }

    /// Channels with a counter now.
    pub(crate) fn len(&self) -> usize {
        self.next.len()
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
    seen: Instant,
}

/// The last number seen per channel and origin.
#[derive(Debug)]
pub(crate) struct GapTracker {
    channels: HashMap<Arc<str>, HashMap<Arc<str>, Last>>,
    swept: Instant,
    max_origins: usize,
    idle: Duration,
}

impl Default for GapTracker {
    fn default() -> Self {
        GapTracker::with_limits(MAX_ORIGINS, IDLE)
    }
}

impl GapTracker {
    pub(crate) fn with_limits(max_origins: usize, idle: Duration) -> Self {
        GapTracker {
            channels: HashMap::new(),
            swept: Instant::now(),
            max_origins: max_origins.max(1),
            idle,
        }
    }

    /// Checks message `seq` of `origin` (numbering `epoch`) on `channel` and records it.
    ///
    /// The first message seen from an origin on a channel is delivered without a verdict on
    /// what came before (the node was not listening, or forgot the origin after it was quiet
    /// for [`IDLE`]). A new epoch is a restarted numbering: its numbers start again at 1, and
    /// anything before the first number seen is missed.
    pub(crate) fn check(
        &mut self,
        channel: &str,
        origin: &str,
        epoch: u64,
        seq: u64,
        now: Instant,
    ) -> Verdict {
        if now.saturating_duration_since(self.swept) >= self.idle / 4 {
            self.swept = now;
            let idle = self.idle;
            for origins in self.channels.values_mut() {
                origins.retain(|_, l| now.saturating_duration_since(l.seen) < idle);
            }
            self.channels.retain(|_, origins| !origins.is_empty());
        }
        let max_origins = self.max_origins;
        let origins = match self.channels.get_mut(channel) {
            Some(origins) => origins,
            None => self.channels.entry(Arc::from(channel)).or_default(),
        };
        let Some(last) = origins.get_mut(origin) else {
            if origins.len() >= max_origins
                && let Some(oldest) = origins
                    .iter()
                    .min_by_key(|(_, l)| l.seen)
                    .map(|(k, _)| k.clone())
            {
                origins.remove(&oldest);
            }
            origins.insert(
                Arc::from(origin),
                Last {
                    epoch,
                    seq,
                    seen: now,
                },
            );
            return Verdict::Deliver;
        };
        last.seen = now;
        if last.epoch != epoch {
            last.epoch = epoch;
            last.seq = seq;
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

    /// Origins remembered, over every channel.
    pub(crate) fn origins(&self) -> usize {
        self.channels.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(non_snake_case)]
    fn T0() -> Instant {
        thread_local!(static NOW: Instant = Instant::now());
        NOW.with(|n| *n)
    }

    #[test]
    fn sequencer_counts_per_channel() {
        let mut s = Sequencer::default();
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let now = Instant::now();
        assert_eq!(s.next(&a, now).1, 1);
        assert_eq!(s.next(&a, now).1, 2);
        assert_eq!(s.next(&b, now).1, 1);
        assert_eq!(s.next(&a, now).1, 3);
    }

    #[test]
    fn in_order_gap_and_duplicate() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 5, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 6, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 9, T0()), Verdict::Gap { missed: 2 });
        assert_eq!(t.check("c", "a-", 1, 9, T0()), Verdict::Duplicate);
        assert_eq!(t.check("c", "a-", 1, 7, T0()), Verdict::Duplicate);
        assert_eq!(t.check("c", "a-", 1, 10, T0()), Verdict::Deliver);
    }

    #[test]
    fn origins_and_channels_are_independent() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 1, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "b-", 1, 1, T0()), Verdict::Deliver);
        assert_eq!(t.check("d", "a-", 1, 3, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 1, 2, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "b-", 1, 3, T0()), Verdict::Gap { missed: 1 });
    }

    #[test]
    fn a_restarted_origin_starts_again() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 50, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 2, 1, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 2, 2, T0()), Verdict::Deliver);
        assert_eq!(t.check("c", "a-", 3, 4, T0()), Verdict::Gap { missed: 3 });
    }

    #[test]
    fn forgetting_a_channel_starts_fresh() {
        let mut t = GapTracker::default();
        assert_eq!(t.check("c", "a-", 1, 1, T0()), Verdict::Deliver);
        t.forget("c");
        assert_eq!(t.check("c", "a-", 1, 40, T0()), Verdict::Deliver);
    }

    #[test]
    fn idle_counters_are_dropped_and_restart_under_a_new_numbering() {
        let mut s = Sequencer::with_limits(1000, Duration::from_secs(10));
        let t = Instant::now();
        let a: Arc<str> = Arc::from("a");
        let (first, _) = s.next(&a, t);
        assert_eq!(s.next(&a, t), (first, 2));
        // A client naming a room per message: the map stays bounded by the idle time.
        for i in 0..500 {
            s.next(&Arc::from(format!("room-{i}")), t + Duration::from_secs(1));
        }
        assert_eq!(s.len(), 501);
        let later = t + Duration::from_secs(30);
        let (numbering, seq) = s.next(&a, later);
        assert_eq!(s.len(), 1);
        assert_ne!(numbering, first);
        assert_eq!(seq, 1);
        // A receiver that remembers the old numbering delivers the restart.
        let mut r = GapTracker::default();
        assert_eq!(r.check("a", "n-", u64::from(first), 2, t), Verdict::Deliver);
        assert_eq!(
            r.check("a", "n-", u64::from(numbering), 1, later),
            Verdict::Deliver
        );
    }

    #[test]
    fn counters_are_capped() {
        let mut s = Sequencer::with_limits(100, Duration::from_secs(3600));
        let t = Instant::now();
        for i in 0..10_000u64 {
            s.next(
                &Arc::from(format!("room-{i}")),
                t + Duration::from_millis(i),
            );
        }
        assert_eq!(s.len(), 100);
    }

    #[test]
    fn departed_origins_are_forgotten() {
        let mut r = GapTracker::with_limits(8, Duration::from_secs(10));
        let t = Instant::now();
        // Nodes restarting with random ids: each a new origin on the node channel.
        for i in 0..100u64 {
            let origin = format!("n{i}-");
            r.check("c", &origin, 1, 1, t + Duration::from_millis(i));
        }
        assert_eq!(r.origins(), 8, "capped per channel");
        assert_eq!(r.check("c", "live-", 1, 1, t), Verdict::Deliver);
        // Quiet for longer than the idle time: gone.
        assert_eq!(
            r.check("c", "live-", 1, 2, t + Duration::from_secs(4)),
            Verdict::Deliver
        );
        r.check("d", "other-", 1, 1, t + Duration::from_secs(60));
        assert_eq!(r.origins(), 1);
        // The origin that came back starts a fresh count (no false duplicate or gap).
        assert_eq!(
            r.check("c", "live-", 1, 3, t + Duration::from_secs(61)),
            Verdict::Deliver
        );
    }
}
