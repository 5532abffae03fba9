//! Everything the guide's code names, in one import: `use armature_realtime::prelude::*;`.
//!
//! The decorators, the WebSocket and SSE types, [`Error`], and the `Arc` / `Duration`
//! conveniences the guide's snippets use without importing.

pub use std::sync::Arc;
pub use std::time::Duration;

pub use armature_realtime_macros::{controller, injectable, module, sse, websocket};

pub use crate::guard::{Auth, Guard, Refusal, UserId};
pub use crate::sse::{ReceiverStream, ServerSentEvent, SseBroadcaster, SseStream};
pub use crate::sse_route::EventStream;
pub use crate::typed::{RecvJson, TypedEvents, TypedSocket};
pub use crate::ws::{
    WebSocket, WebSocketConnection, WebSocketManager, WebSocketMessage, WebSocketRoom,
};
pub use crate::ws_route::PendingUpgrade;
pub use crate::{App, Error, RequestHead};
