//! The last events of a broadcaster, kept for `Last-Event-ID` resume.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// One remembered event: its id (if any), its encoded bytes (shared with the clients that got
/// it live) and when it was broadcast.
#[derive(Debug, Clone)]
struct Entry {
    id: Option<Box<str>>,
    bytes: Bytes,
    at: Instant,
}

/// What a resume finds in the history.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The id is known: these events came after it, oldest first (possibly none).
    Replay(VecDeque<Bytes>),
    /// The id is not in the history (never seen, pushed out, expired, or history is off).
    Unknown,
}

/// A bounded, optionally time-limited list of the latest events.
#[derive(Debug)]
pub(crate) struct History {
    entries: VecDeque<Entry>,
    max_len: usize,
    max_age: Option<Duration>,
}

impl History {
    pub(crate) fn new(max_len: usize, max_age: Option<Duration>) -> Self {
        History {
            entries: VecDeque::new(),
            max_len,
            max_age,
        }
    }

    /// True when events are kept at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.max_len > 0
    }

    /// Remembers an event broadcast `now`.
    pub(crate) fn push(&mut self, id: Option<&str>, bytes: Bytes, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        if self.entries.len() == self.max_len {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            id: id.map(Box::from),
            bytes,
            at: now,
        });
        self.expire(now);
    }

    /// Forgets events older than the maximum age.
    pub(crate) fn expire(&mut self, now: Instant) {
        if let Some(max_age) = self.max_age {
            while self
                .entries
                .front()
                .is_some_and(|e| now.saturating_duration_since(e.at) > max_age)
            {
                self.entries.pop_front();
            }
        }
    }

    /// The events after the newest one whose id is `last_id`.
    pub(crate) fn since(&mut self, last_id: &str, now: Instant) -> Resume {
        self.expire(now);
        match self
            .entries
            .iter()
            .rposition(|e| e.id.as_deref() == Some(last_id))
        {
            Some(at) => Resume::Replay(
                self.entries
                    .range(at + 1..)
                    .map(|e| e.bytes.clone())
                    .collect(),
            ),
            None => Resume::Unknown,
        }
    }

    /// The id of the newest remembered event that has one.
    pub(crate) fn newest_id(&self) -> Option<&str> {
        self.entries.iter().rev().find_map(|e| e.id.as_deref())
    }

    /// Number of remembered events.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn replay(r: Resume) -> Vec<Bytes> {
        match r {
            Resume::Replay(v) => v.into(),
            Resume::Unknown => panic!("unknown"),
        }
    }

    #[test]
    fn replays_after_the_known_id() {
        let now = Instant::now();
        let mut h = History::new(10, None);
        h.push(Some("1"), b("a"), now);
        h.push(Some("2"), b("b"), now);
        h.push(None, b("c"), now);
        h.push(Some("3"), b("d"), now);
        assert_eq!(replay(h.since("1", now)), [b("b"), b("c"), b("d")]);
        assert_eq!(replay(h.since("3", now)), Vec::<Bytes>::new());
        assert_eq!(h.since("9", now), Resume::Unknown);
        assert_eq!(h.newest_id(), Some("3"));
    }

    #[test]
    fn keeps_only_the_last_n() {
        let now = Instant::now();
        let mut h = History::new(2, None);
        for (id, data) in [("1", "a"), ("2", "b"), ("3", "c")] {
            h.push(Some(id), b(data), now);
        }
        assert_eq!(h.len(), 2);
        assert_eq!(h.since("1", now), Resume::Unknown);
        assert_eq!(replay(h.since("2", now)), [b("c")]);
    }

    #[test]
    fn forgets_old_events() {
        let t0 = Instant::now();
        let mut h = History::new(10, Some(Duration::from_secs(5)));
        h.push(Some("1"), b("a"), t0);
        h.push(Some("2"), b("b"), t0 + Duration::from_secs(3));
        assert_eq!(replay(h.since("1", t0 + Duration::from_secs(4))), [b("b")]);
        assert_eq!(h.since("1", t0 + Duration::from_secs(6)), Resume::Unknown);
        assert_eq!(
            replay(h.since("2", t0 + Duration::from_secs(6))),
            Vec::<Bytes>::new()
        );
    }

    #[test]
    fn disabled_history_knows_nothing() {
        let now = Instant::now();
        let mut h = History::new(0, None);
        h.push(Some("1"), b("a"), now);
        assert!(!h.is_enabled());
        assert_eq!(h.since("1", now), Resume::Unknown);
    }

    #[test]
    fn duplicate_ids_resume_after_the_newest() {
        let now = Instant::now();
        let mut h = History::new(10, None);
        h.push(Some("x"), b("a"), now);
        h.push(Some("x"), b("b"), now);
        h.push(Some("y"), b("c"), now);
        assert_eq!(replay(h.since("x", now)), [b("c")]);
    }
}
