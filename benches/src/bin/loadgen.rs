//! The load generator of `cargo xtask bench`: `loadgen SCENARIO --addr HOST:PORT [options]`
//! (`loadgen --help` lists them). Runs one scenario of PROTOCOL.md on a current-thread
//! runtime and prints its [`Report`](benches::loadgen::common::Report) as one JSON object.

use std::process::ExitCode;

use benches::loadgen::cli::{self, Scenario};
use benches::loadgen::common::Target;
use benches::loadgen::system::{SourceAddrs, raise_nofile_limit};
use benches::loadgen::{deflate, echo, fanout, idle, payload};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_none_or(|a| a == "--help" || a == "-h") {
        eprintln!("{}", cli::USAGE);
        return ExitCode::from(2);
    }
    let cmd = match cli::parse(&args) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("loadgen: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = raise_nofile_limit() {
        eprintln!("loadgen: cannot raise the open-file limit: {e}");
    }
    deflate::set_offered(cmd.deflate);
    payload::set_json_fill(cmd.json_fill);
    let target = Target {
        server: cmd.addr,
        server_pid: cmd.server_pid,
        sources: SourceAddrs::new(cmd.sources),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cmd.scenario {
            Scenario::Echo(cfg) => echo::run(&target, cfg).await,
            Scenario::Fanout(cfg) => fanout::run(&target, cfg).await,
            Scenario::Idle(cfg) => idle::run(&target, cfg).await,
        }
    });
    // Dropping the runtime cancels whatever a failed scenario left running.
    drop(runtime);
    // A compressed run says how much was compressed: a server that negotiated
    // permessage-deflate but sent everything plain shows 0 compressed messages.
    let result = result.map(|mut report| {
        if cmd.deflate {
            let (conns, messages) = deflate::counts();
            report.metric("deflate_connections", conns as f64);
            report.metric("compressed_received", messages as f64);
            report.param("deflate", 1.0);
        }
        if cmd.json_fill {
            report.param("json_fill", 1.0);
        }
        report
    });
    match result.and_then(|report| serde_json::to_string(&report).map_err(std::io::Error::other)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
