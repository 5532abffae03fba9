//! Shared subscriptions: identical WebSocket subscriptions to a *live* root field (one named
//! in [`GraphQLConfig::shared_subscriptions`](crate::GraphQLConfig::shared_subscriptions))
//! are executed once per endpoint, not once per subscriber.
//!
//! "Identical" is the same document, operation name, variables and extensions. The first
//! such subscription starts one execution (a task driving the resolver stream); each result
//! is serialised once, wrapped once per distinct (subprotocol, operation id) and the frame's
//! shared bytes are queued to every subscriber, as a room broadcast is. What stays per
//! subscriber:
//!
//! - its own id and subprotocol envelope, its results in order;
//! - its own `complete`: a client `complete` (or a closed socket) removes it at once, and
//!   the last one leaving drops the resolver stream;
//! - the stream's end (or a request error) reaches each as `complete` (or `error`);
//! - back-pressure: a subscriber that does not read is handled by its connection's policy
//!   like a slow room member, the others go on;
//! - its connection's operation limit.
//!
//! What a shared field gives up, and why it is opt-in: a subscriber that joins a running
//! execution sees the results from then on (right for a live topic, wrong for a stream that
//! starts from the beginning for each subscriber), and the resolver runs with the schema's
//! data only, never a connection's or a request's (so it cannot leak one subscriber's
//! identity to another).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use armature_ws::WebSocketConnection;
use armature_ws_core::encode_text;
use async_graphql::Executor;
use async_graphql::parser::types::{OperationType, Selection};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::operation::{is_request_error, request_from};
use crate::protocol::{OperationPayload, Outcome, Wire, error_json};

/// The running shared executions of one endpoint, by key.
#[derive(Default)]
pub(crate) struct SharedSubscriptions {
    running: Mutex<HashMap<String, Arc<Shared>>>,
}

/// One execution and its subscribers.
#[derive(Default)]
struct Shared {
    members: Mutex<Members>,
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Default)]
struct Members {
    next_token: u64,
    list: Vec<Member>,
    ended: bool,
}

struct Member {
    token: u64,
    wire: Wire,
    id: String,
    connection: Arc<WebSocketConnection>,
    done: oneshot::Sender<Outcome>,
}

/// The sharing key of `payload` when it is a subscription whose root fields are all in
/// `fields` (no fragment spreads at the root), else `None`.
pub(crate) fn key(payload: &OperationPayload, fields: &[String]) -> Option<String> {
    if fields.is_empty() {
        return None;
    }
    let doc = async_graphql::parser::parse_query(&payload.query).ok()?;
    let name = payload.operation_name.as_deref();
    let (_, op) = doc
        .operations
        .iter()
        .find(|(op_name, _)| name.is_none() || op_name.map(|n| n.as_str()) == name)?;
    if op.node.ty != OperationType::Subscription {
        return None;
    }
    let all_shared = op.node.selection_set.node.items.iter().all(|item| {
        matches!(&item.node, Selection::Field(field)
            if fields.iter().any(|f| f == field.node.name.node.as_str()))
    });
    if !all_shared {
        return None;
    }
    let json = |map: &Option<serde_json::Map<String, serde_json::Value>>| {
        map.as_ref()
            .and_then(|m| serde_json::to_string(m).ok())
            .unwrap_or_default()
    };
    Some(format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        payload.query,
        name.unwrap_or(""),
        json(&payload.variables),
        json(&payload.extensions)
    ))
}

/// Removes its member when the subscriber's operation ends or is aborted; the last one
/// out stops the execution.
struct Leave {
    registry: Arc<SharedSubscriptions>,
    key: String,
    shared: Arc<Shared>,
    token: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        // Lock order everywhere: registry, then members.
        let mut running = self.registry.running.lock();
        let mut members = self.shared.members.lock();
        members.list.retain(|m| m.token != self.token);
        if members.list.is_empty() && !members.ended {
            members.ended = true;
            if running
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
            {
                running.remove(&self.key);
            }
            if let Some(task) = self.shared.task.lock().take() {
                task.abort();
            }
        }
    }
}

/// Subscribes `id` of `connection` to the shared execution of `payload` under `key`
/// (starting it when none runs) and waits for its end.
pub(crate) async fn run<E: Executor>(
    registry: Arc<SharedSubscriptions>,
    key: String,
    executor: E,
    payload: OperationPayload,
    wire: Wire,
    id: String,
    connection: Arc<WebSocketConnection>,
) -> Outcome {
    let (done, ended) = oneshot::channel();
    let (shared, token) = {
        let mut running = registry.running.lock();
        let shared = match running.get(&key) {
            Some(shared) => Arc::clone(shared),
            None => {
                let shared = Arc::new(Shared::default());
                running.insert(key.clone(), Arc::clone(&shared));
                let task = tokio::spawn(drive(
                    Arc::clone(&registry),
                    key.clone(),
                    Arc::clone(&shared),
                    executor,
                    payload,
                ));
                *shared.task.lock() = Some(task.abort_handle());
                shared
            }
        };
        let mut members = shared.members.lock();
        let token = members.next_token;
        members.next_token += 1;
        members.list.push(Member {
            token,
            wire,
            id,
            connection,
            done,
        });
        drop(members);
        (shared, token)
    };
    let _leave = Leave {
        registry,
        key,
        shared,
        token,
    };
    // A dropped sender: the execution was stopped (it cannot be while a member is in).
    ended.await.unwrap_or(Outcome::Completed)
}

/// Runs the execution: each result serialised once and queued to every member.
async fn drive<E: Executor>(
    registry: Arc<SharedSubscriptions>,
    key: String,
    shared: Arc<Shared>,
    executor: E,
    payload: OperationPayload,
) {
    let outcome = match AssertUnwindSafe(execute(&shared, executor, payload))
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(_) => {
            let errors = error_json("internal server error");
            each(&shared, |wire, id| wire.request_error(id, &errors));
            Outcome::RequestError
        }
    };
    let finished = {
        let mut running = registry.running.lock();
        if running.get(&key).is_some_and(|s| Arc::ptr_eq(s, &shared)) {
            running.remove(&key);
        }
        let mut members = shared.members.lock();
        members.ended = true;
        std::mem::take(&mut members.list)
    };
    for member in finished {
        let _ = member.done.send(outcome);
    }
}

async fn execute<E: Executor>(shared: &Shared, executor: E, payload: OperationPayload) -> Outcome {
    let request = match request_from(payload) {
        Ok(request) => request,
        Err(errors) => {
            let errors = serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into());
            each(shared, |wire, id| wire.request_error(id, &errors));
            return Outcome::RequestError;
        }
    };
    // No session or request data: a shared resolver must not see one subscriber's.
    let mut stream = executor.execute_stream(request, None);
    let mut first = true;
    while let Some(response) = stream.next().await {
        if first && is_request_error(&response) {
            let errors = serde_json::to_string(&response.errors).unwrap_or_else(|_| "[]".into());
            each(shared, |wire, id| wire.request_error(id, &errors));
            return Outcome::RequestError;
        }
        first = false;
        let payload = match serde_json::to_string(&response) {
            Ok(payload) => payload,
            Err(err) => {
                let errors = error_json(&format!("serialization failed: {err}"));
                each(shared, |wire, id| wire.request_error(id, &errors));
                return Outcome::RequestError;
            }
        };
        each(shared, |wire, id| wire.next(id, &payload));
    }
    Outcome::Completed
}

/// Queues to every member the message `message(wire, id)` makes, framed once per distinct
/// (wire, id) and shared as [`Bytes`].
fn each(shared: &Shared, message: impl Fn(Wire, &str) -> String) {
    let members = shared.members.lock();
    let mut frames: HashMap<(Wire, &str), Bytes> = HashMap::new();
    for member in &members.list {
        let frame = frames
            .entry((member.wire, member.id.as_str()))
            .or_insert_with(|| encode_text(&message(member.wire, &member.id)));
        // A closed or overflowing connection is its own policy's business.
        let _ = member.connection.send_frame(frame.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(query: &str) -> OperationPayload {
        OperationPayload {
            query: query.into(),
            ..OperationPayload::default()
        }
    }

    #[test]
    fn only_subscriptions_to_shared_fields_are_shared() {
        let fields = vec!["fanout".to_owned(), "ticker".to_owned()];
        assert!(key(&payload("subscription { fanout }"), &fields).is_some());
        assert!(key(&payload("subscription { fanout ticker { a } }"), &fields).is_some());
        assert!(key(&payload("subscription { fanout other }"), &fields).is_none());
        assert!(
            key(
                &payload("subscription { ...F } fragment F on S { fanout }"),
                &fields
            )
            .is_none()
        );
        assert!(key(&payload("{ fanout }"), &fields).is_none());
        assert!(key(&payload("subscription { fanout }"), &[]).is_none());
        assert!(key(&payload("not graphql"), &fields).is_none());
        let mut with_vars = payload("subscription ($a: Int) { fanout(a: $a) }");
        let plain = key(&with_vars, &fields);
        with_vars.variables = Some(serde_json::json!({"a": 1}).as_object().cloned().unwrap());
        assert_ne!(key(&with_vars, &fields), plain);
    }
}
