//! The connection driver: one state machine that writes the send queue, reads and decodes
//! into the inbox, answers control frames, writes heartbeat pings and runs the closing
//! handshake. The connection task polls it whenever the socket, the queue or the inbox
//! wakes it, whatever the handler is doing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use armature_ws_core::{
    CloseCode, CloseFrame, CloseHandshake, Decoder, Utf8Bytes, WebSocketMessage, encode_close,
    encode_message,
};
use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::clock::now_ms;
use crate::inbox::Offer;
use crate::io::Io;
use crate::queue::{CloseRequest, Reader, Shared};
use crate::rate::Verdict;
use crate::stats::Stats;
use crate::writer::{Outbox, TAKE_BUDGET};

/// Most bytes of pongs waiting to be written for one connection. A client that sends pings
/// faster than it reads the pongs (a ping flood) would otherwise grow the server's memory
/// without bound; past this, the pending pongs are replaced by the pong to the latest ping
/// (RFC 6455 §5.5.3 allows answering only the most recent one). 64 maximum-size pongs.
pub(crate) const MAX_PENDING_PONG_BYTES: usize = 64 * 127;

/// The empty ping the heartbeat sends.
const PING: &[u8] = &[0x89, 0x00];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and writing.
    Open,
    /// Writing what is left (a close frame), then dropping the connection.
    Finishing,
    /// The connection is gone.
    Done,
}

/// The connection state, owned by the connection task.
pub(crate) struct Conn {
    pub(crate) io: Io,
    pub(crate) shared: Arc<Shared>,
    decoder: Decoder,
    rbuf: BytesMut,
    out: Outbox,
    /// Pongs not yet moved to `out` (they go out once `out` is empty), at most
    /// [`MAX_PENDING_PONG_BYTES`]; unallocated when there are none. Boxed: pings are rare,
    /// and 24 bytes less per connection keep a typical connection task within tokio's
    /// 512-byte task cell (the cell grows in steps of 128 bytes).
    pongs: Option<Box<BytesMut>>,
    /// A decoded message the full inbox did not take: reading is paused until it does.
    /// Boxed: most connections never pause.
    held: Option<Box<WebSocketMessage>>,
    /// Allocated when the closing handshake starts: most of a connection's life has none.
    close: Option<Box<CloseHandshake>>,
    read_chunk: u32,
    /// The heartbeat's ping is in `out`; its write time is recorded once `out` is written.
    ping_in_out: bool,
    /// A protocol error was read while the inbox still held messages read before it:
    /// reading has stopped, and the close frame with this code goes out once the handler
    /// has taken those messages and the error (or has gone).
    /// (A code as its number: it fits in the padding, the state stays small.)
    read_failed: Option<std::num::NonZeroU16>,
    pub(crate) phase: Phase,
}

impl Conn {
    pub(crate) fn new(
        io: Io,
        read_buf: Bytes,
        decoder: Decoder,
        shared: Arc<Shared>,
        read_chunk: usize,
    ) -> Conn {
        let rbuf = if read_buf.is_empty() {
            BytesMut::new()
        } else {
            // Copy: the leftover is a slice of hyper's 8 KiB read buffer, which would stay
            // alive otherwise.
            BytesMut::from(&read_buf[..])
        };
        Conn {
            io,
            shared,
            decoder,
            rbuf,
            out: Outbox::default(),
            pongs: None,
            held: None,
            close: None,
            read_chunk: u32::try_from(read_chunk).unwrap_or(u32::MAX),
            ping_in_out: false,
            read_failed: None,
            phase: Phase::Open,
        }
    }

    /// The connection is over: its socket is closed and its buffers are freed.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Ends the connection if it is not over yet (closing the socket).
    pub(crate) fn finish(&mut self) {
        self.end(None);
    }

    fn close_sent(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.is_close_sent())
    }

    fn close_mut(&mut self) -> &mut CloseHandshake {
        self.close.get_or_insert_with(Box::default)
    }

    fn release_rbuf_if_empty(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    /// Drives the connection as far as it goes now: abort requests, writing, reading into
    /// the inbox. `Ready` once the connection is over.
    ///
    /// `handler_next`: the task looks at the handler right after this; a reader that is
    /// the handler's waker is only marked woken, not woken.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>, handler_next: bool) -> Poll<()> {
        if self.phase == Phase::Done {
            return Poll::Ready(());
        }
        if let Some(abort) = self.shared.register_and_take_abort(cx.waker()) {
            self.abort(abort, cx);
            return Poll::Ready(());
        }
        loop {
            match self.poll_flush_out(cx) {
                Poll::Ready(Err(err)) => {
                    self.end(Some(err));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) if self.phase == Phase::Finishing => {
                    self.end(None);
                    return Poll::Ready(());
                }
                _ if self.phase == Phase::Finishing => return Poll::Pending,
                _ => {}
            }
            match self.poll_input(cx, handler_next) {
                // New frames to write (pongs, a close reply): write them now.
                Poll::Ready(true) => continue,
                Poll::Ready(false) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads and decodes into the inbox until the socket has no more, the inbox is full,
    /// or something must be written. `Ready(true)`: frames to write; `Ready(false)`: the
    /// connection ended.
    fn poll_input(&mut self, cx: &mut Context<'_>, handler_next: bool) -> Poll<bool> {
        loop {
            if self.phase == Phase::Done {
                return Poll::Ready(false);
            }
            if self.phase != Phase::Open {
                return Poll::Ready(true);
            }
            if let Some(held) = self.held.take() {
                if !self.deliver(*held, cx, handler_next) {
                    return Poll::Pending;
                }
            }
            if let Some(code) = self.read_failed {
                if !self.shared.inbox_ended() && !self.shared.is_unowned() {
                    return Poll::Pending; // woken when the handler takes the error
                }
                self.fail(CloseCode::from(code.get()));
                return Poll::Ready(true);
            }
            if !self.rbuf.is_empty() {
                match self.decoder.decode(&mut self.rbuf) {
                    Ok(Some(message)) => {
                        self.release_rbuf_if_empty();
                        let wrote = self.on_message(&message);
                        if let Some(closing) = self.over_rate(&message) {
                            if closing || wrote || self.phase != Phase::Open {
                                return Poll::Ready(true);
                            }
                            continue;
                        }
                        let delivered = self.deliver(message, cx, handler_next);
                        if wrote || self.phase != Phase::Open {
                            return Poll::Ready(true);
                        }
                        if !delivered {
                            return Poll::Pending;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        Stats::bump(&self.shared.stats.protocol_errors);
                        tracing::debug!(id = %self.shared.id, error = %err, close_code = u16::from(err.close_code()), "websocket protocol error");
                        self.rbuf = BytesMut::new();
                        self.shared
                            .end_inbox(Some(Error::Protocol(err.to_string())));
                        if self.shared.inbox_len().0 == 0 {
                            self.fail(err.close_code());
                            return Poll::Ready(true);
                        }
                        // The messages read before the error reach the handler first, and
                        // what it answers to them goes out before our close frame (as a
                        // strict endpoint does). A handler that never takes them does not
                        // hold the connection: the close timeout drops it.
                        self.read_failed = std::num::NonZeroU16::new(u16::from(err.close_code()));
                        self.shared.close_sent.store(now_ms(), Ordering::Release);
                        return Poll::Pending;
                    }
                }
            }
            match self
                .io
                .poll_read_into(cx, &mut self.rbuf, self.read_chunk as usize)
            {
                Poll::Ready(Ok(0)) => {
                    self.end(None);
                    return Poll::Ready(false);
                }
                Poll::Ready(Ok(_)) => {
                    self.shared.last_rx.store(now_ms(), Ordering::Release);
                }
                Poll::Ready(Err(err)) => {
                    self.end(Some(Error::Io(err)));
                    return Poll::Ready(false);
                }
                Poll::Pending => {
                    self.release_rbuf_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }

    /// `Some` when `message` is past the connection's message rate: it is dropped; `true`
    /// the first time with [`OnExcess::Close`](crate::OnExcess::Close), when a close 1008
    /// was queued to write.
    fn over_rate(&mut self, message: &WebSocketMessage) -> Option<bool> {
        let limit = self.shared.message_limit()?;
        if !matches!(
            message,
            WebSocketMessage::Text(_) | WebSocketMessage::Binary(_)
        ) {
            return None;
        }
        match limit.check() {
            Verdict::Deliver => None,
            Verdict::Drop => {
                Stats::bump(&self.shared.stats.messages_rate_limited);
                Some(false)
            }
            Verdict::Close => {
                Stats::bump(&self.shared.stats.messages_rate_limited);
                Stats::bump(&self.shared.stats.rate_limit_closes);
                tracing::info!(id = %self.shared.id, "message rate exceeded: closing with 1008");
                self.shared
                    .request_close(CloseRequest::Graceful(CloseFrame {
                        code: CloseCode::Policy,
                        reason: Utf8Bytes::from_static("message rate exceeded"),
                    }));
                Some(true)
            }
        }
    }

    /// Hands a message to the inbox. False when the inbox is full: the message is held and
    /// reading pauses until the handler takes one.
    fn deliver(&mut self, message: WebSocketMessage, cx: &Context<'_>, handler_next: bool) -> bool {
        let was_paused = self.shared.paused.load(Ordering::Acquire);
        let (offer, reader) = self.shared.offer(message);
        if let Some(reader) = reader {
            wake_reader(&self.shared, reader, handler_next);
        }
        match offer {
            Offer::Queued | Offer::Skipped => {
                if self.shared.paused.swap(false, Ordering::AcqRel) {
                    // Reading resumes: the heartbeat and idle clocks restart.
                    let now = now_ms();
                    self.shared.last_rx.store(now, Ordering::Release);
                    self.shared.last_msg.store(now, Ordering::Release);
                }
                true
            }
            Offer::Full(message) => {
                if !was_paused {
                    Stats::bump(&self.shared.stats.reads_paused);
                }
                self.held = Some(Box::new(message));
                // The inbox may have drained between the offer and now.
                if self.shared.inbox_has_room() {
                    cx.waker().wake_by_ref();
                }
                false
            }
        }
    }

    /// Handles control frames. True when something was queued to write.
    fn on_message(&mut self, message: &WebSocketMessage) -> bool {
        match message {
            WebSocketMessage::Ping(data) => {
                if self.close_sent() {
                    return false;
                }
                let pong = encode_message(&WebSocketMessage::Pong(data.clone()));
                let pongs = self.pongs.get_or_insert_with(Box::default);
                if pongs.len() + pong.len() > MAX_PENDING_PONG_BYTES {
                    pongs.clear(); // keep only the pong to the latest ping
                }
                pongs.extend_from_slice(&pong);
                true
            }
            WebSocketMessage::Pong(_) => false,
            WebSocketMessage::Text(_) | WebSocketMessage::Binary(_) => {
                self.shared.last_msg.store(now_ms(), Ordering::Release);
                false
            }
            WebSocketMessage::Close => {
                let frame = self.decoder.close_frame().cloned();
                self.shared.set_peer_close(frame.clone());
                if let Some(reply) = self.close_mut().on_close_received(frame) {
                    self.take_queued();
                    self.send_close_frame(reply);
                }
                self.shared.mark_closing();
                self.shared.end_inbox(None);
                self.phase = Phase::Finishing;
                true
            }
        }
    }

    /// Closes after a protocol error: what is queued, then our close frame with `code`,
    /// then the connection is dropped (nothing more is read).
    fn fail(&mut self, code: CloseCode) {
        self.take_queued();
        self.send_close_frame(CloseFrame::new(code, ""));
        self.phase = Phase::Finishing;
    }

    /// Moves everything queued (messages the handler already sent, frames queued through
    /// handles) behind what is being written, so it goes out before our close frame.
    fn take_queued(&mut self) {
        if !self.close_sent() {
            self.shared.mark_closing();
            let _ = self.shared.take_into(&mut self.out.segs, usize::MAX);
        }
    }

    /// Queues our close frame, unless one was sent already.
    fn send_close_frame(&mut self, frame: CloseFrame) {
        let bytes = encode_close(Some(&frame));
        if self.close_mut().on_close_sent(Some(frame)) {
            self.move_pongs_to_out();
            self.out.push(bytes);
            self.shared.mark_closing();
            self.shared.close_sent.store(now_ms(), Ordering::Release);
            self.shared.wake_sender();
            if self.read_failed.is_some() {
                // Nothing more can be read after a protocol error: no close reply to wait for.
                self.phase = Phase::Finishing;
            }
        }
    }

    /// Drops the connection, after one non-blocking attempt to write a close frame.
    fn abort(&mut self, frame: Option<CloseFrame>, cx: &mut Context<'_>) {
        self.out.clear_unstarted();
        self.pongs = None;
        if let Some(frame) = frame {
            if !self.out.is_partial() {
                self.send_close_frame(frame);
            }
            let _ = self.out.poll_write(&mut self.io, cx);
        }
        self.end(None);
    }

    /// Writes queued frames until all are out (`Ready(Ok)`) or the socket is full.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.out.is_empty() && self.pongs.is_some() {
                self.move_pongs_to_out();
            }
            if self.out.is_empty() {
                if self.phase != Phase::Open || self.close_sent() {
                    self.shared.writing.store(false, Ordering::Release);
                    return Poll::Ready(Ok(()));
                }
                // Cleared before taking: a sender woken by the take sees the flag right.
                self.shared.writing.store(false, Ordering::Release);
                let taken = self.shared.take_into(&mut self.out.segs, TAKE_BUDGET);
                if let Some(CloseRequest::Graceful(frame) | CloseRequest::Abort(frame)) =
                    taken.close
                {
                    // After a protocol error its code wins over the handler's outcome (a
                    // handler whose read loop ends at the error returns normally).
                    let frame = match self.read_failed {
                        Some(code) => CloseFrame::new(CloseCode::from(code.get()), ""),
                        None => frame,
                    };
                    self.send_close_frame(frame);
                }
                if !self.ping_in_out && self.shared.ping_requested.load(Ordering::Acquire) != 0 {
                    self.out.push(Bytes::from_static(PING));
                    self.ping_in_out = true;
                }
                if self.out.is_empty() {
                    self.out.release();
                    return self.io.poll_flush(cx).map_err(Error::Io);
                }
                self.shared.writing.store(true, Ordering::Release);
            }
            match self.out.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {
                    if self.ping_in_out {
                        self.ping_in_out = false;
                        self.shared.ping_sent.store(now_ms(), Ordering::Release);
                        self.shared.ping_requested.store(0, Ordering::Release);
                    }
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(Error::Io(err))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Queues the pending pongs behind what `out` holds, as one segment.
    fn move_pongs_to_out(&mut self) {
        if let Some(pongs) = self.pongs.take() {
            if !pongs.is_empty() {
                self.out.push(pongs.freeze());
            }
        }
    }

    /// The connection is over: frees everything, leaves the rooms, ends the inbox.
    fn end(&mut self, error: Option<Error>) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let sent = self
                .close
                .as_ref()
                .and_then(|c| c.local_close())
                .map(|f| u16::from(f.code));
            let received = self
                .close
                .as_ref()
                .and_then(|c| c.peer_close())
                .map(|f| u16::from(f.code));
            tracing::debug!(
                id = %self.shared.id,
                peer = ?self.io.peer_addr(),
                close_code_sent = ?sent,
                close_code_received = ?received,
                error = ?error.as_ref().map(|e| e.to_string()),
                "websocket connection closed"
            );
        }
        self.io.shutdown_now();
        self.io = Io::Closed; // the socket is closed now, even if the handler runs on
        self.rbuf = BytesMut::new();
        self.pongs = None;
        self.held = None;
        self.out.release();
        self.shared.writing.store(false, Ordering::Release);
        self.shared.end_inbox(error);
        self.shared.finish();
    }
}

/// Wakes the reader; when it is the handler the task polls right after this drive, only
/// marks it to be polled (no second turn of the task).
fn wake_reader(shared: &Shared, reader: Reader, handler_next: bool) {
    match reader {
        Reader::Handler if handler_next => shared.handler_woken.store(true, Ordering::SeqCst),
        reader => shared.wake_reader(reader),
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.end(None);
    }
}
