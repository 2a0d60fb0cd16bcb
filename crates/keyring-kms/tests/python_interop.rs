//! Interop with the official AWS Encryption SDK for Python through the KMS emulator, both
//! directions: messages our KMS keyrings write are read by the Python SDK's strict and
//! discovery KMS master key providers, and messages the Python SDK writes with KMS keys are
//! read by our KMS keyring and discovery keyring. `xtask/kms_interop.py` is the Python side.
//!
//! `cargo xtask interop` runs this with moto started and `ESDK_INTEROP_SDK_PYTHON` pointing at
//! the python of its virtual environment (which has the pinned `aws-encryption-sdk`), and
//! counts the `kms-interop PASS|FAIL` lines printed here (`cargo xtask test` filters it out
//! of its plain workspace run and runs it there). Without `ESDK_INTEROP_SDK_PYTHON` or
//! `AWS_ENDPOINT_URL` it fails under CI; outside CI it skips loudly and prints
//! `kms-interop SKIP`, which `cargo xtask interop` also treats as a failure.

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, EncryptOptions, EncryptionContext, Keyring,
    MaterialsSource,
};
use keyring_kms::{
    DiscoveryFilter, KmsDiscoveryKeyring, KmsKeyring, KmsMultiKeyring, StaticClientSupplier,
};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The region `cargo xtask moto` exports (moto accepts any).
const REGION: &str = "us-west-2";
/// moto's account.
const ACCOUNT: &str = "123456789012";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A line for `cargo xtask interop`: written to stdout directly, past the test harness's
/// output capture.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn skip(why: &str) {
    report(&format!("kms-interop SKIP: {why}"));
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!! SKIP: {why}: the KMS interop test with the Python SDK did NOT run.\n\
         !!!!!! Run it with: cargo xtask interop\n"
    );
}

/// The Python interpreter with the official SDK, and the emulator's endpoint.
fn setup() -> Option<(PathBuf, String)> {
    let python = match std::env::var_os("ESDK_INTEROP_SDK_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            // `cargo xtask test` filters this test out of its plain workspace run and runs it
            // in its interop step, which sets the variable.
            assert!(
                !ci(),
                "CI is set but ESDK_INTEROP_SDK_PYTHON is not: the KMS interop test needs the \
                 Python SDK (run it through `cargo xtask interop`)"
            );
            skip("ESDK_INTEROP_SDK_PYTHON is not set");
            return None;
        }
    };
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !ci(),
                "CI is set and ESDK_INTEROP_SDK_PYTHON is, but AWS_ENDPOINT_URL is not: the KMS \
                 interop test needs the moto emulator (run it through `cargo xtask interop`)"
            );
            skip("AWS_ENDPOINT_URL is not set");
            return None;
        }
    };
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "AWS_ENDPOINT_URL={endpoint} is not a loopback address; this test creates keys and only \
         runs against a local emulator"
    );
    Some((python, endpoint))
}

fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

async fn new_key(kms: &aws_sdk_kms::Client) -> String {
    let out = kms.create_key().send().await.expect("CreateKey on moto");
    out.key_metadata()
        .and_then(|m| m.arn())
        .expect("CreateKey returns an ARN")
        .to_owned()
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
            std::env::temp_dir().join(format!("esdk-kms-interop-{}-{nanos}", std::process::id()));
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

/// Run `kms_interop.py` with `args` (the emulator's variables are inherited); its error line
/// on failure.
async fn python(py: &Path, args: Vec<OsString>) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/kms_interop.py");
    let py = py.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(&script)
            .args(&args)
            .env("PYTHONIOENCODING", "utf-8")
            .output()
    })
    .await
    .map_err(|e| format!("the python task failed: {e}"))?
    .map_err(|e| format!("cannot run the Python SDK's python: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kms_interop.py exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    items.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn context_args(context: &EncryptionContext) -> Vec<OsString> {
    context
        .iter()
        .flat_map(|(k, v)| ["--context".into(), format!("{k}={v}").into()])
        .collect()
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
                report(&format!("kms-interop PASS {name}"));
            }
            Err(e) => {
                report(&format!("kms-interop FAIL {name}: {e}"));
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

/// A control case's expected failure: `Ok` if `error` says it was a refusal to decrypt (it
/// contains every one of `expected`), so a control cannot pass because of, say, a Python
/// that failed to start. Prints the refusal.
fn refusal(error: &str, expected: &[&str]) -> Result<(), String> {
    if expected.iter().all(|needle| error.contains(needle)) {
        report(&format!("    (refused as expected: {error})"));
        Ok(())
    } else {
        Err(format!(
            "failed, but not with the expected refusal ({expected:?}): {error}"
        ))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Decrypt `message` with `keyring` (checking the reproduced context) and compare.
async fn rust_decrypt(
    keyring: impl Keyring + 'static,
    message: &[u8],
    context: &EncryptionContext,
    want: &[u8],
) -> Result<(), String> {
    let opened = Client::new()
        .decrypt(
            &MaterialsSource::keyring(keyring),
            message,
            &DecryptOptions::default().with_reproduced_encryption_context(context.clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
    same_plaintext(&opened.plaintext, want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_messages_interoperate_with_the_python_sdk() {
    let Some((py, endpoint)) = setup() else {
        return;
    };
    let kms = kms_client(&endpoint);
    let key_a = new_key(&kms).await;
    let key_b = new_key(&kms).await;
    let unrelated = new_key(&kms).await;
    let work = WorkDir::new();
    let plaintext: Vec<u8> = (0..20_011u32)
        .map(|i| u8::try_from(i.wrapping_mul(7919) % 251).unwrap_or(0))
        .collect();
    let plain_file = work.file("plain");
    std::fs::write(&plain_file, &plaintext).expect("write the plaintext");
    let context: EncryptionContext = [
        ("purpose".to_string(), "kms interop".to_string()),
        ("tenant".to_string(), "a\u{10d}me \u{2603}".to_string()),
    ]
    .into_iter()
    .collect();
    let ctx = context_args(&context);
    let client = Client::new();
    let mut cases = Cases::default();

    // Rust to Python: one key, the default (signed, committing) suite.
    let single = KmsKeyring::new(&key_a, kms.clone()).expect("KmsKeyring");
    let sealed = client
        .encrypt(
            &MaterialsSource::keyring(single),
            &plaintext,
            &EncryptOptions::default().with_encryption_context(context.clone()),
        )
        .await
        .expect("our KmsKeyring encrypts");
    let rust_single = work.file("rust-single.msg");
    std::fs::write(&rust_single, &sealed.ciphertext).expect("write the message");
    for (name, mut how) in [
        (
            "rust KmsKeyring -> python strict KMS master key provider",
            args(&[&"--key", &key_a]),
        ),
        (
            "rust KmsKeyring -> python discovery KMS master key provider (account filter)",
            args(&[&"--discovery", &"--account", &ACCOUNT]),
        ),
    ] {
        let out = work.file("out");
        let _ = std::fs::remove_file(&out);
        let mut a = args(&[&"decrypt", &"--in", &rust_single, &"--out", &out]);
        a.append(&mut how);
        a.extend(ctx.iter().cloned());
        let result = match python(&py, a).await {
            Ok(()) => read(&out).and_then(|got| same_plaintext(&got, &plaintext)),
            Err(e) => Err(e),
        };
        cases.record(name, result);
    }

    // Rust to Python: generator A plus key B (wrapped with Encrypt), unsigned suite; Python
    // holds only B.
    let multi = KmsMultiKeyring::builder()
        .generator(&key_a)
        .key(&key_b)
        .client_supplier(StaticClientSupplier::new().with_client(REGION, kms.clone()))
        .build()
        .await
        .expect("KMS multi-keyring");
    let sealed = client
        .encrypt(
            &MaterialsSource::keyring(multi),
            &plaintext,
            &EncryptOptions::default()
                .with_encryption_context(context.clone())
                .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey),
        )
        .await
        .expect("our KMS multi-keyring encrypts");
    let rust_multi = work.file("rust-multi.msg");
    std::fs::write(&rust_multi, &sealed.ciphertext).expect("write the message");
    let out = work.file("out");
    let _ = std::fs::remove_file(&out);
    let mut a = args(&[
        &"decrypt",
        &"--key",
        &key_b,
        &"--in",
        &rust_multi,
        &"--out",
        &out,
    ]);
    a.extend(ctx.iter().cloned());
    let result = match python(&py, a).await {
        Ok(()) => read(&out).and_then(|got| same_plaintext(&got, &plaintext)),
        Err(e) => Err(e),
    };
    cases.record(
        "rust KMS multi-keyring (generator A, key B; suite 0x0478) -> python strict provider with B only",
        result,
    );

    // Control: the Python side really checks the key. A strict provider for an unrelated key
    // must refuse our message.
    let result = match python(
        &py,
        args(&[
            &"decrypt",
            &"--key",
            &unrelated,
            &"--in",
            &rust_single,
            &"--out",
            &work.file("unrelated-out"),
        ]),
    )
    .await
    {
        Ok(()) => Err("the Python SDK decrypted with an unrelated key".to_string()),
        Err(e) => refusal(&e, &["DecryptKeyError"]),
    };
    cases.record(
        "control: python strict provider with an unrelated key refuses the rust message",
        result,
    );

    // Python to Rust: one key.
    let py_single = work.file("python-single.msg");
    let mut a = args(&[
        &"encrypt",
        &"--key",
        &key_a,
        &"--in",
        &plain_file,
        &"--out",
        &py_single,
    ]);
    a.extend(ctx.iter().cloned());
    let encrypted = python(&py, a).await;
    let message = encrypted.and_then(|()| read(&py_single));
    let result = match &message {
        Ok(m) => {
            rust_decrypt(
                KmsKeyring::new(&key_a, kms.clone()).expect("KmsKeyring"),
                m,
                &context,
                &plaintext,
            )
            .await
        }
        Err(e) => Err(format!("python encrypt: {e}")),
    };
    cases.record("python strict provider -> rust KmsKeyring", result);
    let result = match &message {
        Ok(m) => {
            rust_decrypt(
                KmsDiscoveryKeyring::new(kms.clone()).with_discovery_filter(
                    DiscoveryFilter::new("aws", [ACCOUNT]).expect("discovery filter"),
                ),
                m,
                &context,
                &plaintext,
            )
            .await
        }
        Err(e) => Err(format!("python encrypt: {e}")),
    };
    cases.record(
        "python strict provider -> rust KmsDiscoveryKeyring (account filter)",
        result,
    );
    // Control: our keyring for an unrelated key must refuse it.
    let result = match &message {
        Ok(m) => match rust_decrypt(
            KmsKeyring::new(&unrelated, kms.clone()).expect("KmsKeyring"),
            m,
            &context,
            &plaintext,
        )
        .await
        {
            Ok(()) => Err("our KmsKeyring decrypted with an unrelated key".to_string()),
            Err(e) => refusal(&e, &["not this keyring's key"]),
        },
        Err(e) => Err(format!("python encrypt: {e}")),
    };
    cases.record(
        "control: rust KmsKeyring with an unrelated key refuses the python message",
        result,
    );

    // Python to Rust: two keys (the second wrapped with Encrypt); we hold only the second.
    let py_multi = work.file("python-multi.msg");
    let mut a = args(&[
        &"encrypt",
        &"--key",
        &key_a,
        &"--key",
        &key_b,
        &"--in",
        &plain_file,
        &"--out",
        &py_multi,
    ]);
    a.extend(ctx.iter().cloned());
    let result = match python(&py, a).await.and_then(|()| read(&py_multi)) {
        Ok(m) => {
            rust_decrypt(
                KmsKeyring::new(&key_b, kms.clone()).expect("KmsKeyring"),
                &m,
                &context,
                &plaintext,
            )
            .await
        }
        Err(e) => Err(format!("python encrypt: {e}")),
    };
    cases.record(
        "python strict provider with keys A and B -> rust KmsKeyring with B only",
        result,
    );

    assert!(
        cases.failed.is_empty(),
        "{} of {} KMS interop cases failed:\n{}",
        cases.failed.len(),
        cases.passed + cases.failed.len(),
        cases.failed.join("\n")
    );
}
