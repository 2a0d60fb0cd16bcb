//! `cargo xtask interop`: interoperability with the official AWS Encryption SDK for Python,
//! in both directions.
//!
//! 1. A virtual environment under `target/interop-venv` (reused while its pins match
//!    `xtask/interop-requirements.txt`) gets the pinned `aws-encryption-sdk` with the Material
//!    Providers Library.
//! 2. `xtask/interop.py matrix` writes an `awses-encrypt` v5 manifest of its own (raw AES
//!    128/192/256, raw RSA with every padding, multi-keyrings, required-encryption-context
//!    CMMs, every suite, several frame lengths and non-framed, empty and Unicode contexts).
//! 3. **Rust to Python**: `vectors encrypt` runs the shared Dafny encrypt manifest and that
//!    matrix; the Python SDK decrypts everything written (`rust-to-python: N passed, N failed`).
//!    Our own runner decrypts it too, as a self-check.
//! 4. **Python to Rust**: the Python SDK encrypts the matrix and writes an `awses-decrypt`
//!    manifest, which our runner decrypts (`python-to-rust: N passed, N failed`).
//! 5. **KMS and PKCS#11**, against the emulators (see [`crate::interop_emulators`]): messages
//!    our KMS keyrings write are read by the Python SDK's strict and discovery KMS master key
//!    providers on moto, and the reverse (`kms-interop: N passed, N failed`); messages our HSM
//!    keyrings wrap in SoftHSM2 with imported keys are read by the Python SDK's raw AES and raw
//!    RSA keyrings holding the same key material, and the reverse
//!    (`hsm-interop: N passed, N failed`).

use crate::vectors::{self, Tally};
use crate::{shared_dir, workspace_root};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Options of `cargo xtask interop`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Python interpreter that creates the virtual environment (default: $ESDK_INTEROP_PYTHON,
    /// else python3).
    #[arg(long)]
    python: Option<String>,
    /// Virtual environment folder (default: target/interop-venv).
    #[arg(long)]
    venv: Option<PathBuf>,
    /// Working folder for manifests and messages (default: target/interop; replaced).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// The Dafny encrypt manifest in the shared vectors.
fn dafny_encrypt_manifest() -> PathBuf {
    shared_dir()
        .join("test-vectors")
        .join("encrypt-manifests")
        .join("aws-encryption-sdk-dafny-4.1.0")
        .join("encrypt-manifest.json")
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {what} ({cmd:?})"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Create (or reuse) the virtual environment and install the pinned requirements.
fn ensure_venv(python: &str, venv: &Path, requirements: &Path) -> Result<PathBuf> {
    let py = venv_python(venv);
    if !py.exists() {
        println!("==> creating {} with {python}", venv.display());
        run_checked(
            Command::new(python).arg("-m").arg("venv").arg(venv),
            "python -m venv",
        )?;
    }
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("esdk-rs-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        println!("==> pip install -r {}", requirements.display());
        run_checked(
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                ])
                .arg(requirements),
            "pip install",
        )?;
        std::fs::write(&stamp, &wanted)?;
    } else {
        println!("==> reusing {}", venv.display());
    }
    Ok(py)
}

/// Run the Python script and echo its output; returns stdout and whether it exited 0.
fn python_run(py: &Path, script: &Path, args: &[&std::ffi::OsStr]) -> Result<(String, bool)> {
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok((stdout, out.status.success()))
}

/// Run the Python script and read its closing `NAME: N passed, N failed[, N skipped]`.
fn python_step(py: &Path, script: &Path, args: &[&std::ffi::OsStr], name: &str) -> Result<Tally> {
    let started = Instant::now();
    let (stdout, _) = python_run(py, script, args)?;
    let tally = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).and_then(parse_tally))
        .ok_or_else(|| anyhow!("interop.py {args:?} printed no `{name}:` tally"))?;
    println!("   ({name} took {:.1} s)", started.elapsed().as_secs_f64());
    Ok(tally)
}

/// Parse `N passed, N failed[, N skipped]`.
fn parse_tally(s: &str) -> Option<Tally> {
    let mut tally = Tally::default();
    let mut seen = 0;
    for part in s.split(',') {
        let mut words = part.split_whitespace();
        let n: usize = words.next()?.parse().ok()?;
        match words.next()? {
            "passed" => tally.passed = n,
            "failed" => tally.failed = n,
            "skipped" => tally.skipped = n,
            _ => return None,
        }
        seen += 1;
    }
    (seen >= 2).then_some(tally)
}

fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let out = f();
    println!("   ({what} took {:.1} s)", started.elapsed().as_secs_f64());
    out
}

/// Run both directions; `Ok(false)` if anything failed.
pub fn run(args: &Args) -> Result<bool> {
    let root = workspace_root();
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var("ESDK_INTEROP_PYTHON").ok())
        .unwrap_or_else(|| "python3".into());
    let venv = args
        .venv
        .clone()
        .unwrap_or_else(|| root.join("target").join("interop-venv"));
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| root.join("target").join("interop"));
    let script = root.join("xtask").join("interop.py");
    let py = ensure_venv(
        &python,
        &venv,
        &root.join("xtask").join("interop-requirements.txt"),
    )?;
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let matrix = work.join("matrix");
    let rust_dafny = work.join("rust-dafny");
    let rust_matrix = work.join("rust-matrix");
    let python_matrix = work.join("python-matrix");

    println!("==> interop.py matrix");
    let (_, ok) = python_run(
        &py,
        &script,
        &["matrix".as_ref(), "--out".as_ref(), matrix.as_os_str()],
    )?;
    if !ok {
        bail!("interop.py matrix failed");
    }

    // Rust encrypts: the shared Dafny manifest and the Python-made matrix.
    let mut rust_encrypt = Tally::default();
    for (manifest, out) in [
        (dafny_encrypt_manifest(), &rust_dafny),
        (matrix.join("encrypt-manifest.json"), &rust_matrix),
    ] {
        println!(
            "==> vectors encrypt {} --out {}",
            manifest.display(),
            out.display()
        );
        let t = timed("vectors encrypt", || {
            vectors::encrypt::run(&manifest, out, false)
        })?;
        println!("rust-encrypt: {t}");
        rust_encrypt += t;
    }

    // Self-check: our runner decrypts what we wrote.
    let mut self_check = Tally::default();
    for dir in [&rust_dafny, &rust_matrix] {
        let manifest = dir.join("manifest.json");
        println!("==> vectors decrypt {}", manifest.display());
        let t = timed("vectors decrypt", || {
            vectors::decrypt::run(&manifest, false)
        })?;
        println!("rust-self-check: {t}");
        self_check += t;
    }

    // (a) Rust to Python.
    let mut rust_to_python = Tally::default();
    for dir in [&rust_dafny, &rust_matrix] {
        let manifest = dir.join("manifest.json");
        println!("==> interop.py decrypt {}", manifest.display());
        rust_to_python += python_step(
            &py,
            &script,
            &["decrypt".as_ref(), manifest.as_os_str()],
            "python-decrypt",
        )?;
    }
    // Messages we failed to write count against this direction.
    rust_to_python.failed += rust_encrypt.failed;

    // (b) Python to Rust.
    println!("==> interop.py encrypt");
    let python_encrypt = python_step(
        &py,
        &script,
        &[
            "encrypt".as_ref(),
            matrix.join("encrypt-manifest.json").as_os_str(),
            "--out".as_ref(),
            python_matrix.as_os_str(),
        ],
        "python-encrypt",
    )?;
    let manifest = python_matrix.join("manifest.json");
    println!("==> vectors decrypt {}", manifest.display());
    let mut python_to_rust = timed("vectors decrypt", || {
        vectors::decrypt::run(&manifest, false)
    })?;
    python_to_rust.failed += python_encrypt.failed;

    // (c) KMS and PKCS#11 keyrings, against moto and SoftHSM2.
    let emulators = crate::interop_emulators::run(&py)?;

    println!();
    println!(
        "rust-encrypt: {} messages written, {} failed, {} skipped (not expressible here; reasons above)",
        rust_encrypt.passed, rust_encrypt.failed, rust_encrypt.skipped
    );
    println!("rust-self-check: {self_check}");
    println!(
        "rust-to-python: {} passed, {} failed",
        rust_to_python.passed, rust_to_python.failed
    );
    println!(
        "python-to-rust: {} passed, {} failed",
        python_to_rust.passed, python_to_rust.failed
    );
    for (name, t) in [
        ("kms-interop", &emulators.kms),
        ("hsm-interop", &emulators.hsm),
    ] {
        println!("{name}: {} passed, {} failed", t.passed, t.failed);
    }
    let passed =
        rust_to_python.passed + python_to_rust.passed + emulators.kms.passed + emulators.hsm.passed;
    let failed = rust_to_python.failed
        + python_to_rust.failed
        + self_check.failed
        + emulators.kms.failed
        + emulators.hsm.failed;
    println!("interop: {passed} passed, {failed} failed");
    Ok(failed == 0
        && rust_to_python.passed > 0
        && python_to_rust.passed > 0
        && emulators.kms.passed > 0
        && emulators.hsm.passed > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_tally;

    #[test]
    fn parses_closing_lines() {
        let t = parse_tally("583 passed, 2 failed, 1 skipped").unwrap();
        assert_eq!((t.passed, t.failed, t.skipped), (583, 2, 1));
        let t = parse_tally("5 passed, 0 failed").unwrap();
        assert_eq!((t.passed, t.failed), (5, 0));
        assert!(parse_tally("wrote 5 tests").is_none());
        assert!(parse_tally("5 passed").is_none());
    }
}
