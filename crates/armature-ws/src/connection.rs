//! [`WebSocketConnection`], the cheap cloneable handle through which any task reaches one
//! client, and [`WebSocketReceiver`], the receiving end of a handle not bound to a socket.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use armature_ws_core::{
    CloseCode, CloseFrame, Decoder, Utf8Bytes, WebSocketMessage, encode_binary, encode_close,
    encode_message, encode_text,
};
use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::config::WebSocketConfig;
use crate::queue::{CloseRequest, Limits, Shared, frame_end};
use crate::stats::Stats;
use crate::{Error, Result};

/// A handle to one WebSocket client: its id, and a way to queue messages for it.
///
/// Cloning is a reference-count bump; clones can move to any task. Sending never waits for
/// the socket: the encoded frame goes into the client's send queue (bounded in bytes, see
/// [`WebSocketConfig::max_queue_bytes`]) and the connection's own task writes it. A full
/// queue applies the [`Backpressure`](crate::Backpressure) policy and returns [`Error::QueueFull`]; a gone client
/// returns [`Error::Closed`].
///
/// The handle of a live connection comes from [`WebSocket::connection`](crate::WebSocket::connection).
/// [`WebSocketConnection::new`] makes one not bound to a socket, whose messages arrive on the
/// returned [`WebSocketReceiver`] (for tests, or to bridge to another transport):
///
/// ```
/// use armature_ws::{WebSocketConnection, WebSocketMessage};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), armature_ws::Error> {
/// let (connection, mut receiver) = WebSocketConnection::new("conn-123".to_string());
/// connection.send_text("Hello!".to_string()).await?;
/// connection.send_json(&serde_json::json!({"n": 1})).await?;
/// assert_eq!(receiver.recv().await, Some(WebSocketMessage::text("Hello!")));
/// assert_eq!(receiver.recv().await, Some(WebSocketMessage::text(r#"{"n":1}"#)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebSocketConnection {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for WebSocketConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketConnection")
            .field("id", &self.id())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl WebSocketConnection {
    /// A handle not bound to a socket (the guide's constructor), with the default queue
    /// bound and back-pressure policy; the receiver yields what is sent to it.
    pub fn new(id: String) -> (Self, WebSocketReceiver) {
        Self::with_config(id, &WebSocketConfig::default())
    }

    /// Like [`WebSocketConnection::new`], with the queue bound and back-pressure policy of
    /// `config`.
    pub fn with_config(id: String, config: &WebSocketConfig) -> (Self, WebSocketReceiver) {
        let shared = Arc::new(Shared::new(
            Arc::from(id),
            Limits::from_config(config),
            Arc::new(Stats::default()),
            None,
        ));
        let receiver = WebSocketReceiver {
            shared: shared.clone(),
            decoder: Decoder::new(armature_ws_core::Config::client()),
            buf: BytesMut::new(),
            run: Bytes::new(),
            done: false,
        };
        (WebSocketConnection { shared }, receiver)
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        WebSocketConnection { shared }
    }

    /// The connection's id, unique within the server (and across servers when each has its
    /// own [`WebSocketConfig::node_id`]).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Queues a message. A [`WebSocketMessage::Close`] starts the close handshake with code
    /// 1000 instead ([`WebSocketConnection::close`] takes another code).
    pub async fn send(&self, message: WebSocketMessage) -> Result<()> {
        self.try_send(message)
    }

    /// Queues a message without an `.await` (sending never waits anyway).
    pub fn try_send(&self, message: WebSocketMessage) -> Result<()> {
        match message {
            WebSocketMessage::Close => self.close_with(CloseFrame {
                code: CloseCode::Normal,
                reason: Utf8Bytes::default(),
            }),
            other => self.shared.push(encode_message(&other)),
        }
    }

    /// Queues a text message.
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<()> {
        let text: Utf8Bytes = text.into();
        self.shared.push(encode_text(&text))
    }

    /// Queues a binary message.
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<()> {
        let data: Bytes = data.into();
        self.shared.push(encode_binary(&data))
    }

    /// Serialises `value` to JSON and queues it as a text message.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)?;
        self.shared.push(encode_text(&json))
    }

    /// Queues an already encoded frame (e.g. from
    /// [`armature_ws_core::encode_message`]); this is how one encoding reaches many
    /// clients.
    pub fn send_frame(&self, frame: Bytes) -> Result<()> {
        self.shared.push(frame)
    }

    /// Starts the close handshake: frames queued before are written first, then a close
    /// frame with `code` and `reason`. Later sends fail with [`Error::Closed`].
    pub async fn close(
        &self,
        code: impl Into<CloseCode>,
        reason: impl Into<Utf8Bytes>,
    ) -> Result<()> {
        self.close_with(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })
    }

    fn close_with(&self, frame: CloseFrame) -> Result<()> {
        if self.shared.request_close(CloseRequest::Graceful(frame)) {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// True once the connection is closing or gone (sends fail).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closing()
    }

    /// Bytes queued for this client and not yet taken by its writer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes()
    }

    /// Messages received from this client and not yet taken by its handler (at most the
    /// inbox capacity, see [`WebSocketConfig::inbox_capacity`]).
    pub fn inbox_len(&self) -> usize {
        self.shared.inbox_len().0
    }

    /// How many rooms this connection is a member of.
    pub fn room_count(&self) -> usize {
        self.shared.membership_count()
    }

    /// True when `other` is a handle to the same connection.
    pub fn same_connection(&self, other: &WebSocketConnection) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// The receiving end of a [`WebSocketConnection::new`] handle: yields the frames queued for
/// it, encoded as they would go on the wire, or decoded back into messages.
///
/// Dropping it ends the connection: later sends fail with [`Error::Closed`], and it leaves
/// every room.
pub struct WebSocketReceiver {
    shared: Arc<Shared>,
    decoder: Decoder,
    buf: BytesMut,
    /// The rest of a run of broadcast frames taken from the queue as one entry.
    run: Bytes,
    done: bool,
}

impl fmt::Debug for WebSocketReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketReceiver")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl WebSocketReceiver {
    /// The next queued frame, exactly as it would be written to the socket; `None` after
    /// a close frame or once the connection is gone.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        poll_fn(|cx| self.poll_frame(cx)).await
    }

    /// The next queued frame if there is one now.
    pub fn try_recv_frame(&mut self) -> Option<Bytes> {
        let waker = futures_util::task::noop_waker();
        match self.poll_frame(&mut Context::from_waker(&waker)) {
            Poll::Ready(frame) => frame,
            Poll::Pending => None,
        }
    }

    /// The next queued message, decoded from its frame; `None` after a close or once the
    /// connection is gone.
    pub async fn recv(&mut self) -> Option<WebSocketMessage> {
        loop {
            let frame = self.recv_frame().await?;
            self.buf.extend_from_slice(&frame);
            if let Ok(Some(message)) = self.decoder.decode(&mut self.buf) {
                return Some(message);
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.done {
            return Poll::Ready(None);
        }
        if !self.run.is_empty() {
            return Poll::Ready(Some(self.next_of_run()));
        }
        // Take first and register only when nothing is queued (then take again: a frame
        // queued between the two would have found no waker to wake), so a receiver that
        // keeps up costs no waker registration per frame.
        let (mut frame, mut taken) = self.shared.take_one();
        if frame.is_none() && taken.close.is_none() {
            self.shared.register(cx.waker());
            (frame, taken) = self.shared.take_one();
        }
        if let Some(mut frame) = frame {
            // Most entries are one frame: handed over as it is, the run left empty.
            let end = frame_end(&frame);
            if end < frame.len() {
                let first = frame.split_to(end);
                self.run = frame;
                return Poll::Ready(Some(first));
            }
            return Poll::Ready(Some(frame));
        }
        match taken.close {
            Some(CloseRequest::Graceful(frame) | CloseRequest::Abort(frame)) => {
                self.done = true;
                self.shared.finish();
                Poll::Ready(Some(encode_close(Some(&frame))))
            }
            None if self.shared.is_closed() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl WebSocketReceiver {
    /// The first frame of `run` (a queue entry may hold several, one after another).
    fn next_of_run(&mut self) -> Bytes {
        let end = frame_end(&self.run);
        self.run.split_to(end)
    }
}

impl Drop for WebSocketReceiver {
    fn drop(&mut self) {
        self.shared.finish();
    }
}
