//! Multi-Region keys: a message made in us-west-2 decrypted in us-east-1 through a replica.

use crate::common::{client, mrk, replicate, EAST, WEST};
use crate::emulator_or_skip;
use esdk_core::{Client, DecryptOptions, EncryptOptions, Keyring, MaterialsSource};
use keyring_kms::{
    KmsKeyring, KmsMrkDiscoveryKeyring, KmsMrkKeyring, KmsMultiKeyring, StaticClientSupplier,
};

async fn decrypt(
    keyring: impl Keyring + 'static,
    ciphertext: &[u8],
) -> Result<Vec<u8>, esdk_core::Error> {
    Client::new()
        .decrypt(
            &MaterialsSource::keyring(keyring),
            ciphertext,
            &DecryptOptions::default(),
        )
        .await
        .map(|o| o.plaintext)
}

#[tokio::test]
async fn mrk_ciphertext_from_us_west_2_decrypts_in_us_east_1() {
    let endpoint = emulator_or_skip!();
    let west = client(&endpoint, WEST);
    let east = client(&endpoint, EAST);
    let west_arn = mrk(&west).await;
    let east_arn = replicate(&west, &west_arn, EAST).await;
    assert_eq!(east_arn, west_arn.replace(WEST, EAST));

    let sealed = Client::new()
        .encrypt(
            &MaterialsSource::keyring(KmsMrkKeyring::new(&west_arn, west.clone()).unwrap()),
            b"across regions",
            &EncryptOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        sealed.header.encrypted_data_keys[0].provider_info,
        west_arn.as_bytes()
    );

    // MRK-aware keyring configured with the replica.
    let opened = decrypt(
        KmsMrkKeyring::new(&east_arn, east.clone()).unwrap(),
        &sealed.ciphertext,
    )
    .await
    .unwrap();
    assert_eq!(opened, b"across regions");

    // MRK discovery keyring in us-east-1.
    let opened = decrypt(
        KmsMrkDiscoveryKeyring::new(east.clone(), EAST).unwrap(),
        &sealed.ciphertext,
    )
    .await
    .unwrap();
    assert_eq!(opened, b"across regions");

    // The strict KMS keyring does not treat the replica as the same key.
    let err = decrypt(
        KmsKeyring::new(&east_arn, east).unwrap(),
        &sealed.ciphertext,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&west_arn) && err.contains("not this keyring's key"),
        "{err}"
    );
}

#[tokio::test]
async fn mrk_multi_keyrings() {
    let endpoint = emulator_or_skip!();
    let west = client(&endpoint, WEST);
    let east = client(&endpoint, EAST);
    let west_arn = mrk(&west).await;
    let east_arn = replicate(&west, &west_arn, EAST).await;
    let supplier = StaticClientSupplier::new()
        .with_client(WEST, west.clone())
        .with_client(EAST, east.clone());

    // The same MRK twice (two regions) is refused, naming both.
    let err = KmsMultiKeyring::mrk_builder()
        .generator(&west_arn)
        .key(&east_arn)
        .client_supplier(supplier.clone())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&west_arn) && err.contains(&east_arn), "{err}");

    let enc = KmsMultiKeyring::mrk_builder()
        .generator(&west_arn)
        .client_supplier(supplier.clone())
        .build()
        .await
        .unwrap();
    let sealed = Client::new()
        .encrypt(
            &MaterialsSource::keyring(enc),
            b"mrk multi",
            &EncryptOptions::default(),
        )
        .await
        .unwrap();
    let dec = KmsMultiKeyring::mrk_builder()
        .key(&east_arn)
        .client_supplier(supplier)
        .build()
        .await
        .unwrap();
    assert_eq!(
        decrypt(dec, &sealed.ciphertext).await.unwrap(),
        b"mrk multi"
    );
}
