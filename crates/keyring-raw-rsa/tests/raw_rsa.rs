//! Raw RSA keyring: round trips for every padding, key encodings, the wire format, known
//! answers from OpenSSL, and every kind of bad input.

use esdk_core::{
    AlgorithmSuite, Client, DataKey, DecryptOptions, DecryptionMaterials, EncryptOptions,
    EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, KeyringError, KeyringFailure,
    MaterialsSource,
};
use keyring_raw_rsa::{
    KeyKind, Padding, RawRsaError, RawRsaKeyring, RsaPrivateKey, RsaPublicKey, MAX_DATA_KEY_LEN,
};

const PK8_PEM: &str = include_str!("keys/rsa-2048.pk8.pem");
const PKCS1_PEM: &str = include_str!("keys/rsa-2048.pkcs1.pem");
const SPKI_PEM: &str = include_str!("keys/rsa-2048.spki.pem");
const PKCS1_PUB_PEM: &str = include_str!("keys/rsa-2048.pkcs1-pub.pem");
const PK8_DER: &[u8] = include_bytes!("keys/rsa-2048.pk8.der");
const SPKI_DER: &[u8] = include_bytes!("keys/rsa-2048.spki.der");
const OTHER_PK8_PEM: &str = include_str!("keys/rsa-2048b.pk8.pem");
const SMALL_PK8_PEM: &str = include_str!("keys/rsa-1024.pk8.pem");
const SMALL_SPKI_PEM: &str = include_str!("keys/rsa-1024.spki.pem");

const NS: &str = "rsa-tests";
const NAME: &str = "key-1";

fn private() -> RsaPrivateKey {
    RsaPrivateKey::from_pem(PK8_PEM).unwrap()
}

fn pair(padding: Padding) -> RawRsaKeyring {
    RawRsaKeyring::with_key_pair(NS, NAME, padding, private()).unwrap()
}

fn suite() -> AlgorithmSuite {
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
}

fn ctx() -> EncryptionContext {
    [("purpose".to_string(), "rsa test".to_string())]
        .into_iter()
        .collect()
}

/// Wrap a fresh data key with `k`; returns the materials (data key + one EDK).
fn wrap(k: &RawRsaKeyring) -> EncryptionMaterials {
    k.wrap(&EncryptionMaterials::new(suite(), ctx())).unwrap()
}

fn unwrap_with(
    k: &RawRsaKeyring,
    edks: &[EncryptedDataKey],
) -> Result<DecryptionMaterials, KeyringError> {
    k.unwrap(&DecryptionMaterials::new(suite(), ctx()), edks)
}

fn reasons(e: &KeyringError) -> Vec<String> {
    match &e.reason {
        KeyringFailure::UnwrapFailed(r) => r.clone(),
        other => panic!("expected UnwrapFailed, got {other:?} ({e})"),
    }
}

#[test]
fn every_padding_round_trips_through_the_client() {
    let client = Client::new();
    for padding in Padding::ALL {
        let sender = RawRsaKeyring::encrypt_only(
            NS,
            NAME,
            padding,
            RsaPublicKey::from_pem(SPKI_PEM).unwrap(),
        )
        .unwrap();
        let receiver = RawRsaKeyring::decrypt_only(NS, NAME, padding, private()).unwrap();
        let message = format!("message wrapped with {padding}");
        let sealed = client
            .encrypt_blocking(
                &MaterialsSource::keyring(sender),
                message.as_bytes(),
                &EncryptOptions::default().with_encryption_context(ctx()),
            )
            .unwrap();
        let edks = &sealed.header.encrypted_data_keys;
        assert_eq!(edks.len(), 1);
        assert_eq!(edks[0].provider_id, NS);
        assert_eq!(edks[0].provider_info, NAME.as_bytes());
        assert_eq!(edks[0].ciphertext.len(), 256, "{padding}");
        let opened = client
            .decrypt_blocking(
                &MaterialsSource::keyring(receiver),
                &sealed.ciphertext,
                &DecryptOptions::default(),
            )
            .unwrap();
        assert_eq!(opened.plaintext, message.as_bytes(), "{padding}");
    }
}

#[test]
fn every_padding_round_trips_16_24_and_32_byte_data_keys() {
    let suites = [
        AlgorithmSuite::from_id(0x0014).unwrap(),
        AlgorithmSuite::from_id(0x0046).unwrap(),
        AlgorithmSuite::from_id(0x0578).unwrap(),
    ];
    for padding in Padding::ALL {
        let k = pair(padding);
        for suite in suites {
            let m = k.wrap(&EncryptionMaterials::new(suite, ctx())).unwrap();
            let d = k
                .unwrap(
                    &DecryptionMaterials::new(suite, ctx()),
                    m.encrypted_data_keys(),
                )
                .unwrap();
            assert_eq!(
                d.data_key().unwrap().as_bytes(),
                m.data_key().unwrap().as_bytes()
            );
            assert_eq!(d.data_key().unwrap().len(), suite.data_key_len());
        }
    }
}

#[test]
fn wrapping_is_randomized() {
    for padding in Padding::ALL {
        let k = pair(padding);
        let m = EncryptionMaterials::new(suite(), ctx())
            .with_data_key(DataKey::new(vec![3u8; 32]))
            .unwrap();
        let a = k.wrap(&m).unwrap();
        let b = k.wrap(&m).unwrap();
        assert_ne!(
            a.encrypted_data_keys()[0].ciphertext,
            b.encrypted_data_keys()[0].ciphertext,
            "{padding}"
        );
    }
}

#[test]
fn unwraps_known_answers_made_by_openssl() {
    let expected: Vec<u8> = (0u8..32).collect();
    let cases: [(Padding, &[u8]); 5] = [
        (Padding::Pkcs1V15, include_bytes!("keys/openssl-pkcs1.bin")),
        (
            Padding::OaepSha1,
            include_bytes!("keys/openssl-oaep-sha1.bin"),
        ),
        (
            Padding::OaepSha256,
            include_bytes!("keys/openssl-oaep-sha256.bin"),
        ),
        (
            Padding::OaepSha384,
            include_bytes!("keys/openssl-oaep-sha384.bin"),
        ),
        (
            Padding::OaepSha512,
            include_bytes!("keys/openssl-oaep-sha512.bin"),
        ),
    ];
    for (padding, ciphertext) in cases {
        let k = RawRsaKeyring::decrypt_only(NS, NAME, padding, private()).unwrap();
        let edk = EncryptedDataKey::new(NS, NAME.as_bytes().to_vec(), ciphertext.to_vec());
        let d = unwrap_with(&k, &[edk]).unwrap();
        assert_eq!(d.data_key().unwrap().as_bytes(), expected, "{padding}");
    }
}

#[test]
fn wraps_an_existing_data_key_without_replacing_it() {
    let k = pair(Padding::OaepSha256);
    let m = EncryptionMaterials::new(suite(), ctx())
        .with_data_key(DataKey::new(vec![5u8; 32]))
        .unwrap();
    let m = k.wrap(&m).unwrap();
    assert_eq!(m.data_key().unwrap().as_bytes(), &[5u8; 32]);
    let d = unwrap_with(&k, m.encrypted_data_keys()).unwrap();
    assert_eq!(d.data_key().unwrap().as_bytes(), &[5u8; 32]);
}

#[test]
fn every_key_encoding_loads_the_same_key() {
    let from_pk8 = RsaPrivateKey::from_pem(PK8_PEM).unwrap();
    let from_pkcs1 = RsaPrivateKey::from_pem(PKCS1_PEM).unwrap();
    let from_der = RsaPrivateKey::from_der(PK8_DER).unwrap();
    let publics = [
        RsaPublicKey::from_pem(SPKI_PEM).unwrap(),
        RsaPublicKey::from_pem(PKCS1_PUB_PEM).unwrap(),
        RsaPublicKey::from_der(SPKI_DER).unwrap(),
        from_pk8.public_key(),
        from_pkcs1.public_key(),
        from_der.public_key(),
    ];
    for p in &publics {
        assert_eq!(*p, publics[0]);
        assert_eq!(p.bits(), 2048);
    }
    // A PKCS#1 private key decrypts what its SPKI public key encrypted.
    let sender =
        RawRsaKeyring::encrypt_only(NS, NAME, Padding::OaepSha1, publics[0].clone()).unwrap();
    let receiver = RawRsaKeyring::decrypt_only(NS, NAME, Padding::OaepSha1, from_pkcs1).unwrap();
    let m = wrap(&sender);
    let d = unwrap_with(&receiver, m.encrypted_data_keys()).unwrap();
    assert_eq!(
        d.data_key().unwrap().as_bytes(),
        m.data_key().unwrap().as_bytes()
    );
}

#[test]
fn malformed_keys_give_typed_errors() {
    for bad in [
        "",
        "not a key",
        SPKI_PEM,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ] {
        match RsaPrivateKey::from_pem(bad) {
            Err(RawRsaError::KeyEncoding {
                kind: KeyKind::Private,
                ..
            }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    for bad in ["", "garbage", PK8_PEM] {
        match RsaPublicKey::from_pem(bad) {
            Err(RawRsaError::KeyEncoding {
                kind: KeyKind::Public,
                ..
            }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let truncated = &PK8_DER[..PK8_DER.len() / 2];
    assert!(matches!(
        RsaPrivateKey::from_der(truncated),
        Err(RawRsaError::KeyEncoding { .. })
    ));
    assert!(matches!(
        RsaPublicKey::from_der(&SPKI_DER[1..]),
        Err(RawRsaError::KeyEncoding { .. })
    ));
    assert!(matches!(
        RsaPrivateKey::from_der(SPKI_DER),
        Err(RawRsaError::KeyEncoding { .. })
    ));
}

#[test]
fn a_key_too_small_for_the_padding_is_refused() {
    let small = RsaPrivateKey::from_pem(SMALL_PK8_PEM).unwrap();
    let small_pub = RsaPublicKey::from_pem(SMALL_SPKI_PEM).unwrap();
    assert_eq!(small.bits(), 1024);
    // 128-byte modulus: SHA-512 OAEP leaves nothing, SHA-384 leaves 30 bytes (< 32).
    for (padding, max) in [(Padding::OaepSha512, 0), (Padding::OaepSha384, 30)] {
        for result in [
            RawRsaKeyring::with_key_pair(NS, NAME, padding, small.clone()),
            RawRsaKeyring::encrypt_only(NS, NAME, padding, small_pub.clone()),
            RawRsaKeyring::decrypt_only(NS, NAME, padding, small.clone()),
        ] {
            match result {
                Err(RawRsaError::KeyTooSmall {
                    keyring,
                    bits: 1024,
                    padding: p,
                    max: m,
                }) => {
                    assert_eq!(p, padding);
                    assert_eq!(m, max);
                    assert!(keyring.contains(NAME), "{keyring}");
                }
                other => panic!("{padding}: {other:?}"),
            }
        }
    }
    // The same key is big enough for the other paddings, and works.
    for padding in [Padding::Pkcs1V15, Padding::OaepSha1, Padding::OaepSha256] {
        let k = RawRsaKeyring::with_key_pair(NS, NAME, padding, small.clone()).unwrap();
        let m = wrap(&k);
        assert_eq!(m.encrypted_data_keys()[0].ciphertext.len(), 128);
        unwrap_with(&k, m.encrypted_data_keys()).unwrap();
    }
    assert_eq!(Padding::OaepSha256.max_plaintext_len(128), Some(62));
    assert_eq!(Padding::OaepSha512.max_plaintext_len(128), None);
    assert_eq!(Padding::Pkcs1V15.max_plaintext_len(256), Some(245));
    assert_eq!(MAX_DATA_KEY_LEN, 32);
}

#[test]
fn bad_configuration_is_refused_with_typed_errors() {
    let other_public = RsaPrivateKey::from_pem(OTHER_PK8_PEM).unwrap().public_key();
    assert!(matches!(
        RawRsaKeyring::new(
            NS,
            NAME,
            Padding::OaepSha256,
            Some(other_public),
            Some(private())
        ),
        Err(RawRsaError::KeyPairMismatch { .. })
    ));
    assert!(matches!(
        RawRsaKeyring::new(NS, NAME, Padding::OaepSha256, None, None),
        Err(RawRsaError::NoKey { .. })
    ));
    assert!(matches!(
        RawRsaKeyring::with_key_pair("aws-kms-thing", NAME, Padding::OaepSha256, private()),
        Err(RawRsaError::ReservedNamespace { .. })
    ));
    let long = "x".repeat(70_000);
    assert!(matches!(
        RawRsaKeyring::with_key_pair(NS, long, Padding::OaepSha256, private()),
        Err(RawRsaError::NameTooLong { .. })
    ));
    // Construction errors convert into the SDK's error types and name the keyring.
    let err = RawRsaKeyring::new(NS, NAME, Padding::OaepSha256, None, None).unwrap_err();
    let keyring_error: KeyringError = err.into();
    assert!(matches!(keyring_error.reason, KeyringFailure::Config(_)));
    assert!(keyring_error.keyring.contains("raw RSA keyring"));
    let sdk_error: Error =
        RawRsaKeyring::with_key_pair("aws-kms", NAME, Padding::OaepSha1, private())
            .unwrap_err()
            .into();
    assert!(sdk_error.to_string().contains("reserved"), "{sdk_error}");
}

#[test]
fn a_public_only_keyring_cannot_decrypt_and_a_private_only_one_cannot_encrypt() {
    let public = RsaPublicKey::from_pem(SPKI_PEM).unwrap();
    let enc_only = RawRsaKeyring::encrypt_only(NS, NAME, Padding::OaepSha256, public).unwrap();
    assert!(enc_only.can_encrypt() && !enc_only.can_decrypt());
    let m = wrap(&enc_only);
    let err = unwrap_with(&enc_only, m.encrypted_data_keys()).unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::Unsupported(_)),
        "{err}"
    );
    assert!(err.keyring.contains("raw RSA keyring"), "{err}");
    assert!(err.to_string().contains("encrypt-only"), "{err}");

    let dec_only = RawRsaKeyring::decrypt_only(NS, NAME, Padding::OaepSha256, private()).unwrap();
    assert!(!dec_only.can_encrypt() && dec_only.can_decrypt());
    let err = dec_only
        .wrap(&EncryptionMaterials::new(suite(), ctx()))
        .unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::Unsupported(_)),
        "{err}"
    );
    // ... and the one it could not encrypt for, it decrypts.
    unwrap_with(&dec_only, m.encrypted_data_keys()).unwrap();

    // Through the client, too.
    let client = Client::new();
    let sealed = client
        .encrypt_blocking(
            &MaterialsSource::keyring(pair(Padding::OaepSha256)),
            b"x",
            &EncryptOptions::default(),
        )
        .unwrap();
    let public = RsaPublicKey::from_pem(SPKI_PEM).unwrap();
    let enc_only = RawRsaKeyring::encrypt_only(NS, NAME, Padding::OaepSha256, public).unwrap();
    let err = client
        .decrypt_blocking(
            &MaterialsSource::keyring(enc_only),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Keyring(KeyringError {
                reason: KeyringFailure::Unsupported(_),
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn the_wrong_private_key_fails() {
    let other = RsaPrivateKey::from_pem(OTHER_PK8_PEM).unwrap();
    for padding in [
        Padding::OaepSha1,
        Padding::OaepSha256,
        Padding::OaepSha384,
        Padding::OaepSha512,
    ] {
        let m = wrap(&pair(padding));
        let wrong = RawRsaKeyring::decrypt_only(NS, NAME, padding, other.clone()).unwrap();
        let err = unwrap_with(&wrong, m.encrypted_data_keys()).unwrap_err();
        let r = reasons(&err);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("EDK 0"), "{r:?}");
        assert!(err.keyring.contains("raw RSA keyring"));
    }
}

/// PKCS#1 v1.5 decrypts with implicit rejection: a wrong key yields a pseudo-random
/// "plaintext". The keyring refuses it when the length is wrong; otherwise the message's key
/// commitment or header authentication does. Decryption must fail either way.
#[test]
fn the_wrong_private_key_fails_with_pkcs1_too() {
    let client = Client::new();
    let other = RsaPrivateKey::from_pem(OTHER_PK8_PEM).unwrap();
    for _ in 0..5 {
        let sealed = client
            .encrypt_blocking(
                &MaterialsSource::keyring(pair(Padding::Pkcs1V15)),
                b"pkcs1",
                &EncryptOptions::default(),
            )
            .unwrap();
        let wrong =
            RawRsaKeyring::decrypt_only(NS, NAME, Padding::Pkcs1V15, other.clone()).unwrap();
        assert!(client
            .decrypt_blocking(
                &MaterialsSource::keyring(wrong),
                &sealed.ciphertext,
                &DecryptOptions::default()
            )
            .is_err());
    }
}

#[test]
fn the_wrong_padding_fails() {
    let client = Client::new();
    for enc in Padding::ALL {
        for dec in Padding::ALL {
            if enc == dec {
                continue;
            }
            let m = wrap(&pair(enc));
            let k = pair(dec);
            let result = unwrap_with(&k, m.encrypted_data_keys());
            if dec == Padding::Pkcs1V15 {
                // Implicit rejection: either refused here, or a key that is not the data key.
                if let Ok(d) = result {
                    assert_ne!(
                        d.data_key().unwrap().as_bytes(),
                        m.data_key().unwrap().as_bytes()
                    );
                }
            } else {
                let err = result.unwrap_err();
                assert_eq!(reasons(&err).len(), 1, "{enc} then {dec}: {err}");
            }
        }
        // End to end the message never opens with another padding.
        let sealed = client
            .encrypt_blocking(
                &MaterialsSource::keyring(pair(enc)),
                b"padding",
                &EncryptOptions::default(),
            )
            .unwrap();
        for dec in Padding::ALL.into_iter().filter(|d| *d != enc) {
            assert!(
                client
                    .decrypt_blocking(
                        &MaterialsSource::keyring(pair(dec)),
                        &sealed.ciphertext,
                        &DecryptOptions::default()
                    )
                    .is_err(),
                "{enc} opened with {dec}"
            );
        }
    }
}

#[test]
fn truncated_extended_and_bit_flipped_edks_fail() {
    for padding in Padding::ALL {
        let k = pair(padding);
        let m = wrap(&k);
        let good = m.encrypted_data_keys()[0].clone();

        for len in [0, 1, 255] {
            let mut edk = good.clone();
            edk.ciphertext.truncate(len);
            let err = unwrap_with(&k, &[edk]).unwrap_err();
            let r = reasons(&err);
            assert!(r[0].contains(&format!("is {len} bytes")), "{r:?}");
        }
        let mut longer = good.clone();
        longer.ciphertext.push(0);
        assert!(reasons(&unwrap_with(&k, &[longer]).unwrap_err())[0].contains("257 bytes"));

        for bit in [0usize, 7, 8 * 100 + 3, 8 * 255 + 7] {
            let mut edk = good.clone();
            edk.ciphertext[bit / 8] ^= 1 << (bit % 8);
            match unwrap_with(&k, &[edk]) {
                Err(err) => assert_eq!(reasons(&err).len(), 1, "{err}"),
                // PKCS#1 v1.5 implicit rejection may produce a 32-byte value: never the key.
                Ok(d) => {
                    assert_eq!(padding, Padding::Pkcs1V15, "flipped bit {bit} unwrapped");
                    assert_ne!(
                        d.data_key().unwrap().as_bytes(),
                        m.data_key().unwrap().as_bytes()
                    );
                }
            }
        }
    }
}

#[test]
fn a_bit_flipped_edk_never_opens_a_message() {
    let client = Client::new();
    for padding in Padding::ALL {
        let k = pair(padding);
        let sealed = client
            .encrypt_blocking(
                &MaterialsSource::keyring(pair(padding)),
                b"tamper",
                &EncryptOptions::default(),
            )
            .unwrap();
        // The EDK ciphertext is the header's last EDK field: find it and flip a byte.
        let edk = &sealed.header.encrypted_data_keys[0].ciphertext;
        let at = sealed
            .ciphertext
            .windows(edk.len())
            .position(|w| w == edk.as_slice())
            .unwrap();
        let mut tampered = sealed.ciphertext.clone();
        tampered[at + 17] ^= 0x40;
        assert!(client
            .decrypt_blocking(
                &MaterialsSource::keyring(k),
                &tampered,
                &DecryptOptions::default()
            )
            .is_err());
    }
}

#[test]
fn only_edks_addressed_to_the_keyring_are_tried() {
    let k = pair(Padding::OaepSha256);
    let m = wrap(&k);
    let good = m.encrypted_data_keys()[0].clone();
    let other_ns =
        EncryptedDataKey::new("other", NAME.as_bytes().to_vec(), good.ciphertext.clone());
    let other_name = EncryptedDataKey::new(NS, b"key-2".to_vec(), good.ciphertext.clone());
    let prefix_name = EncryptedDataKey::new(NS, b"key-1x".to_vec(), good.ciphertext.clone());
    let err = unwrap_with(
        &k,
        &[other_ns.clone(), other_name.clone(), prefix_name.clone()],
    )
    .unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::NoMatchingKey(3)),
        "{err}"
    );
    // A damaged EDK first, then the good one: the keyring goes on to the second.
    let mut bad = good.clone();
    bad.ciphertext[10] ^= 1;
    bad.ciphertext.pop();
    let d = unwrap_with(&k, &[other_ns, bad, other_name, good]).unwrap();
    assert_eq!(
        d.data_key().unwrap().as_bytes(),
        m.data_key().unwrap().as_bytes()
    );
}

#[test]
fn materials_that_already_hold_a_data_key_are_refused() {
    let k = pair(Padding::OaepSha1);
    let m = wrap(&k);
    let with_key = DecryptionMaterials::new(suite(), ctx())
        .with_data_key(DataKey::new(vec![0u8; 32]))
        .unwrap();
    let err = k.unwrap(&with_key, m.encrypted_data_keys()).unwrap_err();
    assert!(matches!(err.reason, KeyringFailure::DataKeyAlreadyPresent));
}

#[test]
fn debug_output_shows_no_key_material() {
    let private = private();
    let k = RawRsaKeyring::with_key_pair(NS, NAME, Padding::OaepSha256, private.clone()).unwrap();
    let debug = format!("{k:?} {private:?} {:?}", private.public_key());
    assert!(debug.contains("bits: 2048"), "{debug}");
    assert!(debug.contains(NAME) && debug.contains(NS));
    // No PEM body, no long run of digits or hex from a modulus or exponent.
    let pem_line = PK8_PEM.lines().nth(1).unwrap();
    assert!(!debug.contains(&pem_line[..16]), "{debug}");
    let longest_alnum_run = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest_alnum_run < 24, "{debug}");
    assert!(debug.len() < 400, "{debug}");
}
