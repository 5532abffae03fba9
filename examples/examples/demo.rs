//! The Armature Realtime demo: chat rooms over WebSocket and a live price ticker over
//! Server-Sent Events, with a plain HTML/JavaScript page served by the server itself.
//!
//! ```text
//! cargo run -p examples --example demo        # then open http://localhost:3000
//! ```
//!
//! Two demo nodes sharing their chat rooms through Redis (then open both pages):
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example demo -- 3000
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example demo -- 3001
//! ```
//!
//! - Chat: `ws://HOST/ws/chat/:room?name=NAME`. Every message is JSON: `{"type":"message",
//!   "room","name","text"}` for chat lines and `{"type":"members","room","count"}` whenever
//!   someone joins or leaves. A client's first `members` message tells it has joined.
//! - Chat security: the `Origin` check is on (the default): a page served from another
//!   origin cannot open the chat's WebSocket (`403` before the upgrade). Each connection
//!   may send **20 lines a second, in bursts of up to 120** (`#[rate_limit]`); a faster
//!   client is closed with 1008 `"message rate exceeded"`, and the others in its room lose
//!   nothing.
//! - Sign-in: `GET /api/token?name=NAME` returns `{"token","user","expires_in"}`, a JWT
//!   (HS256, one hour) for that name. The page then opens the chat with
//!   `new WebSocket(url, ["bearer", token])`: the token travels in `Sec-WebSocket-Protocol`
//!   (never in the URL), the server answers the `bearer` subprotocol, verifies the token
//!   before the upgrade (a bad one is accepted and closed with 4401, which the page can
//!   see), and the handler gets the user: its lines carry `"verified": true` and the name
//!   from the token, and its first message is `{"type":"welcome","user","verified":true}`.
//!   Without a token the chat stays open to anonymous names (`?name=`). `GET /api/logout`
//!   with `Authorization: Bearer <token>` closes every chat connection of that user with
//!   1008 (on every node with Redis). The key is `DEMO_JWT_SECRET` (give every node the
//!   same one), else random per process.
//! - Ticker: `GET /events/ticker` streams `price` events. Tick `n` happens at
//!   `n × period` on the wall clock and its price is a pure function of `n`, so a restarted
//!   server rebuilds the recent history at start-up: a browser that reconnects with
//!   `Last-Event-ID` after a restart receives every tick it missed (within the last
//!   [`HISTORY`] ticks), then live ones — no gap, no duplicate.
//! - `GET /api/rooms` lists the rooms with their member counts.
//! - GraphQL at `/graphql` (WebSocket with `graphql-transport-ws` or the legacy
//!   `graphql-ws`, SSE, or plain HTTP): `subscription { ticker { seq price } }` (no
//!   arguments), `subscription { chat(room: "lobby") { name text } }`, `mutation {
//!   sendChat(room, name, text) }`, `query { rooms { name members } }` (`demo/graphql.rs`).
//!
//! Settings: port from the first argument or `PORT` (default 3000); `DEMO_TICK_MS` sets the
//! tick period (default 1000); `DEMO_STATIC` the page's directory (default this package's
//! `static/`). Without Redis everything is in memory; no external service.
//!
//! ## With Redis: `REDIS_URL=URL` or `--redis URL`
//!
//! The node connects to Redis at start-up (and fails with a clear message when it cannot)
//! through `armature-realtime-redis`, then:
//!
//! - **Chat rooms are cluster-wide.** A line sent on any node reaches every member of the
//!   room on every node, exactly once, in the order its node relayed it; chat lines carry
//!   `"node"`, the id of the node that relayed them. A joining client is told the member
//!   count only once its node is subscribed to the room's channel, so from its first
//!   `members` message on it receives every line from every node.
//! - **Member counts and `/api/rooms` are per node**: `members` messages carry the count of
//!   members connected to *this* node, and `"node"`, its id.
//! - **"N online" is cluster-wide**: after each join and leave, every member on every node
//!   gets `{"type":"online","room","count"}`, the members of the room on all nodes
//!   (`armature-realtime-redis` presence, TTL 6 s: a crashed node's members drop out of the
//!   next count within it).
//! - **The ticker stays local to each node, and that is correct as is.** Every node computes
//!   the same ticks from the wall clock (same ids, same prices), so no node publishes for
//!   another and nothing is sent twice; a browser that fails over to another node resumes
//!   with `Last-Event-ID` from that node's history with no gap and no duplicate (nodes'
//!   clocks agreeing to within a tick period). Sharing it through Redis would only make
//!   every node deliver every tick twice, or need an elected publisher.

use std::time::{SystemTime, UNIX_EPOCH};

use armature_realtime::body::json_response;
use armature_realtime::guard::{FromRequestHead, Guard};
use armature_realtime::jwt::JwtAuth;
use armature_realtime::prelude::*;
use armature_realtime::sse::SseConfig;
use armature_realtime::ws::WebSocketConfig;
use armature_realtime::ws::permessage_deflate::DeflateConfig;
use armature_realtime::ws_core::encode_message;
use armature_realtime::{Container, Injectable};
use armature_realtime_redis::{RedisConfig, RedisRealtime};
use serde::Serialize;

/// How many ticks the ticker keeps (and rebuilds after a restart) for resuming clients.
const HISTORY: u64 = 600;
/// Longest chat line relayed, in characters.
const MAX_TEXT: usize = 500;
/// Longest display name, in characters.
const MAX_NAME: usize = 32;
/// How long a joining member waits for its node to subscribe to the room in Redis.
const SYNC_WAIT: Duration = Duration::from_secs(5);

// ---- settings ------------------------------------------------------------------------

/// What the command line and the environment ask for.
#[derive(Debug, PartialEq)]
struct Settings {
    port: u16,
    /// Share rooms through this Redis; `None`: in memory.
    redis_url: Option<String>,
}

impl Settings {
    /// `[PORT] [--redis URL | --redis=URL]` in any order; else `PORT` and `REDIS_URL`
    /// from `env` (an empty `REDIS_URL` counts as unset).
    fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, Error> {
        let mut port = None;
        let mut redis_url = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--redis" {
                let url = args.next().ok_or_else(|| {
                    Error::Validation("--redis needs a URL, e.g. redis://127.0.0.1:6379".into())
                })?;
                redis_url = Some(url);
            } else if let Some(url) = arg.strip_prefix("--redis=") {
                redis_url = Some(url.to_owned());
            } else if port.is_none() && !arg.starts_with('-') {
                port = Some(arg);
            } else {
                return Err(Error::Validation(format!(
                    "unexpected argument {arg:?}; usage: demo [PORT] [--redis URL]"
                )));
            }
        }
        let port = match port.or_else(|| env("PORT")) {
            Some(p) => p
                .parse()
                .map_err(|_| Error::Validation(format!("bad port {p:?}")))?,
            None => 3000,
        };
        let redis_url = redis_url.or_else(|| env("REDIS_URL").filter(|u| !u.is_empty()));
        Ok(Settings { port, redis_url })
    }
}

// ---- chat ----------------------------------------------------------------------------

/// The chat rooms: in memory, or shared with the other nodes through Redis.
#[injectable]
#[derive(Clone)]
struct ChatRooms {
    manager: Arc<WebSocketManager>,
    /// This node's link to the cluster, when it runs with Redis.
    redis: Option<RedisRealtime>,
}

impl Default for ChatRooms {
    fn default() -> Self {
        Self {
            // Empty rooms are forgotten, so `/api/rooms` lists live rooms only.
            manager: Arc::new(WebSocketManager::new().remove_empty_rooms(true)),
            redis: None,
        }
    }
}

impl ChatRooms {
    /// Rooms whose broadcasts reach every node attached to the same Redis.
    fn clustered(redis: &RedisRealtime) -> Self {
        Self {
            manager: Arc::new(redis.websocket_manager().remove_empty_rooms(true)),
            redis: Some(redis.clone()),
        }
    }

    /// This node's id in the cluster; `None` in memory.
    fn node(&self) -> Option<&str> {
        self.redis.as_ref().map(RedisRealtime::node_id)
    }

    /// After a local join: waits until this node receives the room's traffic from the
    /// other nodes (at once in memory, or when the node is already subscribed).
    async fn synced(&self) {
        if let Some(redis) = &self.redis
            && !redis.wait_synced(SYNC_WAIT).await
        {
            eprintln!("demo: Redis did not confirm the room subscription in {SYNC_WAIT:?}");
        }
    }

    /// Tells this node's members of `room` how many they are. Local only: the count is
    /// this node's, so it must not reach the members on other nodes.
    fn announce_members(&self, room: &WebSocketRoom, room_name: &str) -> Result<(), Error> {
        let event = ChatEvent::Members {
            room: room_name,
            count: room.len(),
            node: self.node(),
        };
        let text = serde_json::to_string(&event)?;
        room.deliver_local(&encode_message(&WebSocketMessage::text(text)), None);
        Ok(())
    }

    /// With Redis: tells every member of `room` on every node how many are online in the
    /// whole cluster (presence kept in Redis), once this node's presence is refreshed.
    fn announce_online(&self, room: &WebSocketRoom, room_name: &str) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let (room, room_name) = (room.clone(), room_name.to_owned());
        tokio::spawn(async move {
            redis.refresh_presence().await;
            if let Ok(count) = redis.presence_count(&room_name).await {
                let event = ChatEvent::Online {
                    room: &room_name,
                    count,
                };
                let _ = room.broadcast_json(&event).await;
            }
        });
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ChatEvent<'a> {
    Message {
        room: &'a str,
        name: &'a str,
        text: &'a str,
        /// The node that relayed the line (with Redis).
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<&'a str>,
        /// The name is the signed-in user's (from a verified token).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        verified: bool,
    },
    /// To a signed-in client, first: the user its token names.
    Welcome { user: &'a str, verified: bool },
    Members {
        room: &'a str,
        /// Members connected to this node.
        count: usize,
        /// This node (with Redis): the count is this node's.
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<&'a str>,
    },
    /// With Redis: members on every node (presence).
    Online { room: &'a str, count: usize },
}

// ---- sign-in -------------------------------------------------------------------------

/// What a demo token says.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Claims {
    /// The user's name.
    sub: String,
    exp: u64,
}

/// How long a demo token is valid.
const TOKEN_TTL_SECS: u64 = 3600;

/// The demo's token key: `DEMO_JWT_SECRET`, else random per process.
#[derive(Clone)]
struct TokenKey(Arc<Vec<u8>>);

impl TokenKey {
    fn from_env() -> Self {
        match std::env::var("DEMO_JWT_SECRET") {
            Ok(secret) if !secret.is_empty() => TokenKey(Arc::new(secret.into_bytes())),
            _ => {
                use std::hash::{BuildHasher, Hasher};
                let mut key = Vec::with_capacity(32);
                for i in 0..4u64 {
                    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                    h.write_u64(i ^ now_ms());
                    key.extend_from_slice(&h.finish().to_be_bytes());
                }
                TokenKey(Arc::new(key))
            }
        }
    }

    fn issue(&self, user: &str) -> Result<String, Error> {
        let claims = Claims {
            sub: user.to_owned(),
            exp: now_ms() / 1000 + TOKEN_TTL_SECS,
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.0),
        )
        .map_err(|e| Error::Internal(format!("token: {e}")))
    }

    /// The chat's guard for this key.
    fn guard(&self) -> SignIn {
        SignIn {
            jwt: JwtAuth::hs256(&self.0)
                .from_subprotocol("bearer")
                .from_header()
                .close_on_failure(true),
        }
    }
}

/// The chat's guard: a client that offers the `bearer` subprotocol must carry a valid token
/// after it (checked with the built-in [`JwtAuth`]; a bad one is closed with 4401); a
/// client that offers none is anonymous.
#[derive(Clone)]
struct SignIn {
    jwt: JwtAuth<Claims>,
}

impl Injectable for SignIn {
    fn create(_: &Container) -> Result<Self, Error> {
        Err(Error::Internal(
            "SignIn needs its key: App::provide(key.guard())".into(),
        ))
    }
}

impl Guard for SignIn {
    async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
        let offered = head
            .header("sec-websocket-protocol")
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "bearer"));
        if offered {
            self.jwt.check(head).await
        } else {
            Ok(())
        }
    }
}

/// The signed-in user of a chat connection, if any (what [`SignIn`] verified).
struct SignedIn(Option<Claims>);

impl FromRequestHead for SignedIn {
    fn from_request_head(head: &RequestHead) -> Result<Self, Error> {
        Ok(SignedIn(
            head.extensions()
                .get::<Auth<Claims>>()
                .map(|auth| auth.0.clone()),
        ))
    }
}

#[controller("/ws")]
struct ChatController {
    rooms: ChatRooms,
}

#[controller]
impl ChatController {
    /// 20 lines a second per connection, bursts of 120; faster: closed with 1008.
    #[websocket("/chat/:room")]
    #[use_guards(SignIn)]
    #[rate_limit(messages = 20, per = "1s", burst = 120)]
    async fn chat(
        &self,
        room: String,
        #[query] name: Option<String>,
        #[extract] user: SignedIn,
        upgrade: PendingUpgrade,
    ) -> Result<(), Error> {
        let room_name: String = room.trim().chars().take(MAX_NAME).collect();
        if room_name.is_empty() {
            return Err(Error::Validation("empty room name".into()));
        }
        let verified = user.0.is_some();
        let name: String = match &user.0 {
            Some(claims) => claims.sub.as_str(),
            None => name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or("anonymous"),
        }
        .chars()
        .take(MAX_NAME)
        .collect();
        let mut socket = upgrade.accept().await?;
        if verified {
            socket
                .send_json(&ChatEvent::Welcome {
                    user: &name,
                    verified: true,
                })
                .await?;
        }
        let room = self.rooms.manager.get_or_create_room(&room_name).await;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        self.rooms.synced().await;
        self.rooms.announce_members(&room, &room_name)?;
        self.rooms.announce_online(&room, &room_name);

        while let Some(message) = socket.recv().await {
            match message {
                Ok(WebSocketMessage::Text(text)) => {
                    let text: String = text.as_str().chars().take(MAX_TEXT).collect();
                    if text.trim().is_empty() {
                        continue;
                    }
                    let line = ChatEvent::Message {
                        room: &room_name,
                        name: &name,
                        text: &text,
                        node: self.rooms.node(),
                        verified,
                    };
                    room.broadcast_json(&line).await?;
                }
                Ok(WebSocketMessage::Close) | Err(_) => break,
                Ok(_) => {}
            }
        }
        room.remove_connection(socket.id()).await;
        self.rooms.announce_members(&room, &room_name)?;
        self.rooms.announce_online(&room, &room_name);
        Ok(())
    }
}

// ---- ticker --------------------------------------------------------------------------

#[derive(Serialize)]
struct Tick {
    seq: u64,
    symbol: &'static str,
    price: f64,
    at_ms: u64,
}

/// The price of tick `n`: a deterministic walk, the same in every process.
fn price_at(n: u64) -> f64 {
    // A small integer hash of n, then a bounded wave around 150.
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let noise = (x % 1000) as f64 / 1000.0 - 0.5;
    let wave = ((n as f64) / 20.0).sin() * 5.0;
    ((150.0 + wave + noise) * 100.0).round() / 100.0
}

fn tick_event(n: u64, period_ms: u64) -> Result<ServerSentEvent, Error> {
    let tick = Tick {
        seq: n,
        symbol: "ARMR",
        price: price_at(n),
        at_ms: n * period_ms,
    };
    // `retry: 1000`: browsers reconnect after one second rather than their default three.
    Ok(ServerSentEvent::full(
        n.to_string(),
        "price".into(),
        serde_json::to_string(&tick)?,
        1000,
    ))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[injectable]
#[derive(Clone)]
struct Ticker {
    broadcaster: Arc<SseBroadcaster>,
}

impl Default for Ticker {
    fn default() -> Self {
        let period_ms = std::env::var("DEMO_TICK_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1000);
        Ticker::with_period(period_ms)
    }
}

impl Ticker {
    /// A ticker publishing one tick every `period_ms` milliseconds (at least 10).
    fn with_period(period_ms: u64) -> Self {
        let period_ms = period_ms.max(10);
        let broadcaster = Arc::new(SseBroadcaster::with_config(
            SseConfig::default().history_len(HISTORY as usize),
        ));
        // Rebuild the recent history first (a restarted server knows every past tick), so a
        // client resuming with `Last-Event-ID` finds its place from the first request on.
        let current = now_ms() / period_ms;
        for n in current.saturating_sub(HISTORY - 1)..=current {
            if let Ok(event) = tick_event(n, period_ms) {
                let _ = broadcaster.broadcast_now(&event);
            }
        }
        let mut next = current + 1;
        let task_broadcaster = Arc::downgrade(&broadcaster);
        tokio::spawn(async move {
            // Publish each tick at its time, catching up on any a busy moment delayed.
            loop {
                let wait = (next * period_ms).saturating_sub(now_ms());
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let Some(broadcaster) = task_broadcaster.upgrade() else {
                    return; // the app is gone
                };
                let current = now_ms() / period_ms;
                for n in next..=current {
                    if let Ok(event) = tick_event(n, period_ms) {
                        let _ = broadcaster.broadcast(event).await;
                    }
                }
                next = next.max(current + 1);
            }
        });
        broadcaster
            .clone()
            .start_keep_alive(Duration::from_secs(15));
        Self { broadcaster }
    }
}

#[controller("/events")]
struct TickerController {
    ticker: Ticker,
}

#[controller]
impl TickerController {
    #[sse("/ticker")]
    async fn ticker(
        &self,
        #[header("last-event-id")] last_event_id: Option<String>,
    ) -> ReceiverStream<Result<String, Error>> {
        self.ticker
            .broadcaster
            .register_from(last_event_id.as_deref())
    }
}

// ---- the app -------------------------------------------------------------------------

#[module(providers: [ChatRooms, Ticker], controllers: [ChatController, TickerController])]
struct DemoModule;

#[derive(Serialize)]
struct RoomInfo {
    name: String,
    members: usize,
}

/// The demo app: the module, the rooms list and the page; its rooms shared through
/// `redis` when given (then attach the built app's hub with
/// [`RedisRealtime::attach_hub`]).
fn demo_app(static_dir: std::path::PathBuf, redis: Option<&RedisRealtime>) -> App {
    demo_app_with_key(static_dir, redis, TokenKey::from_env())
}

/// [`demo_app`] with this token key.
fn demo_app_with_key(
    static_dir: std::path::PathBuf,
    redis: Option<&RedisRealtime>,
    key: TokenKey,
) -> App {
    let issuer = key.clone();
    let verifier = JwtAuth::<Claims>::hs256(&key.0);
    let logout_redis = redis.cloned();
    // The rooms list reads the same `ChatRooms` instance the chat controller is given.
    // permessage-deflate in shared mode: every browser offers it, chat lines are JSON, and a
    // broadcast to the room is compressed once for all its members.
    let ws_config = WebSocketConfig::default().compression(DeflateConfig::shared());
    let (rooms, ws_config) = match redis {
        // Connection ids carry the node id, so they are unique across the cluster.
        Some(redis) => (
            ChatRooms::clustered(redis),
            redis.websocket_config(ws_config),
        ),
        None => (ChatRooms::default(), ws_config),
    };
    let list = rooms.clone();
    // One ticker for the SSE route and the GraphQL subscription.
    let ticker = Ticker::default();
    let graphql = graphql::endpoint(rooms.clone(), ticker.clone());
    App::new()
        .websocket_config(ws_config)
        .provide(rooms)
        .provide(ticker)
        .provide(key.guard())
        .module::<DemoModule>()
        // The typed chat (examples/src/typed_chat.rs) the page's "Typed chat" panel uses.
        .module::<examples::typed_chat::TypedChatModule>()
        .get("/api/token", move |head| {
            let issuer = issuer.clone();
            async move {
                let name: String = head
                    .query("name")
                    .map(str::trim)
                    .unwrap_or_default()
                    .chars()
                    .take(MAX_NAME)
                    .collect();
                if name.is_empty() {
                    return armature_realtime::body::error_response(&Error::Validation(
                        "sign in with a name: /api/token?name=NAME".into(),
                    ));
                }
                match issuer.issue(&name) {
                    Ok(token) => json_response(&serde_json::json!({
                        "token": token,
                        "user": name,
                        "expires_in": TOKEN_TTL_SECS,
                    }))
                    .unwrap_or_else(|e| armature_realtime::body::error_response(&e)),
                    Err(e) => armature_realtime::body::error_response(&e),
                }
            }
        })
        .get("/api/logout", move |mut head| {
            let verifier = verifier.clone();
            let redis = logout_redis.clone();
            async move {
                if let Err(refusal) = verifier.check(&mut head).await {
                    return refusal.into_response();
                }
                let Some(UserId(user)) = head.extensions().get::<UserId>().cloned() else {
                    return Refusal::unauthorized("no user in the token").into_response();
                };
                let closed = match (
                    &redis,
                    head.extensions()
                        .get::<Arc<armature_realtime::sessions::Sessions>>(),
                ) {
                    (Some(redis), _) => redis.close_user(&user, "logged out"),
                    (None, Some(sessions)) => {
                        let (code, reason) = armature_realtime::sessions::LOGOUT_CLOSE;
                        sessions.close_user(&user, code, reason)
                    }
                    (None, None) => 0,
                };
                json_response(&serde_json::json!({ "user": user, "closed_here": closed }))
                    .unwrap_or_else(|e| armature_realtime::body::error_response(&e))
            }
        })
        .graphql("/graphql", graphql)
        .get("/api/rooms", move |_| {
            let manager = Arc::clone(&list.manager);
            async move {
                let mut names = manager.room_names();
                names.sort();
                let mut info = Vec::with_capacity(names.len());
                for name in names {
                    if let Some(room) = manager.get_room(&name).await {
                        let members = room.connection_count().await;
                        info.push(RoomInfo { name, members });
                    }
                }
                json_response(&info).unwrap_or_else(|e| armature_realtime::body::error_response(&e))
            }
        })
        .static_dir("/", static_dir)
}

/// Builds and binds a demo node: in memory, or connected to the Redis at `redis_url`.
async fn start_node(
    static_dir: std::path::PathBuf,
    port: u16,
    redis_url: Option<&str>,
) -> Result<(armature_realtime::Server, Option<RedisRealtime>), Error> {
    let redis = match redis_url {
        // Presence: the "N online" count is cluster-wide; a crashed node's members leave it
        // within 6 s.
        Some(url) => Some(
            RedisRealtime::connect(RedisConfig::new(url).presence(Duration::from_secs(6))).await?,
        ),
        None => None,
    };
    let server = demo_app(static_dir, redis.as_ref())
        .bind(("127.0.0.1", port))
        .await?;
    if let Some(redis) = &redis {
        // Its connections reachable by id from every node.
        redis.attach_hub(server.service().websocket_hub())?;
        // A logout on any node closes this node's connections of that user.
        let app = server.service().clone();
        redis.on_close_user(move |user, _reason| app.close_user(user));
    }
    Ok((server, redis))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    examples::init_tracing();
    let settings = Settings::parse(std::env::args().skip(1), |k| std::env::var(k).ok())?;
    let static_dir = std::env::var("DEMO_STATIC")
        .map(Into::into)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static"));
    let (server, redis) = start_node(static_dir, settings.port, settings.redis_url.as_deref())
        .await
        .inspect_err(|e| eprintln!("demo: {e}"))?;
    let mode = match &redis {
        Some(redis) => format!("node {} sharing rooms through Redis", redis.node_id()),
        None => "in memory".to_owned(),
    };
    println!(
        "Armature Realtime demo on http://localhost:{}/ ({mode}; Ctrl-C to stop)",
        server.local_addr().port()
    );
    let result = server
        .run_until(armature_realtime::app::stop_signal())
        .await;
    if let Some(redis) = redis {
        redis.shutdown();
    }
    result
}

#[path = "demo/graphql.rs"]
mod graphql;

#[cfg(test)]
#[path = "demo/graphql_tests.rs"]
mod graphql_tests;

#[cfg(test)]
#[path = "demo/cluster_tests.rs"]
mod cluster_tests;

#[cfg(test)]
#[path = "demo/tests.rs"]
mod tests;
