//! Project tasks. (Placeholder dispatcher: the lead's main.rs replaces this; the KMS helper's
//! subcommands below are the lines to merge.)

mod deps_check;
mod moto;

use std::path::PathBuf;

fn main() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("moto") => moto::cli(&workspace, &args[1..]),
        Some("check-no-aws") => deps_check::cli(&workspace),
        _ => {
            eprintln!("usage: cargo xtask moto [CMD ARGS...] | cargo xtask check-no-aws");
            2
        }
    };
    std::process::exit(code);
}
