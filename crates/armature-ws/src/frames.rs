//! The entries of a connection's send queue: encoded frames, or runs of broadcast frames,
//! waiting for the connection task to write them.
//!
//! Most of the time a connection has at most one entry queued: a broadcast, or the run of a
//! burst, taken by the connection task before the next arrives. So the first entry is kept
//! inline, and pushing or taking it touches no memory outside the connection's own state (a
//! broadcast to 10,000 members otherwise misses the cache on 10,000 rings as well). A second
//! entry moves both into a ring, which is kept once allocated, as a `VecDeque`'s capacity is,
//! so a connection that often has several entries (a handler answering a batch) does not
//! allocate for each batch. The whole thing is the size of a `VecDeque`.

use std::collections::VecDeque;

use bytes::Bytes;

/// The entries queued for the connection task, in order. Entries are never empty (an encoded
/// frame has at least its two-byte header).
#[derive(Debug)]
pub(crate) enum Frames {
    /// At most one entry; an empty `Bytes` is none (it costs no allocation).
    One(Bytes),
    /// Several entries, or none with the ring kept for the next batch.
    #[expect(
        clippy::box_collection,
        reason = "boxed, the ring takes 8 bytes here, so the inline entry fits the enum in a VecDeque's size"
    )]
    Many(Box<VecDeque<Bytes>>),
}

impl Default for Frames {
    fn default() -> Self {
        Frames::One(Bytes::new())
    }
}

/// A ring larger than this is freed once drained (one burst made it grow; most never will).
const KEEP_CAPACITY: usize = 64;

impl Frames {
    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Frames::One(entry) => entry.is_empty(),
            Frames::Many(ring) => ring.is_empty(),
        }
    }

    /// The number of entries queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Frames::One(entry) => usize::from(!entry.is_empty()),
            Frames::Many(ring) => ring.len(),
        }
    }

    /// Queues `entry` last. An empty entry has nothing to write and is not queued.
    pub(crate) fn push_back(&mut self, entry: Bytes) {
        if entry.is_empty() {
            return;
        }
        match self {
            Frames::One(first) if first.is_empty() => *first = entry,
            Frames::One(first) => {
                let mut ring = VecDeque::with_capacity(4);
                ring.push_back(std::mem::take(first));
                ring.push_back(entry);
                *self = Frames::Many(Box::new(ring));
            }
            Frames::Many(ring) => ring.push_back(entry),
        }
    }

    /// Takes the first entry.
    pub(crate) fn pop_front(&mut self) -> Option<Bytes> {
        match self {
            Frames::One(first) if first.is_empty() => None,
            Frames::One(first) => Some(std::mem::take(first)),
            Frames::Many(ring) => ring.pop_front(),
        }
    }

    /// Drops every entry and frees the ring.
    pub(crate) fn clear(&mut self) {
        *self = Frames::default();
    }

    /// Frees a drained ring that grew past what a connection usually needs.
    pub(crate) fn shrink_when_drained(&mut self) {
        if let Frames::Many(ring) = self
            && ring.is_empty()
            && ring.capacity() > KEEP_CAPACITY
        {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Bytes {
        Bytes::from(vec![0x81, 1, n])
    }

    #[test]
    fn is_the_size_of_a_vecdeque() {
        assert_eq!(size_of::<Frames>(), size_of::<VecDeque<Bytes>>());
    }

    #[test]
    fn keeps_order_across_the_inline_entry_and_the_ring() {
        let mut frames = Frames::default();
        assert!(frames.is_empty());
        assert_eq!(frames.pop_front(), None);
        frames.push_back(entry(1));
        assert!(matches!(frames, Frames::One(_)));
        assert_eq!(frames.len(), 1);
        frames.push_back(entry(2));
        frames.push_back(entry(3));
        assert!(matches!(frames, Frames::Many(_)));
        assert_eq!(frames.len(), 3);
        assert_eq!(frames.pop_front(), Some(entry(1)));
        frames.push_back(entry(4));
        let rest: Vec<_> = std::iter::from_fn(|| frames.pop_front()).collect();
        assert_eq!(rest, vec![entry(2), entry(3), entry(4)]);
        assert!(frames.is_empty());
        // The ring stays for the next batch.
        assert!(matches!(frames, Frames::Many(_)));
        frames.push_back(entry(5));
        assert_eq!(frames.pop_front(), Some(entry(5)));
    }

    #[test]
    fn an_empty_entry_is_not_queued() {
        let mut frames = Frames::default();
        frames.push_back(Bytes::new());
        assert!(frames.is_empty());
        frames.push_back(entry(1));
        frames.push_back(Bytes::new());
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn a_drained_large_ring_is_freed_a_small_one_kept() {
        let mut frames = Frames::default();
        for n in 0..3 {
            frames.push_back(entry(n));
        }
        while frames.pop_front().is_some() {}
        frames.shrink_when_drained();
        assert!(matches!(frames, Frames::Many(_)));

        for n in 0..100 {
            frames.push_back(entry(n));
        }
        frames.shrink_when_drained();
        assert_eq!(frames.len(), 100, "a ring with entries is never freed");
        while frames.pop_front().is_some() {}
        frames.shrink_when_drained();
        assert!(matches!(frames, Frames::One(_)));
        assert!(frames.is_empty());

        frames.push_back(entry(1));
        frames.push_back(entry(2));
        frames.clear();
        assert!(frames.is_empty());
        assert!(matches!(frames, Frames::One(_)));
    }
}
