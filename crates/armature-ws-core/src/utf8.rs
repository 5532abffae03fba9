//! `Utf8Bytes`, a cheaply clonable UTF-8 string over [`Bytes`], and the incremental validator
//! that checks fragmented text as each fragment arrives.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

/// A string whose storage is [`Bytes`]: guaranteed UTF-8, cloned by bumping a reference count.
///
/// Text messages carry their payload this way, so a received message is not copied and an
/// outgoing text can be shared by every recipient.
///
/// ```
/// use armature_ws_core::Utf8Bytes;
/// use bytes::Bytes;
///
/// let hello = Utf8Bytes::from_static("hello");
/// assert_eq!(hello, "hello");
/// assert_eq!(hello.len(), 5); // through `Deref<Target = str>`
/// let shared = hello.clone(); // no copy
/// assert_eq!(shared.as_str(), "hello");
///
/// assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
/// let owned: String = Utf8Bytes::from("x").into();
/// assert_eq!(owned, "x");
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(ByteString);

/// The error of `Utf8Bytes::try_from(Bytes)`: the bytes were not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid utf-8")]
pub struct InvalidUtf8;

impl Utf8Bytes {
    /// A string over static memory; no allocation.
    pub const fn from_static(s: &'static str) -> Self {
        Self(ByteString::from_static(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The underlying [`Bytes`] (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(ByteString::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(ByteString::from(s))
    }
}

impl From<&String> for Utf8Bytes {
    fn from(s: &String) -> Self {
        Self(ByteString::from(s.as_str()))
    }
}

impl From<Utf8Bytes> for String {
    fn from(s: Utf8Bytes) -> Self {
        s.as_str().to_owned()
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.into_bytes()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = InvalidUtf8;

    /// Validates the bytes; no copy.
    fn try_from(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        ByteString::try_from(bytes)
            .map(Self)
            .map_err(|_| InvalidUtf8)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = InvalidUtf8;

    fn try_from(bytes: Vec<u8>) -> Result<Self, InvalidUtf8> {
        Self::try_from(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Validates UTF-8 that arrives in pieces (the fragments of a text message).
///
/// Each piece is checked in bulk with SIMD; only a code point cut by a piece boundary (at most
/// 3 bytes) is carried over to the next piece. An invalid byte is reported by the
/// [`feed`](Utf8Validator::feed) call that brings it, not at the end of the message.
///
/// ```
/// use armature_ws_core::Utf8Validator;
///
/// let mut v = Utf8Validator::new();
/// // "é" is C3 A9: cut in two across fragments, still valid.
/// v.feed(b"caf\xC3").unwrap();
/// v.feed(b"\xA9").unwrap();
/// v.finish().unwrap();
///
/// let mut v = Utf8Validator::new();
/// v.feed(b"ok").unwrap();
/// assert!(v.feed(b"\xFF").is_err()); // fails on the fragment that carries the bad byte
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of a code point cut off at the end of the last piece.
    tail: [u8; 3],
    tail_len: u8,
}

/// The length of the UTF-8 sequence that `first` starts, or 0 when it cannot start one.
fn sequence_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// Where a check of text that continues `checked` (bytes already found valid, except for a
/// code point cut at their end) can resume with a fresh [`Utf8Validator`]: the start of that
/// cut code point, or the end. Looks back at most 3 bytes.
pub(crate) fn resume_point(checked: &[u8]) -> usize {
    incomplete_suffix_start(checked)
}

/// Where a code point cut by the end of `input` starts (`input.len()` when none is cut).
///
/// Looks back at most 3 bytes for the lead byte; whether the bytes are valid is left to the
/// caller's check.
fn incomplete_suffix_start(input: &[u8]) -> usize {
    let len = input.len();
    for (i, &byte) in input.iter().enumerate().rev().take(3) {
        if byte & 0xC0 != 0x80 {
            // A lead (or ASCII) byte: cut when its sequence runs past the end.
            return if sequence_len(byte) > len - i { i } else { len };
        }
    }
    len
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Self {
            tail: [0; 3],
            tail_len: 0,
        }
    }

    /// Checks the next piece. On error the text is invalid whatever follows.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), InvalidUtf8> {
        self.feed_with(input, |_| {})
    }

    /// Like [`feed`](Self::feed), handing every checked run of whole code points to `sink`,
    /// so a caller can collect the text with a single check of each byte.
    pub(crate) fn feed_with(
        &mut self,
        mut input: &[u8],
        mut sink: impl FnMut(&str),
    ) -> Result<(), InvalidUtf8> {
        if self.tail_len > 0 {
            let tail_len = usize::from(self.tail_len);
            let need = sequence_len(self.tail[0]).saturating_sub(tail_len);
            let take = need.min(input.len());
            let mut buf = [0u8; 4];
            buf[..tail_len].copy_from_slice(&self.tail[..tail_len]);
            buf[tail_len..tail_len + take].copy_from_slice(&input[..take]);
            let joined = &buf[..tail_len + take];
            if take < need {
                // Still incomplete: it must at least be a valid prefix.
                return self.keep_tail(joined);
            }
            sink(std::str::from_utf8(joined).map_err(|_| InvalidUtf8)?);
            self.tail_len = 0;
            input = &input[take..];
        }
        // Split off a code point cut by the end of the piece first, so the whole code points
        // are checked once, in bulk, and come out as a `&str`.
        let (whole, cut) = input.split_at(incomplete_suffix_start(input));
        let text = simdutf8::basic::from_utf8(whole).map_err(|_| InvalidUtf8)?;
        if !text.is_empty() {
            sink(text);
        }
        if cut.is_empty() {
            Ok(())
        } else {
            self.keep_tail(cut)
        }
    }

    /// Keeps `start` (1 to 3 bytes) as the start of a cut code point, if it can start one.
    fn keep_tail(&mut self, start: &[u8]) -> Result<(), InvalidUtf8> {
        match simdutf8::compat::from_utf8(start) {
            Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 && start.len() <= 3 => {
                self.tail[..start.len()].copy_from_slice(start);
                self.tail_len = start.len() as u8;
                Ok(())
            }
            _ => Err(InvalidUtf8),
        }
    }

    /// Whether a code point is cut at the end of what was fed so far.
    pub fn is_incomplete(&self) -> bool {
        self.tail_len > 0
    }

    /// Ends the text: an unfinished code point at the end is an error.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.is_incomplete() {
            Err(InvalidUtf8)
        } else {
            Ok(())
        }
    }
}

/// The text of a fragmented message being assembled: the whole code points so far in a
/// `String`, and a code point cut by the last fragment's end in the validator.
///
/// Each fragment is checked once, as it is appended, and the finished `String` becomes the
/// message's [`Utf8Bytes`] without a second check and without a copy.
#[derive(Debug, Default)]
pub(crate) struct TextBuilder {
    text: String,
    utf8: Utf8Validator,
}

impl TextBuilder {
    /// An empty text with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            text: String::with_capacity(capacity),
            utf8: Utf8Validator::new(),
        }
    }

    /// Checks and appends the next fragment's payload.
    pub(crate) fn push(&mut self, fragment: &[u8]) -> Result<(), InvalidUtf8> {
        let Self { text, utf8 } = self;
        utf8.feed_with(fragment, |s| text.push_str(s))
    }

    /// The bytes appended so far.
    pub(crate) fn len(&self) -> usize {
        self.text.len() + usize::from(self.utf8.tail_len)
    }

    /// The validator's state at the end of what was appended, to check a fragment whose
    /// bytes are still arriving.
    pub(crate) fn validator(&self) -> Utf8Validator {
        self.utf8
    }

    /// The whole text; an error when it ends inside a code point.
    pub(crate) fn finish(self) -> Result<Utf8Bytes, InvalidUtf8> {
        self.utf8.finish()?;
        Ok(Utf8Bytes::from(self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn utf8_bytes_basics() {
        let s = Utf8Bytes::from(String::from("héllo"));
        assert_eq!(s, "héllo");
        assert_eq!(s.as_bytes(), "héllo".as_bytes());
        assert_eq!(format!("{s}"), "héllo");
        assert_eq!(format!("{s:?}"), "\"héllo\"");
        assert_eq!(Utf8Bytes::default(), "");
        let b = s.clone().into_bytes();
        assert_eq!(&b[..], "héllo".as_bytes());
        assert_eq!(Utf8Bytes::try_from(b).unwrap(), s);
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static(b"a\xC3")),
            Err(InvalidUtf8)
        );
        let (a, b) = (Utf8Bytes::from("a"), Utf8Bytes::from("b"));
        assert!(a < b);
    }

    #[test]
    fn code_points_split_at_every_position() {
        let text = "aé€😀z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(
                    feed_all(&[&text[..i], &text[i..j], &text[j..]]),
                    Ok(()),
                    "split at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let text = "€😀é".as_bytes();
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(feed_all(&pieces), Ok(()));
    }

    #[test]
    fn invalid_byte_fails_on_its_piece() {
        let mut v = Utf8Validator::new();
        v.feed("hello".as_bytes()).unwrap();
        assert_eq!(v.feed(b"\xC0\xAF"), Err(InvalidUtf8));
    }

    #[test]
    fn invalid_continuation_of_a_cut_code_point_fails_early() {
        // E0 80 is an overlong prefix: invalid before the third byte arrives.
        let mut v = Utf8Validator::new();
        v.feed(b"\xE0").unwrap();
        assert_eq!(v.feed(b"\x80"), Err(InvalidUtf8));
        // F4 90 is above U+10FFFF.
        let mut v = Utf8Validator::new();
        v.feed(b"\xF4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // ED A0 starts a surrogate.
        let mut v = Utf8Validator::new();
        v.feed(b"\xED").unwrap();
        assert_eq!(v.feed(b"\xA0"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_text_fails_at_finish() {
        let mut v = Utf8Validator::new();
        v.feed(b"ab\xE2\x82").unwrap();
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn feed_with_hands_out_each_byte_once() {
        let text = "aé€😀z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let mut b = TextBuilder::with_capacity(0);
                for piece in [&text[..i], &text[i..j], &text[j..]] {
                    b.push(piece).unwrap();
                }
                assert_eq!(b.len(), text.len());
                assert_eq!(b.finish().unwrap(), "aé€😀z", "split at {i},{j}");
            }
        }
    }

    #[test]
    fn text_builder_refuses_what_the_validator_refuses() {
        let mut b = TextBuilder::default();
        b.push(b"ok \xE2\x82").unwrap();
        assert_eq!(b.len(), 5);
        assert!(b.validator().is_incomplete());
        assert_eq!(b.push(b"\x41"), Err(InvalidUtf8));

        let mut b = TextBuilder::default();
        b.push(b"\xF0\x9F").unwrap();
        assert_eq!(b.finish(), Err(InvalidUtf8));

        let mut b = TextBuilder::default();
        assert_eq!(b.push(b"abc\xE0\x80"), Err(InvalidUtf8)); // overlong prefix at the end
    }

    #[test]
    fn a_bad_lead_byte_at_the_end_is_refused() {
        for bad in [&b"abc\xFF"[..], b"\x80", b"ab\xC0", b"\xF5\x80\x80"] {
            assert_eq!(Utf8Validator::new().feed(bad), Err(InvalidUtf8), "{bad:?}");
        }
    }

    #[test]
    fn empty_pieces_change_nothing() {
        assert_eq!(
            feed_all(&[b"", b"\xE2", b"", b"\x82", b"", b"\xAC"]),
            Ok(())
        );
    }
}
