//! GraphQL over Server-Sent Events, "distinct connections" mode of the graphql-sse
//! protocol: one HTTP request (`GET` or `POST`, `Accept: text/event-stream`) per
//! operation, answered with a `text/event-stream` of `next` events and a final `complete`.
//!
//! The response body *is* the operation: each poll of the body polls the resolver stream,
//! there is no task and no queue in between; when the client goes away hyper drops the
//! body and with it the resolver's stream, which is how a streaming operation ends in this
//! mode. Request errors (parse, validation) are a `next` event with the errors followed by
//! `complete`, as the protocol asks (a `400` would give `EventSource` nothing to show).

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::{Body, Error};

/// The `complete` event, as sent.
pub const COMPLETE_EVENT: &[u8] = b"event: complete\ndata:\n\n";

/// One `next` event carrying `payload` (a JSON value on one line).
pub fn next_event(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 20);
    out.put_slice(b"event: next\ndata: ");
    out.put_slice(payload);
    out.put_slice(b"\n\n");
    out.freeze()
}

fn encode(response: &Response) -> Bytes {
    // serde_json writes no raw newline, so the JSON is one `data:` line.
    let json = serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec());
    next_event(&json)
}

/// The body streaming `request`'s results as graphql-sse events.
pub(crate) fn body<E: Executor>(
    executor: &E,
    request: Result<Request, Vec<ServerError>>,
    session: Option<Arc<Data>>,
) -> Body {
    let results = match request {
        Ok(request) => executor.execute_stream(request, session),
        Err(errors) => stream::once(async move { Response::from_errors(errors) }).boxed(),
    };
    let events = results
        .map(|response| encode(&response))
        .chain(stream::once(async { Bytes::from_static(COMPLETE_EVENT) }))
        .map(|bytes| Ok::<_, Error>(Frame::data(bytes)));
    StreamBody::new(events).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_spec_shaped() {
        assert_eq!(
            &next_event(br#"{"data":{"a":1}}"#)[..],
            b"event: next\ndata: {\"data\":{\"a\":1}}\n\n"
        );
        let response = Response::new(async_graphql::Value::from("x\ny"));
        let event = encode(&response);
        assert_eq!(event.iter().filter(|b| **b == b'\n').count(), 3);
    }
}
