//! The AWS KMS keyring (spec `aws-kms-keyring.md`) and the MRK-aware keyring
//! (`aws-kms-mrk-keyring.md`): one symmetric KMS key that generates, wraps and unwraps.

use crate::arn::{mrk_match_for_decrypt, KeyIdentifier, KmsArn};
use crate::calls::KmsCaller;
use crate::error::KmsError;
use crate::PROVIDER_ID;
use aws_sdk_kms::Client;
use esdk_core::{
    async_trait, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring,
    KeyringError, KeyringFailure,
};
use std::fmt;
use zeroize::Zeroizing;

/// KMS accepts at most this many grant tokens per request.
pub const MAX_GRANT_TOKENS: usize = 10;

pub(crate) fn check_grant_tokens(tokens: &[String]) -> Result<(), String> {
    if tokens.len() > MAX_GRANT_TOKENS {
        return Err(format!(
            "{} grant tokens given; KMS accepts at most {MAX_GRANT_TOKENS}",
            tokens.len()
        ));
    }
    if tokens.iter().any(String::is_empty) {
        return Err("a grant token is empty".into());
    }
    Ok(())
}

/// How the configured key is compared with an EDK's provider info.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Matching {
    /// Exact string equality (AWS KMS keyring).
    Exact,
    /// MRK match for decrypt: region ignored for multi-Region keys.
    Mrk,
}

/// What the KMS keyring and the MRK keyring share.
#[derive(Clone)]
struct Single {
    key_id: String,
    identifier: KeyIdentifier,
    caller: KmsCaller,
    matching: Matching,
    description: String,
}

impl Single {
    fn new(key_id: String, client: Client, matching: Matching) -> Result<Self, KeyringError> {
        let kind = match matching {
            Matching::Exact => "AWS KMS keyring",
            Matching::Mrk => "AWS KMS MRK keyring",
        };
        let description = format!("{kind} (key {key_id})");
        let identifier = KeyIdentifier::parse(&key_id).map_err(|e| {
            KeyringError::new(
                description.clone(),
                KeyringFailure::Config(format!("{key_id:?} is not a KMS key identifier: {e}")),
            )
        })?;
        Ok(Self {
            key_id,
            identifier,
            caller: KmsCaller {
                client,
                grant_tokens: Vec::new(),
            },
            matching,
            description,
        })
    }

    fn with_grant_tokens(mut self, tokens: Vec<String>) -> Result<Self, KeyringError> {
        check_grant_tokens(&tokens).map_err(|e| self.error(KeyringFailure::Config(e)))?;
        self.caller.grant_tokens = tokens;
        Ok(self)
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    fn kms(&self, e: KmsError) -> KeyringError {
        self.error(e.into_failure())
    }

    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let ec = m.encryption_context();
        match m.data_key() {
            None => {
                let len = m.suite().data_key_len();
                let w = self
                    .caller
                    .generate_data_key(&self.identifier, &self.key_id, len, ec)
                    .await
                    .map_err(|e| self.kms(e))?;
                let plaintext = w.plaintext.ok_or_else(|| {
                    self.kms(KmsError::MissingField {
                        operation: crate::KmsOperation::GenerateDataKey,
                        key_id: self.key_id.clone(),
                        field: "Plaintext",
                    })
                })?;
                let key = DataKey::new(plaintext.to_vec());
                let edk = EncryptedDataKey::new(PROVIDER_ID, w.key_arn, w.ciphertext);
                Ok(m.clone()
                    .with_data_key(key)
                    .map_err(|r| self.error(r))?
                    .with_encrypted_data_key(edk))
            }
            Some(key) => {
                let w = self
                    .caller
                    .encrypt(&self.identifier, &self.key_id, key.as_bytes(), ec)
                    .await
                    .map_err(|e| self.kms(e))?;
                let edk = EncryptedDataKey::new(PROVIDER_ID, w.key_arn, w.ciphertext);
                Ok(m.clone().with_encrypted_data_key(edk))
            }
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
        if self.identifier.key_arn().is_none() {
            return Err(self.kms(KmsError::DecryptNeedsKeyArn {
                key_id: self.key_id.clone(),
                kind: self.identifier.kind(),
            }));
        }
        let len = m.suite().data_key_len();
        let mut reasons = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            let Some(info) = kms_provider_info(index, edk, PROVIDER_ID).map_err(|e| self.kms(e))?
            else {
                continue;
            };
            let matches = match self.matching {
                Matching::Exact => info == self.key_id,
                Matching::Mrk => mrk_match_for_decrypt(&self.key_id, info),
            };
            if !matches {
                reasons.push(KmsError::OtherKey {
                    index,
                    key_arn: info.to_owned(),
                });
                continue;
            }
            match self
                .caller
                .decrypt(
                    &self.key_id,
                    &edk.ciphertext,
                    Some(m.encryption_context()),
                    None,
                    len,
                )
                .await
            {
                Ok(u) => return set_data_key(m, u.plaintext).map_err(|r| self.error(r)),
                Err(e @ KmsError::NoTokioRuntime { .. }) => return Err(self.kms(e)),
                Err(e) => reasons.push(e),
            }
        }
        Err(self.kms(KmsError::NothingDecrypted {
            edk_count: edks.len(),
            reasons,
        }))
    }
}

/// For an EDK with provider id `provider_id`, its provider info as a key ARN string;
/// `Ok(None)` for other providers; an error (decryption fails outright, per the spec) when
/// the provider info is not a key ARN.
pub(crate) fn kms_provider_info<'a>(
    index: usize,
    edk: &'a EncryptedDataKey,
    provider_id: &str,
) -> Result<Option<&'a str>, KmsError> {
    if edk.provider_id != provider_id {
        return Ok(None);
    }
    let malformed = |reason| KmsError::MalformedProviderInfo {
        index,
        provider_id: edk.provider_id.clone(),
        provider_info: String::from_utf8_lossy(&edk.provider_info).into_owned(),
        reason,
    };
    let info = core::str::from_utf8(&edk.provider_info)
        .map_err(|_| malformed(crate::arn::ArnError::NotArn))?;
    KmsArn::parse_key_arn(info).map_err(malformed)?;
    Ok(Some(info))
}

pub(crate) fn set_data_key(
    m: &DecryptionMaterials,
    plaintext: Zeroizing<Vec<u8>>,
) -> Result<DecryptionMaterials, KeyringFailure> {
    m.clone().with_data_key(DataKey::new(plaintext.to_vec()))
}

macro_rules! single_keyring {
    ($(#[$doc:meta])* $name:ident, $matching:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Single);

        impl $name {
            /// A keyring for the KMS key `key_id` (key ARN, alias ARN, alias name or bare key
            /// id), calling KMS through `client`. Decrypting needs a key ARN.
            pub fn new(key_id: impl Into<String>, client: Client) -> Result<Self, KeyringError> {
                Single::new(key_id.into(), client, $matching).map(Self)
            }

            /// Send these grant tokens (at most 10) on every KMS call.
            pub fn with_grant_tokens(
                self,
                tokens: impl IntoIterator<Item = impl Into<String>>,
            ) -> Result<Self, KeyringError> {
                self.0
                    .with_grant_tokens(tokens.into_iter().map(Into::into).collect())
                    .map(Self)
            }

            /// The configured key identifier.
            pub fn key_id(&self) -> &str {
                &self.0.key_id
            }

            /// The grant tokens sent on every call.
            pub fn grant_tokens(&self) -> &[String] {
                &self.0.caller.grant_tokens
            }
        }

        #[async_trait]
        impl Keyring for $name {
            async fn on_encrypt(
                &self,
                materials: &EncryptionMaterials,
            ) -> Result<EncryptionMaterials, KeyringError> {
                self.0.on_encrypt(materials).await
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
                    .field("key_id", &self.0.key_id)
                    .field("grant_tokens", &self.0.caller.grant_tokens.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

single_keyring!(
    /// The AWS KMS keyring: one symmetric KMS key.
    ///
    /// * Encrypt: `GenerateDataKey` when the materials hold no data key, `Encrypt` when they
    ///   do; the EDK has provider id `aws-kms` and the key ARN KMS returned as provider info.
    /// * Decrypt: only EDKs whose provider info is exactly the configured key ARN, with
    ///   `Decrypt` naming that key; the answer must name the same key.
    ///
    /// Grant tokens and the materials' full encryption context go on every call.
    KmsKeyring,
    Matching::Exact
);

single_keyring!(
    /// The AWS KMS multi-Region-key-aware keyring.
    ///
    /// Like [`KmsKeyring`], but on decrypt an EDK made with the same multi-Region key in
    /// another region matches too (only the region may differ), and `Decrypt` names the
    /// configured key, so a replica in this client's region unwraps a data key wrapped
    /// elsewhere.
    KmsMrkKeyring,
    Matching::Mrk
);
