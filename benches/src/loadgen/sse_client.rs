//! Server-Sent Events over hyper's HTTP/1.1 client: subscribers (`GET /sse`) and the
//! publisher (`POST /publish`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use eventsource_stream::{EventStream, Eventsource as _};
use futures_util::StreamExt as _;
use http_body_util::{BodyDataStream, BodyExt as _, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::system::connect_from;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// An open `GET /sse` stream.
pub struct SseConn {
    events: EventStream<BodyDataStream<Incoming>>,
    driver: JoinHandle<()>,
    _sender: SendRequest<Empty<Bytes>>,
}

impl SseConn {
    /// Connects from `source` and opens `GET /sse`; returns once the response head (200,
    /// `text/event-stream`) has arrived.
    pub async fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        let tcp = connect_from(source, server).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(other)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::get("/sse")
            .header(http::header::HOST, server.to_string())
            .header(http::header::ACCEPT, "text/event-stream")
            .body(Empty::<Bytes>::new())
            .map_err(other)?;
        let res = sender.send_request(req).await.map_err(other)?;
        if res.status() != http::StatusCode::OK {
            driver.abort();
            return Err(other(format!("GET /sse: status {}", res.status())));
        }
        let ctype = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes());
        if !ctype.is_some_and(|v| v.starts_with(b"text/event-stream")) {
            driver.abort();
            return Err(other("GET /sse: not text/event-stream"));
        }
        Ok(Self {
            events: res.into_body().into_data_stream().eventsource(),
            driver,
            _sender: sender,
        })
    }

    /// The next event's data; `Ok(None)` when the stream ended.
    pub async fn next_data(&mut self) -> io::Result<Option<String>> {
        match self.events.next().await {
            Some(Ok(event)) => Ok(Some(event.data)),
            Some(Err(e)) => Err(other(e)),
            None => Ok(None),
        }
    }
}

impl std::fmt::Debug for SseConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseConn").finish_non_exhaustive()
    }
}

impl Drop for SseConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A keep-alive connection that sends `POST /publish`.
#[derive(Debug)]
pub struct Publisher {
    sender: SendRequest<Full<Bytes>>,
    server: SocketAddr,
    driver: JoinHandle<()>,
}

impl Publisher {
    /// Connects from `source` to `server`.
    pub async fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        let tcp = connect_from(source, server).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(other)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            server,
            driver,
        })
    }

    /// Publishes one payload and waits for the `204`.
    pub async fn publish(&mut self, payload: Vec<u8>) -> io::Result<()> {
        self.sender.ready().await.map_err(other)?;
        let req = http::Request::post("/publish")
            .header(http::header::HOST, self.server.to_string())
            .body(Full::new(Bytes::from(payload)))
            .map_err(other)?;
        let res = self.sender.send_request(req).await.map_err(other)?;
        let status = res.status();
        // drain the (empty) body so the connection can be reused
        let _ = res.into_body().collect().await;
        if status == http::StatusCode::NO_CONTENT {
            Ok(())
        } else {
            Err(other(format!("POST /publish: status {status}")))
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
