//! The inbox: messages the connection task has read from the socket and the handler has not
//! taken yet. Small and bounded: when it is full the connection stops reading (the client
//! meets TCP back-pressure), so a client cannot grow the server's memory by sending to a
//! handler that does not read.

use std::collections::VecDeque;

use armature_ws_core::{CloseFrame, WebSocketMessage};

use crate::Error;

/// The inbox bound, copied from the config (as `u32`s, saturated: every connection keeps
/// a copy, and no sane bound needs more).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InboxLimits {
    /// Most messages waiting.
    pub(crate) messages: u32,
    /// Most payload bytes waiting (one larger message still fits an empty inbox).
    pub(crate) bytes: u32,
}

/// What [`Inbox::offer`] did with a message.
#[derive(Debug)]
pub(crate) enum Offer {
    /// Queued for the handler.
    Queued,
    /// A ping or pong not queued because the inbox is full (the connection has handled it;
    /// only the handler does not see it).
    Skipped,
    /// A text or binary message that does not fit: handed back; reading must pause.
    Full(WebSocketMessage),
}

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    messages: VecDeque<WebSocketMessage>,
    bytes: usize,
    /// Handed to the reader once, before the end.
    error: Option<Box<Error>>,
    /// No more messages will come.
    ended: bool,
    /// The close frame the peer sent (`Some(None)`: a close without a code).
    peer_close: Option<Box<Option<CloseFrame>>>,
}

impl Inbox {
    /// True when a text or binary message would not be taken now.
    pub(crate) fn is_full(&self, limits: &InboxLimits) -> bool {
        !self.messages.is_empty()
            && (self.messages.len() >= limits.messages as usize
                || self.bytes >= limits.bytes as usize)
    }

    /// Queues `message` if it fits. A close always fits (nothing is read after it).
    pub(crate) fn offer(&mut self, message: WebSocketMessage, limits: &InboxLimits) -> Offer {
        if self.is_full(limits) {
            match message {
                WebSocketMessage::Ping(_) | WebSocketMessage::Pong(_) => return Offer::Skipped,
                WebSocketMessage::Text(_) | WebSocketMessage::Binary(_) => {
                    return Offer::Full(message);
                }
                WebSocketMessage::Close => {}
            }
        }
        self.bytes += message.len();
        self.messages.push_back(message);
        Offer::Queued
    }

    /// The next item for the reader: a message, then the error (once).
    pub(crate) fn take(&mut self) -> Option<crate::Result<WebSocketMessage>> {
        if let Some(message) = self.messages.pop_front() {
            self.bytes -= message.len().min(self.bytes);
            if self.messages.is_empty() {
                self.bytes = 0;
                if self.messages.capacity() > 8 {
                    self.messages = VecDeque::new();
                }
            }
            return Some(Ok(message));
        }
        self.error.take().map(|err| Err(*err))
    }

    /// No more messages will come; `error` is handed to the reader after the last one.
    pub(crate) fn end(&mut self, error: Option<Error>) {
        if !self.ended {
            self.ended = true;
            self.error = error.map(Box::new);
        }
    }

    /// True when it holds nothing and has not ended (nothing in it matters).
    pub(crate) fn is_idle(&self) -> bool {
        !self.ended && self.messages.is_empty() && self.peer_close.is_none()
    }

    /// True once ended and empty.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended && self.messages.is_empty() && self.error.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_deref().and_then(Option::as_ref)
    }

    pub(crate) fn set_peer_close(&mut self, frame: Option<CloseFrame>) {
        if self.peer_close.is_none() {
            self.peer_close = Some(Box::new(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: InboxLimits = InboxLimits {
        messages: 2,
        bytes: 1000,
    };

    #[test]
    fn full_inbox_hands_data_back_and_skips_control() {
        let mut inbox = Inbox::default();
        assert!(matches!(
            inbox.offer(WebSocketMessage::text("a"), &LIMITS),
            Offer::Queued
        ));
        assert!(matches!(
            inbox.offer(WebSocketMessage::text("b"), &LIMITS),
            Offer::Queued
        ));
        assert!(inbox.is_full(&LIMITS));
        assert!(matches!(
            inbox.offer(WebSocketMessage::text("c"), &LIMITS),
            Offer::Full(_)
        ));
        assert!(matches!(
            inbox.offer(WebSocketMessage::ping(bytes::Bytes::new()), &LIMITS),
            Offer::Skipped
        ));
        assert_eq!(inbox.len(), 2);
        assert_eq!(inbox.take().unwrap().unwrap(), WebSocketMessage::text("a"));
        assert!(!inbox.is_full(&LIMITS));
    }

    #[test]
    fn one_large_message_fits_an_empty_inbox() {
        let mut inbox = Inbox::default();
        let big = WebSocketMessage::binary(vec![0u8; 5000]);
        assert!(matches!(inbox.offer(big, &LIMITS), Offer::Queued));
        assert!(inbox.is_full(&LIMITS));
        assert_eq!(inbox.bytes(), 5000);
    }

    #[test]
    fn error_comes_once_after_the_messages() {
        let mut inbox = Inbox::default();
        inbox.offer(WebSocketMessage::text("a"), &LIMITS);
        inbox.end(Some(Error::Closed));
        assert!(!inbox.is_ended());
        assert!(inbox.take().unwrap().is_ok());
        assert!(inbox.take().unwrap().is_err());
        assert!(inbox.take().is_none());
        assert!(inbox.is_ended());
    }
}
