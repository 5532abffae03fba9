//! [`LocalTransport`], the in-process [`BroadcastTransport`]: the seam every room broadcast
//! goes through (declared beside the room, see [`BroadcastTransport`]), so that broadcasts
//! can travel between server processes (e.g. over Redis pub/sub) without a change to user
//! code.

use bytes::Bytes;

use crate::Result;
use crate::room::{BroadcastTransport, WebSocketRoom};

/// The in-process transport: delivers to the members connected to this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalTransport;

impl BroadcastTransport for LocalTransport {
    fn publish(&self, room: &WebSocketRoom, frame: Bytes, except: Option<&str>) -> Result<()> {
        room.deliver_local_coalesced(&frame, except);
        Ok(())
    }
}
