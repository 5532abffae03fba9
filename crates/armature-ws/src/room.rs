//! [`WebSocketRoom`]: a named set of connections that broadcasts reach together, and
//! [`BroadcastTransport`], the seam every room broadcast goes through.
//!
//! A room knows the layers under it (connection handles, their queues) and nothing above
//! it: the transport is a trait declared here and implemented above (see
//! [`LocalTransport`](crate::LocalTransport) and the Redis adapter); the manager hears
//! that a room emptied through [`RoomRegistry`], which it implements.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use armature_ws_core::{Utf8Bytes, WebSocketMessage, encode_message, encode_text};
use bytes::Bytes;
use parking_lot::RwLock;
use serde::Serialize;

use crate::burst::{self, Deliver, Run};
use crate::compress::FrameCache;
use crate::connection::WebSocketConnection;
use crate::queue::{Membership, Shared};
use crate::{Error, Result};

/// Carries a room broadcast to the room's members, wherever they are connected.
///
/// Every [`WebSocketRoom::broadcast`] (and its `_text`, `_json`, `_except` variants) encodes
/// its message once into a frame and hands it to the room's transport. The default,
/// [`LocalTransport`](crate::LocalTransport), delivers it to the members connected to this
/// process at once. A multi-process adapter would publish `(room.name(), frame, except)` to
/// its bus and, on every process (this one included), call [`WebSocketRoom::deliver_local`]
/// on the room of that name when the message arrives.
///
/// `publish` is synchronous on purpose: a broadcast never waits. An adapter with a network
/// behind it hands the frame to its own bounded outbox and returns.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use armature_ws::{BroadcastTransport, WebSocketManager, WebSocketRoom};
/// use bytes::Bytes;
///
/// /// Counts broadcasts, then delivers locally.
/// #[derive(Debug, Default)]
/// struct Counting(AtomicUsize);
///
/// impl BroadcastTransport for Counting {
///     fn publish(&self, room: &WebSocketRoom, frame: Bytes, except: Option<&str>)
///         -> Result<(), armature_ws::Error>
///     {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         room.deliver_local(&frame, except);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), armature_ws::Error> {
/// let transport = Arc::new(Counting::default());
/// let manager = WebSocketManager::new().with_transport(transport.clone());
/// let room = manager.get_or_create_room("lobby").await;
/// room.broadcast_text("hi".to_string()).await?;
/// assert_eq!(transport.0.load(Ordering::Relaxed), 1);
/// # Ok(()) }
/// ```
pub trait BroadcastTransport: Send + Sync + fmt::Debug + 'static {
    /// Delivers an encoded frame to every member of `room` except the connection with id
    /// `except`.
    fn publish(&self, room: &WebSocketRoom, frame: Bytes, except: Option<&str>) -> Result<()>;

    /// Called after `room` gained its first member connected to this process, or lost its
    /// last one, outside the room's lock. A multi-process adapter subscribes to the room's
    /// traffic when it is occupied and unsubscribes when it is empty. Calls for one room can
    /// race (a join and a leave on two threads), so read the current state with
    /// [`WebSocketRoom::is_empty`] rather than trusting the order of the calls. The default
    /// does nothing.
    fn room_occupancy_changed(&self, room: &WebSocketRoom) {
        let _ = room;
    }

    /// Called by [`WebSocketRoom::add_connection`] after a member joined (and after
    /// [`room_occupancy_changed`](Self::room_occupancy_changed) when it was the first): a
    /// future that completes once messages published elsewhere from now on reach the
    /// member, e.g. once a multi-process adapter's subscription to the room is confirmed.
    /// `add_connection` awaits it and returns its error (the member stays joined).
    /// [`WebSocketRoom::join`] (no `.await`) does not. The default, `None`, means ready at
    /// once.
    fn member_ready(&self, room: &WebSocketRoom) -> Option<MemberReady> {
        let _ = room;
        None
    }
}

/// What [`BroadcastTransport::member_ready`] returns: a boxed future a join awaits.
pub type MemberReady = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// Who keeps rooms by name (the manager) and must hear when one empties or fills again.
pub(crate) trait RoomRegistry: Send + Sync {
    /// The last member of `room` left (a disconnect or [`WebSocketRoom::leave`]).
    fn room_emptied(&self, room: &WebSocketRoom);
    /// `room` got its first member (again).
    fn room_occupied(&self, room: &WebSocketRoom);
}

/// A named group of connections. A broadcast encodes its message once; every member's queue
/// gets a reference-counted copy of the same frame. A broadcast never waits for a member and
/// holds no lock across an `.await` (its `async` signature is the guide's; it completes
/// without suspending).
///
/// A connection can be in many rooms, and leaves all of them when it ends. A full queue or
/// a gone member does not fail the broadcast: the member's back-pressure policy applies and
/// the others still get the message.
///
/// The guide's unit test, with its intent made real (both connections are added):
///
/// ```
/// use armature_ws::{WebSocketConnection, WebSocketMessage, WebSocketRoom};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let room = WebSocketRoom::new("test".to_string());
/// let (conn1, mut rx1) = WebSocketConnection::new("1".to_string());
/// let (conn2, mut rx2) = WebSocketConnection::new("2".to_string());
/// room.add_connection("1".to_string(), conn1).await.unwrap();
/// room.add_connection("2".to_string(), conn2).await.unwrap();
///
/// room.broadcast_text("Hello".to_string()).await.unwrap();
///
/// assert_eq!(rx1.recv().await, Some(WebSocketMessage::text("Hello")));
/// assert_eq!(rx2.recv().await, Some(WebSocketMessage::text("Hello")));
/// assert_eq!(room.connection_count().await, 2);
/// # }
/// ```
pub struct WebSocketRoom {
    pub(crate) inner: Arc<RoomInner>,
}

/// The room's state, shared with the memberships recorded on its connections.
pub(crate) struct RoomInner {
    name: String,
    members: RwLock<HashMap<Arc<str>, WebSocketConnection>>,
    limit: Option<usize>,
    /// `None`: deliver to the local members at once.
    transport: Option<Arc<dyn BroadcastTransport>>,
    registry: Option<Weak<dyn RoomRegistry>>,
}

impl fmt::Debug for RoomInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketRoom")
            .field("name", &self.name)
            .field("members", &self.members.read().len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl fmt::Debug for WebSocketRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// What one local delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Members whose queue took the frame.
    pub queued: usize,
    /// Members that did not take it (queue full, or closing).
    pub refused: usize,
}

/// Cloning gives another handle to the same room (a reference-count bump), e.g. for a
/// [`BroadcastTransport`] that keeps the rooms it delivers to.
impl Clone for WebSocketRoom {
    fn clone(&self) -> Self {
        WebSocketRoom {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl WebSocketRoom {
    /// True when both handles are the same room (not merely rooms of the same name).
    pub fn same_room(&self, other: &WebSocketRoom) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// An empty room with no member limit, delivering to its members in this process
    /// (like [`LocalTransport`](crate::LocalTransport)).
    pub fn new(name: String) -> Self {
        Self::build(name, None, None, None)
    }

    /// An empty room that refuses members past `max` with the guide's "Room full" error
    /// ([`Error::room_full`]).
    pub fn with_limit(name: String, max: usize) -> Self {
        Self::build(name, Some(max), None, None)
    }

    pub(crate) fn build(
        name: String,
        limit: Option<usize>,
        transport: Option<Arc<dyn BroadcastTransport>>,
        registry: Option<Weak<dyn RoomRegistry>>,
    ) -> Self {
        WebSocketRoom {
            inner: Arc::new(RoomInner {
                name,
                members: RwLock::new(HashMap::new()),
                limit,
                transport,
                registry,
            }),
        }
    }

    fn publish(&self, frame: Bytes, except: Option<&str>) -> Result<()> {
        match &self.inner.transport {
            Some(transport) => transport.publish(self, frame, except),
            None => {
                self.deliver_local_coalesced(&frame, except);
                Ok(())
            }
        }
    }

    fn occupancy_changed(&self) {
        if let Some(transport) = &self.inner.transport {
            transport.room_occupancy_changed(self);
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a connection under `id` (normally `connection.id()`). Adding an id again
    /// replaces the earlier handle; adding the same connection twice changes nothing (the
    /// room and the connection record it once). Fails with [`Error::room_full`] past the room's limit
    /// and with [`Error::Closed`] when the connection is already gone.
    ///
    /// With a multi-process transport (e.g. Redis), it returns once messages published on
    /// any process from then on reach the member (see
    /// [`BroadcastTransport::member_ready`]), or with the transport's error if that is not
    /// confirmed in time (the member stays joined).
    pub async fn add_connection(
        &self,
        id: impl Into<String>,
        connection: WebSocketConnection,
    ) -> Result<()> {
        self.join(id.into(), connection)?;
        if let Some(ready) = self
            .inner
            .transport
            .as_ref()
            .and_then(|transport| transport.member_ready(self))
        {
            ready.await?;
        }
        Ok(())
    }

    /// [`WebSocketRoom::add_connection`] without an `.await`: the member is in the room
    /// when this returns, but with a multi-process transport messages published on other
    /// processes may reach it only a moment later (once the transport's subscription is
    /// confirmed); use `add_connection(..).await` where that matters.
    pub fn join(&self, id: String, connection: WebSocketConnection) -> Result<()> {
        // What this thread's handler broadcast before the join does not reach the newcomer.
        burst::release();
        // The usual key is the connection's own id: share its allocation.
        let key: Arc<str> = if *connection.shared.id == *id {
            connection.shared.id.clone()
        } else {
            Arc::from(id)
        };
        let was_empty = {
            let mut members = self.inner.members.write();
            if let Some(limit) = self.inner.limit {
                if members.len() >= limit && !members.contains_key(&key) {
                    return Err(Error::room_full());
                }
            }
            let was_empty = members.is_empty();
            members.insert(key.clone(), connection.clone());
            was_empty
        };
        if was_empty {
            self.occupancy_changed();
            if let Some(registry) = self.inner.registry.as_ref().and_then(Weak::upgrade) {
                registry.room_occupied(self);
            }
        }
        let weak: Weak<RoomInner> = Arc::downgrade(&self.inner);
        if connection.shared.joined(weak, key.clone()) {
            Ok(())
        } else {
            self.inner.remove_member(&key, &connection.shared);
            Err(Error::Closed)
        }
    }

    /// Removes the connection with this id; returns its handle if it was a member.
    pub async fn remove_connection(&self, id: &str) -> Option<WebSocketConnection> {
        self.leave(id)
    }

    /// [`WebSocketRoom::remove_connection`] without an `.await`.
    pub fn leave(&self, id: &str) -> Option<WebSocketConnection> {
        // What this thread's handler broadcast before the leave still reaches the member.
        burst::release();
        let (removed, now_empty) = {
            let mut members = self.inner.members.write();
            let removed = members.remove(id);
            let now_empty = removed.is_some() && members.is_empty();
            (removed, now_empty)
        };
        if let Some(connection) = &removed {
            connection
                .shared
                .left(Arc::as_ptr(&self.inner) as *const ());
        }
        if now_empty {
            self.occupancy_changed();
            self.inner.emptied(self);
        }
        removed
    }

    /// Sends a message to every member.
    ///
    /// The message is encoded and queued to every member when this is called; the future
    /// it returns is ready at once and holds neither the room nor the message, so a
    /// handler that awaits it between reads stays small (every idle connection carries its
    /// handler's future). The same holds for the other `broadcast*` methods and
    /// [`WebSocketRoom::send_to`].
    pub fn broadcast(
        &self,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        std::future::ready(self.broadcast_frame(encode_message(&message)))
    }

    /// Sends a text message to every member (queued when called, see
    /// [`WebSocketRoom::broadcast`]).
    pub fn broadcast_text(
        &self,
        text: impl Into<Utf8Bytes>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let text: Utf8Bytes = text.into();
        std::future::ready(self.broadcast_frame(encode_text(&text)))
    }

    /// Serialises `value` to JSON once and sends it as text to every member (queued when
    /// called, see [`WebSocketRoom::broadcast`]).
    pub fn broadcast_json<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let sent = serde_json::to_string(value)
            .map_err(Error::from)
            .and_then(|json| self.broadcast_frame(encode_text(&json)));
        std::future::ready(sent)
    }

    /// Sends a message to every member but the connection `except_id` (typically the
    /// sender); queued when called, see [`WebSocketRoom::broadcast`].
    pub fn broadcast_except(
        &self,
        except_id: &str,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        std::future::ready(self.publish(encode_message(&message), Some(except_id)))
    }

    /// Sends an already encoded frame to every member, through the room's transport.
    pub fn broadcast_frame(&self, frame: Bytes) -> Result<()> {
        self.publish(frame, None)
    }

    /// Sends a message to the member with this id only; [`Error::Closed`] when there is no
    /// such member. Queued when called, see [`WebSocketRoom::broadcast`].
    pub fn send_to(
        &self,
        id: &str,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let connection = self.inner.members.read().get(id).cloned();
        std::future::ready(match connection {
            Some(connection) => connection.try_send(message),
            None => Err(Error::Closed),
        })
    }

    /// The handle of the member with this id, if any (to send to it, or close it, later).
    pub fn connection(&self, id: &str) -> Option<WebSocketConnection> {
        self.inner.members.read().get(id).cloned()
    }

    /// Queues `frame` for the members connected to this process (what a
    /// [`BroadcastTransport`] calls). Never waits; a member that does not take the frame is
    /// counted in [`Delivery::refused`] and handled by its back-pressure policy.
    pub fn deliver_local(&self, frame: &Bytes, except: Option<&str>) -> Delivery {
        // Held broadcasts first (and not under the members' lock: delivering them takes it).
        burst::release();
        let mut delivery = Delivery::default();
        // One encoding per kind of member: the plain frame, one compressed frame per
        // (window, level) of the shared-mode members; dedicated members compress their own.
        let mut encodings = FrameCache::new(frame);
        let members = self.inner.members.read();
        for_each_member(&members, except, |shared| {
            match shared.push_broadcast(&mut encodings) {
                Ok(()) => delivery.queued += 1,
                Err(_) => delivery.refused += 1,
            }
        });
        delivery
    }

    /// [`deliver_local`](Self::deliver_local) for a broadcast made now, coalesced with the
    /// others of a burst: what [`LocalTransport`](crate::LocalTransport) (and a
    /// multi-process transport, for its own process) calls.
    ///
    /// Inside a connection's handler — while the connection task polls it — the frame is
    /// held with the other broadcasts of that poll and delivered when the poll ends, or
    /// earlier, before anything else is queued to or closed on a connection on this thread
    /// (a `send`, another `deliver_local`, a join or leave). Each member then takes the
    /// frames broadcast one after another to this room as one run: one queue entry, one
    /// lock and one wake for the whole burst, and usually one write. Elsewhere (a task of
    /// its own, a test) it is `deliver_local`. Either way, every member gets every frame
    /// once, in the order they were broadcast, and what one task broadcasts and then sends
    /// reaches each connection in that order; a member's back-pressure policy sees each
    /// frame of a run that does not fit its queue.
    pub fn deliver_local_coalesced(&self, frame: &Bytes, except: Option<&str>) {
        if !burst::hold(&self.inner, frame, except) {
            self.deliver_local(frame, except);
        }
    }

    /// The number of members.
    pub async fn connection_count(&self) -> usize {
        self.len()
    }

    /// The number of members, without an `.await`.
    pub fn len(&self) -> usize {
        self.inner.members.read().len()
    }

    /// True when the room has no member.
    pub fn is_empty(&self) -> bool {
        self.inner.members.read().is_empty()
    }

    /// True when a member has this id.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.members.read().contains_key(id)
    }

    /// The ids of the members.
    pub fn connection_ids(&self) -> Vec<String> {
        self.inner
            .members
            .read()
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// The member limit, if any.
    pub fn limit(&self) -> Option<usize> {
        self.inner.limit
    }
}

impl Deliver for RoomInner {
    fn deliver_run(&self, run: &Run) {
        let frames = run.frames();
        let joined = run.joined();
        // Per-frame encodings, made only if a member needs them (compression, or a run
        // that does not fit its queue whole).
        let mut caches: Option<Vec<FrameCache<'_>>> = None;
        let members = self.members.read();
        for_each_member(&members, run.except(), |shared| {
            if !shared.push_run(&joined) {
                let caches =
                    caches.get_or_insert_with(|| frames.iter().map(FrameCache::new).collect());
                for cache in caches.iter_mut() {
                    let _ = shared.push_broadcast(cache);
                }
            }
        });
    }
}

/// Members whose state a broadcast loads at once, before pushing to them one by one.
const PREFETCH_BATCH: usize = 32;

/// Calls `push` with the state of every member but `except`, in the map's order. Each push
/// takes the member's lock, which waits for every load before it, so pushing member after
/// member would wait for each member's cache misses in turn; instead the state of the next
/// [`PREFETCH_BATCH`] members is read first (independent loads whose misses overlap), then
/// pushed to from the cache.
fn for_each_member(
    members: &HashMap<Arc<str>, WebSocketConnection>,
    except: Option<&str>,
    mut push: impl FnMut(&Arc<Shared>),
) {
    let mut ahead = members.values();
    let mut loaded = 0;
    for (id, connection) in members {
        if loaded == 0 {
            for next in ahead.by_ref().take(PREFETCH_BATCH) {
                next.shared.prefetch();
                loaded += 1;
            }
        }
        loaded -= 1;
        if except == Some(&**id) {
            continue;
        }
        push(&connection.shared);
    }
}

impl RoomInner {
    /// Removes `key` if it still maps to this connection (a disconnect); tells the
    /// transport and the registry when that emptied the room.
    fn remove_member(self: &Arc<Self>, key: &str, shared: &Arc<Shared>) {
        let now_empty = {
            let mut members = self.members.write();
            match members.get(key) {
                Some(connection) if Arc::ptr_eq(&connection.shared, shared) => {
                    members.remove(key);
                    members.is_empty()
                }
                _ => false,
            }
        };
        if now_empty {
            let room = WebSocketRoom {
                inner: Arc::clone(self),
            };
            room.occupancy_changed();
            self.emptied(&room);
        }
    }

    fn emptied(&self, room: &WebSocketRoom) {
        if let Some(registry) = self.registry.as_ref().and_then(Weak::upgrade) {
            registry.room_emptied(room);
        }
    }
}

impl Membership for RoomInner {
    fn connection_ended(self: Arc<Self>, key: &str, shared: &Arc<Shared>) {
        self.remove_member(key, shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backpressure, WebSocketConfig};
    use crate::connection::WebSocketReceiver;
    use futures_util::FutureExt;

    fn member(room: &WebSocketRoom, id: &str, config: &WebSocketConfig) -> WebSocketReceiver {
        let (connection, receiver) = WebSocketConnection::with_config(id.to_owned(), config);
        room.join(id.to_owned(), connection).unwrap();
        receiver
    }

    fn broadcast_ten(room: &WebSocketRoom) {
        for i in 0..10 {
            room.broadcast_text(format!("m{i}"))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
    }

    fn drain(receiver: &mut WebSocketReceiver) -> Vec<Bytes> {
        std::iter::from_fn(|| receiver.try_recv_frame()).collect()
    }

    /// A future wrapped in `coalesced` queues the burst of one poll as one entry per
    /// member; unwrapped, one entry per broadcast. Both yield the same frames in order.
    #[test]
    fn a_coalesced_burst_is_one_queue_entry() {
        for wrapped in [false, true] {
            let room = WebSocketRoom::new("r".to_owned());
            let (connection, mut receiver) = WebSocketConnection::new("a".to_owned());
            let shared = connection.shared.clone();
            room.join("a".to_owned(), connection).unwrap();
            let burst = async {
                for i in 0..5 {
                    room.broadcast_text(format!("m{i}")).await.unwrap();
                }
            };
            if wrapped {
                crate::coalesced(burst).now_or_never().unwrap();
            } else {
                burst.now_or_never().unwrap();
            }
            assert_eq!(shared.queued_entries(), if wrapped { 1 } else { 5 });
            let frames = drain(&mut receiver);
            let expected: Vec<Bytes> = (0..5)
                .map(|i| armature_ws_core::encode_text(&format!("m{i}")))
                .collect();
            assert_eq!(frames, expected);
        }
    }

    /// A held run is one queue entry; the in-process receiver still yields one frame at a
    /// time, and a member whose queue cannot take the whole run meets its policy frame by
    /// frame, exactly as without holding.
    #[test]
    fn held_runs_split_into_frames_and_meet_the_policy_frame_by_frame() {
        let roomy = WebSocketConfig::default();
        // Each frame is 4 bytes ("m0": header 2, payload 2): 3 fit.
        let small = WebSocketConfig::default()
            .max_queue_bytes(12)
            .backpressure(Backpressure::DropNewest);
        let closing = WebSocketConfig::default()
            .max_queue_bytes(12)
            .backpressure(Backpressure::Close);

        let mut outcomes = Vec::new();
        for held in [false, true] {
            let room = WebSocketRoom::new("r".to_owned());
            let mut a = member(&room, "a", &roomy);
            let mut b = member(&room, "b", &small);
            let mut c = member(&room, "c", &closing);
            if held {
                crate::burst::holding(|| broadcast_ten(&room));
            } else {
                broadcast_ten(&room);
            }
            let all = drain(&mut a);
            assert_eq!(all.len(), 10);
            for (i, frame) in all.iter().enumerate() {
                assert_eq!(*frame, armature_ws_core::encode_text(&format!("m{i}")));
            }
            outcomes.push((drain(&mut b), drain(&mut c)));
        }
        assert_eq!(
            outcomes[0], outcomes[1],
            "the same with and without holding"
        );
        let (dropping, closed) = &outcomes[1];
        assert_eq!(dropping.len(), 3, "the first three, the rest dropped");
        assert_eq!(
            closed.len(),
            1,
            "only the close frame: the slow member was closed"
        );
        assert_eq!(closed[0][1] as usize, 2 + "send queue full".len());
    }
}
