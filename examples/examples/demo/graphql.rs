//! The demo's GraphQL endpoint at `/graphql`: the ticker and the chat rooms as GraphQL
//! subscriptions, over WebSocket (`graphql-transport-ws` or the legacy `graphql-ws`) and
//! SSE on the same path.
//!
//! ```graphql
//! subscription { ticker { seq symbol price } }          # no arguments
//! subscription { chat(room: "lobby") { name text node } }
//! mutation { sendChat(room: "lobby", name: "Ada", text: "hi") }
//! query { rooms { name members } }
//! ```
//!
//! Both subscriptions are fed from the broadcast paths the rest of the demo uses: the
//! ticker's `SseBroadcaster` and the chat room (so with Redis a subscription on one node
//! streams the lines sent on any node).

use armature_realtime::graphql::{GraphQL, topic};
use async_graphql::{Context, Object, Schema, SimpleObject, Subscription};
use futures_util::Stream;
use serde::Deserialize;

use super::{ChatEvent, ChatRooms, MAX_NAME, MAX_TEXT, Ticker};

/// One tick, as the ticker's `price` events carry it.
#[derive(Clone, Deserialize, SimpleObject)]
struct PriceTick {
    seq: u64,
    symbol: String,
    price: f64,
    at_ms: u64,
}

/// One chat line (`members` messages do not decode into it and are skipped).
#[derive(Clone, Deserialize, SimpleObject)]
struct ChatLine {
    room: String,
    name: String,
    text: String,
    /// The node that relayed the line (with Redis).
    node: Option<String>,
}

#[derive(SimpleObject)]
struct Room {
    name: String,
    members: usize,
}

pub(super) struct Query;

#[Object]
impl Query {
    /// The rooms of this node with their member counts.
    async fn rooms(&self, ctx: &Context<'_>) -> Vec<Room> {
        let rooms = ctx.data_unchecked::<ChatRooms>();
        let mut names = rooms.manager.room_names();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(room) = rooms.manager.get_room(&name).await {
                out.push(Room {
                    members: room.len(),
                    name,
                });
            }
        }
        out
    }
}

pub(super) struct Mutation;

#[Object]
impl Mutation {
    /// Sends a chat line to `room` (every member, on every node, gets it).
    async fn send_chat(
        &self,
        ctx: &Context<'_>,
        room: String,
        name: String,
        text: String,
    ) -> async_graphql::Result<bool> {
        let rooms = ctx.data_unchecked::<ChatRooms>();
        let room_name: String = room.trim().chars().take(MAX_NAME).collect();
        let name: String = name.trim().chars().take(MAX_NAME).collect();
        let text: String = text.chars().take(MAX_TEXT).collect();
        if room_name.is_empty() || text.trim().is_empty() {
            return Err("room and text must not be empty".into());
        }
        let line = ChatEvent::Message {
            room: &room_name,
            name: if name.is_empty() { "anonymous" } else { &name },
            text: &text,
            node: rooms.node(),
            verified: false,
        };
        let room = rooms.manager.get_or_create_room(&room_name).await;
        room.broadcast_json(&line).await?;
        Ok(true)
    }
}

pub(super) struct Subscription;

#[Subscription]
impl Subscription {
    /// Every tick of the price ticker, live.
    async fn ticker(&self, ctx: &Context<'_>) -> impl Stream<Item = PriceTick> + use<> {
        let ticker = ctx.data_unchecked::<Ticker>();
        topic::broadcaster::<PriceTick>(&ticker.broadcaster, Some("price")).await
    }

    /// The chat lines of `room` from every node.
    async fn chat(&self, ctx: &Context<'_>, room: String) -> impl Stream<Item = ChatLine> + use<> {
        let rooms = ctx.data_unchecked::<ChatRooms>();
        let room_name: String = room.trim().chars().take(MAX_NAME).collect();
        let room = rooms.manager.get_or_create_room(&room_name).await;
        // With Redis: returns once this node is subscribed to the room, so nothing
        // published on another node from now on is missed.
        topic::room::<ChatLine>(&room).await
    }
}

/// The schema type of the demo.
pub(super) type DemoSchema = Schema<Query, Mutation, Subscription>;

/// The `/graphql` endpoint over the demo's rooms and ticker.
pub(super) fn endpoint(rooms: ChatRooms, ticker: Ticker) -> GraphQL<DemoSchema> {
    let schema = Schema::build(Query, Mutation, Subscription)
        .data(rooms)
        .data(ticker)
        .finish();
    GraphQL::new(schema)
}
