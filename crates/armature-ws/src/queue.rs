//! The state a connection shares with its handles: a send queue bounded in bytes of encoded
//! frames, the waker of the connection task, close requests, activity times and room
//! memberships.
//!
//! Enqueueing is a short `parking_lot` critical section (push, add the length) followed by a
//! wake when the queue was empty; it never waits for the socket. The connection task takes
//! everything queued at once and writes it in as few system calls as possible.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use crate::clock::now_ms;
use crate::config::Backpressure;
use crate::room::RoomInner;
use crate::stats::Stats;
use crate::{Error, Result};

/// How a connection was asked to close.
#[derive(Debug)]
pub(crate) enum CloseRequest {
    /// Write what is queued, then this close frame, then wait for the peer's close.
    Graceful(CloseFrame),
    /// Drop what is queued, write this close frame if the socket takes it, then drop the
    /// connection without waiting (slow or silent peer).
    Abort(CloseFrame),
}

/// Queue limits, copied from the config when the connection starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_queue_bytes: usize,
    pub(crate) backpressure: Backpressure,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// Boxed: rare, and every idle connection carries the slot.
    close: Option<Box<CloseRequest>>,
    /// A close was requested or the connection is gone: nothing more may be queued.
    closing: bool,
    /// The connection is gone.
    closed: bool,
    /// Drop the connection now, without a close handshake (close timeout, shutdown
    /// deadline).
    forced: bool,
    rooms: Vec<(Weak<RoomInner>, Arc<str>)>,
}

/// Shared between a connection task and every [`WebSocketConnection`](crate::WebSocketConnection)
/// handle of it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: Arc<str>,
    state: Mutex<State>,
    waker: AtomicWaker,
    limits: Limits,
    pub(crate) stats: Arc<Stats>,
    /// When the last bytes arrived from the peer (ms, [`now_ms`]).
    pub(crate) last_rx: AtomicU64,
    /// When the last text or binary message arrived from the peer.
    pub(crate) last_msg: AtomicU64,
    /// When the heartbeat sent a ping still unanswered (0: none).
    pub(crate) ping_sent: AtomicU64,
    /// When the server's close frame went out (0: not yet).
    pub(crate) close_sent: AtomicU64,
}

/// What the connection task takes from the queue in one go.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) close: Option<CloseRequest>,
}

impl Shared {
    pub(crate) fn new(id: Arc<str>, limits: Limits, stats: Arc<Stats>) -> Self {
        let now = now_ms();
        Shared {
            id,
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            limits,
            stats,
            last_rx: AtomicU64::new(now),
            last_msg: AtomicU64::new(now),
            ping_sent: AtomicU64::new(0),
            close_sent: AtomicU64::new(0),
        }
    }

    /// Queues an encoded data frame, applying the back-pressure policy.
    pub(crate) fn push(&self, frame: Bytes) -> Result<()> {
        let len = frame.len();
        let mut state = self.state.lock();
        if state.closing {
            return Err(Error::Closed);
        }
        // A frame larger than the whole bound still goes through an empty queue, so one big
        // message does not close every client; the queue then holds at most that one frame.
        if state.bytes > 0 && state.bytes + len > self.limits.max_queue_bytes {
            match self.limits.backpressure {
                Backpressure::DropNewest => {
                    drop(state);
                    Stats::bump(&self.stats.messages_dropped);
                }
                Backpressure::Close => {
                    state.frames = VecDeque::new();
                    state.bytes = 0;
                    state.closing = true;
                    state.close = Some(Box::new(CloseRequest::Abort(close_frame(
                        CloseCode::Policy,
                        "send queue full",
                    ))));
                    drop(state);
                    Stats::bump(&self.stats.slow_clients_closed);
                    self.waker.wake();
                }
            }
            return Err(Error::QueueFull);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame);
        state.bytes += len;
        drop(state);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Queues a control frame (a heartbeat ping) outside the byte bound.
    pub(crate) fn push_control(&self, frame: Bytes) -> bool {
        let mut state = self.state.lock();
        if state.closing {
            return false;
        }
        let was_empty = state.frames.is_empty();
        state.bytes += frame.len();
        state.frames.push_back(frame);
        drop(state);
        if was_empty {
            self.waker.wake();
        }
        true
    }

    /// Asks the connection to close; the first request wins. Returns false when the
    /// connection was already closing.
    pub(crate) fn request_close(&self, request: CloseRequest) -> bool {
        let mut state = self.state.lock();
        if state.closing {
            return false;
        }
        state.closing = true;
        if matches!(request, CloseRequest::Abort(_)) {
            state.frames = VecDeque::new();
            state.bytes = 0;
        }
        state.close = Some(Box::new(request));
        drop(state);
        self.waker.wake();
        true
    }

    /// Drops the connection at once: no more writes, no close handshake.
    pub(crate) fn force_abort(&self) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.forced = true;
        state.closing = true;
        state.frames = VecDeque::new();
        state.bytes = 0;
        drop(state);
        self.waker.wake();
    }

    /// An abort asked of the connection task: `Some(None)` to drop the connection now,
    /// `Some(Some(frame))` to drop it after a best-effort close frame.
    pub(crate) fn take_abort(&self) -> Option<Option<CloseFrame>> {
        let mut state = self.state.lock();
        if state.forced {
            return Some(None);
        }
        match state.close.take().map(|request| *request) {
            Some(CloseRequest::Abort(frame)) => Some(Some(frame)),
            other => {
                state.close = other.map(Box::new);
                None
            }
        }
    }

    /// Registers the connection task's waker (call before [`Shared::take_into`]).
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Moves queued frames into `out` (up to about `budget` bytes, at least one frame) and
    /// returns a pending close request once the queue is empty.
    pub(crate) fn take_into(&self, out: &mut VecDeque<Bytes>, budget: usize) -> Taken {
        let mut state = self.state.lock();
        let mut taken = 0;
        while let Some(frame) = state.frames.pop_front() {
            taken += frame.len();
            out.push_back(frame);
            if taken >= budget {
                break;
            }
        }
        state.bytes -= taken;
        if state.frames.is_empty() && state.frames.capacity() > 64 {
            state.frames = VecDeque::new();
        }
        let close = if state.frames.is_empty() {
            state.close.take().map(|request| *request)
        } else {
            None
        };
        Taken { close }
    }

    /// The queue bound in bytes.
    pub(crate) fn max_queue_bytes(&self) -> usize {
        self.limits.max_queue_bytes
    }

    /// Bytes queued and not yet taken by the connection task.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// True once a close was requested or the connection is gone.
    pub(crate) fn is_closing(&self) -> bool {
        self.state.lock().closing
    }

    /// True once the connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Marks the connection closing (its own close handshake started), so handles stop
    /// queueing.
    pub(crate) fn mark_closing(&self) {
        self.state.lock().closing = true;
    }

    /// Records membership of a room, so that the connection leaves it when it ends.
    /// Returns false (and records nothing) when the connection is already gone.
    pub(crate) fn joined(&self, room: Weak<RoomInner>, key: Arc<str>) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        state.rooms.push((room, key));
        true
    }

    /// Forgets membership of a room.
    pub(crate) fn left(&self, room: &RoomInner) {
        let mut state = self.state.lock();
        state
            .rooms
            .retain(|(weak, _)| !std::ptr::eq(weak.as_ptr(), room as *const RoomInner));
    }

    /// The connection is gone: frees the queue and leaves every room.
    pub(crate) fn finish(self: &Arc<Self>) {
        let rooms = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.closing = true;
            state.frames = VecDeque::new();
            state.bytes = 0;
            state.close = None;
            std::mem::take(&mut state.rooms)
        };
        for (room, key) in rooms {
            if let Some(room) = room.upgrade() {
                room.remove_member(&key, self);
            }
        }
    }
}

/// A close frame with a static reason.
pub(crate) fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}
