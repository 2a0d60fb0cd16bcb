//! # keyring-raw-rsa
//!
//! A keyring that wraps data keys with an RSA key held in process memory. Its encrypted data
//! keys use the raw RSA wire format shared with the official SDKs (Java `JceMasterKey`,
//! Python `RawMasterKey`, every raw RSA keyring): the provider id is the key namespace, the
//! provider info is the key name, and the ciphertext is the RSA output. Messages move between
//! them in both directions.
//!
//! Five padding schemes ([`Padding`]): OAEP with SHA-1, SHA-256, SHA-384 or SHA-512 (MGF1
//! always uses the same hash, and the label is empty), and PKCS#1 v1.5.
//!
//! * Keys load from PEM or DER: private keys as PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
//!   (`BEGIN RSA PRIVATE KEY`); public keys as X.509 SubjectPublicKeyInfo
//!   (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
//! * A keyring built from a public key alone encrypts only; decrypting needs the private key.
//!   The keyring never derives a public key from a private one on its own: pass
//!   [`RsaPrivateKey::public_key`] explicitly, or use [`RawRsaKeyring::with_key_pair`].
//! * RSA binds nothing but the data key: unlike raw AES, the encryption context is not part of
//!   the wrapping (the message's header authentication still covers it).
//! * Private keys are zeroized on drop, and no key material appears in `Debug` output or in
//!   errors.
//!
//! ```
//! use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
//! use keyring_raw_rsa::{Padding, RawRsaKeyring, RsaPrivateKey, RsaPublicKey};
//!
//! // In real use, from a secret store; this is a test key.
//! let private = RsaPrivateKey::from_pem(include_str!("../tests/keys/rsa-2048.pk8.pem"))?;
//! let public = RsaPublicKey::from_pem(include_str!("../tests/keys/rsa-2048.spki.pem"))?;
//!
//! // Anyone holding only the public key can encrypt...
//! let sender = RawRsaKeyring::encrypt_only("my-namespace", "my-rsa-key", Padding::OaepSha256, public)?;
//! let client = Client::new();
//! let sealed = client.encrypt_blocking(
//!     &MaterialsSource::keyring(sender),
//!     b"secret",
//!     &EncryptOptions::default(),
//! )?;
//!
//! // ...and only the holder of the private key can decrypt.
//! let receiver = RawRsaKeyring::decrypt_only("my-namespace", "my-rsa-key", Padding::OaepSha256, private)?;
//! let opened = client.decrypt_blocking(
//!     &MaterialsSource::keyring(receiver),
//!     &sealed.ciphertext,
//!     &DecryptOptions::default(),
//! )?;
//! assert_eq!(opened.plaintext, b"secret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## PKCS#1 v1.5 is for compatibility only
//!
//! [`Padding::Pkcs1V15`] exists so that messages written by older systems that chose it can
//! still be read and exchanged. Do not choose it for new data: PKCS#1 v1.5 encryption padding
//! is the subject of a long line of padding-oracle attacks (Bleichenbacher 1998 and its
//! descendants). Use OAEP, preferably [`Padding::OaepSha256`] or stronger.
//!
//! ## Side channels: RUSTSEC-2023-0071 (the Marvin attack)
//!
//! The RSA arithmetic comes from the RustCrypto `rsa` crate. Its releases before 0.10 were
//! affected by RUSTSEC-2023-0071 ("Marvin attack"): the time taken by a private-key operation
//! depended on secret values, so an attacker who can submit many ciphertexts to a service that
//! decrypts them and measure the response times precisely (for example over a network) could
//! eventually recover a data key or forge a decryption. Version 0.10, which this crate
//! requires, moved the arithmetic to constant-time big integers (`crypto-bigint`) and
//! decrypts PKCS#1 v1.5 with implicit rejection, which is the recommended mitigation.
//! However, at the time of writing the RustSec advisory database still lists RUSTSEC-2023-0071
//! against `rsa` with no patched version, and this crate has not been independently audited
//! for timing. If an attacker can make your process decrypt chosen messages and time it,
//! prefer OAEP, limit and monitor decryption requests, or keep the private key in an HSM or a
//! key service (a PKCS#11 or KMS keyring) instead of in process memory.
//!
//! ## PKCS#1 v1.5 and implicit rejection: one key name per key pair
//!
//! `rsa` 0.10 decrypts PKCS#1 v1.5 with implicit rejection (draft-irtf-cfrg-rsa-guidance
//! §7.2): a ciphertext whose padding does not check out, because it was made for another key
//! pair or damaged, does not give an error but a deterministic pseudo-random "plaintext" whose
//! length is spread roughly evenly over 0 to k − 11 bytes (k = modulus bytes). This keyring
//! skips such an EDK when the length is not the suite's data-key length, but about once in
//! k − 10 tries (≈ 1 in 246 for RSA-2048) the length is right: the keyring then takes the
//! pseudo-random bytes as the data key and stops, without trying the remaining EDKs (and a
//! multi-keyring does not try its remaining keyrings), and decryption fails later at the key
//! commitment or header authentication. A message that another EDK or keyring could have
//! decrypted is then refused. This only happens when EDKs from more than one key pair carry
//! this keyring's namespace and key name, or when an EDK is damaged. So give every key pair
//! its own key name (for example, a new name when rotating keys) and use OAEP, whose
//! decoding fails outright on a wrong key.
//!
//! ## Private-key operations run on the calling task
//!
//! Unwrapping is a CPU-bound RSA private-key operation performed inline in `on_decrypt`, on
//! whatever thread or async task calls it: about a millisecond or more per EDK tried
//! (3–4 ms for RSA-2048 on this project's test machine, several times that for RSA-4096).
//! An async service that decrypts many messages should run decryption with
//! `tokio::task::spawn_blocking` (or on a dedicated thread pool) rather than directly on its
//! runtime's worker threads. Encryption is a public-key operation and cheap.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use esdk_core::{
    async_trait, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring,
    KeyringError, KeyringFailure,
};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use std::fmt;
use zeroize::Zeroizing;

/// The longest data key of any ESDK algorithm suite, in bytes. A keyring's key must be able
/// to wrap it with the chosen padding.
pub const MAX_DATA_KEY_LEN: usize = 32;

/// An RSA encryption padding scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// PKCS#1 v1.5 encryption padding. For compatibility only; see the crate docs.
    Pkcs1V15,
    /// OAEP with SHA-1 and MGF1 with SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1 with SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1 with SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1 with SHA-512.
    OaepSha512,
}

impl Padding {
    /// Every padding scheme.
    pub const ALL: [Padding; 5] = [
        Padding::Pkcs1V15,
        Padding::OaepSha1,
        Padding::OaepSha256,
        Padding::OaepSha384,
        Padding::OaepSha512,
    ];

    /// The longest plaintext, in bytes, that a key with a modulus of `modulus_len` bytes can
    /// encrypt with this padding (`None` if it cannot encrypt anything).
    pub fn max_plaintext_len(self, modulus_len: usize) -> Option<usize> {
        let overhead = match self {
            Padding::Pkcs1V15 => 11,
            Padding::OaepSha1 => 2 * 20 + 2,
            Padding::OaepSha256 => 2 * 32 + 2,
            Padding::OaepSha384 => 2 * 48 + 2,
            Padding::OaepSha512 => 2 * 64 + 2,
        };
        modulus_len.checked_sub(overhead)
    }

    fn encrypt(self, key: &rsa::PublicKey, plaintext: &[u8]) -> rsa::Result<Vec<u8>> {
        match self {
            Padding::Pkcs1V15 => key.pkcs1v15_encrypt(plaintext),
            Padding::OaepSha1 => key.oaep_encrypt::<sha1::Sha1>(plaintext),
            Padding::OaepSha256 => key.oaep_encrypt::<sha2::Sha256>(plaintext),
            Padding::OaepSha384 => key.oaep_encrypt::<sha2::Sha384>(plaintext),
            Padding::OaepSha512 => key.oaep_encrypt::<sha2::Sha512>(plaintext),
        }
    }

    fn decrypt(self, key: &rsa::PrivateKey, ciphertext: &[u8]) -> rsa::Result<Vec<u8>> {
        match self {
            Padding::Pkcs1V15 => key.pkcs1v15_decrypt(ciphertext),
            Padding::OaepSha1 => key.oaep_decrypt::<sha1::Sha1>(ciphertext),
            Padding::OaepSha256 => key.oaep_decrypt::<sha2::Sha256>(ciphertext),
            Padding::OaepSha384 => key.oaep_decrypt::<sha2::Sha384>(ciphertext),
            Padding::OaepSha512 => key.oaep_decrypt::<sha2::Sha512>(ciphertext),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Padding::Pkcs1V15 => "PKCS#1 v1.5",
            Padding::OaepSha1 => "OAEP-SHA1/MGF1-SHA1",
            Padding::OaepSha256 => "OAEP-SHA256/MGF1-SHA256",
            Padding::OaepSha384 => "OAEP-SHA384/MGF1-SHA384",
            Padding::OaepSha512 => "OAEP-SHA512/MGF1-SHA512",
        })
    }
}

/// Which half of a key pair an encoding error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A public key.
    Public,
    /// A private key.
    Private,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Public => "public",
            KeyKind::Private => "private",
        })
    }
}

/// Why a key could not be loaded or a raw RSA keyring could not be built.
///
/// Converts into [`KeyringError`] (reason [`KeyringFailure::Config`]) and into
/// [`esdk_core::Error`], so `?` works in code that returns either.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawRsaError {
    /// The input is not an RSA key of the expected kind in a supported encoding.
    #[error("not an RSA {kind} key in a supported encoding ({accepted}): {detail}")]
    KeyEncoding {
        /// The kind of key that was expected.
        kind: KeyKind,
        /// The encodings that were tried.
        accepted: &'static str,
        /// What the decoder reported (positions and structure only, never key bytes).
        detail: String,
    },
    /// The key's modulus is too short to wrap the longest data key with this padding.
    #[error(
        "{keyring}: a {bits}-bit RSA key can wrap at most {max} bytes with {padding}, \
         but data keys can be {MAX_DATA_KEY_LEN} bytes; use a larger key or another padding"
    )]
    KeyTooSmall {
        /// The keyring description.
        keyring: String,
        /// The modulus size in bits.
        bits: usize,
        /// The padding chosen.
        padding: Padding,
        /// The longest plaintext this key and padding can wrap (0 if none).
        max: usize,
    },
    /// Neither a public nor a private key was given.
    #[error("{keyring}: no key given (a public key, a private key or both are needed)")]
    NoKey {
        /// The keyring description.
        keyring: String,
    },
    /// The public key given is not the public half of the private key given.
    #[error("{keyring}: the public key is not the public half of the private key")]
    KeyPairMismatch {
        /// The keyring description.
        keyring: String,
    },
    /// The namespace starts with `aws-kms`, which is reserved.
    #[error(
        "{keyring}: key namespaces starting with \"aws-kms\" are reserved for AWS KMS keyrings"
    )]
    ReservedNamespace {
        /// The keyring description.
        keyring: String,
    },
    /// The namespace or name does not fit a 16-bit length field.
    #[error("{keyring}: the key namespace and key name must each be at most 65535 bytes")]
    NameTooLong {
        /// The keyring description (truncated names).
        keyring: String,
    },
}

impl RawRsaError {
    fn keyring(&self) -> &str {
        match self {
            RawRsaError::KeyEncoding { .. } => "raw RSA keyring",
            RawRsaError::KeyTooSmall { keyring, .. }
            | RawRsaError::NoKey { keyring }
            | RawRsaError::KeyPairMismatch { keyring }
            | RawRsaError::ReservedNamespace { keyring }
            | RawRsaError::NameTooLong { keyring } => keyring,
        }
    }
}

impl From<RawRsaError> for KeyringError {
    fn from(e: RawRsaError) -> Self {
        KeyringError::new(
            e.keyring().to_owned(),
            KeyringFailure::Config(e.to_string()),
        )
    }
}

impl From<RawRsaError> for esdk_core::Error {
    fn from(e: RawRsaError) -> Self {
        esdk_core::Error::Keyring(e.into())
    }
}

const PUBLIC_ENCODINGS: &str =
    "PEM or DER X.509 SubjectPublicKeyInfo, or PEM or DER PKCS#1 RSAPublicKey";
const PRIVATE_ENCODINGS: &str =
    "PEM or DER PKCS#8 PrivateKeyInfo, or PEM or DER PKCS#1 RSAPrivateKey (unencrypted)";

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey(rsa::PublicKey);

impl RsaPublicKey {
    /// Load a PEM public key: `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo) or
    /// `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, RawRsaError> {
        let pem = pem.trim();
        let result = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            rsa::PublicKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
        } else {
            rsa::PublicKey::from_public_key_pem(pem).map_err(|e| e.to_string())
        };
        result.map(Self).map_err(public_error)
    }

    /// Load a DER public key: SubjectPublicKeyInfo or PKCS#1 RSAPublicKey.
    pub fn from_der(der: &[u8]) -> Result<Self, RawRsaError> {
        match rsa::PublicKey::from_public_key_der(der) {
            Ok(k) => Ok(Self(k)),
            Err(spki) => rsa::PublicKey::from_pkcs1_der(der)
                .map(Self)
                .map_err(|pkcs1| public_error(format!("as SPKI: {spki}; as PKCS#1: {pkcs1}"))),
        }
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.0.size() * 8
    }

    fn modulus_len(&self) -> usize {
        self.0.size()
    }
}

fn public_error(detail: String) -> RawRsaError {
    RawRsaError::KeyEncoding {
        kind: KeyKind::Public,
        accepted: PUBLIC_ENCODINGS,
        detail,
    }
}

fn private_error(detail: String) -> RawRsaError {
    RawRsaError::KeyEncoding {
        kind: KeyKind::Private,
        accepted: PRIVATE_ENCODINGS,
        detail,
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

/// An RSA private key. Zeroized on drop; `Debug` shows only its size.
#[derive(Clone)]
pub struct RsaPrivateKey(rsa::PrivateKey);

impl RsaPrivateKey {
    /// Load a PEM private key: `BEGIN PRIVATE KEY` (PKCS#8) or `BEGIN RSA PRIVATE KEY`
    /// (PKCS#1). Encrypted keys are not read; decrypt them first.
    pub fn from_pem(pem: &str) -> Result<Self, RawRsaError> {
        let pem = pem.trim();
        let result = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
        } else {
            rsa::PrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())
        };
        result.map(Self).map_err(private_error)
    }

    /// Load a DER private key: PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey.
    pub fn from_der(der: &[u8]) -> Result<Self, RawRsaError> {
        match rsa::PrivateKey::from_pkcs8_der(der) {
            Ok(k) => Ok(Self(k)),
            Err(pkcs8) => rsa::PrivateKey::from_pkcs1_der(der)
                .map(Self)
                .map_err(|pkcs1| private_error(format!("as PKCS#8: {pkcs8}; as PKCS#1: {pkcs1}"))),
        }
    }

    /// The public half of this key pair.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(self.0.to_public_key())
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.0.size() * 8
    }

    fn modulus_len(&self) -> usize {
        self.0.size()
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

/// A raw RSA keyring.
///
/// Holds a public key (to encrypt), a private key (to decrypt), or both.
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: Padding,
    public: Option<RsaPublicKey>,
    private: Option<RsaPrivateKey>,
    description: String,
}

impl RawRsaKeyring {
    /// A keyring with key namespace `namespace` (the EDK provider id), key name `name` (the EDK
    /// provider info), a padding scheme, and a public key, a private key or both.
    ///
    /// Fails with a [`RawRsaError`] naming the keyring if neither key is given
    /// ([`NoKey`](RawRsaError::NoKey)), if the two keys do not belong together
    /// ([`KeyPairMismatch`](RawRsaError::KeyPairMismatch)), if the key is too small to wrap a
    /// [`MAX_DATA_KEY_LEN`]-byte data key with `padding`
    /// ([`KeyTooSmall`](RawRsaError::KeyTooSmall)), or if the namespace is reserved or a name
    /// is too long.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: Padding,
        public_key: Option<RsaPublicKey>,
        private_key: Option<RsaPrivateKey>,
    ) -> Result<Self, RawRsaError> {
        let namespace = namespace.into();
        let name = name.into();
        let description = describe(&namespace, &name, padding);
        if namespace.len() > usize::from(u16::MAX) || name.len() > usize::from(u16::MAX) {
            return Err(RawRsaError::NameTooLong {
                keyring: describe(&truncate(&namespace), &truncate(&name), padding),
            });
        }
        if namespace.starts_with("aws-kms") {
            return Err(RawRsaError::ReservedNamespace {
                keyring: description,
            });
        }
        let modulus_len = match (&public_key, &private_key) {
            (Some(public), Some(private)) => {
                if private.public_key() != *public {
                    return Err(RawRsaError::KeyPairMismatch {
                        keyring: description,
                    });
                }
                public.modulus_len()
            }
            (Some(public), None) => public.modulus_len(),
            (None, Some(private)) => private.modulus_len(),
            (None, None) => {
                return Err(RawRsaError::NoKey {
                    keyring: description,
                })
            }
        };
        let max = padding.max_plaintext_len(modulus_len).unwrap_or(0);
        if max < MAX_DATA_KEY_LEN {
            return Err(RawRsaError::KeyTooSmall {
                keyring: description,
                bits: modulus_len * 8,
                padding,
                max,
            });
        }
        Ok(Self {
            namespace,
            name,
            padding,
            public: public_key,
            private: private_key,
            description,
        })
    }

    /// An encrypt-only keyring: it wraps data keys with `public_key` and cannot decrypt.
    pub fn encrypt_only(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: Padding,
        public_key: RsaPublicKey,
    ) -> Result<Self, RawRsaError> {
        Self::new(namespace, name, padding, Some(public_key), None)
    }

    /// A decrypt-only keyring: it unwraps data keys with `private_key` and refuses to encrypt.
    pub fn decrypt_only(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: Padding,
        private_key: RsaPrivateKey,
    ) -> Result<Self, RawRsaError> {
        Self::new(namespace, name, padding, None, Some(private_key))
    }

    /// A keyring that encrypts with the public half of `private_key` and decrypts with it.
    pub fn with_key_pair(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: Padding,
        private_key: RsaPrivateKey,
    ) -> Result<Self, RawRsaError> {
        let public = private_key.public_key();
        Self::new(namespace, name, padding, Some(public), Some(private_key))
    }

    /// The key namespace (provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name (provider info).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The padding scheme.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Whether this keyring holds a public key and so can encrypt.
    pub fn can_encrypt(&self) -> bool {
        self.public.is_some()
    }

    /// Whether this keyring holds a private key and so can decrypt.
    pub fn can_decrypt(&self) -> bool {
        self.private.is_some()
    }

    fn error(&self, reason: KeyringFailure) -> KeyringError {
        KeyringError::new(self.description.clone(), reason)
    }

    /// Wrap `materials`' data key (generating one if absent) and append the EDK.
    pub fn wrap(
        &self,
        materials: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let public = self.public.as_ref().ok_or_else(|| {
            self.error(KeyringFailure::Unsupported(
                "this keyring holds no public key (decrypt-only), so it cannot encrypt".into(),
            ))
        })?;
        let materials = materials
            .with_data_key_or_generate()
            .map_err(|r| self.error(r))?;
        let data_key = materials
            .data_key()
            .ok_or_else(|| self.error(KeyringFailure::NoDataKey))?;
        let max = self
            .padding
            .max_plaintext_len(public.modulus_len())
            .unwrap_or(0);
        if data_key.len() > max {
            return Err(self.error(KeyringFailure::WrapFailed(format!(
                "a {}-bit key can wrap at most {max} bytes with {}, the data key is {} bytes",
                public.bits(),
                self.padding,
                data_key.len()
            ))));
        }
        let wrapped = self
            .padding
            .encrypt(&public.0, data_key.as_bytes())
            .map_err(|e| {
                self.error(KeyringFailure::WrapFailed(format!(
                    "RSA encryption failed: {e}"
                )))
            })?;
        let edk = EncryptedDataKey::new(
            self.namespace.clone(),
            self.name.as_bytes().to_vec(),
            wrapped,
        );
        Ok(materials.with_encrypted_data_key(edk))
    }

    /// Unwrap the first EDK addressed to this keyring that decrypts.
    pub fn unwrap(
        &self,
        materials: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let private = self.private.as_ref().ok_or_else(|| {
            self.error(KeyringFailure::Unsupported(
                "this keyring holds only a public key (encrypt-only), so it cannot decrypt".into(),
            ))
        })?;
        if materials.data_key().is_some() {
            return Err(self.error(KeyringFailure::DataKeyAlreadyPresent));
        }
        let modulus_len = private.modulus_len();
        let expected_key_len = materials.suite().data_key_len();
        let mut failures = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            if edk.provider_id != self.namespace || edk.provider_info != self.name.as_bytes() {
                continue;
            }
            if edk.ciphertext.len() != modulus_len {
                failures.push(format!(
                    "EDK {index}: wrapped key is {} bytes, a {}-bit key's ciphertext is {modulus_len}",
                    edk.ciphertext.len(),
                    private.bits()
                ));
                continue;
            }
            match self.padding.decrypt(&private.0, &edk.ciphertext) {
                Ok(key) => {
                    let key = Zeroizing::new(key);
                    if key.len() != expected_key_len {
                        failures.push(format!(
                            "EDK {index}: RSA decryption gave {} bytes, not a {expected_key_len}-byte \
                             data key (wrong key, wrong padding or a damaged EDK)",
                            key.len()
                        ));
                        continue;
                    }
                    return materials
                        .clone()
                        .with_data_key(DataKey::new(key.to_vec()))
                        .map_err(|r| self.error(r));
                }
                Err(_) => failures.push(format!(
                    "EDK {index}: RSA {} decryption failed (wrong key, wrong padding or a damaged EDK)",
                    self.padding
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

fn describe(namespace: &str, name: &str, padding: Padding) -> String {
    format!("raw RSA keyring (namespace {namespace:?}, name {name:?}, {padding})")
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect::<String>() + "..."
}

impl fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRsaKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("padding", &self.padding)
            .field("public_key", &self.public)
            .field("private_key", &self.private)
            .finish()
    }
}

#[async_trait]
impl Keyring for RawRsaKeyring {
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
