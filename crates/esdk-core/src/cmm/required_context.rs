//! The required-encryption-context CMM: named context keys must be present on encrypt and
//! reproduced on decrypt; they are authenticated in the header tag but not stored.

use super::{
    CryptographicMaterialsManager, DecryptionMaterialsRequest, DefaultCmm,
    EncryptionMaterialsRequest,
};
use crate::error::{ContextError, Error, Result};
use crate::keyring::Keyring;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use async_trait::async_trait;
use std::sync::Arc;

/// Wraps a CMM and enforces a set of required encryption context keys.
#[derive(Clone)]
pub struct RequiredEncryptionContextCmm {
    inner: Arc<dyn CryptographicMaterialsManager>,
    required_keys: Vec<String>,
}

impl RequiredEncryptionContextCmm {
    /// Require `keys` around the CMM `inner`.
    pub fn new(
        inner: Arc<dyn CryptographicMaterialsManager>,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            inner,
            required_keys: keys.into_iter().map(Into::into).collect(),
        }
    }

    /// Require `keys` around a default CMM over `keyring`.
    pub fn with_keyring(
        keyring: Arc<dyn Keyring>,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::new(Arc::new(DefaultCmm::new(keyring)), keys)
    }

    /// The required keys.
    pub fn required_keys(&self) -> &[String] {
        &self.required_keys
    }
}

impl core::fmt::Debug for RequiredEncryptionContextCmm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RequiredEncryptionContextCmm")
            .field("required_keys", &self.required_keys)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CryptographicMaterialsManager for RequiredEncryptionContextCmm {
    async fn get_encryption_materials(
        &self,
        mut request: EncryptionMaterialsRequest,
    ) -> Result<EncryptionMaterials> {
        for key in &self.required_keys {
            if !request.encryption_context.contains_key(key) {
                return Err(ContextError::MissingRequiredKey(key.clone()).into());
            }
            if !request.required_encryption_context_keys.contains(key) {
                request.required_encryption_context_keys.push(key.clone());
            }
        }
        let materials = self.inner.get_encryption_materials(request).await?;
        for key in &self.required_keys {
            if !materials.required_encryption_context_keys().contains(key) {
                return Err(Error::Materials(format!(
                    "underlying CMM dropped required key {key:?}"
                )));
            }
        }
        Ok(materials)
    }

    async fn decrypt_materials(
        &self,
        request: DecryptionMaterialsRequest,
    ) -> Result<DecryptionMaterials> {
        let reproduced = request.reproduced_encryption_context.as_ref();
        for key in &self.required_keys {
            if !reproduced.is_some_and(|r| r.contains_key(key)) {
                return Err(ContextError::MissingRequiredKey(key.clone()).into());
            }
        }
        let materials = self.inner.decrypt_materials(request).await?;
        for key in &self.required_keys {
            if !materials.encryption_context().contains_key(key) {
                return Err(Error::Materials(format!(
                    "underlying CMM returned a context without required key {key:?}"
                )));
            }
        }
        Ok(materials)
    }
}
