//! Guards on a GraphQL path (`App::graphql` with a `GraphQLRoute`): they run before the
//! upgrade, the SSE stream and the HTTP answer, and what they admit the request as reaches
//! the resolvers. Over real sockets: tokio-tungstenite and hyper here, the npm `graphql-ws`
//! and `graphql-sse` clients in `graphql_guards_with_the_npm_clients`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use armature_realtime::graphql::GraphQL;
use armature_realtime::graphql_route::GraphQLRoute;
use armature_realtime::guard::{Auth, Guard, Refusal, UserId};
use armature_realtime::jwt::JwtAuth;
use armature_realtime::{App, RequestHead, RunningServer, injectable};
use async_graphql::{Context, EmptyMutation, Object, Schema, Subscription};
use common::TIMEOUT;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

struct Query;

#[Object]
impl Query {
    /// The JWT's subject, through `Auth<Claims>`.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(ctx.data::<Auth<Claims>>()?.sub.clone())
    }
    /// The `UserId` the JWT guard registered, forwarded by every `GraphQLRoute`.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(ctx.data::<UserId>()?.0.clone())
    }
}

struct Sub;

#[Subscription]
impl Sub {
    async fn greetings(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = String> + use<>> {
        let who = ctx.data::<Auth<Claims>>()?.sub.clone();
        Ok(futures_util::stream::iter(
            ["hi", "hello", "bye"].map(move |word| format!("{word} {who}")),
        ))
    }
}

/// Refuses (403, before any upgrade) a request carrying `x-deny`.
#[injectable]
#[derive(Clone, Default)]
struct NoDeny;

impl Guard for NoDeny {
    async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
        match head.header("x-deny") {
            Some(_) => Err(Refusal::forbidden("denied")),
            None => Ok(()),
        }
    }
}

const SECRET: &[u8] = b"test secret, long enough for HS256";

fn token(sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &Claims {
            sub: sub.into(),
            exp: now + 600,
        },
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn server() -> RunningServer {
    let endpoint = || GraphQL::new(Schema::new(Query, EmptyMutation, Sub));
    App::new()
        .provide(
            JwtAuth::<Claims>::hs256(SECRET)
                .from_header()
                .from_subprotocol("bearer")
                .close_on_failure(true),
        )
        // Closes a bad upgrade with 4401 (what a browser sees).
        .graphql(
            "/graphql",
            GraphQLRoute::new(endpoint())
                .guard::<NoDeny>()
                .guard::<JwtAuth<Claims>>()
                .context::<Auth<Claims>>(),
        )
        // No guard: the resolvers find no identity.
        .graphql("/open", endpoint())
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(
    addr: SocketAddr,
    path: &str,
    protocols: &str,
    extra: &[(&str, &str)],
) -> Result<(Client, String), u16> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    for (k, v) in extra {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
    {
        Ok((ws, response)) => {
            let agreed = response.headers()["sec-websocket-protocol"]
                .to_str()
                .unwrap()
                .to_owned();
            Ok((ws, agreed))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

async fn next_json(ws: &mut Client) -> Value {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("message in time")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

async fn close_code(ws: &mut Client) -> Option<u16> {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

async fn send(ws: &mut Client, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

#[tokio::test]
async fn a_websocket_runs_the_guards_before_the_upgrade_and_resolvers_see_the_identity() {
    let server = server().await;
    let addr = server.local_addr();
    let offered = format!("graphql-transport-ws, bearer, {}", token("ada"));
    let (mut client, agreed) = ws(addr, "/graphql", &offered, &[]).await.unwrap();
    // The GraphQL protocol is agreed, never the token.
    assert_eq!(agreed, "graphql-transport-ws");
    send(&mut client, json!({"type": "connection_init"})).await;
    assert_eq!(next_json(&mut client).await["type"], "connection_ack");
    send(
        &mut client,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me user }"}}),
    )
    .await;
    let result = next_json(&mut client).await;
    assert_eq!(
        result["payload"]["data"],
        json!({"me": "ada", "user": "ada"}),
        "{result}"
    );
    assert_eq!(next_json(&mut client).await["type"], "complete");
    send(
        &mut client,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { greetings }"}}),
    )
    .await;
    for word in ["hi", "hello", "bye"] {
        let next = next_json(&mut client).await;
        assert_eq!(next["payload"]["data"]["greetings"], format!("{word} ada"));
    }
    assert_eq!(next_json(&mut client).await["type"], "complete");

    // No token: accepted with the GraphQL protocol, closed with 4401 (close_on_failure).
    let (mut refused, agreed) = ws(addr, "/graphql", "graphql-transport-ws", &[])
        .await
        .unwrap();
    assert_eq!(agreed, "graphql-transport-ws");
    assert_eq!(close_code(&mut refused).await, Some(4401));

    // A status refusal (the first guard) answers before any upgrade.
    let denied = ws(addr, "/graphql", &offered, &[("x-deny", "1")]).await;
    assert_eq!(denied.err(), Some(403));

    // Without guards the resolvers find no identity.
    let (mut open, _) = ws(addr, "/open", &offered, &[]).await.unwrap();
    send(&mut open, json!({"type": "connection_init"})).await;
    assert_eq!(next_json(&mut open).await["type"], "connection_ack");
    send(
        &mut open,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me }"}}),
    )
    .await;
    let result = next_json(&mut open).await;
    assert_eq!(result["payload"]["data"], Value::Null, "{result}");
    assert!(
        result["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Auth")
    );
    server.shutdown().await.unwrap();
}

async fn post(
    addr: SocketAddr,
    path: &str,
    accept: &str,
    headers: &[(&str, &str)],
    query: &str,
) -> (u16, String) {
    let mut builder = http::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", accept);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let body = json!({ "query": query }).to_string();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let res = tokio::time::timeout(
        TIMEOUT,
        sender.send_request(
            builder
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap(),
        ),
    )
    .await
    .expect("response in time")
    .unwrap();
    let status = res.status().as_u16();
    let body = tokio::time::timeout(TIMEOUT, http_body_util::BodyExt::collect(res.into_body()))
        .await
        .expect("body in time")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn sse_and_http_run_the_guards_before_answering_and_resolvers_see_the_identity() {
    let server = server().await;
    let addr = server.local_addr();
    let bearer = format!("Bearer {}", token("grace"));
    let auth = [("authorization", bearer.as_str())];

    let (status, body) = post(
        addr,
        "/graphql",
        "text/event-stream",
        &auth,
        "subscription { greetings }",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.matches("event: next").count(), 3, "{body}");
    assert!(
        body.contains("hi grace") && body.contains("bye grace"),
        "{body}"
    );
    assert!(body.ends_with("event: complete\ndata:\n\n"), "{body}");

    let (status, body) = post(addr, "/graphql", "application/json", &auth, "{ me user }").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"],
        json!({"me": "grace", "user": "grace"})
    );

    // No token: 401 for SSE and HTTP (a close refusal is its status off a WebSocket).
    let (status, _) = post(addr, "/graphql", "text/event-stream", &[], "{ me }").await;
    assert_eq!(status, 401);
    let (status, _) = post(addr, "/graphql", "application/json", &[], "{ me }").await;
    assert_eq!(status, 401);
    let (status, _) = post(
        addr,
        "/graphql",
        "text/event-stream",
        &[auth[0], ("x-deny", "1")],
        "{ me }",
    )
    .await;
    assert_eq!(status, 403);
    server.shutdown().await.unwrap();
}

fn node_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../armature-realtime-graphql/tests/node");
    if dir.join("node_modules/graphql-ws").exists() && dir.join("node_modules/graphql-sse").exists()
    {
        return Some(dir);
    }
    let message = "the node GraphQL clients are not installed: run `cargo xtask test` or \
                   `npm ci --prefix crates/armature-realtime-graphql/tests/node`";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

#[tokio::test]
async fn graphql_guards_with_the_npm_clients() {
    let Some(dir) = node_dir() else {
        return;
    };
    let server = server().await;
    let url = format!("ws://{}/graphql", server.local_addr());
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(dir.join("clients.cjs"))
            .arg("guarded")
            .arg(&url)
            .env("GRAPHQL_TOKEN", token("ada"))
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node finished within 60 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for case in [
        "guarded ws: the guard admitted the token, resolvers see the identity",
        "guarded ws: no token, closed with 4401",
        "guarded sse: the guard admitted the token, resolvers see the identity",
        "guarded sse: no token, 401",
    ] {
        assert!(
            stdout.contains(&format!("OK {case}")),
            "missing {case}:\n{stdout}"
        );
    }
    server.shutdown().await.unwrap();
}
