//! The demo's `/graphql` endpoint in memory: the ticker and a chat room as GraphQL
//! subscriptions over WebSocket (`graphql-transport-ws`) and SSE, a mutation reaching the
//! chat's WebSocket members, the page's GraphQL card.

use super::*;
use examples::testing::{Client, SseClient, next_text, ws_connect};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn start() -> armature_realtime::RunningServer {
    demo_app(super::tests::static_dir(), None)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// A `graphql-transport-ws` client past `connection_ack`.
pub(super) async fn gql_connect(addr: std::net::SocketAddr) -> Client {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws.send(r#"{"type":"connection_init"}"#.into())
        .await
        .unwrap();
    assert_eq!(json(&next_text(&mut ws).await)["type"], "connection_ack");
    ws
}

pub(super) async fn gql_subscribe(ws: &mut Client, id: &str, query: &str) {
    let message = serde_json::json!({"id": id, "type": "subscribe", "payload": {"query": query}});
    ws.send(message.to_string().into()).await.unwrap();
}

#[tokio::test]
async fn the_ticker_is_a_subscription_without_arguments_over_ws_and_sse() {
    let server = start().await;
    let addr = server.local_addr();
    let mut ws = gql_connect(addr).await;
    gql_subscribe(&mut ws, "t", "subscription { ticker { seq symbol price } }").await;
    let first = json(&next_text(&mut ws).await);
    assert_eq!(first["type"], "next", "{first}");
    let tick = &first["payload"]["data"]["ticker"];
    assert_eq!(tick["symbol"], "ARMR");
    assert!(tick["price"].as_f64().unwrap() > 100.0);
    let second = json(&next_text(&mut ws).await);
    assert_eq!(
        second["payload"]["data"]["ticker"]["seq"].as_u64(),
        Some(tick["seq"].as_u64().unwrap() + 1)
    );

    // The same subscription over SSE (graphql-sse, GET with the query in the URL).
    let mut sse = SseClient::open(
        addr,
        "/graphql?query=subscription%20%7B%20ticker%20%7B%20seq%20%7D%20%7D",
        &[],
    )
    .await;
    assert_eq!(sse.status, 200);
    assert!(sse.head.contains("text/event-stream"), "{}", sse.head);
    let event = sse.next_event().await;
    assert!(
        event.starts_with("event: next\ndata: {\"data\":{\"ticker\":{\"seq\":"),
        "{event:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_chat_room_is_a_subscription_and_a_mutation_reaches_its_members() {
    let server = start().await;
    let addr = server.local_addr();
    let mut gql = gql_connect(addr).await;
    gql_subscribe(
        &mut gql,
        "c",
        r#"subscription { chat(room: "lobby") { name text } }"#,
    )
    .await;
    let mut ada = ws_connect(&format!("ws://{addr}/ws/chat/lobby?name=Ada")).await;
    assert_eq!(json(&next_text(&mut ada).await)["type"], "members");
    // The subscription has joined once the room counts two members (Ada and it).
    let rooms = loop {
        gql_subscribe(&mut gql, "r", "{ rooms { name members } }").await;
        let result = json(&next_text(&mut gql).await);
        assert_eq!(json(&next_text(&mut gql).await)["type"], "complete");
        if result["payload"]["data"]["rooms"][0]["members"] == 2 {
            break result;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(rooms["payload"]["data"]["rooms"][0]["name"], "lobby");

    ada.send("hello graphql".into()).await.unwrap();
    let line = json(&next_text(&mut gql).await);
    assert_eq!(
        line["payload"]["data"]["chat"],
        serde_json::json!({"name": "Ada", "text": "hello graphql"})
    );

    gql_subscribe(
        &mut gql,
        "m",
        r#"mutation { sendChat(room: "lobby", name: "Gql", text: "from a mutation") }"#,
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(json(&next_text(&mut gql).await));
    }
    assert!(
        seen.iter()
            .any(|m| m["id"] == "m" && m["payload"]["data"]["sendChat"] == true)
    );
    assert!(
        seen.iter()
            .any(|m| m["id"] == "c" && m["payload"]["data"]["chat"]["text"] == "from a mutation")
    );
    // Ada's socket gets her own line back first, then the mutation's.
    assert_eq!(json(&next_text(&mut ada).await)["text"], "hello graphql");
    let line = json(&next_text(&mut ada).await);
    assert_eq!(
        (line["name"].as_str(), line["text"].as_str()),
        (Some("Gql"), Some("from a mutation"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_page_has_a_graphql_card() {
    let server = start().await;
    let addr = server.local_addr();
    let js = SseClient::open(addr, "/graphql.js", &[]).await;
    assert_eq!(js.status, 200);
    let html = std::fs::read_to_string(super::tests::static_dir().join("index.html")).unwrap();
    assert!(html.contains("id=\"graphql-panel\"") && html.contains("/graphql.js"));
    let script = std::fs::read_to_string(super::tests::static_dir().join("graphql.js")).unwrap();
    assert!(script.contains("graphql-transport-ws") && script.contains("subscription { ticker"));
    server.shutdown().await.unwrap();
}
