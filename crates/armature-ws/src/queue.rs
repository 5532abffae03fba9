//! The state a connection shares with its handles: a send queue bounded in bytes of encoded
//! frames, the inbox of received messages, the wakers of the connection task and of the
//! handler, close requests, activity times and memberships.
//!
//! Enqueueing is a short `parking_lot` critical section (push, add the length) followed by a
//! wake when the queue was empty; it never waits for the socket. The connection task takes
//! everything queued at once and writes it in as few system calls as possible.
//!
//! This module knows nothing of rooms: a group that wants to hear when a connection ends
//! registers a [`Membership`] (which the room implements) and is told through it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes, WebSocketMessage};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::burst;
use crate::clock::now_ms;
use crate::compress::{FrameCache, Outgoing};
use crate::config::{Backpressure, WebSocketConfig};
use crate::frames::Frames;
use crate::inbox::{Inbox, InboxLimits, Offer};
use crate::rate::{MessageLimiter, MessageRate};
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

/// Queue limits, copied from the config when the connection starts; every connection keeps
/// a copy, so the sizes are `u32`s (saturated: 4 GiB is past any sane bound).
/// `repr(C)`: the two fields a push reads first (see [`Shared`]).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct Limits {
    max_queue_bytes: u32,
    pub(crate) backpressure: Backpressure,
    pub(crate) inbox: InboxLimits,
}

impl Limits {
    pub(crate) fn from_config(config: &WebSocketConfig) -> Self {
        Limits {
            max_queue_bytes: saturate(config.max_queue_bytes),
            backpressure: config.backpressure,
            inbox: InboxLimits {
                messages: saturate(config.inbox_messages),
                bytes: saturate(config.inbox_bytes),
            },
        }
    }

    /// Most bytes queued to send.
    pub(crate) fn max_queue_bytes(&self) -> usize {
        self.max_queue_bytes as usize
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Something a connection belongs to (a room) that must hear when the connection ends.
/// Implemented by the upper layer; the queue holds it weakly.
pub(crate) trait Membership: Send + Sync {
    /// The connection `shared`, a member under `key`, has ended.
    fn connection_ended(self: Arc<Self>, key: &str, shared: &Arc<Shared>);
}

/// Laid out in declaration order (`repr(C)`), what a push or a take touches: the queue sits
/// right after the lock, in the cache line the lock takes, and its byte count, the flags and
/// the task's waker in the following one (see [`Shared`]); the close request (read only with
/// `close_requested`) comes last.
#[repr(C)]
struct State {
    frames: Frames,
    /// Bytes queued: a `u32` (saturating, like the bound it is checked against) keeps the
    /// state, and so every connection's `Shared`, within jemalloc's 224-byte class.
    bytes: u32,
    /// Live [`WebSocket`](crate::WebSocket) values (and split halves) of this connection;
    /// when the last one goes, the connection closes.
    /// (At most two: a socket, or its two halves; a `u16` keeps the state small.)
    sockets: u16,
    /// A close was requested, the socket values are gone, or the connection is gone:
    /// nothing more may be queued.
    closing: bool,
    /// A close was requested (the first request wins).
    close_requested: bool,
    /// The connection is gone.
    closed: bool,
    /// The last socket value was dropped: the driver closes normally once the queue is
    /// written (unless a close was requested meanwhile, e.g. by the handler's outcome).
    unowned: bool,
    /// Drop the connection now, without a close handshake (close timeout, shutdown
    /// deadline).
    forced: bool,
    /// The handler waits for a message (its waker is the connection's own, so only this
    /// flag is stored).
    handler_reads: bool,
    /// The connection task is polling the handler right now and drives the socket right
    /// after, so frames queued meanwhile need no wake-up.
    in_handler: bool,
    /// Something was queued for the driver while the handler was being polled: the task
    /// drives the socket again before it sleeps.
    handler_queued: bool,
    /// The connection task (the driver of the socket), registered each time it drives the
    /// socket and taken by the first wake. Under the queue's lock, which every wake of the
    /// driver holds anyway (a push, a close request), so a wake costs no atomic operation
    /// of its own.
    waker: Option<Waker>,
    /// What only matters while messages flow (the inbox, waiting tasks): allocated when
    /// the first is needed, freed when the inbox is drained and nobody waits, so an idle
    /// connection holds none.
    flow: Option<Box<Flow>>,
    /// Set only with `close_requested`. Boxed: rare, and every idle connection carries the
    /// slot.
    close: Option<Box<CloseRequest>>,
}

/// The groups a connection belongs to, and the key it has in each. A boxed slice, not a
/// `Vec`: 8 bytes less in every connection's `Shared` (no capacity), and no spare room;
/// joining and leaving, which are rare next to what a connection sends, reallocate it.
type Memberships = Box<[(Weak<dyn Membership>, Arc<str>)]>;

/// The part of [`State`] that only matters while messages flow.
#[derive(Default)]
struct Flow {
    /// Messages received and not yet taken by the handler.
    inbox: Inbox,
    /// A task other than the handler reading the inbox (a split receiver), waiting for a
    /// message.
    reader: Option<Waker>,
    /// A task sending on the socket, waiting for room in the queue or for a flush.
    sender: Option<Waker>,
}

/// Who waits for a message, taken from the state to be woken outside the lock.
pub(crate) enum Reader {
    /// The handler: [`Shared::wake_handler`].
    Handler,
    /// Another task.
    Task(Waker),
}

impl State {
    fn new() -> Self {
        State {
            frames: Frames::default(),
            bytes: 0,
            sockets: 0,
            closing: false,
            close_requested: false,
            closed: false,
            unowned: false,
            forced: false,
            handler_reads: false,
            in_handler: false,
            handler_queued: false,
            waker: None,
            flow: None,
            close: None,
        }
    }

    /// The driver's waker to wake now that the queue holds something, unless the task is
    /// polling the handler (it drives the socket right after: told through
    /// `handler_queued`).
    fn driver_to_wake(&mut self) -> Option<Waker> {
        if self.in_handler {
            self.handler_queued = true;
            return None;
        }
        self.waker.take()
    }

    /// Queues `entry` last; returns the driver's waker to wake (outside the lock) when the
    /// queue was empty.
    fn enqueue(&mut self, entry: Bytes) -> Option<Waker> {
        let driver = if self.frames.is_empty() {
            self.driver_to_wake()
        } else {
            None
        };
        self.bytes = self.bytes.saturating_add(saturate(entry.len()));
        self.frames.push_back(entry);
        driver
    }

    fn flow(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(Box::default)
    }

    fn take_reader(&mut self) -> Option<Reader> {
        if std::mem::take(&mut self.handler_reads) {
            return Some(Reader::Handler);
        }
        self.flow.as_mut()?.reader.take().map(Reader::Task)
    }

    fn take_sender(&mut self) -> Option<Waker> {
        self.flow.as_mut()?.sender.take()
    }

    fn set_sender(&mut self, waker: &Waker) {
        set_waker(&mut self.flow().sender, waker);
    }

    fn inbox(&self) -> Option<&Inbox> {
        self.flow.as_deref().map(|flow| &flow.inbox)
    }

    /// Frees the flow state once nothing in it matters.
    fn release_flow(&mut self) {
        if self.flow.as_ref().is_some_and(|flow| {
            flow.inbox.is_idle() && flow.reader.is_none() && flow.sender.is_none()
        }) {
            self.flow = None;
        }
    }
}

/// Shared between a connection task and every [`WebSocketConnection`](crate::WebSocketConnection)
/// handle of it.
///
/// Laid out in declaration order (`repr(C)`), grouped by what touches it: a broadcast's push
/// reads `rare` (for `deflate`), the lock and the queue (one cache line with the `Arc`'s
/// counts when the allocation starts a line: jemalloc's 224-byte class, which 208 bytes of
/// state and the counts fit, starts every other one on a line and the rest half way into
/// one), then the byte count, the
/// flags, the task's waker and the queue's bound (the next); the connection task's take
/// reads the same two. Memberships, timestamps and the rest come after. A broadcast calls
/// [`prefetch`](Self::prefetch) for a batch of members before pushing to them, so those
/// lines arrive together instead of one miss after another behind each member's lock.
#[repr(C)]
pub(crate) struct Shared {
    /// What few connections have (permessage-deflate, an agreed subprotocol, a message
    /// limit), in one box allocated only when one is set: every connection carries the
    /// slot. First: a broadcast's push reads it (for `deflate`).
    rare: Option<Box<Rare>>,
    state: Mutex<State>,
    limits: Limits,
    /// The groups the connection belongs to. A lock of its own, taken only while the
    /// state's is held or alone (never the other way round), so the hot state stays within
    /// two cache lines.
    memberships: Mutex<Memberships>,
    /// The handler's waker was woken: the task polls the handler in its next turn. The
    /// handler is polled with a waker made of this `Shared` (see the `Wake` impl), so the
    /// wakes meant for the socket (the send queue, the peer) do not poll the handler.
    pub(crate) handler_woken: AtomicBool,
    /// The driver holds frames it has not finished writing.
    pub(crate) writing: AtomicBool,
    /// The connection runs on a plain `TcpStream` (the lean path).
    pub(crate) on_tcp: AtomicBool,
    /// Reading is paused because the inbox is full (the heartbeat does not count then).
    pub(crate) paused: AtomicBool,
    pub(crate) id: Arc<str>,
    pub(crate) stats: Arc<Stats>,
    /// When the last bytes arrived from the peer (ms, [`now_ms`]).
    pub(crate) last_rx: AtomicU64,
    /// When the last text or binary message arrived from the peer.
    pub(crate) last_msg: AtomicU64,
    /// When the heartbeat asked for a ping not yet written (0: none).
    pub(crate) ping_requested: AtomicU64,
    /// When the heartbeat's ping was written to the socket, still unanswered (0: none).
    pub(crate) ping_sent: AtomicU64,
    /// When the server's close frame went out (0: not yet).
    pub(crate) close_sent: AtomicU64,
}

/// The rarely set parts of a connection's state.
#[derive(Default)]
struct Rare {
    /// permessage-deflate for what this connection sends, when negotiated.
    deflate: Option<Outgoing>,
    /// The subprotocol agreed in the handshake.
    protocol: Option<Box<str>>,
    /// The inbound message limit, when the route or server sets one.
    message_limit: Option<MessageLimiter>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).finish()
    }
}

/// What the connection task takes from the queue in one go.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) close: Option<CloseRequest>,
}

impl Shared {
    pub(crate) fn new(
        id: Arc<str>,
        limits: Limits,
        stats: Arc<Stats>,
        protocol: Option<Box<str>>,
    ) -> Self {
        let now = now_ms();
        Shared {
            id,
            state: Mutex::new(State::new()),
            limits,
            memberships: Mutex::new(Box::default()),
            stats,
            rare: protocol.map(|protocol| {
                Box::new(Rare {
                    protocol: Some(protocol),
                    ..Rare::default()
                })
            }),
            last_rx: AtomicU64::new(now),
            last_msg: AtomicU64::new(now),
            ping_requested: AtomicU64::new(0),
            ping_sent: AtomicU64::new(0),
            close_sent: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            // The handler's first poll.
            handler_woken: AtomicBool::new(true),
            writing: AtomicBool::new(false),
            on_tcp: AtomicBool::new(false),
        }
    }

    /// This state, limiting what the peer sends to `rate`.
    pub(crate) fn with_message_rate(mut self, rate: Option<&MessageRate>) -> Self {
        if let Some(rate) = rate {
            self.rare.get_or_insert_with(Box::default).message_limit =
                Some(MessageLimiter::new(rate));
        }
        self
    }

    /// The subprotocol agreed in the handshake, if any.
    pub(crate) fn protocol(&self) -> Option<&str> {
        self.rare.as_ref()?.protocol.as_deref()
    }

    /// permessage-deflate for what this connection sends, if negotiated.
    #[inline]
    pub(crate) fn deflate(&self) -> Option<&Outgoing> {
        self.rare.as_ref()?.deflate.as_ref()
    }

    /// The inbound message limit, if any.
    pub(crate) fn message_limit(&self) -> Option<&MessageLimiter> {
        self.rare.as_ref()?.message_limit.as_ref()
    }

    /// This connection's state, compressing what it sends as `deflate` says.
    pub(crate) fn with_deflate(mut self, deflate: Option<Outgoing>) -> Self {
        if let Some(deflate) = deflate {
            self.rare.get_or_insert_with(Box::default).deflate = Some(deflate);
        }
        self
    }

    /// `frame` compressed as this connection wants it, unless it compresses with its own
    /// context (then the frame is compressed under the queue lock, see `queue_frame`).
    fn encode_unlocked(&self, frame: Bytes) -> Bytes {
        match self.deflate() {
            Some(deflate) if !deflate.is_dedicated() => deflate.encode(frame),
            _ => frame,
        }
    }

    /// Queues one encoding of a broadcast frame: the one `cache` holds for this
    /// connection's kind (made once per kind), or the plain frame compressed by this
    /// connection's own compressor.
    pub(crate) fn push_broadcast(&self, cache: &mut FrameCache<'_>) -> Result<()> {
        match cache.frame_for(self.deflate()) {
            Some(frame) => self.push_encoded(frame),
            None => self.push(cache.plain().clone()),
        }
    }

    /// Reads one word of each cache line a broadcast's push touches, without the lock (see
    /// the layout note on [`Shared`]). A broadcast calls it some members ahead of the one it
    /// pushes to: the reads of one call are independent, so their misses overlap, and the
    /// push finds its lines loaded. Safe code has no prefetch instruction; a relaxed load of
    /// a field that shares the line does the same work.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let lock = self.state.is_locked();
        let rare = self.rare.is_some();
        let bound = self.limits.max_queue_bytes;
        std::hint::black_box((lock, rare, bound));
    }

    /// The connection task starts polling the handler: what is queued meanwhile wakes
    /// nothing (the task drives the socket right after).
    pub(crate) fn enter_handler(&self) {
        let mut state = self.state.lock();
        state.in_handler = true;
        state.handler_queued = false;
    }

    /// The handler's poll ended; true when something was queued for the driver meanwhile.
    pub(crate) fn leave_handler(&self) -> bool {
        let mut state = self.state.lock();
        state.in_handler = false;
        std::mem::take(&mut state.handler_queued)
    }

    /// True when `waker` is the handler's waker of this connection.
    pub(crate) fn is_handler_waker(self: &Arc<Self>, waker: &Waker) -> bool {
        std::ptr::eq(waker.data(), Arc::as_ptr(self).cast())
    }

    /// Wakes the connection task whatever it is doing.
    pub(crate) fn wake_driver_now(&self) {
        wake(self.state.lock().waker.take());
    }

    /// Queues an encoded data frame (compressed on the way when negotiated), applying the
    /// back-pressure policy.
    pub(crate) fn push(&self, frame: Bytes) -> Result<()> {
        let frame = self.encode_unlocked(frame);
        self.push_encoded(frame)
    }

    /// Queues a frame already in the encoding this connection wants.
    fn push_encoded(&self, frame: Bytes) -> Result<()> {
        // Broadcasts this thread's handler made before this go first.
        burst::release();
        let mut len = frame.len();
        let mut state = self.state.lock();
        let frame = match self.deflate() {
            // Compressed under the lock: the peer's window follows the queue's order.
            Some(deflate) if deflate.is_dedicated() && !state.closing => {
                let frame = deflate.encode(frame);
                len = frame.len();
                frame
            }
            _ => frame,
        };
        if state.closing {
            return Err(Error::Closed);
        }
        // A frame larger than the whole bound still goes through an empty queue, so one big
        // message does not close every client; the queue then holds at most that one frame.
        if state.bytes > 0 && state.bytes as usize + len > self.limits.max_queue_bytes() {
            match self.limits.backpressure {
                Backpressure::DropNewest => {
                    drop(state);
                    Stats::bump(&self.stats.messages_dropped);
                }
                Backpressure::Close => {
                    state.frames.clear();
                    state.bytes = 0;
                    state.closing = true;
                    state.close_requested = true;
                    state.close = Some(Box::new(CloseRequest::Abort(close_frame(
                        CloseCode::Policy,
                        "send queue full",
                    ))));
                    let driver = state.waker.take();
                    drop(state);
                    Stats::bump(&self.stats.slow_clients_closed);
                    tracing::info!(id = %self.id, queued = len, "websocket slow client dropped: send queue full");
                    wake(driver);
                }
            }
            return Err(Error::QueueFull);
        }
        let driver = state.enqueue(frame);
        drop(state);
        wake(driver);
        Ok(())
    }

    /// Queues a frame outside the back-pressure policy (the socket's own sends, which wait
    /// for room instead). False when the connection is closing.
    pub(crate) fn push_own(&self, frame: Bytes) -> bool {
        burst::release();
        let frame = self.encode_unlocked(frame);
        let mut state = self.state.lock();
        if state.closing {
            return false;
        }
        let frame = match self.deflate() {
            Some(deflate) if deflate.is_dedicated() => deflate.encode(frame),
            _ => frame,
        };
        let driver = state.enqueue(frame);
        drop(state);
        wake(driver);
        true
    }

    /// Queues a run of broadcast frames (`run`: their concatenation) as one entry, when
    /// this connection sends them as they are (no compression of its own) and the whole run
    /// fits under the queue's bound. False when it does not: the caller queues the frames
    /// one by one, so the back-pressure policy sees each (exactly what it would have seen
    /// without the run). A closing connection refuses the run (true: nothing more to do).
    pub(crate) fn push_run(&self, run: &Bytes) -> bool {
        if self.deflate().is_some() {
            return false;
        }
        let len = run.len();
        let mut state = self.state.lock();
        if state.closing {
            return true;
        }
        if state.bytes as usize + len > self.limits.max_queue_bytes() {
            return false;
        }
        let driver = state.enqueue(run.clone());
        drop(state);
        wake(driver);
        true
    }

    /// Ready once the queue is under its bound (`Err` once the connection is closing).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        burst::release();
        let mut state = self.state.lock();
        if state.closing {
            return Poll::Ready(Err(Error::Closed));
        }
        if state.bytes as usize <= self.limits.max_queue_bytes() {
            return Poll::Ready(Ok(()));
        }
        state.set_sender(cx.waker());
        Poll::Pending
    }

    /// Ready once everything queued so far has been written to the socket, or the
    /// connection is gone.
    pub(crate) fn poll_flushed(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        burst::release();
        let mut state = self.state.lock();
        if state.closed {
            return Poll::Ready(Err(Error::Closed));
        }
        if state.frames.is_empty() && !self.writing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        state.set_sender(cx.waker());
        drop(state);
        // The driver may have finished between the check and the registration.
        if !self.writing.load(Ordering::Acquire) && self.state.lock().frames.is_empty() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Ready once the server's close frame went out, or the connection is gone.
    pub(crate) fn poll_close_sent(&self, cx: &mut Context<'_>) -> Poll<()> {
        burst::release();
        let mut state = self.state.lock();
        if state.closed || self.close_sent.load(Ordering::Acquire) != 0 {
            return Poll::Ready(());
        }
        state.set_sender(cx.waker());
        Poll::Pending
    }

    /// Wakes a sender waiting for room, a flush or the close frame.
    pub(crate) fn wake_sender(&self) {
        let waker = self.state.lock().take_sender();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Asks the connection to close; the first request wins. Returns false when the
    /// connection was already closing.
    pub(crate) fn request_close(&self, request: CloseRequest) -> bool {
        // What this thread's handler broadcast before goes out before the close.
        burst::release();
        let mut state = self.state.lock();
        // Dropping the last socket value stops queueing but leaves the close code to the
        // handler's outcome, decided right after.
        if state.close_requested || (state.closing && !state.unowned) {
            return false;
        }
        state.closing = true;
        state.close_requested = true;
        if matches!(request, CloseRequest::Abort(_)) {
            state.frames.clear();
            state.bytes = 0;
        }
        state.close = Some(Box::new(request));
        let driver = state.waker.take();
        drop(state);
        wake(driver);
        true
    }

    /// Drops the connection at once: no more writes, no close handshake.
    pub(crate) fn force_abort(&self) {
        burst::release();
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.forced = true;
        state.closing = true;
        state.close_requested = true;
        state.frames.clear();
        state.bytes = 0;
        let driver = state.waker.take();
        drop(state);
        wake(driver);
    }

    /// Registers the connection task's waker (call before [`Shared::take_into`]).
    pub(crate) fn register(&self, waker: &Waker) {
        set_waker(&mut self.state.lock().waker, waker);
    }

    /// Registers the connection task's waker, then takes an abort asked of it, under one
    /// lock (what the driver does first each time it drives the socket): `Some(None)` to
    /// drop the connection now, `Some(Some(frame))` to drop it after a best-effort close
    /// frame.
    pub(crate) fn register_and_take_abort(&self, waker: &Waker) -> Option<Option<CloseFrame>> {
        let mut state = self.state.lock();
        set_waker(&mut state.waker, waker);
        if state.forced {
            return Some(None);
        }
        // A graceful close stays queued for the driver to write after the frames.
        let Some(CloseRequest::Abort(frame)) = state.close.as_deref() else {
            return None;
        };
        let frame = frame.clone();
        state.close = None;
        Some(Some(frame))
    }

    /// Moves queued frames into `out` (up to about `budget` bytes, at least one frame) and
    /// returns a pending close request once the queue is empty. Wakes a waiting sender.
    pub(crate) fn take_into(&self, out: &mut VecDeque<Bytes>, budget: usize) -> Taken {
        self.take_with(budget, |frame| out.push_back(frame))
    }

    /// Takes the first queued entry (no list of its own: the in-process receiver's path),
    /// or a pending close request once the queue is empty. The entry may be a run of
    /// broadcast frames (see [`Shared::push_run`]); the receiver splits it.
    pub(crate) fn take_one(&self) -> (Option<Bytes>, Taken) {
        burst::release();
        let mut one = None;
        let taken = self.take_with(1, |frame| one = Some(frame));
        (one, taken)
    }

    /// Hands queued frames to `sink`, in order, until about `budget` bytes (at least one
    /// frame) were taken.
    fn take_with(&self, budget: usize, mut sink: impl FnMut(Bytes)) -> Taken {
        let mut state = self.state.lock();
        let mut taken = 0;
        while let Some(frame) = state.frames.pop_front() {
            taken += frame.len();
            sink(frame);
            if taken >= budget {
                break;
            }
        }
        state.bytes = state.bytes.saturating_sub(saturate(taken));
        state.frames.shrink_when_drained();
        if state.unowned && !state.close_requested {
            state.closing = true;
            state.close_requested = true;
            state.close = Some(Box::new(CloseRequest::Graceful(close_frame(
                CloseCode::Normal,
                "",
            ))));
        }
        // `close` is only set with `close_requested` (one line nearer than `close`).
        let close = if state.close_requested && state.frames.is_empty() {
            state.close.take().map(|request| *request)
        } else {
            None
        };
        let sender = state.take_sender();
        drop(state);
        if let Some(sender) = sender {
            sender.wake();
        }
        Taken { close }
    }

    /// Entries in the send queue (a run of broadcast frames is one).
    #[cfg(test)]
    pub(crate) fn queued_entries(&self) -> usize {
        self.state.lock().frames.len()
    }

    /// Bytes queued and not yet taken by the connection task.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.state.lock().bytes as usize
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
        burst::release();
        let mut state = self.state.lock();
        state.closing = true;
        state.close_requested = true;
    }

    // ----- the inbox -----

    /// Offers a received message to the inbox (the driver's side). Returns what happened,
    /// and the waker of a reader to wake.
    pub(crate) fn offer(&self, message: WebSocketMessage) -> (Offer, Option<Reader>) {
        let mut state = self.state.lock();
        let offer = state.flow().inbox.offer(message, &self.limits.inbox);
        if matches!(offer, Offer::Full(_)) {
            self.paused.store(true, Ordering::Release);
            return (offer, None);
        }
        (offer, state.take_reader())
    }

    /// Wakes `reader` (taken from the state).
    pub(crate) fn wake_reader(&self, reader: Reader) {
        match reader {
            Reader::Handler => self.wake_handler(),
            Reader::Task(waker) => waker.wake(),
        }
    }

    /// What the handler's waker does: marks the handler to be polled, wakes the task.
    pub(crate) fn wake_handler(&self) {
        // Marked before the waker is taken: a task that registers after this take finds
        // the mark when it next looks.
        self.handler_woken.store(true, Ordering::SeqCst);
        self.wake_driver_now();
    }

    /// Ends the inbox: the reader gets `error` once (if any), then the end.
    pub(crate) fn end_inbox(&self, error: Option<Error>) {
        let reader = {
            let mut state = self.state.lock();
            state.flow().inbox.end(error);
            state.take_reader()
        };
        if let Some(reader) = reader {
            self.wake_reader(reader);
        }
    }

    /// True once the inbox has ended and the handler has taken all of it (messages, error).
    pub(crate) fn inbox_ended(&self) -> bool {
        self.state.lock().inbox().is_some_and(Inbox::is_ended)
    }

    /// True once every socket value (and split half) of the connection is dropped.
    pub(crate) fn is_unowned(&self) -> bool {
        self.state.lock().unowned
    }

    /// The next received message (the handler's side); wakes the driver when this makes
    /// room in a full inbox, or hands over the error that ended it (the driver then sends
    /// its close frame).
    pub(crate) fn poll_recv(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WebSocketMessage>>> {
        let mut state = self.state.lock();
        match state.flow.as_mut().and_then(|flow| flow.inbox.take()) {
            Some(item) => {
                let resume = item.is_err()
                    || (self.paused.load(Ordering::Acquire)
                        && !state
                            .inbox()
                            .is_some_and(|inbox| inbox.is_full(&self.limits.inbox)));
                state.release_flow();
                let driver = if resume { state.driver_to_wake() } else { None };
                drop(state);
                wake(driver);
                Poll::Ready(Some(item))
            }
            None if state.inbox().is_some_and(Inbox::is_ended) => Poll::Ready(None),
            None => {
                // One reader at a time, the latest (as one waker slot would be).
                if self.is_handler_waker(cx.waker()) {
                    state.handler_reads = true;
                    if let Some(flow) = state.flow.as_mut() {
                        flow.reader = None;
                    }
                    state.release_flow();
                } else {
                    state.handler_reads = false;
                    set_waker(&mut state.flow().reader, cx.waker());
                }
                Poll::Pending
            }
        }
    }

    /// True when the inbox has room for another message (the driver may read).
    pub(crate) fn inbox_has_room(&self) -> bool {
        !self
            .state
            .lock()
            .inbox()
            .is_some_and(|inbox| inbox.is_full(&self.limits.inbox))
    }

    /// Messages waiting in the inbox, and their payload bytes.
    pub(crate) fn inbox_len(&self) -> (usize, usize) {
        let state = self.state.lock();
        state
            .inbox()
            .map_or((0, 0), |inbox| (inbox.len(), inbox.bytes()))
    }

    /// The close frame the peer sent, once received.
    pub(crate) fn peer_close(&self) -> Option<CloseFrame> {
        self.state
            .lock()
            .inbox()
            .and_then(Inbox::peer_close)
            .cloned()
    }

    /// Records the close frame the peer sent.
    pub(crate) fn set_peer_close(&self, frame: Option<CloseFrame>) {
        self.state.lock().flow().inbox.set_peer_close(frame);
    }

    // ----- socket handles -----

    /// One more live socket value (or split half).
    pub(crate) fn socket_opened(&self) {
        self.state.lock().sockets += 1;
    }

    /// One socket value fewer; once the last one is gone the connection closes normally
    /// (1000), unless a close was requested first.
    pub(crate) fn socket_dropped(&self) {
        // A handler that broadcasts and returns: its broadcast is queued (to itself too)
        // before its connection stops taking frames.
        burst::release();
        let driver = {
            let mut state = self.state.lock();
            state.sockets = state.sockets.saturating_sub(1);
            if state.sockets == 0 {
                state.unowned = true;
                state.closing = true;
                state.driver_to_wake()
            } else {
                None
            }
        };
        wake(driver);
    }

    // ----- memberships -----

    /// Records membership of a group, so that it hears when the connection ends. Joining
    /// the same group again records nothing more. Returns false (and records nothing) when
    /// the connection is already gone.
    pub(crate) fn joined<M: Membership + 'static>(&self, group: Weak<M>, key: Arc<str>) -> bool {
        let group: Weak<dyn Membership> = group;
        // Held while recording, so `finish` (which marks the state closed, then takes the
        // memberships) cannot pass between the check and the record.
        let state = self.state.lock();
        if state.closed {
            return false;
        }
        let mut memberships = self.memberships.lock();
        let addr = group.as_ptr() as *const ();
        if let Some(entry) = memberships
            .iter_mut()
            .find(|(weak, _)| std::ptr::eq(weak.as_ptr() as *const (), addr))
        {
            entry.1 = key;
        } else {
            let mut grown = Vec::with_capacity(memberships.len() + 1);
            grown.extend(std::mem::take(&mut *memberships));
            grown.push((group, key));
            *memberships = grown.into_boxed_slice();
        }
        true
    }

    /// Forgets membership of a group.
    pub(crate) fn left(&self, group: *const ()) {
        let mut memberships = self.memberships.lock();
        let is_group = |(weak, _): &(Weak<dyn Membership>, Arc<str>)| {
            std::ptr::eq(weak.as_ptr() as *const (), group)
        };
        if memberships.iter().any(is_group) {
            *memberships = std::mem::take(&mut *memberships)
                .into_vec()
                .into_iter()
                .filter(|entry| !is_group(entry))
                .collect();
        }
    }

    /// How many groups the connection belongs to.
    pub(crate) fn membership_count(&self) -> usize {
        self.memberships.lock().len()
    }

    /// The connection is gone: frees the queue and the inbox, tells every group, wakes
    /// whoever waits on the socket.
    pub(crate) fn finish(self: &Arc<Self>) {
        let (groups, reader, sender) = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.closing = true;
            state.close_requested = true;
            state.frames.clear();
            state.bytes = 0;
            state.close = None;
            state.flow().inbox.end(None);
            (
                std::mem::take(&mut *self.memberships.lock()),
                state.take_reader(),
                state.take_sender(),
            )
        };
        self.paused.store(false, Ordering::Release);
        for (group, key) in groups.into_vec() {
            if let Some(group) = group.upgrade() {
                group.connection_ended(&key, self);
            }
        }
        if let Some(reader) = reader {
            self.wake_reader(reader);
        }
        if let Some(sender) = sender {
            sender.wake();
        }
    }
}

/// The handler's waker: marks the handler to be polled, then wakes the connection task.
impl std::task::Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_handler();
    }
}

/// Wakes `waker`, taken from the state, once its lock is released.
fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(current) if current.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Where the first frame of `frames` (encoded frames, one after another) ends; the whole
/// length when its header does not parse (then it is one frame as far as we know).
pub(crate) fn frame_end(frames: &[u8]) -> usize {
    match armature_ws_core::FrameHeader::parse(frames) {
        Ok(Some((header, header_len))) => usize::try_from(header.payload_len)
            .ok()
            .and_then(|payload| header_len.checked_add(payload))
            .filter(|&end| end <= frames.len())
            .unwrap_or(frames.len()),
        _ => frames.len(),
    }
}

/// A close frame with a static reason.
pub(crate) fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;

    /// What a push or a take touches stays in the first two cache lines of the `Arc`'s
    /// allocation (its two counts come first).
    #[test]
    fn what_a_push_touches_sits_in_the_first_two_lines() {
        const COUNTS: usize = 16;
        let line = |offset: usize| (COUNTS + offset) / 64;
        let state = offset_of!(Shared, state);
        // `rare` (for `deflate`), the lock byte, then the state (8-byte aligned): the queue.
        assert_eq!(line(offset_of!(Shared, rare)), 0);
        let field = |offset: usize| state + 8 + offset;
        assert_eq!(line(state), 0);
        let queue_end = field(offset_of!(State, frames)) + size_of::<Frames>();
        assert_eq!(line(queue_end - 1), 0, "queue ends at {queue_end}");
        // The rest of what a push or a take reads.
        assert_eq!(line(field(offset_of!(State, bytes))), 1);
        assert_eq!(line(field(offset_of!(State, closing))), 1);
        assert_eq!(line(field(offset_of!(State, in_handler))), 1);
        let waker_end = field(offset_of!(State, waker)) + size_of::<Option<Waker>>();
        assert_eq!(line(waker_end - 1), 1, "waker ends at {waker_end}");
        let flow_end = field(offset_of!(State, flow)) + size_of::<Option<Box<Flow>>>();
        assert_eq!(line(flow_end - 1), 1, "flow ends at {flow_end}");
        // The queue's bound and policy, which `prefetch` reads for that line.
        let limits = offset_of!(Shared, limits);
        assert_eq!(line(limits + offset_of!(Limits, max_queue_bytes)), 1);
        assert_eq!(line(limits + offset_of!(Limits, backpressure)), 1);
        assert!(
            COUNTS + size_of::<Shared>() <= 224,
            "one 224-byte allocation"
        );
    }
}
