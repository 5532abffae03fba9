//! The streaming decoder: bytes in any split in, whole messages and control frames out.

use bytes::{Buf, BytesMut};

use crate::close::CloseFrame;
use crate::config::{Config, Role};
use crate::error::{CapacityError, Error, ProtocolError, Result};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, apply_mask};
use crate::message::WebSocketMessage;
use crate::opcode::OpCode;
use crate::utf8::{Utf8Bytes, Utf8Validator};

/// Decodes the frames one peer sends into [`WebSocketMessage`]s, checking every rule of
/// RFC 6455 §5 that the role and [`Config`] call for.
///
/// The decoder owns no buffer: the caller reads bytes from the socket into a [`BytesMut`] and
/// calls [`decode`](Decoder::decode) until it returns `Ok(None)`. It holds only the message
/// being assembled while a fragmented message is in progress, so an idle decoder allocates
/// nothing and is a few words big.
///
/// ```
/// use armature_ws_core::{Config, Decoder, WebSocketMessage};
/// use bytes::BytesMut;
///
/// let mut decoder = Decoder::new(Config::server());
/// // RFC 6455 §5.7: a masked "Hello", arriving in two reads.
/// let mut buf = BytesMut::from(&[0x81, 0x85, 0x37, 0xfa][..]);
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(&[0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// assert_eq!(decoder.decode(&mut buf).unwrap(), Some(WebSocketMessage::text("Hello")));
/// assert!(buf.is_empty());
///
/// // An unmasked client frame is refused with close code 1002.
/// let mut buf = BytesMut::from(&[0x81, 0x00][..]);
/// let err = Decoder::new(Config::server()).decode(&mut buf).unwrap_err();
/// assert_eq!(u16::from(err.close_code()), 1002);
/// ```
#[derive(Debug)]
pub struct Decoder {
    config: Config,
    /// The fragmented message being assembled, if any.
    partial: Option<Box<Partial>>,
    /// The error that failed the decoder; it is returned again by every later call.
    failed: Option<Error>,
    /// Whether the peer's close frame was decoded; nothing may follow it.
    closed: bool,
}

#[derive(Debug)]
struct Partial {
    /// `Text` or `Binary`.
    opcode: OpCode,
    data: BytesMut,
    utf8: Utf8Validator,
}

/// What one frame produced.
enum Step {
    Message(WebSocketMessage),
    Fragment,
    NeedMore,
}

impl Decoder {
    /// A decoder with this role and these limits.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            partial: None,
            failed: None,
            closed: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a fragmented message is in progress.
    pub fn in_fragmented_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Whether the peer's close frame has been decoded.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The error that failed the decoder, if one did.
    pub fn error(&self) -> Option<Error> {
        self.failed
    }

    /// Decodes the next message or control frame from the front of `src`, removing the bytes
    /// it used.
    ///
    /// Returns `Ok(None)` when `src` does not hold a whole frame yet; it then reserves room in
    /// `src` for the rest of the frame it is waiting for. Control frames come out as soon as
    /// they are complete, also between the fragments of a message. Fragments are consumed as
    /// they arrive and their text checked as UTF-8 at once, so an invalid fragment fails
    /// before the message ends. After an error the decoder stays failed and returns that
    /// error again.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<WebSocketMessage>> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        loop {
            match self.decode_frame(src) {
                Ok(Step::Message(msg)) => return Ok(Some(msg)),
                Ok(Step::Fragment) => continue,
                Ok(Step::NeedMore) => return Ok(None),
                Err(err) => {
                    self.failed = Some(err);
                    self.partial = None;
                    return Err(err);
                }
            }
        }
    }

    fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Step> {
        let Some((header, header_len)) = FrameHeader::parse(src)? else {
            return Ok(Step::NeedMore);
        };
        let len = self.check(&header)?;
        let needed = header_len + len;
        if src.len() < needed {
            src.reserve(needed - src.len());
            return Ok(Step::NeedMore);
        }
        src.advance(header_len);
        let mut payload = src.split_to(len);
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask);
        }
        let message = match header.opcode {
            OpCode::Ping => WebSocketMessage::Ping(payload.freeze()),
            OpCode::Pong => WebSocketMessage::Pong(payload.freeze()),
            OpCode::Close => {
                let close = CloseFrame::parse(payload.freeze())?;
                self.closed = true;
                WebSocketMessage::Close(close)
            }
            OpCode::Text | OpCode::Binary if header.fin => complete(header.opcode, payload, None)?,
            OpCode::Text | OpCode::Binary => {
                let mut utf8 = Utf8Validator::new();
                if header.opcode == OpCode::Text {
                    utf8.feed(&payload).map_err(|_| Error::InvalidUtf8)?;
                }
                self.partial = Some(Box::new(Partial {
                    opcode: header.opcode,
                    data: payload,
                    utf8,
                }));
                return Ok(Step::Fragment);
            }
            // `check` let a continuation through only with a message in progress.
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation.into());
                };
                if partial.opcode == OpCode::Text {
                    partial
                        .utf8
                        .feed(&payload)
                        .map_err(|_| Error::InvalidUtf8)?;
                }
                partial.data.unsplit(payload);
                if !header.fin {
                    return Ok(Step::Fragment);
                }
                let Some(partial) = self.partial.take() else {
                    return Err(ProtocolError::UnexpectedContinuation.into());
                };
                let Partial { opcode, data, utf8 } = *partial;
                complete(opcode, data, Some(utf8))?
            }
            OpCode::Reserved(op) => return Err(ProtocolError::ReservedOpcode(op).into()),
        };
        Ok(Step::Message(message))
    }

    /// Checks everything the header alone tells, returning the payload length.
    fn check(&self, header: &FrameHeader) -> Result<usize> {
        if self.closed {
            return Err(ProtocolError::FrameAfterClose.into());
        }
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(ProtocolError::RsvWithoutExtension.into());
        }
        if let OpCode::Reserved(op) = header.opcode {
            return Err(ProtocolError::ReservedOpcode(op).into());
        }
        match (self.config.role, header.mask.is_some()) {
            (Role::Server, false) if !self.config.accept_unmasked_frames => {
                return Err(ProtocolError::UnmaskedFrame.into());
            }
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame.into()),
            _ => {}
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControl.into());
            }
            if header.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooBig(header.payload_len).into());
            }
        } else {
            match (header.opcode, self.partial.is_some()) {
                (OpCode::Continuation, false) => {
                    return Err(ProtocolError::UnexpectedContinuation.into());
                }
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ProtocolError::ExpectedContinuation.into());
                }
                _ => {}
            }
        }
        let max_frame = self.config.max_frame_size;
        let len = match usize::try_from(header.payload_len) {
            Ok(len) if len <= max_frame => len,
            _ => {
                return Err(CapacityError::FrameTooBig {
                    size: header.payload_len,
                    max: max_frame,
                }
                .into());
            }
        };
        if header.opcode.is_data() {
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let size = so_far as u64 + header.payload_len;
            if size > self.config.max_message_size as u64 {
                return Err(CapacityError::MessageTooBig {
                    size,
                    max: self.config.max_message_size,
                }
                .into());
            }
        }
        Ok(len)
    }
}

/// Turns a whole message's payload into a message. For text, `utf8` holds the incremental
/// validation of a fragmented message (its end is checked here); a single frame is validated
/// in one pass.
fn complete(
    opcode: OpCode,
    data: BytesMut,
    utf8: Option<Utf8Validator>,
) -> Result<WebSocketMessage> {
    if opcode == OpCode::Text {
        if let Some(utf8) = utf8 {
            utf8.finish().map_err(|_| Error::InvalidUtf8)?;
        }
        let text = Utf8Bytes::try_from(data.freeze()).map_err(|_| Error::InvalidUtf8)?;
        Ok(WebSocketMessage::Text(text))
    } else {
        Ok(WebSocketMessage::Binary(data.freeze()))
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
