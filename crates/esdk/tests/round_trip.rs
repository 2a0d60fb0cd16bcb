//! Every suite x frame length x plaintext size around the frame boundaries round-trips, and
//! the message has exactly the layout the size predicts.

#![allow(clippy::cast_possible_truncation)] // test data built from small loop counters

use esdk::raw_aes::RawAesKeyring;
use esdk::{
    AlgorithmSuite, Client, CommitmentPolicy, DecryptOptions, EncryptOptions, EncryptionContext,
    MaterialsSource,
};

fn source() -> MaterialsSource {
    MaterialsSource::keyring(RawAesKeyring::new("test", "key", &[0x11; 32]).unwrap())
}

fn client() -> Client {
    Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .build()
        .unwrap()
}

fn committing_client() -> Client {
    Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptRequireDecrypt)
        .build()
        .unwrap()
}

#[test]
fn all_suites_frame_lengths_and_boundary_sizes() {
    let source = source();
    let context: EncryptionContext = [("k\u{e9}y".to_string(), "v\u{1F600}".to_string())].into();
    let mut checked = 0;
    for suite in AlgorithmSuite::ALL {
        let client = if suite.is_committing() {
            committing_client()
        } else {
            client()
        };
        for frame in [1u32, 16, 4096, 65536] {
            let f = frame as usize;
            let mut sizes = vec![0, 1, f - 1, f, f + 1, 3 * f + 7];
            sizes.dedup();
            for size in sizes {
                let plaintext: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
                let options = EncryptOptions::default()
                    .with_suite(suite)
                    .with_frame_length(frame)
                    .with_encryption_context(context.clone());
                let sealed = client
                    .encrypt_blocking(&source, &plaintext, &options)
                    .unwrap();
                assert_eq!(sealed.suite, suite);
                assert_eq!(sealed.header.frame_length, frame);
                // Layout: regular frames carry exactly `frame` bytes, the final frame the
                // rest (a full frame when the size is a multiple).
                let regular = if size == 0 { 0 } else { (size - 1) / f };
                let last = size - regular * f;
                let header_len = sealed.ciphertext.len()
                    - regular * (f + 32)
                    - (last + 40)
                    - if suite.is_signed() {
                        2 + sig_len(&sealed.ciphertext)
                    } else {
                        0
                    };
                let parsed = esdk::Header::parse(&sealed.ciphertext, None)
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    parsed.total_len, header_len,
                    "{suite} frame {frame} size {size}"
                );
                let opened = client
                    .decrypt_blocking(
                        &source,
                        &sealed.ciphertext,
                        &DecryptOptions::default()
                            .with_reproduced_encryption_context(context.clone()),
                    )
                    .unwrap();
                assert_eq!(
                    opened.plaintext, plaintext,
                    "{suite} frame {frame} size {size}"
                );
                assert_eq!(opened.encryption_context, sealed.encryption_context);
                checked += 1;
            }
        }
    }
    assert!(checked >= 11 * 4 * 5);
}

/// The footer's signature length: the last 2 + N bytes are `N (u16) ‖ signature`; DER
/// ECDSA signatures start with 0x30 and their second byte is the remaining length.
fn sig_len(message: &[u8]) -> usize {
    for n in (8..=104).rev() {
        if message.len() < n + 2 {
            continue;
        }
        let at = message.len() - n - 2;
        let declared = u16::from_be_bytes([message[at], message[at + 1]]) as usize;
        if declared == n && message[at + 2] == 0x30 && message[at + 3] as usize == n - 2 {
            return n;
        }
    }
    panic!("no footer found");
}

#[test]
fn default_suite_and_policy_defaults() {
    let sealed = Client::new()
        .encrypt_blocking(&source(), b"x", &EncryptOptions::default())
        .unwrap();
    assert_eq!(sealed.suite.id(), 0x0578);
    assert_eq!(sealed.header.frame_length, 4096);
    let sealed = client()
        .encrypt_blocking(&source(), b"x", &EncryptOptions::default())
        .unwrap();
    assert_eq!(sealed.suite.id(), 0x0378);
}

#[test]
fn messages_are_randomized() {
    let a = committing_client()
        .encrypt_blocking(&source(), b"same", &EncryptOptions::default())
        .unwrap();
    let b = committing_client()
        .encrypt_blocking(&source(), b"same", &EncryptOptions::default())
        .unwrap();
    assert_ne!(a.header.message_id, b.header.message_id);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn async_api_matches_blocking_api() {
    let source = source();
    let client = Client::new();
    let sealed =
        pollster::block_on(client.encrypt(&source, b"async", &EncryptOptions::default())).unwrap();
    let opened = client
        .decrypt_blocking(&source, &sealed.ciphertext, &DecryptOptions::default())
        .unwrap();
    assert_eq!(opened.plaintext, b"async");
}
