//! # esdk-core
//!
//! The AWS Encryption SDK message format in Rust, with no wrapping-key backend: header v1
//! and v2, framed and non-framed bodies, the footer, all eleven algorithm suites, key
//! derivation and key commitment, ECDSA signatures, the encryption context, materials, the
//! [`Keyring`] and [`CryptographicMaterialsManager`] traits, the default and
//! required-encryption-context CMMs, the commitment policy, and the one-shot encrypt and
//! decrypt API. Messages are byte-compatible with the official SDKs.
//!
//! Keyrings live in their own crates (`keyring-raw-aes`, `keyring-kms`, ...) and depend on
//! this crate alone; so can yours. This example uses a toy keyring written on the spot:
//!
//! ```
//! use esdk_core::{
//!     async_trait, Client, DataKey, DecryptOptions, DecryptionMaterials, EncryptOptions,
//!     EncryptedDataKey, EncryptionMaterials, Keyring, KeyringError, KeyringFailure,
//!     MaterialsSource,
//! };
//!
//! /// Stores the data key in the clear: for illustration only.
//! struct PlaintextKeyring;
//!
//! #[async_trait]
//! impl Keyring for PlaintextKeyring {
//!     async fn on_encrypt(&self, m: &EncryptionMaterials) -> Result<EncryptionMaterials, KeyringError> {
//!         let fail = |r| KeyringError::new("plaintext keyring", r);
//!         let m = match m.data_key() {
//!             Some(_) => m.clone(),
//!             None => m.clone().with_data_key(DataKey::generate(m.suite()).map_err(|e| fail(KeyringFailure::WrapFailed(e.to_string())))?).map_err(fail)?,
//!         };
//!         let key = m.data_key().unwrap().as_bytes().to_vec();
//!         Ok(m.with_encrypted_data_key(EncryptedDataKey::new("example", b"k".to_vec(), key)))
//!     }
//!     async fn on_decrypt(&self, m: &DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials, KeyringError> {
//!         let fail = |r| KeyringError::new("plaintext keyring", r);
//!         let edk = edks.iter().find(|e| e.provider_id == "example")
//!             .ok_or(fail(KeyringFailure::NoMatchingKey(edks.len())))?;
//!         m.clone().with_data_key(DataKey::new(edk.ciphertext.clone())).map_err(fail)
//!     }
//! }
//!
//! let client = Client::new();
//! let keyring = MaterialsSource::keyring(PlaintextKeyring);
//! let sealed = client.encrypt_blocking(&keyring, b"hello", &EncryptOptions::default())?;
//! let opened = client.decrypt_blocking(&keyring, &sealed.ciphertext, &DecryptOptions::default())?;
//! assert_eq!(opened.plaintext, b"hello");
//! assert_eq!(opened.suite.id(), 0x0578);
//! # Ok::<(), esdk_core::Error>(())
//! ```
//!
//! Layout: [`suite`] (suites, commitment policy) · [`context`] · [`edk`] · [`materials`] ·
//! [`keyring`] · [`cmm`] · [`crypto`] (the provider seam) · [`format`](mod@format) (header, body,
//! footer) · [`kdf`] · [`encrypt`] and [`decrypt`] (frame-at-a-time state machines) ·
//! [`client`] (one-shot API) · [`error`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod cmm;
pub mod context;
pub mod crypto;
pub mod decrypt;
pub mod edk;
pub mod encrypt;
pub mod error;
pub mod format;
pub mod kdf;
pub mod keyring;
pub mod materials;
pub mod parallel;
pub mod stream;
pub mod suite;

pub use async_trait::async_trait;
pub use client::{
    Client, ClientBuilder, DecryptOptions, DecryptOutput, EncryptOptions, EncryptOutput,
    MaterialsSource, DEFAULT_FRAME_LENGTH,
};
pub use cmm::{
    CryptographicMaterialsManager, DecryptionMaterialsRequest, DefaultCmm,
    EncryptionMaterialsRequest, RequiredEncryptionContextCmm,
};
pub use context::EncryptionContext;
pub use edk::EncryptedDataKey;
pub use error::{ContextError, Error, FormatError, KeyringError, KeyringFailure, Result};
pub use format::header::Header;
pub use keyring::Keyring;
pub use materials::{DataKey, DecryptionMaterials, EncryptionMaterials};
pub use suite::{AlgorithmSuite, CommitmentPolicy};
