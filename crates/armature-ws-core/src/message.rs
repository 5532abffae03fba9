//! `WebSocketMessage`: what the decoder yields and the encoder takes.

use bytes::Bytes;

use crate::close::{CloseCode, CloseFrame};
use crate::opcode::OpCode;
use crate::utf8::Utf8Bytes;

/// A WebSocket message: the design guide's enum, with payloads over [`Bytes`] so that neither
/// receiving nor broadcasting copies them.
///
/// ```
/// use armature_ws_core::{CloseCode, WebSocketMessage};
///
/// let msg = WebSocketMessage::text("hello");
/// assert!(msg.is_text());
/// assert_eq!(msg.len(), 5);
/// if let WebSocketMessage::Text(text) = &msg {
///     assert_eq!(text, "hello");
/// }
///
/// let bye = WebSocketMessage::close(CloseCode::Away, "restarting");
/// assert!(bye.is_close());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WebSocketMessage {
    /// A text message (always valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; its payload is at most 125 bytes on the wire.
    Ping(Bytes),
    /// A pong; its payload is at most 125 bytes on the wire.
    Pong(Bytes),
    /// A close, with the code and reason if the close frame carried them.
    Close(Option<CloseFrame>),
}

impl WebSocketMessage {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// A ping.
    pub fn ping(data: impl Into<Bytes>) -> Self {
        Self::Ping(data.into())
    }

    /// A pong.
    pub fn pong(data: impl Into<Bytes>) -> Self {
        Self::Pong(data.into())
    }

    /// A close with a code and a reason.
    pub fn close(code: impl Into<CloseCode>, reason: impl Into<Utf8Bytes>) -> Self {
        Self::Close(Some(CloseFrame::new(code, reason)))
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// Whether this is a ping.
    pub fn is_ping(&self) -> bool {
        matches!(self, Self::Ping(_))
    }

    /// Whether this is a pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, Self::Pong(_))
    }

    /// Whether this is a close.
    pub fn is_close(&self) -> bool {
        matches!(self, Self::Close(_))
    }

    /// Whether this is a ping, pong or close (a control frame).
    pub fn is_control(&self) -> bool {
        self.opcode().is_control()
    }

    /// The opcode of the frame this message is sent as.
    pub fn opcode(&self) -> OpCode {
        match self {
            Self::Text(_) => OpCode::Text,
            Self::Binary(_) => OpCode::Binary,
            Self::Ping(_) => OpCode::Ping,
            Self::Pong(_) => OpCode::Pong,
            Self::Close(_) => OpCode::Close,
        }
    }

    /// The payload: the text's bytes, the data, or a close's reason (without the code).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(frame) => frame.map(|f| f.reason.into_bytes()).unwrap_or_default(),
        }
    }

    /// The payload as a byte slice (for a close, its reason).
    pub fn as_payload(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(frame) => frame.as_ref().map(|f| f.reason.as_bytes()).unwrap_or(&[]),
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The close frame, if this is a close that carried a code.
    pub fn as_close(&self) -> Option<&CloseFrame> {
        match self {
            Self::Close(frame) => frame.as_ref(),
            _ => None,
        }
    }

    /// The payload length in bytes (for a close, the reason's).
    pub fn len(&self) -> usize {
        self.as_payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<String> for WebSocketMessage {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for WebSocketMessage {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Utf8Bytes> for WebSocketMessage {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<u8>> for WebSocketMessage {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

impl From<Bytes> for WebSocketMessage {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let m = WebSocketMessage::binary(vec![1, 2, 3]);
        assert!(m.is_binary() && !m.is_text() && !m.is_control());
        assert_eq!(m.opcode(), OpCode::Binary);
        assert_eq!(m.len(), 3);
        assert_eq!(m.clone().into_data(), Bytes::from_static(&[1, 2, 3]));

        let c = WebSocketMessage::close(CloseCode::Normal, "done");
        assert!(c.is_close() && c.is_control());
        assert_eq!(c.as_close().map(|f| f.code), Some(CloseCode::Normal));
        assert_eq!(c.into_data(), Bytes::from_static(b"done"));
        assert!(WebSocketMessage::Close(None).is_empty());

        assert_eq!(WebSocketMessage::from("hi").as_text(), Some("hi"));
        assert!(WebSocketMessage::ping(Bytes::new()).is_ping());
        assert!(WebSocketMessage::pong(Bytes::new()).is_pong());
    }
}
