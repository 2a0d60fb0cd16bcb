//! One-shot encrypt and decrypt next to the limit: raw `ring` AES-256-GCM over the same
//! bytes in 4096-byte frames, measured in the same run.
//!
//! `cargo bench --bench one_shot`

#![forbid(unsafe_code)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use esdk::raw_aes::RawAesKeyring;
use esdk::{AlgorithmSuite, Client, DecryptOptions, EncryptOptions, MaterialsSource};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::hint::black_box;

const FRAME: usize = 4096;

/// The limit: AES-256-GCM seal of every 4096-byte frame in place, with a per-frame nonce.
fn ring_frames(key: &LessSafeKey, buf: &mut [u8]) {
    for (seq, chunk) in (1u32..).zip(buf.chunks_mut(FRAME)) {
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&seq.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"aad"),
                chunk,
            )
            .unwrap();
        let _ = black_box(tag);
    }
}

fn bench(c: &mut Criterion) {
    let source = MaterialsSource::keyring(RawAesKeyring::new("bench", "key", &[9; 32]).unwrap());
    let client = Client::new();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3; 32]).unwrap());
    for size in [1024usize, 1 << 20] {
        let plaintext = vec![0x5a; size];
        let mut group = c.benchmark_group(format!("one-shot {} bytes", size));
        group.throughput(Throughput::Bytes(size as u64));
        if size > 4096 {
            group.sample_size(30);
        }
        let mut scratch = plaintext.clone();
        group.bench_function("limit: ring AES-256-GCM 4096-byte frames", |b| {
            b.iter(|| ring_frames(&key, black_box(&mut scratch)))
        });
        for id in [0x0478u16, 0x0578] {
            let suite = AlgorithmSuite::from_id(id).unwrap();
            let options = EncryptOptions::default().with_suite(suite);
            group.bench_with_input(
                BenchmarkId::new("encrypt", format!("{id:#06x}")),
                &plaintext,
                |b, pt| {
                    b.iter(|| {
                        client
                            .encrypt_blocking(&source, black_box(pt), &options)
                            .unwrap()
                    })
                },
            );
            let message = client
                .encrypt_blocking(&source, &plaintext, &options)
                .unwrap()
                .ciphertext;
            group.bench_with_input(
                BenchmarkId::new("decrypt", format!("{id:#06x}")),
                &message,
                |b, m| {
                    b.iter(|| {
                        client
                            .decrypt_blocking(&source, black_box(m), &DecryptOptions::default())
                            .unwrap()
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
