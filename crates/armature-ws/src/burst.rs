//! Broadcasts held for the rest of a handler's poll, so that a burst reaches each member as
//! one run: one queue entry, one lock, one wake and usually one write per member, instead of
//! one of each per message.
//!
//! A handler that relays what it reads (chat, a publisher) broadcasts many messages in one
//! poll: each `room.broadcast(..).await` completes without suspending. While the connection
//! task polls a handler ([`holding`]), a room broadcast on that thread is held here
//! ([`hold`]); the held frames are delivered, in the order they were broadcast, when the
//! poll ends, or before anything else is queued or closed on a connection on this thread
//! ([`release`], called by every such path of the queue), or when a run reaches
//! [`RUN_MAX_BYTES`] or [`RUN_MAX_FRAMES`]. So the order every producer sees is kept: what
//! one task broadcasts and then sends reaches each connection in that order, and nothing
//! is held past the poll that broadcast it.
//!
//! [`coalesced`] gives any other future the same (a ticker task, say).
//!
//! Nothing here knows of rooms or queues: a room implements [`Deliver`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use pin_project_lite::pin_project;

/// Most bytes of frames held as one run (past this the run is delivered).
pub(crate) const RUN_MAX_BYTES: usize = 64 * 1024;
/// Most frames held as one run.
pub(crate) const RUN_MAX_FRAMES: usize = 256;
/// Most runs held at once (broadcasts alternating between rooms).
const MAX_RUNS: usize = 8;

/// Where a held run goes (a room).
pub(crate) trait Deliver: Send + Sync {
    /// Delivers `run` to the members, in the run's order.
    fn deliver_run(&self, run: &Run);
}

/// Frames broadcast one after another to the same target with the same exception.
pub(crate) struct Run {
    target: Arc<dyn Deliver>,
    except: Option<Box<str>>,
    frames: Vec<Bytes>,
    bytes: usize,
}

impl Run {
    /// The frames, in order.
    pub(crate) fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// The member left out, if any.
    pub(crate) fn except(&self) -> Option<&str> {
        self.except.as_deref()
    }

    /// The frames concatenated (one copy, made once for every member).
    pub(crate) fn joined(&self) -> Bytes {
        match self.frames.as_slice() {
            [one] => one.clone(),
            frames => {
                let mut joined = BytesMut::with_capacity(self.bytes);
                for frame in frames {
                    joined.extend_from_slice(frame);
                }
                joined.freeze()
            }
        }
    }

    fn is_for(&self, target: *const (), except: Option<&str>) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.target) as *const (), target)
            && self.except.as_deref() == except
    }

    fn fits(&self, frame: &Bytes) -> bool {
        self.frames.len() < RUN_MAX_FRAMES && self.bytes + frame.len() <= RUN_MAX_BYTES
    }
}

thread_local! {
    /// How many handler polls on this thread are under way (nested only by a runtime
    /// inside a handler).
    static HOLDING: Cell<u32> = const { Cell::new(0) };
    /// Something is held: the one check every queue operation makes.
    static ANY: Cell<bool> = const { Cell::new(false) };
    static HELD: RefCell<Vec<Run>> = const { RefCell::new(Vec::new()) };
}

/// Runs `poll` (a handler's poll) with room broadcasts held, and delivers them when it
/// returns or unwinds.
pub(crate) fn holding<R>(poll: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            let depth = HOLDING.get().saturating_sub(1);
            HOLDING.set(depth);
            if depth == 0 {
                release();
            }
        }
    }
    HOLDING.set(HOLDING.get() + 1);
    let _guard = Guard;
    poll()
}

pin_project! {
    /// A future whose room broadcasts are coalesced like a handler's: see [`coalesced`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Coalesced<F> {
        #[pin]
        future: F,
    }
}

/// Wraps `future` so that the room broadcasts it makes in one poll are delivered as one
/// run per member when that poll returns — what every connection's handler gets without
/// asking. For a task of its own that broadcasts many messages at once, e.g. a ticker that
/// publishes a batch of updates per tick: each member then takes the batch with one queue
/// lock and one wake instead of one per message, and usually in one write. Order and
/// exactly-once are kept as for any broadcast (see
/// [`WebSocketRoom::deliver_local_coalesced`](crate::WebSocketRoom::deliver_local_coalesced)).
///
/// ```
/// use armature_ws::{WebSocketConnection, WebSocketRoom, coalesced};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), armature_ws::Error> {
/// let room = WebSocketRoom::new("prices".to_owned());
/// let (member, mut rx) = WebSocketConnection::new("c1".to_owned());
/// room.join("c1".to_owned(), member)?;
///
/// let ticker = room.clone();
/// tokio::spawn(coalesced(async move {
///     for price in [101, 102, 103] {
///         ticker.broadcast_json(&price).await?;
///     }
///     Ok::<(), armature_ws::Error>(())
/// }))
/// .await
/// .unwrap()?;
///
/// // Queued as one run, received as three messages, in order.
/// assert_eq!(rx.recv().await.unwrap().as_text(), Some("101"));
/// assert_eq!(rx.recv().await.unwrap().as_text(), Some("102"));
/// assert_eq!(rx.recv().await.unwrap().as_text(), Some("103"));
/// # Ok(()) }
/// ```
pub fn coalesced<F: Future>(future: F) -> Coalesced<F> {
    Coalesced { future }
}

impl<F: Future> Future for Coalesced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        holding(|| this.future.poll(cx))
    }
}

/// Holds `frame` for `target` when a handler is being polled on this thread. False when it
/// was not held (deliver it now; whatever was held is delivered first, so order is kept).
pub(crate) fn hold<T: Deliver + 'static>(
    target: &Arc<T>,
    frame: &Bytes,
    except: Option<&str>,
) -> bool {
    if HOLDING.get() == 0 || frame.len() > RUN_MAX_BYTES {
        release();
        return false;
    }
    let ptr = Arc::as_ptr(target) as *const ();
    let appended = HELD.with_borrow_mut(|held| {
        let runs = held.len();
        match held.last_mut() {
            Some(last) if last.is_for(ptr, except) => {
                if !last.fits(frame) {
                    return false;
                }
                last.frames.push(frame.clone());
                last.bytes += frame.len();
                true
            }
            _ if runs >= MAX_RUNS => false,
            _ => {
                held.push(new_run(target, frame, except));
                true
            }
        }
    });
    if !appended {
        release();
        HELD.with_borrow_mut(|held| held.push(new_run(target, frame, except)));
    }
    ANY.set(true);
    true
}

fn new_run<T: Deliver + 'static>(target: &Arc<T>, frame: &Bytes, except: Option<&str>) -> Run {
    let target: Arc<dyn Deliver> = target.clone();
    Run {
        target,
        except: except.map(Box::from),
        frames: vec![frame.clone()],
        bytes: frame.len(),
    }
}

/// Delivers everything held on this thread, in order. Cheap when nothing is held.
#[inline]
pub(crate) fn release() {
    if ANY.get() {
        release_held();
    }
}

#[cold]
fn release_held() {
    // Taken out first: delivering queues frames, and every queue operation calls
    // `release` (which then finds nothing held).
    let mut runs = HELD.with_borrow_mut(std::mem::take);
    ANY.set(false);
    for run in runs.drain(..) {
        run.target.deliver_run(&run);
    }
    // Keep the list's allocation for the next poll.
    HELD.with_borrow_mut(|held| {
        if held.is_empty() {
            *held = runs;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// What one delivered run held: its frames and their concatenation.
    struct Delivered(Vec<Bytes>, Bytes);

    #[derive(Default)]
    struct Recorder {
        runs: Mutex<Vec<Delivered>>,
    }

    impl Deliver for Recorder {
        fn deliver_run(&self, run: &Run) {
            self.runs
                .lock()
                .push(Delivered(run.frames().to_vec(), run.joined()));
        }
    }

    fn frame(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn nothing_is_held_outside_a_handler_poll() {
        let target = Arc::new(Recorder::default());
        assert!(!hold(&target, &frame("a"), None));
        assert!(target.runs.lock().is_empty());
    }

    #[test]
    fn a_burst_is_delivered_as_one_run_when_the_poll_ends() {
        let target = Arc::new(Recorder::default());
        holding(|| {
            assert!(hold(&target, &frame("ab"), None));
            assert!(hold(&target, &frame("cd"), None));
            assert!(target.runs.lock().is_empty(), "held until the poll ends");
        });
        let runs = target.runs.lock();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].0, vec![frame("ab"), frame("cd")]);
        assert_eq!(&runs[0].1[..], b"abcd");
    }

    #[test]
    fn runs_keep_the_order_across_targets_and_exceptions() {
        let order = Arc::new(Mutex::new(Vec::new()));
        struct Tagged(&'static str, Arc<Mutex<Vec<String>>>);
        impl Deliver for Tagged {
            fn deliver_run(&self, run: &Run) {
                let joined = run.joined();
                self.1.lock().push(format!(
                    "{}:{}:{}",
                    self.0,
                    std::str::from_utf8(&joined).unwrap(),
                    run.except().unwrap_or("-")
                ));
            }
        }
        let ta = Arc::new(Tagged("a", order.clone()));
        let tb = Arc::new(Tagged("b", order.clone()));
        holding(|| {
            hold(&ta, &frame("1"), None);
            hold(&ta, &frame("2"), None);
            hold(&tb, &frame("3"), None);
            hold(&ta, &frame("4"), Some("me"));
            hold(&ta, &frame("5"), Some("me"));
        });
        assert_eq!(*order.lock(), ["a:12:-", "b:3:-", "a:45:me"]);
    }

    #[test]
    fn release_delivers_what_is_held_before_anything_else() {
        let target = Arc::new(Recorder::default());
        holding(|| {
            hold(&target, &frame("x"), None);
            release(); // what a send on a connection does first
            assert_eq!(target.runs.lock().len(), 1);
            hold(&target, &frame("y"), None);
        });
        assert_eq!(target.runs.lock().len(), 2);
    }

    #[test]
    fn a_full_run_is_delivered_and_a_new_one_started() {
        let target = Arc::new(Recorder::default());
        holding(|| {
            for _ in 0..RUN_MAX_FRAMES + 1 {
                hold(&target, &frame("f"), None);
            }
            assert_eq!(target.runs.lock().len(), 1, "the full run went at once");
        });
        let runs = target.runs.lock();
        assert_eq!(runs[0].0.len(), RUN_MAX_FRAMES);
        assert_eq!(runs[1].0.len(), 1);
    }

    #[test]
    fn a_large_frame_is_not_held_but_goes_after_what_was() {
        let target = Arc::new(Recorder::default());
        let big = Bytes::from(vec![0u8; RUN_MAX_BYTES + 1]);
        holding(|| {
            hold(&target, &frame("small"), None);
            assert!(!hold(&target, &big, None));
            assert_eq!(
                target.runs.lock().len(),
                1,
                "the small one was delivered first"
            );
        });
    }

    #[test]
    fn a_panicking_poll_still_delivers() {
        let target = Arc::new(Recorder::default());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            holding(|| {
                hold(&target, &frame("before the panic"), None);
                panic!("handler panicked");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(target.runs.lock().len(), 1);
        assert!(!hold(&target, &frame("after"), None), "no longer holding");
    }
}
