//! `cargo xtask fuzz`: run every cargo-fuzz target for a while, seeding the decrypt corpus
//! with valid messages of every suite first.

use crate::vectors::Tally;
use crate::workspace_root;
use anyhow::{bail, Context, Result};
use esdk::raw_aes::RawAesKeyring;
use esdk::{
    AlgorithmSuite, Client, CommitmentPolicy, EncryptOptions, EncryptionContext, MaterialsSource,
};
use std::process::Command;

/// The fuzz targets under `fuzz/fuzz_targets`.
pub const TARGETS: [&str; 5] = [
    "header",
    "context",
    "decrypt",
    "stream_decrypt",
    "random_access",
];

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !installed {
        println!("==> installing cargo-fuzz from crates.io");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()?
            .success();
        if !ok {
            bail!("cargo install cargo-fuzz failed");
        }
    }
    Ok(())
}

/// Valid messages (every suite, a few frame lengths, with and without a context) for the
/// decrypt target's corpus, made with the same key the target uses.
fn seed_decrypt_corpus() -> Result<()> {
    let dir = workspace_root().join("fuzz/corpus/decrypt");
    std::fs::create_dir_all(&dir)?;
    let source = MaterialsSource::keyring(RawAesKeyring::new("fuzz", "key", &[0x17; 32])?);
    let context: EncryptionContext = [("k".to_string(), "v".to_string())].into();
    for suite in AlgorithmSuite::ALL {
        let policy = if suite.is_committing() {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        } else {
            CommitmentPolicy::ForbidEncryptAllowDecrypt
        };
        let client = Client::builder().commitment_policy(policy).build()?;
        for (frame, len) in [(16u32, 0usize), (16, 40), (4096, 100)] {
            let options = EncryptOptions::default()
                .with_suite(suite)
                .with_frame_length(frame)
                .with_encryption_context(context.clone());
            let m = client.encrypt_blocking(&source, &vec![0x61; len], &options)?;
            std::fs::write(
                dir.join(format!("{:04x}-{frame}-{len}", suite.id())),
                m.ciphertext,
            )?;
        }
    }
    // The same messages for the header and streaming targets; the random-access target
    // reads four bytes (the range) before the message.
    for (target, prefix) in [
        ("header", &[][..]),
        ("stream_decrypt", &[0x07][..]),
        ("random_access", &[0, 5, 0, 50][..]),
    ] {
        let target_dir = workspace_root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&target_dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let mut seed = prefix.to_vec();
            seed.extend_from_slice(&std::fs::read(entry.path())?);
            std::fs::write(target_dir.join(entry.file_name()), seed)?;
        }
    }
    Ok(())
}

/// Run `targets` (default: all) for `seconds` each.
pub fn run(targets: Vec<String>, seconds: u64) -> Result<Tally> {
    ensure_cargo_fuzz()?;
    seed_decrypt_corpus().context("seeding the decrypt corpus")?;
    let targets = if targets.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        targets
    };
    let mut tally = Tally::default();
    for target in &targets {
        println!("==> cargo fuzz run {target} ({seconds} s)");
        let ok = Command::new("cargo")
            .args([
                "fuzz",
                "run",
                target,
                "--",
                &format!("-max_total_time={seconds}"),
            ])
            .current_dir(workspace_root())
            // cargo-fuzz passes -Z sanitizer flags; the machine's one toolchain is stable.
            .env("RUSTC_BOOTSTRAP", "1")
            .status()
            .with_context(|| format!("running cargo fuzz run {target}"))?
            .success();
        if ok {
            tally.passed += 1;
        } else {
            println!("FAIL fuzz target {target}: see fuzz/artifacts/{target}");
            tally.failed += 1;
        }
    }
    Ok(tally)
}
