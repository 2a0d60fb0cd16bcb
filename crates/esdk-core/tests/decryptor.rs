//! The frame-at-a-time decoder used directly, as a hand-written driver would: a failed
//! signature check stays failed, and a committing suite needs its commitment.

mod stream_support;

use esdk_core::decrypt::MessageDecryptor;
use esdk_core::{DecryptOptions, Error, FormatError, Header};
use stream_support::*;

/// Drive `message` through a `MessageDecryptor` up to the footer; returns it and the footer.
fn decode_body(message: &[u8]) -> (MessageDecryptor, Vec<u8>) {
    let client = client_for(SIGNED, 1);
    let parsed = Header::parse(message, None).unwrap().unwrap();
    let materials = pollster::block_on(client.decryption_materials(
        &source(),
        &parsed,
        &DecryptOptions::default(),
    ))
    .expect("materials");
    let mut decryptor =
        MessageDecryptor::new(&parsed, &message[..parsed.total_len], &materials).expect("header");
    let mut pos = parsed.total_len;
    while !decryptor.body_done() {
        let frame = decryptor
            .next_frame(&message[pos..])
            .expect("frame")
            .expect("whole frame");
        let mut content = frame.ciphertext.to_vec();
        decryptor
            .cipher()
            .open_in_place(&frame, &mut content)
            .expect("frame tag");
        pos += frame.wire_len;
    }
    (decryptor, message[pos..].to_vec())
}

#[test]
fn a_failed_signature_check_fails_again_when_retried() {
    let message = client_for(SIGNED, 1)
        .encrypt_blocking(&source(), &[9u8; 300], &options(SIGNED, 128))
        .expect("encrypt")
        .ciphertext;

    let (mut good, footer) = decode_body(&message);
    let len = good
        .finish(&footer)
        .expect("verifies")
        .expect("whole footer");
    assert_eq!(len, footer.len());
    assert_eq!(good.finish(&footer).expect("again").expect("whole"), len);

    // A flipped signature byte, then a retry with the genuine footer: still refused.
    let (mut bad, footer) = decode_body(&message);
    let mut tampered = footer.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        bad.finish(&tampered),
        Err(Error::SignatureVerification)
    ));
    assert!(matches!(
        bad.finish(&footer),
        Err(Error::SignatureVerification)
    ));
    assert!(bad.is_signed());

    // A malformed footer (zero-length signature), then a retry: still refused.
    let (mut malformed, footer) = decode_body(&message);
    assert!(matches!(
        malformed.finish(&[0, 0]),
        Err(Error::Format(FormatError::Footer))
    ));
    assert!(matches!(
        malformed.finish(&footer),
        Err(Error::SignatureVerification)
    ));

    // A footer not yet complete asks for more input and can then succeed.
    let (mut partial, footer) = decode_body(&message);
    assert!(partial.finish(&footer[..5]).expect("short").is_none());
    assert!(partial.finish(&footer).expect("complete").is_some());
}

#[test]
fn a_committing_suite_without_its_commitment_is_refused() {
    let message = client_for(UNSIGNED, 1)
        .encrypt_blocking(&source(), b"commit", &options(UNSIGNED, 128))
        .expect("encrypt")
        .ciphertext;
    let client = client_for(UNSIGNED, 1);
    let mut parsed = Header::parse(&message, None).unwrap().unwrap();
    let materials = pollster::block_on(client.decryption_materials(
        &source(),
        &parsed,
        &DecryptOptions::default(),
    ))
    .expect("materials");
    assert!(MessageDecryptor::new(&parsed, &message[..parsed.total_len], &materials).is_ok());
    parsed.header.commitment = None;
    let err = MessageDecryptor::new(&parsed, &message[..parsed.total_len], &materials)
        .err()
        .expect("refused");
    assert!(matches!(err, Error::CommitmentMismatch), "{err}");
}
