//! Golden bytes: the header (v1 and v2), its authentication section, and the framed body
//! layout are pinned byte for byte.

#![allow(clippy::cast_possible_truncation)] // test data built from small loop counters

use esdk::format::header::{ContentType, Header};
use esdk::suite::MessageFormatVersion;
use esdk::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};

fn edk() -> EncryptedDataKey {
    EncryptedDataKey::new("pi", b"x".to_vec(), vec![0xc1, 0xc2])
}

#[test]
fn v1_header_body_layout() {
    let context: EncryptionContext = [("a".to_string(), "b".to_string())].into();
    let header = Header {
        version: MessageFormatVersion::V1,
        suite: AlgorithmSuite::from_id(0x0178).unwrap(),
        message_id: vec![0x11; 16],
        encryption_context: context,
        encrypted_data_keys: vec![edk()],
        content_type: ContentType::Framed,
        frame_length: 4096,
        commitment: None,
        auth_iv: [0; 12],
        auth_tag: [0xee; 16],
    };
    let mut expected = vec![0x01, 0x80, 0x01, 0x78];
    expected.extend_from_slice(&[0x11; 16]);
    expected.extend_from_slice(&[0x00, 0x08, 0x00, 0x01, 0x00, 0x01, b'a', 0x00, 0x01, b'b']);
    expected.extend_from_slice(&[
        0x00, 0x01, 0x00, 0x02, b'p', b'i', 0x00, 0x01, b'x', 0x00, 0x02, 0xc1, 0xc2,
    ]);
    expected.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0c, 0x00, 0x00, 0x10, 0x00]);
    let body = header.serialize_body().unwrap();
    assert_eq!(body, expected);
    let mut auth = Vec::new();
    header.serialize_auth(&mut auth);
    assert_eq!(auth.len(), 28, "v1 auth = zero IV ‖ tag");
    assert_eq!(&auth[..12], &[0; 12]);
    let mut whole = body.clone();
    whole.extend_from_slice(&auth);
    let parsed = Header::parse(&whole, None).unwrap().unwrap();
    assert_eq!(parsed.header, header);
    assert_eq!(parsed.body_len, body.len());
    assert_eq!(parsed.total_len, whole.len());
}

#[test]
fn v2_header_body_layout() {
    let header = Header {
        version: MessageFormatVersion::V2,
        suite: AlgorithmSuite::from_id(0x0478).unwrap(),
        message_id: vec![0x22; 32],
        encryption_context: EncryptionContext::new(),
        encrypted_data_keys: vec![edk()],
        content_type: ContentType::Framed,
        frame_length: 512,
        commitment: Some([0x33; 32]),
        auth_iv: [0; 12],
        auth_tag: [0xee; 16],
    };
    let mut expected = vec![0x02, 0x04, 0x78];
    expected.extend_from_slice(&[0x22; 32]);
    expected.extend_from_slice(&[0x00, 0x00]); // empty context: length 0, no count
    expected.extend_from_slice(&[
        0x00, 0x01, 0x00, 0x02, b'p', b'i', 0x00, 0x01, b'x', 0x00, 0x02, 0xc1, 0xc2,
    ]);
    expected.extend_from_slice(&[0x02, 0x00, 0x00, 0x02, 0x00]);
    expected.extend_from_slice(&[0x33; 32]);
    assert_eq!(header.serialize_body().unwrap(), expected);
    let mut auth = Vec::new();
    header.serialize_auth(&mut auth);
    assert_eq!(auth, vec![0xee; 16], "v2 auth = tag only");
}

#[test]
fn framed_body_layout_of_a_real_message() {
    use esdk::raw_aes::RawAesKeyring;
    use esdk::{Client, EncryptOptions, MaterialsSource};
    let source = MaterialsSource::keyring(RawAesKeyring::new("n", "k", &[1; 16]).unwrap());
    let sealed = Client::new()
        .encrypt_blocking(
            &source,
            &[0u8; 20],
            &EncryptOptions::default()
                .with_suite(AlgorithmSuite::from_id(0x0478).unwrap())
                .with_frame_length(16),
        )
        .unwrap();
    let parsed = Header::parse(&sealed.ciphertext, None).unwrap().unwrap();
    let body = &sealed.ciphertext[parsed.total_len..];
    // Regular frame 1: seq ‖ IV (seq left-padded) ‖ 16 bytes ‖ tag.
    assert_eq!(&body[..4], &[0, 0, 0, 1]);
    assert_eq!(&body[4..16], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let fin = &body[4 + 12 + 16 + 16..];
    // Final frame: marker ‖ seq ‖ IV ‖ length ‖ 4 bytes ‖ tag.
    assert_eq!(&fin[..8], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2]);
    assert_eq!(&fin[8..20], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    assert_eq!(&fin[20..24], &[0, 0, 0, 4]);
    assert_eq!(fin.len(), 24 + 4 + 16);
}
