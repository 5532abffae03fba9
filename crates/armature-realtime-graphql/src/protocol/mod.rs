//! The two GraphQL-over-WebSocket subprotocols as sans-I/O state machines: text messages
//! and events go in, [`Action`]s come out. No socket, no clock, no task: the session
//! (`crate::session`) owns those and feeds the machine.
//!
//! - [`TransportWs`]: `graphql-transport-ws`, exactly as the `graphql-ws` project's
//!   PROTOCOL.md says (close codes 4400, 4401, 4403, 4408, 4409, 4429).
//! - [`LegacyWs`]: `graphql-ws`, the older subscriptions-transport-ws protocol Apollo
//!   clients of the past years speak (`start`/`stop`/`data`/`ka`).
//!
//! Both share the shape of [`Protocol`], so one session loop drives either.

mod legacy_ws;
mod message;
mod transport_ws;

pub use legacy_ws::LegacyWs;
pub(crate) use message::error_list as error_json;
pub use message::{OperationPayload, Wire};
pub use transport_ws::{TransportWs, close_code};

use serde_json::{Map, Value};

/// The `Sec-WebSocket-Protocol` value of the current protocol.
pub const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";
/// The `Sec-WebSocket-Protocol` value of the legacy subscriptions-transport-ws protocol.
pub const GRAPHQL_WS: &str = "graphql-ws";

/// Identifies one started operation for the whole life of a connection: ids may be reused
/// by the client once an operation is over, serials never are, so a late "finished" report
/// from an operation the client already completed cannot end its successor.
pub type Serial = u64;

/// How an operation's result stream ended, as the session reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stream ended after zero or more results (`next`/`data` were sent).
    Completed,
    /// The request failed before execution (parse or validation errors, sent as the
    /// protocol's error message).
    RequestError,
}

/// What the session must do next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Send this text message to the client.
    Send(String),
    /// Run the on-connect hook with the `connection_init` payload; answer with
    /// [`Protocol::connect_accepted`] or [`Protocol::connect_rejected`].
    Connect {
        /// The payload of `connection_init` (an object, or absent).
        payload: Option<Map<String, Value>>,
    },
    /// Start executing an operation; report its end with [`Protocol::operation_finished`].
    Execute {
        /// The client's id for the operation.
        id: String,
        /// The session-unique serial of this operation.
        serial: Serial,
        /// What to execute.
        payload: OperationPayload,
    },
    /// Stop the operation at once (drop its resolver stream); no report is expected.
    Cancel {
        /// The serial given in [`Action::Execute`].
        serial: Serial,
    },
    /// Close the socket with this code and reason; the machine accepts nothing after it.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// The close reason (at most 123 bytes).
        reason: String,
    },
}

/// The interface both subprotocol machines share.
pub trait Protocol: Send {
    /// Which subprotocol this is (and so how results are encoded).
    fn wire(&self) -> Wire;
    /// A text message from the client.
    fn receive_text(&mut self, text: &str);
    /// A binary message from the client (neither protocol has any).
    fn receive_binary(&mut self);
    /// The connection-init wait passed.
    fn init_timeout(&mut self);
    /// The on-connect hook accepted; `ack_payload` goes into `connection_ack`.
    fn connect_accepted(&mut self, ack_payload: Option<Map<String, Value>>);
    /// The on-connect hook refused the connection.
    fn connect_rejected(&mut self, message: &str);
    /// An operation's result stream ended by itself.
    fn operation_finished(&mut self, serial: Serial, outcome: Outcome);
    /// The next action, if any.
    fn poll_action(&mut self) -> Option<Action>;
    /// True while the connection-init timer should run (no `connection_init` yet).
    fn awaiting_init(&self) -> bool;
    /// True once the machine asked to close.
    fn is_closed(&self) -> bool;
    /// Operations currently running.
    fn active_operations(&self) -> usize;
    /// A keep-alive the server sends on its own (`ping` resp. `ka`), when the protocol
    /// has one and the connection is acknowledged.
    fn keep_alive(&mut self);
}
