//! The demo's typed chat: the same rooms idea as the demo's JSON chat, with every message a
//! Rust type. The client's events are [`ChatIn`], the server's [`ChatOut`]; the envelope is
//! `armature_realtime::typed`'s. [`asyncapi`] describes it (the checked-in
//! `static/generated/asyncapi.json`, `client.ts` and `client.js`, rewritten by
//! `cargo xtask asyncapi`), and the demo page talks to it through `client.js`.
//!
//! - `ws://HOST/typed/chat/:room?name=NAME`: send `chat:send {text}` (with an `ack` the
//!   server replies `chat:sent {id}`), receive `chat:message {id, name, text}` and
//!   `chat:members {count}`; a bad message gets `error {kind, message, event}`.
//! - `GET /typed/beats/:n`: `n` `beat {n}` events, one every 200 ms, then `done`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use armature_realtime::asyncapi::AsyncApi;
use armature_realtime::prelude::*;
use armature_realtime::typed::{Valid, encode};
use serde::{Deserialize, Serialize};

/// Longest chat line, in characters (also the validator's limit).
pub const MAX_TEXT: u64 = 500;

/// A chat line as the client sends it.
#[derive(Debug, Deserialize, schemars::JsonSchema, validator::Validate)]
pub struct Send {
    /// The line, 1 to 500 characters.
    #[validate(length(min = 1, max = 500))]
    pub text: String,
}

/// What the client sends on the typed chat.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
pub enum ChatIn {
    /// A chat line for the room.
    #[serde(rename = "chat:send")]
    Send(Valid<Send>),
}

/// A chat line as the room receives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Message {
    /// The line's number on this server.
    pub id: u64,
    /// Who sent it.
    pub name: String,
    /// The line.
    pub text: String,
}

/// What the server sends on the typed chat.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
pub enum ChatOut {
    /// A line of the room (every member gets it, the sender too).
    #[serde(rename = "chat:message")]
    Message(Message),
    /// How many members the room has (after each join and leave).
    #[serde(rename = "chat:members")]
    Members {
        /// The number of members.
        count: usize,
    },
    /// The reply to a `chat:send` with an `ack`: the line's id.
    #[serde(rename = "chat:sent")]
    Sent {
        /// The id of the line sent.
        id: u64,
    },
}

/// What the beats stream sends.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", content = "data")]
pub enum Beat {
    /// One beat.
    #[serde(rename = "beat")]
    Beat {
        /// Its number, from 1.
        n: u32,
    },
    /// The last event.
    #[serde(rename = "done")]
    Done,
}

/// The typed chat's rooms.
#[injectable]
#[derive(Clone, Default)]
pub struct TypedRooms {
    /// The rooms.
    pub manager: Arc<WebSocketManager>,
    next_id: Arc<AtomicU64>,
}

/// The typed chat controller.
#[controller("/typed")]
pub struct TypedChat {
    rooms: TypedRooms,
}

#[controller]
impl TypedChat {
    #[websocket("/chat/:room")]
    async fn chat(
        &self,
        room: String,
        #[query] name: Option<String>,
        mut socket: TypedSocket<ChatIn, ChatOut>,
    ) -> Result<(), Error> {
        let name: String = name
            .unwrap_or_else(|| "anon".into())
            .chars()
            .take(32)
            .collect();
        let room = self.rooms.manager.get_or_create_room(&room).await;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        let members = |count| encode(&ChatOut::Members { count }, None);
        room.broadcast_text(members(room.connection_count().await)?)
            .await?;
        while let Some(Ok(msg)) = socket.recv().await {
            match msg.data {
                ChatIn::Send(send) => {
                    let id = self.rooms.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                    let line = ChatOut::Message(Message {
                        id,
                        name: name.clone(),
                        text: send.into_inner().text,
                    });
                    room.broadcast_text(encode(&line, None)?).await?;
                    if let Some(ack) = msg.ack {
                        socket.reply(ack, &ChatOut::Sent { id }).await?;
                    }
                }
            }
        }
        room.remove_connection(socket.id()).await;
        room.broadcast_text(members(room.connection_count().await)?)
            .await?;
        Ok(())
    }

    #[sse("/beats/:n")]
    async fn beats(&self, n: u32) -> TypedEvents<Beat> {
        let beats = futures_util::stream::unfold(0u32, move |i| async move {
            if i > n {
                return None;
            }
            if i == n {
                return Some((Beat::Done, i + 1));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((Beat::Beat { n: i + 1 }, i + 1))
        });
        TypedEvents::new(beats)
    }
}

/// The typed chat as a module.
#[module(providers: [TypedRooms], controllers: [TypedChat])]
pub struct TypedChatModule;

/// The generator of the typed chat's AsyncAPI document and client.
pub fn asyncapi() -> AsyncApi {
    AsyncApi::new("Armature Realtime demo: typed chat", "1.0.0").description(
        "The demo's typed chat (WebSocket) and beats (SSE), generated from the server's Rust types.",
    )
}

/// The files `cargo xtask asyncapi` writes into `examples/static/generated/`, as
/// `(name, contents)`.
///
/// # Errors
/// When the module cannot be built.
pub fn generated_files() -> Result<Vec<(&'static str, String)>, Error> {
    let app = App::new().module::<TypedChatModule>().build()?;
    let api = asyncapi();
    Ok(vec![
        ("asyncapi.json", api.document_json(&app)),
        ("client.ts", api.typescript(&app)),
        ("client.js", api.javascript(&app)),
    ])
}
