//! Black-box `graphql-transport-ws` cases over a real socket, ported from the cases of the
//! graphql-ws package's own server suite: one per close code, ping/pong, results, and
//! "complete stops the stream".

mod support;

use std::time::Duration;

use armature_realtime_graphql::GraphQLConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{TestServer, eventually};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect_with(server: &TestServer, protocol: Option<&str>) -> Client {
    let mut request = server.url().into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    client
}

async fn connect(server: &TestServer) -> Client {
    connect_with(server, Some("graphql-transport-ws")).await
}

async fn send(client: &mut Client, value: Value) {
    client.send(Message::text(value.to_string())).await.unwrap();
}

/// The next text message as JSON (pings/pongs of the WebSocket layer skipped).
async fn recv(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .expect("no socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Reads until the close frame; returns its code and reason.
async fn close_of(client: &mut Client) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("a close within 5 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Nothing arrives within `ms` (the socket stays open).
async fn quiet(client: &mut Client, ms: u64) {
    if let Ok(message) = tokio::time::timeout(Duration::from_millis(ms), client.next()).await {
        panic!("unexpected {message:?}");
    }
}

async fn acked(server: &TestServer) -> Client {
    let mut client = connect(server).await;
    send(&mut client, json!({"type": "connection_init"})).await;
    assert_eq!(recv(&mut client).await, json!({"type": "connection_ack"}));
    client
}

fn subscribe(id: &str, query: &str) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query}})
}

#[tokio::test]
async fn a_client_without_the_subprotocol_is_closed_4406() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = connect_with(&server, None).await;
    assert_eq!(close_of(&mut client).await.0, 4406);
    // Asking only for another subprotocol: none is agreed (a strict client such as
    // tungstenite gives up there), and the socket is closed with 4406.
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(
        matches!(
            refused,
            tokio_tungstenite::tungstenite::Error::Protocol(
                tokio_tungstenite::tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(
                    _
                )
            )
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_clients_subprotocol_is_agreed() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws, graphql-ws".parse().unwrap(),
    );
    let (_client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
}

#[tokio::test]
async fn no_connection_init_within_the_wait_closes_4408() {
    let config = GraphQLConfig::default().connection_init_timeout(Duration::from_millis(150));
    let server = TestServer::start(config).await;
    let mut client = connect(&server).await;
    assert_eq!(
        close_of(&mut client).await,
        (4408, "Connection initialisation timeout".into())
    );
}

#[tokio::test]
async fn init_timeout_does_not_fire_while_the_hook_is_resolving() {
    let config = GraphQLConfig::default().connection_init_timeout(Duration::from_millis(150));
    let server = TestServer::start(config).await;
    let mut client = connect(&server).await;
    send(
        &mut client,
        json!({"type": "connection_init", "payload": {"token": "slow"}}),
    )
    .await;
    // The hook takes 600 ms, well past the 150 ms wait: still acknowledged.
    assert_eq!(recv(&mut client).await, json!({"type": "connection_ack"}));
}

#[tokio::test]
async fn the_default_init_wait_is_three_seconds() {
    assert_eq!(
        GraphQLConfig::default().connection_init_timeout,
        Duration::from_secs(3)
    );
}

#[tokio::test]
async fn a_second_connection_init_closes_4429() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, json!({"type": "connection_init"})).await;
    assert_eq!(
        close_of(&mut client).await,
        (4429, "Too many initialisation requests".into())
    );
    // Also while the first one is still pending.
    let mut pending = connect(&server).await;
    send(
        &mut pending,
        json!({"type": "connection_init", "payload": {"token": "slow"}}),
    )
    .await;
    send(&mut pending, json!({"type": "connection_init"})).await;
    assert_eq!(close_of(&mut pending).await.0, 4429);
}

#[tokio::test]
async fn subscribe_before_the_ack_closes_4401() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = connect(&server).await;
    send(&mut client, subscribe("1", "{ hello }")).await;
    assert_eq!(close_of(&mut client).await, (4401, "Unauthorized".into()));
}

#[tokio::test]
async fn a_refusing_hook_closes_4403() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = connect(&server).await;
    send(
        &mut client,
        json!({"type": "connection_init", "payload": {"token": "bad"}}),
    )
    .await;
    assert_eq!(close_of(&mut client).await, (4403, "Forbidden".into()));
}

#[tokio::test]
async fn the_hook_sees_the_payload_and_its_data_reaches_resolvers() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = connect(&server).await;
    send(
        &mut client,
        json!({"type": "connection_init", "payload": {"user": "ada", "ackMe": true}}),
    )
    .await;
    assert_eq!(
        recv(&mut client).await,
        json!({"type": "connection_ack", "payload": {"welcome": true}})
    );
    send(&mut client, subscribe("1", "{ whoami }")).await;
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "1", "type": "next", "payload": {"data": {"whoami": "ada"}}})
    );
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "1", "type": "complete"})
    );
}

#[tokio::test]
async fn a_duplicate_operation_id_closes_4409() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(
        &mut client,
        subscribe("1", "subscription { ticks(ms: 1000) }"),
    )
    .await;
    assert!(eventually(|| server.live_streams() == 1).await);
    send(
        &mut client,
        subscribe("1", "subscription { ticks(ms: 1000) }"),
    )
    .await;
    assert_eq!(
        close_of(&mut client).await,
        (4409, "Subscriber for 1 already exists".into())
    );
    // The running operation stopped with the socket.
    assert!(eventually(|| server.live_streams() == 0).await);
}

#[tokio::test]
async fn invalid_messages_close_4400() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    for bad in [
        Message::text("{not json"),
        Message::text(json!({"type": "nonsense"}).to_string()),
        Message::text(
            json!({"id": "1", "type": "subscribe", "payload": {"query": 42}}).to_string(),
        ),
        Message::text(json!({"type": "next", "id": "1", "payload": {}}).to_string()),
        Message::binary(vec![1u8, 2, 3]),
    ] {
        let mut client = acked(&server).await;
        client.send(bad.clone()).await.unwrap();
        assert_eq!(close_of(&mut client).await.0, 4400, "{bad:?}");
    }
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_its_payload() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    // Before connection_init too.
    let mut client = connect(&server).await;
    send(&mut client, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut client).await, json!({"type": "pong"}));
    send(&mut client, json!({"type": "ping", "payload": {"t": 7}})).await;
    assert_eq!(
        recv(&mut client).await,
        json!({"type": "pong", "payload": {"t": 7}})
    );
    // A pong gets no answer.
    send(&mut client, json!({"type": "pong"})).await;
    quiet(&mut client, 100).await;
}

#[tokio::test]
async fn the_server_pings_when_keep_alive_is_on() {
    let config = GraphQLConfig::default().keep_alive(Some(Duration::from_millis(100)));
    let server = TestServer::start(config).await;
    let mut client = acked(&server).await;
    assert_eq!(recv(&mut client).await, json!({"type": "ping"}));
}

#[tokio::test]
async fn a_query_is_next_then_complete() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("q", "{ hello }")).await;
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "q", "type": "next", "payload": {"data": {"hello": "world"}}})
    );
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "q", "type": "complete"})
    );
}

#[tokio::test]
async fn a_mutation_runs_over_the_socket() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(
        &mut client,
        json!({"id": "m", "type": "subscribe", "payload": {
            "query": "mutation Add($by: Int!) { add(by: $by) }",
            "variables": {"by": 5},
            "operationName": "Add",
        }}),
    )
    .await;
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "m", "type": "next", "payload": {"data": {"add": 5}}})
    );
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "m", "type": "complete"})
    );
    assert_eq!(server.value.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[tokio::test]
async fn validation_errors_are_an_error_message_without_complete() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("v", "{ nosuchfield }")).await;
    let message = recv(&mut client).await;
    assert_eq!(message["type"], "error");
    assert_eq!(message["id"], "v");
    let errors = message["payload"].as_array().unwrap();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchfield")
    );
    // Syntax errors too.
    send(&mut client, subscribe("s", "{ hello")).await;
    let message = recv(&mut client).await;
    assert_eq!(
        (message["type"].as_str(), message["id"].as_str()),
        (Some("error"), Some("s"))
    );
    // No complete follows either; the connection stays usable.
    send(&mut client, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut client).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn resolver_errors_are_next_with_errors() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("e", "{ fails }")).await;
    let message = recv(&mut client).await;
    assert_eq!(message["type"], "next");
    assert_eq!(
        message["payload"]["errors"][0]["message"],
        "this field always fails"
    );
    assert_eq!(message["payload"]["errors"][0]["path"], json!(["fails"]));
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "e", "type": "complete"})
    );
}

#[tokio::test]
async fn a_subscription_streams_in_order_then_completes() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(
        &mut client,
        subscribe("c", "subscription { count(to: 50) }"),
    )
    .await;
    for n in 0..50 {
        assert_eq!(
            recv(&mut client).await,
            json!({"id": "c", "type": "next", "payload": {"data": {"count": n}}})
        );
    }
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "c", "type": "complete"})
    );
    // The id is free again.
    send(&mut client, subscribe("c", "subscription { greetings }")).await;
    assert_eq!(
        recv(&mut client).await["payload"],
        json!({"data": {"greetings": "Hi"}})
    );
}

#[tokio::test]
async fn client_complete_stops_the_resolver_stream_at_once_without_echo() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(
        &mut client,
        subscribe("t", "subscription { ticks(ms: 20) }"),
    )
    .await;
    assert_eq!(
        recv(&mut client).await["payload"],
        json!({"data": {"ticks": 0}})
    );
    assert_eq!(server.live_streams(), 1);
    send(&mut client, json!({"id": "t", "type": "complete"})).await;
    assert!(
        eventually(|| server.live_streams() == 0).await,
        "the resolver stream was dropped"
    );
    // At most a result already in flight; no `complete` echoed, nothing afterwards.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, client.next()).await {
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["type"], "next", "{value}");
        }
    }
    quiet(&mut client, 150).await;
}

#[tokio::test]
async fn closing_the_socket_stops_every_resolver_stream() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    for id in ["a", "b", "c"] {
        send(&mut client, subscribe(id, "subscription { ticks(ms: 50) }")).await;
    }
    assert!(eventually(|| server.live_streams() == 3).await);
    client.close(None).await.unwrap();
    assert!(eventually(|| server.live_streams() == 0).await);
}

#[tokio::test]
async fn operations_per_connection_are_bounded() {
    let server = TestServer::start(GraphQLConfig::default().max_operations(2)).await;
    let mut client = acked(&server).await;
    send(
        &mut client,
        subscribe("1", "subscription { ticks(ms: 1000) }"),
    )
    .await;
    send(
        &mut client,
        subscribe("2", "subscription { ticks(ms: 1000) }"),
    )
    .await;
    send(
        &mut client,
        subscribe("3", "subscription { ticks(ms: 1000) }"),
    )
    .await;
    let message = recv(&mut client).await;
    assert_eq!(
        (message["type"].as_str(), message["id"].as_str()),
        (Some("error"), Some("3"))
    );
    assert!(
        message["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2")
    );
    assert_eq!(server.live_streams(), 2);
    // Completing one makes room.
    send(&mut client, json!({"id": "1", "type": "complete"})).await;
    assert!(eventually(|| server.live_streams() == 1).await);
    send(&mut client, subscribe("3", "{ hello }")).await;
    assert_eq!(recv(&mut client).await["type"], "next");
}

#[tokio::test]
async fn a_stream_error_is_a_next_with_errors_and_the_connection_stays() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("f", "subscription { flaky }")).await;
    assert_eq!(
        recv(&mut client).await["payload"],
        json!({"data": {"flaky": 1}})
    );
    let second = recv(&mut client).await;
    assert_eq!(second["type"], "next");
    assert_eq!(second["payload"]["errors"][0]["message"], "kaboom");
}

#[tokio::test]
async fn a_panicking_resolver_errors_its_operation_only() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("p", "subscription { panics }")).await;
    let message = recv(&mut client).await;
    assert_eq!(
        (message["type"].as_str(), message["id"].as_str()),
        (Some("error"), Some("p"))
    );
    send(&mut client, subscribe("p", "{ hello }")).await;
    assert_eq!(
        recv(&mut client).await["payload"],
        json!({"data": {"hello": "world"}})
    );
}

#[tokio::test]
async fn a_slow_query_does_not_hold_up_other_operations_or_pings() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("slow", "{ slow(ms: 800) }")).await;
    send(&mut client, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut client).await, json!({"type": "pong"}));
    send(&mut client, subscribe("fast", "{ hello }")).await;
    assert_eq!(recv(&mut client).await["id"], "fast");
    assert_eq!(
        recv(&mut client).await,
        json!({"id": "fast", "type": "complete"})
    );
    assert_eq!(recv(&mut client).await["id"], "slow");
}

#[tokio::test]
async fn a_room_feeds_a_subscription() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let mut client = acked(&server).await;
    send(&mut client, subscribe("chat", "subscription { chat }")).await;
    let room = server.rooms.room("chat");
    assert!(eventually(|| room.len() == 1).await);
    for text in ["one", "two", "three"] {
        room.broadcast_json(&text).await.unwrap();
    }
    for text in ["one", "two", "three"] {
        assert_eq!(
            recv(&mut client).await["payload"],
            json!({"data": {"chat": text}})
        );
    }
    send(&mut client, json!({"id": "chat", "type": "complete"})).await;
    assert!(
        eventually(|| room.is_empty()).await,
        "the topic member left the room"
    );
}

#[tokio::test]
async fn identical_subscriptions_to_a_shared_field_execute_once_with_their_own_ids() {
    let config = GraphQLConfig::default().shared_subscriptions(["chat"]);
    let server = TestServer::start(config).await;
    let room = server.rooms.room("chat");
    // Two graphql-transport-ws clients, one of them twice (ids a and b), and a legacy
    // client with the same id as the first.
    let mut one = acked(&server).await;
    let mut two = acked(&server).await;
    let mut legacy = connect_with(&server, Some("graphql-ws")).await;
    send(&mut legacy, json!({"type": "connection_init"})).await;
    assert_eq!(recv(&mut legacy).await["type"], "connection_ack");
    send(&mut one, subscribe("a", "subscription { chat }")).await;
    send(&mut two, subscribe("a", "subscription { chat }")).await;
    send(&mut two, subscribe("b", "subscription { chat }")).await;
    send(
        &mut legacy,
        json!({"id": "a", "type": "start", "payload": {"query": "subscription { chat }"}}),
    )
    .await;
    // Not shared: another document.
    let mut other = acked(&server).await;
    send(&mut other, subscribe("x", "subscription { c: chat }")).await;
    // One execution for the four identical subscriptions, one for the other: two members.
    assert!(
        eventually(|| room.len() == 2).await,
        "members: {}",
        room.len()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(room.len(), 2);

    for text in ["one", "two", "three"] {
        room.broadcast_json(&text).await.unwrap();
    }
    for text in ["one", "two", "three"] {
        let data = json!({"data": {"chat": text}});
        assert_eq!(
            recv(&mut one).await,
            json!({"id": "a", "type": "next", "payload": data})
        );
        let mut got = [recv(&mut two).await, recv(&mut two).await];
        got.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
        assert_eq!(
            got,
            [
                json!({"id": "a", "type": "next", "payload": data}),
                json!({"id": "b", "type": "next", "payload": data})
            ]
        );
        assert_eq!(
            recv(&mut legacy).await,
            json!({"id": "a", "type": "data", "payload": data})
        );
        assert_eq!(
            recv(&mut other).await["payload"],
            json!({"data": {"c": text}})
        );
    }

    // A client's complete stops only its own subscription.
    send(&mut two, json!({"id": "a", "type": "complete"})).await;
    send(&mut one, json!({"id": "a", "type": "complete"})).await;
    send(&mut legacy, json!({"id": "a", "type": "stop"})).await;
    assert_eq!(
        recv(&mut legacy).await,
        json!({"id": "a", "type": "complete"})
    );
    room.broadcast_json(&"four").await.unwrap();
    assert_eq!(
        recv(&mut two).await,
        json!({"id": "b", "type": "next", "payload": {"data": {"chat": "four"}}})
    );
    quiet(&mut one, 200).await;
    assert_eq!(room.len(), 2);
    // The last subscriber out drops the shared resolver stream (it leaves the room).
    send(&mut two, json!({"id": "b", "type": "complete"})).await;
    assert!(
        eventually(|| room.len() == 1).await,
        "members: {}",
        room.len()
    );

    // A new identical subscription starts a new execution.
    send(&mut one, subscribe("again", "subscription { chat }")).await;
    assert!(eventually(|| room.len() == 2).await);
    room.broadcast_json(&"five").await.unwrap();
    assert_eq!(
        recv(&mut one).await,
        json!({"id": "again", "type": "next", "payload": {"data": {"chat": "five"}}})
    );
}

#[tokio::test]
async fn a_shared_subscription_that_ends_or_fails_reaches_every_subscriber() {
    // `count` ends by itself; `chat` with a bad argument fails validation.
    let config = GraphQLConfig::default().shared_subscriptions(["count", "chat"]);
    let server = TestServer::start(config).await;
    let mut one = acked(&server).await;
    let mut two = acked(&server).await;
    send(&mut one, subscribe("1", "subscription { chat(nope: 1) }")).await;
    send(&mut two, subscribe("2", "subscription { chat(nope: 1) }")).await;
    for (client, id) in [(&mut one, "1"), (&mut two, "2")] {
        let error = recv(client).await;
        assert_eq!(error["id"], id);
        assert_eq!(error["type"], "error");
        assert!(error["payload"][0]["message"].is_string(), "{error}");
    }
    send(&mut one, subscribe("c", "subscription { count(to: 3) }")).await;
    let mut seen = Vec::new();
    loop {
        let message = recv(&mut one).await;
        if message["type"] == "complete" {
            break;
        }
        seen.push(message["payload"]["data"]["count"].clone());
    }
    assert_eq!(seen, [json!(0), json!(1), json!(2)]);
}
