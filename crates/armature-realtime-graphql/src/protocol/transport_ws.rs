//! `graphql-transport-ws` without I/O, following the graphql-ws project's PROTOCOL.md:
//!
//! | client does | server answers |
//! | --- | --- |
//! | nothing within the init wait | close `4408 Connection initialisation timeout` |
//! | `connection_init` (object payload or none) | the on-connect hook runs; `connection_ack`, or close `4403 Forbidden` |
//! | a second `connection_init`, even while the first is pending | close `4429 Too many initialisation requests` |
//! | `subscribe` before the ack | close `4401 Unauthorized` |
//! | `subscribe` with an id in use | close `4409 Subscriber for <id> already exists` |
//! | `subscribe` past the operation limit | an `error` message for that id (the connection stays) |
//! | `complete` | the operation stops at once, no `complete` is echoed |
//! | `ping` | `pong` with the same payload (also before the ack) |
//! | `pong` | nothing |
//! | anything else (bad JSON, unknown or server-only type, bad shape, binary) | close `4400` with the reason |
//!
//! An id stays reserved while its operation runs, queries and mutations included (as the
//! reference server does), and is free again once it completed.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::message::{ClientMessage, Wire, error_list, typed};
use super::{Action, Outcome, Protocol, Serial};

/// Close codes of `graphql-transport-ws`.
pub mod close_code {
    /// The message was not valid.
    pub const BAD_REQUEST: u16 = 4400;
    /// An operation before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The on-connect hook refused.
    pub const FORBIDDEN: u16 = 4403;
    /// The client did not ask for `graphql-transport-ws`.
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    /// No `connection_init` within the wait.
    pub const CONNECTION_INITIALISATION_TIMEOUT: u16 = 4408;
    /// A second operation with an id in use.
    pub const SUBSCRIBER_ALREADY_EXISTS: u16 = 4409;
    /// More than one `connection_init`.
    pub const TOO_MANY_INITIALISATION_REQUESTS: u16 = 4429;
    /// The server failed.
    pub const INTERNAL_SERVER_ERROR: u16 = 4500;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingInit,
    Connecting,
    Ready,
    Closed,
}

/// The `graphql-transport-ws` state machine of one connection.
///
/// ```
/// use armature_realtime_graphql::protocol::{Action, Protocol, TransportWs};
///
/// let mut machine = TransportWs::new(100);
/// machine.receive_text(r#"{"type":"connection_init"}"#);
/// assert!(matches!(machine.poll_action(), Some(Action::Connect { payload: None })));
/// machine.connect_accepted(None);
/// assert_eq!(
///     machine.poll_action(),
///     Some(Action::Send(r#"{"type":"connection_ack"}"#.into()))
/// );
/// machine.receive_text(r#"{"type":"subscribe","id":"1","payload":{"query":"{ a }"}}"#);
/// assert!(matches!(machine.poll_action(), Some(Action::Execute { .. })));
/// ```
#[derive(Debug)]
pub struct TransportWs {
    phase: Phase,
    /// Active operations: client id → serial.
    operations: HashMap<String, Serial>,
    max_operations: usize,
    next_serial: Serial,
    actions: VecDeque<Action>,
}

impl TransportWs {
    /// A machine for a new connection allowing `max_operations` concurrent operations.
    pub fn new(max_operations: usize) -> Self {
        TransportWs {
            phase: Phase::AwaitingInit,
            operations: HashMap::new(),
            max_operations,
            next_serial: 0,
            actions: VecDeque::new(),
        }
    }

    fn close(&mut self, code: u16, reason: impl Into<String>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        let mut reason = reason.into();
        truncate_reason(&mut reason);
        self.actions.push_back(Action::Close { code, reason });
        // Everything still running stops with the socket.
        for (_, serial) in self.operations.drain() {
            self.actions.push_back(Action::Cancel { serial });
        }
    }

    fn send(&mut self, text: String) {
        self.actions.push_back(Action::Send(text));
    }

    fn handle(&mut self, mut msg: ClientMessage) -> Result<(), &'static str> {
        match msg.ty.as_str() {
            "connection_init" => {
                let payload = msg.optional_object()?;
                if self.phase != Phase::AwaitingInit {
                    self.close(
                        close_code::TOO_MANY_INITIALISATION_REQUESTS,
                        "Too many initialisation requests",
                    );
                    return Ok(());
                }
                self.phase = Phase::Connecting;
                self.actions.push_back(Action::Connect { payload });
            }
            "ping" => {
                let payload = msg.optional_object()?;
                self.send(typed("pong", payload.as_ref()));
            }
            "pong" => {
                msg.optional_object()?;
            }
            "subscribe" => {
                let id = msg.id()?;
                let payload = msg.operation()?;
                if self.phase != Phase::Ready {
                    self.close(close_code::UNAUTHORIZED, "Unauthorized");
                    return Ok(());
                }
                if self.operations.contains_key(&id) {
                    let reason = format!("Subscriber for {id} already exists");
                    self.close(close_code::SUBSCRIBER_ALREADY_EXISTS, reason);
                    return Ok(());
                }
                if self.operations.len() >= self.max_operations {
                    let errors = error_list(&format!(
                        "too many operations on this connection (at most {})",
                        self.max_operations
                    ));
                    self.send(Wire::TransportWs.request_error(&id, &errors));
                    return Ok(());
                }
                let serial = self.next_serial;
                self.next_serial += 1;
                self.operations.insert(id.clone(), serial);
                self.actions.push_back(Action::Execute {
                    id,
                    serial,
                    payload,
                });
            }
            "complete" => {
                let id = msg.id()?;
                if let Some(serial) = self.operations.remove(&id) {
                    self.actions.push_back(Action::Cancel { serial });
                }
            }
            "connection_ack" | "next" | "error" => {
                return Err("Unexpected message of a server-to-client type");
            }
            _ => return Err("Unknown message type"),
        }
        Ok(())
    }
}

fn truncate_reason(reason: &mut String) {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
}

impl Protocol for TransportWs {
    fn wire(&self) -> Wire {
        Wire::TransportWs
    }

    fn receive_text(&mut self, text: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        let result = ClientMessage::parse(text).and_then(|msg| self.handle(msg));
        if let Err(reason) = result {
            self.close(close_code::BAD_REQUEST, reason);
        }
    }

    fn receive_binary(&mut self) {
        self.close(
            close_code::BAD_REQUEST,
            "Binary messages are not part of the protocol",
        );
    }

    fn init_timeout(&mut self) {
        // A `connection_init` whose hook is still resolving is not a timeout.
        if self.phase == Phase::AwaitingInit {
            self.close(
                close_code::CONNECTION_INITIALISATION_TIMEOUT,
                "Connection initialisation timeout",
            );
        }
    }

    fn connect_accepted(&mut self, ack_payload: Option<Map<String, Value>>) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Ready;
            self.send(typed("connection_ack", ack_payload.as_ref()));
        }
    }

    fn connect_rejected(&mut self, _message: &str) {
        if self.phase == Phase::Connecting {
            self.close(close_code::FORBIDDEN, "Forbidden");
        }
    }

    fn operation_finished(&mut self, serial: Serial, outcome: Outcome) {
        let Some(id) = self
            .operations
            .iter()
            .find(|(_, s)| **s == serial)
            .map(|(id, _)| id.clone())
        else {
            return; // completed by the client, or the socket is closing
        };
        self.operations.remove(&id);
        // After an `error` message no `complete` follows (PROTOCOL.md, `Complete`).
        if outcome == Outcome::Completed {
            self.send(Wire::TransportWs.complete(&id));
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn awaiting_init(&self) -> bool {
        self.phase == Phase::AwaitingInit
    }

    fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    fn active_operations(&self) -> usize {
        self.operations.len()
    }

    fn keep_alive(&mut self) {
        if self.phase == Phase::Ready {
            self.send(typed("ping", None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &mut TransportWs) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    fn ready(max: usize) -> TransportWs {
        let mut m = TransportWs::new(max);
        m.receive_text(r#"{"type":"connection_init","payload":{"token":"t"}}"#);
        let actions = drain(&mut m);
        let mut payload = Map::new();
        payload.insert("token".into(), Value::String("t".into()));
        assert_eq!(
            actions,
            vec![Action::Connect {
                payload: Some(payload)
            }]
        );
        m.connect_accepted(None);
        assert_eq!(
            drain(&mut m),
            vec![Action::Send(r#"{"type":"connection_ack"}"#.into())]
        );
        m
    }

    fn closed_with(actions: &[Action]) -> Option<u16> {
        actions.iter().find_map(|a| match a {
            Action::Close { code, .. } => Some(*code),
            _ => None,
        })
    }

    const SUB: &str = r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { a }"}}"#;

    #[test]
    fn init_timeout_closes_4408_only_before_init() {
        let mut m = TransportWs::new(10);
        assert!(m.awaiting_init());
        m.init_timeout();
        assert_eq!(closed_with(&drain(&mut m)), Some(4408));

        let mut pending = TransportWs::new(10);
        pending.receive_text(r#"{"type":"connection_init"}"#);
        drain(&mut pending);
        assert!(!pending.awaiting_init());
        pending.init_timeout();
        assert!(drain(&mut pending).is_empty());
    }

    #[test]
    fn second_init_closes_4429_even_while_pending() {
        let mut m = TransportWs::new(10);
        m.receive_text(r#"{"type":"connection_init"}"#);
        m.receive_text(r#"{"type":"connection_init"}"#);
        let actions = drain(&mut m);
        assert_eq!(closed_with(&actions), Some(4429));

        let mut acked = ready(10);
        acked.receive_text(r#"{"type":"connection_init"}"#);
        assert_eq!(closed_with(&drain(&mut acked)), Some(4429));
    }

    #[test]
    fn subscribe_before_ack_closes_4401() {
        let mut m = TransportWs::new(10);
        m.receive_text(SUB);
        assert_eq!(closed_with(&drain(&mut m)), Some(4401));

        let mut pending = TransportWs::new(10);
        pending.receive_text(r#"{"type":"connection_init"}"#);
        pending.receive_text(SUB);
        assert_eq!(closed_with(&drain(&mut pending)), Some(4401));
    }

    #[test]
    fn rejected_connect_closes_4403() {
        let mut m = TransportWs::new(10);
        m.receive_text(r#"{"type":"connection_init"}"#);
        drain(&mut m);
        m.connect_rejected("no");
        assert_eq!(
            drain(&mut m),
            vec![Action::Close {
                code: 4403,
                reason: "Forbidden".into()
            }]
        );
        assert!(m.is_closed());
    }

    #[test]
    fn duplicate_id_closes_4409_and_cancels_the_running_one() {
        let mut m = ready(10);
        m.receive_text(SUB);
        let Some(Action::Execute { serial, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.receive_text(SUB);
        let actions = drain(&mut m);
        assert_eq!(
            actions,
            vec![
                Action::Close {
                    code: 4409,
                    reason: "Subscriber for 1 already exists".into()
                },
                Action::Cancel { serial }
            ]
        );
    }

    #[test]
    fn invalid_messages_close_4400() {
        for bad in [
            "not json",
            r#"{"id":"1"}"#,
            r#"{"type":"what"}"#,
            r#"{"type":"next","id":"1","payload":{}}"#,
            r#"{"type":"connection_ack"}"#,
            r#"{"type":"connection_init","payload":"x"}"#,
            r#"{"type":"ping","payload":[1]}"#,
            r#"{"type":"subscribe","id":"1","payload":{}}"#,
            r#"{"type":"subscribe","payload":{"query":"{a}"}}"#,
            r#"{"type":"complete"}"#,
        ] {
            let mut m = ready(10);
            m.receive_text(bad);
            assert_eq!(closed_with(&drain(&mut m)), Some(4400), "{bad}");
        }
        let mut m = ready(10);
        m.receive_binary();
        assert_eq!(closed_with(&drain(&mut m)), Some(4400));
    }

    #[test]
    fn ping_is_answered_with_its_payload_even_before_init() {
        let mut m = TransportWs::new(10);
        m.receive_text(r#"{"type":"ping","payload":{"n":1}}"#);
        assert_eq!(
            drain(&mut m),
            vec![Action::Send(r#"{"type":"pong","payload":{"n":1}}"#.into())]
        );
        m.receive_text(r#"{"type":"pong"}"#);
        assert!(drain(&mut m).is_empty());
        m.keep_alive();
        assert!(drain(&mut m).is_empty(), "no server ping before the ack");
        let mut acked = ready(1);
        acked.keep_alive();
        assert_eq!(
            drain(&mut acked),
            vec![Action::Send(r#"{"type":"ping"}"#.into())]
        );
    }

    #[test]
    fn stream_end_sends_complete_and_frees_the_id() {
        let mut m = ready(10);
        m.receive_text(SUB);
        let Some(Action::Execute {
            serial,
            id,
            payload,
        }) = m.poll_action()
        else {
            panic!("no execute")
        };
        assert_eq!(id, "1");
        assert_eq!(payload.query, "subscription { a }");
        assert_eq!(m.active_operations(), 1);
        m.operation_finished(serial, Outcome::Completed);
        assert_eq!(
            drain(&mut m),
            vec![Action::Send(r#"{"id":"1","type":"complete"}"#.into())]
        );
        assert_eq!(m.active_operations(), 0);
        // The id may be used again.
        m.receive_text(SUB);
        assert!(matches!(m.poll_action(), Some(Action::Execute { serial: s, .. }) if s != serial));
    }

    #[test]
    fn request_error_is_not_followed_by_complete() {
        let mut m = ready(10);
        m.receive_text(SUB);
        let Some(Action::Execute { serial, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.operation_finished(serial, Outcome::RequestError);
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.active_operations(), 0);
    }

    #[test]
    fn client_complete_cancels_without_echo_and_late_reports_are_ignored() {
        let mut m = ready(10);
        m.receive_text(SUB);
        let Some(Action::Execute { serial, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.receive_text(r#"{"type":"complete","id":"1"}"#);
        assert_eq!(drain(&mut m), vec![Action::Cancel { serial }]);
        // A new operation reuses the id; the old one's late report must not end it.
        m.receive_text(SUB);
        let Some(Action::Execute { serial: second, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.operation_finished(serial, Outcome::Completed);
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.active_operations(), 1);
        m.operation_finished(second, Outcome::Completed);
        assert_eq!(drain(&mut m).len(), 1);
        // Completing an unknown id is not an error.
        m.receive_text(r#"{"type":"complete","id":"nope"}"#);
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn operations_are_bounded() {
        let mut m = ready(2);
        for id in ["a", "b", "c"] {
            m.receive_text(&format!(
                r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"{{ x }}"}}}}"#
            ));
        }
        let actions = drain(&mut m);
        assert_eq!(actions.len(), 3);
        assert!(
            matches!(&actions[2], Action::Send(text) if text.starts_with(r#"{"id":"c","type":"error""#))
        );
        assert_eq!(m.active_operations(), 2);
        assert!(!m.is_closed());
    }

    #[test]
    fn nothing_after_close() {
        let mut m = ready(10);
        m.receive_text("garbage");
        drain(&mut m);
        m.receive_text(SUB);
        m.receive_text(r#"{"type":"ping"}"#);
        m.init_timeout();
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn long_reasons_are_cut_to_123_bytes() {
        let mut m = ready(10);
        let id = "é".repeat(100);
        let sub = format!(r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"{{a}}"}}}}"#);
        m.receive_text(&sub);
        m.receive_text(&sub);
        let actions = drain(&mut m);
        let reason = actions
            .iter()
            .find_map(|a| match a {
                Action::Close { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .unwrap();
        assert!(reason.len() <= 123);
        assert!(reason.starts_with("Subscriber for é"));
    }
}
