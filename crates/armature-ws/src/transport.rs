//! The one seam every room broadcast goes through, so that broadcasts can later travel
//! between server processes (e.g. over Redis pub/sub) without a change to user code.

use std::fmt;

use bytes::Bytes;

use crate::Result;
use crate::room::WebSocketRoom;

/// Carries a room broadcast to the room's members, wherever they are connected.
///
/// Every [`WebSocketRoom::broadcast`] (and its `_text`, `_json`, `_except` variants) encodes
/// its message once into a frame and hands it to the room's transport. The default,
/// [`LocalTransport`], delivers it to the members connected to this process at once. A
/// multi-process adapter would publish `(room.name(), frame, except)` to its bus and, on
/// every process (this one included), call [`WebSocketRoom::deliver_local`] on the room of
/// that name when the message arrives.
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
}

/// The in-process transport: delivers to the members connected to this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalTransport;

impl BroadcastTransport for LocalTransport {
    fn publish(&self, room: &WebSocketRoom, frame: Bytes, except: Option<&str>) -> Result<()> {
        room.deliver_local(&frame, except);
        Ok(())
    }
}
