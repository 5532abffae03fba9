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

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Self {
            tail: [0; 3],
            tail_len: 0,
        }
    }

    /// Checks the next piece. On error the text is invalid whatever follows.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.tail_len > 0 {
            let tail_len = usize::from(self.tail_len);
            let width = sequence_len(self.tail[0]);
            let need = width.saturating_sub(tail_len);
            let take = need.min(input.len());
            let mut buf = [0u8; 4];
            buf[..tail_len].copy_from_slice(&self.tail[..tail_len]);
            buf[tail_len..tail_len + take].copy_from_slice(&input[..take]);
            let joined = &buf[..tail_len + take];
            if take < need {
                // Still incomplete: it must at least be a valid prefix.
                return match simdutf8::compat::from_utf8(joined) {
                    Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => {
                        self.tail[..joined.len()].copy_from_slice(joined);
                        self.tail_len = joined.len() as u8;
                        Ok(())
                    }
                    _ => Err(InvalidUtf8),
                };
            }
            if std::str::from_utf8(joined).is_err() {
                return Err(InvalidUtf8);
            }
            self.tail_len = 0;
            input = &input[take..];
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &input[e.valid_up_to()..];
                self.tail[..rest.len()].copy_from_slice(rest);
                self.tail_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
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
    fn empty_pieces_change_nothing() {
        assert_eq!(
            feed_all(&[b"", b"\xE2", b"", b"\x82", b"", b"\xAC"]),
            Ok(())
        );
    }
}
