//! The guide's `ServerSentEvent` and its spec-exact encoding into `Bytes`.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::Error;

/// The comment every keep-alive sends: `: keep-alive` and a blank line. Parsers ignore it;
/// it keeps proxies and load balancers from closing an idle stream.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One Server-Sent Event, as the guide shows it.
///
/// Build one with [`ServerSentEvent::new`], [`ServerSentEvent::with_event`],
/// [`ServerSentEvent::full`] or a struct literal with `..Default::default()`, then turn it into
/// wire bytes once with [`ServerSentEvent::encode`].
///
/// The rules are those of the WHATWG HTML standard, section "Server-sent events",
/// "Interpreting an event stream":
///
/// - `data` is split at every line break (`\r\n`, `\r` or `\n`); each piece becomes one
///   `data: ` line. A parser joins the pieces with `\n`, so the text arrives unchanged except
///   that every line break is a `\n`. Empty pieces, a leading space (the one space after the
///   colon is the one the parser strips) and non-ASCII text survive.
/// - `event` and `id` are single-line fields: a line break in either (or a NUL in `id`, which
///   a parser would ignore) is refused with [`Error::Validation`] rather than written as a
///   corrupt stream.
/// - `retry` is written as a decimal integer of milliseconds.
/// - every event ends with a blank line.
///
/// An event with empty `data`, no `event` type and an `id` or a `retry` is written without a
/// `data` line: it only sets the client's last event id or reconnection time, and a browser
/// dispatches nothing. Any other event carries at least one `data` line (an empty `data`
/// then arrives as an empty message).
///
/// ```
/// use armature_sse::ServerSentEvent;
///
/// let event = ServerSentEvent::full(
///     "123".to_string(),
///     "notification".to_string(),
///     "You have\nmail".to_string(),
///     5000,
/// );
/// assert_eq!(
///     &event.encode()?[..],
///     b"id: 123\nevent: notification\nretry: 5000\ndata: You have\ndata: mail\n\n"
/// );
/// # Ok::<(), armature_sse::Error>(())
/// ```
///
/// ```
/// use armature_sse::ServerSentEvent;
///
/// let event = ServerSentEvent {
///     retry: Some(5000), // 5 seconds
///     ..Default::default()
/// };
/// assert_eq!(&event.encode()?[..], b"retry: 5000\n\n");
/// # Ok::<(), armature_sse::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSentEvent {
    /// The event id (`id:` field); the client sends the last one back as `Last-Event-ID`
    /// when it reconnects. Must not contain `\r`, `\n` or NUL.
    pub id: Option<String>,
    /// The event type (`event:` field); `None` means the default type, `message`.
    /// Must not contain `\r` or `\n`.
    pub event: Option<String>,
    /// The payload (`data:` lines). Any text; line breaks become separate `data:` lines.
    pub data: String,
    /// The reconnection time the client should use, in milliseconds (`retry:` field).
    pub retry: Option<u64>,
}

impl ServerSentEvent {
    /// A plain message: `data` only, delivered as the default `message` event.
    pub fn new(data: String) -> Self {
        ServerSentEvent {
            data,
            ..Default::default()
        }
    }

    /// A typed event: `event` names the type a client listens for
    /// (`addEventListener(event, ..)` in a browser).
    pub fn with_event(event: String, data: String) -> Self {
        ServerSentEvent {
            event: Some(event),
            data,
            ..Default::default()
        }
    }

    /// An event with every field set: id, type, data and reconnection time in milliseconds.
    pub fn full(id: String, event: String, data: String, retry: u64) -> Self {
        ServerSentEvent {
            id: Some(id),
            event: Some(event),
            data,
            retry: Some(retry),
        }
    }

    /// A plain message whose data is `value` as JSON.
    ///
    /// # Errors
    /// [`Error::Serialization`] when `value` cannot be written as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Ok(ServerSentEvent::new(serde_json::to_string(value)?))
    }

    /// Sets the id (chainable).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the event type (chainable).
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the reconnection time in milliseconds (chainable).
    pub fn retry(mut self, retry_ms: u64) -> Self {
        self.retry = Some(retry_ms);
        self
    }

    /// Checks the single-line fields without encoding.
    ///
    /// # Errors
    /// [`Error::Validation`] when `event` contains a line break, or `id` contains a line
    /// break or NUL.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(event) = &self.event {
            if event.contains(['\r', '\n']) {
                return Err(Error::Validation(
                    "sse event type must not contain a line break".into(),
                ));
            }
        }
        if let Some(id) = &self.id {
            if id.contains(['\r', '\n', '\0']) {
                return Err(Error::Validation(
                    "sse event id must not contain a line break or NUL".into(),
                ));
            }
        }
        Ok(())
    }

    /// Encodes the event into its wire bytes, once; clone the `Bytes` to share them.
    ///
    /// # Errors
    /// [`Error::Validation`] as for [`ServerSentEvent::validate`].
    pub fn encode(&self) -> Result<Bytes, Error> {
        self.encode_with_id(None)
    }

    /// Encodes the event, writing `id` instead of `self.id` when `self.id` is `None` (used by
    /// a broadcaster that numbers events itself).
    pub(crate) fn encode_with_id(&self, auto_id: Option<&str>) -> Result<Bytes, Error> {
        self.validate()?;
        let mut buf = BytesMut::with_capacity(self.encoded_len_hint());
        if let Some(id) = &self.id {
            put_field(&mut buf, b"id", id.as_bytes());
        } else if let Some(id) = auto_id {
            put_field(&mut buf, b"id", id.as_bytes());
        }
        if let Some(event) = &self.event {
            put_field(&mut buf, b"event", event.as_bytes());
        }
        if let Some(retry) = self.retry {
            put_field(&mut buf, b"retry", retry.to_string().as_bytes());
        }
        let control_only = self.data.is_empty()
            && self.event.is_none()
            && (self.id.is_some() || auto_id.is_some() || self.retry.is_some());
        if !control_only {
            for line in Lines::new(&self.data) {
                put_field(&mut buf, b"data", line.as_bytes());
            }
        }
        buf.put_u8(b'\n');
        Ok(buf.freeze())
    }

    fn encoded_len_hint(&self) -> usize {
        // "data: " + "\n" per line; a line count is not worth a pass over the data.
        self.data.len()
            + 8
            + self.id.as_ref().map_or(0, |s| s.len() + 5)
            + self.event.as_ref().map_or(0, |s| s.len() + 8)
            + self.retry.map_or(0, |_| 28)
            + 1
    }
}

/// Encodes a comment (lines starting with `:`), which every parser ignores. Each line of
/// `text` becomes one `: ` line; a blank line ends the block.
///
/// ```
/// assert_eq!(&armature_sse::encode_comment("hi\nthere")[..], b": hi\n: there\n\n");
/// ```
pub fn encode_comment(text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + 4);
    for line in Lines::new(text) {
        buf.put_slice(b": ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

fn put_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Splits text at `\r\n`, `\r` and `\n`, as the spec's line rules do; always yields at least
/// one (possibly empty) line, and an empty last line after a trailing break.
struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { rest: Some(text) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.find(['\r', '\n']) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(at) => {
                let line = &rest[..at];
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                self.rest = Some(&rest[at + skip..]);
                Some(line)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(event: &ServerSentEvent) -> Vec<u8> {
        event.encode().unwrap().to_vec()
    }

    #[test]
    fn plain_message() {
        assert_eq!(
            enc(&ServerSentEvent::new("Hello".into())),
            b"data: Hello\n\n"
        );
    }

    #[test]
    fn typed_event() {
        let e = ServerSentEvent::with_event("user_joined".into(), "Alice joined".into());
        assert_eq!(enc(&e), b"event: user_joined\ndata: Alice joined\n\n");
    }

    #[test]
    fn every_line_break_starts_a_data_line() {
        let e = ServerSentEvent::new("a\nb\r\nc\rd".into());
        assert_eq!(enc(&e), b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn cr_then_lf_separately_is_one_break_but_lf_cr_is_two() {
        assert_eq!(
            enc(&ServerSentEvent::new("a\n\rb".into())),
            b"data: a\ndata: \ndata: b\n\n"
        );
    }

    #[test]
    fn empty_lines_survive() {
        let e = ServerSentEvent::new("a\n\nb".into());
        assert_eq!(enc(&e), b"data: a\ndata: \ndata: b\n\n");
    }

    #[test]
    fn leading_space_is_kept_after_the_one_separator_space() {
        let e = ServerSentEvent::new("  two spaces".into());
        assert_eq!(enc(&e), b"data:   two spaces\n\n");
    }

    #[test]
    fn trailing_newline_becomes_an_empty_last_line() {
        let e = ServerSentEvent::new("end\n".into());
        assert_eq!(enc(&e), b"data: end\ndata: \n\n");
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(enc(&ServerSentEvent::new(String::new())), b"data: \n\n");
    }

    #[test]
    fn non_ascii_is_written_as_utf8() {
        let e = ServerSentEvent::new("héllo — 日本 🎉".into());
        assert_eq!(enc(&e), "data: héllo — 日本 🎉\n\n".as_bytes());
    }

    #[test]
    fn colons_in_data_need_no_escape() {
        let e = ServerSentEvent::new(": not a comment: x".into());
        assert_eq!(enc(&e), b"data: : not a comment: x\n\n");
    }

    #[test]
    fn full_event_field_order() {
        let e = ServerSentEvent::full("123".into(), "notification".into(), "mail".into(), 5000);
        assert_eq!(
            enc(&e),
            b"id: 123\nevent: notification\nretry: 5000\ndata: mail\n\n"
        );
    }

    #[test]
    fn retry_only_has_no_data_line() {
        let e = ServerSentEvent {
            retry: Some(5000),
            ..Default::default()
        };
        assert_eq!(enc(&e), b"retry: 5000\n\n");
    }

    #[test]
    fn id_only_has_no_data_line() {
        assert_eq!(enc(&ServerSentEvent::default().id("7")), b"id: 7\n\n");
    }

    #[test]
    fn typed_event_with_empty_data_keeps_a_data_line() {
        assert_eq!(
            enc(&ServerSentEvent::with_event("ping".into(), String::new())),
            b"event: ping\ndata: \n\n"
        );
    }

    #[test]
    fn empty_id_resets_the_last_event_id() {
        let e = ServerSentEvent::new("x".into()).id("");
        assert_eq!(enc(&e), b"id: \ndata: x\n\n");
    }

    #[test]
    fn auto_id_is_used_only_without_an_own_id() {
        let e = ServerSentEvent::new("x".into());
        assert_eq!(
            &e.encode_with_id(Some("42")).unwrap()[..],
            b"id: 42\ndata: x\n\n"
        );
        let e = e.id("own");
        assert_eq!(
            &e.encode_with_id(Some("42")).unwrap()[..],
            b"id: own\ndata: x\n\n"
        );
    }

    #[test]
    fn event_with_line_break_is_refused() {
        for bad in ["a\nb", "a\rb", "a\r\n", "\n"] {
            let err = ServerSentEvent::with_event(bad.into(), "x".into())
                .encode()
                .unwrap_err();
            assert!(err.is_validation(), "{bad:?}: {err}");
        }
    }

    #[test]
    fn id_with_line_break_or_nul_is_refused() {
        for bad in ["1\n", "1\r", "\r\n", "a\0b"] {
            let err = ServerSentEvent::new("x".into())
                .id(bad)
                .encode()
                .unwrap_err();
            assert!(err.is_validation(), "{bad:?}: {err}");
        }
    }

    #[test]
    fn data_may_contain_nul() {
        assert_eq!(enc(&ServerSentEvent::new("a\0b".into())), b"data: a\0b\n\n");
    }

    #[test]
    fn json_event() {
        let e =
            ServerSentEvent::json(&serde_json::json!({"symbol": "AAPL", "price": 150.0})).unwrap();
        assert_eq!(
            enc(&e),
            br#"data: {"price":150.0,"symbol":"AAPL"}"#
                .iter()
                .chain(b"\n\n")
                .copied()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn comments() {
        assert_eq!(&encode_comment("")[..], b": \n\n");
        assert_eq!(&encode_comment("a\r\nb")[..], b": a\n: b\n\n");
        assert_eq!(KEEP_ALIVE, b": keep-alive\n\n");
    }

    #[test]
    fn lines_iterator() {
        let v: Vec<_> = Lines::new("").collect();
        assert_eq!(v, [""]);
        let v: Vec<_> = Lines::new("\r\n\r").collect();
        assert_eq!(v, ["", "", ""]);
    }
}
