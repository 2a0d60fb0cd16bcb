//! Discovery keyrings with and without a discovery filter.

use crate::common::{client, symmetric_key, ACCOUNT, EAST, WEST};
use crate::emulator_or_skip;
use esdk_core::{Client, DecryptOptions, EncryptOptions, EncryptOutput, Keyring, MaterialsSource};
use keyring_kms::{
    kms_error, DiscoveryFilter, KmsDiscoveryKeyring, KmsError, KmsKeyring, KmsMrkDiscoveryKeyring,
    KmsMultiKeyring, StaticClientSupplier,
};

async fn sealed_with_new_key(endpoint: &str) -> (String, EncryptOutput) {
    let kms = client(endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let source = MaterialsSource::keyring(KmsKeyring::new(&arn, kms).unwrap());
    let sealed = Client::new()
        .encrypt(&source, b"discover me", &EncryptOptions::default())
        .await
        .unwrap();
    (arn, sealed)
}

async fn decrypt(
    keyring: impl Keyring + 'static,
    sealed: &EncryptOutput,
) -> Result<Vec<u8>, esdk_core::Error> {
    Client::new()
        .decrypt(
            &MaterialsSource::keyring(keyring),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .await
        .map(|o| o.plaintext)
}

#[tokio::test]
async fn discovery_without_and_with_a_filter() {
    let endpoint = emulator_or_skip!();
    let (_, sealed) = sealed_with_new_key(&endpoint).await;
    let kms = client(&endpoint, WEST);

    let open = KmsDiscoveryKeyring::new(kms.clone());
    assert_eq!(decrypt(open, &sealed).await.unwrap(), b"discover me");

    let filtered = KmsDiscoveryKeyring::new(kms.clone())
        .with_discovery_filter(DiscoveryFilter::new("aws", ["111122223333", ACCOUNT]).unwrap());
    assert_eq!(decrypt(filtered, &sealed).await.unwrap(), b"discover me");
}

#[tokio::test]
async fn discovery_filter_rejects_another_account_and_partition() {
    let endpoint = emulator_or_skip!();
    let (arn, sealed) = sealed_with_new_key(&endpoint).await;
    let kms = client(&endpoint, WEST);
    for (filter, needle) in [
        (
            DiscoveryFilter::new("aws", ["111122223333"]).unwrap(),
            ACCOUNT,
        ),
        (DiscoveryFilter::new("aws-cn", [ACCOUNT]).unwrap(), "aws-cn"),
    ] {
        let keyring = KmsDiscoveryKeyring::new(kms.clone()).with_discovery_filter(filter);
        let err = keyring
            .on_decrypt(
                &esdk_core::DecryptionMaterials::new(
                    sealed.suite,
                    sealed.header.encryption_context.clone(),
                ),
                &sealed.header.encrypted_data_keys,
            )
            .await
            .unwrap_err();
        let kms_err = kms_error(&err).expect("a KmsError");
        let reasons = kms_err.reasons();
        assert_eq!(reasons.len(), 1, "{err}");
        match &reasons[0] {
            KmsError::FilteredOut { key_arn, why } => {
                assert_eq!(key_arn, &arn);
                assert!(why.contains(needle), "{why}");
            }
            other => panic!("expected FilteredOut, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("discovery keyring") && text.contains(&arn),
            "{text}"
        );
        // Through the client too, the error names the key and the filter.
        let msg = decrypt(keyring, &sealed).await.unwrap_err().to_string();
        assert!(
            msg.contains(&arn) && msg.contains("excluded by the discovery filter"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn discovery_cannot_encrypt() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let err = Client::new()
        .encrypt(
            &MaterialsSource::keyring(KmsDiscoveryKeyring::new(kms.clone())),
            b"x",
            &EncryptOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot encrypt"), "{err}");
    let err = Client::new()
        .encrypt(
            &MaterialsSource::keyring(KmsMrkDiscoveryKeyring::new(kms, WEST).unwrap()),
            b"x",
            &EncryptOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot encrypt"), "{err}");
}

/// An MRK discovery keyring in us-east-1 skips a single-region key of us-west-2 (and says
/// so); in us-west-2 it decrypts it.
#[tokio::test]
async fn mrk_discovery_and_single_region_keys() {
    let endpoint = emulator_or_skip!();
    let (arn, sealed) = sealed_with_new_key(&endpoint).await;
    let east = KmsMrkDiscoveryKeyring::new(client(&endpoint, EAST), EAST).unwrap();
    let err = decrypt(east, &sealed).await.unwrap_err().to_string();
    assert!(
        err.contains(&arn) && err.contains("single-region key in us-west-2"),
        "{err}"
    );
    let west = KmsMrkDiscoveryKeyring::new(client(&endpoint, WEST), WEST)
        .unwrap()
        .with_discovery_filter(DiscoveryFilter::new("aws", [ACCOUNT]).unwrap());
    assert_eq!(decrypt(west, &sealed).await.unwrap(), b"discover me");
    // A region that disagrees with the client's is a configuration error.
    let err = KmsMrkDiscoveryKeyring::new(client(&endpoint, WEST), EAST).unwrap_err();
    assert!(err.to_string().contains("us-west-2"), "{err}");
}

/// One discovery keyring per region: the us-east-1 child fails (moto has no such key
/// there), the us-west-2 one succeeds.
#[tokio::test]
async fn discovery_multi_keyring_over_regions() {
    let endpoint = emulator_or_skip!();
    let (_, sealed) = sealed_with_new_key(&endpoint).await;
    let supplier = StaticClientSupplier::new()
        .with_client(WEST, client(&endpoint, WEST))
        .with_client(EAST, client(&endpoint, EAST));
    let multi = KmsMultiKeyring::discovery_builder([EAST, WEST])
        .discovery_filter(DiscoveryFilter::new("aws", [ACCOUNT]).unwrap())
        .client_supplier(supplier.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(multi.children().len(), 2);
    assert_eq!(decrypt(multi, &sealed).await.unwrap(), b"discover me");
    let mrk_multi = KmsMultiKeyring::mrk_discovery_builder([EAST, WEST])
        .client_supplier(supplier)
        .build()
        .await
        .unwrap();
    assert_eq!(decrypt(mrk_multi, &sealed).await.unwrap(), b"discover me");
}
