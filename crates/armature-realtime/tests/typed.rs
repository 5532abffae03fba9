//! Typed messages end to end, driven by `TestClient`: a typed chat (events in and out as
//! enums, ack replies, rooms), malformed and invalid messages answered with a typed error
//! while the connection stays open, typed SSE events, handlers that fail or panic, and
//! heartbeat timeouts under paused time.

use std::time::Duration;

use armature_realtime::prelude::*;
use armature_realtime::testing::TestClient;
use armature_realtime::typed::{MessageErrorKind, Valid, encode};
use armature_realtime::ws::WebSocketConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, schemars::JsonSchema, validator::Validate)]
struct Say {
    #[validate(length(min = 1, max = 200))]
    text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Join {
    room: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
enum ChatIn {
    #[serde(rename = "room:join")]
    Join(Join),
    #[serde(rename = "room:leave")]
    Leave(Join),
    #[serde(rename = "chat:say")]
    Say(Valid<Say>),
    /// Waits before answering (a slow handler).
    #[serde(rename = "chat:slow")]
    Slow { millis: u64 },
    #[serde(rename = "chat:fail")]
    Fail,
    #[serde(rename = "chat:panic")]
    Panic,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
struct Said {
    room: String,
    from: String,
    text: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
enum ChatOut {
    #[serde(rename = "room:joined")]
    Joined { room: String, members: usize },
    #[serde(rename = "room:left")]
    Left { room: String },
    #[serde(rename = "chat:message")]
    Message(Said),
    #[serde(rename = "chat:slow-done")]
    SlowDone { millis: u64 },
}

#[injectable]
#[derive(Clone, Default)]
struct Rooms {
    manager: Arc<WebSocketManager>,
}

#[controller("/typed")]
struct TypedChat {
    rooms: Rooms,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
enum Tick {
    #[serde(rename = "tick")]
    Tick { n: u32 },
    #[serde(rename = "done")]
    Done,
}

#[controller]
impl TypedChat {
    #[websocket("/chat")]
    async fn chat(
        &self,
        #[query] name: Option<String>,
        mut socket: TypedSocket<ChatIn, ChatOut>,
    ) -> Result<(), Error> {
        let name = name.unwrap_or_else(|| "anon".into());
        let mut joined: Vec<String> = Vec::new();
        while let Some(Ok(msg)) = socket.recv().await {
            let reply = match msg.data {
                ChatIn::Join(Join { room }) => {
                    let r = self.rooms.manager.get_or_create_room(&room).await;
                    r.add_connection(socket.id(), socket.connection()).await?;
                    joined.push(room.clone());
                    ChatOut::Joined {
                        members: r.connection_count().await,
                        room,
                    }
                }
                ChatIn::Leave(Join { room }) => {
                    if let Some(r) = self.rooms.manager.get_room(&room).await {
                        r.remove_connection(socket.id()).await;
                    }
                    joined.retain(|j| *j != room);
                    ChatOut::Left { room }
                }
                ChatIn::Say(say) => {
                    let text = say.into_inner().text;
                    for room in &joined {
                        if let Some(r) = self.rooms.manager.get_room(room).await {
                            let out = ChatOut::Message(Said {
                                room: room.clone(),
                                from: name.clone(),
                                text: text.clone(),
                            });
                            r.broadcast_text(encode(&out, None)?).await?;
                        }
                    }
                    continue;
                }
                ChatIn::Slow { millis } => {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    ChatOut::SlowDone { millis }
                }
                ChatIn::Fail => return Err(Error::Internal("asked to fail".into())),
                ChatIn::Panic => panic!("asked to panic"),
            };
            match msg.ack {
                Some(ack) => socket.reply(ack, &reply).await?,
                None => socket.send(&reply).await?,
            }
        }
        Ok(())
    }

    /// Only sends: three ticks, then done.
    #[sse("/ticks/:n")]
    async fn ticks(&self, n: u32) -> TypedEvents<Tick> {
        let items = (1..=n).map(|n| Tick::Tick { n }).chain([Tick::Done]);
        TypedEvents::new(futures_util::stream::iter(items))
    }

    /// Plain JSON, no envelope: `recv_json`, and an `Error::Validation` per bad message.
    #[websocket("/sum")]
    async fn sum(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(parsed) = socket.recv_json::<Vec<i64>>().await {
            match parsed {
                Ok(numbers) => {
                    socket
                        .send_json(&serde_json::json!({ "sum": numbers.iter().sum::<i64>() }))
                        .await?
                }
                Err(Error::Validation(why)) => {
                    socket
                        .send_json(&serde_json::json!({ "error": why }))
                        .await?
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}

#[module(providers: [Rooms], controllers: [TypedChat])]
struct TypedModule;

fn client() -> TestClient {
    TestClient::new(App::new().module::<TypedModule>()).expect("app builds")
}

#[derive(Debug, Deserialize, PartialEq)]
struct Joined {
    room: String,
    members: usize,
}

#[tokio::test]
async fn typed_chat_round_trips_typed_messages_through_rooms() {
    let client = client();
    let mut ann = client.websocket("/typed/chat?name=ann").await.unwrap();
    let mut bob = client.websocket("/typed/chat?name=bob").await.unwrap();

    ann.send_event("room:join", &serde_json::json!({"room": "lobby"}), Some(1))
        .await
        .unwrap();
    let reply = ann.recv_envelope().await.unwrap();
    assert_eq!(reply.event, "room:joined");
    assert_eq!(
        reply.ack.map(|a| a.0),
        Some(1),
        "a reply carries the ack id"
    );
    assert_eq!(
        reply.data,
        serde_json::json!({"room": "lobby", "members": 1})
    );

    bob.send_event("room:join", &serde_json::json!({"room": "lobby"}), None)
        .await
        .unwrap();
    let joined: Joined = bob.expect_event("room:joined").await.unwrap();
    assert_eq!(
        joined,
        Joined {
            room: "lobby".into(),
            members: 2
        }
    );
    let rooms = client.resolve::<Rooms>().unwrap();
    let lobby = rooms.manager.get_room("lobby").await.unwrap();
    assert_eq!(lobby.connection_count().await, 2);

    bob.send_event("chat:say", &serde_json::json!({"text": "hello"}), None)
        .await
        .unwrap();
    let expected = Said {
        room: "lobby".into(),
        from: "bob".into(),
        text: "hello".into(),
    };
    assert_eq!(
        ann.expect_event::<Said>("chat:message").await.unwrap(),
        expected
    );
    assert_eq!(
        bob.expect_event::<Said>("chat:message").await.unwrap(),
        expected
    );

    // Bob leaves: Ann's next message reaches Ann only.
    bob.send_event("room:leave", &serde_json::json!({"room": "lobby"}), None)
        .await
        .unwrap();
    let left: serde_json::Value = bob.expect_event("room:left").await.unwrap();
    assert_eq!(left, serde_json::json!({"room": "lobby"}));
    assert_eq!(lobby.connection_count().await, 1);
    ann.send_event(
        "chat:say",
        &serde_json::json!({"text": "still here?"}),
        None,
    )
    .await
    .unwrap();
    let got: Said = ann.expect_event("chat:message").await.unwrap();
    assert_eq!(got.text, "still here?");
    // Bob gets nothing more: his next message is the answer to his own slow request.
    bob.send_event("chat:slow", &serde_json::json!({"millis": 5}), Some(9))
        .await
        .unwrap();
    let slow = bob.recv_envelope().await.unwrap();
    assert_eq!(
        (slow.event.as_str(), slow.ack.map(|a| a.0)),
        ("chat:slow-done", Some(9))
    );

    ann.close(1000, "bye").await.unwrap();
    assert_eq!(ann.expect_close().await.unwrap(), Some(1000));
}

#[tokio::test]
async fn malformed_messages_get_a_typed_error_and_the_connection_survives() {
    let client = client();
    let mut ws = client.websocket("/typed/chat").await.unwrap();

    ws.send_text("this is not json").await.unwrap();
    let err = ws.expect_error().await.unwrap();
    assert_eq!(err.kind, MessageErrorKind::InvalidEnvelope);
    assert!(err.message.contains("not JSON"), "{}", err.message);

    ws.send_text(r#"{"data": {}}"#).await.unwrap();
    assert_eq!(
        ws.expect_error().await.unwrap().kind,
        MessageErrorKind::InvalidEnvelope
    );

    ws.send_event("chat:shout", &serde_json::json!({"text": "hi"}), Some(4))
        .await
        .unwrap();
    let reply = ws.recv_envelope().await.unwrap();
    assert_eq!(reply.event, "error");
    assert_eq!(reply.ack.map(|a| a.0), Some(4), "the error answers the ack");
    let err: armature_realtime::typed::MessageError = serde_json::from_value(reply.data).unwrap();
    assert_eq!(err.kind, MessageErrorKind::UnknownEvent);
    assert_eq!(err.event.as_deref(), Some("chat:shout"));
    assert!(
        err.message.contains("chat:say"),
        "lists the events: {}",
        err.message
    );

    // Wrong type for `text`.
    ws.send_event("chat:say", &serde_json::json!({"text": 42}), None)
        .await
        .unwrap();
    let err = ws.expect_error().await.unwrap();
    assert_eq!(err.kind, MessageErrorKind::InvalidData);
    assert_eq!(err.event.as_deref(), Some("chat:say"));

    // Parses, but fails the validator (`length(min = 1)`).
    ws.send_event("chat:say", &serde_json::json!({"text": ""}), None)
        .await
        .unwrap();
    let err = ws.expect_error().await.unwrap();
    assert_eq!(
        err.kind,
        MessageErrorKind::ValidationFailed,
        "{}",
        err.message
    );
    assert!(
        err.message
            .ends_with("validation failed: text: length (max 200, min 1)"),
        "{}",
        err.message
    );

    ws.send_binary(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        ws.expect_error().await.unwrap().kind,
        MessageErrorKind::InvalidEnvelope
    );

    // Still open and serving.
    ws.send_event("room:join", &serde_json::json!({"room": "after"}), None)
        .await
        .unwrap();
    let joined: Joined = ws.expect_event("room:joined").await.unwrap();
    assert_eq!(joined.room, "after");
}

#[tokio::test]
async fn recv_json_reports_a_bad_message_and_reads_on() {
    let client = client();
    let mut ws = client.websocket("/typed/sum").await.unwrap();
    ws.send_text("[1, 2, 3]").await.unwrap();
    let v: serde_json::Value = ws.recv_json().await.unwrap();
    assert_eq!(v, serde_json::json!({"sum": 6}));
    ws.send_text(r#"{"not": "a list"}"#).await.unwrap();
    let v: serde_json::Value = ws.recv_json().await.unwrap();
    let why = v["error"].as_str().unwrap();
    assert!(why.contains("not a valid `Vec<i64>`"), "{why}");
    ws.send_text("[40, 2]").await.unwrap();
    let v: serde_json::Value = ws.recv_json().await.unwrap();
    assert_eq!(v, serde_json::json!({"sum": 42}));
}

#[tokio::test]
async fn a_failing_handler_closes_with_1011_and_so_does_a_panicking_one() {
    let client = client();
    let mut ws = client.websocket("/typed/chat").await.unwrap();
    ws.send_event("chat:fail", &(), None).await.unwrap();
    assert_eq!(ws.expect_close().await.unwrap(), Some(1011));

    let mut ws = client.websocket("/typed/chat").await.unwrap();
    ws.send_event("chat:panic", &(), None).await.unwrap();
    assert_eq!(ws.expect_close().await.unwrap(), Some(1011));

    // The app still serves.
    let mut ws = client.websocket("/typed/chat").await.unwrap();
    ws.send_event("room:join", &serde_json::json!({"room": "x"}), None)
        .await
        .unwrap();
    assert!(ws.expect_event::<Joined>("room:joined").await.is_ok());
}

#[tokio::test]
async fn typed_sse_events_carry_their_names_and_json_data() {
    let client = client();
    let mut events = client.sse("/typed/ticks/3").await.unwrap();
    for n in 1..=3 {
        let tick: serde_json::Value = events.expect_event("tick").await.unwrap();
        assert_eq!(tick, serde_json::json!({ "n": n }));
    }
    let done = events.next_event().await.unwrap().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"));
    assert!(
        events.next_event().await.unwrap().is_none(),
        "the stream ends"
    );
}

#[tokio::test]
async fn refused_routes_report_their_status() {
    let client = client();
    match client.websocket("/typed/nowhere").await {
        Err(Error::Http { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected a 404, got {other:?}"),
    }
    match client.sse("/typed/ticks/not-a-number").await {
        Err(Error::Http { status, .. }) => assert_eq!(status, 400),
        other => panic!("expected a 400, got {other:?}"),
    }
}

fn heartbeat_client() -> TestClient {
    let config = WebSocketConfig::default()
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    TestClient::new(App::new().module::<TypedModule>().websocket_config(config)).unwrap()
}

/// A client that reads answers the server's pings (tungstenite replies with a pong), so
/// ten minutes of heartbeats pass and the connection stays open. Paused time: the test
/// takes milliseconds.
#[tokio::test(start_paused = true)]
async fn a_client_answering_pings_outlives_many_heartbeats() {
    let client = heartbeat_client();
    let mut ws = client.websocket("/typed/chat").await.unwrap();
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(600), ws.recv()).await;
    assert!(outcome.is_err(), "nothing came but pings: {outcome:?}");
    assert!(started.elapsed() >= Duration::from_secs(600));
    let stats = client.service().websocket_hub().stats();
    assert_eq!(stats.ping_timeouts, 0);
    // Still open: a request is served.
    ws.send_event("room:join", &serde_json::json!({"room": "hb"}), None)
        .await
        .unwrap();
    assert!(ws.expect_event::<Joined>("room:joined").await.is_ok());
}

/// A client that stops reading never answers the ping: after the ping interval and the
/// pong timeout the server closes with 1011 `pong timeout`, before 40 s of virtual time
/// have passed (checked at 39 s and 41 s).
#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_the_pong_timeout() {
    let client = heartbeat_client();
    let mut ws = client.websocket("/typed/chat").await.unwrap();
    let started = tokio::time::Instant::now();
    // Not reading: no pong goes out.
    tokio::time::sleep(Duration::from_secs(39)).await;
    assert_eq!(client.service().websocket_hub().stats().ping_timeouts, 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(client.service().websocket_hub().stats().ping_timeouts, 1);
    // The server wrote its ping, then (pong timeout, 1011) its close frame and dropped the
    // connection. The client reads the ping first; answering it fails on the dropped
    // connection, so the close frame behind it may be unreadable.
    let code = ws.expect_close().await.unwrap();
    assert!(matches!(code, None | Some(1011)), "{code:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The idle timeout counts only messages: a client that answers pings but sends nothing
/// is closed with 1001 once it passes.
#[tokio::test(start_paused = true)]
async fn an_idle_client_is_closed_with_1001() {
    let config = WebSocketConfig::default()
        .ping_interval(Some(Duration::from_secs(30)))
        .idle_timeout(Some(Duration::from_secs(120)));
    let client =
        TestClient::new(App::new().module::<TypedModule>().websocket_config(config)).unwrap();
    let mut ws = client.websocket("/typed/chat").await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(ws.expect_close().await.unwrap(), Some(1001));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(120) && waited < Duration::from_secs(125),
        "closed after {waited:?}"
    );
}
