//! The KMS RSA keyring: local RSA-OAEP encrypt with the public key, KMS Decrypt (patched moto
//! does real RSA-OAEP with the private key it holds).

use crate::common::{client, rsa_key, KmsProxy, WEST};
use crate::emulator_or_skip;
use aws_sdk_kms::types::KeySpec;
use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, DecryptionMaterials, EncryptOptions, EncryptionContext,
    EncryptionMaterials, Keyring, MaterialsSource,
};
use keyring_kms::{kms_error, KmsError, KmsRsaAlgorithm, KmsRsaKeyring};

fn unsigned() -> AlgorithmSuite {
    AlgorithmSuite::from_id(0x0478).unwrap()
}

#[tokio::test]
async fn rsa_round_trip_for_each_key_size_and_algorithm() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = client(&proxy.url, WEST);
    let context: EncryptionContext = [("doc".to_owned(), "rsa".to_owned())].into();
    for (spec, alg) in [
        (KeySpec::Rsa2048, KmsRsaAlgorithm::RsaesOaepSha1),
        (KeySpec::Rsa3072, KmsRsaAlgorithm::RsaesOaepSha256),
        (KeySpec::Rsa4096, KmsRsaAlgorithm::RsaesOaepSha256),
    ] {
        let arn = rsa_key(&kms, spec.clone()).await;
        let encryptor = KmsRsaKeyring::from_kms(&arn, alg, kms.clone())
            .await
            .unwrap()
            .with_grant_tokens(["rsa-grant"])
            .unwrap();
        let before = proxy.seen().len();
        let opts = EncryptOptions::default()
            .with_suite(unsigned())
            .with_encryption_context(context.clone());
        let sealed = Client::new()
            .encrypt(&MaterialsSource::keyring(encryptor), b"asymmetric", &opts)
            .await
            .unwrap();
        assert_eq!(
            proxy.seen().len(),
            before,
            "{spec:?}: encrypt must not call KMS"
        );
        let edk = &sealed.header.encrypted_data_keys[0];
        assert_eq!(edk.provider_id, "aws-kms-rsa");
        assert_eq!(edk.provider_info, arn.as_bytes());

        // A decrypt-only keyring: client, no public key.
        let decryptor = KmsRsaKeyring::new(&arn, alg)
            .unwrap()
            .with_client(kms.clone())
            .with_grant_tokens(["rsa-grant"])
            .unwrap();
        let opened = Client::new()
            .decrypt(
                &MaterialsSource::keyring(decryptor),
                &sealed.ciphertext,
                &DecryptOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(opened.plaintext, b"asymmetric", "{spec:?}");
        let decrypt_call = proxy.seen().last().unwrap().clone();
        assert_eq!(decrypt_call.target, "TrentService.Decrypt");
        assert!(
            decrypt_call.body.contains(alg.as_str()),
            "{}",
            decrypt_call.body
        );
        assert!(decrypt_call.body.contains(r#""GrantTokens":["rsa-grant"]"#));
        // Asymmetric Decrypt takes no encryption context.
        assert!(!decrypt_call.body.contains("EncryptionContext"));
    }
}

/// The data key is bound to the encryption context by the SHA-384 digest, and the OAEP
/// hash must match.
#[tokio::test]
async fn rsa_context_binding_and_wrong_algorithm() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = rsa_key(&kms, KeySpec::Rsa2048).await;
    let keyring = KmsRsaKeyring::from_kms(&arn, KmsRsaAlgorithm::RsaesOaepSha256, kms.clone())
        .await
        .unwrap();
    let ctx_a: EncryptionContext = [("k".to_owned(), "a".to_owned())].into();
    let ctx_b: EncryptionContext = [("k".to_owned(), "b".to_owned())].into();
    let enc = keyring
        .on_encrypt(&EncryptionMaterials::new(unsigned(), ctx_a.clone()))
        .await
        .unwrap();
    let edks = enc.encrypted_data_keys();

    let ok = keyring
        .on_decrypt(&DecryptionMaterials::new(unsigned(), ctx_a), edks)
        .await
        .unwrap();
    assert_eq!(
        ok.data_key().unwrap().as_bytes(),
        enc.data_key().unwrap().as_bytes()
    );

    let err = keyring
        .on_decrypt(&DecryptionMaterials::new(unsigned(), ctx_b.clone()), edks)
        .await
        .unwrap_err();
    assert!(
        matches!(kms_error(&err).unwrap().reasons(), [KmsError::EncryptionContextMismatch { key_id }] if *key_id == arn),
        "{err}"
    );

    let sha1 = KmsRsaKeyring::new(&arn, KmsRsaAlgorithm::RsaesOaepSha1)
        .unwrap()
        .with_client(kms);
    let err = sha1
        .on_decrypt(&DecryptionMaterials::new(unsigned(), ctx_b), edks)
        .await
        .unwrap_err();
    let reasons = kms_error(&err).unwrap().reasons();
    assert_eq!(reasons.len(), 1, "{err}");
    assert_eq!(
        reasons[0].code(),
        Some("InvalidCiphertextException"),
        "{err}"
    );
    assert_eq!(reasons[0].key_id(), Some(arn.as_str()));
}

#[tokio::test]
async fn rsa_refuses_signed_suites() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = rsa_key(&kms, KeySpec::Rsa2048).await;
    let keyring = KmsRsaKeyring::from_kms(&arn, KmsRsaAlgorithm::RsaesOaepSha1, kms)
        .await
        .unwrap();
    // The default suite (0x0578) is signed.
    let err = Client::new()
        .encrypt(
            &MaterialsSource::keyring(keyring),
            b"x",
            &EncryptOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsigned") && err.contains(&arn), "{err}");
}
