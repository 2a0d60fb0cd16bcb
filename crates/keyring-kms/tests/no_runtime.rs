//! KMS keyrings driven by `Client::encrypt_blocking` / `decrypt_blocking` (pollster) outside
//! any Tokio runtime: a typed error saying a Tokio runtime is needed, never a panic. Needs no
//! emulator: the client points at a closed loopback port and the check comes before any call.

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, DecryptionMaterials, EncryptOptions, EncryptedDataKey,
    EncryptionMaterials, Keyring, KeyringFailure, MaterialsSource,
};
use keyring_kms::{
    kms_error, ClientSettings, KmsDiscoveryKeyring, KmsError, KmsKeyring, KmsMultiKeyring,
    KmsRsaAlgorithm, KmsRsaKeyring, StaticClientSupplier,
};
use std::time::Duration;

const ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A client for a closed port (nothing listens on port 1), with dummy credentials and short
/// timeouts, so that even a call that did go out would fail fast.
fn closed_port_client() -> aws_sdk_kms::Client {
    let settings = ClientSettings {
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(2),
        max_attempts: 1,
        initial_backoff: Duration::from_millis(10),
        adaptive: false,
    };
    let builder = aws_sdk_kms::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url("http://127.0.0.1:1");
    aws_sdk_kms::Client::from_conf(settings.apply(builder).build())
}

fn assert_needs_tokio(err: &esdk_core::KeyringError) {
    assert!(
        matches!(kms_error(err), Some(KmsError::NoTokioRuntime { .. })),
        "expected NoTokioRuntime, got {err}"
    );
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

#[test]
fn blocking_encrypt_and_decrypt_outside_tokio_fail_with_a_typed_error() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let keyring = KmsKeyring::new(ARN, closed_port_client()).unwrap();
    let source = MaterialsSource::keyring(keyring);
    let client = Client::new();

    // Encrypt: GenerateDataKey.
    let err = client
        .encrypt_blocking(&source, b"hello", &EncryptOptions::default())
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("Tokio runtime"), "{message}");

    // Decrypt: a message made under a raw AES keyring would not name this key, so drive the
    // keyring directly with an EDK that does.
    let edk = EncryptedDataKey::new("aws-kms", ARN.as_bytes().to_vec(), vec![1u8; 64]);
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let keyring = KmsKeyring::new(ARN, closed_port_client()).unwrap();
    let err = pollster::block_on(
        keyring.on_decrypt(&DecryptionMaterials::new(suite, Default::default()), &[edk]),
    )
    .unwrap_err();
    assert_needs_tokio(&err);

    // Encrypt with a data key already present: Encrypt.
    let materials = EncryptionMaterials::new(suite, Default::default())
        .with_data_key_or_generate()
        .unwrap();
    let err = pollster::block_on(keyring.on_encrypt(&materials)).unwrap_err();
    assert_needs_tokio(&err);

    // And decrypt_blocking of garbage fails as a parse error, not a panic.
    assert!(client
        .decrypt_blocking(&source, b"not a message", &DecryptOptions::default())
        .is_err());
}

#[test]
fn discovery_multi_and_rsa_keyrings_outside_tokio_fail_with_a_typed_error() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let edk = EncryptedDataKey::new("aws-kms", ARN.as_bytes().to_vec(), vec![1u8; 64]);
    let materials = DecryptionMaterials::new(suite, Default::default());

    let discovery = KmsDiscoveryKeyring::new(closed_port_client());
    let err = pollster::block_on(discovery.on_decrypt(&materials, std::slice::from_ref(&edk)))
        .unwrap_err();
    assert_needs_tokio(&err);

    let supplier = StaticClientSupplier::new()
        .with_client("us-west-2", closed_port_client())
        .with_default(closed_port_client());
    let multi = pollster::block_on(
        KmsMultiKeyring::builder()
            .generator(ARN)
            .client_supplier(supplier)
            .build(),
    )
    .unwrap();
    let err =
        pollster::block_on(multi.on_encrypt(&EncryptionMaterials::new(suite, Default::default())))
            .unwrap_err();
    assert_needs_tokio(&err);
    let err = pollster::block_on(multi.on_decrypt(&materials, &[edk])).unwrap_err();
    match &err.reason {
        KeyringFailure::AllFailed(errors) => {
            assert_eq!(errors.len(), 1, "{err}");
            assert_needs_tokio(&errors[0]);
        }
        _ => panic!("expected AllFailed, got {err}"),
    }

    let err = pollster::block_on(KmsRsaKeyring::from_kms(
        ARN,
        KmsRsaAlgorithm::RsaesOaepSha256,
        closed_port_client(),
    ))
    .unwrap_err();
    assert_needs_tokio(&err);
}
