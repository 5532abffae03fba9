//! What this node listens to, and where a received message goes: the shared state of a node
//! that the transports, the link task and the push handler all reach.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use armature_sse::{EncodedEvent, SseBroadcaster};
use armature_ws::{Hub, WebSocketRoom};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};

use crate::config::{PubSubMode, RedisConfig};
use crate::durable::{Offset, Order, Step};
use crate::envelope::{self, Envelope, Kind};
use crate::outbox::Outbox;
use crate::sequence::{GapTracker, Verdict};
use crate::stats::{Counters, RedisEvent};

/// Closes every connection of a user on this node (user id, reason); returns how many.
#[derive(Clone)]
pub(crate) struct CloseUser(pub(crate) Arc<CloseUserFn>);

/// `(user id, reason) -> connections closed`.
pub(crate) type CloseUserFn = dyn Fn(&str, &str) -> usize + Send + Sync;

impl std::fmt::Debug for CloseUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloseUser(..)")
    }
}

/// The channels wanted, and who gets what arrives on them.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Room channel → the local rooms of that name that have members.
    rooms: HashMap<Arc<str>, Vec<WebSocketRoom>>,
    /// Node channel → the hub whose connections it reaches.
    hubs: HashMap<Arc<str>, Hub>,
    /// SSE channel → the broadcaster.
    sse: HashMap<Arc<str>, Weak<SseBroadcaster>>,
    /// The cluster-wide users channel and what closes a user's connections on this node
    /// (set by [`RedisRealtime::on_close_user`](crate::RedisRealtime::on_close_user)).
    users: Option<(Arc<str>, CloseUser)>,
    /// Durable channel → its stream (subscribed for as long as it is declared).
    pub(crate) durable: HashMap<Arc<str>, Arc<DurableChannel>>,
    /// Bumped whenever the set of wanted channels changes.
    pub(crate) generation: u64,
}

impl Routes {
    /// The local rooms that have members, by channel.
    pub(crate) fn occupied_rooms(&self) -> impl Iterator<Item = &Vec<WebSocketRoom>> {
        self.rooms.values()
    }

    /// Every channel this node wants to be subscribed to.
    pub(crate) fn wanted(&self) -> HashSet<Arc<str>> {
        self.rooms
            .keys()
            .chain(self.hubs.keys())
            .chain(self.sse.keys())
            .chain(self.durable.keys())
            .chain(self.users.as_ref().map(|(channel, _)| channel))
            .cloned()
            .collect()
    }
}

/// A durable room or broadcaster: its stream's keys and limits, and its delivery order here.
#[derive(Debug)]
pub(crate) struct DurableChannel {
    pub(crate) channel: Arc<str>,
    /// The room or broadcaster name (what clients are told in `@offset` messages).
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) stream_key: String,
    pub(crate) meta_key: String,
    pub(crate) max_len: usize,
    pub(crate) ttl_ms: u64,
    /// Messages read back into local delivery when the node first subscribes (an SSE
    /// history's worth; 0 for a room).
    pub(crate) preload: u64,
    pub(crate) order: Mutex<Order>,
    /// True once the start position is known and the channel subscribed.
    pub(crate) ready: watch::Sender<bool>,
}

impl DurableChannel {
    /// The current position, once known.
    pub(crate) fn position(order: &Order) -> Option<Offset> {
        order.epoch.map(|epoch| Offset {
            epoch,
            offset: order.last,
        })
    }
}

/// A node's shared state.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: RedisConfig,
    pub(crate) node_id: String,
    pub(crate) epoch: u64,
    pub(crate) counters: Counters,
    pub(crate) outbox: Outbox,
    pub(crate) routes: RwLock<Routes>,
    tracker: Mutex<GapTracker>,
    /// Woken when the wanted channels change, or on shutdown.
    pub(crate) wake: Notify,
    /// `Some(generation)` once the link is up with the channels of that generation
    /// subscribed; `None` while it is down.
    pub(crate) applied: watch::Sender<Option<u64>>,
    pub(crate) shutdown: std::sync::atomic::AtomicBool,
    /// Channels the server unsubscribed (a slot moved), for the link to subscribe again.
    lost: Mutex<Vec<Arc<str>>>,
    /// The link's connection while it is up (for stream reads).
    pub(crate) conn: RwLock<Option<crate::link::Conn>>,
    /// Wakes the presence task for a refresh now.
    pub(crate) presence_wake: Arc<Notify>,
    /// Counts the presence task's completed refreshes.
    pub(crate) presence_passes: Arc<watch::Sender<u64>>,
}

impl Node {
    /// Waits up to `timeout` until the link is up with the channels of `generation` (or a
    /// later one) subscribed.
    pub(crate) async fn synced(&self, generation: u64, timeout: std::time::Duration) -> bool {
        let mut applied = self.applied.subscribe();
        let wait = applied.wait_for(|a| a.is_some_and(|g| g >= generation));
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    pub(crate) fn new(config: RedisConfig, node_id: String) -> Self {
        let outbox = Outbox::new(config.outbox_messages, config.outbox_bytes);
        Node {
            config,
            node_id,
            epoch: crate::stats::random_u64(),
            counters: Counters::default(),
            outbox,
            routes: RwLock::new(Routes::default()),
            tracker: Mutex::new(GapTracker::default()),
            wake: Notify::new(),
            applied: watch::Sender::new(None),
            shutdown: std::sync::atomic::AtomicBool::new(false),
            lost: Mutex::new(Vec::new()),
            conn: RwLock::new(None),
            presence_wake: Arc::new(Notify::new()),
            presence_passes: Arc::new(watch::Sender::new(0)),
        }
    }

    pub(crate) fn room_channel(&self, room: &str) -> Arc<str> {
        let durable = self.durable_room_channel(room);
        if self.routes.read().durable.contains_key(&durable) {
            return durable;
        }
        Arc::from(format!("{}ws:{room}", self.config.channel_prefix))
    }

    /// The channel of a durable room: the braces are a cluster hash tag, so the channel,
    /// the stream and its meta hash share one slot.
    pub(crate) fn durable_room_channel(&self, room: &str) -> Arc<str> {
        Arc::from(format!("{}{{dws:{room}}}", self.config.channel_prefix))
    }

    pub(crate) fn durable_sse_channel(&self, name: &str) -> Arc<str> {
        Arc::from(format!("{}{{dsse:{name}}}", self.config.channel_prefix))
    }

    /// The durable stream of room `room`, if it was declared durable.
    pub(crate) fn durable_room(&self, room: &str) -> Option<Arc<DurableChannel>> {
        self.durable(&self.durable_room_channel(room))
    }

    /// The durable stream of `channel`, if it is one.
    pub(crate) fn durable(&self, channel: &str) -> Option<Arc<DurableChannel>> {
        self.routes.read().durable.get(channel).cloned()
    }

    /// Declares a durable channel (idempotent); the link subscribes it.
    pub(crate) fn add_durable(&self, d: DurableChannel) -> Arc<DurableChannel> {
        let mut routes = self.routes.write();
        if let Some(existing) = routes.durable.get(&d.channel) {
            return existing.clone();
        }
        let d = Arc::new(d);
        routes.durable.insert(d.channel.clone(), d.clone());
        self.changed(&mut routes);
        d
    }

    /// Queues a message for a durable stream; it is delivered here when it comes back
    /// numbered (in the stream's order, like on every other node).
    pub(crate) fn publish_durable(
        &self,
        d: &Arc<DurableChannel>,
        tag: Option<&str>,
        payload: &[u8],
    ) {
        if self
            .outbox
            .push_to(
                &d.channel,
                d.kind,
                &self.node_id,
                self.epoch,
                tag,
                payload,
                Some(d.clone()),
            )
            .is_err()
        {
            Counters::bump(&self.counters.publish_dropped);
        }
    }

    /// Applies an order step: delivers (under the order's lock, so deliveries never
    /// interleave), counts, and starts a stream read for a hole.
    pub(crate) fn apply(self: &Arc<Self>, d: &Arc<DurableChannel>, order: &mut Order, step: Step) {
        if step.reset {
            self.counters.emit(RedisEvent::StreamReset {
                channel: d.channel.to_string(),
            });
        }
        if step.missed > 0 {
            Counters::bump(&self.counters.gaps);
            self.counters
                .messages_missed
                .fetch_add(step.missed, Ordering::Relaxed);
            self.counters.emit(RedisEvent::Gap {
                channel: d.channel.to_string(),
                origin: d.stream_key.clone(),
                missed: step.missed,
            });
        }
        for (n, env) in step.deliver {
            let offset = Offset {
                epoch: env.epoch,
                offset: n,
            };
            self.deliver_durable(d, offset, env);
        }
        if let Some(after) = step.fetch_after
            && !order.fetching
        {
            order.fetching = true;
            crate::stream::spawn_fetch(self.clone(), d.clone(), after);
        }
    }

    fn deliver_durable(&self, d: &DurableChannel, offset: Offset, env: Envelope) {
        let routed = match env.kind {
            Kind::Room => {
                let frame = room_frame(&d.name, offset, &env.payload);
                let routes = self.routes.read();
                match routes.rooms.get(&d.channel) {
                    Some(rooms) => {
                        for room in rooms {
                            room.deliver_local(&frame, env.tag.as_deref());
                        }
                        true
                    }
                    None => false,
                }
            }
            Kind::Sse => {
                let broadcaster = self
                    .routes
                    .read()
                    .sse
                    .get(&d.channel)
                    .and_then(Weak::upgrade);
                match (broadcaster, sse_event(offset, &env.payload)) {
                    (Some(b), Some(event)) => {
                        b.deliver_local(&event);
                        true
                    }
                    (Some(_), None) => {
                        Counters::bump(&self.counters.malformed);
                        return;
                    }
                    (None, _) => false,
                }
            }
            Kind::Direct | Kind::CloseUser => false,
        };
        if routed {
            Counters::bump(&self.counters.delivered);
        }
    }

    pub(crate) fn node_channel(&self, node: &str) -> Arc<str> {
        Arc::from(format!("{}node:{node}", self.config.channel_prefix))
    }

    pub(crate) fn sse_channel(&self, name: &str) -> Arc<str> {
        Arc::from(format!("{}sse:{name}", self.config.channel_prefix))
    }

    /// The publish command of the mode.
    pub(crate) fn publish_command(&self) -> &'static str {
        match self.config.mode {
            PubSubMode::Sharded => "SPUBLISH",
            PubSubMode::Classic => "PUBLISH",
        }
    }

    /// Numbers and queues a message for Redis; never waits. A full outbox drops it for
    /// Redis (the caller delivered it locally already).
    pub(crate) fn publish(
        &self,
        channel: &Arc<str>,
        kind: Kind,
        tag: Option<&str>,
        payload: &[u8],
    ) {
        if self
            .outbox
            .push(channel, kind, &self.node_id, self.epoch, tag, payload)
            .is_err()
        {
            Counters::bump(&self.counters.publish_dropped);
        }
    }

    fn changed(&self, routes: &mut Routes) {
        routes.generation += 1;
        self.wake.notify_one();
    }

    /// Keeps `room` in the routes while it has local members.
    pub(crate) fn room_occupancy(&self, room: &WebSocketRoom) {
        let channel = self.room_channel(room.name());
        let mut routes = self.routes.write();
        let occupied = !room.is_empty();
        let before = routes.rooms.contains_key(&channel);
        let list = routes.rooms.entry(channel.clone()).or_default();
        let at = list.iter().position(|r| r.same_room(room));
        match (occupied, at) {
            (true, None) => list.push(room.clone()),
            (false, Some(i)) => {
                list.swap_remove(i);
            }
            _ => {}
        }
        if list.is_empty() {
            routes.rooms.remove(&channel);
        }
        if before != routes.rooms.contains_key(&channel) {
            self.changed(&mut routes);
        }
    }

    pub(crate) fn add_hub(&self, hub: &Hub) {
        let channel = self.node_channel(hub.node_id());
        let mut routes = self.routes.write();
        if routes.hubs.insert(channel, hub.clone()).is_none() {
            self.changed(&mut routes);
        }
    }

    /// The local hub whose connection ids start with `node`.
    pub(crate) fn local_hub(&self, node: &str) -> Option<Hub> {
        let routes = self.routes.read();
        routes.hubs.values().find(|h| h.node_id() == node).cloned()
    }

    /// The cluster-wide channel of user-wide commands (logout).
    pub(crate) fn users_channel(&self) -> Arc<str> {
        Arc::from(format!("{}users", self.config.channel_prefix))
    }

    /// Subscribes to the users channel; `close` runs for every logout from another node.
    pub(crate) fn set_close_user(&self, close: CloseUser) {
        let channel = self.users_channel();
        let mut routes = self.routes.write();
        let new = routes.users.is_none();
        routes.users = Some((channel, close));
        if new {
            self.changed(&mut routes);
        }
    }

    /// What closes a user's connections here, if set.
    pub(crate) fn close_user_handler(&self) -> Option<CloseUser> {
        self.routes.read().users.as_ref().map(|(_, c)| c.clone())
    }

    pub(crate) fn add_sse(&self, channel: Arc<str>, broadcaster: Weak<SseBroadcaster>) {
        let mut routes = self.routes.write();
        routes.sse.insert(channel, broadcaster);
        self.changed(&mut routes);
    }

    pub(crate) fn remove_sse(&self, channel: &str) -> bool {
        let mut routes = self.routes.write();
        let removed = routes.sse.remove(channel).is_some();
        if removed {
            self.changed(&mut routes);
        }
        removed
    }

    /// The server confirmed or announced an unsubscription from `channel`. If the node still
    /// wants it (a resharding moved its slot to another shard), the link subscribes again.
    pub(crate) fn lost_subscription(&self, channel: &str) {
        let wanted = {
            let routes = self.routes.read();
            routes.rooms.contains_key(channel)
                || routes.hubs.contains_key(channel)
                || routes.sse.contains_key(channel)
                || routes.durable.contains_key(channel)
                || routes.users.as_ref().is_some_and(|(c, _)| &**c == channel)
        };
        if wanted {
            self.lost.lock().push(Arc::from(channel));
            self.wake.notify_one();
        }
    }

    /// The node's counters now.
    pub(crate) fn stats(&self) -> crate::RedisStats {
        self.counters.snapshot(
            self.outbox.len(),
            self.outbox.sequence_channels(),
            self.tracker.lock().origins(),
        )
    }

    /// The channels lost since the last call.
    pub(crate) fn take_lost(&self) -> Vec<Arc<str>> {
        std::mem::take(&mut *self.lost.lock())
    }

    /// A channel was unsubscribed: its sequence history no longer matters.
    pub(crate) fn forget(&self, channel: &str) {
        self.tracker.lock().forget(channel);
    }

    /// A message arrived from Redis on `channel`. Runs on the connection's reader: never
    /// waits (every delivery is a short lock and a queue push).
    pub(crate) fn on_message(self: &Arc<Self>, channel: &[u8], payload: Bytes) {
        let Ok(channel) = std::str::from_utf8(channel) else {
            Counters::bump(&self.counters.malformed);
            return;
        };
        let env = match envelope::decode(payload) {
            Ok(env) => env,
            Err(_) => {
                Counters::bump(&self.counters.malformed);
                return;
            }
        };
        if let Some(d) = self.durable(channel) {
            // Every node, the origin too, delivers a durable stream in its offset order.
            Counters::bump(&self.counters.received);
            let mut order = d.order.lock();
            let step = order.offer(env);
            self.apply(&d, &mut order, step);
            return;
        }
        if env.origin == self.node_id && env.epoch >> 32 == self.epoch >> 32 {
            Counters::bump(&self.counters.own_ignored);
            return;
        }
        Counters::bump(&self.counters.received);
        let verdict = self.tracker.lock().check(
            channel,
            &env.origin,
            env.epoch,
            env.seq,
            std::time::Instant::now(),
        );
        match verdict {
            Verdict::Deliver => {}
            Verdict::Duplicate => {
                Counters::bump(&self.counters.duplicates_dropped);
                return;
            }
            Verdict::Gap { missed } => {
                Counters::bump(&self.counters.gaps);
                self.counters
                    .messages_missed
                    .fetch_add(missed, Ordering::Relaxed);
                self.counters.emit(RedisEvent::Gap {
                    channel: channel.to_owned(),
                    origin: env.origin.clone(),
                    missed,
                });
            }
        }
        let routed = match env.kind {
            Kind::Room => {
                let routes = self.routes.read();
                match routes.rooms.get(channel) {
                    Some(rooms) => {
                        for room in rooms {
                            room.deliver_local(&env.payload, env.tag.as_deref());
                        }
                        true
                    }
                    None => false,
                }
            }
            Kind::Direct => {
                let target = env.tag.as_deref().unwrap_or_default();
                let hub = self.routes.read().hubs.get(channel).cloned();
                match hub.and_then(|hub| hub.connection(target)) {
                    // A full queue or a closing peer: its back-pressure policy applies.
                    Some(connection) => {
                        let _ = connection.send_frame(env.payload);
                        true
                    }
                    None => false,
                }
            }
            Kind::CloseUser => match self.close_user_handler() {
                Some(close) => {
                    let user = env.tag.as_deref().unwrap_or_default();
                    let reason = std::str::from_utf8(&env.payload).unwrap_or_default();
                    (close.0)(user, reason);
                    true
                }
                None => false,
            },
            Kind::Sse => {
                let broadcaster = self.routes.read().sse.get(channel).and_then(Weak::upgrade);
                match (broadcaster, EncodedEvent::from_parts(env.tag, env.payload)) {
                    (Some(b), Ok(event)) => {
                        b.deliver_local(&event);
                        true
                    }
                    (Some(_), Err(_)) => {
                        Counters::bump(&self.counters.malformed);
                        return;
                    }
                    (None, _) => false,
                }
            }
        };
        if routed {
            Counters::bump(&self.counters.delivered);
        } else {
            Counters::bump(&self.counters.unroutable);
        }
    }
}

/// A durable room message as a member gets it: a text frame `@offset <offset> <room>`, then
/// the broadcast frame, in one buffer (so nothing can come between them).
pub(crate) fn room_frame(room: &str, offset: Offset, frame: &[u8]) -> Bytes {
    let marker = armature_ws_core::encode_message(&armature_ws::WebSocketMessage::text(format!(
        "@offset {offset} {room}"
    )));
    let mut out = bytes::BytesMut::with_capacity(marker.len() + frame.len());
    out.extend_from_slice(&marker);
    out.extend_from_slice(frame);
    out.freeze()
}

/// A durable SSE event with its stream offset as its id (any id line it had replaced).
pub(crate) fn sse_event(offset: Offset, bytes: &[u8]) -> Option<EncodedEvent> {
    let text = std::str::from_utf8(bytes).ok()?;
    let id = offset.to_string();
    let mut out = String::with_capacity(text.len() + id.len() + 5);
    out.push_str("id: ");
    out.push_str(&id);
    out.push('\n');
    for line in text.split_inclusive('\n') {
        if line == "id\n" || line.starts_with("id:") {
            continue;
        }
        out.push_str(line);
    }
    EncodedEvent::from_parts(Some(id), Bytes::from(out)).ok()
}
