//! The required-encryption-context CMM (DIGEST 7.3): required keys must be in the context on
//! encrypt, are authenticated but not stored in the header, and must be reproduced (with the
//! same values) on decrypt.
//!
//! The keyring used here binds nothing to the encryption context (like raw RSA), so every
//! rejection below comes from the CMM or from header authentication, not from key unwrapping.

use esdk_core::{
    async_trait, AlgorithmSuite, Client, ContextError, CryptographicMaterialsManager, DataKey,
    DecryptOptions, DecryptionMaterials, DefaultCmm, EncryptOptions, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest, Error, Keyring,
    KeyringError, KeyringFailure, MaterialsSource, RequiredEncryptionContextCmm,
};
use std::sync::Arc;

/// Stores the data key XORed with a fixed pad: binds no context. For tests only.
struct ContextBlindKeyring;

const PAD: u8 = 0x5c;

#[async_trait]
impl Keyring for ContextBlindKeyring {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let fail = |r| KeyringError::new("context-blind test keyring", r);
        let m = match m.data_key() {
            Some(_) => m.clone(),
            None => {
                let key = DataKey::generate(m.suite())
                    .map_err(|e| fail(KeyringFailure::WrapFailed(e.to_string())))?;
                m.clone().with_data_key(key).map_err(fail)?
            }
        };
        let wrapped: Vec<u8> = m
            .data_key()
            .ok_or_else(|| fail(KeyringFailure::NoDataKey))?
            .as_bytes()
            .iter()
            .map(|b| b ^ PAD)
            .collect();
        Ok(m.with_encrypted_data_key(EncryptedDataKey::new("blind", b"k".to_vec(), wrapped)))
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let fail = |r| KeyringError::new("context-blind test keyring", r);
        let edk = edks
            .iter()
            .find(|e| e.provider_id == "blind")
            .ok_or(fail(KeyringFailure::NoMatchingKey(edks.len())))?;
        let key: Vec<u8> = edk.ciphertext.iter().map(|b| b ^ PAD).collect();
        m.clone().with_data_key(DataKey::new(key)).map_err(fail)
    }
}

fn keyring() -> Arc<dyn Keyring> {
    Arc::new(ContextBlindKeyring)
}

fn required(keys: &[&str]) -> MaterialsSource {
    MaterialsSource::cmm(RequiredEncryptionContextCmm::with_keyring(
        keyring(),
        keys.iter().copied(),
    ))
}

fn default_source() -> MaterialsSource {
    MaterialsSource::from(keyring())
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const TENANT_SECRET: &str = "tenant-7f3a-not-stored";

fn full_context() -> EncryptionContext {
    context(&[
        ("tenant", TENANT_SECRET),
        ("purpose", "billing"),
        ("région", "eu-ouest-\u{1F30D}"),
    ])
}

fn encrypt(source: &MaterialsSource, suite: AlgorithmSuite) -> Result<Vec<u8>, Error> {
    let policy = if suite.is_committing() {
        esdk_core::CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        esdk_core::CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder()
        .commitment_policy(policy)
        .build()?
        .encrypt_blocking(
            source,
            b"required context payload",
            &EncryptOptions::default()
                .with_suite(suite)
                .with_encryption_context(full_context()),
        )
        .map(|out| out.ciphertext)
}

fn decrypt(
    source: &MaterialsSource,
    message: &[u8],
    reproduced: Option<EncryptionContext>,
) -> Result<esdk_core::DecryptOutput, Error> {
    let client = Client::builder()
        .commitment_policy(esdk_core::CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()?;
    let options = DecryptOptions {
        reproduced_encryption_context: reproduced,
        ..Default::default()
    };
    client.decrypt_blocking(source, message, &options)
}

fn suites() -> Vec<AlgorithmSuite> {
    [0x0014, 0x0178, 0x0214, 0x0378, 0x0478, 0x0578]
        .into_iter()
        .map(|id| AlgorithmSuite::from_id(id).unwrap())
        .collect()
}

#[test]
fn encrypt_requires_the_keys_to_be_in_the_context() {
    let err = Client::new()
        .encrypt_blocking(
            &required(&["tenant", "absent"]),
            b"x",
            &EncryptOptions::default().with_encryption_context(full_context()),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::EncryptionContext(ContextError::MissingRequiredKey(k)) if k == "absent"),
        "{err}"
    );
    let err = Client::new()
        .encrypt_blocking(&required(&["tenant"]), b"x", &EncryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::EncryptionContext(ContextError::MissingRequiredKey(k)) if k == "tenant"),
        "{err}"
    );
}

#[test]
fn required_pairs_are_authenticated_but_not_stored() {
    for suite in suites() {
        let message = encrypt(&required(&["tenant", "région"]), suite).unwrap();
        let parsed = esdk_core::Header::parse(&message, None).unwrap().unwrap();
        let stored = &parsed.header.encryption_context;
        assert!(!stored.contains_key("tenant") && !stored.contains_key("région"));
        assert_eq!(stored.get("purpose").map(String::as_str), Some("billing"));
        assert_eq!(
            stored.contains_key("aws-crypto-public-key"),
            suite.is_signed()
        );
        for needle in [TENANT_SECRET, "tenant", "eu-ouest", "région"] {
            assert!(
                !message
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "{needle:?} is in the {suite} message"
            );
        }
    }
}

#[test]
fn decrypt_succeeds_with_the_reproduced_pairs_and_returns_the_full_context() {
    for suite in suites() {
        let message = encrypt(&required(&["tenant", "région"]), suite).unwrap();
        let reproduced = context(&[("tenant", TENANT_SECRET), ("région", "eu-ouest-\u{1F30D}")]);
        for source in [required(&["tenant", "région"]), default_source()] {
            let out = decrypt(&source, &message, Some(reproduced.clone())).unwrap();
            assert_eq!(out.plaintext, b"required context payload");
            for (k, v) in full_context() {
                assert_eq!(out.encryption_context.get(&k), Some(&v), "{suite}");
            }
        }
        // Reproducing the stored pair too is fine when the value is the same.
        let mut everything = full_context();
        everything.insert("purpose".into(), "billing".into());
        decrypt(&required(&["tenant"]), &message, Some(everything)).unwrap();
    }
}

#[test]
fn decrypt_without_the_reproduced_pairs_fails() {
    for suite in suites() {
        let message = encrypt(&required(&["tenant"]), suite).unwrap();
        // The required CMM refuses before touching the message.
        for reproduced in [
            None,
            Some(EncryptionContext::new()),
            Some(context(&[("purpose", "billing")])),
        ] {
            let err = decrypt(&required(&["tenant"]), &message, reproduced).unwrap_err();
            assert!(
                matches!(&err, Error::EncryptionContext(ContextError::MissingRequiredKey(k)) if k == "tenant"),
                "{err}"
            );
        }
        // A plain keyring gets as far as the header tag, which covers the missing pair.
        let err = decrypt(&default_source(), &message, None).unwrap_err();
        assert!(matches!(err, Error::HeaderAuthentication), "{suite}: {err}");
    }
}

#[test]
fn decrypt_with_a_wrong_reproduced_value_fails() {
    for suite in suites() {
        let message = encrypt(&required(&["tenant", "région"]), suite).unwrap();
        for (key, wrong) in [("tenant", "tenant-7f3a-not-store"), ("région", "eu-ouest")] {
            let mut reproduced =
                context(&[("tenant", TENANT_SECRET), ("région", "eu-ouest-\u{1F30D}")]);
            reproduced.insert(key.into(), wrong.into());
            for source in [required(&["tenant", "région"]), default_source()] {
                let err = decrypt(&source, &message, Some(reproduced.clone())).unwrap_err();
                assert!(matches!(err, Error::HeaderAuthentication), "{suite}: {err}");
            }
        }
        // A stored pair reproduced with another value is caught before any key is unwrapped.
        let mut reproduced =
            context(&[("tenant", TENANT_SECRET), ("région", "eu-ouest-\u{1F30D}")]);
        reproduced.insert("purpose".into(), "marketing".into());
        let err = decrypt(&required(&["tenant"]), &message, Some(reproduced)).unwrap_err();
        assert!(
            matches!(&err, Error::EncryptionContext(ContextError::ReproducedMismatch(k)) if k == "purpose"),
            "{err}"
        );
        // An extra pair the message never had is authenticated too, so it fails.
        let reproduced = context(&[
            ("tenant", TENANT_SECRET),
            ("région", "eu-ouest-\u{1F30D}"),
            ("extra", "1"),
        ]);
        let err = decrypt(&default_source(), &message, Some(reproduced)).unwrap_err();
        assert!(matches!(err, Error::HeaderAuthentication), "{err}");
    }
}

#[test]
fn the_decrypting_cmm_may_require_fewer_or_stored_keys() {
    // Encrypted requiring "tenant"; decrypted by a CMM that requires the stored "purpose".
    let message = encrypt(
        &required(&["tenant"]),
        AlgorithmSuite::from_id(0x0478).unwrap(),
    )
    .unwrap();
    let reproduced = context(&[("tenant", TENANT_SECRET), ("purpose", "billing")]);
    decrypt(&required(&["purpose"]), &message, Some(reproduced)).unwrap();
    // Encrypted with nothing required: a required CMM on decrypt just needs the pairs reproduced.
    let plain = encrypt(&default_source(), AlgorithmSuite::from_id(0x0478).unwrap()).unwrap();
    decrypt(
        &required(&["tenant"]),
        &plain,
        Some(context(&[("tenant", TENANT_SECRET)])),
    )
    .unwrap();
    let err = decrypt(&required(&["tenant"]), &plain, None).unwrap_err();
    assert!(matches!(
        err,
        Error::EncryptionContext(ContextError::MissingRequiredKey(_))
    ));
}

#[test]
fn materials_list_the_required_keys_and_an_inner_cmm_can_be_wrapped() {
    let inner: Arc<dyn CryptographicMaterialsManager> = Arc::new(DefaultCmm::new(keyring()));
    let cmm = RequiredEncryptionContextCmm::new(inner, ["tenant"]);
    assert_eq!(cmm.required_keys(), ["tenant".to_string()]);
    let request = EncryptionMaterialsRequest {
        encryption_context: full_context(),
        suite: None,
        commitment_policy: esdk_core::CommitmentPolicy::default(),
        max_plaintext_length: None,
        required_encryption_context_keys: Vec::new(),
    };
    let m = pollster::block_on(cmm.get_encryption_materials(request)).unwrap();
    assert_eq!(m.required_encryption_context_keys(), ["tenant".to_string()]);
    // The full context (plus the signing key's public half for the default signed suite).
    for (k, v) in full_context() {
        assert_eq!(m.encryption_context().get(&k), Some(&v));
    }
    assert!(m.encryption_context().contains_key("aws-crypto-public-key"));
    // Nesting two required CMMs accumulates their keys.
    let outer = RequiredEncryptionContextCmm::new(Arc::new(cmm), ["purpose"]);
    let source = MaterialsSource::cmm(outer);
    let message = Client::new()
        .encrypt_blocking(
            &source,
            b"nested",
            &EncryptOptions::default().with_encryption_context(full_context()),
        )
        .unwrap();
    let stored = &message.header.encryption_context;
    assert!(!stored.contains_key("tenant") && !stored.contains_key("purpose"));
    assert!(stored.contains_key("région"));
    let out = decrypt(
        &source,
        &message.ciphertext,
        Some(context(&[
            ("tenant", TENANT_SECRET),
            ("purpose", "billing"),
        ])),
    )
    .unwrap();
    assert_eq!(out.plaintext, b"nested");
}
