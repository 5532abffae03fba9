//! Sans-I/O RFC 6455: the WebSocket protocol without sockets or a runtime.
//!
//! Bytes go in, messages come out; messages go in, bytes come out. Nothing here reads or
//! writes a socket, spawns a task or sleeps, so every rule can be tested byte for byte and the
//! same core serves any runtime. `armature-ws` moves bytes between hyper's upgraded
//! connections and this crate.
//!
//! - [`handshake`]: validate an `http::Request` as an upgrade, pick a subprotocol, build the
//!   `101` response (or a typed 400/426 rejection).
//! - [`Decoder`]: a streaming decoder: frames split anywhere in, [`WebSocketMessage`]s out,
//!   with every server-side check of RFC 6455 §5, UTF-8 validation of text as its bytes
//!   arrive (across fragments and inside a frame still arriving) and size limits from
//!   [`Config`].
//! - [`encode_message`] and friends: one message, one frame, as `Bytes` (unmasked for a
//!   server, so one encoding serves every recipient of a broadcast); [`Encoder`] masks for
//!   clients.
//! - [`CloseHandshake`]: who closed first, what to answer, when the connection may go.
//!
//! ```
//! use armature_ws_core::{encode_message, Config, Decoder, Encoder, Role, WebSocketMessage};
//! use bytes::BytesMut;
//!
//! // A client masks its frames…
//! let mut client = Encoder::new(Role::Client);
//! let mut wire = BytesMut::new();
//! client.encode(&WebSocketMessage::text("ping?"), &mut wire);
//!
//! // …the server decodes them, however the bytes were split…
//! let mut server = Decoder::new(Config::server());
//! let mut buf = BytesMut::new();
//! let mut received = None;
//! for byte in wire.iter() {
//!     buf.extend_from_slice(&[*byte]);
//!     if let Some(msg) = server.decode(&mut buf).unwrap() {
//!         received = Some(msg);
//!     }
//! }
//! assert_eq!(received, Some(WebSocketMessage::text("ping?")));
//!
//! // …and answers with an unmasked frame it can send to many clients.
//! let reply = encode_message(&WebSocketMessage::text("pong!"));
//! assert_eq!(&reply[..], b"\x81\x05pong!");
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod close;
mod close_handshake;
pub mod compression;
mod config;
mod decoder;
mod encoder;
mod error;
pub mod extensions;
pub mod frame;
pub mod handshake;
mod mask;
mod message;
mod opcode;
pub mod origin;
pub mod permessage_deflate;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
pub use close_handshake::{CloseHandshake, CloseState, Initiator};
pub use config::{Config, DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_MESSAGE_SIZE, Role};
pub use decoder::Decoder;
pub use encoder::{
    Encoder, deflate_frame, deflate_frame_shared, encode_binary, encode_close, encode_close_masked,
    encode_frame_into, encode_message, encode_message_deflated, encode_message_into,
    encode_message_masked, encode_message_masked_into, encode_message_shared, encode_text,
    encoded_len,
};
pub use error::{CapacityError, Error, ProtocolError, Result};
pub use frame::{FrameHeader, apply_mask, apply_mask_offset};
pub use handshake::{ClientHandshake, HandshakeError, derive_accept_key, validate_request};
pub use message::WebSocketMessage;
pub use opcode::OpCode;
pub use origin::{OriginPolicy, OriginRefusal};
pub use utf8::{InvalidUtf8, Utf8Bytes, Utf8Validator};

/// `bytes`, re-exported so users name the same `Bytes` and `BytesMut` this crate uses.
pub use bytes;
