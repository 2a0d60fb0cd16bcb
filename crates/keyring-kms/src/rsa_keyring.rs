//! The AWS KMS RSA keyring (spec `aws-kms-rsa-keyring.md`): an asymmetric KMS key whose
//! public half wraps data keys locally (RSA-OAEP, no KMS call) and whose private half
//! unwraps them through KMS `Decrypt`.
//!
//! The wrapped plaintext is `SHA-384(serialized encryption context) ‖ data key`, which binds
//! the data key to the context, since KMS takes no encryption context for asymmetric keys.
//! Only unsigned algorithm suites are allowed.

use crate::arn::{mrk_match_for_decrypt, KmsArn};
use crate::calls::KmsCaller;
use crate::error::KmsError;
use crate::keyring::{check_grant_tokens, kms_provider_info};
use crate::RSA_PROVIDER_ID;
use aws_sdk_kms::types::EncryptionAlgorithmSpec;
use aws_sdk_kms::Client;
use esdk_core::crypto::{provider, HashAlgorithm};
use esdk_core::{
    async_trait, context, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext,
    EncryptionMaterials, Keyring, KeyringError, KeyringFailure,
};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::PublicKey as RsaPublicKey;
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of the SHA-384 encryption-context digest prefixed to the data key.
const DIGEST_LEN: usize = 48;
/// The smallest modulus accepted, in bits.
pub const MIN_MODULUS_BITS: u32 = 2048;

/// The RSA-OAEP variant (OAEP hash = MGF1 hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KmsRsaAlgorithm {
    /// `RSAES_OAEP_SHA_1`.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`.
    RsaesOaepSha256,
}

impl KmsRsaAlgorithm {
    fn spec(self) -> EncryptionAlgorithmSpec {
        match self {
            Self::RsaesOaepSha1 => EncryptionAlgorithmSpec::RsaesOaepSha1,
            Self::RsaesOaepSha256 => EncryptionAlgorithmSpec::RsaesOaepSha256,
        }
    }

    /// The KMS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        }
    }
}

/// The AWS KMS RSA keyring.
///
/// Encrypt needs the public key ([`with_public_key_der`](Self::with_public_key_der),
/// [`with_public_key_pem`](Self::with_public_key_pem), or [`from_kms`](Self::from_kms));
/// decrypt needs a KMS client ([`with_client`](Self::with_client)). The key must be given as
/// a key ARN: it is written into each EDK and matched (MRK-aware) on decrypt.
#[derive(Clone)]
pub struct KmsRsaKeyring {
    key_id: String,
    algorithm: KmsRsaAlgorithm,
    public_key: Option<RsaPublicKey>,
    client: Option<Client>,
    grant_tokens: Vec<String>,
    description: String,
}

impl KmsRsaKeyring {
    /// A keyring for the asymmetric KMS key `key_arn` with `algorithm`, with neither public
    /// key nor client yet.
    pub fn new(
        key_arn: impl Into<String>,
        algorithm: KmsRsaAlgorithm,
    ) -> Result<Self, KeyringError> {
        let key_id = key_arn.into();
        let description = format!("AWS KMS RSA keyring (key {key_id}, {})", algorithm.as_str());
        KmsArn::parse_key_arn(&key_id).map_err(|e| {
            KeyringError::new(
                description.clone(),
                KeyringFailure::Config(format!(
                    "{key_id:?} is not a KMS key ARN ({e}); the KMS RSA keyring records its key \
                     in each encrypted data key and needs the key ARN"
                )),
            )
        })?;
        Ok(Self {
            key_id,
            algorithm,
            public_key: None,
            client: None,
            grant_tokens: Vec::new(),
            description,
        })
    }

    /// Build a complete keyring: fetch the public key with KMS `GetPublicKey` and keep
    /// `client` for decrypting. Fails if KMS says the key does not support `algorithm`.
    pub async fn from_kms(
        key_arn: impl Into<String>,
        algorithm: KmsRsaAlgorithm,
        client: Client,
    ) -> Result<Self, KeyringError> {
        let this = Self::new(key_arn, algorithm)?.with_client(client.clone());
        let caller = KmsCaller {
            client,
            grant_tokens: this.grant_tokens.clone(),
        };
        let (der, algorithms) = caller
            .get_public_key(&this.key_id)
            .await
            .map_err(|e| this.error(e.into_failure()))?;
        if !algorithms.is_empty() && !algorithms.contains(&algorithm.spec()) {
            return Err(this.error(KeyringFailure::Config(format!(
                "KMS key {} does not support {} (it supports {:?})",
                this.key_id,
                algorithm.as_str(),
                algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>()
            ))));
        }
        this.with_public_key_der(&der)
    }

    /// The public key as DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns).
    pub fn with_public_key_der(self, der: &[u8]) -> Result<Self, KeyringError> {
        let key = RsaPublicKey::from_public_key_der(der).map_err(|e| {
            self.error(KeyringFailure::Config(format!(
                "the public key is not a DER RSA SubjectPublicKeyInfo: {e}"
            )))
        })?;
        self.set_public_key(key)
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn with_public_key_pem(self, pem: &str) -> Result<Self, KeyringError> {
        let key = RsaPublicKey::from_public_key_pem(pem).map_err(|e| {
            self.error(KeyringFailure::Config(format!(
                "the public key is not a PEM RSA public key: {e}"
            )))
        })?;
        self.set_public_key(key)
    }

    fn set_public_key(mut self, key: RsaPublicKey) -> Result<Self, KeyringError> {
        let bits = key.n().bit_width();
        if bits < MIN_MODULUS_BITS {
            return Err(self.error(KeyringFailure::Config(format!(
                "the RSA modulus is {bits} bits; at least {MIN_MODULUS_BITS} are required"
            ))));
        }
        self.public_key = Some(key);
        Ok(self)
    }

    /// The KMS client used to decrypt.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Send these grant tokens (at most 10) on every KMS call.
    pub fn with_grant_tokens(
        mut self,
        tokens: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, KeyringError> {
        let tokens: Vec<String> = tokens.into_iter().map(Into::into).collect();
        check_grant_tokens(&tokens).map_err(|e| self.error(KeyringFailure::Config(e)))?;
        self.grant_tokens = tokens;
        Ok(self)
    }

    /// The key ARN.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    fn check_unsigned(&self, suite: esdk_core::AlgorithmSuite) -> Result<(), KeyringError> {
        if suite.is_signed() {
            return Err(self.error(KeyringFailure::Unsupported(format!(
                "the KMS RSA keyring only supports unsigned algorithm suites; {suite} is signed \
                 (use e.g. 0x0478, AES-256-GCM with key commitment and no signature)"
            ))));
        }
        Ok(())
    }

    fn context_digest(&self, ec: &EncryptionContext) -> Result<Vec<u8>, KeyringError> {
        let bytes = context::serialize(ec)
            .map_err(|e| self.error(KeyringFailure::Materials(e.to_string())))?;
        let mut h = provider().hasher(HashAlgorithm::Sha384);
        h.update(&bytes);
        Ok(h.finish())
    }

    fn oaep_encrypt(&self, key: &RsaPublicKey, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        let out = match self.algorithm {
            KmsRsaAlgorithm::RsaesOaepSha1 => key.oaep_encrypt::<sha1::Sha1>(plaintext),
            KmsRsaAlgorithm::RsaesOaepSha256 => key.oaep_encrypt::<rsa::sha2::Sha256>(plaintext),
        };
        out.map_err(|e| KmsError::LocalEncrypt {
            key_id: self.key_id.clone(),
            detail: e.to_string(),
        })
    }
}

#[async_trait]
impl Keyring for KmsRsaKeyring {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.check_unsigned(m.suite())?;
        let key = self.public_key.as_ref().ok_or_else(|| {
            self.error(KeyringFailure::Unsupported(
                "this KMS RSA keyring has no public key, so it cannot encrypt (give one with \
                 with_public_key_der/pem or build it with from_kms)"
                    .into(),
            ))
        })?;
        let digest = self.context_digest(m.encryption_context())?;
        let m = match m.data_key() {
            Some(_) => m.clone(),
            None => {
                let k = DataKey::generate(m.suite())
                    .map_err(|e| self.error(KeyringFailure::WrapFailed(e.to_string())))?;
                m.clone().with_data_key(k).map_err(|r| self.error(r))?
            }
        };
        let data_key = m
            .data_key()
            .ok_or_else(|| self.error(KeyringFailure::NoDataKey))?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(DIGEST_LEN + data_key.len()));
        plaintext.extend_from_slice(&digest);
        plaintext.extend_from_slice(data_key.as_bytes());
        let ciphertext = self
            .oaep_encrypt(key, &plaintext)
            .map_err(|e| self.error(e.into_failure()))?;
        let edk = EncryptedDataKey::new(RSA_PROVIDER_ID, self.key_id.clone(), ciphertext);
        Ok(m.with_encrypted_data_key(edk))
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        self.check_unsigned(m.suite())?;
        if m.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let client = self.client.clone().ok_or_else(|| {
            self.error(KeyringFailure::Unsupported(
                "this KMS RSA keyring has no KMS client, so it cannot decrypt (give one with \
                 with_client)"
                    .into(),
            ))
        })?;
        let caller = KmsCaller {
            client,
            grant_tokens: self.grant_tokens.clone(),
        };
        let digest = self.context_digest(m.encryption_context())?;
        let len = m.suite().data_key_len();
        let mut reasons = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            let Some(info) = kms_provider_info(index, edk, RSA_PROVIDER_ID)
                .map_err(|e| self.error(e.into_failure()))?
            else {
                continue;
            };
            if !mrk_match_for_decrypt(&self.key_id, info) {
                reasons.push(KmsError::OtherKey {
                    index,
                    key_arn: info.to_owned(),
                });
                continue;
            }
            let unwrapped = match caller
                .decrypt(
                    &self.key_id,
                    &edk.ciphertext,
                    None,
                    Some(self.algorithm.spec()),
                    DIGEST_LEN + len,
                )
                .await
            {
                Ok(u) => u,
                Err(e @ KmsError::NoTokioRuntime { .. }) => {
                    return Err(self.error(e.into_failure()))
                }
                Err(e) => {
                    reasons.push(e);
                    continue;
                }
            };
            let (got_digest, key) = unwrapped.plaintext.split_at(DIGEST_LEN);
            if !bool::from(got_digest.ct_eq(&digest)) {
                reasons.push(KmsError::EncryptionContextMismatch {
                    key_id: self.key_id.clone(),
                });
                continue;
            }
            return m
                .clone()
                .with_data_key(DataKey::new(key.to_vec()))
                .map_err(|r| self.error(r));
        }
        Err(self.error(
            KmsError::NothingDecrypted {
                edk_count: edks.len(),
                reasons,
            }
            .into_failure(),
        ))
    }
}

impl fmt::Debug for KmsRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsRsaKeyring")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("has_public_key", &self.public_key.is_some())
            .field("has_client", &self.client.is_some())
            .field("grant_tokens", &self.grant_tokens.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::Oaep;

    const ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn key_must_be_a_key_arn() {
        for bad in [
            "alias/x",
            "arn:aws:kms:us-west-2:111122223333:alias/x",
            "1234abcd",
        ] {
            let err = KmsRsaKeyring::new(bad, KmsRsaAlgorithm::RsaesOaepSha256).unwrap_err();
            assert!(
                matches!(err.reason, KeyringFailure::Config(_)),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(KmsRsaKeyring::new(ARN, KmsRsaAlgorithm::RsaesOaepSha1).is_ok());
    }

    #[test]
    fn rejects_garbage_public_keys() {
        let k = KmsRsaKeyring::new(ARN, KmsRsaAlgorithm::RsaesOaepSha1).unwrap();
        assert!(k.clone().with_public_key_der(b"not der").is_err());
        assert!(k
            .with_public_key_pem("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
            .is_err());
    }

    #[test]
    fn rejects_small_moduli() {
        let k = KmsRsaKeyring::new(ARN, KmsRsaAlgorithm::RsaesOaepSha1).unwrap();
        let err = k
            .with_public_key_pem(include_str!("../testdata/rsa-1024-public.pem"))
            .unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    /// The wrapped blob is RSA-OAEP(SHA-384(serialized context) ‖ data key), decryptable by
    /// the private key with the configured hash; checked locally, without KMS.
    #[test]
    fn local_wrapping_format() {
        use rsa::pkcs8::DecodePrivateKey;
        let private =
            rsa::PrivateKey::from_pkcs8_pem(include_str!("../testdata/rsa-2048-private.pem"))
                .unwrap();
        let public = include_str!("../testdata/rsa-2048-public.pem");
        let suite = esdk_core::AlgorithmSuite::from_id(0x0478).unwrap();
        let ec: EncryptionContext = [("purpose".to_owned(), "test".to_owned())].into();
        let mut expected_digest = provider().hasher(HashAlgorithm::Sha384);
        expected_digest.update(&context::serialize(&ec).unwrap());
        let expected_digest = expected_digest.finish();

        for alg in [
            KmsRsaAlgorithm::RsaesOaepSha1,
            KmsRsaAlgorithm::RsaesOaepSha256,
        ] {
            let k = KmsRsaKeyring::new(ARN, alg)
                .unwrap()
                .with_public_key_pem(public)
                .unwrap();
            let m = EncryptionMaterials::new(suite, ec.clone());
            let out = pollster_block(k.on_encrypt(&m)).unwrap();
            let edk = &out.encrypted_data_keys()[0];
            assert_eq!(edk.provider_id, "aws-kms-rsa");
            assert_eq!(edk.provider_info, ARN.as_bytes());
            assert_eq!(edk.ciphertext.len(), 256);
            let plain = match alg {
                KmsRsaAlgorithm::RsaesOaepSha1 => {
                    private.decrypt(Oaep::<sha1::Sha1>::new(), &edk.ciphertext)
                }
                KmsRsaAlgorithm::RsaesOaepSha256 => {
                    private.decrypt(Oaep::<rsa::sha2::Sha256>::new(), &edk.ciphertext)
                }
            }
            .unwrap();
            assert_eq!(&plain[..48], &expected_digest[..]);
            assert_eq!(&plain[48..], out.data_key().unwrap().as_bytes());
            // The other hash does not open it.
            let wrong = match alg {
                KmsRsaAlgorithm::RsaesOaepSha1 => {
                    private.decrypt(Oaep::<rsa::sha2::Sha256>::new(), &edk.ciphertext)
                }
                KmsRsaAlgorithm::RsaesOaepSha256 => {
                    private.decrypt(Oaep::<sha1::Sha1>::new(), &edk.ciphertext)
                }
            };
            assert!(wrong.is_err());
        }
    }

    #[test]
    fn signed_suites_and_missing_parts_are_refused() {
        let k = KmsRsaKeyring::new(ARN, KmsRsaAlgorithm::RsaesOaepSha256).unwrap();
        let signed = esdk_core::AlgorithmSuite::from_id(0x0578).unwrap();
        let unsigned = esdk_core::AlgorithmSuite::from_id(0x0478).unwrap();
        let err =
            pollster_block(k.on_encrypt(&EncryptionMaterials::new(signed, Default::default())))
                .unwrap_err();
        assert!(err.to_string().contains("unsigned"), "{err}");
        let err =
            pollster_block(k.on_encrypt(&EncryptionMaterials::new(unsigned, Default::default())))
                .unwrap_err();
        assert!(err.to_string().contains("no public key"), "{err}");
        let err = pollster_block(
            k.on_decrypt(&DecryptionMaterials::new(unsigned, Default::default()), &[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no KMS client"), "{err}");
    }

    /// Drive a future that never waits on I/O (no KMS call happens in these tests).
    fn pollster_block<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("the future completed without I/O")
    }
}
