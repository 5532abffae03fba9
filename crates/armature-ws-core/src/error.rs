//! The crate's error: which rule of RFC 6455 the peer broke, and the close code it maps to.

use crate::close::CloseCode;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why decoding failed. Each variant maps to the close code to send the peer
/// ([`Error::close_code`]); after one, the connection must be failed (RFC 6455 §7.1.7).
///
/// The `Display` text is for people and may change; match on the variant instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke a framing rule (close code 1002).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A frame or message was bigger than the configured limit (close code 1009).
    #[error("too big: {0}")]
    Capacity(#[from] CapacityError),
    /// A text message or close reason was not UTF-8 (close code 1007).
    #[error("invalid utf-8 in a text message or close reason")]
    InvalidUtf8,
}

impl Error {
    /// The close code to fail the connection with: 1002 for protocol errors, 1009 for
    /// capacity errors, 1007 for invalid UTF-8.
    ///
    /// ```
    /// use armature_ws_core::{CloseCode, Error, ProtocolError};
    ///
    /// let err = Error::from(ProtocolError::UnmaskedFrame);
    /// assert_eq!(err.close_code(), CloseCode::Protocol);
    /// ```
    pub fn close_code(&self) -> CloseCode {
        match self {
            Error::Protocol(_) => CloseCode::Protocol,
            Error::Capacity(_) => CloseCode::Size,
            Error::InvalidUtf8 => CloseCode::Invalid,
        }
    }

    /// Whether this is a [`Error::Protocol`].
    pub fn is_protocol(&self) -> bool {
        matches!(self, Error::Protocol(_))
    }

    /// Whether this is a [`Error::Capacity`].
    pub fn is_capacity(&self) -> bool {
        matches!(self, Error::Capacity(_))
    }
}

/// A framing rule of RFC 6455 that the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent a frame without a mask (§5.1).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    #[error("server frame is masked")]
    MaskedFrame,
    /// The frame uses a reserved opcode (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 is set but no extension was negotiated (§5.2).
    #[error("rsv bit set without a negotiated extension")]
    RsvWithoutExtension,
    /// A control frame carries more than 125 bytes (§5.5).
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooBig(u64),
    /// A control frame has FIN clear (§5.5).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A continuation frame arrived with no fragmented message in progress (§5.4).
    #[error("continuation frame with nothing to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame arrived inside a fragmented message (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A 64-bit payload length has its most significant bit set (§5.2).
    #[error("64-bit payload length with the top bit set")]
    LengthTopBit,
    /// A payload length was not encoded in the minimal number of bytes (§5.2).
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A close frame carries exactly one byte (§5.5.1).
    #[error("close frame payload of one byte")]
    ClosePayloadOneByte,
    /// A close frame carries a code that may not be sent (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A frame arrived after the peer's close frame (§5.5.1).
    #[error("frame after close")]
    FrameAfterClose,
    /// A control frame has RSV1 set with permessage-deflate negotiated: control frames are
    /// never compressed (RFC 7692 §6.1).
    #[error("compressed control frame")]
    CompressedControl,
    /// A continuation frame has RSV1 set: only a message's first frame says it is compressed
    /// (RFC 7692 §6.1).
    #[error("rsv1 set on a continuation frame")]
    CompressedContinuation,
    /// A compressed message's payload is not valid deflate data (RFC 7692 §7.2.2).
    #[error("compressed payload is not valid deflate data")]
    InvalidCompressedData,
}

/// A size limit the peer went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// A frame announced a payload bigger than `max_frame_size`.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooBig {
        /// The announced payload length.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message (its fragments so far plus the next one) is bigger than `max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {max}")]
    MessageTooBig {
        /// The size the message would reach.
        size: u64,
        /// The configured limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert_eq!(
            Error::from(ProtocolError::ReservedOpcode(3)).close_code(),
            CloseCode::Protocol
        );
        assert_eq!(
            Error::from(CapacityError::FrameTooBig { size: 9, max: 1 }).close_code(),
            CloseCode::Size
        );
        assert_eq!(Error::InvalidUtf8.close_code(), CloseCode::Invalid);
    }

    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<Error>() <= 24);
    }
}
