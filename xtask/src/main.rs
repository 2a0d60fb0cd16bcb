//! `cargo xtask`: the project's task runner.

mod softhsm;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("softhsm") => softhsm::cli(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask softhsm [--dir DIR] [-- COMMAND ARGS...]");
            ExitCode::from(2)
        }
    }
}
