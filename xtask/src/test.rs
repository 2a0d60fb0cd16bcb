//! `cargo xtask test`: every check CI runs, in order, with emulator set-up around the tests.

use crate::deps_check::check_facade_without_kms;
use crate::moto::MotoEnv;
use crate::softhsm::SoftHsm;
use crate::{interop, shared_dir, vectors, vectors_decrypt, workspace_root};
use anyhow::{anyhow, Context, Result};
use std::process::Command;

/// Every feature CI builds: all keyrings and async streaming. (`fips` is left out: it needs
/// CMake and Go to build the FIPS module.)
pub const ALL_FEATURES: &str = "esdk/kms,esdk/pkcs11,esdk-core/tokio";

/// Name filter matching the two Python-SDK interop tests
/// (`kms_messages_interoperate_with_the_python_sdk`, `hsm_messages_interoperate_with_the_python_sdk`).
pub const PYTHON_INTEROP_TESTS: &str = "messages_interoperate_with_the_python_sdk";

/// One step's outcome.
struct Step {
    name: &'static str,
    ok: bool,
}

fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(workspace_root());
    cmd
}

fn status(mut cmd: Command) -> Result<bool> {
    Ok(cmd
        .status()
        .with_context(|| format!("running {cmd:?}"))?
        .success())
}

/// Run everything; `Ok(false)` if any step failed.
pub fn run() -> Result<bool> {
    let mut steps = Vec::new();
    steps.push(Step {
        name: "cargo fmt --check",
        ok: status(cargo_command(&["fmt", "--all", "--", "--check"]))?,
    });
    steps.push(Step {
        name: "cargo clippy -D warnings",
        ok: status(cargo_command(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            ALL_FEATURES,
            "--",
            "-D",
            "warnings",
        ]))?,
    });

    // Public items are documented and every intra-doc link resolves.
    let mut doc = cargo_command(&[
        "doc",
        "--no-deps",
        "--workspace",
        "--exclude",
        "xtask",
        "--features",
        ALL_FEATURES,
    ]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    steps.push(Step {
        name: "cargo doc -D warnings",
        ok: status(doc)?,
    });

    // Emulators live exactly as long as the test run: the token directory is removed when
    // the guard drops, even if a step fails.
    println!("==> SoftHSM2 token set-up");
    let hsm = SoftHsm::setup().map_err(|e| anyhow!("SoftHSM2 set-up: {e}"))?;
    println!("==> KMS emulator (moto) set-up");
    let moto = MotoEnv::start(&workspace_root()).map_err(|e| anyhow!("moto set-up: {e}"))?;
    // The two Python-SDK interop tests need the interop virtual environment: the interop
    // step below runs them (and fails if they do not run), so this run filters them out.
    let mut tests = cargo_command(&[
        "test",
        "--workspace",
        "--features",
        ALL_FEATURES,
        "--",
        "--skip",
        PYTHON_INTEROP_TESTS,
    ]);
    hsm.apply(&mut tests);
    moto.apply(&mut tests);
    steps.push(Step {
        name: "cargo test --workspace, every keyring feature (SoftHSM2, moto)",
        ok: status(tests)?,
    });
    // The examples are documentation: each must run as its doc comment says.
    for (example, name) in [
        ("quickstart", "example quickstart"),
        ("kms", "example kms (moto)"),
        ("pkcs11", "example pkcs11 (SoftHSM2)"),
    ] {
        let mut run = cargo_command(&[
            "run",
            "-q",
            "-p",
            "esdk",
            "--features",
            ALL_FEATURES,
            "--example",
            example,
        ]);
        hsm.apply(&mut run);
        moto.apply(&mut run);
        steps.push(Step {
            name,
            ok: status(run)?,
        });
    }
    drop(moto);
    drop(hsm);

    // The core's own tests once per single provider (the default build combines both).
    for (name, features) in [
        ("esdk-core tests with the ring provider alone", "ring,tokio"),
        (
            "esdk-core tests with the aws-lc provider alone",
            "aws-lc,tokio",
        ),
    ] {
        steps.push(Step {
            name,
            ok: status(cargo_command(&[
                "test",
                "-p",
                "esdk-core",
                "--no-default-features",
                "--features",
                features,
            ]))?,
        });
    }

    println!("==> the facade without `kms` compiles no AWS SDK crate");
    let no_aws = check_facade_without_kms(&workspace_root());
    if let Err(e) = &no_aws {
        println!("FAIL {e}");
    }
    steps.push(Step {
        name: "facade without kms has no AWS SDK",
        ok: no_aws.is_ok(),
    });

    println!(
        "==> vectors decrypt (every set under {})",
        shared_dir().join("test-vectors").display()
    );
    let tally = vectors_decrypt(Vec::new(), false)?;
    println!("vectors decrypt: {tally}");
    steps.push(Step {
        name: "vectors decrypt (official sets)",
        ok: tally.failed == 0 && tally.skipped == 0,
    });

    // The same vectors with each single provider, in child processes (a process picks its
    // provider once). As above, a skipped vector fails the step: the child's exit status
    // says so with --fail-on-skip.
    for (name, provider) in [
        ("vectors decrypt, ring provider", "ring"),
        ("vectors decrypt, aws-lc provider", "aws-lc"),
    ] {
        steps.push(Step {
            name,
            ok: status(cargo_command(&[
                "run",
                "-q",
                "-p",
                "xtask",
                "--",
                "vectors",
                "decrypt",
                "--provider",
                provider,
                "--fail-on-skip",
            ]))?,
        });
    }

    let out = workspace_root()
        .join("target")
        .join("xtask-encrypt-vectors");
    let manifest = shared_dir()
        .join("test-vectors")
        .join("encrypt-manifests")
        .join("aws-encryption-sdk-dafny-4.1.0")
        .join("encrypt-manifest.json");
    println!(
        "==> vectors encrypt {} --out {}",
        manifest.display(),
        out.display()
    );
    let encrypted = vectors::encrypt::run(&manifest, &out, false)?;
    println!("vectors encrypt: {encrypted}");
    let decrypted = vectors_decrypt(vec![out.join("manifest.json")], false)?;
    println!("vectors decrypt (our encrypt output): {decrypted}");
    steps.push(Step {
        name: "vectors encrypt, then decrypt our output",
        ok: encrypted.failed == 0 && decrypted.failed == 0 && decrypted.skipped == 0,
    });

    steps.push(Step {
        name: "interop with the official Python SDK",
        ok: interop::run(&interop::Args::default())?,
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
