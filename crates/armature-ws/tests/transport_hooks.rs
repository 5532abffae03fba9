//! `BroadcastTransport::room_occupancy_changed`: called when a room gains its first member
//! or loses its last one (by leaving or by disconnecting), not for the members in between.

use std::sync::Arc;

use armature_ws::{BroadcastTransport, WebSocketConnection, WebSocketManager, WebSocketRoom};
use bytes::Bytes;
use parking_lot::Mutex;

/// Records (room, is_empty) at every occupancy call.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<(String, bool)>>);

impl BroadcastTransport for Recording {
    fn publish(
        &self,
        room: &WebSocketRoom,
        frame: Bytes,
        except: Option<&str>,
    ) -> armature_ws::Result<()> {
        room.deliver_local(&frame, except);
        Ok(())
    }

    fn room_occupancy_changed(&self, room: &WebSocketRoom) {
        self.0
            .lock()
            .push((room.name().to_owned(), room.is_empty()));
    }
}

#[test]
fn first_join_and_last_leave_or_disconnect_are_reported() {
    let transport = Arc::new(Recording::default());
    let manager = WebSocketManager::new().with_transport(transport.clone());
    let room = manager.room("r");
    let (c1, rx1) = WebSocketConnection::new("c1".to_owned());
    let (c2, rx2) = WebSocketConnection::new("c2".to_owned());

    room.join("c1".to_owned(), c1).unwrap();
    room.join("c2".to_owned(), c2).unwrap();
    assert_eq!(*transport.0.lock(), [("r".to_owned(), false)]);

    room.leave("c1");
    assert_eq!(
        transport.0.lock().len(),
        1,
        "a member left, the room is not empty"
    );
    room.leave("c2");
    assert_eq!(transport.0.lock()[1], ("r".to_owned(), true));

    // Joining again, then the connection goes away (its receiver is dropped).
    let (c3, rx3) = WebSocketConnection::new("c3".to_owned());
    room.join("c3".to_owned(), c3).unwrap();
    drop(rx3);
    assert_eq!(
        transport.0.lock()[2..],
        [("r".to_owned(), false), ("r".to_owned(), true)]
    );
    drop((rx1, rx2));
}

#[test]
fn cloned_room_handles_are_the_same_room() {
    let room = WebSocketRoom::new("a".to_owned());
    let same = room.clone();
    let other = WebSocketRoom::new("a".to_owned());
    assert!(room.same_room(&same));
    assert!(!room.same_room(&other));
    let (c, _rx) = WebSocketConnection::new("x".to_owned());
    same.join("x".to_owned(), c).unwrap();
    assert!(room.contains("x"));
}
