//! The legacy `graphql-ws` subprotocol of subscriptions-transport-ws, without I/O.
//!
//! | client sends | server answers |
//! | --- | --- |
//! | `connection_init` | the on-connect hook runs; `connection_ack` (and `ka` when keep-alive is on), or `connection_error` then close 1011 |
//! | `start` (id, query) | `data` messages, then `complete`; request errors are a `data` with `errors`, then `complete` |
//! | `start` while the init hook is still running | held (up to the operation limit) and started on the ack |
//! | `start` with an id in use | the running one stops and the new one starts (what the reference server did) |
//! | `stop` | the operation stops at once; `complete` |
//! | `connection_terminate` | close 1000 |
//! | not JSON | `connection_error`; the connection stays |
//! | an unknown type, a bad `start` | `error` for that id; the connection stays |
//!
//! The reference server had no init timeout; this one closes a socket that sends no
//! `connection_init` within the wait with 4408, like `graphql-transport-ws`, so an idle
//! socket cannot hold a slot for ever.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value, json};

use super::message::{ClientMessage, OperationPayload, Wire, typed};
use super::{Action, Outcome, Protocol, Serial};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingInit,
    Connecting,
    Ready,
    Closed,
}

/// The legacy subscriptions-transport-ws state machine of one connection.
#[derive(Debug)]
pub struct LegacyWs {
    phase: Phase,
    operations: HashMap<String, Serial>,
    /// `start`s received while the on-connect hook runs.
    held: Vec<(String, OperationPayload)>,
    max_operations: usize,
    keep_alive: bool,
    next_serial: Serial,
    actions: VecDeque<Action>,
}

impl LegacyWs {
    /// A machine for a new connection; `keep_alive` says whether `ka` messages are sent.
    pub fn new(max_operations: usize, keep_alive: bool) -> Self {
        LegacyWs {
            phase: Phase::AwaitingInit,
            operations: HashMap::new(),
            held: Vec::new(),
            max_operations,
            keep_alive,
            next_serial: 0,
            actions: VecDeque::new(),
        }
    }

    fn send(&mut self, text: String) {
        self.actions.push_back(Action::Send(text));
    }

    fn send_error(&mut self, id: Option<&str>, message: &str) {
        let mut msg = Map::new();
        if let Some(id) = id {
            msg.insert("id".into(), Value::String(id.into()));
        }
        msg.insert("type".into(), Value::String("error".into()));
        msg.insert("payload".into(), json!({ "message": message }));
        self.send(Value::Object(msg).to_string());
    }

    fn close(&mut self, code: u16, reason: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.held.clear();
        self.actions.push_back(Action::Close {
            code,
            reason: reason.into(),
        });
        for (_, serial) in self.operations.drain() {
            self.actions.push_back(Action::Cancel { serial });
        }
    }

    fn start(&mut self, id: String, payload: OperationPayload) {
        if let Some(serial) = self.operations.remove(&id) {
            self.actions.push_back(Action::Cancel { serial });
        }
        if self.operations.len() >= self.max_operations {
            let message = format!(
                "too many operations on this connection (at most {})",
                self.max_operations
            );
            self.send_error(Some(&id), &message);
            return;
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

    fn handle(&mut self, mut msg: ClientMessage) {
        match msg.ty.as_str() {
            "connection_init" => {
                if self.phase != Phase::AwaitingInit {
                    self.send(connection_error("the connection is already initialised"));
                    return;
                }
                // connectionParams are an object; anything else counts as none.
                let payload = msg.optional_object().unwrap_or_default();
                self.phase = Phase::Connecting;
                self.actions.push_back(Action::Connect { payload });
            }
            "start" => {
                let id = match msg.id() {
                    Ok(id) => id,
                    Err(reason) => {
                        self.send_error(None, reason);
                        return;
                    }
                };
                let payload = match msg.operation() {
                    Ok(payload) => payload,
                    Err(reason) => {
                        self.send_error(Some(&id), reason);
                        return;
                    }
                };
                match self.phase {
                    Phase::Ready => self.start(id, payload),
                    Phase::Connecting if self.held.len() < self.max_operations => {
                        self.held.push((id, payload));
                    }
                    Phase::Connecting => {
                        self.send_error(Some(&id), "too many operations before the ack");
                    }
                    Phase::AwaitingInit => {
                        self.send_error(Some(&id), "send connection_init first");
                    }
                    Phase::Closed => {}
                }
            }
            "stop" => {
                let Ok(id) = msg.id() else {
                    self.send_error(None, "stop needs an id");
                    return;
                };
                self.held.retain(|(held, _)| *held != id);
                if let Some(serial) = self.operations.remove(&id) {
                    self.actions.push_back(Action::Cancel { serial });
                    self.send(Wire::Legacy.complete(&id));
                }
            }
            "connection_terminate" => self.close(1000, ""),
            _ => {
                let id = msg.id().ok();
                self.send_error(id.as_deref(), "Invalid message type!");
            }
        }
    }
}

fn connection_error(message: &str) -> String {
    let mut payload = Map::new();
    payload.insert("message".into(), Value::String(message.into()));
    typed("connection_error", Some(&payload))
}

impl Protocol for LegacyWs {
    fn wire(&self) -> Wire {
        Wire::Legacy
    }

    fn receive_text(&mut self, text: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        match ClientMessage::parse(text) {
            Ok(msg) => self.handle(msg),
            Err(_) => self.send(connection_error(
                "Message must be a JSON object with a type",
            )),
        }
    }

    fn receive_binary(&mut self) {
        if self.phase != Phase::Closed {
            self.send(connection_error(
                "binary messages are not part of the protocol",
            ));
        }
    }

    fn init_timeout(&mut self) {
        if self.phase == Phase::AwaitingInit {
            self.close(4408, "Connection initialisation timeout");
        }
    }

    fn connect_accepted(&mut self, ack_payload: Option<Map<String, Value>>) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.phase = Phase::Ready;
        self.send(typed("connection_ack", ack_payload.as_ref()));
        if self.keep_alive {
            self.send(typed("ka", None));
        }
        for (id, payload) in std::mem::take(&mut self.held) {
            self.start(id, payload);
        }
    }

    fn connect_rejected(&mut self, message: &str) {
        if self.phase == Phase::Connecting {
            self.send(connection_error(message));
            self.close(1011, "connection refused");
        }
    }

    fn operation_finished(&mut self, serial: Serial, _outcome: Outcome) {
        let Some(id) = self
            .operations
            .iter()
            .find(|(_, s)| **s == serial)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        self.operations.remove(&id);
        self.send(Wire::Legacy.complete(&id));
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
        if self.phase == Phase::Ready && self.keep_alive {
            self.send(typed("ka", None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &mut LegacyWs) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    const START: &str = r#"{"type":"start","id":"1","payload":{"query":"subscription { a }"}}"#;

    fn ready() -> LegacyWs {
        let mut m = LegacyWs::new(10, true);
        m.receive_text(r#"{"type":"connection_init","payload":{}}"#);
        assert!(matches!(
            drain(&mut m)[..],
            [Action::Connect { payload: Some(_) }]
        ));
        m.connect_accepted(None);
        assert_eq!(
            drain(&mut m),
            vec![
                Action::Send(r#"{"type":"connection_ack"}"#.into()),
                Action::Send(r#"{"type":"ka"}"#.into())
            ]
        );
        m
    }

    #[test]
    fn starts_held_until_the_ack() {
        let mut m = LegacyWs::new(10, false);
        m.receive_text(r#"{"type":"connection_init"}"#);
        m.receive_text(START);
        assert!(matches!(drain(&mut m)[..], [Action::Connect { .. }]));
        m.connect_accepted(None);
        let actions = drain(&mut m);
        assert_eq!(actions.len(), 2);
        assert!(matches!(&actions[1], Action::Execute { id, .. } if id == "1"));
    }

    #[test]
    fn stop_cancels_and_completes() {
        let mut m = ready();
        m.receive_text(START);
        let Some(Action::Execute { serial, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.receive_text(r#"{"type":"stop","id":"1"}"#);
        assert_eq!(
            drain(&mut m),
            vec![
                Action::Cancel { serial },
                Action::Send(r#"{"id":"1","type":"complete"}"#.into())
            ]
        );
        m.operation_finished(serial, Outcome::Completed);
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn restart_with_same_id_replaces() {
        let mut m = ready();
        m.receive_text(START);
        let Some(Action::Execute { serial, .. }) = m.poll_action() else {
            panic!("no execute")
        };
        m.receive_text(START);
        let actions = drain(&mut m);
        assert_eq!(actions[0], Action::Cancel { serial });
        assert!(matches!(&actions[1], Action::Execute { serial: s, .. } if *s != serial));
    }

    #[test]
    fn finished_sends_complete_for_both_outcomes() {
        for outcome in [Outcome::Completed, Outcome::RequestError] {
            let mut m = ready();
            m.receive_text(START);
            let Some(Action::Execute { serial, .. }) = m.poll_action() else {
                panic!("no execute")
            };
            m.operation_finished(serial, outcome);
            assert_eq!(
                drain(&mut m),
                vec![Action::Send(r#"{"id":"1","type":"complete"}"#.into())]
            );
        }
    }

    #[test]
    fn rejection_sends_connection_error_then_closes_1011() {
        let mut m = LegacyWs::new(10, false);
        m.receive_text(r#"{"type":"connection_init"}"#);
        drain(&mut m);
        m.connect_rejected("bad token");
        let actions = drain(&mut m);
        assert_eq!(
            actions[0],
            Action::Send(r#"{"type":"connection_error","payload":{"message":"bad token"}}"#.into())
        );
        assert!(matches!(actions[1], Action::Close { code: 1011, .. }));
    }

    #[test]
    fn bad_input_is_reported_without_closing() {
        let mut m = ready();
        m.receive_text("{oops");
        m.receive_text(r#"{"type":"bogus","id":"9"}"#);
        m.receive_text(r#"{"type":"start","id":"2","payload":{}}"#);
        let actions = drain(&mut m);
        assert_eq!(actions.len(), 3);
        assert!(matches!(&actions[0], Action::Send(t) if t.contains("connection_error")));
        assert!(matches!(&actions[1], Action::Send(t) if t.contains(r#""id":"9""#)));
        assert!(matches!(&actions[2], Action::Send(t) if t.contains(r#""id":"2""#)));
        assert!(!m.is_closed());
        m.receive_text(r#"{"type":"connection_terminate"}"#);
        assert!(matches!(
            drain(&mut m)[..],
            [Action::Close { code: 1000, .. }]
        ));
    }

    #[test]
    fn start_before_init_is_an_error_and_init_times_out() {
        let mut m = LegacyWs::new(10, false);
        m.receive_text(START);
        assert!(
            matches!(&drain(&mut m)[..], [Action::Send(t)] if t.contains("connection_init first"))
        );
        m.init_timeout();
        assert!(matches!(
            drain(&mut m)[..],
            [Action::Close { code: 4408, .. }]
        ));
    }
}
