//! Bad input and faults: each gives a typed error naming the key and (for KMS failures) the
//! KMS error code, and none hangs.

use crate::common::{client, client_at, fast_settings, symmetric_key, KmsProxy, ACCOUNT, WEST};
use crate::emulator_or_skip;
use esdk_core::{
    AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials,
    Keyring, KeyringError, KeyringFailure,
};
use keyring_kms::{
    kms_error, ClientSettings, DiscoveryFilter, KmsDiscoveryKeyring, KmsError, KmsKeyring,
    KmsMultiKeyring, KmsOperation, StaticClientSupplier,
};
use std::time::{Duration, Instant};

fn suite() -> AlgorithmSuite {
    AlgorithmSuite::from_id(0x0478).unwrap()
}

fn ctx(v: &str) -> EncryptionContext {
    [("case".to_owned(), v.to_owned())].into()
}

fn enc_materials() -> EncryptionMaterials {
    EncryptionMaterials::new(suite(), ctx("a"))
}

fn dec_materials(v: &str) -> DecryptionMaterials {
    DecryptionMaterials::new(suite(), ctx(v))
}

fn the_kms_error(err: &KeyringError) -> &KmsError {
    kms_error(err).unwrap_or_else(|| panic!("expected a KmsError, got {err:?}"))
}

/// The single reason of a NothingDecrypted error.
fn only_reason(err: &KeyringError) -> &KmsError {
    match the_kms_error(err) {
        KmsError::NothingDecrypted { reasons, .. } if reasons.len() == 1 => &reasons[0],
        other => panic!("expected one reason, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_key() {
    let endpoint = emulator_or_skip!();
    let arn = format!("arn:aws:kms:{WEST}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000");
    let keyring = KmsKeyring::new(&arn, client(&endpoint, WEST)).unwrap();
    let err = keyring.on_encrypt(&enc_materials()).await.unwrap_err();
    let e = the_kms_error(&err);
    assert!(
        matches!(e, KmsError::Service { operation: KmsOperation::GenerateDataKey, code, key_id, .. }
            if code == "NotFoundException" && *key_id == arn),
        "{e:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&arn) && text.contains("NotFoundException"),
        "{text}"
    );
}

/// Decrypt names key A but the blob belongs to key B: KMS refuses (moto says
/// AccessDeniedException; real KMS says IncorrectKeyException).
#[tokio::test]
async fn access_denied() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let (a, b) = (symmetric_key(&kms).await, symmetric_key(&kms).await);
    let by_b = KmsKeyring::new(&b, kms.clone())
        .unwrap()
        .on_encrypt(&enc_materials())
        .await
        .unwrap();
    let forged = EncryptedDataKey::new(
        "aws-kms",
        a.clone(),
        by_b.encrypted_data_keys()[0].ciphertext.clone(),
    );
    let err = KmsKeyring::new(&a, kms)
        .unwrap()
        .on_decrypt(&dec_materials("a"), &[forged])
        .await
        .unwrap_err();
    let reason = only_reason(&err);
    assert!(
        matches!(
            reason.code(),
            Some("AccessDeniedException" | "IncorrectKeyException")
        ),
        "{reason:?}"
    );
    assert_eq!(reason.key_id(), Some(a.as_str()));
    assert!(err.to_string().contains(&a));
}

#[tokio::test]
async fn wrong_encryption_context() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();
    let enc = keyring.on_encrypt(&enc_materials()).await.unwrap();
    let err = keyring
        .on_decrypt(&dec_materials("tampered"), enc.encrypted_data_keys())
        .await
        .unwrap_err();
    let reason = only_reason(&err);
    assert_eq!(
        reason.code(),
        Some("InvalidCiphertextException"),
        "{reason:?}"
    );
    assert_eq!(reason.key_id(), Some(arn.as_str()));
    // The right context still works.
    keyring
        .on_decrypt(&dec_materials("a"), enc.encrypted_data_keys())
        .await
        .unwrap();
}

/// The proxy rewrites KMS's answers to name another key (same length).
#[tokio::test]
async fn response_for_another_key() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = client(&proxy.url, WEST);
    let (a, b) = (symmetric_key(&kms).await, symmetric_key(&kms).await);
    let keyring = KmsKeyring::new(&a, kms).unwrap();
    let good = keyring.on_encrypt(&enc_materials()).await.unwrap();

    proxy.rewrite(&a, &b);
    let err = keyring.on_encrypt(&enc_materials()).await.unwrap_err();
    assert!(
        matches!(the_kms_error(&err), KmsError::KeyIdMismatch { operation: KmsOperation::GenerateDataKey, requested, returned }
            if *requested == a && *returned == b),
        "{err:?}"
    );
    let err = keyring
        .on_decrypt(&dec_materials("a"), good.encrypted_data_keys())
        .await
        .unwrap_err();
    assert!(
        matches!(only_reason(&err), KmsError::KeyIdMismatch { operation: KmsOperation::Decrypt, requested, returned }
            if *requested == a && *returned == b),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&a) && text.contains(&b), "{text}");
}

/// The proxy replaces the data key in KMS's answers by one of another length: encrypt and
/// decrypt refuse it with `PlaintextLength`, naming the key.
#[tokio::test]
async fn response_with_a_data_key_of_the_wrong_length() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = client(&proxy.url, WEST);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();
    let good = keyring.on_encrypt(&enc_materials()).await.unwrap();
    let expected = suite().data_key_len();
    assert_eq!(expected, 32);

    for wrong in [16, expected - 1, expected + 1] {
        proxy.replace_plaintext(Some(&vec![0x42; wrong]));
        let err = keyring.on_encrypt(&enc_materials()).await.unwrap_err();
        assert!(
            matches!(the_kms_error(&err), KmsError::PlaintextLength { operation: KmsOperation::GenerateDataKey, key_id, expected: e, actual }
                if *key_id == arn && *e == expected && *actual == wrong),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&arn) && text.contains(&format!("returned a {wrong}-byte data key")),
            "{text}"
        );

        let err = keyring
            .on_decrypt(&dec_materials("a"), good.encrypted_data_keys())
            .await
            .unwrap_err();
        let reason = only_reason(&err);
        assert!(
            matches!(reason, KmsError::PlaintextLength { operation: KmsOperation::Decrypt, key_id, expected: e, actual }
                if *key_id == arn && *e == expected && *actual == wrong),
            "{reason:?}"
        );
        assert_eq!(reason.key_id(), Some(arn.as_str()));
        assert!(err.to_string().contains(&arn), "{err}");
    }

    // The same key and EDK work again once the answers are left alone.
    proxy.replace_plaintext(None);
    let opened = keyring
        .on_decrypt(&dec_materials("a"), good.encrypted_data_keys())
        .await
        .unwrap();
    assert_eq!(
        opened.data_key().unwrap().as_bytes(),
        good.data_key().unwrap().as_bytes()
    );
    keyring.on_encrypt(&enc_materials()).await.unwrap();
}

#[tokio::test]
async fn malformed_provider_info_fails_outright() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms.clone()).unwrap();
    let good = keyring.on_encrypt(&enc_materials()).await.unwrap();
    let good_edk = good.encrypted_data_keys()[0].clone();
    let alias_arn = format!("arn:aws:kms:{WEST}:{ACCOUNT}:alias/x");
    for (info, needle) in [
        (b"not an arn".to_vec(), "not a KMS key ARN"),
        (alias_arn.clone().into_bytes(), "alias ARN"),
        (vec![0xff, 0xfe], "not a KMS key ARN"),
    ] {
        let bad = EncryptedDataKey::new("aws-kms", info, vec![1, 2, 3]);
        // Even with a good EDK after it, decryption fails: the spec says fail outright.
        let edks = [bad, good_edk.clone()];
        for k in [
            Box::new(keyring.clone()) as Box<dyn Keyring>,
            Box::new(KmsDiscoveryKeyring::new(kms.clone())),
        ] {
            let err = k.on_decrypt(&dec_materials("a"), &edks).await.unwrap_err();
            match the_kms_error(&err) {
                KmsError::MalformedProviderInfo { index: 0, .. } => {}
                other => panic!("expected MalformedProviderInfo, got {other:?}"),
            }
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
    // Other providers' EDKs are simply not ours.
    let other = EncryptedDataKey::new("raw-aes-namespace", b"whatever".to_vec(), vec![1]);
    keyring
        .on_decrypt(&dec_materials("a"), &[other, good_edk])
        .await
        .unwrap();
}

#[tokio::test]
async fn alias_or_bare_key_id_on_decrypt_explains_the_arn_rule() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let key_id = arn.rsplit('/').next().unwrap().to_owned();
    let alias = format!("alias/decrypt-needs-arn-{}", &key_id[..8]);
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let enc = KmsKeyring::new(&arn, kms.clone())
        .unwrap()
        .on_encrypt(&enc_materials())
        .await
        .unwrap();
    for (id, kind) in [(&alias, "an alias name"), (&key_id, "a bare key id")] {
        let keyring = KmsKeyring::new(id.as_str(), kms.clone()).unwrap();
        // It encrypts fine...
        keyring.on_encrypt(&enc_materials()).await.unwrap();
        // ...but cannot decrypt, and says why.
        let err = keyring
            .on_decrypt(&dec_materials("a"), enc.encrypted_data_keys())
            .await
            .unwrap_err();
        match the_kms_error(&err) {
            KmsError::DecryptNeedsKeyArn {
                key_id: k,
                kind: got,
            } => {
                assert_eq!(k, id);
                assert_eq!(*got, kind);
            }
            other => panic!("expected DecryptNeedsKeyArn, got {other:?}"),
        }
        assert!(
            err.to_string().contains("decrypt needs the key ARN"),
            "{err}"
        );
    }
}

/// The emulator goes away between encrypt and decrypt: connection refused, reported
/// within the configured timeouts and retries.
#[tokio::test]
async fn emulator_stopped_mid_test() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = client_at(&proxy.url, WEST, &fast_settings());
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();
    let enc = keyring.on_encrypt(&enc_materials()).await.unwrap();
    proxy.stop().await;
    let start = Instant::now();
    let err = keyring
        .on_decrypt(&dec_materials("a"), enc.encrypted_data_keys())
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    let reason = only_reason(&err);
    assert!(
        matches!(reason, KmsError::Unreachable { key_id, operation: KmsOperation::Decrypt, detail }
            if *key_id == arn && detail.to_lowercase().contains("connection refused")),
        "{reason:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

/// KMS accepts the connection but never answers: the configured timeouts end the call.
#[tokio::test]
async fn unresponsive_kms_times_out() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_secs(2),
        ..fast_settings()
    };
    let kms = client_at(&proxy.url, WEST, &settings);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();
    proxy.blackhole(true);
    let start = Instant::now();
    let err = keyring.on_encrypt(&enc_materials()).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(the_kms_error(&err), KmsError::Timeout { key_id, .. } if *key_id == arn),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    // Two attempts of 500 ms each were made before giving up.
    let generate_calls = proxy
        .seen()
        .iter()
        .filter(|s| s.target.ends_with("GenerateDataKey"))
        .count();
    assert_eq!(generate_calls, 2);
}

/// Throttling is retried per the configured policy; past it, the error says
/// ThrottlingException and names the key.
#[tokio::test]
async fn throttling_follows_the_retry_policy() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let count = |proxy: &KmsProxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.target.ends_with("GenerateDataKey"))
            .count()
    };
    let setup = client(&proxy.url, WEST);
    let arn = symmetric_key(&setup).await;
    for max_attempts in [1u32, 3] {
        let settings = ClientSettings {
            max_attempts,
            ..fast_settings()
        };
        let keyring = KmsKeyring::new(&arn, client_at(&proxy.url, WEST, &settings)).unwrap();
        // Always throttled: exactly max_attempts requests, then a typed error.
        let before = count(&proxy);
        proxy.throttle_next(1000);
        let err = keyring.on_encrypt(&enc_materials()).await.unwrap_err();
        proxy.throttle_next(0);
        assert_eq!(count(&proxy) - before, max_attempts as usize);
        let e = the_kms_error(&err);
        assert_eq!(e.code(), Some("ThrottlingException"), "{e:?}");
        assert_eq!(e.key_id(), Some(arn.as_str()));
        // Throttled fewer times than the budget: the retries absorb it.
        if max_attempts > 1 {
            let before = count(&proxy);
            proxy.throttle_next(max_attempts as usize - 1);
            keyring.on_encrypt(&enc_materials()).await.unwrap();
            assert_eq!(count(&proxy) - before, max_attempts as usize);
        }
    }
}

/// A multi-keyring that cannot decrypt lists every keyring's reason.
#[tokio::test]
async fn multi_keyring_failure_lists_every_reason() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let (a, b, c) = (
        symmetric_key(&kms).await,
        symmetric_key(&kms).await,
        symmetric_key(&kms).await,
    );
    let enc = KmsKeyring::new(&a, kms.clone())
        .unwrap()
        .on_encrypt(&enc_materials())
        .await
        .unwrap();
    let multi = KmsMultiKeyring::builder()
        .keys([&b, &c])
        .client_supplier(StaticClientSupplier::new().with_client(WEST, kms.clone()))
        .build()
        .await
        .unwrap();
    let err = multi
        .on_decrypt(&dec_materials("a"), enc.encrypted_data_keys())
        .await
        .unwrap_err();
    let KeyringFailure::AllFailed(errors) = &err.reason else {
        panic!("expected AllFailed, got {err:?}");
    };
    assert_eq!(errors.len(), 2);
    for (e, key) in errors.iter().zip([&b, &c]) {
        assert!(e.keyring.contains(key.as_str()), "{e}");
        assert!(matches!(only_reason(e), KmsError::OtherKey { key_arn, .. } if *key_arn == a));
    }
    let text = err.to_string();
    for key in [&a, &b, &c] {
        assert!(text.contains(key.as_str()), "{text}");
    }

    // Mixed reasons: wrong context for the right key, filter for discovery.
    let filtered = KmsDiscoveryKeyring::new(kms.clone())
        .with_discovery_filter(DiscoveryFilter::new("aws", ["111122223333"]).unwrap());
    let mixed = KmsMultiKeyring::new(
        "test multi-keyring",
        None,
        vec![
            std::sync::Arc::new(KmsKeyring::new(&a, kms).unwrap()),
            std::sync::Arc::new(filtered),
        ],
    )
    .unwrap();
    let err = mixed
        .on_decrypt(&dec_materials("tampered"), enc.encrypted_data_keys())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("InvalidCiphertextException"), "{text}");
    assert!(text.contains("excluded by the discovery filter"), "{text}");
}
