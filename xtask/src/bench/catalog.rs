//! The servers compared and the scenarios run, with the generator arguments of each.

/// How a server is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launch {
    /// A release binary of the `benches` package (`target/release/NAME`).
    BenchesBin(&'static str),
    /// Our bench server, `cargo build --release -p examples --example bench_server`.
    OurExample,
    /// The Node peer in `benches/peers/uws/`.
    NodeUws,
}

/// A server under test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Server {
    /// Id used on the command line and in results.json.
    pub(crate) id: &'static str,
    /// What the report calls it.
    pub(crate) label: &'static str,
    /// What the chart calls it (a bar is narrow).
    pub(crate) short: &'static str,
    /// How to start it.
    pub(crate) launch: Launch,
}

/// Servers that serve only the GraphQL scenario (and the only ones that serve it).
pub(crate) const GRAPHQL_SERVERS: [&str; 2] = ["armature-graphql", "async-graphql"];

/// The GraphQL scenario's id.
pub(crate) const GRAPHQL_SCENARIO: &str = "graphql-1k";

/// Servers that serve the compressed scenarios (permessage-deflate with a shared
/// compressor): ours and uWebSockets.
pub(crate) const COMPRESSING_SERVERS: [&str; 2] = ["armature", "uws"];

/// True when `server` runs `scenario`: the GraphQL pair runs the GraphQL scenario only,
/// every other server every other scenario, except the compressed ones, which only the
/// compressing servers run.
pub(crate) fn runs(server: &str, scenario: &str) -> bool {
    let compressed = self::scenario(scenario).is_some_and(|s| s.compressed);
    GRAPHQL_SERVERS.contains(&server) == (scenario == GRAPHQL_SCENARIO)
        && (!compressed || COMPRESSING_SERVERS.contains(&server))
}

/// Every server, ours first.
pub(crate) const SERVERS: [Server; 7] = [
    Server {
        id: "armature",
        label: "armature (ours)",
        short: "ours",
        launch: Launch::OurExample,
    },
    Server {
        id: "tokio-tungstenite",
        label: "tokio-tungstenite",
        short: "tungstenite",
        launch: Launch::BenchesBin("peer_tungstenite"),
    },
    Server {
        id: "axum",
        label: "axum",
        short: "axum",
        launch: Launch::BenchesBin("peer_axum"),
    },
    Server {
        id: "fastwebsockets",
        label: "fastwebsockets",
        short: "fastws",
        launch: Launch::BenchesBin("peer_fastwebsockets"),
    },
    Server {
        id: "uws",
        label: "uWebSockets (Node)",
        short: "uws",
        launch: Launch::NodeUws,
    },
    Server {
        id: "armature-graphql",
        label: "armature-realtime-graphql (ours)",
        short: "ours gql",
        launch: Launch::BenchesBin("graphql_ours"),
    },
    Server {
        id: "async-graphql",
        label: "async-graphql-axum",
        short: "async-gql",
        launch: Launch::BenchesBin("peer_async_graphql"),
    },
];

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, memory).
    Lower,
    /// Must be zero (missing deliveries); no ratio.
    Zero,
}

/// One row of the report table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Metric name in the generator's report.
    pub(crate) metric: &'static str,
    /// Row label.
    pub(crate) label: &'static str,
    /// Direction.
    pub(crate) better: Better,
}

/// A scenario: generator arguments for full and quick mode, and the rows it reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    /// Id used on the command line and in results.json.
    pub(crate) id: &'static str,
    /// What the report calls it.
    pub(crate) label: &'static str,
    /// `loadgen` arguments (scenario first) in full mode.
    pub(crate) full: &'static [&'static str],
    /// `loadgen` arguments in quick mode.
    pub(crate) quick: &'static [&'static str],
    /// Rows of the table.
    pub(crate) rows: &'static [Row],
    /// The row the chart shows: work per server CPU-second where there is one, since it
    /// holds when other work takes the server's core away (the chart falls back to the
    /// first row if no server has it).
    pub(crate) chart_row: usize,
    /// The server runs with permessage-deflate on (`COMPRESSION=shared`: our shared mode,
    /// uWebSockets' `SHARED_COMPRESSOR`) and the generator offers it (`--deflate on`).
    pub(crate) compressed: bool,
}

const fn row(metric: &'static str, label: &'static str, better: Better) -> Row {
    Row {
        metric,
        label,
        better,
    }
}

const ECHO_ROWS: &[Row] = &[
    row("round_trips_per_s", "round trips/s", Better::Higher),
    row(
        "round_trips_per_cpu_s",
        "round trips per server CPU-second",
        Better::Higher,
    ),
    row("p99_us", "p99 latency µs", Better::Lower),
];

const FANOUT_ROWS: &[Row] = &[
    row("deliveries_per_s", "deliveries/s", Better::Higher),
    row(
        "deliveries_per_cpu_s",
        "deliveries per server CPU-second",
        Better::Higher,
    ),
    row("p99_us", "p99 latency µs", Better::Lower),
    row("missing", "missing deliveries", Better::Zero),
];

/// The generator options of a compressed scenario: permessage-deflate offered, payloads
/// of JSON-like text (a few hundred bytes, so compression pays).
const DEFLATE: [&str; 4] = ["--deflate", "on", "--fill", "json"];

/// Every scenario of PROTOCOL.md, the GraphQL one, and the compressed ones.
pub(crate) const SCENARIOS: [Scenario; 12] = [
    Scenario {
        id: "echo",
        label: "echo, 64 conns × 16 in flight",
        full: &[
            "echo",
            "--connections",
            "64",
            "--in-flight",
            "16",
            "--payload",
            "32",
            "--duration-s",
            "5",
        ],
        quick: &[
            "echo",
            "--connections",
            "64",
            "--in-flight",
            "16",
            "--payload",
            "32",
            "--duration-s",
            "1",
        ],
        rows: ECHO_ROWS,
        chart_row: 1,
        compressed: false,
    },
    Scenario {
        id: "fanout-1k",
        label: "WS fan-out, 1,000 subscribers",
        full: &[
            "fanout",
            "--subscribers",
            "1000",
            "--messages",
            "1000",
            "--payload",
            "64",
        ],
        quick: &[
            "fanout",
            "--subscribers",
            "100",
            "--messages",
            "200",
            "--payload",
            "64",
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: false,
    },
    Scenario {
        id: "fanout-10k",
        label: "WS fan-out, 10,000 subscribers",
        full: &[
            "fanout",
            "--subscribers",
            "10000",
            "--messages",
            "100",
            "--payload",
            "64",
        ],
        quick: &[
            "fanout",
            "--subscribers",
            "500",
            "--messages",
            "50",
            "--payload",
            "64",
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: false,
    },
    Scenario {
        id: "sse-1k",
        label: "SSE fan-out, 1,000 clients",
        full: &[
            "sse",
            "--subscribers",
            "1000",
            "--messages",
            "1000",
            "--payload",
            "64",
        ],
        quick: &[
            "sse",
            "--subscribers",
            "100",
            "--messages",
            "100",
            "--payload",
            "64",
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: false,
    },
    Scenario {
        id: "idle-ws",
        label: "idle WebSocket connections",
        full: &["idle-ws", "--connections", "10000", "--settle-ms", "2000"],
        quick: &["idle-ws", "--connections", "500", "--settle-ms", "300"],
        rows: &[row("kib_per_conn", "KiB per connection", Better::Lower)],
        chart_row: 0,
        compressed: false,
    },
    Scenario {
        id: "idle-sse",
        label: "idle SSE clients",
        full: &["idle-sse", "--connections", "10000", "--settle-ms", "2000"],
        quick: &["idle-sse", "--connections", "500", "--settle-ms", "300"],
        rows: &[row("kib_per_conn", "KiB per client", Better::Lower)],
        chart_row: 0,
        compressed: false,
    },
    Scenario {
        id: "idle-ws-max",
        label: "idle WebSockets, as many as open (of 50,000)",
        full: &["idle-ws", "--connections", "50000", "--settle-ms", "2000"],
        quick: &["idle-ws", "--connections", "1000", "--settle-ms", "300"],
        // the cell shows "(N of 50 k opened)": the largest count the open-file limit allowed
        rows: &[row("kib_per_conn", "KiB per connection", Better::Lower)],
        chart_row: 0,
        compressed: false,
    },
    Scenario {
        id: GRAPHQL_SCENARIO,
        label: "GraphQL subscriptions (graphql-transport-ws), 1,000 subscribers",
        full: &[
            "graphql",
            "--subscribers",
            "1000",
            "--messages",
            "300",
            "--payload",
            "64",
        ],
        quick: &[
            "graphql",
            "--subscribers",
            "100",
            "--messages",
            "100",
            "--payload",
            "64",
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: false,
    },
    Scenario {
        id: "echo-deflate",
        label: "echo, permessage-deflate, 300-byte JSON, 64 conns × 16 in flight",
        full: &[
            "echo",
            "--connections",
            "64",
            "--in-flight",
            "16",
            "--payload",
            "300",
            "--duration-s",
            "5",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        quick: &[
            "echo",
            "--connections",
            "64",
            "--in-flight",
            "16",
            "--payload",
            "300",
            "--duration-s",
            "1",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        rows: ECHO_ROWS,
        chart_row: 1,
        compressed: true,
    },
    Scenario {
        id: "fanout-1k-deflate",
        label: "WS fan-out, permessage-deflate, 300-byte JSON, 1,000 subscribers",
        full: &[
            "fanout",
            "--subscribers",
            "1000",
            "--messages",
            "1000",
            "--payload",
            "300",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        quick: &[
            "fanout",
            "--subscribers",
            "100",
            "--messages",
            "200",
            "--payload",
            "300",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: true,
    },
    Scenario {
        id: "fanout-10k-deflate",
        label: "WS fan-out, permessage-deflate, 300-byte JSON, 10,000 subscribers",
        full: &[
            "fanout",
            "--subscribers",
            "10000",
            "--messages",
            "100",
            "--payload",
            "300",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        quick: &[
            "fanout",
            "--subscribers",
            "500",
            "--messages",
            "50",
            "--payload",
            "300",
            DEFLATE[0],
            DEFLATE[1],
            DEFLATE[2],
            DEFLATE[3],
        ],
        rows: FANOUT_ROWS,
        chart_row: 1,
        compressed: true,
    },
    Scenario {
        id: "idle-ws-deflate",
        label: "idle WebSocket connections, permessage-deflate negotiated",
        full: &[
            "idle-ws",
            "--connections",
            "10000",
            "--settle-ms",
            "2000",
            DEFLATE[0],
            DEFLATE[1],
        ],
        quick: &[
            "idle-ws",
            "--connections",
            "500",
            "--settle-ms",
            "300",
            DEFLATE[0],
            DEFLATE[1],
        ],
        rows: &[row("kib_per_conn", "KiB per connection", Better::Lower)],
        chart_row: 0,
        compressed: true,
    },
];

/// The server with this id.
pub(crate) fn server(id: &str) -> Option<&'static Server> {
    SERVERS.iter().find(|s| s.id == id)
}

/// The scenario with this id.
pub(crate) fn scenario(id: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.id == id)
}
