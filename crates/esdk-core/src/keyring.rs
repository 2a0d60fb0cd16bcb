//! The keyring trait: the one joint where wrapping-key backends plug in.
//!
//! A keyring crate (raw AES, KMS, an HSM, your own) depends on `esdk-core` alone and
//! implements [`Keyring`]. Inputs are borrowed and outputs are new materials, so a failing
//! keyring can never leave the caller's materials half-modified.

use crate::edk::EncryptedDataKey;
use crate::error::KeyringError;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use async_trait::async_trait;

/// Generates, wraps and unwraps data keys.
///
/// * `on_encrypt`: with no data key in `materials`, generate one (of the suite's length) and
///   wrap it; with a data key, wrap it and append the EDK. Never replace an existing key.
/// * `on_decrypt`: if `materials` already hold a data key, fail; otherwise try the EDKs
///   addressed to this keyring in order and return materials with the first key unwrapped.
///
/// Object-safe: hold keyrings as `Arc<dyn Keyring>`.
#[async_trait]
pub trait Keyring: Send + Sync {
    /// Generate and/or wrap the data key.
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError>;

    /// Unwrap one of `encrypted_data_keys`.
    async fn on_decrypt(
        &self,
        materials: &DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError>;
}

#[async_trait]
impl<K: Keyring + ?Sized> Keyring for std::sync::Arc<K> {
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        (**self).on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: &DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        (**self).on_decrypt(materials, encrypted_data_keys).await
    }
}
