//! The endpoint mounted in axum (feature `tower`): WebSocket (graphql-transport-ws) and
//! GraphQL over HTTP through `Router::route_service`, over real sockets.

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use armature_realtime_graphql::GraphQLConfig;
use armature_ws::WebSocketManager;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn mounted_in_axum_it_serves_websocket_and_http() {
    let schema = support::schema(
        Arc::default(),
        Arc::new(WebSocketManager::new()),
        Arc::new(AtomicI64::new(0)),
    );
    let graphql = support::endpoint(schema, GraphQLConfig::default());
    let app = axum::Router::new().route_service("/graphql", graphql);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    let mut texts = Vec::new();
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { count(to: 3) }"}})
            .to_string(),
    ))
    .await
    .unwrap();
    while texts.len() < 5 {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            texts.push(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    assert_eq!(texts[0], json!({"type": "connection_ack"}));
    for (n, message) in texts[1..4].iter().enumerate() {
        assert_eq!(
            *message,
            json!({"id": "1", "type": "next", "payload": {"data": {"count": n}}})
        );
    }
    assert_eq!(texts[4], json!({"id": "1", "type": "complete"}));

    // GraphQL over HTTP on the same route.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET /graphql?query=%7Bhello%7D HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"data":{"hello":"world"}}"#),
        "{response}"
    );
}
