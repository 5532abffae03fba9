//! `WebSocketMessage`: what the decoder yields and the encoder takes.

use bytes::Bytes;

use crate::opcode::OpCode;
use crate::utf8::Utf8Bytes;

/// A WebSocket message: the design guide's enum, with payloads over [`Bytes`] so that neither
/// receiving nor broadcasting copies them.
///
/// `Close` is the guide's unit variant. The code and reason of a close frame travel beside
/// the message: a received one is [`Decoder::close_frame`](crate::Decoder::close_frame) (and
/// `WebSocket::close_frame` in armature-ws); one to send is a [`CloseFrame`](crate::CloseFrame)
/// given to [`encode_close`](crate::encode_close) (or `WebSocket::close(code, reason)`).
/// Encoded on its own, `Close` is a close frame without a code.
///
/// ```
/// use armature_ws_core::WebSocketMessage;
///
/// let msg = WebSocketMessage::text("hello");
/// assert!(msg.is_text());
/// assert_eq!(msg.len(), 5);
/// match msg {
///     WebSocketMessage::Text(text) => assert_eq!(text, "hello"),
///     WebSocketMessage::Close => unreachable!(),
///     _ => {}
/// }
/// assert!(WebSocketMessage::Close.is_close());
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
    /// A close (its code and reason, if any, are kept beside the message, see above).
    Close,
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
        matches!(self, Self::Close)
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
            Self::Close => OpCode::Close,
        }
    }

    /// The payload: the text's bytes or the data (empty for a close).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close => Bytes::new(),
        }
    }

    /// The payload as a byte slice (empty for a close).
    pub fn as_payload(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close => &[],
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The payload length in bytes (0 for a close).
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

        let c = WebSocketMessage::Close;
        assert!(c.is_close() && c.is_control());
        assert_eq!(c.opcode(), OpCode::Close);
        assert!(c.is_empty());
        assert_eq!(c.into_data(), Bytes::new());

        assert_eq!(WebSocketMessage::from("hi").as_text(), Some("hi"));
        assert!(WebSocketMessage::ping(Bytes::new()).is_ping());
        assert!(WebSocketMessage::pong(Bytes::new()).is_pong());
    }
}
