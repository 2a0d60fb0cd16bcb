//! # keyring-raw-aes
//!
//! A keyring that wraps data keys with an AES-GCM key held in process memory (128, 192 or
//! 256 bits). Its encrypted data keys use the raw AES wire format shared with the official
//! SDKs (Java `JceMasterKey`, Python `RawMasterKey`, every raw AES keyring): messages move
//! between them in both directions.
//!
//! The wrapping AAD is the serialized encryption context, so changing the context makes the
//! data key unwrap fail. The keyring's copy of the wrapping key is zeroized when the keyring
//! is dropped and is never printed (`Debug` shows only its length). Each wrap and unwrap also
//! expands the key into a short-lived AES-GCM key schedule inside the crypto provider; AWS-LC
//! and RustCrypto `aes-gcm` clear that schedule when it is dropped, `ring` (AES-128/256 under
//! the default provider) does not (see `esdk_core::crypto`). Unwrapped data keys are held in
//! zeroizing buffers.
//!
//! ```
//! use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
//! use keyring_raw_aes::RawAesKeyring;
//!
//! let key = [7u8; 32]; // in real use: from a secret store, never a constant
//! let keyring = RawAesKeyring::new("my-namespace", "my-key", &key)?;
//! let source = MaterialsSource::keyring(keyring);
//! let client = Client::new();
//! let sealed = client.encrypt_blocking(&source, b"secret", &EncryptOptions::default())?;
//! let opened = client.decrypt_blocking(&source, &sealed.ciphertext, &DecryptOptions::default())?;
//! assert_eq!(opened.plaintext, b"secret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use esdk_core::crypto::{aes_gcm_open, aes_gcm_seal, random_bytes};
use esdk_core::{
    async_trait, context, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials,
    Keyring, KeyringError, KeyringFailure,
};
use std::fmt;
use zeroize::Zeroizing;

/// Tag length recorded in the provider info, in bits.
const TAG_LEN_BITS: u32 = 128;
/// IV length recorded in the provider info, in bytes.
const IV_LEN: u32 = 12;

/// A raw AES-GCM keyring.
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    key: Zeroizing<Vec<u8>>,
    description: String,
}

impl RawAesKeyring {
    /// A keyring with key namespace `namespace` (the EDK provider id), key name `name`, and a
    /// 16, 24 or 32-byte wrapping key. Namespaces starting with `aws-kms` are reserved.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        wrapping_key: &[u8],
    ) -> Result<Self, KeyringError> {
        let namespace = namespace.into();
        let name = name.into();
        let description = format!("raw AES keyring (namespace {namespace:?}, name {name:?})");
        let fail = |msg: &str| {
            Err(KeyringError::new(
                description.clone(),
                KeyringFailure::Config(msg.to_owned()),
            ))
        };
        if !matches!(wrapping_key.len(), 16 | 24 | 32) {
            return fail("the wrapping key must be 16, 24 or 32 bytes");
        }
        if namespace.starts_with("aws-kms") {
            return fail(
                "key namespaces starting with \"aws-kms\" are reserved for AWS KMS keyrings",
            );
        }
        if namespace.len() > usize::from(u16::MAX) || name.len() > usize::from(u16::MAX) - 20 {
            return fail("namespace or name too long for the wire format");
        }
        Ok(Self {
            namespace,
            name,
            key: Zeroizing::new(wrapping_key.to_vec()),
            description,
        })
    }

    /// The key namespace (provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    /// The provider info for a wrap with `iv`: name ‖ tag bits ‖ IV length ‖ IV.
    fn provider_info(&self, iv: &[u8; 12]) -> Vec<u8> {
        let mut info = Vec::with_capacity(self.name.len() + 20);
        info.extend_from_slice(self.name.as_bytes());
        info.extend_from_slice(&TAG_LEN_BITS.to_be_bytes());
        info.extend_from_slice(&IV_LEN.to_be_bytes());
        info.extend_from_slice(iv);
        info
    }

    /// The IV from `info` if it names this keyring's key with the expected tag and IV sizes.
    fn parse_provider_info(&self, info: &[u8]) -> Option<[u8; 12]> {
        let rest = info.strip_prefix(self.name.as_bytes())?;
        if rest.len() != 20
            || rest[..4] != TAG_LEN_BITS.to_be_bytes()
            || rest[4..8] != IV_LEN.to_be_bytes()
        {
            return None;
        }
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&rest[8..]);
        Some(iv)
    }

    /// Wrap `materials`' data key (generating one if absent) and append the EDK.
    pub fn wrap(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let aad = context::serialize(materials.encryption_context())
            .map_err(|e| self.error(KeyringFailure::WrapFailed(e.to_string())))?;
        let materials = materials
            .with_data_key_or_generate()
            .map_err(|r| self.error(r))?;
        let data_key = materials
            .data_key()
            .ok_or_else(|| self.error(KeyringFailure::NoDataKey))?;
        let iv: [u8; 12] =
            random_bytes().map_err(|e| self.error(KeyringFailure::WrapFailed(e.to_string())))?;
        let wrapped = aes_gcm_seal(&self.key, &iv, &aad, data_key.as_bytes())
            .map_err(|e| self.error(KeyringFailure::WrapFailed(e.to_string())))?;
        let edk = EncryptedDataKey::new(self.namespace.clone(), self.provider_info(&iv), wrapped);
        Ok(materials.with_encrypted_data_key(edk))
    }

    /// Unwrap the first EDK addressed to this keyring that authenticates.
    pub fn unwrap(
        &self,
        materials: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let aad = context::serialize(materials.encryption_context())
            .map_err(|e| self.error(KeyringFailure::Materials(e.to_string())))?;
        let expected_len = materials.suite().data_key_len() + 16;
        let mut failures = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            if edk.provider_id != self.namespace {
                continue;
            }
            let Some(iv) = self.parse_provider_info(&edk.provider_info) else {
                continue;
            };
            if edk.ciphertext.len() != expected_len {
                failures.push(format!(
                    "EDK {index}: wrapped key is {} bytes, expected {expected_len}",
                    edk.ciphertext.len()
                ));
                continue;
            }
            match aes_gcm_open(&self.key, &iv, &aad, &edk.ciphertext) {
                Ok(key) => {
                    return materials
                        .clone()
                        .with_data_key(DataKey::new(key.to_vec()))
                        .map_err(|r| self.error(r));
                }
                Err(_) => failures.push(format!(
                    "EDK {index}: authentication failed (wrong key or encryption context)"
                )),
            }
        }
        Err(self.error(if failures.is_empty() {
            KeyringFailure::NoMatchingKey(edks.len())
        } else {
            KeyringFailure::UnwrapFailed(failures)
        }))
    }
}

impl fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("key_bits", &(self.key.len() * 8))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Keyring for RawAesKeyring {
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.wrap(materials)
    }

    async fn on_decrypt(
        &self,
        materials: &DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        self.unwrap(materials, encrypted_data_keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esdk_core::{AlgorithmSuite, EncryptionContext};

    fn ctx() -> EncryptionContext {
        [("purpose".to_string(), "test".to_string())]
            .into_iter()
            .collect()
    }

    fn suite() -> AlgorithmSuite {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
    }

    #[test]
    fn wrap_layout_and_unwrap() {
        for len in [16, 24, 32] {
            let k = RawAesKeyring::new("ns", "name", &vec![9u8; len]).unwrap();
            let m = k.wrap(&EncryptionMaterials::new(suite(), ctx())).unwrap();
            let edk = &m.encrypted_data_keys()[0];
            assert_eq!(edk.provider_id, "ns");
            assert_eq!(&edk.provider_info[..4], b"name");
            assert_eq!(&edk.provider_info[4..12], &[0, 0, 0, 0x80, 0, 0, 0, 12]);
            assert_eq!(edk.provider_info.len(), 4 + 20);
            assert_eq!(edk.ciphertext.len(), 32 + 16);
            let d = k
                .unwrap(
                    &DecryptionMaterials::new(suite(), ctx()),
                    m.encrypted_data_keys(),
                )
                .unwrap();
            assert_eq!(
                d.data_key().unwrap().as_bytes(),
                m.data_key().unwrap().as_bytes()
            );
        }
    }

    #[test]
    fn rejects_wrong_context_key_and_bad_config() {
        let k = RawAesKeyring::new("ns", "name", &[1u8; 32]).unwrap();
        let m = k.wrap(&EncryptionMaterials::new(suite(), ctx())).unwrap();
        let edks = m.encrypted_data_keys().to_vec();
        let err = k
            .unwrap(
                &DecryptionMaterials::new(suite(), EncryptionContext::new()),
                &edks,
            )
            .unwrap_err();
        assert!(
            matches!(err.reason, KeyringFailure::UnwrapFailed(_)),
            "{err}"
        );
        let other = RawAesKeyring::new("ns", "name", &[2u8; 32]).unwrap();
        assert!(other
            .unwrap(&DecryptionMaterials::new(suite(), ctx()), &edks)
            .is_err());
        let other_name = RawAesKeyring::new("ns", "other", &[1u8; 32]).unwrap();
        let err = other_name
            .unwrap(&DecryptionMaterials::new(suite(), ctx()), &edks)
            .unwrap_err();
        assert!(matches!(err.reason, KeyringFailure::NoMatchingKey(1)));
        let mut tampered = edks.clone();
        tampered[0].ciphertext[0] ^= 1;
        assert!(k
            .unwrap(&DecryptionMaterials::new(suite(), ctx()), &tampered)
            .is_err());
        let mut truncated = edks.clone();
        truncated[0].ciphertext.pop();
        assert!(k
            .unwrap(&DecryptionMaterials::new(suite(), ctx()), &truncated)
            .is_err());
        assert!(RawAesKeyring::new("ns", "n", &[0u8; 20]).is_err());
        assert!(RawAesKeyring::new("aws-kms", "n", &[0u8; 16]).is_err());
        let with_key = DecryptionMaterials::new(suite(), ctx())
            .with_data_key(DataKey::new(vec![0u8; 32]))
            .unwrap();
        assert!(matches!(
            k.unwrap(&with_key, &edks).unwrap_err().reason,
            KeyringFailure::DataKeyAlreadyPresent
        ));
        let debug = format!("{k:?}");
        assert!(!debug.contains("1, 1, 1"), "{debug}");
    }

    #[test]
    fn wraps_an_existing_key_without_replacing_it() {
        let k = RawAesKeyring::new("ns", "name", &[1u8; 16]).unwrap();
        let m = EncryptionMaterials::new(suite(), ctx())
            .with_data_key(DataKey::new(vec![5u8; 32]))
            .unwrap();
        let m = k.wrap(&m).unwrap();
        assert_eq!(m.data_key().unwrap().as_bytes(), &[5u8; 32]);
    }
}
