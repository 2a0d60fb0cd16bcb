//! Times the official `aws-esdk` crate on the `cargo xtask bench` workload: one-shot encrypt
//! and decrypt with a raw AES keyring, 4096-byte frames, chosen suites and sizes, one thread.
//! Prints a JSON array of rows in the bench's format.
//!
//! Usage: official-rust-bench --sizes 1024,1048576 --suites 0x0478,0x0578 --budget-ms 1000

#![forbid(unsafe_code)]

use aws_esdk::client as esdk_client;
use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{AesWrappingAlg, EsdkAlgorithmSuiteId};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;
use aws_smithy_types::Blob;
use std::time::{Duration, Instant};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn pattern(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = vec![0u8; n];
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// Fastest batch (batches of about 20 ms, for about `budget`, at least three), seconds per call.
async fn measure<F, Fut>(budget: Duration, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    f().await;
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let per_batch = ((0.02 / once).ceil() as usize).max(1);
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut rounds = 0;
    while rounds < 3 || start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..per_batch {
            f().await;
        }
        best = best.min(t.elapsed().as_secs_f64() / per_batch as f64);
        rounds += 1;
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The generated code recurses deeply on large messages (a 256 MiB message overflows the
    // default 8 MiB main stack), so run on a thread with a large (virtual, lazily committed)
    // stack.
    std::thread::Builder::new()
        .stack_size(4 << 30)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()?
                .block_on(run())
        })?
        .join()
        .map_err(|_| "benchmark thread panicked")?
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let sizes: Vec<usize> = arg("--sizes", "1024,1048576")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let suites: Vec<String> = arg("--suites", "0x0478,0x0578")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let budget = Duration::from_millis(arg("--budget-ms", "1000").parse()?);

    let esdk = esdk_client::Client::from_conf(AwsEncryptionSdkConfig::builder().build()?)?;
    let mpl = mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build()?)?;
    let keyring = mpl
        .create_raw_aes_keyring()
        .key_name("bench-key")
        .key_namespace("bench")
        .wrapping_key(vec![0x5au8; 32])
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send()
        .await?;

    let mut rows = Vec::new();
    for suite in &suites {
        let id = match suite.as_str() {
            "0x0478" => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey,
            "0x0578" => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384,
            other => return Err(format!("suite {other} not benchmarked").into()),
        };
        for &size in &sizes {
            let plaintext = pattern(size);
            let sample = esdk
                .encrypt()
                .plaintext(plaintext.clone())
                .keyring(keyring.clone())
                .algorithm_suite_id(id.clone())
                .frame_length(4096)
                .send()
                .await?
                .ciphertext
                .ok_or("no ciphertext")?;
            let enc = measure(budget, || {
                let (esdk, keyring, id, plaintext) =
                    (&esdk, keyring.clone(), id.clone(), &plaintext);
                async move {
                    let out = esdk
                        .encrypt()
                        .plaintext(plaintext.clone())
                        .keyring(keyring)
                        .algorithm_suite_id(id)
                        .frame_length(4096)
                        .send()
                        .await;
                    std::hint::black_box(out.is_ok());
                }
            })
            .await;
            let dec = measure(budget, || {
                let (esdk, keyring, sample) = (&esdk, keyring.clone(), &sample);
                async move {
                    let out = esdk
                        .decrypt()
                        .ciphertext(Blob::new(sample.as_ref().to_vec()))
                        .keyring(keyring)
                        .send()
                        .await;
                    std::hint::black_box(out.is_ok());
                }
            })
            .await;
            for (op, secs) in [("encrypt", enc), ("decrypt", dec)] {
                rows.push(serde_json::json!({
                    "impl": "aws-esdk",
                    "suite": suite,
                    "op": op,
                    "size_bytes": size,
                    "threads": 1,
                    "mib_per_s": size as f64 / 1048576.0 / secs,
                    "us_per_msg": secs * 1e6,
                }));
            }
        }
    }
    println!("{}", serde_json::Value::Array(rows));
    Ok(())
}
