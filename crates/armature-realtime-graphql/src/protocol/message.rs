//! The JSON messages of both subprotocols: reading what a client sent (with the shape
//! checks the protocols ask for) and writing what the server sends.
//!
//! Server messages are written by hand around already-serialised parts, so a result
//! serialised once can be wrapped for each operation id without serialising it again.

use serde_json::{Map, Value};

/// Which subprotocol's envelope a result goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// `graphql-transport-ws`: `next`, `error` (a `GraphQLError` list), `complete`.
    TransportWs,
    /// subscriptions-transport-ws (`graphql-ws`): `data`, `error`, `complete`.
    Legacy,
}

impl Wire {
    /// The message carrying one execution result; `payload` is the result's JSON.
    pub fn next(self, id: &str, payload: &str) -> String {
        let ty = match self {
            Wire::TransportWs => "next",
            Wire::Legacy => "data",
        };
        with_payload(id, ty, payload)
    }

    /// The message reporting errors that stopped an operation before execution;
    /// `errors` is the JSON array of GraphQL errors.
    pub fn request_error(self, id: &str, errors: &str) -> String {
        match self {
            Wire::TransportWs => with_payload(id, "error", errors),
            // The legacy server reports validation errors as a `data` result with errors.
            Wire::Legacy => {
                let mut payload = String::with_capacity(errors.len() + 12);
                payload.push_str("{\"errors\":");
                payload.push_str(errors);
                payload.push('}');
                with_payload(id, "data", &payload)
            }
        }
    }

    /// The message saying the operation `id` is over.
    pub fn complete(self, id: &str) -> String {
        let mut out = String::with_capacity(id.len() + 32);
        out.push_str("{\"id\":");
        push_json_string(&mut out, id);
        out.push_str(",\"type\":\"complete\"}");
        out
    }
}

fn with_payload(id: &str, ty: &str, payload: &str) -> String {
    let mut out = String::with_capacity(id.len() + ty.len() + payload.len() + 32);
    out.push_str("{\"id\":");
    push_json_string(&mut out, id);
    out.push_str(",\"type\":\"");
    out.push_str(ty);
    out.push_str("\",\"payload\":");
    out.push_str(payload);
    out.push('}');
    out
}

fn push_json_string(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// A message with only a `type` and an optional object payload (`connection_ack`, `ping`,
/// `pong`, `connection_error`).
pub(crate) fn typed(ty: &str, payload: Option<&Map<String, Value>>) -> String {
    let mut out = String::with_capacity(32);
    out.push_str("{\"type\":");
    push_json_string(&mut out, ty);
    if let Some(payload) = payload {
        out.push_str(",\"payload\":");
        // Serialising a map of JSON values cannot fail.
        out.push_str(&serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()));
    }
    out.push('}');
    out
}

/// An error message with `message` as a one-element GraphQL error list.
pub(crate) fn error_list(message: &str) -> String {
    serde_json::json!([{ "message": message }]).to_string()
}

/// What a client asked to execute (`subscribe` / `start` payload).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperationPayload {
    /// The GraphQL document.
    pub query: String,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
    /// Variable values.
    pub variables: Option<Map<String, Value>>,
    /// Request extensions.
    pub extensions: Option<Map<String, Value>>,
}

/// A client message as read: its `type`, `id` and `payload`, before per-type checks.
#[derive(Debug)]
pub(crate) struct ClientMessage {
    pub(crate) ty: String,
    pub(crate) id: Option<Value>,
    pub(crate) payload: Option<Value>,
}

/// Why a message is not a valid protocol message; the text becomes the 4400 reason.
pub(crate) type Invalid = &'static str;

impl ClientMessage {
    pub(crate) fn parse(text: &str) -> Result<Self, Invalid> {
        let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(text) else {
            return Err("Invalid message received");
        };
        let ty = match map.remove("type") {
            Some(Value::String(ty)) => ty,
            _ => return Err("Message is missing the 'type' property"),
        };
        Ok(ClientMessage {
            ty,
            id: map.remove("id"),
            payload: map.remove("payload"),
        })
    }

    /// The `id`, which must be a non-empty string.
    pub(crate) fn id(&mut self) -> Result<String, Invalid> {
        match self.id.take() {
            Some(Value::String(id)) if !id.is_empty() => Ok(id),
            Some(Value::String(_)) => Err("The 'id' property must not be empty"),
            _ => Err("The 'id' property must be a string"),
        }
    }

    /// The payload, which must be an object, null or absent.
    pub(crate) fn optional_object(&mut self) -> Result<Option<Map<String, Value>>, Invalid> {
        match self.payload.take() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err("The 'payload' property must be an object, null or missing"),
        }
    }

    /// The payload of an operation request.
    pub(crate) fn operation(&mut self) -> Result<OperationPayload, Invalid> {
        let Some(Value::Object(mut map)) = self.payload.take() else {
            return Err("The 'payload' property must be an object");
        };
        let query = match map.remove("query") {
            Some(Value::String(query)) => query,
            _ => return Err("The payload's 'query' property must be a string"),
        };
        let operation_name = match map.remove("operationName") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name),
            Some(_) => return Err("The payload's 'operationName' must be a string or null"),
        };
        let variables = match map.remove("variables") {
            None | Some(Value::Null) => None,
            Some(Value::Object(vars)) => Some(vars),
            Some(_) => return Err("The payload's 'variables' must be an object or null"),
        };
        let extensions = match map.remove("extensions") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ext)) => Some(ext),
            Some(_) => return Err("The payload's 'extensions' must be an object or null"),
        };
        Ok(OperationPayload {
            query,
            operation_name,
            variables,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_wrap_the_serialised_payload() {
        assert_eq!(
            Wire::TransportWs.next("a\"1", "{\"data\":1}"),
            r#"{"id":"a\"1","type":"next","payload":{"data":1}}"#
        );
        assert_eq!(
            Wire::Legacy.next("1", "{}"),
            r#"{"id":"1","type":"data","payload":{}}"#
        );
        assert_eq!(
            Wire::TransportWs.request_error("1", "[]"),
            r#"{"id":"1","type":"error","payload":[]}"#
        );
        assert_eq!(
            Wire::Legacy.request_error("1", "[]"),
            r#"{"id":"1","type":"data","payload":{"errors":[]}}"#
        );
        assert_eq!(
            Wire::TransportWs.complete("7"),
            r#"{"id":"7","type":"complete"}"#
        );
        assert_eq!(typed("pong", None), r#"{"type":"pong"}"#);
    }

    #[test]
    fn operation_payload_shapes_are_checked() {
        let mut ok = ClientMessage::parse(
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"x":1},"operationName":null}}"#,
        )
        .unwrap();
        assert_eq!(ok.id().unwrap(), "1");
        let op = ok.operation().unwrap();
        assert_eq!(op.query, "{a}");
        assert_eq!(op.variables.unwrap()["x"], 1);
        assert!(op.operation_name.is_none());

        for bad in [
            r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":3}}"#,
            r#"{"type":"subscribe","id":"1","payload":"{a}"}"#,
            r#"{"type":"subscribe","id":"1"}"#,
        ] {
            let mut msg = ClientMessage::parse(bad).unwrap();
            assert!(msg.operation().is_err(), "{bad}");
        }
        let mut empty_id = ClientMessage::parse(r#"{"type":"subscribe","id":""}"#).unwrap();
        assert!(empty_id.id().is_err());
        let mut number_id = ClientMessage::parse(r#"{"type":"subscribe","id":1}"#).unwrap();
        assert!(number_id.id().is_err());
        for bad in ["", "[]", "{}", r#"{"type":1}"#, "nope"] {
            assert!(ClientMessage::parse(bad).is_err(), "{bad}");
        }
    }
}
