//! Discovery keyrings (spec `aws-kms-discovery-keyring.md`,
//! `aws-kms-mrk-discovery-keyring.md`): decrypt-only keyrings that use whichever KMS key an
//! encrypted data key names, optionally restricted by a [`DiscoveryFilter`].

use crate::arn::{DiscoveryFilter, KmsArn};
use crate::calls::KmsCaller;
use crate::error::KmsError;
use crate::keyring::{check_grant_tokens, kms_provider_info, set_data_key};
use crate::PROVIDER_ID;
use aws_sdk_kms::Client;
use esdk_core::{
    async_trait, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring, KeyringError,
    KeyringFailure,
};
use std::fmt;

#[derive(Clone)]
struct Discovery {
    caller: KmsCaller,
    filter: Option<DiscoveryFilter>,
    /// `Some` for the MRK discovery keyring: its client's region.
    region: Option<String>,
    description: String,
}

impl Discovery {
    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    fn describe(&mut self) {
        let kind = if self.region.is_some() {
            "AWS KMS MRK discovery keyring"
        } else {
            "AWS KMS discovery keyring"
        };
        let mut d = kind.to_owned();
        if let Some(r) = &self.region {
            d.push_str(&format!(" (region {r})"));
        }
        if let Some(f) = &self.filter {
            d.push_str(&format!(
                " (filter: partition {}, accounts [{}])",
                f.partition(),
                f.account_ids().join(", ")
            ));
        }
        self.description = d;
    }

    /// The key id to send to Decrypt for `arn`, or why this keyring skips it.
    fn decrypt_key_id(&self, arn: &KmsArn, info: &str) -> Result<String, KmsError> {
        if let Some(f) = &self.filter {
            f.check(arn).map_err(|why| KmsError::FilteredOut {
                key_arn: info.to_owned(),
                why,
            })?;
        }
        match &self.region {
            None => Ok(info.to_owned()),
            Some(region) if arn.is_mrk() => Ok(arn.with_region(region).to_string()),
            Some(region) if arn.region() == region => Ok(info.to_owned()),
            Some(region) => Err(KmsError::OtherRegion {
                key_arn: info.to_owned(),
                key_region: arn.region().to_owned(),
                region: region.clone(),
            }),
        }
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if m.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let len = m.suite().data_key_len();
        let mut reasons = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            let Some(info) = kms_provider_info(index, edk, PROVIDER_ID)
                .map_err(|e| self.error(e.into_failure()))?
            else {
                continue;
            };
            // kms_provider_info has validated the ARN.
            let arn = KmsArn::parse_key_arn(info).map_err(|reason| {
                self.error(
                    KmsError::MalformedProviderInfo {
                        index,
                        provider_id: edk.provider_id.clone(),
                        provider_info: info.to_owned(),
                        reason,
                    }
                    .into_failure(),
                )
            })?;
            let key_id = match self.decrypt_key_id(&arn, info) {
                Ok(k) => k,
                Err(skip) => {
                    reasons.push(skip);
                    continue;
                }
            };
            match self
                .caller
                .decrypt(
                    &key_id,
                    &edk.ciphertext,
                    Some(m.encryption_context()),
                    None,
                    len,
                )
                .await
            {
                Ok(u) => return set_data_key(m, u.plaintext).map_err(|r| self.error(r)),
                Err(e @ KmsError::NoTokioRuntime { .. }) => {
                    return Err(self.error(e.into_failure()))
                }
                Err(e) => reasons.push(e),
            }
        }
        Err(self.error(
            KmsError::NothingDecrypted {
                edk_count: edks.len(),
                reasons,
            }
            .into_failure(),
        ))
    }

    fn on_encrypt(&self) -> KeyringError {
        self.error(KeyringFailure::Unsupported(
            "a discovery keyring cannot encrypt: it has no key to wrap with (use a KMS keyring)"
                .into(),
        ))
    }
}

macro_rules! discovery_common {
    ($name:ident) => {
        impl $name {
            /// Accept only keys in the filter's partition and accounts.
            pub fn with_discovery_filter(mut self, filter: DiscoveryFilter) -> Self {
                self.0.filter = Some(filter);
                self.0.describe();
                self
            }

            /// Send these grant tokens (at most 10) on every KMS call.
            pub fn with_grant_tokens(
                mut self,
                tokens: impl IntoIterator<Item = impl Into<String>>,
            ) -> Result<Self, KeyringError> {
                let tokens: Vec<String> = tokens.into_iter().map(Into::into).collect();
                check_grant_tokens(&tokens).map_err(|e| self.0.error(KeyringFailure::Config(e)))?;
                self.0.caller.grant_tokens = tokens;
                Ok(self)
            }

            /// The discovery filter, if any.
            pub fn discovery_filter(&self) -> Option<&DiscoveryFilter> {
                self.0.filter.as_ref()
            }
        }

        #[async_trait]
        impl Keyring for $name {
            /// Always fails: discovery keyrings cannot encrypt.
            async fn on_encrypt(
                &self,
                _materials: &EncryptionMaterials,
            ) -> Result<EncryptionMaterials, KeyringError> {
                Err(self.0.on_encrypt())
            }

            async fn on_decrypt(
                &self,
                materials: &DecryptionMaterials,
                encrypted_data_keys: &[EncryptedDataKey],
            ) -> Result<DecryptionMaterials, KeyringError> {
                self.0.on_decrypt(materials, encrypted_data_keys).await
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("region", &self.0.region)
                    .field("filter", &self.0.filter)
                    .field("grant_tokens", &self.0.caller.grant_tokens.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// The AWS KMS discovery keyring: decrypts `aws-kms` EDKs with whatever key their provider
/// info names (`Decrypt` with that key ARN), if the discovery filter allows the key. It
/// cannot encrypt.
#[derive(Clone)]
pub struct KmsDiscoveryKeyring(Discovery);

impl KmsDiscoveryKeyring {
    /// A discovery keyring calling KMS through `client`.
    pub fn new(client: Client) -> Self {
        let mut d = Discovery {
            caller: KmsCaller {
                client,
                grant_tokens: Vec::new(),
            },
            filter: None,
            region: None,
            description: String::new(),
        };
        d.describe();
        Self(d)
    }
}

discovery_common!(KmsDiscoveryKeyring);

/// The AWS KMS multi-Region-key discovery keyring, bound to its client's region: EDKs of a
/// multi-Region key are decrypted with the replica in that region (the provider info's ARN
/// with the region replaced); EDKs of single-region keys only when the key is in that region.
/// It cannot encrypt.
#[derive(Clone)]
pub struct KmsMrkDiscoveryKeyring(Discovery);

impl KmsMrkDiscoveryKeyring {
    /// An MRK discovery keyring calling KMS through `client`, which must be configured for
    /// `region`.
    pub fn new(client: Client, region: impl Into<String>) -> Result<Self, KeyringError> {
        let region = region.into();
        let mut d = Discovery {
            caller: KmsCaller {
                client,
                grant_tokens: Vec::new(),
            },
            filter: None,
            region: Some(region.clone()),
            description: String::new(),
        };
        d.describe();
        if region.is_empty() {
            return Err(d.error(KeyringFailure::Config("the region is empty".into())));
        }
        if let Some(client_region) = crate::client::client_region(&d.caller.client) {
            if client_region != region {
                return Err(d.error(KeyringFailure::Config(format!(
                    "the client is configured for region {client_region}, not {region}"
                ))));
            }
        }
        Ok(Self(d))
    }

    /// The region.
    pub fn region(&self) -> &str {
        self.0.region.as_deref().unwrap_or_default()
    }
}

discovery_common!(KmsMrkDiscoveryKeyring);
