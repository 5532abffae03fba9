//! Close status codes (RFC 6455 §7.4) and the close frame's payload (§5.5.1).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, ProtocolError};
use crate::utf8::Utf8Bytes;

/// A close status code (RFC 6455 §7.4.1 and the IANA registry).
///
/// ```
/// use armature_ws_core::CloseCode;
///
/// assert_eq!(CloseCode::from(1000), CloseCode::Normal);
/// assert_eq!(u16::from(CloseCode::Size), 1009);
/// assert_eq!(CloseCode::from(4001), CloseCode::Library(4001));
/// assert!(CloseCode::Normal.is_allowed());
/// assert!(!CloseCode::Status.is_allowed()); // 1005 never appears on the wire
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    Away,
    /// 1002: the peer broke the protocol.
    Protocol,
    /// 1003: the endpoint received a type of data it cannot accept.
    Unsupported,
    /// 1005: no status code was present (never sent on the wire).
    Status,
    /// 1006: the connection closed without a close frame (never sent on the wire).
    Abnormal,
    /// 1007: a message's data was inconsistent with its type (e.g. invalid UTF-8 text).
    Invalid,
    /// 1008: a message violated the endpoint's policy.
    Policy,
    /// 1009: a message was too big to process.
    Size,
    /// 1010: the client expected an extension the server did not negotiate.
    Extension,
    /// 1011: the server met an unexpected condition.
    Error,
    /// 1012: the server is restarting.
    Restart,
    /// 1013: the server is overloaded; try again later.
    Again,
    /// 1014: a gateway or proxy received an invalid response from upstream.
    BadGateway,
    /// 1015: the TLS handshake failed (never sent on the wire).
    Tls,
    /// 1004 and 1016–2999: reserved by the RFC or the IANA; not allowed on the wire.
    Reserved(u16),
    /// 3000–3999: registered with the IANA for libraries and frameworks.
    Iana(u16),
    /// 4000–4999: private use by applications.
    Library(u16),
    /// 0–999 and 5000 and up: not a close code at all.
    Bad(u16),
}

impl CloseCode {
    /// Whether the code may appear in a close frame on the wire (RFC 6455 §7.4). A close frame
    /// carrying any other code is a protocol error.
    pub fn is_allowed(self) -> bool {
        !matches!(
            self,
            CloseCode::Status
                | CloseCode::Abnormal
                | CloseCode::Tls
                | CloseCode::Reserved(_)
                | CloseCode::Bad(_)
        )
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::Status,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::Invalid,
            1008 => CloseCode::Policy,
            1009 => CloseCode::Size,
            1010 => CloseCode::Extension,
            1011 => CloseCode::Error,
            1012 => CloseCode::Restart,
            1013 => CloseCode::Again,
            1014 => CloseCode::BadGateway,
            1015 => CloseCode::Tls,
            1004 | 1016..=2999 => CloseCode::Reserved(code),
            3000..=3999 => CloseCode::Iana(code),
            4000..=4999 => CloseCode::Library(code),
            _ => CloseCode::Bad(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Restart => 1012,
            CloseCode::Again => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::Tls => 1015,
            CloseCode::Reserved(c)
            | CloseCode::Iana(c)
            | CloseCode::Library(c)
            | CloseCode::Bad(c) => c,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// The most bytes a close reason can have: a control frame payload is at most 125 bytes, two
/// of which hold the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// The code and reason of a close frame.
///
/// ```
/// use armature_ws_core::{CloseCode, CloseFrame};
///
/// let close = CloseFrame::new(CloseCode::Away, "server restarting");
/// assert_eq!(close.code, CloseCode::Away);
/// assert_eq!(close.reason, "server restarting");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Why, for people; at most [`MAX_CLOSE_REASON`] bytes are sent.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with this code and reason.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// Parses a close frame's (unmasked) payload (RFC 6455 §5.5.1, §7.4).
    ///
    /// An empty payload is a close without a code (`Ok(None)`); one byte, a code that may not
    /// be sent (§7.4) or a reason that is not UTF-8 is an error.
    pub fn parse(payload: Bytes) -> Result<Option<CloseFrame>, Error> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::ClosePayloadOneByte.into()),
            _ => {
                let raw = u16::from_be_bytes([payload[0], payload[1]]);
                let code = CloseCode::from(raw);
                if !code.is_allowed() {
                    return Err(ProtocolError::InvalidCloseCode(raw).into());
                }
                let reason =
                    Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| Error::InvalidUtf8)?;
                Ok(Some(CloseFrame { code, reason }))
            }
        }
    }

    /// The reason as sent: cut to [`MAX_CLOSE_REASON`] bytes at a character boundary.
    pub fn wire_reason(&self) -> &str {
        let reason = self.reason.as_str();
        if reason.len() <= MAX_CLOSE_REASON {
            return reason;
        }
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        &reason[..end]
    }

    /// Writes the close payload: the code (big-endian) then the reason (cut as
    /// [`wire_reason`](CloseFrame::wire_reason) does). A code that may not be sent
    /// ([`CloseCode::is_allowed`] is false) writes nothing: such a close goes out without a code.
    pub fn write_payload(&self, dst: &mut BytesMut) {
        if !self.code.is_allowed() {
            return;
        }
        let reason = self.wire_reason();
        dst.reserve(2 + reason.len());
        dst.put_u16(u16::from(self.code));
        dst.put_slice(reason.as_bytes());
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// RFC 6455 §7.4.1 and §7.4.2: defined, reserved and private ranges.
    #[test]
    fn rfc6455_7_4_code_ranges() {
        for raw in 0..=6000u16 {
            let code = CloseCode::from(raw);
            assert_eq!(u16::from(code), raw);
            let allowed = matches!(raw, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(code.is_allowed(), allowed, "{raw}");
        }
        assert_eq!(CloseCode::from(1005), CloseCode::Status);
        assert_eq!(CloseCode::from(1006), CloseCode::Abnormal);
        assert_eq!(CloseCode::from(1015), CloseCode::Tls);
        assert_eq!(CloseCode::from(999), CloseCode::Bad(999));
        assert_eq!(CloseCode::from(2999), CloseCode::Reserved(2999));
        assert_eq!(CloseCode::from(3000), CloseCode::Iana(3000));
    }

    /// RFC 6455 §5.5.1: the body starts with a 2-byte code in network byte order.
    #[test]
    fn rfc6455_5_5_1_parse_payload() {
        assert_eq!(CloseFrame::parse(Bytes::new()), Ok(None));
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xe8bye")),
            Ok(Some(CloseFrame::new(CloseCode::Normal, "bye")))
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x0f\xa1")),
            Ok(Some(CloseFrame::new(CloseCode::Library(4001), "")))
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03")),
            Err(ProtocolError::ClosePayloadOneByte.into())
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xed")),
            Err(ProtocolError::InvalidCloseCode(1005).into())
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xe8\xff")),
            Err(Error::InvalidUtf8)
        );
    }

    #[test]
    fn rfc6455_5_5_1_write_payload() {
        let mut dst = BytesMut::new();
        CloseFrame::new(CloseCode::Away, "bye").write_payload(&mut dst);
        assert_eq!(&dst[..], b"\x03\xe9bye");

        let mut dst = BytesMut::new();
        CloseFrame::new(CloseCode::Status, "x").write_payload(&mut dst);
        assert!(dst.is_empty(), "1005 is never sent");
    }

    #[test]
    fn long_reason_is_cut_at_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let close = CloseFrame::new(CloseCode::Normal, reason);
        assert_eq!(close.wire_reason().len(), 122);
        let mut dst = BytesMut::new();
        close.write_payload(&mut dst);
        assert_eq!(dst.len(), 124);
        assert!(std::str::from_utf8(&dst[2..]).is_ok());
    }
}
