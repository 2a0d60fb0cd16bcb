//! `cargo xtask test`: every check CI runs, in order, with emulator set-up around the tests.

use crate::{shared_dir, vectors_decrypt, workspace_root};
use anyhow::{Context, Result};
use std::process::Command;

/// One step's outcome.
struct Step {
    name: &'static str,
    ok: bool,
}

fn cargo(args: &[&str]) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    Ok(status.success())
}

/// Run everything; `Ok(false)` if any step failed.
pub fn run() -> Result<bool> {
    let mut steps = Vec::new();
    steps.push(Step {
        name: "cargo fmt --check",
        ok: cargo(&["fmt", "--all", "--", "--check"])?,
    });
    steps.push(Step {
        name: "cargo clippy -D warnings",
        ok: cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?,
    });
    steps.push(Step {
        name: "cargo test --workspace",
        ok: cargo(&["test", "--workspace"])?,
    });
    println!(
        "==> vectors decrypt (every set under {})",
        shared_dir().join("test-vectors").display()
    );
    let tally = vectors_decrypt(Vec::new(), false)?;
    println!("vectors: {tally}");
    steps.push(Step {
        name: "vectors decrypt",
        ok: tally.failed == 0,
    });

    println!("\n==> summary");
    for s in &steps {
        println!("{} {}", if s.ok { "ok    " } else { "FAILED" }, s.name);
    }
    let failed = steps.iter().filter(|s| !s.ok).count();
    println!(
        "xtask test: {} passed, {} failed, 0 skipped",
        steps.len() - failed,
        failed
    );
    Ok(failed == 0)
}
