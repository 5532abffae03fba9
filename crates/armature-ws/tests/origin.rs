//! The `Origin` check of `armature-ws` used alone (`serve` + `WebSocketUpgrade`): on by
//! default, a foreign origin gets `403` and no upgrade.

mod common;

use armature_ws::{OriginPolicy, WebSocketConfig};
use common::*;

fn upgrade(origin: Option<&str>) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403_by_default() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let response = raw_http(server.addr, &upgrade(Some("https://evil.test"))).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("origin not allowed"), "{response}");
    assert!(!response.contains("Sec-WebSocket-Accept"), "{response}");
    // Same origin (Host: localhost, port 80) and no Origin are upgraded.
    let response = raw_http(server.addr, &upgrade(Some("http://localhost"))).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    let response = raw_http(server.addr, &upgrade(None)).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(server.hub.stats().connections_opened >= 2);
}

#[tokio::test]
async fn allow_list_from_the_config() {
    let server = TestServer::start(
        WebSocketConfig::default()
            .origin_policy(OriginPolicy::default().allow("https://*.example.com")),
    )
    .await;
    let response = raw_http(server.addr, &upgrade(Some("https://app.example.com"))).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    let response = raw_http(server.addr, &upgrade(Some("https://example.com.evil.test"))).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
}
