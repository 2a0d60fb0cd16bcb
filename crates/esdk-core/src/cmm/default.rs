//! The default CMM: picks the suite, makes the per-message signing key, and calls a keyring.

use super::{
    CryptographicMaterialsManager, DecryptionMaterialsRequest, EncryptionMaterialsRequest,
};
use crate::context::PUBLIC_KEY_FIELD;
use crate::crypto;
use crate::error::{ContextError, Error, Result};
use crate::keyring::Keyring;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use async_trait::async_trait;
use base64::Engine as _;
use std::sync::Arc;

/// The default cryptographic materials manager over one keyring.
#[derive(Clone)]
pub struct DefaultCmm {
    keyring: Arc<dyn Keyring>,
}

impl DefaultCmm {
    /// A default CMM over `keyring`.
    pub fn new(keyring: Arc<dyn Keyring>) -> Self {
        Self { keyring }
    }
}

impl core::fmt::Debug for DefaultCmm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DefaultCmm")
    }
}

#[async_trait]
impl CryptographicMaterialsManager for DefaultCmm {
    async fn get_encryption_materials(
        &self,
        request: EncryptionMaterialsRequest,
    ) -> Result<EncryptionMaterials> {
        let policy = request.commitment_policy;
        let suite = request.suite.unwrap_or(policy.default_suite());
        if !policy.allows_encrypt(suite) {
            return Err(Error::SuiteNotAllowed { suite, policy });
        }
        if request.encryption_context.contains_key(PUBLIC_KEY_FIELD) {
            return Err(ContextError::ReservedKey(PUBLIC_KEY_FIELD.into()).into());
        }
        let mut context = request.encryption_context;
        let signing_key = match suite.signature() {
            Some(alg) => {
                let key: Arc<dyn crypto::SigningKey> =
                    Arc::from(crypto::provider().generate_signing_key(alg)?);
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(key.public_key_compressed());
                context.insert(PUBLIC_KEY_FIELD.to_owned(), encoded);
                Some(key)
            }
            None => None,
        };
        let mut materials = EncryptionMaterials::new(suite, context)
            .with_required_encryption_context_keys(
                request.required_encryption_context_keys.iter().cloned(),
            )?;
        if let Some(key) = signing_key {
            materials = materials.with_signing_key(key);
        }
        let materials = self.keyring.on_encrypt(&materials).await?;
        materials.validate()?;
        if materials.suite() != suite {
            return Err(Error::Materials(
                "keyring changed the algorithm suite".into(),
            ));
        }
        for key in &request.required_encryption_context_keys {
            if !materials.required_encryption_context_keys().contains(key) {
                return Err(Error::Materials(format!(
                    "keyring dropped required encryption context key {key:?}"
                )));
            }
        }
        Ok(materials)
    }

    async fn decrypt_materials(
        &self,
        request: DecryptionMaterialsRequest,
    ) -> Result<DecryptionMaterials> {
        let policy = request.commitment_policy;
        let suite = request.suite;
        if !policy.allows_decrypt(suite) {
            return Err(Error::SuiteNotAllowed { suite, policy });
        }
        let mut context = request.encryption_context;
        let mut required = Vec::new();
        if let Some(reproduced) = request.reproduced_encryption_context {
            for (key, value) in reproduced {
                match context.get(&key) {
                    Some(stored) if *stored != value => {
                        return Err(ContextError::ReproducedMismatch(key).into());
                    }
                    Some(_) => {}
                    None => {
                        context.insert(key.clone(), value);
                        required.push(key);
                    }
                }
            }
        }
        let verifying_key = match (suite.signature(), context.get(PUBLIC_KEY_FIELD)) {
            (Some(alg), Some(encoded)) => {
                let point = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| {
                        crate::error::FormatError::VerificationKey("public key is not valid Base64")
                    })?;
                // The format stores compressed points only; anything else is malformed even
                // where a crypto library would take it.
                if point.len() != alg.compressed_point_len() || !matches!(point[0], 2 | 3) {
                    return Err(crate::error::FormatError::VerificationKey(
                        "public key is not a compressed point of the suite's curve",
                    )
                    .into());
                }
                Some(Arc::from(crypto::provider().verifying_key(alg, &point)?))
            }
            (Some(_), None) => {
                return Err(ContextError::PublicKeyEntry(
                    "signed suite but no aws-crypto-public-key in the encryption context",
                )
                .into())
            }
            (None, Some(_)) => {
                return Err(ContextError::PublicKeyEntry(
                    "unsigned suite but the encryption context holds aws-crypto-public-key",
                )
                .into())
            }
            (None, None) => None,
        };
        let mut materials = DecryptionMaterials::new(suite, context)
            .with_required_encryption_context_keys(required)?;
        if let Some(key) = verifying_key {
            materials = materials.with_verifying_key(key);
        }
        let materials = self
            .keyring
            .on_decrypt(&materials, &request.encrypted_data_keys)
            .await?;
        materials.validate()?;
        if materials.suite() != suite {
            return Err(Error::Materials(
                "keyring changed the algorithm suite".into(),
            ));
        }
        Ok(materials)
    }
}
