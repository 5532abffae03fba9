//! The two transports a node plugs into the broadcast seams: [`RedisRoomTransport`] for
//! WebSocket rooms and [`RedisSseTransport`] for an SSE broadcaster.

use std::fmt;
use std::io;
use std::sync::Arc;

use armature_sse::{EncodedEvent, SseBroadcaster, SseTransport};
use armature_ws::{BroadcastTransport, MemberReady, WebSocketRoom};
use bytes::Bytes;

use crate::envelope::Kind;
use crate::routes::Node;

/// The [`BroadcastTransport`] of a [`RedisRealtime`](crate::RedisRealtime) node: a room
/// broadcast is delivered to this process's members at once and published on the room's
/// Redis channel for the other nodes; the node listens to a room's channel only while the
/// room has members here.
///
/// Get one from [`RedisRealtime::room_transport`](crate::RedisRealtime::room_transport) (or
/// a ready manager from
/// [`RedisRealtime::websocket_manager`](crate::RedisRealtime::websocket_manager)).
#[derive(Clone)]
pub struct RedisRoomTransport {
    pub(crate) node: Arc<Node>,
}

impl fmt::Debug for RedisRoomTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRoomTransport")
            .field("node_id", &self.node.node_id)
            .finish()
    }
}

impl BroadcastTransport for RedisRoomTransport {
    fn publish(
        &self,
        room: &WebSocketRoom,
        frame: Bytes,
        except: Option<&str>,
    ) -> armature_ws::Result<()> {
        if let Some(d) = self.node.durable_room(room.name()) {
            // Delivered here too when it comes back numbered, in the stream's order.
            self.node.publish_durable(&d, except, &frame);
            return Ok(());
        }
        room.deliver_local_coalesced(&frame, except);
        let channel = self.node.room_channel(room.name());
        self.node.publish(&channel, Kind::Room, except, &frame);
        Ok(())
    }

    fn room_occupancy_changed(&self, room: &WebSocketRoom) {
        self.node.room_occupancy(room);
    }

    /// A volatile room's member is ready once this node's subscriptions of now (including
    /// the room's, made when it gained its first member) are confirmed by Redis; a durable
    /// room is always listened to.
    fn member_ready(&self, room: &WebSocketRoom) -> Option<MemberReady> {
        if self.node.durable_room(room.name()).is_some() {
            return None;
        }
        let node = self.node.clone();
        let generation = node.routes.read().generation;
        let name = room.name().to_owned();
        Some(Box::pin(async move {
            if node.synced(generation, node.config.response_timeout).await {
                Ok(())
            } else {
                Err(armature_ws::Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("room {name} not subscribed in time"),
                )))
            }
        }))
    }
}

/// The [`SseTransport`] of one broadcaster shared through a
/// [`RedisRealtime`](crate::RedisRealtime) node: an event is delivered to this process's
/// clients (and history) at once and published on the broadcaster's Redis channel; events
/// from other nodes arrive in the same history and clients.
///
/// Made by [`RedisRealtime::attach_sse`](crate::RedisRealtime::attach_sse).
#[derive(Clone)]
pub struct RedisSseTransport {
    pub(crate) node: Arc<Node>,
    pub(crate) channel: Arc<str>,
}

impl fmt::Debug for RedisSseTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSseTransport")
            .field("node_id", &self.node.node_id)
            .field("channel", &self.channel)
            .finish()
    }
}

impl SseTransport for RedisSseTransport {
    fn publish(
        &self,
        broadcaster: &SseBroadcaster,
        event: EncodedEvent,
    ) -> Result<(), armature_sse::Error> {
        if let Some(d) = self.node.durable(&self.channel) {
            self.node.publish_durable(&d, None, event.bytes());
            return Ok(());
        }
        broadcaster.deliver_local(&event);
        self.node
            .publish(&self.channel, Kind::Sse, event.id(), event.bytes());
        Ok(())
    }
}
