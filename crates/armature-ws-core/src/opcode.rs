//! Frame opcodes (RFC 6455 §5.2, §11.8).

use std::fmt;

/// The 4-bit opcode of a frame.
///
/// ```
/// use armature_ws_core::OpCode;
///
/// assert_eq!(OpCode::from(0x1), OpCode::Text);
/// assert_eq!(u8::from(OpCode::Ping), 0x9);
/// assert!(OpCode::Close.is_control());
/// assert_eq!(OpCode::from(0x3), OpCode::Reserved(0x3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: a close frame.
    Close,
    /// `0x9`: a ping.
    Ping,
    /// `0xA`: a pong.
    Pong,
    /// `0x3`–`0x7` and `0xB`–`0xF`: reserved, refused unless an extension defines them.
    /// Values above `0xF` are masked to their low 4 bits by `From<u8>`.
    Reserved(u8),
}

impl OpCode {
    /// Control frames (close, ping, pong and the reserved `0xB`–`0xF`) have the top opcode
    /// bit set (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        u8::from(self) & 0x8 != 0
    }

    /// Data frames (continuation, text, binary and the reserved `0x3`–`0x7`).
    pub fn is_data(self) -> bool {
        !self.is_control()
    }

    /// Whether the opcode is one of the reserved values.
    pub fn is_reserved(self) -> bool {
        matches!(self, OpCode::Reserved(_))
    }
}

impl From<u8> for OpCode {
    fn from(byte: u8) -> Self {
        match byte & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }
}

impl From<OpCode> for u8 {
    fn from(op: OpCode) -> Self {
        match op {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(v) => v & 0x0F,
        }
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpCode::Continuation => f.write_str("continuation"),
            OpCode::Text => f.write_str("text"),
            OpCode::Binary => f.write_str("binary"),
            OpCode::Close => f.write_str("close"),
            OpCode::Ping => f.write_str("ping"),
            OpCode::Pong => f.write_str("pong"),
            OpCode::Reserved(v) => write!(f, "reserved opcode {v:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.2: the opcode table.
    #[test]
    fn rfc6455_5_2_opcode_values() {
        let table = [
            (0x0, OpCode::Continuation),
            (0x1, OpCode::Text),
            (0x2, OpCode::Binary),
            (0x8, OpCode::Close),
            (0x9, OpCode::Ping),
            (0xA, OpCode::Pong),
        ];
        for (byte, op) in table {
            assert_eq!(OpCode::from(byte), op);
            assert_eq!(u8::from(op), byte);
        }
        for byte in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(OpCode::from(byte), OpCode::Reserved(byte));
            assert_eq!(u8::from(OpCode::from(byte)), byte);
        }
    }

    /// RFC 6455 §5.5: control frames are those whose opcode has the most significant bit set.
    #[test]
    fn rfc6455_5_5_control_bit() {
        for byte in 0..16u8 {
            assert_eq!(OpCode::from(byte).is_control(), byte >= 8, "{byte:#x}");
            assert_eq!(OpCode::from(byte).is_data(), byte < 8, "{byte:#x}");
        }
    }
}
