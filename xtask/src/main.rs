//! Project tasks: `cargo xtask <task>`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bench;

use clap::Parser;

/// Project tasks.
#[derive(Debug, Parser)]
enum Task {
    /// Throughput, latency and memory next to the limit (see xtask/src/bench.rs).
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let result = match Task::parse() {
        Task::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
