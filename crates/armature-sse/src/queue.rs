//! One client's bounded queue of encoded events, shared by the sending side (a broadcaster
//! or an [`SseStream`](crate::SseStream)) and the receiving side (a
//! [`ReceiverStream`](crate::ReceiverStream)).
//!
//! A plain `VecDeque<Bytes>` behind a short `parking_lot` lock, with the reader's waker: no
//! allocation while the queue is empty, one refcounted `Bytes` handle per queued event.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

/// Why a queue stopped taking events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Still open.
    Open,
    /// The sending side is gone (stream dropped, broadcaster dropped): deliver what is queued,
    /// then end.
    Finished,
    /// Dropped by the slow-client policy: the queue was emptied; end at once.
    Overflow,
    /// The receiving side is gone.
    ReceiverGone,
}

/// The outcome of [`ClientQueue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    Full,
    Closed,
}

/// What the receiver gets from [`ClientQueue::poll_pop`].
#[derive(Debug)]
pub(crate) enum Pop {
    Item(Bytes),
    /// Ended because the client was too slow.
    Overflow,
    /// Ended normally.
    End,
}

/// One queue slot: an event, or a run of events queued together (a turn's broadcasts, see
/// [`coalesced`](crate::coalesced)), taken whole by a body and split again by a stream.
#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    /// Events in `bytes` (1 for a single event).
    events: u32,
}

/// Sizes and bounds are `u32`s (saturated): with them the queue's allocation (`Arc`
/// counts, lock, state) is 96 bytes, one 96-byte allocator chunk per client.
#[derive(Debug)]
struct State {
    items: VecDeque<Entry>,
    /// Events queued (a run counts each of its events).
    events: u32,
    bytes: u32,
    max_events: u32,
    max_bytes: u32,
    closed: Closed,
    overflow_reported: bool,
    waker: Option<Waker>,
}

/// A bounded single-reader queue of encoded events.
#[derive(Debug)]
pub(crate) struct ClientQueue {
    state: Mutex<State>,
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The length of the first event in `bytes`, through its blank line (`\n\n`); `None`
/// when there is none.
fn event_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// The most bytes [`ClientQueue::poll_pop_run`] joins into one buffer (a lone larger event
/// is taken as it is).
pub(crate) const RUN_MAX: usize = 16 * 1024;

/// Capacity kept when the queue runs empty; above it the buffer is given back.
const KEEP_CAPACITY: usize = 16;

impl ClientQueue {
    /// A queue holding at most `max_events` events and `max_bytes` bytes, starting with
    /// `initial` (replayed history), whose size raises both bounds so a replay never trips them.
    pub(crate) fn new(max_events: usize, max_bytes: usize, initial: VecDeque<Bytes>) -> Self {
        let bytes: usize = initial.iter().map(Bytes::len).sum();
        let bytes = saturate(bytes);
        let events = saturate(initial.len());
        ClientQueue {
            state: Mutex::new(State {
                max_events: saturate(max_events).saturating_add(events),
                max_bytes: saturate(max_bytes).saturating_add(bytes),
                items: initial
                    .into_iter()
                    .map(|bytes| Entry { bytes, events: 1 })
                    .collect(),
                events,
                bytes,
                closed: Closed::Open,
                overflow_reported: false,
                waker: None,
            }),
        }
    }

    /// Queues `item` unless the queue is closed or full; wakes the reader.
    pub(crate) fn push(&self, item: Bytes) -> Push {
        self.push_run(item, 1)
    }

    /// Queues `run`, which holds `events` events, as one slot, unless the queue is closed or
    /// the run does not fit whole (the sender then offers its events one by one, so the
    /// slow-client policy sees each); wakes the reader.
    pub(crate) fn push_run(&self, run: Bytes, events: u32) -> Push {
        let waker = {
            let mut st = self.state.lock();
            if st.closed != Closed::Open {
                return Push::Closed;
            }
            let len = saturate(run.len());
            if st.events.saturating_add(events) > st.max_events
                || st.bytes.saturating_add(len) > st.max_bytes
            {
                return Push::Full;
            }
            st.bytes = st.bytes.saturating_add(len);
            st.events = st.events.saturating_add(events);
            st.items.push_back(Entry { bytes: run, events });
            st.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Push::Queued
    }

    /// Closes the queue for `why`; an overflow also drops what is queued. Wakes the reader.
    pub(crate) fn close(&self, why: Closed) {
        let waker = {
            let mut st = self.state.lock();
            if st.closed != Closed::Open {
                return;
            }
            st.closed = why;
            if why == Closed::Overflow || why == Closed::ReceiverGone {
                st.items = VecDeque::new();
                st.bytes = 0;
                st.events = 0;
            }
            st.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// True once the queue no longer takes events.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed != Closed::Open
    }

    /// Number of queued events.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().events as usize
    }

    /// Takes the next event, or registers the reader's waker. A run queued as one slot is
    /// split at the end of its first event (a blank line: an encoded event has none inside).
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Pop> {
        let mut st = self.state.lock();
        if let Some(front) = st.items.front_mut() {
            let item = if front.events > 1
                && let Some(end) = event_end(&front.bytes)
                && end < front.bytes.len()
            {
                front.events -= 1;
                front.bytes.split_to(end)
            } else {
                let Some(entry) = st.items.pop_front() else {
                    return Poll::Pending;
                };
                if st.items.is_empty() && st.items.capacity() > KEEP_CAPACITY {
                    st.items.shrink_to(KEEP_CAPACITY);
                }
                st.events = st.events.saturating_sub(entry.events);
                st.bytes = st.bytes.saturating_sub(saturate(entry.bytes.len()));
                return Poll::Ready(Pop::Item(entry.bytes));
            };
            st.events = st.events.saturating_sub(1);
            st.bytes = st.bytes.saturating_sub(saturate(item.len()));
            return Poll::Ready(Pop::Item(item));
        }
        match st.closed {
            Closed::Open => {
                if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Closed::Overflow if !st.overflow_reported => {
                st.overflow_reported = true;
                Poll::Ready(Pop::Overflow)
            }
            _ => Poll::Ready(Pop::End),
        }
    }

    /// Like [`poll_pop`](Self::poll_pop), but takes whole slots: a run queued as one slot as
    /// it is (no copy), and when more than one slot is queued, as many as fit in
    /// [`RUN_MAX`] bytes joined into one buffer under the one lock: one lock, one allocation
    /// and one copy instead of a lock and a refcount drop per event at the reader. For a
    /// body, where event boundaries are in the bytes themselves.
    pub(crate) fn poll_pop_run(&self, cx: &mut Context<'_>) -> Poll<Pop> {
        let mut st = self.state.lock();
        let mut total = 0usize;
        let mut n = 0usize;
        let mut events = 0u32;
        for item in st.items.iter() {
            if n > 0 && total + item.bytes.len() > RUN_MAX {
                break;
            }
            total += item.bytes.len();
            events = events.saturating_add(item.events);
            n += 1;
        }
        if n == 0 {
            drop(st);
            return self.poll_pop(cx);
        }
        let run = if n == 1 {
            st.items.pop_front().map(|e| e.bytes).unwrap_or_default()
        } else {
            let mut run = BytesMut::with_capacity(total);
            for item in st.items.drain(..n) {
                run.extend_from_slice(&item.bytes);
            }
            run.freeze()
        };
        st.bytes = st.bytes.saturating_sub(saturate(total));
        st.events = st.events.saturating_sub(events);
        if st.items.is_empty() && st.items.capacity() > KEEP_CAPACITY {
            st.items.shrink_to(KEEP_CAPACITY);
        }
        Poll::Ready(Pop::Item(run))
    }

    /// True when nothing is queued and nothing more will be.
    pub(crate) fn is_finished(&self) -> bool {
        let st = self.state.lock();
        st.items.is_empty() && st.closed != Closed::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    fn pop(q: &ClientQueue) -> Poll<Pop> {
        q.poll_pop(&mut Context::from_waker(noop_waker_ref()))
    }

    fn pop_run(q: &ClientQueue) -> Poll<Pop> {
        q.poll_pop_run(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn bounded_by_events_and_bytes() {
        let q = ClientQueue::new(2, 10, VecDeque::new());
        assert_eq!(q.push(Bytes::from_static(b"abcd")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"abcd")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"a")), Push::Full);
        assert!(matches!(pop(&q), Poll::Ready(Pop::Item(b)) if &b[..] == b"abcd"));
        assert_eq!(q.push(Bytes::from_static(b"abcdefg")), Push::Full); // 4 + 7 > 10
        assert_eq!(q.push(Bytes::from_static(b"abcdef")), Push::Queued); // 4 + 6 = 10
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn initial_items_raise_the_bounds() {
        let init: VecDeque<Bytes> = (0..5).map(|_| Bytes::from_static(b"xx")).collect();
        let q = ClientQueue::new(1, 100, init);
        assert_eq!(q.push(Bytes::from_static(b"y")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"y")), Push::Full);
        assert_eq!(q.len(), 6);
    }

    #[test]
    fn finished_drains_then_ends() {
        let q = ClientQueue::new(4, 100, VecDeque::new());
        q.push(Bytes::from_static(b"a"));
        q.close(Closed::Finished);
        assert_eq!(q.push(Bytes::from_static(b"b")), Push::Closed);
        assert!(!q.is_finished());
        assert!(matches!(pop(&q), Poll::Ready(Pop::Item(_))));
        assert!(matches!(pop(&q), Poll::Ready(Pop::End)));
        assert!(q.is_finished());
    }

    #[test]
    fn overflow_drops_items_and_reports_once() {
        let q = ClientQueue::new(4, 100, VecDeque::new());
        q.push(Bytes::from_static(b"a"));
        q.close(Closed::Overflow);
        assert!(q.is_closed());
        assert!(matches!(pop(&q), Poll::Ready(Pop::Overflow)));
        assert!(matches!(pop(&q), Poll::Ready(Pop::End)));
    }

    #[test]
    fn a_queue_is_one_96_byte_chunk() {
        // `Arc` counts (16) + the lock and its state: 96 bytes, a 96-byte chunk for
        // jemalloc (glibc rounds a request of 89–104 bytes to 112).
        assert!(
            size_of::<ClientQueue>() + 16 <= 96,
            "{}",
            size_of::<ClientQueue>()
        );
    }

    #[test]
    fn huge_bounds_saturate() {
        let q = ClientQueue::new(usize::MAX, usize::MAX, VecDeque::new());
        assert_eq!(q.push(Bytes::from_static(b"a")), Push::Queued);
        assert!(matches!(pop(&q), Poll::Ready(Pop::Item(_))));
        assert!(pop(&q).is_pending());
    }

    #[test]
    fn empty_open_queue_is_pending() {
        let q = ClientQueue::new(4, 100, VecDeque::new());
        assert!(pop(&q).is_pending());
    }

    #[test]
    fn a_run_is_taken_in_order_up_to_its_bound() {
        let q = ClientQueue::new(100, usize::MAX, VecDeque::new());
        q.push(Bytes::from_static(b"a"));
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if &b[..] == b"a"));
        q.push(Bytes::from_static(b"b"));
        q.push(Bytes::from_static(b"c"));
        q.push(Bytes::from(vec![b'x'; RUN_MAX]));
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if &b[..] == b"bc"));
        assert_eq!(q.len(), 1);
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if b.len() == RUN_MAX));
        assert!(pop_run(&q).is_pending());
        // The byte bound is given back: the queue takes as much again.
        let q = ClientQueue::new(100, 4, VecDeque::new());
        for _ in 0..4 {
            assert_eq!(q.push(Bytes::from_static(b"z")), Push::Queued);
        }
        assert_eq!(q.push(Bytes::from_static(b"z")), Push::Full);
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if &b[..] == b"zzzz"));
        assert_eq!(q.push(Bytes::from_static(b"zzzz")), Push::Queued);
        q.close(Closed::Finished);
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(_))));
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::End)));
    }

    #[test]
    fn a_run_counts_each_of_its_events_against_the_bound() {
        let q = ClientQueue::new(3, usize::MAX, VecDeque::new());
        assert_eq!(
            q.push_run(Bytes::from_static(b"a\n\nb\n\n"), 2),
            Push::Queued
        );
        assert_eq!(q.len(), 2);
        // Two more events do not fit whole; one does.
        assert_eq!(q.push_run(Bytes::from_static(b"c\n\nd\n\n"), 2), Push::Full);
        assert_eq!(q.push(Bytes::from_static(b"c\n\n")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"d\n\n")), Push::Full);
        // The byte bound sees the run's bytes.
        let q = ClientQueue::new(100, 5, VecDeque::new());
        assert_eq!(q.push_run(Bytes::from_static(b"a\n\nb\n\n"), 2), Push::Full);
        assert_eq!(q.push_run(Bytes::from_static(b"a\n\nb\n"), 2), Push::Queued);
    }

    #[test]
    fn poll_pop_splits_a_run_into_its_events() {
        let q = ClientQueue::new(10, usize::MAX, VecDeque::new());
        q.push_run(Bytes::from_static(b"data: 1\n\nid: 2\ndata: 2\n\n:\n\n"), 3);
        q.push(Bytes::from_static(b"data: 4\n\n"));
        assert_eq!(q.len(), 4);
        let mut got = Vec::new();
        while let Poll::Ready(Pop::Item(b)) = pop(&q) {
            got.push(b);
            if got.len() == 4 {
                break;
            }
        }
        let got: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
        assert_eq!(
            got,
            [
                &b"data: 1\n\n"[..],
                b"id: 2\ndata: 2\n\n",
                b":\n\n",
                b"data: 4\n\n"
            ]
        );
        assert_eq!(q.len(), 0);
        assert!(pop(&q).is_pending());
        // Everything given back: the bound takes as much again.
        let q = ClientQueue::new(2, usize::MAX, VecDeque::new());
        q.push_run(Bytes::from_static(b"a\n\nb\n\n"), 2);
        assert!(matches!(pop(&q), Poll::Ready(Pop::Item(_))));
        assert_eq!(q.push(Bytes::from_static(b"c\n\n")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"d\n\n")), Push::Full);
    }

    #[test]
    fn poll_pop_run_takes_a_run_whole_and_joins_it_with_the_next() {
        let q = ClientQueue::new(10, usize::MAX, VecDeque::new());
        let run = Bytes::from_static(b"a\n\nb\n\n");
        q.push_run(run.clone(), 2);
        // Alone, the run's own buffer (no copy).
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if b.as_ptr() == run.as_ptr()));
        assert_eq!(q.len(), 0);
        q.push_run(run, 2);
        q.push(Bytes::from_static(b"c\n\n"));
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::Item(b)) if &b[..] == b"a\n\nb\n\nc\n\n"));
        assert_eq!(q.len(), 0);
        q.close(Closed::Finished);
        assert!(matches!(pop_run(&q), Poll::Ready(Pop::End)));
    }
}
