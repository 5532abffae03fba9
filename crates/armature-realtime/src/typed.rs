//! Typed messages: [`TypedSocket`] (events in and out as Rust enums, over a small JSON
//! envelope), [`RecvJson::recv_json`] for one plain JSON message, [`Valid`] (validation
//! after parsing, in the spirit of NestJS pipes) and [`TypedEvents`] (a typed SSE stream).
//!
//! ## The envelope
//!
//! Every message of a [`TypedSocket`] is one text frame holding one JSON object:
//!
//! | direction | shape |
//! | --- | --- |
//! | client → server | `{"event": "chat:send", "data": {..}, "ack": 7}` (`ack` optional: ask for a reply) |
//! | server → client | `{"event": "chat:message", "data": {..}}` |
//! | reply to an `ack` | `{"event": "chat:sent", "data": {..}, "ack": 7}` |
//! | a message the server could not take | `{"event": "error", "data": {"kind": .., "message": .., "event": ..}, "ack": 7}` |
//!
//! The events of each direction are one Rust enum, tagged the serde way
//! (`#[serde(tag = "event", content = "data")]`, variant names renamed to the event names).
//! A handler `match`es the incoming enum, so an event it forgets is a compile error
//! (non-exhaustive match) and a payload of the wrong type cannot be sent: the outgoing enum
//! only holds the types it was declared with. The same types feed the AsyncAPI document and
//! the TypeScript client (see [`asyncapi`](crate::asyncapi)).
//!
//! A message that is not JSON, names an unknown event, or whose `data` does not parse or
//! fails [`Validate`] is answered with an `error` event ([`MessageError`]) and skipped: the
//! connection stays open and [`TypedSocket::recv`] waits for the next one. The event name
//! `error` is therefore reserved in the outgoing direction.
//!
//! ```
//! use armature_realtime::prelude::*;
//! use armature_realtime::typed::{TypedSocket, Valid, Validate};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct Say { text: String }
//!
//! impl Validate for Say {
//!     fn validate(&self) -> Result<(), String> {
//!         if self.text.is_empty() { Err("text: must not be empty".into()) } else { Ok(()) }
//!     }
//! }
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! #[serde(tag = "event", content = "data")]
//! enum ChatIn {
//!     #[serde(rename = "chat:say")]
//!     Say(Valid<Say>),
//! }
//!
//! #[derive(Serialize, schemars::JsonSchema)]
//! #[serde(tag = "event", content = "data")]
//! enum ChatOut {
//!     #[serde(rename = "chat:said")]
//!     Said { text: String },
//! }
//!
//! #[controller("/typed")]
//! struct ChatController;
//!
//! #[controller]
//! impl ChatController {
//!     #[websocket("/chat")]
//!     async fn chat(&self, mut socket: TypedSocket<ChatIn, ChatOut>) -> Result<(), Error> {
//!         while let Some(Ok(msg)) = socket.recv().await {
//!             match msg.data {
//!                 ChatIn::Say(say) => {
//!                     let out = ChatOut::Said { text: say.into_inner().text };
//!                     match msg.ack {
//!                         Some(ack) => socket.reply(ack, &out).await?,
//!                         None => socket.send(&out).await?,
//!                     }
//!                 }
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//! # #[module(controllers: [ChatController])] struct M;
//! # let _ = App::new().module::<M>().build().unwrap();
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use http::Response;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::Error;
use crate::body::Body;
use crate::sse::ServerSentEvent;
use crate::sse_route::{EventStream, IntoSse};
use crate::ws::{WebSocket, WebSocketConnection, WebSocketMessage};

/// The name of the event a server answers a message it could not take with.
pub const ERROR_EVENT: &str = "error";

/// Reads one WebSocket message as JSON of a given type.
pub trait RecvJson {
    /// The next text (or binary) message parsed as a `T`; pings and pongs are skipped.
    ///
    /// `None` once the connection has ended. A message that is not a valid `T` gives
    /// `Some(Err(Error::Validation(..)))` naming the type and serde's complaint; the
    /// connection stays open and the next call reads the next message.
    fn recv_json<T: DeserializeOwned>(
        &mut self,
    ) -> impl Future<Output = Option<Result<T, Error>>> + Send;
}

impl RecvJson for WebSocket {
    async fn recv_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        loop {
            let parsed = match self.recv().await? {
                Err(err) => return Some(Err(err)),
                Ok(WebSocketMessage::Text(text)) => serde_json::from_str::<T>(text.as_str()),
                Ok(WebSocketMessage::Binary(data)) => serde_json::from_slice::<T>(&data),
                Ok(WebSocketMessage::Close) => return None,
                Ok(_) => continue,
            };
            return Some(parsed.map_err(|e| {
                Error::Validation(format!(
                    "message is not a valid `{}`: {e}",
                    short_type_name::<T>()
                ))
            }));
        }
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// A validation step run after a message's `data` has parsed (see [`Valid`]).
///
/// With the `validator` feature every `T: validator::Validate` (`#[derive(Validate)]` of
/// the `validator` crate) implements it.
pub trait Validate {
    /// `Ok` when the value is acceptable, else what is wrong with it (sent to the client).
    ///
    /// # Errors
    /// A description of what is wrong.
    fn validate(&self) -> Result<(), String>;
}

#[cfg(feature = "validator")]
impl<T: validator::Validate> Validate for T {
    fn validate(&self) -> Result<(), String> {
        validator::Validate::validate(self).map_err(|e| describe_validation(&e))
    }
}

/// `text: length (max 500, min 1)`, one part per failed rule, sorted; the crate's own text
/// for nested errors.
#[cfg(feature = "validator")]
fn describe_validation(errors: &validator::ValidationErrors) -> String {
    let mut parts: Vec<String> = errors
        .field_errors()
        .iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| match &e.message {
                Some(message) => format!("{field}: {message}"),
                None => {
                    let mut params: Vec<String> = e
                        .params
                        .iter()
                        .filter(|(k, _)| *k != "value")
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    params.sort();
                    if params.is_empty() {
                        format!("{field}: {}", e.code)
                    } else {
                        format!("{field}: {} ({})", e.code, params.join(", "))
                    }
                }
            })
        })
        .collect();
    if parts.is_empty() {
        return errors.to_string().replace('\n', "; ");
    }
    parts.sort();
    parts.join("; ")
}

/// A `T` that parsed and passed [`Validate`]: put it where `T` would go in a message type
/// (`Say(Valid<Say>)`). Its JSON Schema is `T`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid<T>(T);

impl<T> Valid<T> {
    /// The validated value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de> + Validate> Deserialize<'de> for Valid<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(deserializer)?;
        match value.validate() {
            Ok(()) => Ok(Valid(value)),
            Err(why) => Err(serde::de::Error::custom(format!("{VALIDATION_MARK}{why}"))),
        }
    }
}

/// Starts the serde error of a failed [`Validate`], so that the answer says `invalid`.
const VALIDATION_MARK: &str = "validation failed: ";

impl<T: JsonSchema> JsonSchema for Valid<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// The id of a client message that asked for a reply (its `ack` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ack(pub u64);

/// One message a [`TypedSocket`] received: the event and, when the client asked for a
/// reply, its [`Ack`] (answer with [`TypedSocket::reply`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<T> {
    /// The event with its data.
    pub data: T,
    /// The client's `ack` id, if it asked for a reply.
    pub ack: Option<Ack>,
}

/// What went wrong with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageErrorKind {
    /// Not a JSON object with a string `event` (or a binary frame).
    InvalidEnvelope,
    /// An `event` this route does not take.
    UnknownEvent,
    /// The `data` does not parse as the event's type.
    InvalidData,
    /// The `data` parsed but failed validation ([`Validate`]).
    ValidationFailed,
}

/// The `data` of the `error` event a [`TypedSocket`] answers a bad message with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MessageError {
    /// What went wrong.
    pub kind: MessageErrorKind,
    /// A human-readable description (serde's or the validator's).
    pub message: String,
    /// The event the message named, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for MessageError {}

/// The event names of a message type (`"chat:send"`, ..) read from its JSON Schema: the
/// `const` (or single `enum` value) of `event` in each `oneOf` branch. Empty when the type
/// is not an event enum.
pub fn event_names<T: JsonSchema>() -> Vec<String> {
    let mut generator = SchemaGenerator::default();
    let schema = T::json_schema(&mut generator);
    events_of(schema.as_value())
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// One event of a message enum: its name, its whole envelope schema and its `data` schema.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    /// The event name.
    pub name: String,
    /// The schema of the `data` field (`None` for an event without data).
    pub data: Option<Value>,
    /// The doc comment of the variant, when there is one.
    pub description: Option<String>,
}

/// The events described by an enum's schema (`oneOf` of tagged branches).
pub(crate) fn events_of(schema: &Value) -> Vec<EventSchema> {
    let branches = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array);
    let Some(branches) = branches else {
        return Vec::new();
    };
    branches
        .iter()
        .filter_map(|branch| {
            let props = branch.get("properties")?;
            let event = props.get("event")?;
            let name = event
                .get("const")
                .and_then(Value::as_str)
                .or_else(|| {
                    event
                        .get("enum")
                        .and_then(Value::as_array)
                        .filter(|v| v.len() == 1)
                        .and_then(|v| v[0].as_str())
                })?
                .to_owned();
            Some(EventSchema {
                name,
                data: props.get("data").cloned(),
                description: branch
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// A WebSocket whose messages are typed events: `In` from the client, `Out` to it, both
/// usually `#[serde(tag = "event", content = "data")]` enums (see the [module](self)
/// docs for the envelope). Take it as a `#[websocket]` handler's argument in place of
/// `WebSocket`, or wrap one with [`TypedSocket::new`].
pub struct TypedSocket<In, Out> {
    socket: WebSocket,
    events: Arc<[String]>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> fmt::Debug for TypedSocket<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSocket")
            .field("id", &self.socket.id())
            .field("events", &self.events)
            .finish()
    }
}

impl<In, Out> TypedSocket<In, Out>
where
    In: DeserializeOwned + JsonSchema,
    Out: Serialize + JsonSchema,
{
    /// Wraps an accepted socket.
    pub fn new(socket: WebSocket) -> Self {
        Self {
            socket,
            events: event_names::<In>().into(),
            _types: PhantomData,
        }
    }

    /// The next event from the client; `None` once the connection has ended.
    ///
    /// A message that cannot be taken is answered with an `error` event
    /// ([`MessageError`]) and skipped; `Some(Err(..))` is only a connection error.
    ///
    /// # Errors
    /// The connection's error (the connection is then over).
    pub async fn recv(&mut self) -> Option<Result<Incoming<In>, Error>> {
        loop {
            let message = match self.socket.recv().await? {
                Err(err) => return Some(Err(err)),
                Ok(message) => message,
            };
            let parsed = match message {
                WebSocketMessage::Text(text) => self.parse(text.as_str()),
                WebSocketMessage::Binary(_) => Err((
                    MessageError {
                        kind: MessageErrorKind::InvalidEnvelope,
                        message: "binary frames are not taken: send the envelope as text".into(),
                        event: None,
                    },
                    None,
                )),
                WebSocketMessage::Close => return None,
                _ => continue,
            };
            match parsed {
                Ok(incoming) => return Some(Ok(incoming)),
                Err((error, ack)) => {
                    tracing::debug!(id = self.socket.id(), %error, "typed message refused");
                    let reply = envelope(ERROR_EVENT, Some(serde_json::to_value(&error)), ack);
                    if let Err(err) = self.socket.send_text(reply).await {
                        return Some(Err(err));
                    }
                }
            }
        }
    }

    fn parse(&self, text: &str) -> Result<Incoming<In>, (MessageError, Option<Ack>)> {
        let bad = |kind, message: String, event: Option<String>, ack| {
            (
                MessageError {
                    kind,
                    message,
                    event,
                },
                ack,
            )
        };
        let mut object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                return Err(bad(
                    MessageErrorKind::InvalidEnvelope,
                    "a message is a JSON object: {\"event\": .., \"data\": .., \"ack\": ..}".into(),
                    None,
                    None,
                ));
            }
            Err(e) => {
                return Err(bad(
                    MessageErrorKind::InvalidEnvelope,
                    format!("not JSON: {e}"),
                    None,
                    None,
                ));
            }
        };
        let ack = match object.remove("ack") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(n) => Some(Ack(n)),
                None => {
                    return Err(bad(
                        MessageErrorKind::InvalidEnvelope,
                        "`ack` is a non-negative integer".into(),
                        None,
                        None,
                    ));
                }
            },
        };
        let event = match object.get("event") {
            Some(Value::String(event)) => event.clone(),
            _ => {
                return Err(bad(
                    MessageErrorKind::InvalidEnvelope,
                    "a message needs a string `event`".into(),
                    None,
                    ack,
                ));
            }
        };
        if !self.events.is_empty() && !self.events.contains(&event) {
            return Err(bad(
                MessageErrorKind::UnknownEvent,
                format!(
                    "unknown event `{event}`; this route takes: {}",
                    self.events.join(", ")
                ),
                Some(event),
                ack,
            ));
        }
        match serde_json::from_value::<In>(Value::Object(object)) {
            Ok(data) => Ok(Incoming { data, ack }),
            Err(e) => {
                let message = e.to_string();
                let kind = if message.contains(VALIDATION_MARK) {
                    MessageErrorKind::ValidationFailed
                } else {
                    MessageErrorKind::InvalidData
                };
                Err(bad(kind, message, Some(event), ack))
            }
        }
    }

    /// Sends an event.
    ///
    /// # Errors
    /// [`Error::Serialization`] when it cannot be written as JSON; the socket's send errors.
    pub async fn send(&mut self, event: &Out) -> Result<(), Error> {
        let text = encode(event, None)?;
        self.socket.send_text(text).await
    }

    /// Sends an event as the reply to the client message that carried `ack`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn reply(&mut self, ack: Ack, event: &Out) -> Result<(), Error> {
        let text = encode(event, Some(ack))?;
        self.socket.send_text(text).await
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        self.socket.id()
    }

    /// A handle to the connection (to join rooms; broadcast [`encode`]d events).
    pub fn connection(&self) -> WebSocketConnection {
        self.socket.connection()
    }

    /// The untyped socket, for what the envelope does not cover (closing with a code).
    pub fn socket(&mut self) -> &mut WebSocket {
        &mut self.socket
    }

    /// The untyped socket.
    pub fn into_inner(self) -> WebSocket {
        self.socket
    }
}

/// An event as the text of one envelope message, as [`TypedSocket::send`] writes it; use
/// it to broadcast a typed event to a room (`room.broadcast_text(encode(&event, None)?)`),
/// which frames it once for every member.
///
/// # Errors
/// [`Error::Serialization`] when `event` cannot be written as JSON.
pub fn encode<T: Serialize + ?Sized>(event: &T, ack: Option<Ack>) -> Result<String, Error> {
    let value = serde_json::to_value(event).map_err(|e| Error::Serialization(e.to_string()))?;
    let text = match (value, ack) {
        (Value::Object(mut object), Some(Ack(n))) => {
            object.insert("ack".into(), Value::from(n));
            Value::Object(object).to_string()
        }
        (value, _) => value.to_string(),
    };
    Ok(text)
}

fn envelope(
    event: &str,
    data: Option<Result<Value, serde_json::Error>>,
    ack: Option<Ack>,
) -> String {
    let mut object = Map::new();
    object.insert("event".into(), Value::from(event));
    if let Some(Ok(data)) = data {
        object.insert("data".into(), data);
    }
    if let Some(Ack(n)) = ack {
        object.insert("ack".into(), Value::from(n));
    }
    Value::Object(object).to_string()
}

/// What a `#[websocket]` handler's socket argument can be: [`WebSocket`] itself or a
/// [`TypedSocket`]. The decorators call it once the upgrade is accepted.
pub trait FromSocket: Sized {
    /// Builds the argument from the accepted socket.
    fn from_socket(socket: WebSocket) -> Self;
}

impl FromSocket for WebSocket {
    fn from_socket(socket: WebSocket) -> Self {
        socket
    }
}

impl<In, Out> FromSocket for TypedSocket<In, Out>
where
    In: DeserializeOwned + JsonSchema,
    Out: Serialize + JsonSchema,
{
    fn from_socket(socket: WebSocket) -> Self {
        TypedSocket::new(socket)
    }
}

/// A typed SSE stream: each item `T` (usually a `#[serde(tag = "event", content =
/// "data")]` enum) becomes one event named by its `event` with its `data` as JSON; an item
/// that is not such an envelope is sent whole as a plain `message` event. Return it from
/// an `#[sse]` handler; its types appear in the AsyncAPI document.
///
/// ```
/// use armature_realtime::typed::TypedEvents;
/// use serde::Serialize;
///
/// #[derive(Serialize, schemars::JsonSchema)]
/// #[serde(tag = "event", content = "data")]
/// enum Tick {
///     #[serde(rename = "tick")]
///     Tick { n: u32 },
/// }
///
/// let events = TypedEvents::new(futures_util::stream::iter((1..=3).map(|n| Tick::Tick { n })));
/// # let _ = events;
/// ```
pub struct TypedEvents<T> {
    stream: futures_util::stream::BoxStream<'static, T>,
}

impl<T> fmt::Debug for TypedEvents<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedEvents").finish_non_exhaustive()
    }
}

impl<T: Serialize + JsonSchema + Send + 'static> TypedEvents<T> {
    /// The stream of typed events.
    pub fn new(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        Self {
            stream: stream.boxed(),
        }
    }
}

/// One typed item as a [`ServerSentEvent`] (see [`TypedEvents`]).
///
/// # Errors
/// [`Error::Serialization`] when the item cannot be written as JSON.
pub fn to_sse_event<T: Serialize + ?Sized>(item: &T) -> Result<ServerSentEvent, Error> {
    let value = serde_json::to_value(item).map_err(|e| Error::Serialization(e.to_string()))?;
    if let Value::Object(object) = &value
        && object.keys().all(|k| k == "event" || k == "data")
        && let Some(Value::String(event)) = object.get("event")
    {
        let data = object.get("data").unwrap_or(&Value::Null);
        return Ok(ServerSentEvent::with_event(event.clone(), data.to_string()));
    }
    Ok(ServerSentEvent::new(value.to_string()))
}

impl<T: Serialize + Send + 'static> IntoSse for TypedEvents<T> {
    fn into_sse(self) -> Response<Body> {
        EventStream::new(self.stream.map(|item| to_sse_event(&item))).into_sse()
    }
}

/// The message types of one route, for the AsyncAPI document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMessages {
    /// The handler's name (the operation names derive from it).
    pub name: String,
    /// What the client sends (WebSocket routes).
    pub client: Vec<EventSchema>,
    /// What the server sends.
    pub server: Vec<EventSchema>,
}

/// A route argument or return type that declares message types: [`TypedSocket`] and
/// [`TypedEvents`] (and `Result`s of it). The decorators attach it to the route.
pub trait DescribeMessages {
    /// Adds the types' schemas to `generator` (named types become its definitions) and
    /// returns the events of each direction.
    fn describe(generator: &mut SchemaGenerator) -> (Vec<EventSchema>, Vec<EventSchema>);
}

/// The events of `T` with their data schemas registered in `generator`; a type that is
/// not an event enum is one `message` event holding it whole.
pub fn describe_events<T: JsonSchema>(generator: &mut SchemaGenerator) -> Vec<EventSchema> {
    let schema = T::json_schema(generator);
    let events = events_of(schema.as_value());
    if events.is_empty() {
        let data = generator.subschema_for::<T>();
        return vec![EventSchema {
            name: "message".into(),
            data: Some(data.to_value()),
            description: None,
        }];
    }
    // Make the enum itself a definition too, so that a client can name it.
    let _ = generator.subschema_for::<T>();
    events
}

impl<In, Out> DescribeMessages for TypedSocket<In, Out>
where
    In: DeserializeOwned + JsonSchema,
    Out: Serialize + JsonSchema,
{
    fn describe(generator: &mut SchemaGenerator) -> (Vec<EventSchema>, Vec<EventSchema>) {
        (
            describe_events::<In>(generator),
            describe_events::<Out>(generator),
        )
    }
}

impl<T: Serialize + JsonSchema + Send + 'static> DescribeMessages for TypedEvents<T> {
    fn describe(generator: &mut SchemaGenerator) -> (Vec<EventSchema>, Vec<EventSchema>) {
        (Vec::new(), describe_events::<T>(generator))
    }
}

impl<T: DescribeMessages, E> DescribeMessages for Result<T, E> {
    fn describe(generator: &mut SchemaGenerator) -> (Vec<EventSchema>, Vec<EventSchema>) {
        T::describe(generator)
    }
}

/// A route's description function, as the decorators attach it.
pub type DescribeFn = fn(&mut SchemaGenerator) -> (Vec<EventSchema>, Vec<EventSchema>);
