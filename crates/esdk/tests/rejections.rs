//! Every rejection of DIGEST section 9: each malformed message is fed to decrypt and the
//! specific error is asserted. Messages whose header must authenticate are forged with a
//! keyring that always uses the same data key, so body and footer faults are reached.

#![allow(clippy::cast_possible_truncation)] // test data built from small loop counters

use esdk::crypto;
use esdk::format::body::BlockKind;
use esdk::format::body::{body_aad, FrameCipher, MAX_AAD_LEN};
use esdk::format::header::{ContentType, Header};
use esdk::kdf::derive_keys;
use esdk::raw_aes::RawAesKeyring;
use esdk::{
    async_trait, AlgorithmSuite, Client, CommitmentPolicy, ContextError, DataKey, DecryptOptions,
    DecryptionMaterials, EncryptOptions, EncryptedDataKey, EncryptionContext, EncryptionMaterials,
    Error, FormatError, Keyring, KeyringError, KeyringFailure, MaterialsSource,
    RequiredEncryptionContextCmm,
};
use std::sync::Arc;

/// A keyring whose data key is always `[0x42; n]`: lets tests forge authenticated headers.
struct FixedKeyring;

fn fixed_key(suite: AlgorithmSuite) -> DataKey {
    DataKey::new(vec![0x42; suite.data_key_len()])
}

#[async_trait]
impl Keyring for FixedKeyring {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let m = m
            .clone()
            .with_data_key(fixed_key(m.suite()))
            .map_err(|r| KeyringError::new("fixed", r))?;
        Ok(m.with_encrypted_data_key(EncryptedDataKey::new("fixed", b"k".to_vec(), vec![1])))
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if !edks.iter().any(|e| e.provider_id == "fixed") {
            return Err(KeyringError::new(
                "fixed",
                KeyringFailure::NoMatchingKey(edks.len()),
            ));
        }
        m.clone()
            .with_data_key(fixed_key(m.suite()))
            .map_err(|r| KeyringError::new("fixed", r))
    }
}

fn fixed() -> MaterialsSource {
    MaterialsSource::keyring(FixedKeyring)
}

fn aes() -> MaterialsSource {
    MaterialsSource::keyring(RawAesKeyring::new("ns", "key", &[7; 32]).unwrap())
}

fn lenient() -> Client {
    Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .build()
        .unwrap()
}

fn suite(id: u16) -> AlgorithmSuite {
    AlgorithmSuite::from_id(id).unwrap()
}

fn seal(source: &MaterialsSource, id: u16, plaintext: &[u8], frame: u32) -> Vec<u8> {
    let client = if suite(id).is_committing() {
        Client::new()
    } else {
        lenient()
    };
    client
        .encrypt_blocking(
            source,
            plaintext,
            &EncryptOptions::default()
                .with_suite(suite(id))
                .with_frame_length(frame),
        )
        .unwrap()
        .ciphertext
}

fn open(source: &MaterialsSource, message: &[u8]) -> Result<Vec<u8>, Error> {
    lenient()
        .decrypt_blocking(source, message, &DecryptOptions::default())
        .map(|o| o.plaintext)
}

fn parsed(message: &[u8]) -> esdk::format::header::ParsedHeader {
    Header::parse(message, None).unwrap().unwrap()
}

/// Serialize `header` with a correct tag for the fixed data key (and required-context
/// suffix `extra_aad`), returning the header bytes and the frame cipher.
fn forge_header(mut header: Header, extra_aad: &[u8]) -> (Vec<u8>, FrameCipher) {
    let derived = derive_keys(
        header.suite,
        fixed_key(header.suite).as_bytes(),
        &header.message_id,
    )
    .unwrap();
    header.commitment = derived.commitment;
    let key = crypto::provider().aead_key(&derived.data_key).unwrap();
    let mut bytes = header.serialize_body().unwrap();
    let mut aad = bytes.clone();
    aad.extend_from_slice(extra_aad);
    header.auth_tag = key.seal_in_place(&[0; 12], &aad, &mut []).unwrap();
    header.serialize_auth(&mut bytes);
    let cipher = FrameCipher::new(
        crypto::provider().aead_key(&derived.data_key).unwrap(),
        header.message_id.clone(),
        header.frame_length,
    );
    (bytes, cipher)
}

/// A frame cipher for the fixed data key and `header`'s message id, but another frame length
/// (to seal frames the header's own cipher refuses to make).
fn cipher_with_frame_length(header: &Header, frame_length: u32) -> FrameCipher {
    let derived = derive_keys(
        header.suite,
        fixed_key(header.suite).as_bytes(),
        &header.message_id,
    )
    .unwrap();
    FrameCipher::new(
        crypto::provider().aead_key(&derived.data_key).unwrap(),
        header.message_id.clone(),
        frame_length,
    )
}

fn base_header(id: u16, content_type: ContentType, frame_length: u32) -> Header {
    let s = suite(id);
    Header {
        version: s.message_format(),
        suite: s,
        message_id: (0..s.message_format().message_id_len() as u8).collect(),
        encryption_context: EncryptionContext::new(),
        encrypted_data_keys: vec![EncryptedDataKey::new("fixed", b"k".to_vec(), vec![1])],
        content_type,
        frame_length,
        commitment: None,
        auth_iv: [0; 12],
        auth_tag: [0; 16],
    }
}

fn frame(cipher: &FrameCipher, seq: u32, is_final: bool, plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0; FrameCipher::frame_wire_len(plaintext.len(), is_final)];
    cipher
        .seal_frame(seq, is_final, plaintext, &mut out)
        .unwrap();
    out
}

fn fmt_err(e: Error) -> FormatError {
    match e {
        Error::Format(f) => f,
        other => panic!("expected a format error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- framing and header

#[test]
fn unknown_version_and_base64() {
    let mut m = seal(&aes(), 0x0178, b"hi", 4096);
    m[0] = 0x03;
    assert_eq!(
        fmt_err(open(&aes(), &m).unwrap_err()),
        FormatError::UnknownVersion(3)
    );
    use base64::Engine as _;
    for id in [0x0178, 0x0478, 0x0578] {
        let m = seal(&aes(), id, b"hi", 4096);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&m);
        assert!(
            matches!(open(&aes(), b64.as_bytes()), Err(Error::Base64Encoded)),
            "{id:x}"
        );
    }
}

#[test]
fn v1_type_byte() {
    let mut m = seal(&aes(), 0x0178, b"hi", 4096);
    m[1] = 0x81;
    assert_eq!(
        fmt_err(open(&aes(), &m).unwrap_err()),
        FormatError::UnknownType(0x81)
    );
}

#[test]
fn unknown_and_foreign_suites() {
    for bad in [0x0000u16, 0x0070, 0x0074, 0x6700, 0x6701, 0x0479] {
        let mut m = seal(&aes(), 0x0178, b"hi", 4096);
        m[2..4].copy_from_slice(&bad.to_be_bytes());
        assert!(matches!(open(&aes(), &m), Err(Error::UnknownSuite(s)) if s == bad));
    }
}

#[test]
fn header_version_must_match_suite() {
    let mut m = seal(&aes(), 0x0178, b"hi", 4096);
    m[2..4].copy_from_slice(&0x0478u16.to_be_bytes());
    assert!(matches!(
        fmt_err(open(&aes(), &m).unwrap_err()),
        FormatError::VersionSuiteMismatch { version: 1, .. }
    ));
    let mut m = seal(&aes(), 0x0478, b"hi", 4096);
    m[1..3].copy_from_slice(&0x0178u16.to_be_bytes());
    assert!(matches!(
        fmt_err(open(&aes(), &m).unwrap_err()),
        FormatError::VersionSuiteMismatch { version: 2, .. }
    ));
}

#[test]
fn commitment_policy_refuses_non_committing_suites() {
    let m = seal(&aes(), 0x0178, b"hi", 4096);
    let err = Client::new()
        .decrypt_blocking(&aes(), &m, &DecryptOptions::default())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::SuiteNotAllowed {
            policy: CommitmentPolicy::RequireEncryptRequireDecrypt,
            ..
        }
    ));
    let err = lenient()
        .encrypt_blocking(
            &aes(),
            b"x",
            &EncryptOptions::default().with_suite(suite(0x0478)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SuiteNotAllowed { .. }));
    let err = Client::new()
        .encrypt_blocking(
            &aes(),
            b"x",
            &EncryptOptions::default().with_suite(suite(0x0078)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SuiteNotAllowed { .. }));
}

#[test]
fn every_truncation_is_an_error() {
    for id in [0x0014, 0x0378, 0x0478, 0x0578] {
        let m = seal(&aes(), id, &[5u8; 100], 16);
        for cut in 0..m.len() {
            let err = open(&aes(), &m[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::Truncated(_)),
                "{id:x} cut {cut}: {err:?}"
            );
        }
    }
}

/// Offsets in a v1 header: the context length sits at 20, the pairs start at 22.
#[test]
fn encryption_context_faults() {
    let context: EncryptionContext = [("a".to_string(), "b".to_string())].into();
    let mut h = base_header(0x0178, ContentType::Framed, 4096);
    h.encryption_context = context;
    let body = h.serialize_body().unwrap();
    // Pair count zero with a non-zero length.
    let mut m = body.clone();
    m[22..24].copy_from_slice(&[0, 0]);
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::EncryptionContext(ContextError::ZeroCount)
    );
    // Pairs not filling the declared length (two pairs declared, one present).
    let mut m = body.clone();
    m[23] = 2;
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::EncryptionContext(ContextError::LengthMismatch)
    );
    // Invalid UTF-8 in a key.
    let mut m = body.clone();
    m[26] = 0xff;
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::EncryptionContext(ContextError::NotUtf8)
    );
    // Duplicate keys: rebuild the pairs by hand.
    let mut m = body[..20].to_vec();
    let pairs = [0, 2, 0, 1, b'a', 0, 1, b'b', 0, 1, b'a', 0, 1, b'c'];
    m.extend_from_slice(&(pairs.len() as u16).to_be_bytes());
    m.extend_from_slice(&pairs);
    m.extend_from_slice(&body[30..]);
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::EncryptionContext(ContextError::DuplicateKey("a".into()))
    );
}

#[test]
fn edk_count_faults() {
    let h = base_header(0x0178, ContentType::Framed, 4096);
    let mut m = h.serialize_body().unwrap();
    m[22..24].copy_from_slice(&[0, 0]);
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::NoEncryptedDataKeys
    );
    // More EDKs than allowed: refused as soon as the count is read, before any unwrap.
    let mut h = base_header(0x0178, ContentType::Framed, 4096);
    h.encrypted_data_keys
        .push(EncryptedDataKey::new("other", b"x".to_vec(), vec![2]));
    let (bytes, _) = forge_header(h, &[]);
    let limited = Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .max_encrypted_data_keys(1)
        .build()
        .unwrap();
    // Only the first 24 bytes (through the count) are needed for the refusal.
    for input in [&bytes[..], &bytes[..24]] {
        let err = limited
            .decrypt_blocking(&fixed(), input, &DecryptOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, Error::TooManyEncryptedDataKeys { count: 2, max: 1 }),
            "{err:?}"
        );
    }
    // Encrypt side: materials with more EDKs than allowed.
    let err = Client::builder()
        .max_encrypted_data_keys(1)
        .build()
        .unwrap()
        .encrypt_blocking(
            &MaterialsSource::keyring(TwoEdks),
            b"x",
            &EncryptOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::TooManyEncryptedDataKeys { count: 2, max: 1 }
    ));
    assert!(Client::builder()
        .max_encrypted_data_keys(0)
        .build()
        .is_err());
}

struct TwoEdks;

#[async_trait]
impl Keyring for TwoEdks {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let m = FixedKeyring.on_encrypt(m).await?;
        Ok(m.with_encrypted_data_key(EncryptedDataKey::new("fixed", b"2".to_vec(), vec![2])))
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        FixedKeyring.on_decrypt(m, edks).await
    }
}

/// A v1 header body ends: content type, reserved (4), IV length, frame length (4).
#[test]
fn content_type_reserved_iv_length_and_frame_length() {
    let h = base_header(0x0178, ContentType::Framed, 4096);
    let body = h.serialize_body().unwrap();
    let content_at = body.len() - 10;
    assert_eq!(body[content_at], 0x02);
    let mut m = body.clone();
    m[content_at] = 0x03;
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::UnknownContentType(3)
    );
    let mut m = body.clone();
    m[content_at + 2] = 1;
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::ReservedNotZero
    );
    let mut m = body.clone();
    m[content_at + 5] = 16;
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::IvLength(16)
    );
    let framed_zero = base_header(0x0178, ContentType::Framed, 0)
        .serialize_body()
        .unwrap();
    assert!(matches!(
        fmt_err(open(&fixed(), &framed_zero).unwrap_err()),
        FormatError::FrameLength {
            frame_length: 0,
            ..
        }
    ));
    let nonframed = base_header(0x0178, ContentType::NonFramed, 512)
        .serialize_body()
        .unwrap();
    assert!(matches!(
        fmt_err(open(&fixed(), &nonframed).unwrap_err()),
        FormatError::FrameLength {
            frame_length: 512,
            ..
        }
    ));
}

#[test]
fn v2_commitment_and_header_tag() {
    let m = seal(&aes(), 0x0478, b"hello", 4096);
    let p = parsed(&m);
    // Short suite data: truncated.
    assert!(matches!(
        open(&aes(), &m[..p.body_len - 1]),
        Err(Error::Truncated(_))
    ));
    // Commit key mismatch, detected before the header tag.
    let mut bad = m.clone();
    bad[p.body_len - 1] ^= 1;
    assert!(matches!(open(&aes(), &bad), Err(Error::CommitmentMismatch)));
    // Header tag mismatch.
    let mut bad = m.clone();
    bad[p.total_len - 1] ^= 1;
    assert!(matches!(
        open(&aes(), &bad),
        Err(Error::HeaderAuthentication)
    ));
    // v1: a flipped frame-length byte is caught by the header tag.
    let m = seal(&fixed(), 0x0178, b"hello", 4096);
    let p = parsed(&m);
    let mut bad = m.clone();
    bad[p.body_len - 2] ^= 1;
    assert!(matches!(
        open(&fixed(), &bad),
        Err(Error::HeaderAuthentication)
    ));
    let mut bad = m.clone();
    bad[p.body_len + 3] ^= 1; // inside the v1 header IV
    assert!(matches!(
        open(&fixed(), &bad),
        Err(Error::HeaderAuthentication)
    ));
}

#[test]
fn public_key_entry_faults() {
    // Signed suite without the key.
    let (m, _) = forge_header(base_header(0x0378, ContentType::Framed, 4096), &[]);
    assert!(matches!(
        open(&fixed(), &m),
        Err(Error::EncryptionContext(ContextError::PublicKeyEntry(_)))
    ));
    // Unsigned suite with a key.
    let mut h = base_header(0x0178, ContentType::Framed, 4096);
    h.encryption_context
        .insert("aws-crypto-public-key".into(), "AAAA".into());
    let (m, _) = forge_header(h, &[]);
    assert!(matches!(
        open(&fixed(), &m),
        Err(Error::EncryptionContext(ContextError::PublicKeyEntry(_)))
    ));
    // Not Base64, not a point on the curve (the wrong length; a compressed x with no y on
    // P-384), and an uncompressed point (on the curve, but the format stores compressed ones).
    for value in [
        "!!not base64!!",
        "AkVWRUxJTkVTU0VTU0VTU0VTU0VTU0VTU0VTU0VTU0VTU0VTU0VTU0VTU0VT",
        "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ==",
        "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAozerbvQSRGjwZMeJt8/pkOdypx+sob71G/DGfDiu3gCMrr1eCX8DBkSraL+/oQCTA==",
    ] {
        let mut h = base_header(0x0378, ContentType::Framed, 4096);
        h.encryption_context
            .insert("aws-crypto-public-key".into(), value.into());
        let (m, _) = forge_header(h, &[]);
        assert!(matches!(
            fmt_err(open(&fixed(), &m).unwrap_err()),
            FormatError::VerificationKey(_)
        ));
    }
    // The control: the compressed point (2, y) is on P-384, so the key is accepted and the
    // forged header fails later, at its tag.
    let mut h = base_header(0x0378, ContentType::Framed, 4096);
    h.encryption_context.insert(
        "aws-crypto-public-key".into(),
        "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAg==".into(),
    );
    let (m, _) = forge_header(h, &[]);
    let err = open(&fixed(), &m).unwrap_err();
    assert!(
        !matches!(&err, Error::Format(FormatError::VerificationKey(_))),
        "{err}"
    );
}

#[test]
fn reproduced_and_required_context_faults() {
    let context: EncryptionContext = [("tenant".to_string(), "a".to_string())].into();
    let sealed = Client::new()
        .encrypt_blocking(
            &aes(),
            b"x",
            &EncryptOptions::default().with_encryption_context(context),
        )
        .unwrap();
    let wrong: EncryptionContext = [("tenant".to_string(), "b".to_string())].into();
    let err = Client::new()
        .decrypt_blocking(
            &aes(),
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(wrong),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::EncryptionContext(ContextError::ReproducedMismatch(k)) if k == "tenant")
    );
    // An extra reproduced key that was never part of the message fails header authentication
    // (it is appended as a required key).
    let extra: EncryptionContext = [
        ("tenant".to_string(), "a".to_string()),
        ("x".to_string(), "y".to_string()),
    ]
    .into();
    let err = Client::new()
        .decrypt_blocking(
            &aes(),
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(extra),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Keyring(_) | Error::HeaderAuthentication),
        "{err:?}"
    );

    let keyring: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "key", &[7; 32]).unwrap());
    let cmm = MaterialsSource::cmm(RequiredEncryptionContextCmm::with_keyring(
        keyring,
        ["tenant"],
    ));
    let err = Client::new()
        .encrypt_blocking(&cmm, b"x", &EncryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::EncryptionContext(ContextError::MissingRequiredKey(k)) if k == "tenant")
    );
    let context: EncryptionContext = [
        ("tenant".to_string(), "a".to_string()),
        ("stored".to_string(), "s".to_string()),
    ]
    .into();
    let sealed = Client::new()
        .encrypt_blocking(
            &cmm,
            b"x",
            &EncryptOptions::default().with_encryption_context(context.clone()),
        )
        .unwrap();
    assert!(!sealed.header.encryption_context.contains_key("tenant"));
    assert!(sealed.header.encryption_context.contains_key("stored"));
    let err = Client::new()
        .decrypt_blocking(&cmm, &sealed.ciphertext, &DecryptOptions::default())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::EncryptionContext(ContextError::MissingRequiredKey(_))
    ));
    let ok = Client::new()
        .decrypt_blocking(
            &cmm,
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(context.clone()),
        )
        .unwrap();
    assert_eq!(ok.encryption_context, sealed.encryption_context);
    assert!(context
        .iter()
        .all(|(k, v)| ok.encryption_context.get(k) == Some(v)));
    // The plain default CMM works too once the required pair is reproduced.
    let ok = Client::new()
        .decrypt_blocking(
            &aes(),
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(
                [("tenant".to_string(), "a".to_string())].into(),
            ),
        )
        .unwrap();
    assert_eq!(ok.plaintext, b"x");
    let err = Client::new()
        .decrypt_blocking(
            &aes(),
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(
                [("tenant".to_string(), "WRONG".to_string())].into(),
            ),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Keyring(_) | Error::HeaderAuthentication),
        "{err:?}"
    );
}

#[test]
fn no_keyring_can_unwrap() {
    let m = seal(&aes(), 0x0478, b"x", 4096);
    let other = MaterialsSource::keyring(RawAesKeyring::new("ns", "key", &[8; 32]).unwrap());
    let err = Client::new()
        .decrypt_blocking(&other, &m, &DecryptOptions::default())
        .unwrap_err();
    match err {
        Error::Keyring(k) => {
            assert!(k.keyring.contains("raw AES"), "{k}");
            assert!(matches!(k.reason, KeyringFailure::UnwrapFailed(ref r) if r.len() == 1));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- body

#[test]
fn sequence_number_faults() {
    let (h, c) = forge_header(base_header(0x0178, ContentType::Framed, 4), &[]);
    let msg = |frames: &[Vec<u8>]| [h.clone(), frames.concat()].concat();
    // A well-formed forged message decrypts: the forging is right.
    let good = msg(&[frame(&c, 1, false, b"abcd"), frame(&c, 2, true, b"ef")]);
    assert_eq!(open(&fixed(), &good).unwrap(), b"abcdef");
    // First frame not 1.
    let m = msg(&[frame(&c, 2, false, b"abcd"), frame(&c, 3, true, b"ef")]);
    assert_eq!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::SequenceNumber {
            found: 2,
            expected: 1
        }
    );
    // Gap, repeat, and a final frame with the wrong number.
    for (second, is_final) in [(3, false), (1, false), (3, true), (1, true)] {
        let m = msg(&[
            frame(&c, 1, false, b"abcd"),
            frame(
                &c,
                second,
                is_final,
                if is_final { &b"ef"[..] } else { &b"wxyz"[..] },
            ),
        ]);
        let e = open(&fixed(), &m).unwrap_err();
        assert!(matches!(
            fmt_err(e),
            FormatError::SequenceNumber { expected: 2, .. }
        ));
    }
    // Reordered frames of a real message.
    let real = seal(&fixed(), 0x0178, b"0123456789abcdef", 4);
    let p = parsed(&real);
    let f = 4 + 12 + 4 + 16;
    let mut swapped = real.clone();
    let (a, b) = (p.total_len, p.total_len + f);
    let first = real[a..b].to_vec();
    swapped[a..b].copy_from_slice(&real[b..b + f]);
    swapped[b..b + f].copy_from_slice(&first);
    assert!(matches!(
        fmt_err(open(&fixed(), &swapped).unwrap_err()),
        FormatError::SequenceNumber {
            found: 2,
            expected: 1
        }
    ));
}

#[test]
fn final_frame_longer_than_frame_length() {
    let header = base_header(0x0178, ContentType::Framed, 4);
    let (h, _) = forge_header(header, &[]);
    // The header's cipher refuses to seal a 5-byte final frame; one built for frame length 8
    // (same key and message id) makes it.
    let wide = cipher_with_frame_length(&parsed(&h).header, 8);
    let m = [h, frame(&wide, 1, true, b"abcde")].concat();
    assert!(matches!(
        fmt_err(open(&fixed(), &m).unwrap_err()),
        FormatError::FinalFrameLength {
            length: 5,
            frame_length: 4
        }
    ));
}

#[test]
fn missing_final_frame_and_data_after_it() {
    let (h, c) = forge_header(base_header(0x0178, ContentType::Framed, 4), &[]);
    let m = [h.clone(), frame(&c, 1, false, b"abcd")].concat();
    assert!(matches!(open(&fixed(), &m), Err(Error::Truncated(_))));
    let m = [h, frame(&c, 1, true, b"ab"), vec![0, 0]].concat();
    assert!(matches!(open(&fixed(), &m), Err(Error::TrailingBytes(2))));
}

#[test]
fn non_framed_bodies() {
    let (h, _) = forge_header(base_header(0x0178, ContentType::NonFramed, 0), &[]);
    let header = parsed(&h).header;
    let derived = derive_keys(
        header.suite,
        fixed_key(header.suite).as_bytes(),
        &header.message_id,
    )
    .unwrap();
    let key = crypto::provider().aead_key(&derived.data_key).unwrap();
    let single = |plaintext: &[u8]| {
        let mut ct = plaintext.to_vec();
        let mut buf = [0u8; MAX_AAD_LEN];
        let aad = body_aad(
            &header.message_id,
            BlockKind::SingleBlock,
            1,
            ct.len() as u64,
            &mut buf,
        );
        let iv = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let tag = key.seal_in_place(&iv, aad, &mut ct).unwrap();
        [&iv[..], &(ct.len() as u64).to_be_bytes(), &ct, &tag].concat()
    };
    let good = [h.clone(), single(b"legacy body")].concat();
    assert_eq!(open(&fixed(), &good).unwrap(), b"legacy body");
    let mut tampered = good.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 1;
    assert!(matches!(
        open(&fixed(), &tampered),
        Err(Error::FrameAuthentication { sequence_number: 1 })
    ));
    let mut too_long = h.clone();
    too_long.extend_from_slice(&[0; 12]);
    too_long.extend_from_slice(&((1u64 << 36) - 31).to_be_bytes());
    assert!(matches!(
        fmt_err(open(&fixed(), &too_long).unwrap_err()),
        FormatError::NonFramedLength(_)
    ));
    // A length within the limit but past the end of the input is truncation, and nothing
    // is allocated for it.
    let mut short = h.clone();
    short.extend_from_slice(&[0; 12]);
    short.extend_from_slice(&((1u64 << 36) - 32).to_be_bytes());
    assert!(matches!(open(&fixed(), &short), Err(Error::Truncated(_))));
}

#[test]
fn frame_tag_faults_and_frames_from_other_messages() {
    let m = seal(&fixed(), 0x0178, b"0123456789", 4);
    let p = parsed(&m);
    // Any flipped byte of frame 2 (after seq and IV) fails that frame.
    let f = 4 + 12 + 4 + 16;
    for offset in 16..f {
        let mut bad = m.clone();
        bad[p.total_len + f + offset] ^= 0x80;
        assert!(
            matches!(
                open(&fixed(), &bad),
                Err(Error::FrameAuthentication { sequence_number: 2 })
            ),
            "offset {offset}"
        );
    }
    // A changed IV is refused before any decryption: frame IVs are fixed by the format.
    for offset in 4..16 {
        let mut bad = m.clone();
        bad[p.total_len + f + offset] ^= 0x01;
        assert!(
            matches!(
                open(&fixed(), &bad),
                Err(Error::Format(FormatError::FrameIv(2)))
            ),
            "offset {offset}"
        );
    }
    // The same frame from another message (same data key, another message id) fails.
    let other = seal(&fixed(), 0x0178, b"0123456789", 4);
    let q = parsed(&other);
    let mut spliced = m.clone();
    spliced[p.total_len..p.total_len + f].copy_from_slice(&other[q.total_len..q.total_len + f]);
    assert!(matches!(
        open(&fixed(), &spliced),
        Err(Error::FrameAuthentication { sequence_number: 1 })
    ));
    // A regular frame presented as final (content string is bound by the AAD).
    let (h, c) = forge_header(base_header(0x0178, ContentType::Framed, 4), &[]);
    let mut as_final = frame(&c, 1, true, b"abcd");
    let regular = frame(&c, 1, false, b"abcd");
    as_final[24..].copy_from_slice(&regular[16..]);
    assert!(matches!(
        open(&fixed(), &[h, as_final].concat()),
        Err(Error::FrameAuthentication { sequence_number: 1 })
    ));
}

// ---------------------------------------------------------------- footer

#[test]
fn signature_faults() {
    for id in [0x0214, 0x0378, 0x0578] {
        let m = seal(&aes(), id, b"signed data", 4096);
        let end = body_end(&m);
        // Missing or truncated footer.
        assert!(matches!(open(&aes(), &m[..end]), Err(Error::Truncated(_))));
        assert!(matches!(
            open(&aes(), &m[..m.len() - 1]),
            Err(Error::Truncated(_))
        ));
        // Invalid signature: flip the last byte of s.
        let mut bad = m.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            open(&aes(), &bad),
            Err(Error::SignatureVerification)
        ));
        // Not DER.
        let mut bad = m.clone();
        bad[end + 2] = 0x31;
        assert!(matches!(
            fmt_err(open(&aes(), &bad).unwrap_err()),
            FormatError::Footer
        ));
        // Extra bytes after the footer.
        let mut extra = m.clone();
        extra.push(0);
        assert!(matches!(open(&aes(), &extra), Err(Error::TrailingBytes(1))));
        // A footer signed over other content: take another message's footer.
        let other = seal(&aes(), id, b"signed data", 4096);
        let spliced = [&m[..end], &other[body_end(&other)..]].concat();
        assert!(matches!(
            open(&aes(), &spliced),
            Err(Error::SignatureVerification)
        ));
    }
}

/// End of the body: header + frames, found by walking the frames.
fn body_end(m: &[u8]) -> usize {
    let p = parsed(m);
    let mut pos = p.total_len;
    let fl = p.header.frame_length as usize;
    loop {
        if m[pos..pos + 4] == [0xff; 4] {
            let len = u32::from_be_bytes(m[pos + 20..pos + 24].try_into().unwrap()) as usize;
            return pos + 24 + len + 16;
        }
        pos += 4 + 12 + fl + 16;
    }
}

#[test]
fn unsigned_message_with_a_footer_is_trailing_bytes() {
    let m = seal(&aes(), 0x0478, b"x", 4096);
    let mut extra = m.clone();
    extra.extend_from_slice(&[0, 2, 0x30, 0]);
    assert!(matches!(
        Client::new().decrypt_blocking(&aes(), &extra, &DecryptOptions::default()),
        Err(Error::TrailingBytes(4))
    ));
}

#[test]
fn unsigned_only_refuses_signed_messages() {
    let m = seal(&aes(), 0x0578, b"x", 4096);
    let err = Client::new()
        .decrypt_blocking(&aes(), &m, &DecryptOptions::default().unsigned_only())
        .unwrap_err();
    assert!(matches!(err, Error::SignedMessageRefused(_)));
    let m = seal(&aes(), 0x0478, b"x", 4096);
    assert!(Client::new()
        .decrypt_blocking(&aes(), &m, &DecryptOptions::default().unsigned_only())
        .is_ok());
}

// ---------------------------------------------------------------- encrypt side

#[test]
fn encrypt_side_checks() {
    let reserved: EncryptionContext = [("aws-crypto-x".to_string(), "1".to_string())].into();
    assert!(matches!(
        Client::new().encrypt_blocking(
            &aes(),
            b"x",
            &EncryptOptions::default().with_encryption_context(reserved)
        ),
        Err(Error::EncryptionContext(ContextError::ReservedKey(_)))
    ));
    assert!(matches!(
        Client::new().encrypt_blocking(
            &aes(),
            b"x",
            &EncryptOptions::default().with_frame_length(0)
        ),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Client::new().encrypt_blocking(
            &aes(),
            b"four",
            &EncryptOptions::default().with_plaintext_length_bound(3)
        ),
        Err(Error::PlaintextTooLong { bound: 3 })
    ));
    // The default CMM refuses a request that already carries the public key entry.
    let keyring: Arc<dyn Keyring> = Arc::new(FixedKeyring);
    let cmm = esdk::DefaultCmm::new(keyring);
    let request = esdk::EncryptionMaterialsRequest {
        encryption_context: [("aws-crypto-public-key".to_string(), "x".to_string())].into(),
        suite: None,
        commitment_policy: CommitmentPolicy::default(),
        max_plaintext_length: None,
        required_encryption_context_keys: vec![],
    };
    use esdk::CryptographicMaterialsManager;
    assert!(matches!(
        pollster::block_on(cmm.get_encryption_materials(request)),
        Err(Error::EncryptionContext(ContextError::ReservedKey(_)))
    ));
}

#[test]
fn a_keyring_never_overwrites_a_data_key() {
    let m = DecryptionMaterials::new(suite(0x0478), EncryptionContext::new())
        .with_data_key(fixed_key(suite(0x0478)))
        .unwrap();
    assert!(matches!(
        m.with_data_key(fixed_key(suite(0x0478))),
        Err(KeyringFailure::DataKeyAlreadyPresent)
    ));
}

// ---------------------------------------------------------------- hostile input

#[test]
fn every_single_byte_flip_is_rejected() {
    for id in [0x0078, 0x0478, 0x0578] {
        let m = seal(&aes(), id, b"0123456789abcdef0123", 8);
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 0x01;
            assert!(
                open(&aes(), &bad).is_err(),
                "suite {id:x}: flip at {i} accepted"
            );
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    // A deterministic xorshift stream: inputs of many lengths and shapes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let template = seal(&aes(), 0x0578, b"template", 4);
    for _ in 0..3000 {
        let mut m = template.clone();
        let edits = next() % 8 + 1;
        for _ in 0..edits {
            let at = (next() as usize) % m.len();
            m[at] = next() as u8;
        }
        let cut = (next() as usize) % (m.len() + 1);
        assert!(open(&aes(), &m[..cut]).is_err() || cut == m.len());
    }
}
