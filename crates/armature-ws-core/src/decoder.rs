//! The streaming decoder: bytes in any split in, whole messages and control frames out.

use bytes::{Buf, Bytes, BytesMut};

use crate::close::CloseFrame;
use crate::compression::{Decompressor, InflateError};
use crate::config::{Config, Role};
use crate::error::{CapacityError, Error, ProtocolError, Result};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, apply_mask_offset};
use crate::message::WebSocketMessage;
use crate::opcode::OpCode;
use crate::permessage_deflate::DirectionParams;
use crate::utf8::{TextBuilder, Utf8Bytes, Utf8Validator, resume_point};

/// Decodes the frames one peer sends into [`WebSocketMessage`]s, checking every rule of
/// RFC 6455 §5 that the role and [`Config`] call for.
///
/// The decoder owns no buffer: the caller reads bytes from the socket into a [`BytesMut`] and
/// calls [`decode`](Decoder::decode) until it returns `Ok(None)`. It holds only the message
/// being assembled while a fragmented message is in progress, so an idle decoder allocates
/// nothing and is a few words big.
///
/// Text is checked as UTF-8 while it arrives, also inside one frame: the part of a text frame
/// already in the buffer is unmasked in place and checked, so invalid text fails with close
/// code 1007 as soon as the bad bytes are read, not when the frame ends. The caller must
/// therefore hand back the bytes `decode` left in the buffer as they are, appending new bytes
/// after them (which is what reading into the same buffer does).
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
    /// Boxed: a decoder fails at most once, and every idle connection carries the slot.
    failed: Option<Box<Error>>,
    /// Whether the peer's close frame was decoded; nothing may follow it.
    closed: bool,
    /// How many payload bytes of the text frame at the front of the buffer, still arriving,
    /// are already unmasked (in place) and checked. 0 between frames. A `u32` keeps the
    /// decoder within 56 bytes; bytes past 4 GiB into one frame are checked when it ends.
    scanned: u32,
    /// permessage-deflate, when negotiated: how the peer compresses.
    inflate: Option<DirectionParams>,
    /// The decompressor: held while a compressed message is in progress, and between
    /// messages only with context takeover (else it goes back to the thread's pool).
    decompressor: Option<Box<Decompressor>>,
}

/// The fragmented message being assembled, or, once the peer's close frame arrived (nothing
/// may follow it), that frame: kept in the same slot so the decoder stays small.
#[derive(Debug)]
enum Partial {
    /// Text, checked fragment by fragment as it is appended.
    Text(TextBuilder),
    Binary(BytesMut),
    /// A compressed message: what its fragments inflated to so far.
    Compressed {
        text: bool,
        data: Vec<u8>,
    },
    /// The peer's close frame (`None`: it carried no code).
    Closed(Option<CloseFrame>),
}

impl Partial {
    fn len(&self) -> usize {
        match self {
            Partial::Text(text) => text.len(),
            Partial::Binary(data) => data.len(),
            Partial::Compressed { data, .. } => data.len(),
            Partial::Closed(_) => 0,
        }
    }
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
            scanned: 0,
            inflate: None,
            decompressor: None,
        }
    }

    /// This decoder, reading messages compressed with permessage-deflate as negotiated
    /// (`incoming` is [`DeflateParams::incoming`](crate::permessage_deflate::DeflateParams::incoming)
    /// for our role): a message whose first frame has RSV1 set is inflated, in bounded steps,
    /// and fails with close code 1009 as soon as it inflates past
    /// [`Config::max_message_size`].
    ///
    /// ```
    /// use armature_ws_core::permessage_deflate::DeflateParams;
    /// use armature_ws_core::{Config, Decoder, Role, WebSocketMessage};
    /// use bytes::BytesMut;
    ///
    /// let params = DeflateParams::default().incoming(Role::Client);
    /// let mut client = Decoder::new(Config::client()).with_deflate(params);
    /// // RFC 7692 §7.2.3.1: "Hello", compressed, in one unmasked frame.
    /// let mut buf = BytesMut::from(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..]);
    /// assert_eq!(client.decode(&mut buf).unwrap(), Some(WebSocketMessage::text("Hello")));
    /// ```
    #[must_use]
    pub fn with_deflate(mut self, incoming: DirectionParams) -> Self {
        self.inflate = Some(incoming);
        self
    }

    /// How the peer's messages are decompressed, if permessage-deflate was negotiated.
    pub fn deflate(&self) -> Option<DirectionParams> {
        self.inflate
    }

    /// Whether the decoder holds a decompressor now (during a compressed message, or between
    /// messages with context takeover).
    pub fn holds_decompressor(&self) -> bool {
        self.decompressor.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a fragmented message is in progress.
    pub fn in_fragmented_message(&self) -> bool {
        matches!(
            self.partial.as_deref(),
            Some(Partial::Text(_) | Partial::Binary(_) | Partial::Compressed { .. })
        )
    }

    /// The code and reason of the peer's close frame, once
    /// [`decode`](Decoder::decode) returned [`WebSocketMessage::Close`]; `None` before, or
    /// when the close frame carried no code.
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        match self.partial.as_deref() {
            Some(Partial::Closed(frame)) => frame.as_ref(),
            _ => None,
        }
    }

    /// Whether the peer's close frame has been decoded.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The error that failed the decoder, if one did.
    pub fn error(&self) -> Option<Error> {
        self.failed.as_deref().copied()
    }

    /// Decodes the next message or control frame from the front of `src`, removing the bytes
    /// it used.
    ///
    /// Returns `Ok(None)` when `src` does not hold a whole frame yet; it then reserves room in
    /// `src` for the rest of the frame it is waiting for. Control frames come out as soon as
    /// they are complete, also between the fragments of a message. Fragments are consumed as
    /// they arrive; text is checked as UTF-8 as its bytes arrive, even before its frame is
    /// complete, so invalid text fails at once with [`Error::InvalidUtf8`]. After an error the
    /// decoder stays failed and returns that error again.
    ///
    /// Bytes left in `src` must be passed back unchanged on the next call (a text frame still
    /// arriving is already partly unmasked in place).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<WebSocketMessage>> {
        if let Some(err) = self.failed.as_deref() {
            return Err(*err);
        }
        loop {
            match self.decode_frame(src) {
                Ok(Step::Message(msg)) => return Ok(Some(msg)),
                Ok(Step::Fragment) => continue,
                Ok(Step::NeedMore) => return Ok(None),
                Err(err) => {
                    self.failed = Some(Box::new(err));
                    self.partial = None;
                    self.decompressor = None;
                    self.scanned = 0;
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
            self.scan_text(&header, src.get_mut(header_len..).unwrap_or_default())?;
            src.reserve(needed - src.len());
            return Ok(Step::NeedMore);
        }
        src.advance(header_len);
        let mut payload = src.split_to(len);
        let scanned = std::mem::take(&mut self.scanned) as usize;
        if let (Some(mask), Some(rest)) = (header.mask, payload.get_mut(scanned..)) {
            apply_mask_offset(rest, mask, scanned);
        }
        if self.is_compressed(&header) {
            return self.inflate_frame(&header, &payload);
        }
        let message = match header.opcode {
            OpCode::Ping => WebSocketMessage::Ping(payload.freeze()),
            OpCode::Pong => WebSocketMessage::Pong(payload.freeze()),
            OpCode::Close => {
                let close = CloseFrame::parse(payload.freeze())?;
                self.closed = true;
                self.partial = Some(Box::new(Partial::Closed(close)));
                WebSocketMessage::Close
            }
            // One check of the whole payload, which also makes the zero-copy `Utf8Bytes`.
            OpCode::Text if header.fin => WebSocketMessage::Text(
                Utf8Bytes::try_from(payload.freeze()).map_err(|_| Error::InvalidUtf8)?,
            ),
            OpCode::Binary if header.fin => WebSocketMessage::Binary(payload.freeze()),
            OpCode::Text => {
                let mut text = TextBuilder::with_capacity(payload.len());
                text.push(&payload).map_err(|_| Error::InvalidUtf8)?;
                self.partial = Some(Box::new(Partial::Text(text)));
                return Ok(Step::Fragment);
            }
            OpCode::Binary => {
                self.partial = Some(Box::new(Partial::Binary(payload)));
                return Ok(Step::Fragment);
            }
            // `check` let a continuation through only with a message in progress.
            OpCode::Continuation => {
                match self.partial.as_deref_mut() {
                    Some(Partial::Text(text)) => {
                        text.push(&payload).map_err(|_| Error::InvalidUtf8)?;
                    }
                    Some(Partial::Binary(data)) => data.unsplit(payload),
                    Some(Partial::Compressed { .. } | Partial::Closed(_)) | None => {
                        return Err(ProtocolError::UnexpectedContinuation.into());
                    }
                }
                if !header.fin {
                    return Ok(Step::Fragment);
                }
                match self.partial.take().map(|partial| *partial) {
                    Some(Partial::Text(text)) => {
                        WebSocketMessage::Text(text.finish().map_err(|_| Error::InvalidUtf8)?)
                    }
                    Some(Partial::Binary(data)) => WebSocketMessage::Binary(data.freeze()),
                    Some(Partial::Compressed { .. } | Partial::Closed(_)) | None => {
                        return Err(ProtocolError::UnexpectedContinuation.into());
                    }
                }
            }
            OpCode::Reserved(op) => return Err(ProtocolError::ReservedOpcode(op).into()),
        };
        Ok(Step::Message(message))
    }

    /// Whether this data frame belongs to a compressed message: a first frame with RSV1 set
    /// (`check` allows it only with permessage-deflate), or a continuation of one.
    fn is_compressed(&self, header: &FrameHeader) -> bool {
        match header.opcode {
            OpCode::Text | OpCode::Binary => header.rsv1,
            OpCode::Continuation => {
                matches!(self.partial.as_deref(), Some(Partial::Compressed { .. }))
            }
            _ => false,
        }
    }

    /// Inflates one frame of a compressed message; the last one yields the message.
    ///
    /// Output is capped at `max_message_size` across the fragments: one byte past it fails
    /// the message with 1009 without inflating the rest. The decompressor is taken from this
    /// thread's pool for the message without context takeover, and given back at its end.
    fn inflate_frame(&mut self, header: &FrameHeader, payload: &[u8]) -> Result<Step> {
        let params = self.inflate.ok_or(ProtocolError::RsvWithoutExtension)?;
        let (text, mut data) = match (header.opcode, self.partial.take().map(|p| *p)) {
            (OpCode::Continuation, Some(Partial::Compressed { text, data })) => (text, data),
            (OpCode::Text, None) => (true, Vec::new()),
            (OpCode::Binary, None) => (false, Vec::new()),
            _ => return Err(ProtocolError::UnexpectedContinuation.into()),
        };
        let mut decompressor = match self.decompressor.take() {
            Some(decompressor) => decompressor,
            None if params.no_context_takeover => Decompressor::pooled(params.window_bits),
            None => Box::new(Decompressor::new(params.window_bits, false)),
        };
        let max = self.config.max_message_size;
        let inflated = decompressor
            .decompress(payload, &mut data, max)
            .and_then(|()| match header.fin {
                true => decompressor.finish(&mut data, max),
                false => Ok(()),
            });
        match inflated {
            Ok(()) => {}
            Err(InflateError::TooBig { max }) => {
                return Err(CapacityError::MessageTooBig {
                    size: max as u64 + 1,
                    max,
                }
                .into());
            }
            Err(_) => return Err(ProtocolError::InvalidCompressedData.into()),
        }
        if !header.fin {
            self.decompressor = Some(decompressor);
            self.partial = Some(Box::new(Partial::Compressed { text, data }));
            return Ok(Step::Fragment);
        }
        if decompressor.no_context_takeover() {
            decompressor.release();
        } else {
            self.decompressor = Some(decompressor);
        }
        if data.capacity() > data.len() + data.len() / 4 + 64 {
            data.shrink_to_fit();
        }
        let data = Bytes::from(data);
        Ok(Step::Message(if text {
            WebSocketMessage::Text(Utf8Bytes::try_from(data).map_err(|_| Error::InvalidUtf8)?)
        } else {
            WebSocketMessage::Binary(data)
        }))
    }

    /// For a text frame whose payload is still arriving (`arrived` is the part in the buffer),
    /// unmasks the newly arrived bytes in place and checks them, so invalid text fails before
    /// the frame is complete. The frame is decoded as usual once it is whole.
    ///
    /// No validator is kept between calls: the check resumes at the last code point boundary
    /// of the bytes already checked, found by looking back at most 3 bytes.
    fn scan_text(&mut self, header: &FrameHeader, arrived: &mut [u8]) -> Result<()> {
        let at_frame_start = match (header.opcode, self.partial.as_deref()) {
            // Compressed text is checked once inflated.
            (OpCode::Text, _) if header.rsv1 => return Ok(()),
            (OpCode::Text, _) => Utf8Validator::new(),
            // The frame may start by finishing a code point cut by the previous fragment.
            (OpCode::Continuation, Some(Partial::Text(text))) => text.validator(),
            _ => return Ok(()),
        };
        let scanned = self.scanned as usize;
        let (Ok(end), Some(new)) = (u32::try_from(arrived.len()), arrived.get_mut(scanned..))
        else {
            return Ok(());
        };
        if new.is_empty() {
            return Ok(());
        }
        if let Some(mask) = header.mask {
            apply_mask_offset(new, mask, scanned);
        }
        // Past the first 3 bytes any code point carried from the previous fragment is done,
        // so a fresh check can resume at a boundary inside this frame.
        let (mut utf8, from) = if scanned <= 3 {
            (at_frame_start, 0)
        } else {
            let checked = arrived.get(..scanned).unwrap_or_default();
            (Utf8Validator::new(), resume_point(checked))
        };
        utf8.feed(arrived.get(from..).unwrap_or_default())
            .map_err(|_| Error::InvalidUtf8)?;
        self.scanned = end;
        Ok(())
    }

    /// Checks everything the header alone tells, returning the payload length.
    fn check(&self, header: &FrameHeader) -> Result<usize> {
        if self.closed {
            return Err(ProtocolError::FrameAfterClose.into());
        }
        if header.rsv2 || header.rsv3 {
            return Err(ProtocolError::RsvWithoutExtension.into());
        }
        if header.rsv1 {
            // RFC 7692 §6: RSV1 marks a compressed message, on its first frame only.
            match (self.inflate.is_some(), header.opcode) {
                (false, _) => return Err(ProtocolError::RsvWithoutExtension.into()),
                (true, OpCode::Text | OpCode::Binary) => {}
                (true, OpCode::Continuation) => {
                    return Err(ProtocolError::CompressedContinuation.into());
                }
                (true, OpCode::Reserved(op)) => {
                    return Err(ProtocolError::ReservedOpcode(op).into());
                }
                (true, _) => return Err(ProtocolError::CompressedControl.into()),
            }
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
            match (header.opcode, self.in_fragmented_message()) {
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
        // A compressed message's size is known only as it inflates; `inflate_frame` caps it.
        if header.opcode.is_data() && !self.is_compressed(header) {
            let so_far = self.partial.as_ref().map_or(0, |p| p.len());
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

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decoder_stream_tests.rs"]
mod stream_tests;

#[cfg(test)]
#[path = "decoder_deflate_tests.rs"]
mod deflate_tests;
