//! Encryption and decryption materials: what a CMM hands the message layer, and what keyrings
//! fill in. The plaintext data key is zeroized on drop and never shown by `Debug`.

use crate::context::EncryptionContext;
use crate::crypto::{self, SigningKey, VerifyingKey};
use crate::edk::EncryptedDataKey;
use crate::error::{Error, KeyringFailure, Result};
use crate::suite::AlgorithmSuite;
use core::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A plaintext data key. Zeroized on drop; `Debug` shows only its length.
#[derive(Clone)]
pub struct DataKey(Zeroizing<Vec<u8>>);

impl DataKey {
    /// Wrap key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// A fresh random data key of the suite's length.
    pub fn generate(suite: AlgorithmSuite) -> Result<Self> {
        let mut key = Zeroizing::new(vec![0u8; suite.data_key_len()]);
        crypto::provider().fill_random(&mut key)?;
        Ok(Self(key))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey([REDACTED; {}])", self.0.len())
    }
}

/// The data-key rules both kinds of materials share: never replace a key, and the length must
/// fit the suite.
fn check_new_data_key(
    suite: AlgorithmSuite,
    existing: &Option<DataKey>,
    key: &DataKey,
) -> Result<(), KeyringFailure> {
    if existing.is_some() {
        return Err(KeyringFailure::DataKeyAlreadyPresent);
    }
    if key.len() != suite.data_key_len() {
        return Err(KeyringFailure::Materials(format!(
            "data key is {} bytes, suite {} needs {}",
            key.len(),
            suite,
            suite.data_key_len()
        )));
    }
    Ok(())
}

/// Add `keys` to `required` (without duplicates); each must be a key of `context`.
fn add_required_keys(
    context: &EncryptionContext,
    required: &mut Vec<String>,
    keys: impl IntoIterator<Item = String>,
) -> Result<()> {
    for key in keys {
        if !context.contains_key(&key) {
            return Err(Error::Materials(format!(
                "required encryption context key {key:?} is not in the encryption context"
            )));
        }
        if !required.contains(&key) {
            required.push(key);
        }
    }
    Ok(())
}

/// Checks shared by both `validate` methods.
fn validate_common(
    suite: AlgorithmSuite,
    data_key: &Option<DataKey>,
    context: &EncryptionContext,
    required: &[String],
) -> Result<()> {
    let key = data_key
        .as_ref()
        .ok_or_else(|| Error::Materials("no plaintext data key".into()))?;
    if key.len() != suite.data_key_len() {
        return Err(Error::Materials(
            "data key length does not match the suite".into(),
        ));
    }
    for key in required {
        if !context.contains_key(key) {
            return Err(Error::Materials(format!(
                "required encryption context key {key:?} is not in the encryption context"
            )));
        }
    }
    Ok(())
}

/// Materials for encrypting one message.
#[derive(Clone)]
pub struct EncryptionMaterials {
    suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: Vec<String>,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    data_key: Option<DataKey>,
    signing_key: Option<Arc<dyn SigningKey>>,
}

impl EncryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        Self {
            suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            encrypted_data_keys: Vec::new(),
            data_key: None,
            signing_key: None,
        }
    }

    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The full encryption context (including keys that will not be stored in the header).
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Keys of the context that are authenticated but not stored in the message.
    pub fn required_encryption_context_keys(&self) -> &[String] {
        &self.required_encryption_context_keys
    }

    /// The EDKs collected so far.
    pub fn encrypted_data_keys(&self) -> &[EncryptedDataKey] {
        &self.encrypted_data_keys
    }

    /// The plaintext data key, once generated.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// The per-message signing key, for signed suites.
    pub fn signing_key(&self) -> Option<&Arc<dyn SigningKey>> {
        self.signing_key.as_ref()
    }

    /// Set the data key; fails if one is present or its length is wrong for the suite.
    pub fn with_data_key(mut self, key: DataKey) -> Result<Self, KeyringFailure> {
        check_new_data_key(self.suite, &self.data_key, &key)?;
        self.data_key = Some(key);
        Ok(self)
    }

    /// These materials with a data key: unchanged if they hold one, else with a fresh random
    /// key of the suite's length. What every generating keyring's `on_encrypt` starts with.
    pub fn with_data_key_or_generate(&self) -> Result<Self, KeyringFailure> {
        if self.data_key.is_some() {
            return Ok(self.clone());
        }
        let key = DataKey::generate(self.suite)
            .map_err(|e| KeyringFailure::WrapFailed(format!("generating the data key: {e}")))?;
        self.clone().with_data_key(key)
    }

    /// Append an EDK (which must wrap the current data key).
    pub fn with_encrypted_data_key(mut self, edk: EncryptedDataKey) -> Self {
        self.encrypted_data_keys.push(edk);
        self
    }

    /// Set the signing key.
    pub fn with_signing_key(mut self, key: Arc<dyn SigningKey>) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Record keys as required (authenticated, not stored). They must be keys of the context.
    pub fn with_required_encryption_context_keys(
        mut self,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<Self> {
        add_required_keys(
            &self.encryption_context,
            &mut self.required_encryption_context_keys,
            keys,
        )?;
        Ok(self)
    }

    /// Mutable access to the context, for CMMs building materials.
    pub fn encryption_context_mut(&mut self) -> &mut EncryptionContext {
        &mut self.encryption_context
    }

    /// Check the rules the message layer relies on (CMM output validation).
    pub fn validate(&self) -> Result<()> {
        validate_common(
            self.suite,
            &self.data_key,
            &self.encryption_context,
            &self.required_encryption_context_keys,
        )?;
        if self.encrypted_data_keys.is_empty() {
            return Err(Error::Materials("no encrypted data keys".into()));
        }
        if self.suite.is_signed() != self.signing_key.is_some() {
            return Err(Error::Materials(
                "signing key presence does not match the suite".into(),
            ));
        }
        if let Some(k) = &self.signing_key {
            if Some(k.algorithm()) != self.suite.signature() {
                return Err(Error::Materials("signing key is for another curve".into()));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EncryptionMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .field(
                "required_encryption_context_keys",
                &self.required_encryption_context_keys,
            )
            .field("encrypted_data_keys", &self.encrypted_data_keys)
            .field("data_key", &self.data_key)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// Materials for decrypting one message.
#[derive(Clone)]
pub struct DecryptionMaterials {
    suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: Vec<String>,
    data_key: Option<DataKey>,
    verifying_key: Option<Arc<dyn VerifyingKey>>,
}

impl DecryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        Self {
            suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            data_key: None,
            verifying_key: None,
        }
    }

    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The encryption context (stored plus reproduced).
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Keys that were authenticated but not stored.
    pub fn required_encryption_context_keys(&self) -> &[String] {
        &self.required_encryption_context_keys
    }

    /// The unwrapped data key.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// The verification key, for signed suites.
    pub fn verifying_key(&self) -> Option<&Arc<dyn VerifyingKey>> {
        self.verifying_key.as_ref()
    }

    /// Set the unwrapped data key; fails if one is present or the length is wrong.
    pub fn with_data_key(mut self, key: DataKey) -> Result<Self, KeyringFailure> {
        check_new_data_key(self.suite, &self.data_key, &key)?;
        self.data_key = Some(key);
        Ok(self)
    }

    /// Set the verification key.
    pub fn with_verifying_key(mut self, key: Arc<dyn VerifyingKey>) -> Self {
        self.verifying_key = Some(key);
        self
    }

    /// Record keys as required; they must be keys of the context.
    pub fn with_required_encryption_context_keys(
        mut self,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<Self> {
        add_required_keys(
            &self.encryption_context,
            &mut self.required_encryption_context_keys,
            keys,
        )?;
        Ok(self)
    }

    /// Mutable access to the context, for CMMs building materials.
    pub fn encryption_context_mut(&mut self) -> &mut EncryptionContext {
        &mut self.encryption_context
    }

    /// Check the rules the message layer relies on.
    pub fn validate(&self) -> Result<()> {
        validate_common(
            self.suite,
            &self.data_key,
            &self.encryption_context,
            &self.required_encryption_context_keys,
        )?;
        if self.suite.is_signed() != self.verifying_key.is_some() {
            return Err(Error::Materials(
                "verification key presence does not match the suite".into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for DecryptionMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .field(
                "required_encryption_context_keys",
                &self.required_encryption_context_keys,
            )
            .field("data_key", &self.data_key)
            .field("has_verifying_key", &self.verifying_key.is_some())
            .finish()
    }
}
