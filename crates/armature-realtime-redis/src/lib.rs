//! Scale Armature Realtime out across server processes with Redis pub/sub.
//!
//! Each process runs one [`RedisRealtime`] node. A WebSocket room broadcast, a message to
//! one connection by id, or an SSE broadcast made on any node reaches the members and
//! clients on every node, without a change to the code that broadcasts: the node plugs
//! into the broadcast seams of `armature-ws` ([`armature_ws::BroadcastTransport`]) and
//! `armature-sse` ([`armature_sse::SseTransport`]).
//!
//! - The origin delivers to its own members at once and ignores its message coming back
//!   from Redis; other nodes deliver it on arrival: once per member, in the order each
//!   node published.
//! - A node subscribes to a room's channel only while the room has members on it (first
//!   join subscribes, last leave unsubscribes), so traffic follows interest. Redis 7
//!   sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`) by default; classic pub/sub for older Redis.
//! - One Redis server ([`RedisConfig::new`]) or a Redis Cluster ([`RedisConfig::cluster`]):
//!   each channel on the shard owning its slot, following reshardings and failovers.
//! - Every message is an [`envelope`]: binary-safe, versioned, carrying the origin node id
//!   and a per-origin, per-channel sequence number (both maps pruned), so a node counts and
//!   reports the messages it missed ([`RedisStats::gaps`], [`RedisEvent::Gap`]) instead of hiding it.
//! - Rooms and broadcasters can be durable ([`RedisRealtime::durable_room`],
//!   [`RedisRealtime::attach_durable_sse`]): a capped Redis Stream with one cluster-wide
//!   [`Offset`] per message, one delivery order on every node, holes filled from the stream,
//!   and one resume protocol (`@resume <offset> <room>` for WebSocket,
//!   [`RedisRealtime::join_durable`]; `Last-Event-ID` for SSE).
//! - Presence ([`RedisConfig::presence`], [`RedisRealtime::presence`]): who is in a room
//!   on every node, with a TTL so a crashed node's members disappear.
//! - If Redis goes away, local delivery goes on; the link reconnects with back-off,
//!   subscribes every active channel again and publishes what waited in its bounded outbox.
//!   Nothing waits on Redis: a broadcast is a queue push.
//!
//! `docs/redis.md` in the repository has the wire format and the exact guarantees.
//!
//! ```no_run
//! use armature_realtime_redis::{RedisConfig, RedisRealtime};
//! use armature_ws::WebSocketConfig;
//!
//! # #[tokio::main] async fn main() -> Result<(), armature_realtime_redis::Error> {
//! let redis = RedisRealtime::connect(RedisConfig::new("redis://127.0.0.1:6379").node_id("eu-1-")).await?;
//! let hub = redis.hub(WebSocketConfig::default()); // connection ids "eu-1-<n>"
//! let manager = redis.websocket_manager();
//! let room = manager.get_or_create_room("chat").await;
//! room.broadcast_text("hello, every node").await?;
//! # drop(hub); Ok(()) }
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod durable;
pub mod envelope;
mod link;
mod outbox;
mod presence;
mod realtime;
mod routes;
mod sequence;
mod stats;
mod stream;
mod transport;

pub use armature_realtime_error::{Error, Result};
pub use config::{Durability, PubSubMode, RedisConfig};
pub use durable::Offset;
pub use presence::Presence;
pub use realtime::RedisRealtime;
pub use stats::{EVENT_BACKLOG, RedisEvent, RedisStats};
pub use stream::Resumed;
pub use transport::{RedisRoomTransport, RedisSseTransport};
