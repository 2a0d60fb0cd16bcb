//! `cargo xtask`: the project's one entry point for tests, test vectors, interop,
//! benchmarks, fuzzing and emulator set-up.

#![forbid(unsafe_code)]

mod bench;
mod deps_check;
mod fuzz;
mod interop;
mod interop_emulators;
mod moto;
mod softhsm;
mod test;
mod vectors;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "esdk-rs project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI runs: fmt, clippy, all tests (with emulators), every test-vector set.
    Test,
    /// Throughput, latency and memory next to the limit (raw ring AES-GCM) in one process;
    /// `--quick`, `--json FILE`, `--official`.
    Bench(bench::BenchArgs),
    /// Run the cargo-fuzz targets (installs cargo-fuzz when missing).
    Fuzz {
        /// Targets to run (default: all).
        targets: Vec<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Official test vectors.
    Vectors {
        #[command(subcommand)]
        command: VectorsCommand,
    },
    /// Interoperability with the official Python SDK, both directions: raw keyrings, and KMS
    /// and PKCS#11 keyrings against the emulators.
    Interop(interop::Args),
    /// Run the KMS emulator (moto, installed and patched on first use): with no command it
    /// runs in the foreground and prints the exports; `cargo xtask moto CMD ARGS...` runs
    /// CMD against it, then stops it.
    Moto {
        /// The command to run against the emulator.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check that the facade without the `kms` feature compiles no AWS SDK crate.
    CheckNoAws,
    /// Set up a SoftHSM2 token: `cargo xtask softhsm [--dir DIR] [-- COMMAND ARGS...]` runs
    /// COMMAND with the token's environment, then removes the token; without a command it
    /// keeps the token and prints `export` lines.
    Softhsm {
        /// Options and the command, passed through.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum VectorsCommand {
    /// Decrypt every vector of one or more decrypt manifests (default: every set under
    /// ../shared/test-vectors).
    Decrypt {
        /// Manifest files (`manifest.json`, or a legacy `ciphertext.manifest`).
        manifests: Vec<PathBuf>,
        /// Print every passing vector too.
        #[arg(long)]
        verbose: bool,
        /// Crypto provider: `default` (ring AES-GCM + AWS-LC ECDSA), `ring`, or `aws-lc`.
        #[arg(long, default_value = "default")]
        provider: String,
        /// Exit with failure when any vector was skipped, not only when one failed (what
        /// `cargo xtask test` asks for).
        #[arg(long)]
        fail_on_skip: bool,
    },
    /// Run an `awses-encrypt` manifest and write an `awses-decrypt` manifest from it.
    Encrypt {
        /// The encrypt manifest (its `keys` URI is resolved beside it).
        manifest: PathBuf,
        /// Output folder (created; an earlier output there is replaced).
        #[arg(long)]
        out: PathBuf,
        /// Print every encrypted scenario too.
        #[arg(long)]
        verbose: bool,
    },
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shared reference folder (`../shared` beside the clone), or `ESDK_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("ESDK_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("..").join("shared"))
}

fn vectors_decrypt(manifests: Vec<PathBuf>, verbose: bool) -> Result<vectors::Tally> {
    let manifests = if manifests.is_empty() {
        vectors::find_decrypt_manifests(&shared_dir().join("test-vectors"))?
    } else {
        manifests
    };
    if manifests.is_empty() {
        bail!("no decrypt manifests found");
    }
    let mut total = vectors::Tally::default();
    for m in &manifests {
        let tally = vectors::decrypt::run(m, verbose)?;
        println!("{}: {tally}", m.display());
        total += tally;
    }
    Ok(total)
}

/// Make `name` the process's crypto provider (before any crypto runs).
fn install_provider(name: &str) -> Result<()> {
    let provider = match name {
        "default" => return Ok(()),
        "ring" => esdk::crypto::ring(),
        "aws-lc" => esdk::crypto::aws_lc(),
        other => bail!("unknown provider {other:?} (default, ring, aws-lc)"),
    };
    esdk::crypto::install_default(provider)
        .map_err(|_| anyhow::anyhow!("a crypto provider was already in use"))?;
    println!("crypto provider: {}", provider.name());
    Ok(())
}

fn exit_code(code: i32) -> std::process::ExitCode {
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Softhsm { args } => return softhsm::cli(&args),
        Command::Moto { args } => return exit_code(moto::cli(&workspace_root(), &args)),
        Command::CheckNoAws => return exit_code(deps_check::cli(&workspace_root())),
        Command::Test => test::run(),
        Command::Bench(args) => bench::run(args)
            .map(|()| true)
            .map_err(|e| anyhow::anyhow!(e)),
        Command::Fuzz { targets, seconds } => fuzz::run(targets, seconds).map(|tally| {
            println!("{tally}");
            tally.failed == 0
        }),
        Command::Vectors {
            command:
                VectorsCommand::Decrypt {
                    manifests,
                    verbose,
                    provider,
                    fail_on_skip,
                },
        } => install_provider(&provider)
            .and_then(|()| vectors_decrypt(manifests, verbose))
            .map(|tally| {
                let refused_skips = fail_on_skip && tally.skipped > 0;
                if refused_skips {
                    eprintln!(
                        "error: {} vector(s) skipped, and --fail-on-skip allows none",
                        tally.skipped
                    );
                }
                println!("{tally}");
                tally.failed == 0 && !refused_skips
            }),
        Command::Vectors {
            command:
                VectorsCommand::Encrypt {
                    manifest,
                    out,
                    verbose,
                },
        } => vectors::encrypt::run(&manifest, &out, verbose).map(|tally| {
            println!("{tally}");
            tally.failed == 0
        }),
        Command::Interop(args) => interop::run(&args),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
