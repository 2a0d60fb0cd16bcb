//! # esdk
//!
//! Envelope encryption in the AWS Encryption SDK message format, byte-compatible with the
//! official SDKs. This facade re-exports [`esdk_core`] and, one cargo feature each, the
//! keyring crates:
//!
//! | feature | keyring |
//! |---|---|
//! | `raw-aes` (default) | [`raw_aes::RawAesKeyring`]: AES-GCM wrapping key in memory |
//! | `raw-rsa` (default) | [`raw_rsa::RawRsaKeyring`]: RSA-OAEP (or PKCS#1 v1.5, for compatibility) with keys in memory; encrypt-only from a public key |
//! | `multi` (default) | [`multi::MultiKeyring`]: a generator plus child keyrings of any kind |
//! | `pkcs11` | `pkcs11::HsmAesKeyring`, `pkcs11::HsmRsaKeyring`: keys held in an HSM (PKCS#11) |
//! | `kms` | `kms::KmsKeyring` and the rest of the AWS KMS keyring family (see `keyring_kms`); pulls the AWS SDK for KMS |
//!
//! The required-encryption-context CMM ([`RequiredEncryptionContextCmm`]) is part of the core
//! and needs no feature.
//!
//! ```
//! use esdk::{Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource};
//! use esdk::raw_aes::RawAesKeyring;
//!
//! let keyring = RawAesKeyring::new("billing", "2026-key", &[0x42; 32])?;
//! let source = MaterialsSource::keyring(keyring);
//! let context: EncryptionContext = [("tenant".to_string(), "acme".to_string())].into();
//! let client = Client::new();
//! let sealed = client.encrypt_blocking(
//!     &source,
//!     b"invoice 1",
//!     &EncryptOptions::default().with_encryption_context(context.clone()),
//! )?;
//! let opened = client.decrypt_blocking(
//!     &source,
//!     &sealed.ciphertext,
//!     &DecryptOptions::default().with_reproduced_encryption_context(context),
//! )?;
//! assert_eq!(opened.plaintext, b"invoice 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use esdk_core::*;

/// The raw AES keyring (feature `raw-aes`).
#[cfg(feature = "raw-aes")]
pub mod raw_aes {
    pub use keyring_raw_aes::RawAesKeyring;
}

/// The raw RSA keyring, its keys and padding schemes (feature `raw-rsa`).
#[cfg(feature = "raw-rsa")]
pub mod raw_rsa {
    pub use keyring_raw_rsa::{
        KeyKind, Padding, RawRsaError, RawRsaKeyring, RsaPrivateKey, RsaPublicKey, MAX_DATA_KEY_LEN,
    };
}

/// The multi-keyring (feature `multi`).
#[cfg(feature = "multi")]
pub mod multi {
    pub use keyring_multi::{MultiKeyring, MultiKeyringBuilder};
}

/// Keyrings whose wrapping keys stay in an HSM or other PKCS#11 token (feature `pkcs11`):
/// the `keyring-pkcs11-hsm` crate. See `examples/pkcs11.rs`.
#[cfg(feature = "pkcs11")]
pub mod pkcs11 {
    pub use keyring_pkcs11_hsm::*;
}

/// The AWS KMS keyrings (feature `kms`): everything in `keyring_kms`.
#[cfg(feature = "kms")]
pub mod kms {
    pub use keyring_kms::*;
}
