//! [`TestClient`]: drives a decorated [`App`] in tests (feature `testing`).
//!
//! Each WebSocket or SSE request gets its own in-memory connection
//! ([`tokio::io::duplex`]): the app's side is served by hyper's HTTP/1 connection, exactly
//! as [`Server`](crate::Server) serves a TCP connection (upgrades, the app's hub, a
//! [`PeerAddr`] of `127.0.0.1`), and the client's side speaks real HTTP/1.1 and RFC 6455
//! through `async-tungstenite`. Nothing listens on a port.
//!
//! **Why in memory, not loopback:** under [`tokio::time::pause`] the runtime moves its
//! clock forward as soon as every task is idle. With a real socket, "idle" includes "the
//! kernel has not delivered the bytes yet", so a 30-second heartbeat could fire while a
//! reply is in flight. An in-memory pipe has no such gap: bytes written are readable at
//! once, the runtime is idle only when the app and the client both wait, and a test can
//! sleep through ten minutes of heartbeats in milliseconds (see `docs/testing.md`).
//!
//! ```
//! use armature_realtime::prelude::*;
//! use armature_realtime::testing::TestClient;
//!
//! #[controller("/")]
//! struct Echo;
//!
//! #[controller]
//! impl Echo {
//!     #[websocket("/echo")]
//!     async fn echo(&self, mut socket: WebSocket) -> Result<(), Error> {
//!         while let Some(Ok(WebSocketMessage::Text(text))) = socket.recv().await {
//!             socket.send_text(text).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[module(controllers: [Echo])]
//! struct AppModule;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let client = TestClient::new(App::new().module::<AppModule>())?;
//! let mut socket = client.websocket("/echo").await?;
//! socket.send_text("hi").await?;
//! assert_eq!(socket.recv_text().await?, "hi");
//! socket.close(1000, "bye").await?;
//! assert_eq!(socket.expect_close().await?, Some(1000));
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::DuplexStream;

use crate::Error;
use crate::app::{App, AppService};
use crate::di::Injectable;
use crate::typed::{Ack, ERROR_EVENT, MessageError};
use crate::ws::PeerAddr;

/// How many bytes each direction of an in-memory connection buffers.
const PIPE_BYTES: usize = 256 * 1024;

/// Drives an [`App`] (or a built [`AppService`]) from a test; see the [module](self) docs.
#[derive(Clone, Debug)]
pub struct TestClient {
    service: AppService,
    next_port: Arc<AtomicU16>,
}

impl TestClient {
    /// Builds `app`.
    ///
    /// # Errors
    /// See [`App::build`].
    pub fn new(app: App) -> Result<Self, Error> {
        Ok(Self::from_service(app.build()?))
    }

    /// A client of an already built app.
    pub fn from_service(service: AppService) -> Self {
        Self {
            service,
            next_port: Arc::new(AtomicU16::new(1)),
        }
    }

    /// The app under test.
    pub fn service(&self) -> &AppService {
        &self.service
    }

    /// A service from the app's container (the one instance its controllers share), such
    /// as the service holding a `WebSocketManager`, to look at its rooms.
    ///
    /// # Errors
    /// See [`Container::resolve`](crate::Container::resolve).
    pub fn resolve<T: Injectable>(&self) -> Result<T, Error> {
        self.service.container().resolve::<T>()
    }

    /// A new in-memory connection served by the app; returns the client's end.
    fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let port = self.next_port.fetch_add(1, Ordering::Relaxed);
        let peer = PeerAddr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        let service = self.service.clone();
        let hub = service.websocket_hub().clone();
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(hub.clone());
                req.extensions_mut().insert(peer);
                let service = service.clone();
                async move { Ok::<_, std::convert::Infallible>(service.call(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(server), svc)
                .with_upgrades()
                .await;
        });
        client
    }

    /// Opens a WebSocket to `path` (with its query string, if any).
    ///
    /// # Errors
    /// [`Error::Http`] with the app's status when it refuses the upgrade (`401`, `403`,
    /// `404`, ..); [`Error::Protocol`] for a broken handshake.
    pub async fn websocket(&self, path: &str) -> Result<TestSocket, Error> {
        self.websocket_with(path, &[]).await
    }

    /// [`websocket`](Self::websocket) with extra request headers (`Origin`,
    /// `Authorization`, `Sec-WebSocket-Protocol`, ..).
    ///
    /// # Errors
    /// As [`websocket`](Self::websocket).
    pub async fn websocket_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<TestSocket, Error> {
        let mut request = format!("ws://localhost{path}")
            .into_client_request()
            .map_err(|e| Error::Protocol(format!("bad test request: {e}")))?;
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::Protocol(format!("bad header name: {e}")))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|e| Error::Protocol(format!("bad header value: {e}")))?;
            request.headers_mut().insert(name, value);
        }
        let io = self.connect();
        match async_tungstenite::tokio::client_async(request, io).await {
            Ok((stream, response)) => Ok(TestSocket {
                stream,
                protocol: response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }),
            Err(async_tungstenite::tungstenite::Error::Http(response)) => Err(Error::Http {
                status: response.status().as_u16(),
                reason: response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(e) => Err(Error::Protocol(format!("websocket handshake failed: {e}"))),
        }
    }

    /// Opens an SSE stream at `path`.
    ///
    /// # Errors
    /// [`Error::Http`] with the status when the app answers anything but `200`.
    pub async fn sse(&self, path: &str) -> Result<TestEvents, Error> {
        self.sse_with(path, &[]).await
    }

    /// [`sse`](Self::sse) with extra request headers (`Last-Event-ID`, ..).
    ///
    /// # Errors
    /// As [`sse`](Self::sse).
    pub async fn sse_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<TestEvents, Error> {
        let io = self.connect();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Error::Protocol(format!("http handshake failed: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = Request::get(path)
            .header(http::header::HOST, "localhost")
            .header(http::header::ACCEPT, "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| Error::Protocol(format!("bad test request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::Protocol(format!("request failed: {e}")))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(Error::Http {
                status: status.as_u16(),
                reason: body,
            });
        }
        Ok(TestEvents {
            body: response.into_body(),
            buffer: String::new(),
            _sender: sender,
        })
    }
}

/// One envelope message received by a [`TestSocket`] (see [`typed`](crate::typed)).
#[derive(Debug, Clone, PartialEq)]
pub struct TestEnvelope {
    /// The event name.
    pub event: String,
    /// Its data (`null` when absent).
    pub data: Value,
    /// The `ack` id, when the message replies to one.
    pub ack: Option<Ack>,
}

/// The client side of a WebSocket opened by [`TestClient::websocket`].
#[derive(Debug)]
pub struct TestSocket {
    stream: WebSocketStream<TokioAdapter<DuplexStream>>,
    protocol: Option<String>,
}

fn ws_error(e: async_tungstenite::tungstenite::Error) -> Error {
    use async_tungstenite::tungstenite::Error as E;
    match e {
        E::ConnectionClosed | E::AlreadyClosed => Error::Closed,
        E::Io(io) => Error::Io(io),
        other => Error::Protocol(other.to_string()),
    }
}

impl TestSocket {
    /// The subprotocol the server agreed, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Sends a text message.
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection is closed.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), Error> {
        self.stream
            .send(Message::text(text.into()))
            .await
            .map_err(ws_error)
    }

    /// Sends `value` as one JSON text message.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text); [`Error::Serialization`].
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(|e| Error::Serialization(e.to_string()))?;
        self.send_text(text).await
    }

    /// Sends an envelope `{"event": event, "data": data}` (plus `"ack"` when given).
    ///
    /// # Errors
    /// As [`send_json`](Self::send_json).
    pub async fn send_event<T: Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
        ack: Option<u64>,
    ) -> Result<(), Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::Serialization(e.to_string()))?;
        let mut envelope = serde_json::json!({ "event": event, "data": data });
        if let Some(ack) = ack {
            envelope["ack"] = Value::from(ack);
        }
        self.send_json(&envelope).await
    }

    /// Sends a binary message.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.stream
            .send(Message::Binary(data.into()))
            .await
            .map_err(ws_error)
    }

    /// The next text or binary message (pings are answered and skipped); `None` once the
    /// connection has ended, `Some(Message::Close(..))` for the server's close.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(message) => return Some(Ok(message)),
                Err(e) => return Some(Err(ws_error(e))),
            }
        }
    }

    /// The next message, which must be text.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection ends or closes first; [`Error::Protocol`] for
    /// a binary message.
    pub async fn recv_text(&mut self) -> Result<String, Error> {
        match self.recv().await {
            Some(Ok(Message::Text(text))) => Ok(text.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => Err(Error::Protocol(
                "expected a text message, got a binary one".into(),
            )),
            Some(Ok(_)) | None => Err(Error::Closed),
            Some(Err(e)) => Err(e),
        }
    }

    /// The next message parsed as JSON of type `T`.
    ///
    /// # Errors
    /// As [`recv_text`](Self::recv_text); [`Error::Serialization`] when it is not a `T`.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let text = self.recv_text().await?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Serialization(format!("{e} in message {text}")))
    }

    /// The next message as an envelope.
    ///
    /// # Errors
    /// As [`recv_json`](Self::recv_json); [`Error::Protocol`] when it has no `event`.
    pub async fn recv_envelope(&mut self) -> Result<TestEnvelope, Error> {
        let mut value: Value = self.recv_json().await?;
        let event = match value.get("event").and_then(Value::as_str) {
            Some(event) => event.to_owned(),
            None => {
                return Err(Error::Protocol(format!(
                    "expected an envelope with an `event`, got {value}"
                )));
            }
        };
        let ack = value.get("ack").and_then(Value::as_u64).map(Ack);
        Ok(TestEnvelope {
            event,
            data: value
                .get_mut("data")
                .map(Value::take)
                .unwrap_or(Value::Null),
            ack,
        })
    }

    /// The next message, which must be the envelope of `event`; returns its data as a
    /// `T`.
    ///
    /// # Errors
    /// [`Error::Protocol`] naming what came instead.
    pub async fn expect_event<T: DeserializeOwned>(&mut self, event: &str) -> Result<T, Error> {
        let envelope = self.recv_envelope().await?;
        if envelope.event != event {
            return Err(Error::Protocol(format!(
                "expected event `{event}`, got `{}` with {}",
                envelope.event, envelope.data
            )));
        }
        serde_json::from_value(envelope.data.clone())
            .map_err(|e| Error::Serialization(format!("`{event}` data {}: {e}", envelope.data)))
    }

    /// The next message, which must be the server's `error` answer to a message it could
    /// not take.
    ///
    /// # Errors
    /// As [`expect_event`](Self::expect_event).
    pub async fn expect_error(&mut self) -> Result<MessageError, Error> {
        self.expect_event(ERROR_EVENT).await
    }

    /// Reads until the connection ends, skipping messages; returns the server's close code
    /// (`None` when the connection ended without a close frame, or with one carrying no
    /// code, or when the server dropped the connection before its close frame could be
    /// read: tungstenite answers a ping it reads before reading on, and that write fails
    /// on a connection the server aborted, as after a pong timeout).
    ///
    /// # Errors
    /// [`Error::Protocol`] when the stream fails otherwise.
    pub async fn expect_close(&mut self) -> Result<Option<u16>, Error> {
        loop {
            match self.stream.next().await {
                None => return Ok(None),
                Some(Ok(Message::Close(frame))) => {
                    // Let tungstenite answer the close and see the end of the stream.
                    while let Some(Ok(_)) = self.stream.next().await {}
                    return Ok(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(
                    async_tungstenite::tungstenite::Error::ConnectionClosed
                    | async_tungstenite::tungstenite::Error::AlreadyClosed,
                )) => return Ok(None),
                Some(Err(async_tungstenite::tungstenite::Error::Protocol(_))) => return Ok(None),
                // The server dropped the connection while tungstenite was answering a ping
                // it had read (an aborted connection): whatever followed is unreadable.
                Some(Err(async_tungstenite::tungstenite::Error::Io(e)))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Ok(None);
                }
                Some(Err(e)) => return Err(ws_error(e)),
            }
        }
    }

    /// Starts the close handshake with `code` and `reason`; read on with
    /// [`expect_close`](Self::expect_close) for the server's answer.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection is already closed.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.stream
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }))
            .await
            .map_err(ws_error)
    }
}

/// One event of a [`TestEvents`] stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestEvent {
    /// `event:` (`None` for the default `message`).
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:`.
    pub id: Option<String>,
}

/// The client side of an SSE stream opened by [`TestClient::sse`].
#[derive(Debug)]
pub struct TestEvents {
    body: Incoming,
    buffer: String,
    _sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
}

impl TestEvents {
    /// The next event (comments such as keep-alives are skipped); `None` when the stream
    /// ended.
    ///
    /// # Errors
    /// [`Error::Io`]-like failures of the body as [`Error::Protocol`].
    pub async fn next_event(&mut self) -> Result<Option<TestEvent>, Error> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = TestEvent::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    let (field, value) = match line.split_once(':') {
                        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                        None => (line, ""),
                    };
                    match field {
                        "event" => event.event = Some(value.to_owned()),
                        "data" => data.push(value.to_owned()),
                        "id" => event.id = Some(value.to_owned()),
                        _ => {}
                    }
                }
                if data.is_empty() && event.event.is_none() {
                    continue; // a comment or a retry-only block
                }
                event.data = data.join("\n");
                return Ok(Some(event));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Protocol(format!("event stream failed: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }

    /// The next event, which must be named `event`; returns its data parsed as a `T`.
    ///
    /// # Errors
    /// [`Error::Protocol`] naming what came instead (or that the stream ended).
    pub async fn expect_event<T: DeserializeOwned>(&mut self, event: &str) -> Result<T, Error> {
        let Some(got) = self.next_event().await? else {
            return Err(Error::Protocol(format!(
                "expected event `{event}`, the stream ended"
            )));
        };
        let name = got.event.as_deref().unwrap_or("message");
        if name != event {
            return Err(Error::Protocol(format!(
                "expected event `{event}`, got `{name}` with {}",
                got.data
            )));
        }
        serde_json::from_str(&got.data)
            .map_err(|e| Error::Serialization(format!("`{event}` data {}: {e}", got.data)))
    }
}
