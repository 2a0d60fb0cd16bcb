//! RSA mode: the private key stays in the token and unwraps with `CKM_RSA_PKCS_OAEP` or
//! `CKM_RSA_PKCS`; data keys are wrapped in software with the public key (read from the
//! token's public key object, or given as an X.509 SubjectPublicKeyInfo). EDKs use the raw
//! RSA keyring's wire format: provider id = namespace, provider info = key name, ciphertext
//! = the RSA output. RSA carries no AAD, so the encryption context is not bound to the EDK
//! (as with every raw RSA keyring).
//!
//! Tokens do not all offer every OAEP hash: SoftHSM2 2.6 implements OAEP with SHA-1 only and
//! refuses SHA-2 parameters (`CKR_ARGUMENTS_BAD` at `C_DecryptInit`). Construction tries the
//! configured padding once in the token and reports
//! [`Pkcs11Error::MechanismUnsupported`] naming the padding.
//!
//! The key must be large enough for the padding to carry the longest data key of any
//! algorithm suite ([`MAX_DATA_KEY_LEN`], 32 bytes): OAEP costs twice the hash length plus 2
//! bytes of the modulus, PKCS#1 v1.5 11 bytes (see [`RsaPadding::max_plaintext_len`]).
//! Construction checks every modulus it learns (the token's private and public key objects,
//! a public key given in software) and refuses one that is too small with
//! [`Pkcs11Error::KeyTooSmall`] before it tries the token: e.g. a 512-bit key with
//! OAEP-SHA-1 (at most 22 bytes), or a 1024-bit key with OAEP-SHA-384 (30 bytes) or
//! OAEP-SHA-512 (none). Only a decrypt-only keyring whose private key object hides its
//! `CKA_MODULUS` cannot be checked. Keys under 1024 bits that the padding could serve are
//! still refused, as [`Pkcs11Error::PublicKey`]: the `rsa` crate that wraps does not take
//! them.
//!
//! PKCS#1 v1.5 is offered for compatibility with existing messages; a token that unwraps it
//! answers differently for well- and badly-padded inputs, the classic Bleichenbacher oracle.
//! This keyring reports every PKCS#1 v1.5 EDK that does not unwrap to a data key with the
//! same message, whether the padding was bad or the unwrapped key had the wrong length, and
//! without the token's return code; the token's own timing is outside its control. Prefer
//! OAEP for new data.

use crate::aes::check_namespace_and_name;
use crate::config::RandomSource;
use crate::error::{is_mechanism_refusal, recovery_for, Pkcs11Error, Recovery};
use crate::object::{self, KeyRef};
use crate::token::{run_blocking, OpError, TokenInner};
use crate::Pkcs11Token;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use esdk_core::{
    async_trait, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring,
    KeyringError, KeyringFailure,
};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The longest data key of any ESDK algorithm suite, in bytes. The keyring's RSA key must be
/// able to wrap it with the chosen padding (checked at construction).
pub const MAX_DATA_KEY_LEN: usize = 32;

/// The RSA padding scheme, as in the raw RSA keyring (the MGF1 hash equals the OAEP hash;
/// the OAEP label is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RsaPadding {
    /// PKCS#1 v1.5 (`CKM_RSA_PKCS`).
    Pkcs1v15,
    /// OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA-512.
    OaepSha512,
}

impl RsaPadding {
    fn mechanism_type(self) -> MechanismType {
        match self {
            Self::Pkcs1v15 => MechanismType::RSA_PKCS,
            _ => MechanismType::RSA_PKCS_OAEP,
        }
    }

    fn mechanism(self) -> Mechanism<'static> {
        let oaep = |hash, mgf| {
            Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
        };
        match self {
            Self::Pkcs1v15 => Mechanism::RsaPkcs,
            Self::OaepSha1 => oaep(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            Self::OaepSha256 => oaep(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            Self::OaepSha384 => oaep(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            Self::OaepSha512 => oaep(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        }
    }

    /// The longest plaintext, in bytes, that a key with a modulus of `modulus_len` bytes can
    /// encrypt with this padding (`None` if it cannot encrypt anything): the modulus length
    /// less 11 bytes for PKCS#1 v1.5, less twice the hash length plus 2 for OAEP.
    pub fn max_plaintext_len(self, modulus_len: usize) -> Option<usize> {
        let overhead = match self {
            Self::Pkcs1v15 => 11,
            Self::OaepSha1 => 2 * 20 + 2,
            Self::OaepSha256 => 2 * 32 + 2,
            Self::OaepSha384 => 2 * 48 + 2,
            Self::OaepSha512 => 2 * 64 + 2,
        };
        modulus_len.checked_sub(overhead)
    }

    /// The PKCS#11 mechanism and parameters, for messages.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            Self::Pkcs1v15 => "CKM_RSA_PKCS (PKCS#1 v1.5)",
            Self::OaepSha1 => "CKM_RSA_PKCS_OAEP with SHA-1 and MGF1-SHA-1",
            Self::OaepSha256 => "CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256",
            Self::OaepSha384 => "CKM_RSA_PKCS_OAEP with SHA-384 and MGF1-SHA-384",
            Self::OaepSha512 => "CKM_RSA_PKCS_OAEP with SHA-512 and MGF1-SHA-512",
        }
    }

    fn encrypt(self, key: &rsa::PublicKey, plaintext: &[u8]) -> rsa::Result<Vec<u8>> {
        match self {
            Self::Pkcs1v15 => key.pkcs1v15_encrypt(plaintext),
            Self::OaepSha1 => key.oaep_encrypt::<sha1::Sha1>(plaintext),
            Self::OaepSha256 => key.oaep_encrypt::<rsa::sha2::Sha256>(plaintext),
            Self::OaepSha384 => key.oaep_encrypt::<rsa::sha2::Sha384>(plaintext),
            Self::OaepSha512 => key.oaep_encrypt::<rsa::sha2::Sha512>(plaintext),
        }
    }
}

#[derive(Debug, Clone)]
enum PublicSource {
    /// The token's public key object with the private key's label (and id); failing that,
    /// the public components of the private key object; failing that, decrypt-only.
    Default,
    /// A public key object with this label and optional id.
    Token(String, Option<Vec<u8>>),
    /// An X.509 SubjectPublicKeyInfo, DER.
    Der(Vec<u8>),
    /// An X.509 SubjectPublicKeyInfo, PEM.
    Pem(String),
}

/// Which RSA key in the token, how to pad, and the namespace and name written into EDKs.
#[derive(Debug, Clone)]
pub struct RsaKeyConfig {
    namespace: String,
    name: String,
    padding: RsaPadding,
    private_label: Option<String>,
    private_id: Option<Vec<u8>>,
    public: PublicSource,
}

impl RsaKeyConfig {
    /// EDKs with provider id `namespace` and key name `name`, padded with `padding`. Add a
    /// private key (to decrypt) and/or a public key (to encrypt).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, padding: RsaPadding) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            padding,
            private_label: None,
            private_id: None,
            public: PublicSource::Default,
        }
    }

    /// The private key object labelled `label`. Unless a public key is configured, the
    /// public key object with the same label wraps.
    pub fn private_key_label(mut self, label: impl Into<String>) -> Self {
        self.private_label = Some(label.into());
        self
    }

    /// Also match the private (and default public) key's `CKA_ID`.
    pub fn private_key_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.private_id = Some(id.into());
        self
    }

    /// Wrap with the public key object labelled `label` (optionally with `id`).
    pub fn public_key_label(mut self, label: impl Into<String>, id: Option<Vec<u8>>) -> Self {
        self.public = PublicSource::Token(label.into(), id);
        self
    }

    /// Wrap with this X.509 SubjectPublicKeyInfo (PEM, `-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(mut self, pem: impl Into<String>) -> Self {
        self.public = PublicSource::Pem(pem.into());
        self
    }

    /// Wrap with this X.509 SubjectPublicKeyInfo (DER).
    pub fn public_key_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.public = PublicSource::Der(der.into());
        self
    }
}

/// A keyring whose RSA private key never leaves the token. See the [module docs](self).
#[derive(Clone)]
pub struct HsmRsaKeyring {
    inner: Arc<RsaInner>,
}

struct RsaInner {
    token: Arc<TokenInner>,
    namespace: String,
    name: String,
    padding: RsaPadding,
    private: Option<KeyRef>,
    public: Option<rsa::PublicKey>,
    modulus_len: usize,
    description: String,
}

struct Candidate {
    index: usize,
    ciphertext: Vec<u8>,
}

/// Big-endian bytes without leading zeros.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn public_from_parts(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey, Pkcs11Error> {
    let n = BoxedUint::from_be_slice_vartime(trim(n));
    let e = BoxedUint::from_be_slice_vartime(trim(e));
    rsa::PublicKey::new(n, e).map_err(|e| Pkcs11Error::PublicKey(e.to_string()))
}

/// How [`Pkcs11Error::KeyTooSmall`] names a public key given in software (PEM or DER).
const SOFTWARE_PUBLIC_KEY: &str = "(public key given as X.509)";

/// Refuse a key whose modulus (big-endian, leading zeros allowed) is too short for `padding`
/// to carry a [`MAX_DATA_KEY_LEN`]-byte data key.
fn check_key_size(
    token: &str,
    key: &str,
    padding: RsaPadding,
    modulus: &[u8],
) -> Result<(), Pkcs11Error> {
    let n = trim(modulus);
    let max = padding.max_plaintext_len(n.len()).unwrap_or(0);
    if max >= MAX_DATA_KEY_LEN {
        return Ok(());
    }
    let bits = match n.first() {
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    Err(Pkcs11Error::KeyTooSmall {
        token: token.to_owned(),
        key: key.to_owned(),
        bits,
        padding,
        max,
    })
}

/// Modulus and public exponent of a key object, when the token reports them.
fn public_parts(attrs: Vec<Attribute>) -> (Option<Vec<u8>>, Option<Vec<u8>>, Option<bool>) {
    let (mut n, mut e, mut decrypt) = (None, None, None);
    for attr in attrs {
        match attr {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::Decrypt(b) => decrypt = Some(b),
            _ => {}
        }
    }
    (n, e, decrypt)
}

impl HsmRsaKeyring {
    /// Find the keys, check their types, that they form a pair and that the key is large
    /// enough for the padding to wrap a [`MAX_DATA_KEY_LEN`]-byte data key (else
    /// [`Pkcs11Error::KeyTooSmall`]), and try the padding in the token once. Blocking; from
    /// async code use [`new_async`](Self::new_async).
    pub fn new(token: &Pkcs11Token, config: RsaKeyConfig) -> Result<Self, Pkcs11Error> {
        check_namespace_and_name(&config.namespace, &config.name)?;
        let inner = token.inner.clone();
        let private = config.private_label.as_ref().map(|label| {
            KeyRef::new(
                label.clone(),
                config.private_id.clone(),
                ObjectClass::PRIVATE_KEY,
                KeyType::RSA,
                "RSA private key",
            )
        });
        let public_ref = match (&config.public, &config.private_label) {
            (PublicSource::Token(label, id), _) => Some((
                KeyRef::new(
                    label.clone(),
                    id.clone(),
                    ObjectClass::PUBLIC_KEY,
                    KeyType::RSA,
                    "RSA public key",
                ),
                true,
            )),
            (PublicSource::Default, Some(label)) => Some((
                KeyRef::new(
                    label.clone(),
                    config.private_id.clone(),
                    ObjectClass::PUBLIC_KEY,
                    KeyType::RSA,
                    "RSA public key",
                ),
                false,
            )),
            _ => None,
        };
        if private.is_none() && matches!(config.public, PublicSource::Default) {
            return Err(Pkcs11Error::Config(
                "an RSA keyring needs a private key label, a public key, or both".into(),
            ));
        }
        if private.is_some() {
            inner.require_mechanism(
                config.padding.mechanism_type(),
                config.padding.mechanism_name(),
            )?;
        }

        // Read what the token knows about the keys.
        let (private_parts, public_parts_token) = inner.run(|s| {
            let private_parts = match &private {
                Some(key) => {
                    let handle = inner.handle(s, key)?;
                    let attrs = object::attributes(
                        &s.session,
                        handle,
                        &[
                            AttributeType::Modulus,
                            AttributeType::PublicExponent,
                            AttributeType::Decrypt,
                        ],
                    )?;
                    Some(public_parts(attrs))
                }
                None => None,
            };
            let public_parts_token = match &public_ref {
                Some((key, required)) => match inner.handle(s, key) {
                    Ok(handle) => {
                        let attrs = object::attributes(
                            &s.session,
                            handle,
                            &[AttributeType::Modulus, AttributeType::PublicExponent],
                        )?;
                        Some(public_parts(attrs))
                    }
                    Err(OpError::Fail(Pkcs11Error::KeyNotFound { .. })) if !required => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            Ok((private_parts, public_parts_token))
        })?;

        let label = config.private_label.clone().unwrap_or_default();
        let unusable = |reason: &str| Pkcs11Error::KeyUnusable {
            token: inner.label().to_owned(),
            label: label.clone(),
            reason: reason.to_owned(),
        };
        if let Some((_, _, Some(false))) = &private_parts {
            return Err(unusable("the private key's CKA_DECRYPT is false"));
        }
        // Every modulus the token reported must carry a data key with this padding. Checked
        // before parsing: the `rsa` crate refuses moduli under 1024 bits with a vaguer error.
        let token_moduli = [
            (private.as_ref(), &private_parts),
            (public_ref.as_ref().map(|(key, _)| key), &public_parts_token),
        ];
        for (key, parts) in token_moduli {
            if let (Some(key), Some((Some(n), _, _))) = (key, parts) {
                check_key_size(inner.label(), &key.label, config.padding, n)?;
            }
        }
        let public = match (&config.public, &public_parts_token, &private_parts) {
            (PublicSource::Der(der), _, _) => Some(
                rsa::PublicKey::from_public_key_der(der)
                    .map_err(|e| Pkcs11Error::PublicKey(e.to_string()))?,
            ),
            (PublicSource::Pem(pem), _, _) => Some(
                rsa::PublicKey::from_public_key_pem(pem)
                    .map_err(|e| Pkcs11Error::PublicKey(e.to_string()))?,
            ),
            (_, Some((Some(n), Some(e), _)), _) => Some(public_from_parts(n, e)?),
            (PublicSource::Token(..), Some(_), _) => {
                return Err(Pkcs11Error::PublicKey(
                    "the token does not report the public key's modulus and exponent".into(),
                ))
            }
            // No public key object: the private key object's public components, if shown.
            (PublicSource::Default, None, Some((Some(n), Some(e), _))) => {
                Some(public_from_parts(n, e)?)
            }
            _ => None,
        };
        let private_modulus = private_parts.as_ref().and_then(|(n, _, _)| n.clone());
        if let (Some(public), Some(n)) = (&public, &private_modulus) {
            if public.n_bytes().as_ref() != trim(n) {
                return Err(Pkcs11Error::KeyPairMismatch {
                    label: label.clone(),
                });
            }
        }
        let modulus_len = match (&public, &private_modulus) {
            (Some(public), _) => public.size(),
            (None, Some(n)) => trim(n).len(),
            (None, None) => 0,
        };
        // A public key given in software is only known now.
        if let (PublicSource::Der(_) | PublicSource::Pem(_), Some(public)) =
            (&config.public, &public)
        {
            check_key_size(
                inner.label(),
                SOFTWARE_PUBLIC_KEY,
                config.padding,
                &public.n_bytes(),
            )?;
        }
        let description = format!(
            "PKCS#11 RSA keyring (namespace {:?}, name {:?}, token {:?}, key label {:?}, {})",
            config.namespace,
            config.name,
            inner.label(),
            config
                .private_label
                .as_deref()
                .unwrap_or("(public key only)"),
            config.padding.mechanism_name()
        );
        let keyring = Self {
            inner: Arc::new(RsaInner {
                token: inner,
                namespace: config.namespace,
                name: config.name,
                padding: config.padding,
                private,
                public,
                modulus_len,
                description,
            }),
        };
        keyring.inner.self_test()?;
        Ok(keyring)
    }

    /// [`new`](Self::new) on the blocking thread pool when called inside a tokio runtime.
    pub async fn new_async(token: &Pkcs11Token, config: RsaKeyConfig) -> Result<Self, Pkcs11Error> {
        let token = token.clone();
        run_blocking(move || Self::new(&token, config)).await
    }

    /// The key namespace (EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The key name (EDK provider info).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The padding scheme.
    pub fn padding(&self) -> RsaPadding {
        self.inner.padding
    }

    /// Whether this keyring can wrap (it has a public key).
    pub fn can_encrypt(&self) -> bool {
        self.inner.public.is_some()
    }

    /// Whether this keyring can unwrap (it has a private key in the token).
    pub fn can_decrypt(&self) -> bool {
        self.inner.private.is_some()
    }
}

impl RsaInner {
    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    fn ck_error(&self, e: cryptoki::error::Error, what: &'static str) -> OpError {
        if is_mechanism_refusal(&e) {
            OpError::Fail(Pkcs11Error::MechanismUnsupported {
                token: self.token.label().to_owned(),
                mechanism: self.padding.mechanism_name().to_owned(),
                detail: format!(
                    "the token refused the mechanism or its parameters ({e}){}",
                    if matches!(self.padding, RsaPadding::OaepSha1 | RsaPadding::Pkcs1v15) {
                        ""
                    } else {
                        "; some tokens (SoftHSM2 2.6) implement OAEP with SHA-1 only"
                    }
                ),
            })
        } else {
            OpError::Ck(e, what)
        }
    }

    /// With a private key: decrypt once in the token, so that a padding the token does not
    /// offer shows now. With both keys, a software-encrypted probe must come back intact
    /// (the keys form a pair).
    fn self_test(&self) -> Result<(), Pkcs11Error> {
        let Some(private) = &self.private else {
            return Ok(());
        };
        let probe = [0xA5u8; 32];
        let ciphertext = match &self.public {
            Some(public) => self
                .padding
                .encrypt(public, &probe)
                .map_err(|e| Pkcs11Error::PublicKey(format!("self-test encryption: {e}")))?,
            // Only the mechanism matters: a zero block fails padding checks, not the init.
            None => vec![0u8; self.modulus_len.max(1)],
        };
        let result = self.token.run(|s| {
            let handle = self.token.handle(s, private)?;
            match s
                .session
                .decrypt(&self.padding.mechanism(), handle, &ciphertext)
            {
                Ok(plain) => Ok(Some(Zeroizing::new(plain))),
                Err(e) if recovery_for(&e) != Recovery::None || is_mechanism_refusal(&e) => {
                    Err(self.ck_error(e, "self-test decryption"))
                }
                Err(_) => Ok(None),
            }
        })?;
        if self.public.is_some() && result.as_deref().map(Vec::as_slice) != Some(&probe[..]) {
            return Err(Pkcs11Error::KeyPairMismatch {
                label: private.label.clone(),
            });
        }
        Ok(())
    }

    fn unwrap(
        &self,
        private: &KeyRef,
        candidates: &[Candidate],
        key_len: usize,
    ) -> Result<(Option<DataKey>, Vec<String>), Pkcs11Error> {
        self.token.run(|s| {
            let handle = self.token.handle(s, private)?;
            let mut failures = Vec::new();
            for c in candidates {
                match s
                    .session
                    .decrypt(&self.padding.mechanism(), handle, &c.ciphertext)
                {
                    Ok(plain) => {
                        let mut plain = Zeroizing::new(plain);
                        if plain.len() == key_len {
                            return Ok((Some(DataKey::new(std::mem::take(&mut *plain))), failures));
                        }
                        failures.push(match self.padding {
                            RsaPadding::Pkcs1v15 => pkcs1v15_unwrap_failure(c.index),
                            _ => format!(
                                "EDK {}: unwrapped to {} bytes, expected {key_len}",
                                c.index,
                                plain.len()
                            ),
                        });
                    }
                    Err(e) if recovery_for(&e) != Recovery::None || is_mechanism_refusal(&e) => {
                        return Err(self.ck_error(e, "unwrapping (C_Decrypt)"));
                    }
                    Err(e) => failures.push(match self.padding {
                        RsaPadding::Pkcs1v15 => pkcs1v15_unwrap_failure(c.index),
                        _ => format!(
                            "EDK {}: the token could not unwrap it (tampered or another key; \
                             token said: {e})",
                            c.index
                        ),
                    }),
                }
            }
            Ok((None, failures))
        })
    }
}

/// The one failure message for a PKCS#1 v1.5 EDK that did not unwrap to a data key.
///
/// Bad padding (the token's `C_Decrypt` fails) and good padding around a payload of the wrong
/// length must read the same: telling them apart (or echoing the token's return code or the
/// unwrapped length) would be a Bleichenbacher padding oracle.
fn pkcs1v15_unwrap_failure(index: usize) -> String {
    format!(
        "EDK {index}: did not unwrap to a data key for this suite (tampered, another key, or \
         another padding)"
    )
}

impl fmt::Debug for HsmRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmRsaKeyring")
            .field("namespace", &self.inner.namespace)
            .field("name", &self.inner.name)
            .field("token", &self.inner.token.label())
            .field(
                "private_key_label",
                &self.inner.private.as_ref().map(|k| &k.label),
            )
            .field("has_public_key", &self.inner.public.is_some())
            .field("padding", &self.inner.padding)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Keyring for HsmRsaKeyring {
    async fn on_encrypt(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let inner = &self.inner;
        let Some(public) = &inner.public else {
            return Err(inner.error(KeyringFailure::Unsupported(
                "this RSA keyring has no public key: it can only decrypt".into(),
            )));
        };
        let materials = match materials.data_key() {
            Some(_) => materials.clone(),
            None => {
                let suite = materials.suite();
                let generate = move |inner: &RsaInner| -> Result<DataKey, Pkcs11Error> {
                    let mut buf = Zeroizing::new(vec![0u8; suite.data_key_len()]);
                    inner.token.random(&mut buf, crate::PURPOSE_DATA_KEY)?;
                    Ok(DataKey::new(std::mem::take(&mut *buf)))
                };
                let key = match inner.token.random_source() {
                    // The system RNG does not block: no need to leave the calling task.
                    RandomSource::System => generate(inner),
                    RandomSource::Token => {
                        let worker = inner.clone();
                        run_blocking(move || generate(&worker)).await
                    }
                }
                .map_err(|e| e.into_keyring_error(&inner.description))?;
                materials
                    .clone()
                    .with_data_key(key)
                    .map_err(|r| inner.error(r))?
            }
        };
        let data_key = materials
            .data_key()
            .ok_or_else(|| inner.error(KeyringFailure::NoDataKey))?;
        let wrapped = inner
            .padding
            .encrypt(public, data_key.as_bytes())
            .map_err(|e| inner.error(KeyringFailure::WrapFailed(e.to_string())))?;
        let edk = EncryptedDataKey::new(
            inner.namespace.clone(),
            inner.name.as_bytes().to_vec(),
            wrapped,
        );
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
        let Some(private) = inner.private.clone() else {
            return Err(inner.error(KeyringFailure::Unsupported(
                "this RSA keyring has no private key: it can only encrypt".into(),
            )));
        };
        let mut failures = Vec::new();
        let mut candidates = Vec::new();
        for (index, edk) in encrypted_data_keys.iter().enumerate() {
            if edk.provider_id != inner.namespace || edk.provider_info != inner.name.as_bytes() {
                continue;
            }
            if inner.modulus_len != 0 && edk.ciphertext.len() != inner.modulus_len {
                failures.push(format!(
                    "EDK {index}: wrapped key is {} bytes, the RSA modulus is {}",
                    edk.ciphertext.len(),
                    inner.modulus_len
                ));
                continue;
            }
            candidates.push(Candidate {
                index,
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
        let key_len = materials.suite().data_key_len();
        let worker = inner.clone();
        let (key, token_failures) =
            run_blocking(move || worker.unwrap(&private, &candidates, key_len))
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

#[cfg(test)]
mod tests {
    use super::*;
    use esdk_core::AlgorithmSuite;

    #[test]
    fn max_data_key_len_is_the_longest_suite_key() {
        let longest = AlgorithmSuite::ALL
            .iter()
            .map(|s| s.data_key_len())
            .max()
            .unwrap();
        assert_eq!(MAX_DATA_KEY_LEN, longest);
    }

    #[test]
    fn max_plaintext_len_per_padding() {
        assert_eq!(RsaPadding::Pkcs1v15.max_plaintext_len(256), Some(245));
        assert_eq!(RsaPadding::OaepSha1.max_plaintext_len(64), Some(22));
        assert_eq!(RsaPadding::OaepSha256.max_plaintext_len(128), Some(62));
        assert_eq!(RsaPadding::OaepSha384.max_plaintext_len(128), Some(30));
        assert_eq!(RsaPadding::OaepSha512.max_plaintext_len(128), None);
        assert_eq!(RsaPadding::OaepSha512.max_plaintext_len(256), Some(126));
    }

    #[test]
    fn key_size_check_counts_bits_and_allows_exactly_enough() {
        // 74 bytes with OAEP-SHA-1 leave exactly 32: accepted; 73 leave 31.
        let mut n = vec![0xC3u8; 74];
        assert!(check_key_size("t", "k", RsaPadding::OaepSha1, &n).is_ok());
        n.remove(0);
        // A leading zero byte and a top byte of 0x01 (a 577-bit modulus).
        n[0] = 0x01;
        n.insert(0, 0x00);
        match check_key_size("t", "k", RsaPadding::OaepSha1, &n) {
            Err(Pkcs11Error::KeyTooSmall {
                bits, max, padding, ..
            }) => {
                assert_eq!((bits, max, padding), (577, 31, RsaPadding::OaepSha1));
            }
            other => panic!("expected KeyTooSmall, got {other:?}"),
        }
    }
}
