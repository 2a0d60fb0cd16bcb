//! `cargo xtask check-no-aws`: the facade built without its `kms` feature must compile no
//! AWS SDK crate (the SDK is large and slow to build; users who do not use KMS must not pay
//! for it). Checked with `cargo tree`, which resolves features exactly as a build would.

use std::path::Path;
use std::process::Command;

/// The `aws-*` packages (the AWS SDK's; AWS-LC, the crypto library, is not one of them) in
/// `esdk`'s normal and build dependency tree with `features`.
fn aws_packages(workspace: &Path, features: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace)
        .args([
            "tree",
            "-p",
            "esdk",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .args(features)
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree {features:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("aws-") && !l.starts_with("aws-lc-"))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_owned())
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

/// Fails if a facade build without `kms` would compile an AWS crate; also checks that the
/// `kms` feature does pull `aws-sdk-kms`, so the check itself is known to be able to fail.
pub fn check_facade_without_kms(workspace: &Path) -> Result<(), String> {
    for features in [
        &[][..],
        &["--no-default-features", "--features", "raw-aes"][..],
        &["--no-default-features"][..],
    ] {
        let found = aws_packages(workspace, features)?;
        if !found.is_empty() {
            return Err(format!(
                "esdk with {features:?} depends on AWS crates {found:?}; they must stay behind the `kms` feature"
            ));
        }
        println!("check-no-aws: esdk {features:?}: no AWS crate");
    }
    let with_kms = aws_packages(workspace, &["--features", "kms"])?;
    if !with_kms.iter().any(|p| p == "aws-sdk-kms") {
        return Err(format!(
            "esdk with --features kms should depend on aws-sdk-kms, found only {with_kms:?}: is the check looking at the right tree?"
        ));
    }
    println!("check-no-aws: esdk [\"--features\", \"kms\"]: aws-sdk-kms present, as expected");
    Ok(())
}

/// `cargo xtask check-no-aws`; returns the exit code.
pub fn cli(workspace: &Path) -> i32 {
    match check_facade_without_kms(workspace) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("check-no-aws: {e}");
            1
        }
    }
}
