//! Helpers shared by the integration tests: a tiny HTTP/1 client over a real socket.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Generous: the machine is shared and loaded.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Sends one request on a fresh connection and returns the response head and body stream.
pub async fn send(addr: SocketAddr, req: Request<Empty<Bytes>>) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .expect("response in time")
        .unwrap()
}

/// `GET path` with extra headers; returns status and body text.
pub async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut builder = Request::get(path).header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let res = send(addr, builder.body(Empty::new()).unwrap()).await;
    let status = res.status().as_u16();
    let body = tokio::time::timeout(TIMEOUT, res.into_body().collect())
        .await
        .expect("body in time")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `GET path`; returns status and body text.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_with(addr, path, &[]).await
}
