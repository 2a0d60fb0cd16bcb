//! Per-message latency of the HSM keyrings next to the raw AES keyring, measured in one run.
//!
//! Needs the SoftHSM2 token: `cargo xtask softhsm -- cargo bench -p keyring-pkcs11-hsm --bench
//! latency`. (`cargo xtask bench` measures the same cases in its own table, rows `pkcs11-aes`
//! and `pkcs11-rsa`; `--hsm` for those alone.)
//! Each iteration is one whole 1 KiB message through `Client` with the committing unsigned
//! suite, so the numbers are the keyring's cost plus a small constant for the message itself;
//! the raw AES row is that constant's baseline.

#![forbid(unsafe_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use esdk_core::{AlgorithmSuite, Client, DecryptOptions, EncryptOptions, MaterialsSource};
use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, RsaKeyConfig, RsaPadding};
use keyring_raw_aes::RawAesKeyring;
use std::hint::black_box;

fn latency(c: &mut Criterion) {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let keyrings = [
        (
            "raw AES keyring (baseline)",
            MaterialsSource::keyring(RawAesKeyring::new("bench", "aes", &env.aes_key).unwrap()),
        ),
        (
            "HSM AES keyring (CKM_AES_GCM)",
            MaterialsSource::keyring(
                HsmAesKeyring::new(&token, AesKeyConfig::new("bench", "aes", &env.aes_label))
                    .unwrap(),
            ),
        ),
        (
            "HSM RSA keyring (OAEP-SHA1 unwrap in token)",
            MaterialsSource::keyring(
                HsmRsaKeyring::new(
                    &token,
                    RsaKeyConfig::new("bench", "rsa", RsaPadding::OaepSha1)
                        .private_key_label(&env.rsa_label),
                )
                .unwrap(),
            ),
        ),
    ];
    let client = Client::new();
    let options =
        EncryptOptions::default().with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let plaintext = vec![0x61u8; 1024];

    let mut group = c.benchmark_group("encrypt 1 KiB message");
    for (name, source) in &keyrings {
        group.bench_function(*name, |b| {
            b.iter(|| {
                client
                    .encrypt_blocking(source, black_box(&plaintext), &options)
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decrypt 1 KiB message");
    for (name, source) in &keyrings {
        let sealed = client
            .encrypt_blocking(source, &plaintext, &options)
            .unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let opened = client
                    .decrypt_blocking(
                        source,
                        black_box(&sealed.ciphertext),
                        &DecryptOptions::default(),
                    )
                    .unwrap();
                assert_eq!(opened.plaintext.len(), plaintext.len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
