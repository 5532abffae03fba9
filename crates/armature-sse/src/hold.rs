//! Broadcasts held to the end of a turn, so each client gets the turn's events as one run.
//!
//! A publisher that handles several requests in one poll (hyper serving pipelined
//! `POST /publish` requests, a handler relaying a batch) broadcasts event after event. Queued
//! one by one, every event costs every client a lock, a queue slot and a refcount. Inside
//! [`coalesced`] (or [`in_turn`]), a broadcast on [`LocalSseTransport`] is held by its
//! broadcaster instead, and this thread notes the broadcaster; when the poll returns (or
//! unwinds), each noted broadcaster queues what it holds, in order, as one run: one buffer
//! shared by every client, one lock and one slot per client, under the slow-client policy as
//! the events would have been one by one.
//!
//! The events are held by the broadcaster, not by the thread, so order is kept across
//! threads: whatever next touches the broadcaster's clients (a broadcast outside a turn on any
//! thread, a client registering, a keep-alive, the stats, a `retain`) first queues what is
//! held. A broadcaster also queues early when it holds [`MAX_HELD_EVENTS`] events or
//! [`MAX_HELD_BYTES`] bytes, and [`release_held`] queues everything this thread noted now.
//!
//! This module is the bottom layer: the broadcaster implements [`Release`].
//!
//! [`LocalSseTransport`]: crate::LocalSseTransport
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;

/// What holds events for a turn: a broadcaster's client registry.
pub(crate) trait Release: Send + Sync {
    /// Queues what is held (in order) for every client, as one run where a client's queue
    /// takes it whole. Does nothing when nothing is held.
    fn release(&self);
}

/// One held event: its wire bytes and its id (for the history).
#[derive(Debug, Clone)]
pub(crate) struct HeldEvent {
    pub(crate) id: Option<Arc<str>>,
    pub(crate) bytes: Bytes,
}

/// The most events a broadcaster holds before it queues them.
pub const MAX_HELD_EVENTS: usize = 256;

/// The most bytes a broadcaster holds before it queues them.
pub const MAX_HELD_BYTES: usize = 64 * 1024;

thread_local! {
    /// Nesting depth of [`in_turn`] on this thread; broadcasts are held while above 0.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The broadcasters that hold events for this thread's turn, in the order they were
    /// first used.
    static NOTED: RefCell<Vec<Weak<dyn Release>>> = const { RefCell::new(Vec::new()) };
}

/// True inside a turn on this thread: a broadcast is held.
pub(crate) fn holding() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Notes that `target` holds events for this thread's turn: it is released when the turn
/// ends. Noting a target twice releases it once.
pub(crate) fn note(target: Weak<dyn Release>) {
    NOTED.with(|noted| {
        let mut noted = noted.borrow_mut();
        if !noted.iter().any(|t| Weak::ptr_eq(t, &target)) {
            noted.push(target);
        }
    });
}

/// Queues now every event held for this thread's turn, broadcaster by broadcaster, each
/// broadcaster's in the order they were broadcast. Cheap when nothing is held;
/// [`coalesced`] and [`in_turn`] call it when a turn ends.
pub fn release_held() {
    // Taken out first: releasing may note again.
    let noted = NOTED.with(|noted| std::mem::take(&mut *noted.borrow_mut()));
    for target in noted {
        if let Some(target) = target.upgrade() {
            target.release();
        }
    }
}

/// Releases when dropped, also on unwinding.
struct TurnGuard;

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n
        });
        if depth == 0 {
            release_held();
        }
    }
}

/// Runs `turn` with SSE broadcasts on this thread held, and queues them (as one run per
/// broadcaster and client) when it returns or unwinds. Nested turns release at the end of
/// the outermost.
///
/// ```
/// use armature_sse::{ServerSentEvent, SseBroadcaster, in_turn};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), armature_sse::Error> {
/// let broadcaster = SseBroadcaster::new();
/// let mut client = broadcaster.register().await;
/// in_turn(|| -> Result<(), armature_sse::Error> {
///     broadcaster.broadcast_now(&ServerSentEvent::new("a".to_owned()))?;
///     broadcaster.broadcast_now(&ServerSentEvent::new("b".to_owned()))?;
///     Ok(())
/// })?;
/// // The client's stream still yields one event at a time.
/// assert_eq!(client.next().await.unwrap()?, "data: a\n\n");
/// assert_eq!(client.next().await.unwrap()?, "data: b\n\n");
/// # Ok(())
/// # }
/// ```
pub fn in_turn<R>(turn: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let _guard = TurnGuard;
    turn()
}

/// A future whose every poll is a turn ([`in_turn`]): what it broadcasts over SSE in one
/// poll reaches each client as one run.
pub fn coalesced<F: Future>(future: F) -> Coalesced<F> {
    Coalesced {
        future: Box::pin(future),
    }
}

/// The future of [`coalesced`].
pub struct Coalesced<F> {
    future: Pin<Box<F>>,
}

impl<F> std::fmt::Debug for Coalesced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalesced").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Coalesced<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.future.as_mut();
        in_turn(|| future.poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// A target that counts its releases.
    #[derive(Default)]
    struct Count(Mutex<usize>);

    impl Release for Count {
        fn release(&self) {
            *self.0.lock() += 1;
        }
    }

    fn weak(c: &Arc<Count>) -> Weak<dyn Release> {
        let w: Weak<Count> = Arc::downgrade(c);
        w
    }

    #[test]
    fn outside_a_turn_nothing_is_held() {
        assert!(!holding());
        in_turn(|| assert!(holding()));
        assert!(!holding());
    }

    #[test]
    fn a_turn_releases_each_target_once_at_the_outermost_end() {
        let a = Arc::new(Count::default());
        let b = Arc::new(Count::default());
        in_turn(|| {
            note(weak(&a));
            note(weak(&b));
            in_turn(|| note(weak(&a)));
            // The inner turn did not release.
            assert_eq!(*a.0.lock(), 0);
        });
        assert_eq!((*a.0.lock(), *b.0.lock()), (1, 1));
        // Nothing is noted any more.
        release_held();
        assert_eq!(*a.0.lock(), 1);
    }

    #[test]
    fn a_panic_releases_and_ends_the_turn() {
        let a = Arc::new(Count::default());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_turn(|| {
                note(weak(&a));
                panic!("handler bug");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(*a.0.lock(), 1);
        assert!(!holding());
    }

    #[test]
    fn release_queues_now_and_a_dropped_target_is_skipped() {
        let a = Arc::new(Count::default());
        let gone = Arc::new(Count::default());
        in_turn(|| {
            note(weak(&a));
            release_held();
            assert_eq!(*a.0.lock(), 1);
            note(weak(&a));
            note(weak(&gone));
            drop(gone);
        });
        assert_eq!(*a.0.lock(), 2);
    }

    #[tokio::test]
    async fn each_poll_of_a_coalesced_future_is_a_turn() {
        let a = Arc::new(Count::default());
        let w = weak(&a);
        let polls = std::sync::atomic::AtomicUsize::new(0);
        coalesced(std::future::poll_fn(|cx| {
            assert!(holding());
            note(w.clone());
            if polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }))
        .await;
        assert_eq!(*a.0.lock(), 2);
    }
}
