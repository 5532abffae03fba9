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
use crate::envelope::{self, Kind};
use crate::outbox::Outbox;
use crate::sequence::{GapTracker, Verdict};
use crate::stats::{Counters, RedisEvent};

/// The channels wanted, and who gets what arrives on them.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Room channel → the local rooms of that name that have members.
    rooms: HashMap<Arc<str>, Vec<WebSocketRoom>>,
    /// Node channel → the hub whose connections it reaches.
    hubs: HashMap<Arc<str>, Hub>,
    /// SSE channel → the broadcaster.
    sse: HashMap<Arc<str>, Weak<SseBroadcaster>>,
    /// Bumped whenever the set of wanted channels changes.
    pub(crate) generation: u64,
}

impl Routes {
    /// Every channel this node wants to be subscribed to.
    pub(crate) fn wanted(&self) -> HashSet<Arc<str>> {
        self.rooms
            .keys()
            .chain(self.hubs.keys())
            .chain(self.sse.keys())
            .cloned()
            .collect()
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
}

impl Node {
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
        }
    }

    pub(crate) fn room_channel(&self, room: &str) -> Arc<str> {
        Arc::from(format!("{}ws:{room}", self.config.channel_prefix))
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
    pub(crate) fn on_message(&self, channel: &[u8], payload: Bytes) {
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
