//! Cryptographic materials managers: what sits between the message layer and keyrings.

mod default;
mod required_context;

pub use default::DefaultCmm;
pub use required_context::RequiredEncryptionContextCmm;

use crate::context::EncryptionContext;
use crate::edk::EncryptedDataKey;
use crate::error::Result;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use crate::suite::{AlgorithmSuite, CommitmentPolicy};
use async_trait::async_trait;

/// What encrypt asks a CMM for.
#[derive(Debug, Clone)]
pub struct EncryptionMaterialsRequest {
    /// The caller's encryption context.
    pub encryption_context: EncryptionContext,
    /// The suite the caller asked for, if any.
    pub suite: Option<AlgorithmSuite>,
    /// The client's commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// The plaintext length if known, else the caller's bound, else `None`.
    pub max_plaintext_length: Option<u64>,
    /// Context keys to authenticate without storing (set by the required-context CMM).
    pub required_encryption_context_keys: Vec<String>,
}

/// What decrypt asks a CMM for.
#[derive(Debug, Clone)]
pub struct DecryptionMaterialsRequest {
    /// The suite in the message header.
    pub suite: AlgorithmSuite,
    /// The client's commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// The EDKs from the header.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The context stored in the header.
    pub encryption_context: EncryptionContext,
    /// The context the caller supplied to decrypt, if any.
    pub reproduced_encryption_context: Option<EncryptionContext>,
}

/// Produces materials for each message. Object-safe: hold as `Arc<dyn CryptographicMaterialsManager>`.
#[async_trait]
pub trait CryptographicMaterialsManager: Send + Sync {
    /// Materials to encrypt one message.
    async fn get_encryption_materials(
        &self,
        request: EncryptionMaterialsRequest,
    ) -> Result<EncryptionMaterials>;

    /// Materials to decrypt one message.
    async fn decrypt_materials(
        &self,
        request: DecryptionMaterialsRequest,
    ) -> Result<DecryptionMaterials>;
}

#[async_trait]
impl<C: CryptographicMaterialsManager + ?Sized> CryptographicMaterialsManager for std::sync::Arc<C> {
    async fn get_encryption_materials(
        &self,
        request: EncryptionMaterialsRequest,
    ) -> Result<EncryptionMaterials> {
        (**self).get_encryption_materials(request).await
    }

    async fn decrypt_materials(
        &self,
        request: DecryptionMaterialsRequest,
    ) -> Result<DecryptionMaterials> {
        (**self).decrypt_materials(request).await
    }
}
