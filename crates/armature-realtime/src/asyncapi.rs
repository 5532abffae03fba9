//! An AsyncAPI 3 document and a TypeScript client, generated from an app's routes and their
//! message types ([`TypedSocket`](crate::typed::TypedSocket) arguments and
//! [`TypedEvents`](crate::typed::TypedEvents) returns; JSON Schema by `schemars`).
//!
//! ```
//! use armature_realtime::prelude::*;
//! use armature_realtime::asyncapi::AsyncApi;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! #[serde(tag = "event", content = "data")]
//! enum In { #[serde(rename = "ping")] Ping { n: u32 } }
//!
//! #[derive(Serialize, schemars::JsonSchema)]
//! #[serde(tag = "event", content = "data")]
//! enum Out { #[serde(rename = "pong")] Pong { n: u32 } }
//!
//! #[controller("/api")]
//! struct Api;
//!
//! #[controller]
//! impl Api {
//!     #[websocket("/ping")]
//!     async fn ping(&self, mut socket: TypedSocket<In, Out>) -> Result<(), Error> {
//!         while let Some(Ok(msg)) = socket.recv().await {
//!             let In::Ping { n } = msg.data;
//!             socket.send(&Out::Pong { n }).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[module(controllers: [Api])]
//! struct AppModule;
//!
//! let app = App::new().module::<AppModule>().build().unwrap();
//! let api = AsyncApi::new("Ping", "1.0.0");
//! let doc = api.document(&app);
//! assert_eq!(doc["asyncapi"], "3.0.0");
//! assert_eq!(doc["channels"]["ping"]["address"], "/api/ping");
//! let ts = api.typescript(&app);
//! assert!(ts.contains("export function connectPing("));
//! ```
//!
//! The document has one channel per WebSocket or SSE route (its id the handler's name, its
//! address the path with `{param}`s), one message per event and direction, and one
//! operation per message: `receive` for what the client sends, `send` for what the server
//! sends (AsyncAPI describes the application, here the server). Each payload is the
//! envelope of [`typed`](crate::typed): `{"event": <const>, "data": <the type>, "ack"?}`;
//! named Rust types become `components/schemas`. Routes without declared types are listed
//! as channels without messages.
//!
//! The TypeScript module has a type per schema, an interface per route and direction
//! mapping event names to data types, and `connect<Route>(url)` / `subscribe<Route>(url)`
//! returning a socket whose `send(event, data)`, `request(event, data)` (with an `ack`, the
//! reply as a promise) and `on(event, handler)` only take the route's events and their
//! types. [`AsyncApi::javascript`] is the same module without types, for a page without a
//! build step.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::app::AppService;
use crate::module::RouteKind;
use crate::typed::{EventSchema, MessageError};

/// Where named schemas go in the document.
const SCHEMAS: &str = "#/components/schemas/";

/// The document's header and the generator.
#[derive(Debug, Clone)]
pub struct AsyncApi {
    title: String,
    version: String,
    description: Option<String>,
}

/// One route as the generators see it.
#[derive(Debug)]
struct Channel {
    id: String,
    path: String,
    address: String,
    params: Vec<String>,
    kind: RouteKind,
    client: Vec<EventSchema>,
    server: Vec<EventSchema>,
    typed: bool,
}

impl AsyncApi {
    /// A generator for a document titled `title` at API version `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
            description: None,
        }
    }

    /// The document's `info.description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    fn collect(&self, app: &AppService) -> (Vec<Channel>, Map<String, Value>) {
        let settings = SchemaSettings::draft07().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        let mut generator = SchemaGenerator::new(settings);
        // The `error` answer of every typed socket.
        let _ = generator.subschema_for::<MessageError>();
        let mut channels = Vec::new();
        let mut seen = BTreeMap::<String, usize>::new();
        for (method, path, route) in app.routes_with_messages() {
            if method != http::Method::GET
                || !matches!(route.0, RouteKind::WebSocket | RouteKind::Sse)
            {
                continue;
            }
            let (name, (client, server), typed) = match route.1 {
                Some((name, describe)) => (name.to_owned(), describe(&mut generator), true),
                None => (id_from_path(&path), (Vec::new(), Vec::new()), false),
            };
            let mut id = sanitize(&name);
            let n = seen.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                id = format!("{id}_{n}");
            }
            let params = path
                .split('/')
                .filter_map(|s| s.strip_prefix(':').or_else(|| s.strip_prefix('*')))
                .map(str::to_owned)
                .collect();
            let address = path
                .split('/')
                .map(
                    |s| match s.strip_prefix(':').or_else(|| s.strip_prefix('*')) {
                        Some(p) => format!("{{{p}}}"),
                        None => s.to_owned(),
                    },
                )
                .collect::<Vec<_>>()
                .join("/");
            channels.push(Channel {
                id,
                path,
                address,
                params,
                kind: route.0,
                client,
                server,
                typed,
            });
        }
        let schemas = generator
            .take_definitions(true)
            .into_iter()
            .collect::<Map<_, _>>();
        (channels, schemas)
    }

    /// The AsyncAPI 3.0.0 document of `app`'s WebSocket and SSE routes.
    pub fn document(&self, app: &AppService) -> Value {
        let (channels, schemas) = self.collect(app);
        let mut info = json!({ "title": self.title, "version": self.version });
        if let Some(d) = &self.description {
            info["description"] = Value::from(d.as_str());
        }
        let mut doc_channels = Map::new();
        let mut operations = Map::new();
        for channel in &channels {
            let mut messages = Map::new();
            let mut add = |events: &[EventSchema], from_client: bool| {
                for event in events {
                    let key = message_key(&event.name, from_client);
                    let mut message = json!({
                        "name": event.name,
                        "title": event.name,
                        "contentType": "application/json",
                        "payload": envelope_schema(event, channel.kind == RouteKind::WebSocket),
                    });
                    if let Some(d) = &event.description {
                        message["summary"] = Value::from(d.as_str());
                    }
                    messages.insert(key.clone(), message);
                    let op_id = format!(
                        "{}.{}",
                        channel.id,
                        key.replace("client.", "receive.")
                            .replace("server.", "send.")
                    );
                    operations.insert(
                        op_id,
                        json!({
                            "action": if from_client { "receive" } else { "send" },
                            "channel": { "$ref": format!("#/channels/{}", channel.id) },
                            "summary": format!(
                                "{} `{}` on {}",
                                if from_client { "The client sends" } else { "The server sends" },
                                event.name,
                                channel.path
                            ),
                            "messages": [
                                { "$ref": format!("#/channels/{}/messages/{key}", channel.id) }
                            ],
                        }),
                    );
                }
            };
            add(&channel.client, true);
            add(&channel.server, false);
            if channel.typed && channel.kind == RouteKind::WebSocket {
                let event = EventSchema {
                    name: crate::typed::ERROR_EVENT.into(),
                    data: Some(json!({ "$ref": format!("{SCHEMAS}MessageError") })),
                    description: Some(
                        "The answer to a message the server could not take; the connection stays open."
                            .into(),
                    ),
                };
                add(std::slice::from_ref(&event), false);
            }
            let mut doc_channel = json!({
                "address": channel.address,
                "description": format!(
                    "{} route `{}`{}",
                    match channel.kind {
                        RouteKind::WebSocket => "WebSocket",
                        _ => "Server-Sent Events",
                    },
                    channel.path,
                    if channel.typed { "" } else { " (its messages are not typed)" },
                ),
                "messages": messages,
            });
            if !channel.params.is_empty() {
                let params: Map<String, Value> = channel
                    .params
                    .iter()
                    .map(|p| {
                        (
                            p.clone(),
                            json!({ "description": format!("the `:{p}` path segment") }),
                        )
                    })
                    .collect();
                doc_channel["parameters"] = Value::Object(params);
            }
            doc_channel["bindings"] = match channel.kind {
                RouteKind::WebSocket => {
                    json!({ "ws": { "method": "GET", "bindingVersion": "0.1.0" } })
                }
                _ => json!({ "http": { "method": "GET", "bindingVersion": "0.3.0" } }),
            };
            doc_channels.insert(channel.id.clone(), doc_channel);
        }
        json!({
            "asyncapi": "3.0.0",
            "info": info,
            "defaultContentType": "application/json",
            "channels": doc_channels,
            "operations": operations,
            "components": { "schemas": schemas },
        })
    }

    /// The document as pretty JSON with a final newline (what to check in).
    pub fn document_json(&self, app: &AppService) -> String {
        let mut text = serde_json::to_string_pretty(&self.document(app)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The TypeScript client module of `app`'s typed routes.
    pub fn typescript(&self, app: &AppService) -> String {
        self.client(app, true)
    }

    /// [`typescript`](Self::typescript) without the types: plain ES module JavaScript.
    pub fn javascript(&self, app: &AppService) -> String {
        self.client(app, false)
    }

    fn client(&self, app: &AppService, ts: bool) -> String {
        let (channels, schemas) = self.collect(app);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "// Generated by armature-realtime's AsyncApi from the server's types (`{}` {}).\n// Do not edit: regenerate with `cargo xtask asyncapi`.\n",
            self.title, self.version
        );
        if ts {
            for (name, schema) in &schemas {
                let _ = writeln!(
                    out,
                    "export type {} = {};\n",
                    ts_ident(name),
                    ts_type(schema, 0)
                );
            }
            out.push_str(TS_RUNTIME);
        } else {
            out.push_str(&strip_types(TS_RUNTIME));
        }
        for channel in channels.iter().filter(|c| c.typed) {
            let pascal = pascal(&channel.id);
            let events = |events: &[EventSchema]| {
                let mut s = String::from("{\n");
                for e in events {
                    let ty = match &e.data {
                        Some(data) => ts_type(data, 1),
                        None => "undefined".into(),
                    };
                    let _ = writeln!(s, "  {}: {ty};", json!(e.name));
                }
                s.push('}');
                s
            };
            let params_ts = if channel.params.is_empty() {
                String::new()
            } else {
                let fields: Vec<String> = channel
                    .params
                    .iter()
                    .map(|p| format!("{}: string", json!(p)))
                    .collect();
                format!("params: {{ {} }}", fields.join("; "))
            };
            let params_js = if channel.params.is_empty() {
                ""
            } else {
                "params"
            };
            let path_expr = {
                let parts: Vec<String> = channel
                    .path
                    .split('/')
                    .map(
                        |s| match s.strip_prefix(':').or_else(|| s.strip_prefix('*')) {
                            Some(p) => format!("${{encodeURIComponent(params[{}])}}", json!(p)),
                            None => s.to_owned(),
                        },
                    )
                    .collect();
                format!("`{}`", parts.join("/"))
            };
            let p = if ts { params_ts.as_str() } else { params_js };
            let _ = writeln!(
                out,
                "\n/** The path of `{}` ({:?} route `{}`). */\nexport function {}Path({p}){} {{\n  return {path_expr};\n}}",
                channel.id,
                channel.kind,
                channel.path,
                lower_first(&pascal),
                if ts { ": string" } else { "" },
            );
            match channel.kind {
                RouteKind::WebSocket => {
                    if ts {
                        let _ = writeln!(
                            out,
                            "\n/** What the client sends on `{}`: event name → data. */\nexport interface {pascal}ClientEvents {}\n\n/** What the server sends on `{}`: event name → data. */\nexport interface {pascal}ServerEvents {}",
                            channel.path,
                            events(&channel.client),
                            channel.path,
                            events(&channel.server),
                        );
                        let _ = writeln!(
                            out,
                            "\n/** Opens `{}` at `url` (`ws://host{}`). */\nexport function connect{pascal}(url: string | URL, protocols?: string | string[]): TypedSocket<{pascal}ClientEvents, {pascal}ServerEvents> {{\n  return new TypedSocket<{pascal}ClientEvents, {pascal}ServerEvents>(url, protocols);\n}}",
                            channel.path, channel.address,
                        );
                    } else {
                        let _ = writeln!(
                            out,
                            "\n/** Opens `{}` at `url` (`ws://host{}`). */\nexport function connect{pascal}(url, protocols) {{\n  return new TypedSocket(url, protocols);\n}}",
                            channel.path, channel.address,
                        );
                    }
                }
                _ => {
                    if ts {
                        let _ = writeln!(
                            out,
                            "\n/** The events of `{}`: event name → data. */\nexport interface {pascal}Events {}",
                            channel.path,
                            events(&channel.server),
                        );
                        let _ = writeln!(
                            out,
                            "\n/** Subscribes to `{}` at `url`. */\nexport function subscribe{pascal}(url: string | URL): TypedEventSource<{pascal}Events> {{\n  return new TypedEventSource<{pascal}Events>(url);\n}}",
                            channel.path,
                        );
                    } else {
                        let _ = writeln!(
                            out,
                            "\n/** Subscribes to `{}` at `url`. */\nexport function subscribe{pascal}(url) {{\n  return new TypedEventSource(url);\n}}",
                            channel.path,
                        );
                    }
                }
            }
        }
        out
    }
}

/// The runtime of the generated client: typed `send`/`request`/`on` over the envelope.
const TS_RUNTIME: &str = r#"/** One message of a typed route: `{"event", "data", "ack"}`. */
export interface Envelope {
  event: string;
  data?: unknown;
  ack?: number;
}

/** The arguments after an event name: none for an event without data. */
export type DataArgs<T> = [T] extends [undefined] ? [] : [data: T];

/** One event of a map `E` with its data, as a union. */
export type EventOf<E> = { [K in keyof E & string]: { event: K; data: E[K] } }[keyof E & string];

/** A WebSocket whose messages are the typed events `C` (client → server) and `S` (server → client). */
export class TypedSocket<C, S> {
  readonly ws: WebSocket;
  private handlers: Map<string, Set<(data: any) => void>> = new Map();
  private pending: Map<number, { resolve: (reply: any) => void; reject: (error: any) => void }> = new Map();
  private nextAck: number = 1;

  constructor(url: string | URL, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.addEventListener("message", (message: MessageEvent) => this.dispatch(message.data));
    this.ws.addEventListener("close", () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error("connection closed"));
      this.pending.clear();
    });
  }

  /** Resolves once the socket is open. */
  opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error("connection failed")), { once: true });
    });
  }

  /** Sends `event` with its data. */
  send<K extends keyof C & string>(event: K, ...data: DataArgs<C[K]>): void {
    this.ws.send(JSON.stringify(data.length ? { event, data: data[0] } : { event }));
  }

  /** Sends `event` asking for a reply; resolves with the server's reply (an event of `S`), rejects with its `error`. */
  request<K extends keyof C & string>(event: K, ...data: DataArgs<C[K]>): Promise<EventOf<S>> {
    const ack = this.nextAck++;
    return new Promise((resolve, reject) => {
      this.pending.set(ack, { resolve, reject });
      this.ws.send(JSON.stringify(data.length ? { event, data: data[0], ack } : { event, ack }));
    });
  }

  /** Calls `handler` with the data of every `event`; returns a function that stops it. */
  on<K extends keyof S & string>(event: K, handler: (data: S[K]) => void): () => void {
    return this.listen(event, handler);
  }

  /** Calls `handler` with every `error` the server answers a message with. */
  onError(handler: (error: MessageError) => void): () => void {
    return this.listen("error", handler);
  }

  /** Closes the socket. */
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  private listen(event: string, handler: (data: any) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  private dispatch(text: unknown): void {
    if (typeof text !== "string") return;
    let message: Envelope;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message.ack === "number") {
      const waiter = this.pending.get(message.ack);
      if (waiter) {
        this.pending.delete(message.ack);
        if (message.event === "error") waiter.reject(message.data);
        else waiter.resolve({ event: message.event, data: message.data });
        return;
      }
    }
    for (const handler of this.handlers.get(message.event) ?? []) handler(message.data);
  }
}

/** An EventSource whose events are the typed map `E`. */
export class TypedEventSource<E> {
  readonly source: EventSource;

  constructor(url: string | URL) {
    this.source = new EventSource(url);
  }

  /** Calls `handler` with the parsed data of every `event`; returns a function that stops it. */
  on<K extends keyof E & string>(event: K, handler: (data: E[K]) => void): () => void {
    const listener = (message: MessageEvent) => handler(JSON.parse(message.data));
    this.source.addEventListener(event, listener as EventListener);
    return () => this.source.removeEventListener(event, listener as EventListener);
  }

  /** Closes the stream. */
  close(): void {
    this.source.close();
  }
}
"#;

/// The TypeScript runtime without its types, as JavaScript. Works on [`TS_RUNTIME`] only:
/// every annotation there is written so that these rules remove it.
fn strip_types(ts: &str) -> String {
    let mut out = String::new();
    let mut skip_block = false;
    for line in ts.lines() {
        let trimmed = line.trim_start();
        if skip_block {
            if line.starts_with('}') {
                skip_block = false;
            }
            continue;
        }
        if trimmed.starts_with("export interface") {
            skip_block = !trimmed.ends_with('}');
            drop_trailing_doc(&mut out);
            continue;
        }
        if trimmed.starts_with("export type") {
            drop_trailing_doc(&mut out);
            continue;
        }
        let mut l = line.to_owned();
        // field declarations with types
        if let Some(name) = trimmed
            .strip_prefix("readonly ")
            .or_else(|| trimmed.strip_prefix("private "))
        {
            let indent = &line[..line.len() - trimmed.len()];
            match name.split_once(':') {
                Some((field, rest)) if !field.contains('(') => {
                    let value = rest.split_once(" = ").map(|(_, v)| v.to_owned());
                    l = match value {
                        Some(v) => format!("{indent}{field} = {v}"),
                        None => format!("{indent}{field};"),
                    };
                }
                _ => {
                    l = format!("{indent}{name}");
                }
            }
        }
        l = strip_signature(&l);
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Removes a one-line doc comment that ends `out` (its item was dropped).
fn drop_trailing_doc(out: &mut String) {
    let body = out.strip_suffix('\n').unwrap_or(out);
    let start = body.rfind('\n').map_or(0, |i| i + 1);
    let last = body[start..].trim();
    if last.starts_with("/**") && last.ends_with("*/") {
        out.truncate(start);
    }
}

/// Removes generics and annotations from one line of [`TS_RUNTIME`].
fn strip_signature(line: &str) -> String {
    let mut l = line.to_owned();
    for (from, to) in [
        (
            "export class TypedSocket<C, S> {",
            "export class TypedSocket {",
        ),
        (
            "export class TypedEventSource<E> {",
            "export class TypedEventSource {",
        ),
        (
            "constructor(url: string | URL, protocols?: string | string[]) {",
            "constructor(url, protocols) {",
        ),
        ("constructor(url: string | URL) {", "constructor(url) {"),
        ("(message: MessageEvent) =>", "(message) =>"),
        ("opened(): Promise<void> {", "opened() {"),
        (
            "send<K extends keyof C & string>(event: K, ...data: DataArgs<C[K]>): void {",
            "send(event, ...data) {",
        ),
        (
            "request<K extends keyof C & string>(event: K, ...data: DataArgs<C[K]>): Promise<EventOf<S>> {",
            "request(event, ...data) {",
        ),
        (
            "on<K extends keyof S & string>(event: K, handler: (data: S[K]) => void): () => void {",
            "on(event, handler) {",
        ),
        (
            "on<K extends keyof E & string>(event: K, handler: (data: E[K]) => void): () => void {",
            "on(event, handler) {",
        ),
        (
            "onError(handler: (error: MessageError) => void): () => void {",
            "onError(handler) {",
        ),
        (
            "close(code?: number, reason?: string): void {",
            "close(code, reason) {",
        ),
        ("close(): void {", "close() {"),
        (
            "listen(event: string, handler: (data: any) => void): () => void {",
            "#listen(event, handler) {",
        ),
        ("dispatch(text: unknown): void {", "#dispatch(text) {"),
        ("let message: Envelope;", "let message;"),
        (" as EventListener", ""),
        ("this.listen(", "this.#listen("),
        ("this.dispatch(", "this.#dispatch("),
    ] {
        l = l.replace(from, to);
    }
    l
}

/// A component key or channel id: AsyncAPI allows `[A-Za-z0-9._-]`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn message_key(event: &str, from_client: bool) -> String {
    format!(
        "{}.{}",
        if from_client { "client" } else { "server" },
        sanitize(event)
    )
}

fn id_from_path(path: &str) -> String {
    let id: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_start_matches([':', '*']))
        .collect();
    if id.is_empty() {
        "root".into()
    } else {
        id.join("_")
    }
}

/// The envelope of one event: `event` fixed, `data` typed, `ack` on WebSocket routes.
fn envelope_schema(event: &EventSchema, websocket: bool) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "event".into(),
        json!({ "type": "string", "const": event.name }),
    );
    let mut required = vec![Value::from("event")];
    if let Some(data) = &event.data {
        properties.insert("data".into(), data.clone());
        required.push("data".into());
    }
    if websocket {
        properties.insert(
            "ack".into(),
            json!({ "type": "integer", "minimum": 0, "description": "asks for a reply (client), or marks one (server)" }),
        );
    }
    json!({ "type": "object", "properties": properties, "required": required })
}

fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn ts_ident(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{id}")
    } else {
        id
    }
}

/// A TypeScript type for a JSON Schema (the subset schemars writes).
fn ts_type(schema: &Value, depth: usize) -> String {
    let Value::Object(s) = schema else {
        return match schema {
            Value::Bool(false) => "never".into(),
            _ => "unknown".into(),
        };
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return match r.strip_prefix(SCHEMAS) {
            Some(name) => ts_ident(name),
            None => "unknown".into(),
        };
    }
    if let Some(c) = s.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        return union(values.iter().map(Value::to_string).collect());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            let mut base = s.clone();
            base.remove(key);
            let common = has_shape(&base).then(|| ts_type(&Value::Object(base.clone()), depth));
            let alts: Vec<String> = branches
                .iter()
                .map(|b| match &common {
                    Some(c) => format!("({c} & {})", ts_type(b, depth)),
                    None => ts_type(b, depth),
                })
                .collect();
            return union(alts);
        }
    }
    if let Some(Value::Array(parts)) = s.get("allOf") {
        return parts
            .iter()
            .map(|p| ts_type(p, depth))
            .collect::<Vec<_>>()
            .join(" & ");
    }
    match s.get("type") {
        Some(Value::Array(types)) => union(
            types
                .iter()
                .map(|t| {
                    let mut one = s.clone();
                    one.insert("type".into(), t.clone());
                    ts_type(&Value::Object(one), depth)
                })
                .collect(),
        ),
        Some(Value::String(t)) => match t.as_str() {
            "string" => "string".into(),
            "integer" | "number" => "number".into(),
            "boolean" => "boolean".into(),
            "null" => "null".into(),
            "array" => match s.get("items") {
                Some(Value::Array(items)) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| ts_type(i, depth))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(items) => format!("Array<{}>", ts_type(items, depth)),
                None => match s.get("prefixItems") {
                    Some(Value::Array(items)) => format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|i| ts_type(i, depth))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => "Array<unknown>".into(),
                },
            },
            "object" => object_type(s, depth),
            _ => "unknown".into(),
        },
        _ if s.contains_key("properties") => object_type(s, depth),
        _ => "unknown".into(),
    }
}

fn has_shape(s: &Map<String, Value>) -> bool {
    s.contains_key("type") || s.contains_key("properties")
}

fn object_type(s: &Map<String, Value>, depth: usize) -> String {
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pad = "  ".repeat(depth + 1);
    let mut fields = Vec::new();
    if let Some(Value::Object(props)) = s.get("properties") {
        for (name, prop) in props {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            let doc = prop
                .get("description")
                .and_then(Value::as_str)
                .map(|d| {
                    format!(
                        "{pad}/** {} */\n",
                        d.replace("*/", "* /").replace('\n', " ")
                    )
                })
                .unwrap_or_default();
            fields.push(format!(
                "{doc}{pad}{}{optional}: {};",
                json!(name),
                ts_type(prop, depth + 1)
            ));
        }
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(false)) => {}
        Some(extra @ Value::Object(_)) => fields.push(format!(
            "{pad}[key: string]: {};",
            ts_type(extra, depth + 1)
        )),
        _ if fields.is_empty() => fields.push(format!("{pad}[key: string]: unknown;")),
        _ => {}
    }
    if fields.is_empty() {
        return "Record<string, never>".into();
    }
    format!("{{\n{}\n{}}}", fields.join("\n"), "  ".repeat(depth))
}

fn union(mut alts: Vec<String>) -> String {
    alts.dedup();
    match alts.len() {
        0 => "never".into(),
        1 => alts.remove(0),
        _ => alts.join(" | "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_become_typescript_types() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": { "type": "string" },
                "b": { "type": ["integer", "null"] },
                "c": { "type": "array", "items": { "$ref": "#/components/schemas/Item" } },
                "d": { "enum": ["x", "y"] }
            },
            "required": ["a", "c"]
        });
        let ts = ts_type(&schema, 0);
        assert!(ts.contains("\"a\": string;"), "{ts}");
        assert!(ts.contains("\"b\"?: number | null;"), "{ts}");
        assert!(ts.contains("\"c\": Array<Item>;"), "{ts}");
        assert!(ts.contains("\"d\"?: \"x\" | \"y\";"), "{ts}");
    }

    #[test]
    fn ids_and_keys_are_what_asyncapi_allows() {
        assert_eq!(sanitize("chat:send"), "chat_send");
        assert_eq!(message_key("room:join", true), "client.room_join");
        assert_eq!(id_from_path("/ws/chat/:room"), "ws_chat_room");
        assert_eq!(pascal("typed_chat"), "TypedChat");
    }

    #[test]
    fn the_javascript_runtime_has_no_type_left() {
        let js = strip_types(TS_RUNTIME);
        for typed in [
            ": string",
            "<C, S>",
            ": void",
            "interface",
            "export type",
            ": Map<",
        ] {
            assert!(!js.contains(typed), "`{typed}` left in:\n{js}");
        }
    }
}
