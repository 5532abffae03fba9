//! [`WebSocketManager`]: rooms by name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::room::{RoomInner, WebSocketRoom};
use crate::transport::{BroadcastTransport, LocalTransport};

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
/// [`LocalTransport`]) and member limit. With
/// [`remove_empty_rooms(true)`](WebSocketManager::remove_empty_rooms), a room whose last
/// member disconnects is removed from the manager, so rooms named after short-lived things
/// do not pile up.
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
    /// A manager with no rooms, the [`LocalTransport`], no member limit, and rooms kept when
    /// they empty.
    pub fn new() -> Self {
        WebSocketManager {
            inner: Arc::new(ManagerInner {
                rooms: RwLock::new(HashMap::new()),
                transport: Arc::new(LocalTransport),
                room_limit: None,
                remove_empty: false,
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

    /// Remove a room from the manager when a disconnect takes its last member. Default:
    /// false (rooms stay until [`WebSocketManager::remove_room`] or
    /// [`WebSocketManager::prune_empty_rooms`]).
    pub fn remove_empty_rooms(self, remove: bool) -> Self {
        self.rebuild(|inner| inner.remove_empty = remove)
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
                Arc::new(WebSocketRoom::build(
                    name.to_owned(),
                    self.inner.room_limit,
                    self.inner.transport.clone(),
                    Some(Arc::downgrade(&self.inner)),
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

impl ManagerInner {
    /// A disconnect emptied `room`: remove it if the manager is set to, and if it is still
    /// this very room and still empty.
    pub(crate) fn room_emptied(&self, name: &str, room: &RoomInner) {
        if !self.remove_empty {
            return;
        }
        let mut rooms = self.rooms.write();
        let same = rooms
            .get(name)
            .is_some_and(|r| std::ptr::eq(Arc::as_ptr(&r.inner), room) && room.is_empty());
        if same {
            rooms.remove(name);
        }
    }
}
