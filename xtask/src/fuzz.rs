//! `cargo xtask fuzz [--seconds N]`: every `cargo fuzz` target in `fuzz/`, each for a bounded
//! time (default 60 s), starting from its checked-in seeds.
//!
//! cargo-fuzz needs nightly compiler flags; on a stable toolchain this sets
//! `RUSTC_BOOTSTRAP=1`. It installs `cargo-fuzz` with `cargo install` when it is missing. A
//! crash fails the task; its input is saved under `fuzz/artifacts/<target>/` (see
//! `fuzz/README.md` for turning it into a regression test).

use std::process::Command;

use crate::test::{env_or, run_cmd, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => 60,
        [flag, n] if flag == "--seconds" => n
            .parse::<u32>()
            .map_err(|e| format!("--seconds {n}: {e}"))?,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
    };
    let root = workspace_root();
    let fuzz = root.join("fuzz");
    let cargo = env_or("CARGO", "cargo");
    let installed = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        run_cmd(Command::new(&cargo).args(["install", "--locked", "cargo-fuzz"]))?;
    }
    let mut targets: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .map_err(|e| format!("fuzz/fuzz_targets: {e}"))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".rs")?.to_owned();
            // `*_common.rs` files are modules shared by targets, not targets.
            (!stem.ends_with("_common")).then_some(stem)
        })
        .collect();
    targets.sort();
    for target in &targets {
        eprintln!("xtask fuzz: {target} for {seconds} s");
        // Runs from a scratch corpus seeded by the checked-in one, so the run adds nothing
        // to the work tree but artifacts of crashes.
        let scratch = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        run_cmd(
            Command::new(&cargo)
                .current_dir(&fuzz)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", target])
                .arg(&scratch)
                .arg(fuzz.join("corpus").join(target))
                .arg("--")
                .arg(format!("-max_total_time={seconds}")),
        )?;
    }
    Ok(())
}
