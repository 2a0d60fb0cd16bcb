//! # keyring-kms
//!
//! AWS KMS keyrings for the AWS Encryption SDK message format, byte-compatible with the
//! official SDKs' KMS keyrings and master key providers (provider id `aws-kms`, provider info
//! = the key ARN KMS returns; `aws-kms-rsa` for the KMS RSA keyring).
//!
//! | keyring | encrypt | decrypt |
//! |---|---|---|
//! | [`KmsKeyring`] | `GenerateDataKey` / `Encrypt` with one symmetric key | EDKs of exactly that key ARN |
//! | [`KmsMrkKeyring`] | as above | EDKs of that key or the same multi-Region key in another region |
//! | [`KmsDiscoveryKeyring`] | – | any `aws-kms` EDK, optionally limited by a [`DiscoveryFilter`] |
//! | [`KmsMrkDiscoveryKeyring`] | – | any `aws-kms` EDK, through its region's MRK replica |
//! | [`KmsRsaKeyring`] | local RSA-OAEP with the key's public half | `Decrypt` of `aws-kms-rsa` EDKs |
//! | [`KmsMultiKeyring`] | generator + more keys, wrapped concurrently | each keyring in turn |
//!
//! Everything is `async` and runs on the caller's runtime: no call blocks a thread, and a
//! multi-keyring's additional keys are wrapped concurrently. That runtime must be Tokio
//! (multi-thread or current-thread, with its I/O and time drivers enabled, as
//! `Runtime::new()` and `#[tokio::main]` do): the AWS SDK's HTTP client and timers run on it.
//! `esdk_core::Client::encrypt_blocking` / `decrypt_blocking` (driven by `pollster`) called
//! on a thread outside any Tokio runtime give it none, so there a keyring about to call KMS
//! fails with [`KmsError::NoTokioRuntime`] instead (the SDK itself would panic); from
//! synchronous code, use `tokio::runtime::Runtime::block_on` around `Client::encrypt` /
//! `decrypt`. Each KMS call runs in a
//! `tracing` span named `kms_call` with the operation, key id, region and latency (never a
//! plaintext or data key). Failures are [`KmsError`]s inside the usual
//! [`KeyringError`](esdk_core::KeyringError): they name the key, the operation and KMS's
//! error code; [`kms_error`] gets one back. Timeouts and retries: [`ClientSettings`].
//!
//! ## Data keys in memory
//!
//! This crate holds every plaintext data key it handles in zeroizing buffers. The AWS SDK,
//! though, copies a data key into its own buffers, which this crate cannot reach to
//! zeroize: the `Blob` an `Encrypt` request carries and its serialized (JSON, base64)
//! request body, the `GenerateDataKey` / `Decrypt` response bodies and their decoding
//! buffers, and whatever the HTTP and TLS layers buffer. Those copies are freed, not
//! cleared, when the SDK drops them. (The plaintext `Blob` of a response is moved into a
//! zeroizing buffer here.)
//!
//! ## A symmetric key
//!
//! ```no_run
//! use esdk_core::{Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource};
//! use keyring_kms::{ClientSettings, KmsKeyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sdk_config = ClientSettings::default().load_sdk_config().await;
//! let kms = aws_sdk_kms::Client::new(&sdk_config);
//! let key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
//! let source = MaterialsSource::keyring(KmsKeyring::new(key, kms)?);
//! let context: EncryptionContext = [("tenant".to_owned(), "acme".to_owned())].into();
//! let client = Client::new();
//! let opts = EncryptOptions::default().with_encryption_context(context);
//! let sealed = client.encrypt(&source, b"hello", &opts).await?;
//! let opened = client.decrypt(&source, &sealed.ciphertext, &DecryptOptions::default()).await?;
//! assert_eq!(opened.plaintext, b"hello");
//! # Ok(()) }
//! ```
//!
//! ## Several keys, discovery, multi-Region keys
//!
//! ```no_run
//! use keyring_kms::{DiscoveryFilter, KmsMultiKeyring, KmsMrkDiscoveryKeyring};
//!
//! # async fn run(kms_east: aws_sdk_kms::Client) -> Result<(), Box<dyn std::error::Error>> {
//! // Generator in us-west-2, a copy under a key in eu-central-1; one client per region
//! // from aws-config (or pass your own with `client_supplier`).
//! let encrypt_keyring = KmsMultiKeyring::builder()
//!     .generator("arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
//!     .key("arn:aws:kms:eu-central-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321")
//!     .build()
//!     .await?;
//!
//! // Decrypt whatever key the message names, but only keys of our account.
//! let decrypt_anything = KmsMultiKeyring::discovery_builder(["us-west-2", "eu-central-1"])
//!     .discovery_filter(DiscoveryFilter::new("aws", ["111122223333"])?)
//!     .build()
//!     .await?;
//!
//! // A message made under a multi-Region key in us-west-2, decrypted by its us-east-1 replica.
//! let replica_reader = KmsMrkDiscoveryKeyring::new(kms_east, "us-east-1")?;
//! # Ok(()) }
//! ```
//!
//! ## An asymmetric (RSA) key
//!
//! ```no_run
//! use esdk_core::{AlgorithmSuite, EncryptOptions};
//! use keyring_kms::{KmsRsaAlgorithm, KmsRsaKeyring};
//!
//! # async fn run(kms: aws_sdk_kms::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let key = "arn:aws:kms:us-west-2:111122223333:key/0b7c8f2e-aaaa-bbbb-cccc-111122223333";
//! // Fetches the public key once; encrypting needs no KMS call afterwards.
//! let keyring = KmsRsaKeyring::from_kms(key, KmsRsaAlgorithm::RsaesOaepSha256, kms).await?;
//! // Only unsigned suites: pick one explicitly.
//! let opts = EncryptOptions::default().with_suite(AlgorithmSuite::from_id(0x0478).unwrap());
//! # Ok(()) }
//! ```
//!
//! The specification's ARN and multi-Region-key rules are in [`arn`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod arn;
mod calls;
pub mod client;
mod discovery;
pub mod error;
mod keyring;
mod multi;
mod rsa_keyring;

pub use arn::{DiscoveryFilter, KeyIdentifier, KmsArn};
pub use client::{
    ClientSettings, ClientSupplier, ClientSupplierError, DefaultClientSupplier,
    StaticClientSupplier,
};
pub use discovery::{KmsDiscoveryKeyring, KmsMrkDiscoveryKeyring};
pub use error::{kms_error, KmsError, KmsOperation};
pub use keyring::{KmsKeyring, KmsMrkKeyring, MAX_GRANT_TOKENS};
pub use multi::{DiscoveryMultiKeyringBuilder, KmsMultiKeyring, KmsMultiKeyringBuilder};
pub use rsa_keyring::{KmsRsaAlgorithm, KmsRsaKeyring, MIN_MODULUS_BITS};

/// Re-export of the AWS SDK for KMS, so callers can build clients with the same version.
pub use aws_sdk_kms;

/// The provider id of EDKs made by the symmetric KMS keyrings.
pub const PROVIDER_ID: &str = "aws-kms";
/// The provider id of EDKs made by the KMS RSA keyring.
pub const RSA_PROVIDER_ID: &str = "aws-kms-rsa";
