//! The demo in memory: the page, chat rooms with member counts, the ticker's resume after
//! a restart, and the settings.

use super::*;
use examples::testing::{SseClient, next_text, ws_connect};
use futures_util::SinkExt;

pub(super) fn static_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
}

async fn start(period_ms: u64) -> armature_realtime::RunningServer {
    demo_app(static_dir(), None)
        .provide(Ticker::with_period(period_ms))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn serves_the_page_and_its_assets() {
    let server = start(1000).await;
    let addr = server.local_addr();
    // `SseClient` reads just the response head here.
    let page = SseClient::open(addr, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.head.contains("text/html"), "{}", page.head);
    let js = SseClient::open(addr, "/app.js", &[]).await;
    assert_eq!(js.status, 200);
    assert!(js.head.contains("text/javascript"), "{}", js.head);
    let missing = SseClient::open(addr, "/nope.js", &[]).await;
    assert_eq!(missing.status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_rooms_with_member_counts() {
    let server = start(1000).await;
    let addr = server.local_addr();
    let mut ada = ws_connect(&format!("ws://{addr}/ws/chat/lobby?name=Ada")).await;
    assert_eq!(json(&next_text(&mut ada).await)["count"], 1);
    let mut bob = ws_connect(&format!("ws://{addr}/ws/chat/lobby?name=Bob")).await;
    assert_eq!(json(&next_text(&mut bob).await)["count"], 2);
    assert_eq!(json(&next_text(&mut ada).await)["count"], 2);
    let mut eve = ws_connect(&format!("ws://{addr}/ws/chat/other?name=Eve")).await;
    assert_eq!(json(&next_text(&mut eve).await)["count"], 1);

    ada.send("hi Bob".into()).await.unwrap();
    let line = json(&next_text(&mut bob).await);
    assert_eq!(line["type"], "message");
    assert_eq!(line["name"], "Ada");
    assert_eq!(line["text"], "hi Bob");
    assert_eq!(line["room"], "lobby");
    assert!(line.get("node").is_none(), "in memory: no node: {line}");
    assert_eq!(json(&next_text(&mut ada).await)["text"], "hi Bob");

    drop(bob);
    assert_eq!(json(&next_text(&mut ada).await)["count"], 1);
    // Eve's room saw none of it: her next message is her own.
    eve.send("alone?".into()).await.unwrap();
    assert_eq!(json(&next_text(&mut eve).await)["text"], "alone?");
    drop((ada, eve));
    server.shutdown().await.unwrap();
}

fn seq_of(event: &str) -> u64 {
    let id = event
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id line");
    id.parse().unwrap()
}

#[tokio::test]
async fn ticker_resumes_after_a_restart_without_gaps() {
    let server = start(50).await;
    let mut client = SseClient::open(server.local_addr(), "/events/ticker", &[]).await;
    assert_eq!(client.status, 200);
    let first = client.next_event().await;
    assert!(first.contains("event: price"), "{first}");
    let mut last = seq_of(&first);
    for _ in 0..3 {
        let seq = seq_of(&client.next_event().await);
        assert_eq!(seq, last + 1);
        last = seq;
    }
    drop(client);
    server.shutdown().await.unwrap();

    // Ticks go on while no server runs; a new process rebuilds them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = start(50).await;
    let last_id = last.to_string();
    let mut client = SseClient::open(
        server.local_addr(),
        "/events/ticker",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(seq_of(&client.next_event().await));
    }
    let expected: Vec<u64> = (last + 1..last + 11).collect();
    assert_eq!(
        seen, expected,
        "resumed right after {last}, in order, no gap"
    );
    drop(client);
    server.shutdown().await.unwrap();
}

#[test]
fn settings_from_arguments_and_environment() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let none = |_: &str| None;
    let env = |k: &str| match k {
        "PORT" => Some("4000".to_owned()),
        "REDIS_URL" => Some("redis://env:6379".to_owned()),
        _ => None,
    };
    let settings = |port, url: Option<&str>| Settings {
        port,
        redis_url: url.map(str::to_owned),
    };
    assert_eq!(
        Settings::parse(args(&[]), none).unwrap(),
        settings(3000, None)
    );
    assert_eq!(
        Settings::parse(args(&[]), env).unwrap(),
        settings(4000, Some("redis://env:6379"))
    );
    assert_eq!(
        Settings::parse(args(&["3001", "--redis", "redis://a:1"]), env).unwrap(),
        settings(3001, Some("redis://a:1"))
    );
    assert_eq!(
        Settings::parse(args(&["--redis=redis://b:2", "3002"]), none).unwrap(),
        settings(3002, Some("redis://b:2"))
    );
    let empty = |k: &str| (k == "REDIS_URL").then(String::new);
    assert_eq!(
        Settings::parse(args(&[]), empty).unwrap(),
        settings(3000, None)
    );
    for bad in [&["--redis"][..], &["x"], &["3000", "3001"], &["--verbose"]] {
        assert!(Settings::parse(args(bad), none).is_err(), "{bad:?}");
    }
}

#[test]
fn prices_are_the_same_in_every_process() {
    assert_eq!(price_at(12345), price_at(12345));
    assert!((140.0..160.0).contains(&price_at(7)));
}

/// Opens the chat with extra headers; the client and the agreed subprotocol.
async fn chat_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (examples::testing::Client, Option<String>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, protocol)
}

async fn close_of(ws: &mut examples::testing::Client) -> Option<(u16, String)> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return None,
        }
    }
}

#[tokio::test]
async fn sign_in_token_in_the_subprotocol_then_logout() {
    let server = start(1000).await;
    let addr = server.local_addr();
    let (status, body) = get_json(addr, "/api/token?name=Zoe").await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    let offer = format!("bearer, {token}");
    let (mut zoe, protocol) = chat_with(
        addr,
        "/ws/chat/lobby?name=Mallory",
        &[("sec-websocket-protocol", &offer)],
    )
    .await;
    assert_eq!(
        protocol.as_deref(),
        Some("bearer"),
        "the marker, never the token"
    );
    let welcome = json(&next_text(&mut zoe).await);
    assert_eq!(
        (welcome["type"].as_str(), welcome["user"].as_str()),
        (Some("welcome"), Some("Zoe"))
    );
    assert_eq!(json(&next_text(&mut zoe).await)["type"], "members");
    zoe.send("signed".into()).await.unwrap();
    let line = json(&next_text(&mut zoe).await);
    assert_eq!(
        line["name"], "Zoe",
        "the name comes from the token, not ?name="
    );
    assert_eq!(line["verified"], true);

    // A bad token: accepted, then closed with 4401 (a browser sees the code).
    let (mut bad, _) = chat_with(
        addr,
        "/ws/chat/lobby",
        &[("sec-websocket-protocol", "bearer, not.a.token")],
    )
    .await;
    assert_eq!(close_of(&mut bad).await.map(|c| c.0), Some(4401));

    // Logout closes Zoe's connection with 1008.
    let (status, body) = get_json_with(
        addr,
        "/api/logout",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed_here"], 1);
    assert_eq!(close_of(&mut zoe).await, Some((1008, "logged out".into())));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_faster_than_the_documented_rate_is_closed_with_1008() {
    let server = start(1000).await;
    let addr = server.local_addr();
    let mut calm = ws_connect(&format!("ws://{addr}/ws/chat/flood?name=Calm")).await;
    assert_eq!(json(&next_text(&mut calm).await)["count"], 1);
    let mut fast = ws_connect(&format!("ws://{addr}/ws/chat/flood?name=Fast")).await;
    for i in 0..400 {
        if fast.feed(format!("line {i}").into()).await.is_err() {
            break;
        }
    }
    let _ = fast.flush().await;
    assert_eq!(
        close_of(&mut fast).await,
        Some((1008, "message rate exceeded".into()))
    );
    // The calm member is still served.
    calm.send("still here".into()).await.unwrap();
    loop {
        let event = json(&next_text(&mut calm).await);
        if event["text"] == "still here" {
            break;
        }
    }
    server.shutdown().await.unwrap();
}

async fn get_json_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

async fn get_json(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    get_json_with(addr, path, &[]).await
}
