//! [`HandlerOutcome`]: what a WebSocket handler returns, and the close code it leads to.

use std::fmt;

use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes};

/// The most reason bytes a close frame carries (125 bytes of payload minus the code).
pub(crate) const MAX_CLOSE_REASON: usize = 123;

/// What a handler given to [`WebSocketUpgrade::on_upgrade`](crate::WebSocketUpgrade::on_upgrade)
/// may return: `()` or `Result<(), E>` for any displayable `E` (such as
/// [`armature_ws::Error`](crate::Error)).
///
/// The outcome decides how the connection closes, unless it is closed already:
///
/// | outcome | close code | logged |
/// | --- | --- | --- |
/// | `()`, `Ok(())` | 1000 (normal), once every [`WebSocket`](crate::WebSocket) value of the connection is dropped | no |
/// | `Err(e)` | 1011 (internal error), reason `e.to_string()` cut to 123 bytes at a character boundary | `warn` |
/// | a panic | 1011, reason `"handler panicked"`; the panic is contained, the server keeps serving | `warn` |
///
/// ```no_run
/// use armature_ws::{Error, WebSocket, WebSocketMessage};
///
/// async fn handler(mut socket: WebSocket) -> Result<(), Error> {
///     while let Some(message) = socket.recv().await {
///         if let WebSocketMessage::Text(text) = message? {
///             if text.is_empty() {
///                 return Err(Error::Validation("empty message".into())); // 1011
///             }
///             socket.send_text(text).await?;
///         }
///     }
///     Ok(()) // 1000
/// }
/// ```
pub trait HandlerOutcome: Send + 'static {
    /// `None` for success; otherwise the failure, as the text logged and sent as the close
    /// reason.
    fn failure(self) -> Option<String>;
}

impl HandlerOutcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display + Send + 'static> HandlerOutcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|err| err.to_string())
    }
}

/// A close frame with code 1011 and `reason` cut to what a close frame can carry, at a
/// character boundary.
pub(crate) fn internal_error_close(reason: &str) -> CloseFrame {
    CloseFrame::new(
        CloseCode::Error,
        Utf8Bytes::from(truncate_reason(reason).to_owned()),
    )
}

/// `reason` cut to [`MAX_CLOSE_REASON`] bytes at a character boundary.
pub(crate) fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default()
}

/// The text of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&long);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
        let ascii = "a".repeat(300);
        assert_eq!(truncate_reason(&ascii).len(), 123);
        let frame = internal_error_close(&long);
        assert_eq!(frame.code, CloseCode::Error);
        assert_eq!(frame.reason.len(), 122);
    }

    #[test]
    fn outcomes() {
        assert_eq!(().failure(), None);
        assert_eq!(Ok::<(), String>(()).failure(), None);
        assert_eq!(
            Err::<(), _>(crate::Error::Internal("db down".into())).failure(),
            Some(crate::Error::Internal("db down".into()).to_string())
        );
    }
}
