//! The connection driver: one state machine that reads, decodes, answers control frames,
//! runs the closing handshake and writes the send queue, polled by whatever owns the
//! [`WebSocket`](crate::WebSocket) (the handler's task) or, once the handler is done, by a
//! short finishing task.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use armature_ws_core::{
    CloseCode, CloseFrame, CloseHandshake, CloseState, Decoder, WebSocketMessage, encode_close,
    encode_message,
};
use bytes::{Bytes, BytesMut};

use crate::clock::now_ms;
use crate::config::WebSocketConfig;
use crate::hub::{Hub, Permit, Registration};
use crate::io::Io;
use crate::queue::{CloseRequest, Limits, Shared};
use crate::stats::Stats;
use crate::writer::{Outbox, TAKE_BUDGET};
use crate::{Error, Result};

/// Most bytes of pongs waiting to be written for one connection. A client that sends pings
/// faster than it reads the pongs (a ping flood) would otherwise grow the server's memory
/// without bound; past this, the pending pongs are replaced by the pong to the latest ping
/// (RFC 6455 §5.5.3 allows answering only the most recent one). 64 maximum-size pongs.
pub(crate) const MAX_PENDING_PONG_BYTES: usize = 64 * 127;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and writing.
    Open,
    /// Writing what is left (a close frame), then dropping the connection.
    Finishing,
    /// The connection is gone.
    Done,
}

/// The connection state, owned by whatever polls the socket.
pub(crate) struct Conn {
    pub(crate) io: Io,
    pub(crate) shared: Arc<Shared>,
    decoder: Decoder,
    rbuf: BytesMut,
    out: Outbox,
    /// Pongs not yet moved to `out` (they go out once `out` is empty), at most
    /// [`MAX_PENDING_PONG_BYTES`]; unallocated when there are none.
    pongs: BytesMut,
    /// Allocated when the closing handshake starts: most of a connection's life has none.
    close: Option<Box<CloseHandshake>>,
    registration: Option<Registration>,
    pub(crate) protocol: Option<Box<str>>,
    read_chunk: u32,
    close_timeout_ms: u32,
    pub(crate) phase: Phase,
}

impl Conn {
    pub(crate) fn new(
        io: Io,
        read_buf: Bytes,
        config: &WebSocketConfig,
        hub: &Hub,
        permit: Permit,
        protocol: Option<Box<str>>,
    ) -> Conn {
        let limits = Limits {
            max_queue_bytes: config.max_queue_bytes,
            backpressure: config.backpressure,
        };
        let (shared, registration) = hub.register(permit, |id| {
            Arc::new(Shared::new(id, limits, hub.stats_handle()))
        });
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
            decoder: Decoder::new(config.core_config()),
            rbuf,
            out: Outbox::default(),
            pongs: BytesMut::new(),
            close: None,
            registration: Some(registration),
            protocol,
            read_chunk: u32::try_from(config.read_chunk).unwrap_or(u32::MAX),
            close_timeout_ms: u32::try_from(config.close_timeout.as_millis()).unwrap_or(u32::MAX),
            phase: Phase::Open,
        }
    }

    /// Finishes the connection on a task of its own once the handler dropped the socket:
    /// what is queued is written, a close frame 1000 goes out if none did, and the
    /// connection ends when the client answers or the close timeout passes.
    pub(crate) fn finish_in_background(mut self: Box<Self>) {
        if self.phase == Phase::Done {
            return;
        }
        if self.close_state() == CloseState::Open {
            self.shared
                .request_close(CloseRequest::Graceful(CloseFrame::new(
                    CloseCode::Normal,
                    "",
                )));
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return; // dropped here: the connection just ends.
        };
        let deadline = Duration::from_millis(u64::from(self.close_timeout_ms));
        handle.spawn(async move {
            let drain = poll_fn(|cx| {
                loop {
                    match self.poll_next(cx) {
                        Poll::Ready(None) => return Poll::Ready(()),
                        Poll::Ready(Some(_)) => continue,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            });
            let _ = tokio::time::timeout(deadline, drain).await;
        });
    }

    pub(crate) fn close_state(&self) -> CloseState {
        self.close.as_ref().map_or(CloseState::Open, |c| c.state())
    }

    fn close_sent(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.is_close_sent())
    }

    fn close_mut(&mut self) -> &mut CloseHandshake {
        self.close.get_or_insert_with(Box::default)
    }

    /// True when the read buffer may hold another message to decode.
    pub(crate) fn more_input_buffered(&self) -> bool {
        !self.rbuf.is_empty()
    }

    fn release_rbuf_if_empty(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WebSocketMessage>>> {
        loop {
            if self.phase == Phase::Done {
                return Poll::Ready(None);
            }
            self.shared.register(cx.waker());
            if let Some(abort) = self.shared.take_abort() {
                self.abort(abort, cx);
                return Poll::Ready(None);
            }
            if self.phase == Phase::Open && !self.rbuf.is_empty() {
                match self.decoder.decode(&mut self.rbuf) {
                    Ok(Some(message)) => {
                        self.release_rbuf_if_empty();
                        return Poll::Ready(Some(Ok(self.on_message(message))));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        Stats::bump(&self.shared.stats.protocol_errors);
                        self.rbuf = BytesMut::new();
                        self.take_queued();
                        self.send_close_frame(CloseFrame::new(err.close_code(), ""));
                        self.phase = Phase::Finishing;
                        return Poll::Ready(Some(Err(Error::Protocol(err.to_string()))));
                    }
                }
            }
            match self.poll_flush_out(cx) {
                Poll::Ready(Err(err)) => {
                    self.end();
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Ok(())) if self.phase == Phase::Finishing => {
                    self.end();
                    return Poll::Ready(None);
                }
                _ if self.phase == Phase::Finishing => return Poll::Pending,
                _ => {}
            }
            match self
                .io
                .poll_read_into(cx, &mut self.rbuf, self.read_chunk as usize)
            {
                Poll::Ready(Ok(0)) => {
                    self.end();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {
                    self.shared.last_rx.store(now_ms(), Ordering::Release);
                }
                Poll::Ready(Err(err)) => {
                    self.end();
                    return Poll::Ready(Some(Err(Error::Io(err))));
                }
                Poll::Pending => {
                    self.release_rbuf_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Handles control frames; returns what the handler sees.
    fn on_message(&mut self, message: WebSocketMessage) -> WebSocketMessage {
        match &message {
            WebSocketMessage::Ping(data) => {
                if !self.close_sent() {
                    let pong = encode_message(&WebSocketMessage::Pong(data.clone()));
                    if self.pongs.len() + pong.len() > MAX_PENDING_PONG_BYTES {
                        self.pongs.clear(); // keep only the pong to the latest ping
                    }
                    self.pongs.extend_from_slice(&pong);
                }
            }
            WebSocketMessage::Pong(_) => {}
            WebSocketMessage::Text(_) | WebSocketMessage::Binary(_) => {
                self.shared.last_msg.store(now_ms(), Ordering::Release);
            }
            WebSocketMessage::Close(frame) => {
                if let Some(reply) = self.close_mut().on_close_received(frame.clone()) {
                    self.take_queued();
                    self.send_close_frame(reply);
                }
                self.shared.mark_closing();
                self.phase = Phase::Finishing;
            }
        }
        message
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
        }
    }

    /// Drops the connection, after one non-blocking attempt to write a close frame.
    fn abort(&mut self, frame: Option<CloseFrame>, cx: &mut Context<'_>) {
        self.out.clear_unstarted();
        self.pongs = BytesMut::new();
        if let Some(frame) = frame {
            if !self.out.is_partial() {
                self.send_close_frame(frame);
            }
            let _ = self.out.poll_write(&mut self.io, cx);
        }
        self.end();
    }

    /// Waits until the client's queue (shared and local) is under its bound.
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.phase != Phase::Open || self.close_sent() {
            return Poll::Ready(Err(Error::Closed));
        }
        let pending = self.shared.queued_bytes() + self.out.bytes();
        if pending <= self.shared.max_queue_bytes() {
            return Poll::Ready(Ok(()));
        }
        self.poll_flush_out(cx)
    }

    /// Writes queued frames until all are out (`Ready(Ok)`) or the socket is full.
    pub(crate) fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            if self.out.is_empty() && !self.pongs.is_empty() {
                self.move_pongs_to_out();
            }
            if self.out.is_empty() {
                if self.phase != Phase::Open || self.close_sent() {
                    return Poll::Ready(Ok(()));
                }
                self.shared.register(cx.waker());
                let taken = self.shared.take_into(&mut self.out.segs, TAKE_BUDGET);
                if let Some(CloseRequest::Graceful(frame) | CloseRequest::Abort(frame)) =
                    taken.close
                {
                    self.send_close_frame(frame);
                }
                if self.out.is_empty() {
                    self.out.release();
                    return self.io.poll_flush(cx).map_err(Error::Io);
                }
            }
            match self.out.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(Error::Io(err))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Queues the pending pongs behind what `out` holds, as one segment.
    fn move_pongs_to_out(&mut self) {
        if !self.pongs.is_empty() {
            self.out.push(std::mem::take(&mut self.pongs).freeze());
        }
    }

    /// The connection is over: frees everything, leaves the rooms, releases the slot.
    fn end(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.io.shutdown_now();
        self.rbuf = BytesMut::new();
        self.pongs = BytesMut::new();
        self.out.release();
        self.shared.finish();
        self.registration = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.end();
    }
}
