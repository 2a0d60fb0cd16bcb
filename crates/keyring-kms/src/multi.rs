//! Multi-keyring builders (spec `aws-kms-multi-keyrings.md`, `aws-kms-mrk-multi-keyrings.md`)
//! and the small multi-keyring they build.
//!
//! [`KmsMultiKeyring`] follows the multi-keyring rules (spec `multi-keyring.md`): on encrypt
//! the generator makes the data key, then every other key wraps it; on decrypt the generator
//! and then each child is tried in order with the unmodified materials, the first success
//! wins, and if all fail the error lists every keyring's reason. One deliberate difference:
//! the children wrap the data key **concurrently** (their EDKs are still appended in
//! configuration order), so encrypting under N keys costs about one KMS round trip after
//! the generator's, not N.

use crate::arn::{check_mrks_unique, DiscoveryFilter, KeyIdentifier};
use crate::client::{ClientSupplier, DefaultClientSupplier};
use crate::discovery::{KmsDiscoveryKeyring, KmsMrkDiscoveryKeyring};
use crate::keyring::{check_grant_tokens, KmsKeyring, KmsMrkKeyring};
use esdk_core::{
    async_trait, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring, KeyringError,
    KeyringFailure,
};
use futures_util::future::join_all;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A generator keyring plus child keyrings, built by the KMS multi-keyring builders.
///
/// On encrypt the generator makes the data key, then every child wraps it, concurrently;
/// their EDKs are appended in configuration order. On decrypt the generator and then each
/// child is tried in order with the unmodified materials; the first one that returns a data
/// key wins (one that returns materials without a data key counts as a failure), and if all
/// fail the error ([`KeyringFailure::AllFailed`]) lists every keyring's reason.
#[derive(Clone)]
pub struct KmsMultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
    description: String,
}

impl KmsMultiKeyring {
    /// A multi-keyring from a generator and/or children (at least one keyring in all).
    /// `description` names it in errors.
    pub fn new(
        description: impl Into<String>,
        generator: Option<Arc<dyn Keyring>>,
        children: Vec<Arc<dyn Keyring>>,
    ) -> Result<Self, KeyringError> {
        let description = description.into();
        if generator.is_none() && children.is_empty() {
            return Err(KeyringError::new(
                description,
                KeyringFailure::Config("a multi-keyring needs a generator or children".into()),
            ));
        }
        Ok(Self {
            generator,
            children,
            description,
        })
    }

    /// Builder for KMS keyrings: a generator key and/or more keys.
    pub fn builder() -> KmsMultiKeyringBuilder {
        KmsMultiKeyringBuilder::new(false)
    }

    /// Builder for MRK-aware KMS keyrings (identifiers must name distinct multi-Region keys).
    pub fn mrk_builder() -> KmsMultiKeyringBuilder {
        KmsMultiKeyringBuilder::new(true)
    }

    /// Builder for one discovery keyring per region.
    pub fn discovery_builder(
        regions: impl IntoIterator<Item = impl Into<String>>,
    ) -> DiscoveryMultiKeyringBuilder {
        DiscoveryMultiKeyringBuilder::new(false, regions)
    }

    /// Builder for one MRK discovery keyring per region.
    pub fn mrk_discovery_builder(
        regions: impl IntoIterator<Item = impl Into<String>>,
    ) -> DiscoveryMultiKeyringBuilder {
        DiscoveryMultiKeyringBuilder::new(true, regions)
    }

    /// The generator keyring, if any.
    pub fn generator(&self) -> Option<&Arc<dyn Keyring>> {
        self.generator.as_ref()
    }

    /// The child keyrings.
    pub fn children(&self) -> &[Arc<dyn Keyring>] {
        &self.children
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }
}

#[async_trait]
impl Keyring for KmsMultiKeyring {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let base = match &self.generator {
            Some(g) => {
                if m.data_key().is_some() {
                    return Err(self.error(KeyringFailure::Materials(
                        "the materials already hold a data key, but this multi-keyring's \
                         generator must create it"
                            .into(),
                    )));
                }
                let out = g.on_encrypt(m).await?;
                if out.data_key().is_none() {
                    return Err(self.error(KeyringFailure::Materials(
                        "the generator keyring returned no data key".into(),
                    )));
                }
                out
            }
            None => {
                if m.data_key().is_none() {
                    return Err(self.error(KeyringFailure::NoDataKey));
                }
                m.clone()
            }
        };
        let results = join_all(self.children.iter().map(|c| c.on_encrypt(&base))).await;
        let base_key = Zeroizing::new(
            base.data_key()
                .map(|k| k.as_bytes().to_vec())
                .unwrap_or_default(),
        );
        let base_len = base.encrypted_data_keys().len();
        let mut out = base.clone();
        for result in results {
            let child = result?;
            let same_key = child.data_key().is_some_and(|k| {
                k.len() == base_key.len() && bool::from(k.as_bytes().ct_eq(&base_key[..]))
            });
            let edks = child.encrypted_data_keys();
            if !same_key
                || edks.len() < base_len
                || edks[..base_len] != base.encrypted_data_keys()[..]
            {
                return Err(self.error(KeyringFailure::Materials(
                    "a child keyring changed the data key or removed encrypted data keys".into(),
                )));
            }
            for edk in &edks[base_len..] {
                out = out.with_encrypted_data_key(edk.clone());
            }
        }
        Ok(out)
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if m.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let mut errors = Vec::new();
        let generator = self.generator.iter().map(|g| ("generator".to_owned(), g));
        let children = (self.children.iter().enumerate()).map(|(i, c)| (format!("child {i}"), c));
        for (label, k) in generator.chain(children) {
            match k.on_decrypt(m, edks).await {
                Ok(out) if out.data_key().is_some() => return Ok(out),
                // A keyring that "succeeds" without a data key has not decrypted anything:
                // count it as a failure and try the next one.
                Ok(_) => errors.push(KeyringError::new(
                    format!("{} {label}", self.description),
                    KeyringFailure::Materials("returned materials without a data key".into()),
                )),
                Err(e) => errors.push(e),
            }
        }
        Err(self.error(KeyringFailure::AllFailed(errors)))
    }
}

impl fmt::Debug for KmsMultiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsMultiKeyring")
            .field("description", &self.description)
            .field("has_generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

fn config_error(what: &str, reason: String) -> KeyringError {
    KeyringError::new(what, KeyringFailure::Config(reason))
}

/// Builds a [`KmsMultiKeyring`] of KMS keyrings (or MRK-aware ones), one client per region
/// from a [`ClientSupplier`].
#[must_use]
pub struct KmsMultiKeyringBuilder {
    mrk: bool,
    generator: Option<String>,
    keys: Vec<String>,
    supplier: Option<Arc<dyn ClientSupplier>>,
    grant_tokens: Vec<String>,
}

impl KmsMultiKeyringBuilder {
    fn new(mrk: bool) -> Self {
        Self {
            mrk,
            generator: None,
            keys: Vec::new(),
            supplier: None,
            grant_tokens: Vec::new(),
        }
    }

    /// The key that generates data keys (without one, the keyring can only wrap a data key
    /// that another keyring generated, or decrypt).
    pub fn generator(mut self, key_id: impl Into<String>) -> Self {
        self.generator = Some(key_id.into());
        self
    }

    /// One more key that wraps the data key.
    pub fn key(mut self, key_id: impl Into<String>) -> Self {
        self.keys.push(key_id.into());
        self
    }

    /// More keys that wrap the data key.
    pub fn keys(mut self, key_ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.keys.extend(key_ids.into_iter().map(Into::into));
        self
    }

    /// Where clients come from (default: [`DefaultClientSupplier::from_env`]).
    pub fn client_supplier(mut self, supplier: impl ClientSupplier + 'static) -> Self {
        self.supplier = Some(Arc::new(supplier));
        self
    }

    /// Grant tokens for every keyring's calls.
    pub fn grant_tokens(mut self, tokens: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// Validate every identifier, get one client per key's region, and build.
    pub async fn build(self) -> Result<KmsMultiKeyring, KeyringError> {
        let what = if self.mrk {
            "AWS KMS MRK multi-keyring"
        } else {
            "AWS KMS multi-keyring"
        };
        if self.generator.is_none() && self.keys.is_empty() {
            return Err(config_error(
                what,
                "give a generator key and/or other keys".into(),
            ));
        }
        check_grant_tokens(&self.grant_tokens).map_err(|e| config_error(what, e))?;
        let all: Vec<&String> = self.generator.iter().chain(self.keys.iter()).collect();
        let mut parsed = Vec::with_capacity(all.len());
        for id in &all {
            let p = KeyIdentifier::parse(id).map_err(|e| {
                config_error(what, format!("{id:?} is not a KMS key identifier: {e}"))
            })?;
            parsed.push(p);
        }
        if self.mrk {
            check_mrks_unique(&parsed).map_err(|e| config_error(what, e.to_string()))?;
        }
        let supplier: Arc<dyn ClientSupplier> = match self.supplier {
            Some(s) => s,
            None => Arc::new(DefaultClientSupplier::from_env().await),
        };
        let mut keyrings: Vec<Arc<dyn Keyring>> = Vec::with_capacity(all.len());
        for (id, p) in all.iter().zip(&parsed) {
            let client = supplier
                .client(p.region())
                .map_err(|e| config_error(what, format!("key {id}: {e}")))?;
            let k: Arc<dyn Keyring> = if self.mrk {
                Arc::new(
                    KmsMrkKeyring::new(id.as_str(), client)?
                        .with_grant_tokens(self.grant_tokens.clone())?,
                )
            } else {
                Arc::new(
                    KmsKeyring::new(id.as_str(), client)?
                        .with_grant_tokens(self.grant_tokens.clone())?,
                )
            };
            keyrings.push(k);
        }
        let generator = if self.generator.is_some() {
            Some(keyrings.remove(0))
        } else {
            None
        };
        let description = match &self.generator {
            Some(g) => format!("{what} (generator {g}, {} more keys)", self.keys.len()),
            None => format!("{what} ({} keys, no generator)", self.keys.len()),
        };
        KmsMultiKeyring::new(description, generator, keyrings)
    }
}

impl fmt::Debug for KmsMultiKeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsMultiKeyringBuilder")
            .field("mrk", &self.mrk)
            .field("generator", &self.generator)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KmsMultiKeyring`] of discovery (or MRK discovery) keyrings, one per region.
#[must_use]
pub struct DiscoveryMultiKeyringBuilder {
    mrk: bool,
    regions: Vec<String>,
    filter: Option<DiscoveryFilter>,
    supplier: Option<Arc<dyn ClientSupplier>>,
    grant_tokens: Vec<String>,
}

impl DiscoveryMultiKeyringBuilder {
    fn new(mrk: bool, regions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            mrk,
            regions: regions.into_iter().map(Into::into).collect(),
            filter: None,
            supplier: None,
            grant_tokens: Vec::new(),
        }
    }

    /// Restrict every keyring to the filter's partition and accounts.
    pub fn discovery_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Where clients come from (default: [`DefaultClientSupplier::from_env`]).
    pub fn client_supplier(mut self, supplier: impl ClientSupplier + 'static) -> Self {
        self.supplier = Some(Arc::new(supplier));
        self
    }

    /// Grant tokens for every keyring's calls.
    pub fn grant_tokens(mut self, tokens: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// Get a client per region and build.
    pub async fn build(self) -> Result<KmsMultiKeyring, KeyringError> {
        let what = if self.mrk {
            "AWS KMS MRK discovery multi-keyring"
        } else {
            "AWS KMS discovery multi-keyring"
        };
        if self.regions.is_empty() {
            return Err(config_error(what, "give at least one region".into()));
        }
        if self.regions.iter().any(String::is_empty) {
            return Err(config_error(what, "a region is empty".into()));
        }
        check_grant_tokens(&self.grant_tokens).map_err(|e| config_error(what, e))?;
        let supplier: Arc<dyn ClientSupplier> = match self.supplier {
            Some(s) => s,
            None => Arc::new(DefaultClientSupplier::from_env().await),
        };
        let mut children: Vec<Arc<dyn Keyring>> = Vec::with_capacity(self.regions.len());
        for region in &self.regions {
            let client = supplier
                .client(Some(region))
                .map_err(|e| config_error(what, e.to_string()))?;
            let k: Arc<dyn Keyring> = if self.mrk {
                let mut k = KmsMrkDiscoveryKeyring::new(client, region.clone())?
                    .with_grant_tokens(self.grant_tokens.clone())?;
                if let Some(f) = &self.filter {
                    k = k.with_discovery_filter(f.clone());
                }
                Arc::new(k)
            } else {
                let mut k = KmsDiscoveryKeyring::new(client)
                    .with_grant_tokens(self.grant_tokens.clone())?;
                if let Some(f) = &self.filter {
                    k = k.with_discovery_filter(f.clone());
                }
                Arc::new(k)
            };
            children.push(k);
        }
        let description = format!("{what} (regions {})", self.regions.join(", "));
        KmsMultiKeyring::new(description, None, children)
    }
}

impl fmt::Debug for DiscoveryMultiKeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryMultiKeyringBuilder")
            .field("mrk", &self.mrk)
            .field("regions", &self.regions)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esdk_core::{AlgorithmSuite, DataKey, EncryptionContext};

    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

    /// Returns the materials it is given, unchanged, as if it had decrypted.
    #[derive(Debug)]
    struct Unchanged;

    #[async_trait]
    impl Keyring for Unchanged {
        async fn on_encrypt(
            &self,
            m: &EncryptionMaterials,
        ) -> Result<EncryptionMaterials, KeyringError> {
            Ok(m.clone())
        }

        async fn on_decrypt(
            &self,
            m: &DecryptionMaterials,
            _edks: &[EncryptedDataKey],
        ) -> Result<DecryptionMaterials, KeyringError> {
            Ok(m.clone())
        }
    }

    /// Decrypts to a fixed data key.
    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl Keyring for Fixed {
        async fn on_encrypt(
            &self,
            m: &EncryptionMaterials,
        ) -> Result<EncryptionMaterials, KeyringError> {
            Ok(m.clone())
        }

        async fn on_decrypt(
            &self,
            m: &DecryptionMaterials,
            _edks: &[EncryptedDataKey],
        ) -> Result<DecryptionMaterials, KeyringError> {
            m.clone()
                .with_data_key(DataKey::new(vec![7u8; SUITE.data_key_len()]))
                .map_err(|r| KeyringError::new("fixed", r))
        }
    }

    fn materials() -> DecryptionMaterials {
        DecryptionMaterials::new(SUITE, EncryptionContext::new())
    }

    #[tokio::test]
    async fn decrypt_without_a_data_key_is_a_failure() {
        let multi = KmsMultiKeyring::new(
            "test multi",
            Some(Arc::new(Unchanged)),
            vec![Arc::new(Unchanged)],
        )
        .unwrap();
        let err = multi.on_decrypt(&materials(), &[]).await.unwrap_err();
        let KeyringFailure::AllFailed(errors) = &err.reason else {
            panic!("expected AllFailed, got {err}");
        };
        assert_eq!(errors.len(), 2, "{err}");
        for (e, label) in errors.iter().zip(["generator", "child 0"]) {
            assert!(
                matches!(&e.reason, KeyringFailure::Materials(m) if m.contains("without a data key")),
                "{e}"
            );
            assert!(e.to_string().contains(label), "{e}");
        }
    }

    #[tokio::test]
    async fn a_child_without_a_data_key_does_not_stop_the_next() {
        let multi = KmsMultiKeyring::new(
            "test multi",
            None,
            vec![Arc::new(Unchanged), Arc::new(Fixed)],
        )
        .unwrap();
        let out = multi.on_decrypt(&materials(), &[]).await.unwrap();
        assert_eq!(
            out.data_key().unwrap().as_bytes(),
            vec![7u8; SUITE.data_key_len()]
        );
    }
}
