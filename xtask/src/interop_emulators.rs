//! The emulator-backed part of `cargo xtask interop`: our KMS keyrings against the Python
//! SDK's KMS master key providers (moto), and our PKCS#11 keyrings against the Python SDK's raw
//! AES and raw RSA keyrings holding the same key material (SoftHSM2).
//!
//! xtask does not link the AWS SDK or `cryptoki` (it must stay quick to build), so the Rust
//! side lives in two integration tests, `crates/keyring-kms/tests/python_interop.rs` and
//! `crates/keyring-pkcs11-hsm/tests/python_interop.rs`. This module starts both emulators,
//! runs `cargo test --workspace --features <every keyring> --test python_interop` (the same feature set as
//! `cargo xtask test`'s workspace run, so nothing is rebuilt there) with
//! `ESDK_INTEROP_SDK_PYTHON` set to the interop virtual environment's python, and counts the
//! `kms-interop PASS|FAIL` and `hsm-interop PASS|FAIL` lines the tests print. A test that
//! prints `... SKIP` (its environment was missing), prints nothing, or fails without a FAIL
//! line counts as a failure: these tests cannot silently not run here.

use crate::moto::MotoEnv;
use crate::softhsm::SoftHsm;
use crate::vectors::Tally;
use crate::workspace_root;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The two emulator-backed interop tallies.
#[derive(Debug, Default)]
pub struct EmulatorTallies {
    /// KMS keyrings with the Python SDK through moto.
    pub kms: Tally,
    /// PKCS#11 keyrings with the Python SDK's raw keyrings through SoftHSM2.
    pub hsm: Tally,
}

/// The line prefix of the KMS test's case reports.
const KMS: &str = "kms-interop";
/// The line prefix of the PKCS#11 test's case reports.
const HSM: &str = "hsm-interop";

/// Start moto and a SoftHSM2 token, run both interop tests with `python` (the virtual
/// environment's interpreter, which has the official SDK), and tally their cases.
pub fn run(python: &Path) -> Result<EmulatorTallies> {
    let root = workspace_root();
    println!("==> KMS emulator (moto) set-up");
    let moto = MotoEnv::start(&root)
        .map_err(|e| println!("FAIL moto set-up: {e}"))
        .ok();
    println!("==> SoftHSM2 token set-up");
    let hsm = SoftHsm::setup()
        .map_err(|e| println!("FAIL SoftHSM2 set-up: {e}"))
        .ok();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "test",
        "--workspace",
        "--features",
        crate::test::ALL_FEATURES,
        "--test",
        "python_interop",
    ];
    println!("==> cargo {} (moto, SoftHSM2, Python SDK)", args.join(" "));
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .current_dir(&root)
        .env("ESDK_INTEROP_SDK_PYTHON", python)
        .stdout(Stdio::piped());
    if let Some(moto) = &moto {
        moto.apply(&mut cmd);
    }
    if let Some(hsm) = &hsm {
        hsm.apply(&mut cmd);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading the test output")?;
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!(
        "   (emulator interop tests took {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    drop(moto);
    drop(hsm);

    let tallies = EmulatorTallies {
        kms: tally(&output, KMS, status.success()),
        hsm: tally(&output, HSM, status.success()),
    };
    println!(
        "{KMS}: {} passed, {} failed",
        tallies.kms.passed, tallies.kms.failed
    );
    println!(
        "{HSM}: {} passed, {} failed",
        tallies.hsm.passed, tallies.hsm.failed
    );
    Ok(tallies)
}

/// Count one test's `PREFIX PASS name` / `PREFIX FAIL name: why` / `PREFIX SKIP: why` lines.
/// A skip, no case at all, or a failed test run without any FAIL line (a build error or a
/// panic outside the cases) each count as one failure.
fn tally(output: &str, prefix: &str, run_succeeded: bool) -> Tally {
    let mut t = Tally::default();
    let mut skipped = false;
    for line in output.lines() {
        // The harness may have begun a `test name ... ` line when the report comes.
        let Some(rest) = line.find(prefix).map(|i| &line[i + prefix.len()..]) else {
            continue;
        };
        if rest.starts_with(" PASS ") {
            t.passed += 1;
        } else if rest.starts_with(" FAIL ") {
            t.failed += 1;
        } else if rest.starts_with(" SKIP") {
            skipped = true;
        }
    }
    if skipped {
        println!("FAIL {prefix}: the test skipped (its environment was incomplete; see above)");
        t.failed += 1;
    } else if t.passed + t.failed == 0 {
        println!("FAIL {prefix}: the test reported no case (did it build and run?)");
        t.failed += 1;
    } else if !run_succeeded && t.failed == 0 {
        // The command failed, but not through one of this test's cases. If the other test's
        // cases failed, that is where the failure is; else count it here.
        let other_failed = output
            .lines()
            .any(|l| l.contains("-interop FAIL ") && !l.contains(prefix));
        if !other_failed {
            println!("FAIL {prefix}: cargo test failed outside the reported cases (see above)");
            t.failed += 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::tally;

    #[test]
    fn counts_cases_and_treats_skips_and_silence_as_failures() {
        let out = "test kms ... kms-interop PASS a\nkms-interop PASS b\nkms-interop FAIL c: no\n\
                   hsm-interop PASS d\ntest result: ok\n";
        let k = tally(out, "kms-interop", false);
        assert_eq!((k.passed, k.failed), (2, 1));
        let h = tally(out, "hsm-interop", false);
        assert_eq!(
            (h.passed, h.failed),
            (1, 0),
            "the failure is the KMS test's"
        );
        let h = tally("hsm-interop PASS d\n", "hsm-interop", false);
        assert_eq!(
            (h.passed, h.failed),
            (1, 1),
            "an unexplained failed run counts"
        );
        let h = tally("hsm-interop PASS d\n", "hsm-interop", true);
        assert_eq!((h.passed, h.failed), (1, 0));

        let s = tally(
            "kms-interop SKIP: ESDK_INTEROP_SDK_PYTHON is not set\n",
            "kms-interop",
            true,
        );
        assert_eq!((s.passed, s.failed), (0, 1));
        let none = tally("test result: ok. 0 passed\n", "hsm-interop", true);
        assert_eq!((none.passed, none.failed), (0, 1));
    }
}
