//! # keyring-multi
//!
//! A keyring made of other keyrings: an optional **generator** and any number of
//! **children**, each any [`Keyring`] (raw AES, raw RSA, KMS, an HSM, another multi-keyring, or
//! your own). Every message it encrypts carries one encrypted data key per member, so any one
//! of them can decrypt it.
//!
//! * **Encrypt.** With a generator: the generator makes the data key (and usually wraps it),
//!   then every child wraps that same key, in order. Without a generator the materials must
//!   already hold a data key (for example from an enclosing multi-keyring), and the children
//!   only wrap it. If any member fails, encryption fails: a message is never written with
//!   fewer wrapped keys than configured.
//! * **Decrypt.** The generator is tried first, then each child in order, each with the
//!   caller's unmodified materials; the first that unwraps a data key wins. If all fail, the
//!   error is [`KeyringFailure::AllFailed`], listing every member's own error in order.
//!
//! ```
//! use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
//! use keyring_multi::MultiKeyring;
//! use keyring_raw_aes::RawAesKeyring;
//! use std::sync::Arc;
//!
//! let primary = Arc::new(RawAesKeyring::new("keys", "primary", &[1u8; 32])?);
//! let escrow = Arc::new(RawAesKeyring::new("keys", "escrow", &[2u8; 32])?);
//! let multi = MultiKeyring::builder()
//!     .generator(primary)
//!     .child(escrow.clone())
//!     .build()?;
//!
//! let client = Client::new();
//! let sealed = client.encrypt_blocking(&MaterialsSource::keyring(multi), b"secret", &EncryptOptions::default())?;
//! assert_eq!(sealed.header.encrypted_data_keys.len(), 2);
//!
//! // The escrow key alone can decrypt.
//! let opened = client.decrypt_blocking(&MaterialsSource::keyring(escrow), &sealed.ciphertext, &DecryptOptions::default())?;
//! assert_eq!(opened.plaintext, b"secret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use esdk_core::{
    async_trait, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring, KeyringError,
    KeyringFailure,
};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A generator keyring plus child keyrings.
#[derive(Clone)]
pub struct MultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

/// Builds a [`MultiKeyring`].
#[derive(Clone, Default)]
pub struct MultiKeyringBuilder {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl MultiKeyringBuilder {
    /// Set the generator: the keyring that makes the data key on encrypt.
    pub fn generator(mut self, keyring: Arc<dyn Keyring>) -> Self {
        self.generator = Some(keyring);
        self
    }

    /// Append a child keyring.
    pub fn child(mut self, keyring: Arc<dyn Keyring>) -> Self {
        self.children.push(keyring);
        self
    }

    /// Append several child keyrings.
    pub fn children(mut self, keyrings: impl IntoIterator<Item = Arc<dyn Keyring>>) -> Self {
        self.children.extend(keyrings);
        self
    }

    /// Build the multi-keyring; fails if it has neither a generator nor a child.
    pub fn build(self) -> Result<MultiKeyring, KeyringError> {
        MultiKeyring::new(self.generator, self.children)
    }
}

impl MultiKeyring {
    /// A multi-keyring from an optional generator and children (at least one keyring in all).
    pub fn new(
        generator: Option<Arc<dyn Keyring>>,
        children: Vec<Arc<dyn Keyring>>,
    ) -> Result<Self, KeyringError> {
        if generator.is_none() && children.is_empty() {
            return Err(KeyringError::new(
                "multi-keyring",
                KeyringFailure::Config(
                    "a multi-keyring needs a generator or at least one child keyring".into(),
                ),
            ));
        }
        Ok(Self {
            generator,
            children,
        })
    }

    /// A builder.
    pub fn builder() -> MultiKeyringBuilder {
        MultiKeyringBuilder::default()
    }

    /// The generator, if any.
    pub fn generator(&self) -> Option<&Arc<dyn Keyring>> {
        self.generator.as_ref()
    }

    /// The children, in order.
    pub fn children(&self) -> &[Arc<dyn Keyring>] {
        &self.children
    }

    fn description(&self) -> String {
        format!(
            "multi-keyring ({}, {} child keyring{})",
            if self.generator.is_some() {
                "with generator"
            } else {
                "no generator"
            },
            self.children.len(),
            if self.children.len() == 1 { "" } else { "s" }
        )
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description(), reason)
    }

    /// Every member, labelled, in the order they are used.
    fn members(&self) -> impl Iterator<Item = (String, &Arc<dyn Keyring>)> {
        self.generator
            .iter()
            .map(|g| ("generator".to_owned(), g))
            .chain(
                self.children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("child {}", i + 1), c)),
            )
    }

    /// Prefix a member's error with where it sits in this multi-keyring, keeping its reason.
    fn member_error(&self, label: &str, e: KeyringError) -> KeyringError {
        KeyringError::new(
            format!("{} {label}: {}", self.description(), e.keyring),
            e.reason,
        )
    }
}

impl fmt::Debug for MultiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKeyring")
            .field("has_generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

impl fmt::Debug for MultiKeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKeyringBuilder")
            .field("has_generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

#[async_trait]
impl Keyring for MultiKeyring {
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let mut current = match &self.generator {
            Some(generator) => {
                if materials.data_key().is_some() {
                    return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
                }
                let out = generator
                    .on_encrypt(materials)
                    .await
                    .map_err(|e| self.member_error("generator", e))?;
                if out.data_key().is_none() {
                    return Err(self.error(KeyringFailure::Materials(
                        "the generator returned no plaintext data key".into(),
                    )));
                }
                out
            }
            None => {
                if materials.data_key().is_none() {
                    return Err(self.error(KeyringFailure::NoDataKey));
                }
                materials.clone()
            }
        };
        for (i, child) in self.children.iter().enumerate() {
            let label = format!("child {}", i + 1);
            let next = child
                .on_encrypt(&current)
                .await
                .map_err(|e| self.member_error(&label, e))?;
            // A child must wrap the existing key, never replace it.
            let same = match (current.data_key(), next.data_key()) {
                (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
                _ => false,
            };
            if !same {
                return Err(self.error(KeyringFailure::Materials(format!(
                    "{label} replaced or removed the plaintext data key"
                ))));
            }
            current = next;
        }
        Ok(current)
    }

    async fn on_decrypt(
        &self,
        materials: &DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let mut failures = Vec::new();
        for (label, member) in self.members() {
            match member.on_decrypt(materials, encrypted_data_keys).await {
                Ok(out) if out.data_key().is_some() => return Ok(out),
                Ok(_) => failures.push(KeyringError::new(
                    format!("{} {label}", self.description()),
                    KeyringFailure::Materials("returned materials without a data key".into()),
                )),
                Err(e) => failures.push(self.member_error(&label, e)),
            }
        }
        Err(self.error(KeyringFailure::AllFailed(failures)))
    }
}
