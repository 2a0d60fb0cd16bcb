//! Every AWS KMS keyring, end to end.
//!
//! Against the local emulator (creates its own demo keys there):
//!
//! ```text
//! cargo xtask moto cargo run -p esdk --features kms --example kms
//! ```
//!
//! Against real AWS KMS, pass your keys instead (nothing is created):
//!
//! ```text
//! KMS_KEY_ARN=arn:aws:kms:...:key/...  KMS_SECOND_KEY_ARN=...  KMS_RSA_KEY_ARN=... \
//! KMS_MRK_ARN=arn:aws:kms:us-west-2:...:key/mrk-...  KMS_MRK_REPLICA_REGION=us-east-1 \
//!   cargo run -p esdk --features kms --example kms
//! ```
//!
//! Each section is skipped when its key is neither given nor creatable.

use esdk::kms::aws_sdk_kms::{self, types::KeySpec, types::KeyUsageType};
use esdk::kms::{
    ClientSettings, DiscoveryFilter, KmsDiscoveryKeyring, KmsKeyring, KmsMrkDiscoveryKeyring,
    KmsMrkKeyring, KmsMultiKeyring, KmsRsaAlgorithm, KmsRsaKeyring, StaticClientSupplier,
};
use esdk::{
    AlgorithmSuite, Client, DecryptOptions, EncryptOptions, EncryptionContext, Keyring,
    MaterialsSource,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// True when `AWS_ENDPOINT_URL` points at a loopback emulator, where creating keys is free.
fn emulator() -> bool {
    std::env::var("AWS_ENDPOINT_URL")
        .is_ok_and(|u| u.contains("://127.0.0.1") || u.contains("://localhost"))
}

/// The key from `var`, or a new one on the emulator, or `None`.
async fn key(
    kms: &aws_sdk_kms::Client,
    var: &str,
    create: impl FnOnce(
        aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder,
    ) -> aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder,
) -> Result<Option<String>> {
    if let Ok(arn) = std::env::var(var) {
        return Ok(Some(arn));
    }
    if !emulator() {
        println!("({var} not set: skipping that part)");
        return Ok(None);
    }
    let out = create(kms.create_key()).send().await?;
    Ok(out.key_metadata().and_then(|m| m.arn()).map(str::to_owned))
}

async fn round_trip(
    name: &str,
    encrypt_with: impl Keyring + 'static,
    decrypt_with: impl Keyring + 'static,
    options: EncryptOptions,
) -> Result<()> {
    let client = Client::new();
    let sealed = client
        .encrypt(
            &MaterialsSource::keyring(encrypt_with),
            b"hello, KMS",
            &options,
        )
        .await?;
    let opened = client
        .decrypt(
            &MaterialsSource::keyring(decrypt_with),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .await?;
    assert_eq!(opened.plaintext, b"hello, KMS");
    let keys: Vec<String> = sealed
        .header
        .encrypted_data_keys
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e.provider_id,
                String::from_utf8_lossy(&e.provider_info)
            )
        })
        .collect();
    println!(
        "{name}: ok ({} bytes; wrapped by {keys:?})",
        sealed.ciphertext.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // Timeouts and retries are explicit so that an unreachable KMS fails fast.
    let config = ClientSettings::default().load_sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("set AWS_REGION")?;
    let context: EncryptionContext = [("example".to_owned(), "kms".to_owned())].into();
    let opts = EncryptOptions::default().with_encryption_context(context);

    // 1. One symmetric key.
    let Some(first) = key(&kms, "KMS_KEY_ARN", |b| b).await? else {
        return Err("set KMS_KEY_ARN (or AWS_ENDPOINT_URL to a local emulator)".into());
    };
    let single = KmsKeyring::new(&first, kms.clone())?;
    round_trip("KMS keyring", single.clone(), single, opts.clone()).await?;

    // 2. Several keys (the second one wrapped concurrently with any others), then
    //    discovery restricted to the key's account.
    if let Some(second) = key(&kms, "KMS_SECOND_KEY_ARN", |b| b).await? {
        let supplier = StaticClientSupplier::new().with_client(region.clone(), kms.clone());
        let multi = KmsMultiKeyring::builder()
            .generator(&first)
            .key(&second)
            .client_supplier(supplier)
            .build()
            .await?;
        let account = first.split(':').nth(4).unwrap_or_default().to_owned();
        let discovery = KmsDiscoveryKeyring::new(kms.clone())
            .with_discovery_filter(DiscoveryFilter::new("aws", [account])?);
        round_trip("multi-keyring + discovery", multi, discovery, opts.clone()).await?;
    }

    // 3. A multi-Region key used in one region, decrypted through its replica in another.
    let replica_region =
        std::env::var("KMS_MRK_REPLICA_REGION").unwrap_or_else(|_| "us-east-1".into());
    if let Some(mrk) = key(&kms, "KMS_MRK_ARN", |b| b.multi_region(true)).await? {
        let replica_config = aws_sdk_kms::config::Builder::from(&config)
            .region(aws_sdk_kms::config::Region::new(replica_region.clone()))
            .build();
        let replica_client = aws_sdk_kms::Client::from_conf(replica_config);
        if emulator() {
            kms.replicate_key()
                .key_id(&mrk)
                .replica_region(&replica_region)
                .send()
                .await?;
        }
        let replica_arn = mrk.replace(&format!(":{region}:"), &format!(":{replica_region}:"));
        round_trip(
            "MRK keyring -> MRK keyring on the replica",
            KmsMrkKeyring::new(&mrk, kms.clone())?,
            KmsMrkKeyring::new(&replica_arn, replica_client.clone())?,
            opts.clone(),
        )
        .await?;
        round_trip(
            "MRK keyring -> MRK discovery keyring",
            KmsMrkKeyring::new(&mrk, kms.clone())?,
            KmsMrkDiscoveryKeyring::new(replica_client, replica_region)?,
            opts.clone(),
        )
        .await?;
    }

    // 4. An asymmetric RSA key: encrypt locally with its public key, decrypt with KMS.
    //    Signed suites are not allowed, so pick an unsigned committing suite.
    if let Some(rsa) = key(&kms, "KMS_RSA_KEY_ARN", |b| {
        b.key_spec(KeySpec::Rsa2048)
            .key_usage(KeyUsageType::EncryptDecrypt)
    })
    .await?
    {
        let keyring =
            KmsRsaKeyring::from_kms(&rsa, KmsRsaAlgorithm::RsaesOaepSha256, kms.clone()).await?;
        let unsigned = AlgorithmSuite::from_id(0x0478).ok_or("suite 0x0478")?;
        round_trip(
            "KMS RSA keyring",
            keyring.clone(),
            keyring,
            opts.clone().with_suite(unsigned),
        )
        .await?;
    }
    Ok(())
}
