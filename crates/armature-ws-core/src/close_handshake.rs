//! The closing handshake (RFC 6455 §5.5.1, §7): who closed first, what to answer, and when
//! the TCP connection may go.

use crate::close::{CloseCode, CloseFrame};

/// Where a connection stands in the closing handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseState {
    /// No close frame sent or received.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// The peer sent a close frame and we have not answered yet.
    CloseReceived,
    /// Close frames went both ways; the connection may be dropped.
    Closed,
}

/// Which side started the closing handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// We sent the first close frame.
    Local,
    /// The peer sent the first close frame.
    Remote,
}

/// The state machine of the closing handshake.
///
/// Feed it every close frame received ([`on_close_received`](CloseHandshake::on_close_received))
/// and sent ([`on_close_sent`](CloseHandshake::on_close_sent)). When the peer closes first it
/// gives the close frame to answer with; once both have crossed, [`may_drop`](CloseHandshake::may_drop)
/// says the TCP connection may be closed (a server closes it first, RFC 6455 §7.1.1).
///
/// ```
/// use armature_ws_core::{CloseCode, CloseFrame, CloseHandshake, CloseState, Initiator};
///
/// // The peer closes first with 1001: we echo its code, and may then drop the connection.
/// let mut close = CloseHandshake::new();
/// let reply = close.on_close_received(Some(CloseFrame::new(CloseCode::Away, "bye")));
/// assert_eq!(reply, Some(CloseFrame::new(CloseCode::Away, "")));
/// assert_eq!(close.state(), CloseState::CloseReceived);
/// assert!(!close.may_drop());
/// assert!(close.on_close_sent(reply)); // … after writing the reply
/// assert_eq!(close.state(), CloseState::Closed);
/// assert_eq!(close.closed_by(), Some(Initiator::Remote));
/// assert!(close.may_drop());
///
/// // We close first: nothing to answer when the peer's close arrives.
/// let mut close = CloseHandshake::new();
/// assert!(close.on_close_sent(Some(CloseFrame::new(CloseCode::Normal, "done"))));
/// assert_eq!(close.state(), CloseState::CloseSent);
/// assert!(!close.may_drop());
/// assert_eq!(close.on_close_received(None), None);
/// assert!(close.may_drop());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseHandshake {
    /// The close we sent: `None` if none yet, `Some(None)` for a close without a code.
    sent: Option<Option<CloseFrame>>,
    /// The close we received, the same way.
    received: Option<Option<CloseFrame>>,
    initiator: Option<Initiator>,
}

impl CloseHandshake {
    /// A connection that is open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the handshake stands.
    pub fn state(&self) -> CloseState {
        match (self.sent.is_some(), self.received.is_some()) {
            (false, false) => CloseState::Open,
            (true, false) => CloseState::CloseSent,
            (false, true) => CloseState::CloseReceived,
            (true, true) => CloseState::Closed,
        }
    }

    /// Records a close frame from the peer and returns the close frame to answer with, or
    /// `None` when we already sent ours (or this is a repeated close).
    ///
    /// The answer echoes the peer's code (RFC 6455 §5.5.1), or is 1000 when the peer's close
    /// carried none; its reason is empty. The state is then [`CloseState::CloseReceived`] until
    /// the caller sends the answer (or another close) and reports it with
    /// [`on_close_sent`](CloseHandshake::on_close_sent).
    pub fn on_close_received(&mut self, frame: Option<CloseFrame>) -> Option<CloseFrame> {
        if self.received.is_some() {
            return None;
        }
        let code = frame.as_ref().map_or(CloseCode::Normal, |f| f.code);
        self.received = Some(frame);
        self.initiator.get_or_insert(Initiator::Remote);
        if self.sent.is_some() {
            return None;
        }
        Some(CloseFrame::new(code, ""))
    }

    /// Records that we are sending a close frame. Returns `false` when a close was already
    /// sent: an endpoint sends at most one, so the caller should not send this one.
    pub fn on_close_sent(&mut self, frame: Option<CloseFrame>) -> bool {
        if self.sent.is_some() {
            return false;
        }
        self.sent = Some(frame);
        self.initiator.get_or_insert(Initiator::Local);
        true
    }

    /// Which side closed first, once one has.
    pub fn closed_by(&self) -> Option<Initiator> {
        self.initiator
    }

    /// Whether close frames have gone both ways, so the TCP connection may be dropped.
    pub fn may_drop(&self) -> bool {
        self.state() == CloseState::Closed
    }

    /// Whether we sent a close frame and must not send data any more.
    pub fn is_close_sent(&self) -> bool {
        self.sent.is_some()
    }

    /// Whether the peer sent a close frame.
    pub fn is_close_received(&self) -> bool {
        self.received.is_some()
    }

    /// The peer's close code and reason, if its close frame carried them.
    pub fn peer_close(&self) -> Option<&CloseFrame> {
        self.received.as_ref().and_then(Option::as_ref)
    }

    /// Our close code and reason, if we sent a close frame that carried them.
    pub fn local_close(&self) -> Option<&CloseFrame> {
        self.sent.as_ref().and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.5.1: an endpoint that receives a close frame and has not sent one sends a
    /// close frame in response, typically echoing the status code.
    #[test]
    fn rfc6455_5_5_1_remote_first_echoes_code() {
        let mut h = CloseHandshake::new();
        assert_eq!(h.state(), CloseState::Open);
        let reply = h.on_close_received(Some(CloseFrame::new(CloseCode::Library(4000), "x")));
        assert_eq!(reply, Some(CloseFrame::new(CloseCode::Library(4000), "")));
        assert_eq!(h.state(), CloseState::CloseReceived);
        assert_eq!(
            h.peer_close().map(|c| c.code),
            Some(CloseCode::Library(4000))
        );
        assert_eq!(h.closed_by(), Some(Initiator::Remote));
        assert!(!h.may_drop());
        // A second close from the peer gets no second answer.
        assert_eq!(h.on_close_received(None), None);
        assert!(h.on_close_sent(reply));
        assert!(h.may_drop());
        assert_eq!(h.closed_by(), Some(Initiator::Remote));
        assert!(!h.on_close_sent(None), "only one close is sent");
    }

    /// RFC 6455 §7.4.1: a close without a code is 1005 locally; we answer with 1000.
    #[test]
    fn rfc6455_7_4_1_codeless_close_answered_with_normal() {
        let mut h = CloseHandshake::new();
        assert_eq!(
            h.on_close_received(None),
            Some(CloseFrame::new(CloseCode::Normal, ""))
        );
        assert_eq!(h.peer_close(), None);
        assert!(h.is_close_received() && !h.is_close_sent());
    }

    /// RFC 6455 §7.1.2: after sending a close, wait for the peer's before dropping.
    #[test]
    fn rfc6455_7_1_2_local_first_waits_for_reply() {
        let mut h = CloseHandshake::new();
        assert!(h.on_close_sent(Some(CloseFrame::new(CloseCode::Away, "bye"))));
        assert_eq!(h.state(), CloseState::CloseSent);
        assert!(!h.may_drop());
        assert!(!h.on_close_sent(None), "only one close is sent");
        assert_eq!(h.local_close().map(|c| c.code), Some(CloseCode::Away));
        assert_eq!(
            h.on_close_received(Some(CloseFrame::new(CloseCode::Away, ""))),
            None
        );
        assert_eq!(h.state(), CloseState::Closed);
        assert_eq!(h.closed_by(), Some(Initiator::Local));
        assert!(h.may_drop());
    }
}
