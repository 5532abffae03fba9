//! `cargo xtask asyncapi`: rewrites the demo's typed chat AsyncAPI document and its
//! TypeScript/JavaScript client in `examples/static/generated/` from the server's types
//! (`cargo run -p examples --example asyncapi`). `examples/tests/asyncapi.rs` fails while
//! the checked-in files differ from what this writes.

use std::path::Path;
use std::process::Command;

use crate::test::{env_or, run_cmd, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    run_cmd(
        Command::new(env_or("CARGO", "cargo"))
            .current_dir(&root)
            .args(["run", "-q", "-p", "examples", "--example", "asyncapi", "--"])
            .args(args),
    )
}

/// The npm tools the typed chat's tests check the generated files with (`@asyncapi/parser`,
/// `typescript`), installed from their lock file into `examples/tests/node`.
pub(crate) fn node_tools(root: &Path) -> Result<(), String> {
    let dir = root.join("examples/tests/node");
    if dir.join("node_modules/@asyncapi/parser").exists()
        && dir.join("node_modules/typescript").exists()
    {
        return Ok(());
    }
    eprintln!(
        "xtask: npm ci in {} (AsyncAPI validator, tsc)",
        dir.display()
    );
    run_cmd(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir),
    )
}
