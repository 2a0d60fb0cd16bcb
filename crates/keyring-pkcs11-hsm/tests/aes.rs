//! AES mode against SoftHSM2: round trips, the raw AES wire format, and interchange with
//! `keyring-raw-aes` holding the same key bytes, in both directions.

mod common;

use esdk_core::{
    AlgorithmSuite, Client, DataKey, DecryptOptions, DecryptionMaterials, EncryptOptions,
    EncryptionContext, EncryptionMaterials, Keyring, KeyringFailure, MaterialsSource,
};
use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, RandomSource};
use keyring_raw_aes::RawAesKeyring;

fn context() -> EncryptionContext {
    [
        ("tenant".to_string(), "acme".to_string()),
        ("purpose".to_string(), "pkcs11 test".to_string()),
    ]
    .into_iter()
    .collect()
}

fn encrypt_options() -> EncryptOptions {
    EncryptOptions::default().with_encryption_context(context())
}

fn decrypt_options() -> DecryptOptions {
    DecryptOptions::default().with_reproduced_encryption_context(context())
}

#[test]
fn blocking_round_trip_without_a_runtime() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let keyring =
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    assert_eq!(keyring.key_bits(), 256);
    let source = MaterialsSource::keyring(keyring);
    let client = Client::new();
    let plaintext = b"wrapped inside the token".repeat(300);
    let sealed = client
        .encrypt_blocking(&source, &plaintext, &encrypt_options())
        .unwrap();
    let edks = &sealed.header.encrypted_data_keys;
    assert_eq!(edks.len(), 1);
    assert_eq!(edks[0].provider_id, "hsm");
    let info = &edks[0].provider_info;
    assert_eq!(&info[..4], b"k256");
    assert_eq!(&info[4..12], &[0, 0, 0, 0x80, 0, 0, 0, 0x0C]);
    assert_eq!(info.len(), 4 + 8 + 12);
    assert_eq!(edks[0].ciphertext.len(), 32 + 16);
    let opened = client
        .decrypt_blocking(&source, &sealed.ciphertext, &decrypt_options())
        .unwrap();
    assert_eq!(opened.plaintext, plaintext);
    // Two messages never share an IV.
    let again = client
        .encrypt_blocking(&source, b"x", &encrypt_options())
        .unwrap();
    assert_ne!(again.header.encrypted_data_keys[0].provider_info, *info);
}

#[tokio::test]
async fn async_round_trip_on_a_current_thread_runtime() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let keyring =
        HsmAesKeyring::new_async(&token, AesKeyConfig::new("hsm", "k128", &env.aes128_label))
            .await
            .unwrap();
    assert_eq!(keyring.key_bits(), 128);
    let source = MaterialsSource::keyring(keyring);
    let client = Client::new();
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let sealed = client
            .encrypt(&source, b"async", &encrypt_options().with_suite(suite))
            .await
            .unwrap();
        let opened = client
            .decrypt(&source, &sealed.ciphertext, &decrypt_options())
            .await
            .unwrap();
        assert_eq!(opened.plaintext, b"async");
        assert_eq!(opened.suite, suite);
    }
}

#[test]
fn raw_aes_keyring_with_the_same_bytes_reads_hsm_messages_and_the_reverse() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let client = Client::new();
    for (label, key, name) in [
        (&env.aes_label, &env.aes_key, "k256"),
        (&env.aes128_label, &env.aes128_key, "k128"),
    ] {
        let hsm = MaterialsSource::keyring(
            HsmAesKeyring::new(&token, AesKeyConfig::new("shared-ns", name, label)).unwrap(),
        );
        let raw = MaterialsSource::keyring(RawAesKeyring::new("shared-ns", name, key).unwrap());

        let from_hsm = client
            .encrypt_blocking(&hsm, b"hsm -> raw", &encrypt_options())
            .unwrap();
        let opened = client
            .decrypt_blocking(&raw, &from_hsm.ciphertext, &decrypt_options())
            .unwrap();
        assert_eq!(opened.plaintext, b"hsm -> raw");

        let from_raw = client
            .encrypt_blocking(&raw, b"raw -> hsm", &encrypt_options())
            .unwrap();
        let opened = client
            .decrypt_blocking(&hsm, &from_raw.ciphertext, &decrypt_options())
            .unwrap();
        assert_eq!(opened.plaintext, b"raw -> hsm");

        // A raw AES keyring with other bytes must not read it: the token really used `key`.
        let mut wrong = key.clone();
        wrong[0] ^= 1;
        let other =
            MaterialsSource::keyring(RawAesKeyring::new("shared-ns", name, &wrong).unwrap());
        assert!(client
            .decrypt_blocking(&other, &from_hsm.ciphertext, &decrypt_options())
            .is_err());
    }
}

#[test]
fn wraps_a_data_key_another_keyring_generated() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let hsm = HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let raw = RawAesKeyring::new("raw", "other", &[3u8; 32]).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let materials =
        pollster::block_on(raw.on_encrypt(&EncryptionMaterials::new(suite, context()))).unwrap();
    let materials = pollster::block_on(hsm.on_encrypt(&materials)).unwrap();
    assert_eq!(materials.encrypted_data_keys().len(), 2);
    let expected = materials.data_key().unwrap().as_bytes().to_vec();
    // The HSM unwraps its own EDK, skipping the raw keyring's.
    let unwrapped = pollster::block_on(hsm.on_decrypt(
        &DecryptionMaterials::new(suite, context()),
        materials.encrypted_data_keys(),
    ))
    .unwrap();
    assert_eq!(unwrapped.data_key().unwrap().as_bytes(), expected);
    // Materials that already hold a key are refused.
    let full = DecryptionMaterials::new(suite, context())
        .with_data_key(DataKey::new(expected))
        .unwrap();
    let err =
        pollster::block_on(hsm.on_decrypt(&full, materials.encrypted_data_keys())).unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::DataKeyAlreadyPresent),
        "{err}"
    );
}

#[test]
fn tampered_edk_and_wrong_context_fail_as_unwrap_failures() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let hsm = HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let materials =
        pollster::block_on(hsm.on_encrypt(&EncryptionMaterials::new(suite, context()))).unwrap();
    let edks = materials.encrypted_data_keys().to_vec();
    let decrypt = |ctx: EncryptionContext, edks: &[esdk_core::EncryptedDataKey]| {
        pollster::block_on(hsm.on_decrypt(&DecryptionMaterials::new(suite, ctx), edks))
    };
    assert!(decrypt(context(), &edks).is_ok());

    // Every byte of the ciphertext and tag, and the IV, is authenticated.
    for position in [0, 17, 31, 32, 47] {
        let mut tampered = edks.clone();
        tampered[0].ciphertext[position] ^= 0x01;
        let err = decrypt(context(), &tampered).unwrap_err();
        assert!(
            matches!(err.reason, KeyringFailure::UnwrapFailed(_)),
            "byte {position}: {err}"
        );
        assert!(err.to_string().contains("did not authenticate"), "{err}");
    }
    let mut bad_iv = edks.clone();
    let last = bad_iv[0].provider_info.len() - 1;
    bad_iv[0].provider_info[last] ^= 0x80;
    assert!(matches!(
        decrypt(context(), &bad_iv).unwrap_err().reason,
        KeyringFailure::UnwrapFailed(_)
    ));

    // The encryption context is the AAD.
    let mut other = context();
    other.insert("tenant".into(), "evil".into());
    assert!(matches!(
        decrypt(other, &edks).unwrap_err().reason,
        KeyringFailure::UnwrapFailed(_)
    ));

    // Truncated: rejected before reaching the token.
    let mut short = edks.clone();
    short[0].ciphertext.pop();
    let err = decrypt(context(), &short).unwrap_err();
    assert!(err.to_string().contains("expected 48"), "{err}");

    // Not addressed to this keyring.
    let mut renamed = edks.clone();
    renamed[0].provider_id = "someone-else".into();
    assert!(matches!(
        decrypt(context(), &renamed).unwrap_err().reason,
        KeyringFailure::NoMatchingKey(1)
    ));

    // After all those failures the pooled sessions still work.
    assert!(decrypt(context(), &edks).is_ok());
}

#[test]
fn data_keys_and_ivs_from_the_token_rng() {
    let Some(env) = common::env() else { return };
    let token =
        keyring_pkcs11_hsm::Pkcs11Token::open(env.config().random_source(RandomSource::Token))
            .unwrap();
    let hsm = HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let raw = RawAesKeyring::new("hsm", "k256", &env.aes_key).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let a =
        pollster::block_on(hsm.on_encrypt(&EncryptionMaterials::new(suite, context()))).unwrap();
    let b =
        pollster::block_on(hsm.on_encrypt(&EncryptionMaterials::new(suite, context()))).unwrap();
    assert_ne!(
        a.data_key().unwrap().as_bytes(),
        b.data_key().unwrap().as_bytes()
    );
    assert_eq!(a.data_key().unwrap().len(), 32);
    for m in [&a, &b] {
        let d = pollster::block_on(raw.on_decrypt(
            &DecryptionMaterials::new(suite, context()),
            m.encrypted_data_keys(),
        ))
        .unwrap();
        assert_eq!(
            d.data_key().unwrap().as_bytes(),
            m.data_key().unwrap().as_bytes()
        );
    }
}

#[test]
fn debug_output_shows_no_pin() {
    let Some(env) = common::env() else { return };
    let token = env.token(1);
    let keyring =
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    for text in [
        format!("{token:?}"),
        format!("{keyring:?}"),
        format!("{:?}", env.config()),
    ] {
        assert!(!text.contains(&env.pin), "{text}");
    }
    assert!(format!("{:?}", env.config()).contains("REDACTED"));
    assert!(format!("{keyring:?}").contains(&env.aes_label));
}
