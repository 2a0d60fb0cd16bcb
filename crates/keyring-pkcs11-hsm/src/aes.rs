//! AES mode: an AES key object in the token wraps data keys with `CKM_AES_GCM`, and the EDKs
//! are written in the raw AES keyring's wire format.
//!
//! * provider id = the key namespace;
//! * provider info = key name ‖ tag length in bits (`00 00 00 80`) ‖ IV length
//!   (`00 00 00 0C`) ‖ the 12-byte IV;
//! * ciphertext = AES-GCM ciphertext of the data key ‖ 16-byte tag;
//! * AAD = the serialized encryption context of the materials.
//!
//! The IV is chosen here (system or token RNG, see
//! [`RandomSource`](crate::RandomSource)) and passed to the token; SoftHSM2 neither
//! generates nor changes it. A raw AES keyring holding the same key bytes, in this SDK or an
//! official one, unwraps these EDKs, and this keyring unwraps theirs.

use crate::error::{is_mechanism_refusal, recovery_for, Pkcs11Error, Recovery};
use crate::object::{self, KeyRef};
use crate::token::{run_blocking, OpError, TokenInner};
use crate::Pkcs11Token;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::types::Ulong;
use esdk_core::{
    async_trait, context, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials,
    Keyring, KeyringError, KeyringFailure,
};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

const TAG_BITS: u32 = 128;
const TAG_LEN: usize = 16;
const IV_LEN: usize = 12;
/// [`IV_LEN`] as written in the provider info.
const IV_LEN_FIELD: u32 = 12;
const MECHANISM: &str = "CKM_AES_GCM (12-byte IV, 128-bit tag)";

/// Which AES key in the token, and the namespace and name written into EDKs.
#[derive(Debug, Clone)]
pub struct AesKeyConfig {
    namespace: String,
    name: String,
    label: String,
    id: Option<Vec<u8>>,
}

impl AesKeyConfig {
    /// The AES key object labelled `key_label`; EDKs carry provider id `namespace` and key
    /// name `name` (use the raw AES keyring's namespace and name to be read by it).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        key_label: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            label: key_label.into(),
            id: None,
        }
    }

    /// Also match the object's `CKA_ID` (when several objects share a label).
    pub fn key_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// A keyring whose AES wrapping key never leaves the token. See the [module docs](self).
#[derive(Clone)]
pub struct HsmAesKeyring {
    inner: Arc<AesInner>,
}

struct AesInner {
    token: Arc<TokenInner>,
    namespace: String,
    name: String,
    key: KeyRef,
    key_bits: usize,
    can_encrypt: bool,
    can_decrypt: bool,
    description: String,
}

/// An EDK addressed to this keyring, ready for the token.
struct Candidate {
    index: usize,
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
}

pub(crate) fn check_namespace_and_name(namespace: &str, name: &str) -> Result<(), Pkcs11Error> {
    if namespace.starts_with("aws-kms") {
        return Err(Pkcs11Error::Config(
            "key namespaces starting with \"aws-kms\" are reserved for AWS KMS keyrings".into(),
        ));
    }
    if namespace.len() > usize::from(u16::MAX) || name.len() > usize::from(u16::MAX) - 20 {
        return Err(Pkcs11Error::Config(
            "namespace or name too long for the wire format".into(),
        ));
    }
    Ok(())
}

fn refused(token: &TokenInner, mechanism: &str, e: &cryptoki::error::Error) -> Pkcs11Error {
    Pkcs11Error::MechanismUnsupported {
        token: token.label().to_owned(),
        mechanism: mechanism.to_owned(),
        detail: format!("the token refused it: {e}"),
    }
}

fn gcm_params<'a>(iv: &'a mut [u8; IV_LEN], aad: &'a [u8]) -> Result<GcmParams<'a>, OpError> {
    GcmParams::new(iv, aad, Ulong::from(u64::from(TAG_BITS)))
        .map_err(|e| OpError::Fail(Pkcs11Error::Config(format!("GCM parameters: {e}"))))
}

impl HsmAesKeyring {
    /// Find the key in the token, check that it is an AES key usable for encryption and/or
    /// decryption and that the token does AES-GCM with a caller-chosen IV. Blocking; from
    /// async code use [`new_async`](Self::new_async).
    pub fn new(token: &Pkcs11Token, config: AesKeyConfig) -> Result<Self, Pkcs11Error> {
        check_namespace_and_name(&config.namespace, &config.name)?;
        let inner = token.inner.clone();
        inner.require_mechanism(MechanismType::AES_GCM, MECHANISM)?;
        let key = KeyRef::new(
            config.label.clone(),
            config.id.clone(),
            ObjectClass::SECRET_KEY,
            KeyType::AES,
            "AES secret key",
        );
        let unusable = |reason: String| Pkcs11Error::KeyUnusable {
            token: inner.label().to_owned(),
            label: config.label.clone(),
            reason,
        };
        let (key_bits, can_encrypt, can_decrypt) = inner.run(|s| {
            let handle = inner.handle(s, &key)?;
            let attrs = object::attributes(
                &s.session,
                handle,
                &[
                    AttributeType::ValueLen,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                ],
            )?;
            let (mut len, mut enc, mut dec) = (None, true, true);
            for attr in attrs {
                match attr {
                    Attribute::ValueLen(l) => len = Some(u64::from(l)),
                    Attribute::Encrypt(b) => enc = b,
                    Attribute::Decrypt(b) => dec = b,
                    _ => {}
                }
            }
            Ok((len, enc, dec))
        })?;
        let key_bits = match key_bits {
            Some(l @ (16 | 24 | 32)) => usize::try_from(l * 8).unwrap_or(256),
            Some(l) => {
                return Err(unusable(format!(
                    "CKA_VALUE_LEN is {l} bytes, not 16, 24 or 32"
                )))
            }
            None => return Err(unusable("the token does not report CKA_VALUE_LEN".into())),
        };
        if !can_encrypt && !can_decrypt {
            return Err(unusable(
                "both CKA_ENCRYPT and CKA_DECRYPT are false".into(),
            ));
        }
        let description = format!(
            "PKCS#11 AES keyring (namespace {:?}, name {:?}, token {:?}, key label {:?})",
            config.namespace,
            config.name,
            inner.label(),
            config.label
        );
        let keyring = Self {
            inner: Arc::new(AesInner {
                token: inner,
                namespace: config.namespace,
                name: config.name,
                key,
                key_bits,
                can_encrypt,
                can_decrypt,
                description,
            }),
        };
        if can_encrypt && can_decrypt {
            keyring.inner.self_test()?;
        }
        Ok(keyring)
    }

    /// [`new`](Self::new) on the blocking thread pool when called inside a tokio runtime.
    pub async fn new_async(token: &Pkcs11Token, config: AesKeyConfig) -> Result<Self, Pkcs11Error> {
        let token = token.clone();
        run_blocking(move || Self::new(&token, config)).await
    }

    /// The key namespace (EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The key name written into EDKs.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The AES key size in bits, as the token reports it.
    pub fn key_bits(&self) -> usize {
        self.inner.key_bits
    }
}

impl AesInner {
    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    fn provider_info(&self, iv: &[u8; IV_LEN]) -> Vec<u8> {
        let mut info = Vec::with_capacity(self.name.len() + 8 + IV_LEN);
        info.extend_from_slice(self.name.as_bytes());
        info.extend_from_slice(&TAG_BITS.to_be_bytes());
        info.extend_from_slice(&IV_LEN_FIELD.to_be_bytes());
        info.extend_from_slice(iv);
        info
    }

    fn parse_provider_info(&self, info: &[u8]) -> Option<[u8; IV_LEN]> {
        let rest = info.strip_prefix(self.name.as_bytes())?;
        if rest.len() != 8 + IV_LEN
            || rest[..4] != TAG_BITS.to_be_bytes()
            || rest[4..8] != IV_LEN_FIELD.to_be_bytes()
        {
            return None;
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&rest[8..]);
        Some(iv)
    }

    /// Encrypt and decrypt a throw-away block so that an unusable mechanism shows at
    /// construction, not at the first message.
    fn self_test(&self) -> Result<(), Pkcs11Error> {
        let probe = [0x5Au8; 32];
        let (iv, wrapped) = self.seal(&probe, b"keyring-pkcs11-hsm self-test")?;
        let opened = self.token.run(|s| {
            let handle = self.token.handle(s, &self.key)?;
            let mut iv = iv;
            let params = gcm_params(&mut iv, b"keyring-pkcs11-hsm self-test")?;
            s.session
                .decrypt(&Mechanism::AesGcm(params), handle, &wrapped)
                .map(Zeroizing::new)
                .map_err(|e| self.ck_error(e, "unwrapping (C_Decrypt, CKM_AES_GCM)"))
        })?;
        if opened.as_slice() != probe {
            return Err(Pkcs11Error::MechanismUnsupported {
                token: self.token.label().to_owned(),
                mechanism: MECHANISM.into(),
                detail: "a self-test block did not decrypt to itself".into(),
            });
        }
        Ok(())
    }

    fn ck_error(&self, e: cryptoki::error::Error, what: &'static str) -> OpError {
        if is_mechanism_refusal(&e) {
            OpError::Fail(refused(&self.token, MECHANISM, &e))
        } else {
            OpError::Ck(e, what)
        }
    }

    /// AES-GCM in the token with a fresh IV: (IV, ciphertext ‖ tag).
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<([u8; IV_LEN], Vec<u8>), Pkcs11Error> {
        self.token.run(|s| {
            let handle = self.token.handle(s, &self.key)?;
            let mut iv = [0u8; IV_LEN];
            self.token
                .fill_random(&s.session, &mut iv, crate::PURPOSE_IV)?;
            let chosen = iv;
            let params = gcm_params(&mut iv, aad)?;
            let wrapped = s
                .session
                .encrypt(&Mechanism::AesGcm(params), handle, plaintext)
                .map_err(|e| self.ck_error(e, "wrapping the data key (C_Encrypt, CKM_AES_GCM)"))?;
            if wrapped.len() != plaintext.len() + TAG_LEN || iv != chosen {
                return Err(OpError::Fail(Pkcs11Error::MechanismUnsupported {
                    token: self.token.label().to_owned(),
                    mechanism: MECHANISM.into(),
                    detail: "the token returned output of an unexpected length or changed the IV"
                        .into(),
                }));
            }
            Ok((chosen, wrapped))
        })
    }

    /// A data key (given, or generated from the configured source) and its EDK parts.
    fn wrap(
        &self,
        existing: Option<DataKey>,
        key_len: usize,
        aad: &[u8],
    ) -> Result<(DataKey, [u8; IV_LEN], Vec<u8>), Pkcs11Error> {
        let data_key = match existing {
            Some(key) => key,
            None => {
                let mut buf = Zeroizing::new(vec![0u8; key_len]);
                self.token.random(&mut buf, crate::PURPOSE_DATA_KEY)?;
                DataKey::new(std::mem::take(&mut *buf))
            }
        };
        let (iv, wrapped) = self.seal(data_key.as_bytes(), aad)?;
        Ok((data_key, iv, wrapped))
    }

    /// Try the candidates in order; the first the token authenticates wins.
    fn unwrap(
        &self,
        candidates: &[Candidate],
        aad: &[u8],
        key_len: usize,
    ) -> Result<(Option<DataKey>, Vec<String>), Pkcs11Error> {
        self.token.run(|s| {
            let handle = self.token.handle(s, &self.key)?;
            let mut failures = Vec::new();
            for c in candidates {
                let mut iv = c.iv;
                let params = gcm_params(&mut iv, aad)?;
                match s
                    .session
                    .decrypt(&Mechanism::AesGcm(params), handle, &c.ciphertext)
                {
                    Ok(plain) => {
                        let mut plain = Zeroizing::new(plain);
                        if plain.len() == key_len {
                            return Ok((Some(DataKey::new(std::mem::take(&mut *plain))), failures));
                        }
                        failures.push(format!(
                            "EDK {}: unwrapped to {} bytes, expected {key_len}",
                            c.index,
                            plain.len()
                        ));
                    }
                    Err(e) if recovery_for(&e) != Recovery::None || is_mechanism_refusal(&e) => {
                        return Err(self.ck_error(e, "unwrapping (C_Decrypt, CKM_AES_GCM)"));
                    }
                    // Whatever code the token chose (SoftHSM2 says CKR_GENERAL_ERROR for a bad
                    // tag), the EDK did not authenticate under this key and context.
                    Err(e) => failures.push(format!(
                        "EDK {}: the token did not authenticate it (tampered, another key, or \
                         another encryption context; token said: {e})",
                        c.index
                    )),
                }
            }
            Ok((None, failures))
        })
    }
}

impl fmt::Debug for HsmAesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmAesKeyring")
            .field("namespace", &self.inner.namespace)
            .field("name", &self.inner.name)
            .field("token", &self.inner.token.label())
            .field("key_label", &self.inner.key.label)
            .field("key_bits", &self.inner.key_bits)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Keyring for HsmAesKeyring {
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let inner = &self.inner;
        if !inner.can_encrypt {
            return Err(inner.error(KeyringFailure::Unsupported(
                "the key's CKA_ENCRYPT is false: this keyring can only decrypt".into(),
            )));
        }
        let aad = context::serialize(materials.encryption_context())
            .map_err(|e| inner.error(KeyringFailure::WrapFailed(e.to_string())))?;
        let existing = materials.data_key().cloned();
        let key_len = materials.suite().data_key_len();
        let worker = inner.clone();
        let (data_key, iv, wrapped) = run_blocking(move || worker.wrap(existing, key_len, &aad))
            .await
            .map_err(|e| e.into_keyring_error(&inner.description))?;
        let materials = match materials.data_key() {
            Some(_) => materials.clone(),
            None => materials
                .clone()
                .with_data_key(data_key)
                .map_err(|r| inner.error(r))?,
        };
        let edk = EncryptedDataKey::new(inner.namespace.clone(), inner.provider_info(&iv), wrapped);
        Ok(materials.with_encrypted_data_key(edk))
    }

    async fn on_decrypt(
        &self,
        materials: &DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let inner = &self.inner;
        if materials.data_key().is_some() {
            return Err(inner.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let aad = context::serialize(materials.encryption_context())
            .map_err(|e| inner.error(KeyringFailure::Materials(e.to_string())))?;
        let key_len = materials.suite().data_key_len();
        let mut failures = Vec::new();
        let mut candidates = Vec::new();
        for (index, edk) in encrypted_data_keys.iter().enumerate() {
            if edk.provider_id != inner.namespace {
                continue;
            }
            let Some(iv) = inner.parse_provider_info(&edk.provider_info) else {
                continue;
            };
            if edk.ciphertext.len() != key_len + TAG_LEN {
                failures.push(format!(
                    "EDK {index}: wrapped key is {} bytes, expected {}",
                    edk.ciphertext.len(),
                    key_len + TAG_LEN
                ));
                continue;
            }
            candidates.push(Candidate {
                index,
                iv,
                ciphertext: edk.ciphertext.clone(),
            });
        }
        if candidates.is_empty() {
            return Err(inner.error(if failures.is_empty() {
                KeyringFailure::NoMatchingKey(encrypted_data_keys.len())
            } else {
                KeyringFailure::UnwrapFailed(failures)
            }));
        }
        if !inner.can_decrypt {
            return Err(inner.error(KeyringFailure::Unsupported(
                "the key's CKA_DECRYPT is false: this keyring can only encrypt".into(),
            )));
        }
        let worker = inner.clone();
        let (key, token_failures) = run_blocking(move || worker.unwrap(&candidates, &aad, key_len))
            .await
            .map_err(|e| e.into_keyring_error(&inner.description))?;
        match key {
            Some(key) => materials
                .clone()
                .with_data_key(key)
                .map_err(|r| inner.error(r)),
            None => {
                failures.extend(token_failures);
                Err(inner.error(KeyringFailure::UnwrapFailed(failures)))
            }
        }
    }
}
