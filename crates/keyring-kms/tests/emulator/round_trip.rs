//! Round trips with one and several keys, every key identifier form, grant tokens and the
//! encryption context on every call.

use crate::common::{self, client, symmetric_key, KmsProxy, WEST};
use crate::emulator_or_skip;
use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, DecryptionMaterials, EncryptOptions, EncryptionContext,
    EncryptionMaterials, Keyring, MaterialsSource,
};
use keyring_kms::{
    ClientSettings, DefaultClientSupplier, KmsKeyring, KmsMultiKeyring, StaticClientSupplier,
};
use std::sync::Arc;

fn context() -> EncryptionContext {
    [
        ("tenant".to_owned(), "acme".to_owned()),
        ("purpose".to_owned(), "round trip".to_owned()),
    ]
    .into()
}

#[tokio::test]
async fn one_key_round_trip_with_every_identifier_form() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let key_id = arn.rsplit('/').next().unwrap().to_owned();
    let alias = format!("alias/round-trip-{}", &key_id[..8]);
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&arn)
        .send()
        .await
        .expect("CreateAlias");
    let alias_arn = arn.replace(&format!("key/{key_id}"), &alias);

    let decryptor = MaterialsSource::keyring(KmsKeyring::new(&arn, kms.clone()).unwrap());
    let sdk = Client::new();
    for id in [&arn, &alias, &alias_arn, &key_id] {
        let source = MaterialsSource::keyring(KmsKeyring::new(id.as_str(), kms.clone()).unwrap());
        let opts = EncryptOptions::default().with_encryption_context(context());
        let sealed = sdk.encrypt(&source, b"one key", &opts).await.unwrap();
        let edks = &sealed.header.encrypted_data_keys;
        assert_eq!(edks.len(), 1, "{id}");
        assert_eq!(edks[0].provider_id, "aws-kms");
        // Provider info is always the key ARN KMS returned, whatever form encrypt used.
        assert_eq!(edks[0].provider_info, arn.as_bytes(), "encrypted with {id}");
        let opened = sdk
            .decrypt(&decryptor, &sealed.ciphertext, &DecryptOptions::default())
            .await
            .unwrap();
        assert_eq!(opened.plaintext, b"one key");
        assert_eq!(opened.encryption_context, sealed.encryption_context);
    }
}

#[tokio::test]
async fn several_keys_round_trip_and_each_key_alone_decrypts() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let (g, k1, k2) = (
        symmetric_key(&kms).await,
        symmetric_key(&kms).await,
        symmetric_key(&kms).await,
    );
    let multi = KmsMultiKeyring::builder()
        .generator(&g)
        .keys([&k1, &k2])
        .client_supplier(StaticClientSupplier::new().with_client(WEST, kms.clone()))
        .build()
        .await
        .unwrap();
    let sdk = Client::new();
    let opts = EncryptOptions::default().with_encryption_context(context());
    let sealed = sdk
        .encrypt(
            &MaterialsSource::keyring(multi.clone()),
            b"three keys",
            &opts,
        )
        .await
        .unwrap();
    let infos: Vec<&[u8]> = sealed
        .header
        .encrypted_data_keys
        .iter()
        .map(|e| e.provider_info.as_slice())
        .collect();
    assert_eq!(infos, [g.as_bytes(), k1.as_bytes(), k2.as_bytes()]);
    for key in [&g, &k1, &k2] {
        let single = MaterialsSource::keyring(KmsKeyring::new(key.as_str(), kms.clone()).unwrap());
        let opened = sdk
            .decrypt(&single, &sealed.ciphertext, &DecryptOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{key} alone: {e}"));
        assert_eq!(opened.plaintext, b"three keys");
    }
    let opened = sdk
        .decrypt(
            &MaterialsSource::keyring(multi),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext, b"three keys");
}

/// With a data key present, the keyring calls Encrypt and leaves the key untouched.
#[tokio::test]
async fn existing_data_key_is_wrapped_with_encrypt() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();
    let suite = AlgorithmSuite::from_id(0x0478).unwrap();
    let data_key = esdk_core::DataKey::generate(suite).unwrap();
    let m = EncryptionMaterials::new(suite, context())
        .with_data_key(data_key.clone())
        .unwrap();
    let out = keyring.on_encrypt(&m).await.unwrap();
    assert_eq!(out.data_key().unwrap().as_bytes(), data_key.as_bytes());
    assert_eq!(out.encrypted_data_keys().len(), 1);
    let d = keyring
        .on_decrypt(
            &DecryptionMaterials::new(suite, context()),
            out.encrypted_data_keys(),
        )
        .await
        .unwrap();
    assert_eq!(d.data_key().unwrap().as_bytes(), data_key.as_bytes());
}

/// Every KMS request carries the grant tokens and the full encryption context.
#[tokio::test]
async fn grant_tokens_and_context_on_every_call() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = common::client(&proxy.url, WEST);
    let (g, k) = (symmetric_key(&kms).await, symmetric_key(&kms).await);
    let tokens = ["grant-token-one", "grant-token-two"];
    let multi = KmsMultiKeyring::builder()
        .generator(&g)
        .key(&k)
        .grant_tokens(tokens)
        .client_supplier(StaticClientSupplier::new().with_client(WEST, kms.clone()))
        .build()
        .await
        .unwrap();
    let discovery = keyring_kms::KmsDiscoveryKeyring::new(kms.clone())
        .with_grant_tokens(tokens)
        .unwrap();
    let single = KmsKeyring::new(&k, kms.clone())
        .unwrap()
        .with_grant_tokens(tokens)
        .unwrap();
    assert_eq!(single.grant_tokens(), tokens);
    let sdk = Client::new();
    let opts = EncryptOptions::default().with_encryption_context(context());
    let sealed = sdk
        .encrypt(&MaterialsSource::keyring(multi), b"tokens", &opts)
        .await
        .unwrap();
    for keyring in [
        MaterialsSource::keyring(discovery),
        MaterialsSource::keyring(single),
    ] {
        sdk.decrypt(&keyring, &sealed.ciphertext, &DecryptOptions::default())
            .await
            .unwrap();
    }
    let calls: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| !s.target.ends_with(".CreateKey"))
        .collect();
    let targets: Vec<&str> = calls.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "TrentService.GenerateDataKey",
            "TrentService.Encrypt",
            "TrentService.Decrypt",
            "TrentService.Decrypt"
        ]
    );
    for call in &calls {
        assert!(
            call.body
                .contains(r#""GrantTokens":["grant-token-one","grant-token-two"]"#),
            "{}: {}",
            call.target,
            call.body
        );
        assert!(call.body.contains(r#""tenant":"acme""#), "{}", call.target);
        assert!(
            call.body.contains(r#""purpose":"round trip""#),
            "{}",
            call.target
        );
        // Signed default suite: the public key is part of the context sent to KMS.
        assert!(
            call.body.contains("aws-crypto-public-key"),
            "{}",
            call.target
        );
    }
}

/// The builders' default supplier: clients from aws-config and the environment the xtask
/// exports (endpoint, dummy credentials, AWS_REGION).
#[tokio::test]
async fn builders_with_the_default_client_supplier() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let (g, k) = (symmetric_key(&kms).await, symmetric_key(&kms).await);
    let enc = KmsMultiKeyring::builder()
        .generator(&g)
        .key(&k)
        .build()
        .await
        .unwrap();
    let supplier = DefaultClientSupplier::from_env_with(&ClientSettings::default()).await;
    let dec = KmsMultiKeyring::discovery_builder([WEST])
        .client_supplier(Arc::new(supplier))
        .build()
        .await
        .unwrap();
    let sdk = Client::new();
    let sealed = sdk
        .encrypt(
            &MaterialsSource::keyring(enc),
            b"defaults",
            &EncryptOptions::default(),
        )
        .await
        .unwrap();
    let opened = sdk
        .decrypt(
            &MaterialsSource::keyring(dec),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext, b"defaults");
}

#[tokio::test]
async fn builder_configuration_errors_name_the_problem() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let supplier = || StaticClientSupplier::new().with_client(WEST, kms.clone());
    let err = KmsMultiKeyring::builder()
        .client_supplier(supplier())
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("generator"), "{err}");
    let err = KmsMultiKeyring::builder()
        .generator("arn:aws:kms:us-west-2:123456789012")
        .client_supplier(supplier())
        .build()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("arn:aws:kms:us-west-2:123456789012"),
        "{err}"
    );
    // No client for eu-west-1 in this supplier.
    let other = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let err = KmsMultiKeyring::builder()
        .generator(other)
        .client_supplier(supplier())
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("eu-west-1"), "{err}");
    let err = KmsMultiKeyring::builder()
        .generator(other)
        .grant_tokens((0..11).map(|i| format!("t{i}")))
        .client_supplier(supplier())
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at most 10"), "{err}");
    let err = KmsMultiKeyring::discovery_builder(Vec::<String>::new())
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("region"), "{err}");
}
