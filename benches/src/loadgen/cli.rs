//! The `loadgen` command line: `loadgen SCENARIO --addr HOST:PORT [options]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::echo::EchoConfig;
use super::fanout::{FanoutConfig, Transport};
use super::idle::IdleConfig;

/// Usage text.
pub const USAGE: &str = "\
usage: loadgen SCENARIO --addr HOST:PORT [options]
scenarios (PROTOCOL.md defaults in brackets):
  echo      --connections [64] --in-flight [16] --payload [32] --duration-s [5]
  fanout    --subscribers [1000] --messages [1000] --payload [64] --window [32]
            --stall-timeout-s [10] --max-duration-s [120]
  sse       same options as fanout
  graphql   same options as fanout (graphql-transport-ws on /graphql)
  idle-ws   --connections [10000] --settle-ms [2000]   (needs --server-pid)
  idle-sse  --connections [10000] --settle-ms [2000]   (needs --server-pid)
common: --server-pid PID (memory and CPU figures), --sources [8] (client source addresses)
        --deflate on|[off] (WebSockets offer permessage-deflate; what they send is compressed)
        --fill json|[x] (pad payloads with JSON-like text instead of `x`)
prints one JSON object on stdout";

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Command {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The server's pid, if given.
    pub server_pid: Option<u32>,
    /// How many source addresses (`127.0.0.2`…) to spread client sockets over.
    pub sources: u8,
    /// Whether WebSockets offer permessage-deflate (`--deflate on`).
    pub deflate: bool,
    /// Whether payloads are padded with JSON-like text (`--fill json`).
    pub json_fill: bool,
    /// What to run.
    pub scenario: Scenario,
}

/// A scenario with its parameters.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// Echo round trips.
    Echo(EchoConfig),
    /// WebSocket or SSE fan-out.
    Fanout(FanoutConfig),
    /// Idle memory.
    Idle(IdleConfig),
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let (name, rest) = args.split_first().ok_or("missing SCENARIO")?;
    let mut opts = HashMap::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        opts.insert(key.to_owned(), value.clone());
    }
    let mut take = |key: &str| opts.remove(key);
    let addr: SocketAddr = take("addr")
        .ok_or("--addr is required")?
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--addr {addr}: the generator only drives loopback servers"
        ));
    }
    let server_pid = take("server-pid")
        .map(|v| num::<u32>("server-pid", &v))
        .transpose()?;
    let sources = take("sources")
        .map(|v| num::<u8>("sources", &v))
        .transpose()?
        .unwrap_or(8);
    let deflate = match take("deflate").as_deref() {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => return Err(format!("--deflate: on or off, not {other:?}")),
    };
    let json_fill = match take("fill").as_deref() {
        None | Some("x") => false,
        Some("json") => true,
        Some(other) => return Err(format!("--fill: json or x, not {other:?}")),
    };
    let mut get = |key: &str, default: u64| -> Result<u64, String> {
        take(key)
            .map(|v| num::<u64>(key, &v))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let secs = |s: u64| Duration::from_secs(s);
    let scenario = match name.as_str() {
        "echo" => Scenario::Echo(EchoConfig {
            connections: get("connections", 64)? as usize,
            in_flight: get("in-flight", 16)?.max(1) as usize,
            payload_len: get("payload", 32)?.max(super::payload::MIN_LEN as u64) as usize,
            duration: secs(get("duration-s", 5)?.max(1)),
        }),
        "fanout" | "sse" | "graphql" => Scenario::Fanout(FanoutConfig {
            transport: if name == "sse" {
                Transport::Sse
            } else if name == "graphql" {
                Transport::GraphQL
            } else {
                Transport::WebSocket
            },
            subscribers: get("subscribers", 1000)?.max(1) as usize,
            messages: get("messages", 1000)?.clamp(1, 10_000_000),
            payload_len: get("payload", 64)?.max(super::payload::MIN_LEN as u64) as usize,
            window: get("window", 32)?.max(1),
            stall_timeout: secs(get("stall-timeout-s", 10)?.max(1)),
            max_duration: secs(get("max-duration-s", 120)?.max(1)),
        }),
        "idle-ws" | "idle-sse" => Scenario::Idle(IdleConfig {
            websocket: name == "idle-ws",
            connections: get("connections", 10_000)? as usize,
            settle: Duration::from_millis(get("settle-ms", 2000)?),
        }),
        other => return Err(format!("unknown scenario {other:?}")),
    };
    if let Some(key) = opts.keys().next() {
        return Err(format!("unknown option --{key} for {name}"));
    }
    Ok(Command {
        addr,
        server_pid,
        sources,
        deflate,
        json_fill,
        scenario,
    })
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{key}: not a number: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_follow_the_protocol() {
        let c = parse(&args("echo --addr 127.0.0.1:9000")).unwrap();
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.sources, 8);
        assert!(!c.deflate && !c.json_fill);
        let c = parse(&args("echo --addr 127.0.0.1:1 --deflate on --fill json")).unwrap();
        assert!(c.deflate && c.json_fill);
        let Scenario::Echo(e) = c.scenario else {
            panic!("not echo")
        };
        assert_eq!((e.connections, e.in_flight, e.payload_len), (64, 16, 32));
        let c = parse(&args(
            "sse --addr 127.0.0.1:1 --subscribers 10 --server-pid 42",
        ))
        .unwrap();
        assert_eq!(c.server_pid, Some(42));
        let Scenario::Fanout(f) = c.scenario else {
            panic!("not fan-out")
        };
        assert_eq!(
            (f.transport, f.subscribers, f.payload_len),
            (Transport::Sse, 10, 64)
        );
    }

    #[test]
    fn rejects_unknown_and_malformed_input() {
        assert!(parse(&args("echo")).unwrap_err().contains("--addr"));
        assert!(
            parse(&args("echo --addr 10.0.0.1:80"))
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            parse(&args("nope --addr 127.0.0.1:1"))
                .unwrap_err()
                .contains("unknown scenario")
        );
        assert!(
            parse(&args("echo --addr 127.0.0.1:1 --subscribers 3"))
                .unwrap_err()
                .contains("--subscribers")
        );
        assert!(
            parse(&args("echo --addr 127.0.0.1:1 --connections x"))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse(&args("echo --addr 127.0.0.1:1 --deflate yes"))
                .unwrap_err()
                .contains("--deflate")
        );
        assert!(
            parse(&args("echo --addr 127.0.0.1:1 --connections"))
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
