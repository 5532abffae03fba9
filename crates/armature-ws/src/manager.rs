//! [`WebSocketManager`]: rooms by name.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use crate::room::{BroadcastTransport, RoomRegistry, WebSocketRoom};
use crate::transport::LocalTransport;

/// Rooms by name, created on first use.
///
/// ```
/// use armature_ws::WebSocketManager;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let manager = WebSocketManager::new();
/// let room = manager.get_or_create_room("lobby").await;
/// assert!(manager.get_room("lobby").await.is_some());
/// manager.remove_room("lobby").await;
/// assert!(manager.get_room("lobby").await.is_none());
/// # drop(room); }
/// ```
///
/// Every room it creates shares the manager's [`BroadcastTransport`] (by default
/// [`LocalTransport`]) and member limit.
///
/// Rooms are often named after network input (the guide's chat names them after a path
/// parameter), so by default a room is removed from the manager when its last member
/// leaves (disconnects or [`WebSocketRoom::leave`]s); rooms then cost nothing once unused,
/// whatever names clients make up. Someone still holding the room's `Arc` can use it;
/// the first member joining it again puts it back under its name if that name is free.
/// [`keep_empty_rooms`](WebSocketManager::keep_empty_rooms) opts out (rooms then stay until
/// [`WebSocketManager::remove_room`] or [`WebSocketManager::prune_empty_rooms`]).
///
/// ```
/// use armature_ws::{WebSocketConnection, WebSocketManager};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let manager = WebSocketManager::new();
/// let room = manager.get_or_create_room("user-42").await;
/// let (conn, receiver) = WebSocketConnection::new("c1".to_string());
/// room.add_connection("c1", conn.clone()).await.unwrap();
/// room.add_connection("c1", conn).await.unwrap(); // twice: still one member
/// assert_eq!(room.connection_count().await, 1);
/// drop(receiver); // the client disconnects
/// assert!(manager.get_room("user-42").await.is_none());
///
/// let keeping = WebSocketManager::new().keep_empty_rooms(true);
/// let _ = keeping.get_or_create_room("lobby").await;
/// assert_eq!(keeping.room_count(), 1);
/// # }
/// ```
pub struct WebSocketManager {
    inner: Arc<ManagerInner>,
}

pub(crate) struct ManagerInner {
    rooms: RwLock<HashMap<String, Arc<WebSocketRoom>>>,
    transport: Arc<dyn BroadcastTransport>,
    room_limit: Option<usize>,
    remove_empty: bool,
}

impl fmt::Debug for WebSocketManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketManager")
            .field("rooms", &self.inner.rooms.read().len())
            .field("transport", &self.inner.transport)
            .field("room_limit", &self.inner.room_limit)
            .field("remove_empty", &self.inner.remove_empty)
            .finish()
    }
}

impl Default for WebSocketManager {
    fn default() -> Self {
        Self::new()
    }
}

impl WebSocketManager {
    /// A manager with no rooms, the [`LocalTransport`], no member limit, and rooms removed
    /// when their last member leaves.
    pub fn new() -> Self {
        WebSocketManager {
            inner: Arc::new(ManagerInner {
                rooms: RwLock::new(HashMap::new()),
                transport: Arc::new(LocalTransport),
                room_limit: None,
                remove_empty: true,
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut ManagerInner)) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                f(&mut inner);
                inner
            }
            Err(shared) => {
                let mut inner = ManagerInner {
                    rooms: RwLock::new(shared.rooms.read().clone()),
                    transport: shared.transport.clone(),
                    room_limit: shared.room_limit,
                    remove_empty: shared.remove_empty,
                };
                f(&mut inner);
                inner
            }
        };
        WebSocketManager {
            inner: Arc::new(inner),
        }
    }

    /// Broadcasts of rooms created from now on go through `transport` (default:
    /// [`LocalTransport`]). Set it before creating rooms.
    pub fn with_transport(self, transport: Arc<dyn BroadcastTransport>) -> Self {
        self.rebuild(|inner| inner.transport = transport)
    }

    /// Rooms created from now on refuse members past `max` with the guide's "Room full"
    /// error. Default: no limit.
    pub fn room_limit(self, max: usize) -> Self {
        self.rebuild(|inner| inner.room_limit = Some(max))
    }

    /// Remove a room from the manager when its last member leaves. Default: true.
    pub fn remove_empty_rooms(self, remove: bool) -> Self {
        self.rebuild(|inner| inner.remove_empty = remove)
    }

    /// Keep rooms when their last member leaves (until [`WebSocketManager::remove_room`] or
    /// [`WebSocketManager::prune_empty_rooms`]): for a fixed set of rooms that should
    /// outlive their members. Same as `remove_empty_rooms(!keep)`. Default: false.
    pub fn keep_empty_rooms(self, keep: bool) -> Self {
        self.rebuild(|inner| inner.remove_empty = !keep)
    }

    /// The room with this name, created if it does not exist.
    pub async fn get_or_create_room(&self, name: &str) -> Arc<WebSocketRoom> {
        self.room(name)
    }

    /// [`WebSocketManager::get_or_create_room`] without an `.await`.
    pub fn room(&self, name: &str) -> Arc<WebSocketRoom> {
        if let Some(room) = self.inner.rooms.read().get(name) {
            return room.clone();
        }
        let mut rooms = self.inner.rooms.write();
        rooms
            .entry(name.to_owned())
            .or_insert_with(|| {
                let registry: Weak<ManagerInner> = Arc::downgrade(&self.inner);
                let registry: Weak<dyn RoomRegistry> = registry;
                Arc::new(WebSocketRoom::build(
                    name.to_owned(),
                    self.inner.room_limit,
                    Some(self.inner.transport.clone()),
                    Some(registry),
                ))
            })
            .clone()
    }

    /// The room with this name, if it exists.
    pub async fn get_room(&self, name: &str) -> Option<Arc<WebSocketRoom>> {
        self.inner.rooms.read().get(name).cloned()
    }

    /// Removes the room with this name and returns it. Its members stay connected.
    pub async fn remove_room(&self, name: &str) -> Option<Arc<WebSocketRoom>> {
        self.inner.rooms.write().remove(name)
    }

    /// Removes every room without members; returns how many were removed.
    pub fn prune_empty_rooms(&self) -> usize {
        let mut rooms = self.inner.rooms.write();
        let before = rooms.len();
        rooms.retain(|_, room| !room.is_empty());
        before - rooms.len()
    }

    /// The names of the rooms.
    pub fn room_names(&self) -> Vec<String> {
        self.inner.rooms.read().keys().cloned().collect()
    }

    /// The number of rooms.
    pub fn room_count(&self) -> usize {
        self.inner.rooms.read().len()
    }
}

impl RoomRegistry for ManagerInner {
    /// Removes `room` if the manager is set to, and if it is still this very room and
    /// still empty.
    fn room_emptied(&self, room: &WebSocketRoom) {
        if !self.remove_empty {
            return;
        }
        let mut rooms = self.rooms.write();
        let same = rooms
            .get(room.name())
            .is_some_and(|r| r.same_room(room) && room.is_empty());
        if same {
            rooms.remove(room.name());
        }
    }

    /// Puts `room` back under its name if it was removed and the name is free.
    fn room_occupied(&self, room: &WebSocketRoom) {
        if !self.remove_empty || self.rooms.read().contains_key(room.name()) {
            return;
        }
        self.rooms
            .write()
            .entry(room.name().to_owned())
            .or_insert_with(|| Arc::new(room.clone()));
    }
}
