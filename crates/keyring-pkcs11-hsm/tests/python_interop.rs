//! Interop with the official AWS Encryption SDK for Python, both directions: messages whose
//! data keys our PKCS#11 keyrings wrap inside SoftHSM2 (with keys imported there with known
//! material) are read by the Python SDK's raw AES and raw RSA keyrings (Material Providers
//! Library) and legacy `RawMasterKey`s holding the same material, and messages those write are
//! read by our PKCS#11 keyrings. `xtask/hsm_interop.py` is the Python side.
//!
//! `cargo xtask interop` runs this inside a SoftHSM2 token with `ESDK_INTEROP_SDK_PYTHON`
//! pointing at the python of its virtual environment (which has the pinned
//! `aws-encryption-sdk`), and counts the `hsm-interop PASS|FAIL` lines printed here
//! (`cargo xtask test` filters it out of its plain workspace run and runs it there). Without
//! `ESDK_INTEROP_SDK_PYTHON` or the token it fails under CI; outside CI it skips loudly and
//! prints `hsm-interop SKIP`, which `cargo xtask interop` also treats as a failure.

mod common;

use esdk_core::{AlgorithmSuite, Client, DecryptOptions, EncryptOptions, EncryptionContext};
use esdk_core::{Keyring, MaterialsSource};
use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, RsaKeyConfig, RsaPadding};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The key namespace of every keyring here (the EDK provider id).
const NAMESPACE: &str = "esdk-hsm-interop";

/// A line for `cargo xtask interop`: written to stdout directly, past the test harness's
/// output capture.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn skip(why: &str) {
    report(&format!("hsm-interop SKIP: {why}"));
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!! SKIP: {why}: the PKCS#11 interop test with the Python SDK did NOT run.\n\
         !!!!!! Run it with: cargo xtask interop\n"
    );
}

/// A folder for this run's files, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("esdk-hsm-interop-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the work folder");
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the Python side wraps: `hsm_interop.py --wrapping`, the environment variable holding
/// the key material, and the API.
#[derive(Clone, Copy)]
struct PyKey {
    wrapping: &'static str,
    name: &'static str,
    key_env: &'static str,
    api: &'static str,
}

/// Holds key bytes that differ from the token's AES-256 key (for the control cases).
const OTHER_AES_ENV: &str = "ESDK_INTEROP_OTHER_AES_KEY_HEX";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Python SDK's side: `hsm_interop.py` run by the virtual environment's python.
struct Python {
    python: PathBuf,
    context: EncryptionContext,
    /// Hex of the controls' wrong AES key, passed in [`OTHER_AES_ENV`].
    other_aes_hex: String,
}

impl Python {
    /// Run `hsm_interop.py OP` with `key`; its error line on failure.
    fn run(
        &self,
        op: &str,
        key: PyKey,
        input: &Path,
        output: &Path,
        suite: Option<&str>,
    ) -> Result<(), String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/hsm_interop.py");
        let mut args: Vec<OsString> = vec![
            op.into(),
            "--wrapping".into(),
            key.wrapping.into(),
            "--api".into(),
            key.api.into(),
            "--namespace".into(),
            NAMESPACE.into(),
            "--name".into(),
            key.name.into(),
            "--key-env".into(),
            key.key_env.into(),
            "--in".into(),
            input.into(),
            "--out".into(),
            output.into(),
        ];
        if let Some(suite) = suite {
            args.extend(["--suite".into(), suite.into()]);
        }
        for (k, v) in &self.context {
            args.extend(["--context".into(), format!("{k}={v}").into()]);
        }
        let out = Command::new(&self.python)
            .arg(&script)
            .args(&args)
            .env("PYTHONIOENCODING", "utf-8")
            .env(OTHER_AES_ENV, &self.other_aes_hex)
            .output()
            .map_err(|e| format!("cannot run the Python SDK's python: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "hsm_interop.py exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Pass/fail per case, printed as it goes.
#[derive(Default)]
struct Cases {
    passed: usize,
    failed: Vec<String>,
}

impl Cases {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                report(&format!("hsm-interop PASS {name}"));
            }
            Err(e) => {
                report(&format!("hsm-interop FAIL {name}: {e}"));
                self.failed.push(format!("{name}: {e}"));
            }
        }
    }
}

fn same_plaintext(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "decrypted {} bytes that differ from the {} bytes encrypted",
            got.len(),
            want.len()
        ))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// A control case: `Ok` if `result` failed with a refusal to decrypt (its error contains
/// every one of `expected`), so a control cannot pass because of, say, a Python that failed to
/// start; else an error saying what went wrong. Prints the refusal.
fn refused(result: Result<(), String>, what: &str, expected: &[&str]) -> Result<(), String> {
    match result {
        Ok(()) => Err(format!("{what} succeeded, but must not")),
        Err(e) if expected.iter().all(|needle| e.contains(needle)) => {
            report(&format!("    (refused as expected: {e})"));
            Ok(())
        }
        Err(e) => Err(format!(
            "{what} failed, but not with the expected refusal ({expected:?}): {e}"
        )),
    }
}

#[test]
fn hsm_messages_interoperate_with_the_python_sdk() {
    let python = match std::env::var_os("ESDK_INTEROP_SDK_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            // `cargo xtask test` filters this test out of its plain workspace run and runs it
            // in its interop step, which sets the variable.
            assert!(
                !common::ci(),
                "CI is set but ESDK_INTEROP_SDK_PYTHON is not: the PKCS#11 interop test needs \
                 the Python SDK (run it through `cargo xtask interop`)"
            );
            skip("ESDK_INTEROP_SDK_PYTHON is not set");
            return;
        }
    };
    // Fails under CI without the token; skips loudly otherwise.
    let Some(env) = common::env() else {
        skip("ESDK_PKCS11_MODULE is not set");
        return;
    };
    let token = env.token(2);
    let aes256: Arc<dyn Keyring> = Arc::new(
        HsmAesKeyring::new(
            &token,
            AesKeyConfig::new(NAMESPACE, "aes-256", &env.aes_label),
        )
        .expect("AES-256 keyring"),
    );
    let aes128: Arc<dyn Keyring> = Arc::new(
        HsmAesKeyring::new(
            &token,
            AesKeyConfig::new(NAMESPACE, "aes-128", &env.aes128_label),
        )
        .expect("AES-128 keyring"),
    );
    let rsa = |name, padding| -> Arc<dyn Keyring> {
        Arc::new(
            HsmRsaKeyring::new(
                &token,
                RsaKeyConfig::new(NAMESPACE, name, padding).private_key_label(&env.rsa_label),
            )
            .expect("RSA keyring"),
        )
    };
    let oaep = rsa("rsa-oaep-sha1", RsaPadding::OaepSha1);
    let pkcs1 = rsa("rsa-pkcs1", RsaPadding::Pkcs1v15);
    let py_aes256 = |api| PyKey {
        wrapping: "aes",
        name: "aes-256",
        key_env: "ESDK_PKCS11_AES_KEY_HEX",
        api,
    };
    let py_aes128 = |api| PyKey {
        wrapping: "aes",
        name: "aes-128",
        key_env: "ESDK_PKCS11_AES128_KEY_HEX",
        api,
    };
    let py_oaep = |api| PyKey {
        wrapping: "rsa-oaep-sha1",
        name: "rsa-oaep-sha1",
        key_env: "ESDK_PKCS11_RSA_KEY_PEM",
        api,
    };
    let py_pkcs1 = |api| PyKey {
        wrapping: "rsa-pkcs1",
        name: "rsa-pkcs1",
        key_env: "ESDK_PKCS11_RSA_KEY_PEM",
        api,
    };
    // The token's AES-256 key with one byte changed: the controls' wrong key.
    let mut other = env.aes_key.clone();
    other[0] ^= 0x01;
    let other_hex = hex(&other);
    let py_wrong_aes = PyKey {
        wrapping: "aes",
        name: "aes-256",
        key_env: OTHER_AES_ENV,
        api: "mpl",
    };

    let work = WorkDir::new();
    let plaintext: Vec<u8> = (0..30_011u32)
        .map(|i| u8::try_from(i.wrapping_mul(7919) % 251).unwrap_or(0))
        .collect();
    let plain_file = work.file("plain");
    std::fs::write(&plain_file, &plaintext).expect("write the plaintext");
    let context: EncryptionContext = [
        ("purpose".to_string(), "hsm interop".to_string()),
        ("tenant".to_string(), "a\u{10d}me \u{2603}".to_string()),
    ]
    .into_iter()
    .collect();
    let client = Client::new();
    let py = Python {
        python,
        context: context.clone(),
        other_aes_hex: other_hex,
    };
    let mut cases = Cases::default();

    // Rust (token) to Python.
    let seal = |keyring: &Arc<dyn Keyring>, suite: AlgorithmSuite, file: &str| -> PathBuf {
        let sealed = client
            .encrypt_blocking(
                &MaterialsSource::from(keyring.clone()),
                &plaintext,
                &EncryptOptions::default()
                    .with_encryption_context(context.clone())
                    .with_suite(suite),
            )
            .unwrap_or_else(|e| panic!("our HSM keyring encrypts ({file}): {e}"));
        let path = work.file(file);
        std::fs::write(&path, &sealed.ciphertext).expect("write the message");
        path
    };
    let signed = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let unsigned = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let from_aes256 = seal(&aes256, signed, "hsm-aes256.msg");
    let from_aes128 = seal(&aes128, unsigned, "hsm-aes128.msg");
    let from_oaep = seal(&oaep, signed, "hsm-oaep.msg");
    let from_pkcs1 = seal(&pkcs1, unsigned, "hsm-pkcs1.msg");
    let out = work.file("out");
    let python_reads = |message: &Path, key| {
        let _ = std::fs::remove_file(&out);
        py.run("decrypt", key, message, &out, None)
            .and_then(|()| read(&out))
            .and_then(|got| same_plaintext(&got, &plaintext))
    };
    cases.record(
        "HSM AES-256 (suite 0x0578) -> python raw AES keyring (MPL)",
        python_reads(&from_aes256, py_aes256("mpl")),
    );
    cases.record(
        "HSM AES-256 (suite 0x0578) -> python RawMasterKey (legacy)",
        python_reads(&from_aes256, py_aes256("legacy")),
    );
    cases.record(
        "HSM AES-128 (suite 0x0478) -> python raw AES keyring (MPL)",
        python_reads(&from_aes128, py_aes128("mpl")),
    );
    cases.record(
        "HSM RSA OAEP-SHA1 -> python raw RSA keyring (MPL)",
        python_reads(&from_oaep, py_oaep("mpl")),
    );
    cases.record(
        "HSM RSA PKCS#1 v1.5 -> python RawMasterKey RSA (legacy)",
        python_reads(&from_pkcs1, py_pkcs1("legacy")),
    );
    cases.record(
        "control: python raw AES keyring with other key bytes refuses the HSM message",
        refused(
            python_reads(&from_aes256, py_wrong_aes),
            "the Python SDK's decrypt with a wrong key",
            &["unable to decrypt any encrypted data key"],
        ),
    );

    // Python to Rust (token).
    let python_writes = |key, suite, file: &str| -> Result<Vec<u8>, String> {
        let path = work.file(file);
        py.run("encrypt", key, &plain_file, &path, suite)
            .and_then(|()| read(&path))
            .map_err(|e| format!("python encrypt: {e}"))
    };
    let token_reads = |keyring: &Arc<dyn Keyring>, message: Result<Vec<u8>, String>| {
        let message = message?;
        let opened = client
            .decrypt_blocking(
                &MaterialsSource::from(keyring.clone()),
                &message,
                &DecryptOptions::default().with_reproduced_encryption_context(context.clone()),
            )
            .map_err(|e| e.to_string())?;
        same_plaintext(&opened.plaintext, &plaintext)
    };
    cases.record(
        "python raw AES keyring (MPL) -> HSM AES-256",
        token_reads(
            &aes256,
            python_writes(py_aes256("mpl"), None, "py-aes256.msg"),
        ),
    );
    cases.record(
        "python RawMasterKey (legacy, suite 0x0478) -> HSM AES-128",
        token_reads(
            &aes128,
            python_writes(py_aes128("legacy"), Some("0x0478"), "py-aes128.msg"),
        ),
    );
    cases.record(
        "python raw RSA keyring OAEP-SHA1 (MPL) -> HSM RSA",
        token_reads(&oaep, python_writes(py_oaep("mpl"), None, "py-oaep.msg")),
    );
    cases.record(
        "python RawMasterKey RSA PKCS#1 v1.5 (legacy, suite 0x0478) -> HSM RSA",
        token_reads(
            &pkcs1,
            python_writes(py_pkcs1("legacy"), Some("0x0478"), "py-pkcs1.msg"),
        ),
    );
    cases.record(
        "control: the HSM AES-256 keyring refuses a python message under other key bytes",
        match python_writes(py_wrong_aes, None, "py-wrong.msg") {
            Ok(m) => refused(
                token_reads(&aes256, Ok(m)),
                "the HSM keyring's decrypt under a wrong key",
                &["did not authenticate it"],
            ),
            Err(e) => Err(e),
        },
    );

    assert!(
        cases.failed.is_empty(),
        "{} of {} PKCS#11 interop cases failed:\n{}",
        cases.failed.len(),
        cases.passed + cases.failed.len(),
        cases.failed.join("\n")
    );
}
