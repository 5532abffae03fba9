//! Running one operation: the client's payload becomes an async-graphql request, its result
//! stream is encoded per result and queued to the client, and the end is reported as an
//! [`Outcome`].

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures_util::StreamExt;

use crate::protocol::{OperationPayload, Outcome, Wire};
use crate::request_data::RequestData;

/// Where an operation's messages go: text messages, queued in order.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Queues one text message; `false` once the client is gone.
    fn send_text(&self, text: String) -> bool;
}

/// The request for `payload`, or the errors to report when it does not even parse.
pub(crate) fn request_from(payload: OperationPayload) -> Result<Request, Vec<ServerError>> {
    let mut value = serde_json::Map::new();
    value.insert("query".into(), payload.query.into());
    if let Some(name) = payload.operation_name {
        value.insert("operationName".into(), name.into());
    }
    if let Some(variables) = payload.variables {
        value.insert("variables".into(), variables.into());
    }
    if let Some(extensions) = payload.extensions {
        value.insert("extensions".into(), extensions.into());
    }
    let request: Request = serde_json::from_value(serde_json::Value::Object(value))
        .map_err(|err| vec![ServerError::new(format!("invalid request: {err}"), None)])?;
    request_checked(request)
}

/// `request`, parsed once (the document is kept in it), or its syntax errors.
pub(crate) fn request_checked(mut request: Request) -> Result<Request, Vec<ServerError>> {
    if let Err(err) = request.parsed_query() {
        return Err(vec![err]);
    }
    Ok(request)
}

/// True when a first response carries only errors raised before execution (validation):
/// no data and no error with a resolver path.
pub(crate) fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Runs the operation `id` to its end, sending each result to `sink`.
pub(crate) async fn run<E: Executor, S: Sink>(
    executor: E,
    payload: OperationPayload,
    session: Arc<Data>,
    request_data: &RequestData,
    wire: Wire,
    id: String,
    sink: Arc<S>,
) -> Outcome {
    let request = match request_from(payload) {
        Ok(mut request) => {
            request_data.apply(&mut request.data);
            request
        }
        Err(errors) => {
            send_request_error(wire, &id, &errors, &*sink);
            return Outcome::RequestError;
        }
    };
    let mut stream = executor.execute_stream(request, Some(session));
    let mut first = true;
    while let Some(response) = stream.next().await {
        if first && is_request_error(&response) {
            send_request_error(wire, &id, &response.errors, &*sink);
            return Outcome::RequestError;
        }
        first = false;
        let payload = match serde_json::to_string(&response) {
            Ok(payload) => payload,
            Err(err) => {
                let errors = crate::protocol::error_json(&format!("serialization failed: {err}"));
                sink.send_text(wire.request_error(&id, &errors));
                return Outcome::RequestError;
            }
        };
        if !sink.send_text(wire.next(&id, &payload)) {
            break;
        }
    }
    Outcome::Completed
}

fn send_request_error<S: Sink + ?Sized>(wire: Wire, id: &str, errors: &[ServerError], sink: &S) {
    let errors = serde_json::to_string(errors).unwrap_or_else(|_| "[]".to_owned());
    sink.send_text(wire.request_error(id, &errors));
}
