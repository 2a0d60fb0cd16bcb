//! # keyring-pkcs11-hsm
//!
//! Keyrings whose wrapping keys never leave a hardware security module (or any PKCS#11
//! token), for the AWS Encryption SDK message format. No official SDK ships an HSM keyring,
//! so this one keeps to wire formats they already read:
//!
//! * [`HsmAesKeyring`] (AES mode): an AES key object in the token wraps data keys with
//!   `CKM_AES_GCM` (12-byte IV chosen here, 128-bit tag, AAD = the serialized encryption
//!   context). EDKs are in exactly the raw AES keyring's format, so a raw AES keyring holding
//!   the same key bytes (this SDK's `keyring-raw-aes`, Java `JceMasterKey`, Python
//!   `RawMasterKey`) unwraps them, and this keyring unwraps theirs.
//! * [`HsmRsaKeyring`] (RSA mode): the private key stays in the token and unwraps with
//!   `CKM_RSA_PKCS_OAEP` or `CKM_RSA_PKCS`; wrapping uses the public key in software. EDKs
//!   are in the raw RSA keyring's format.
//!
//! A [`Pkcs11Token`] holds what the keyrings share: the module, loaded and initialized once
//! per process (a process-wide registry keyed by module path), the login (done once), and a
//! bounded pool of sessions (PKCS#11 sessions are `Send` but not `Sync`; callers beyond the
//! pool's size wait). A session the token closed, a lost login, or a module finalized
//! behind our back is recovered once per operation.
//!
//! ## Blocking calls and async runtimes
//!
//! PKCS#11 calls block. In `on_encrypt` / `on_decrypt`, each operation's token work (taking a
//! session from the pool, waiting for one if all are busy, and the `C_*` calls) is one
//! closure handed to an internal `run_blocking`: when a Tokio runtime is current on the
//! calling thread (`tokio::runtime::Handle::try_current`, multi-thread or current-thread),
//! the closure runs on that runtime's blocking pool via `spawn_blocking` and is awaited, so
//! async worker threads never block on the token (a panic there is reported as
//! [`Pkcs11Error::Runtime`]); with no runtime (the SDK's `_blocking` API under `pollster`,
//! plain threads) it runs inline on the calling thread. The constructors
//! ([`Pkcs11Token::open`], [`HsmAesKeyring::new`], [`HsmRsaKeyring::new`]) are synchronous
//! and call the token inline; their `_async` variants offload the same way. The RSA
//! keyring's wrapping is a software public-key operation on the calling task.
//!
//! ```no_run
//! use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
//! use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, Pkcs11Config, Pkcs11Token};
//!
//! let config = Pkcs11Config::with_label_and_pin_env(
//!     "/usr/lib/softhsm/libsofthsm2.so", // the PKCS#11 module
//!     "esdk-demo",                       // the token label
//!     "ESDK_PKCS11_PIN",                 // the user PIN, from the environment
//! );
//! let token = Pkcs11Token::open(config)?;
//! let keyring = HsmAesKeyring::new(&token, AesKeyConfig::new("my-namespace", "my-key", "wrapping-key"))?;
//!
//! let source = MaterialsSource::keyring(keyring);
//! let client = Client::new();
//! let sealed = client.encrypt_blocking(&source, b"secret", &EncryptOptions::default())?;
//! let opened = client.decrypt_blocking(&source, &sealed.ciphertext, &DecryptOptions::default())?;
//! assert_eq!(opened.plaintext, b"secret");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Setting up a SoftHSM2 token
//!
//! SoftHSM2 is a software token for development and tests (Debian package `softhsm2`).
//! `cargo xtask softhsm` does all of this in a temporary directory; by hand:
//!
//! ```text
//! apt-get install -y softhsm2
//! mkdir -p /tmp/hsm/tokens
//! printf 'directories.tokendir = /tmp/hsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
//!     > /tmp/hsm/softhsm2.conf
//! export SOFTHSM2_CONF=/tmp/hsm/softhsm2.conf   # before the process loads the module
//! softhsm2-util --init-token --free --label esdk-demo --pin 1234 --so-pin 5678
//!
//! # AES mode: import a 32-byte key (or keep its bytes only in the token: generate it there)
//! head -c 32 /dev/urandom > aes.bin
//! softhsm2-util --import aes.bin --aes --token esdk-demo --label wrapping-key --id a1 --pin 1234
//!
//! # RSA mode: import a key pair from a PKCS#8 PEM (private and public objects, one label)
//! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa.pem
//! softhsm2-util --import rsa.pem --token esdk-demo --label rsa-key --id b1 --pin 1234
//!
//! export ESDK_PKCS11_PIN=1234
//! ```
//!
//! SoftHSM2 2.6 unwraps `CKM_RSA_PKCS_OAEP` with SHA-1 only: an [`HsmRsaKeyring`] configured
//! for OAEP with SHA-256/384/512 fails at construction with
//! [`Pkcs11Error::MechanismUnsupported`] there. Use [`RsaPadding::OaepSha1`] (what the
//! official SDKs call `OAEP_SHA1_MGF1`) or a token that implements the others.
//!
//! ## Random bytes
//!
//! Data keys (when the keyring generates them) and AES-GCM IVs come from the source
//! [`Pkcs11Config::random_source`] names: the SDK's system CSPRNG ([`RandomSource::System`],
//! the default) or the token's RNG through `C_GenerateRandom` ([`RandomSource::Token`]).
//! Every draw emits a `DEBUG` [`tracing`] event with target [`RNG_TRACE_TARGET`] and the fields
//! `token`, `source` (`"token"` or `"system"`), `purpose` (`"data key"` or `"AES-GCM IV"`) and
//! `bytes` (how many; never the bytes themselves), so an audit (or a test) can see where
//! each data key came from.
//!
//! ## Errors
//!
//! Constructors return a typed [`Pkcs11Error`]: module not found, token not found, wrong
//! PIN, key not found or of the wrong type, RSA key too small for its padding
//! ([`Pkcs11Error::KeyTooSmall`]), mechanism unsupported, and so on. During encryption and
//! decryption a token fault reaches the caller as the SDK's `KeyringError` with
//! `KeyringFailure::Backend`, from which [`Pkcs11Error::from_keyring_error`] recovers it; an
//! EDK the token refused to unwrap (tampered, another key or encryption context) is
//! `KeyringFailure::UnwrapFailed`, decided without trusting the token's error code (SoftHSM2
//! reports a bad GCM tag as `CKR_GENERAL_ERROR`). No error or `Debug` output ever holds the
//! PIN or key material.
//!
//! Layout: [`config`] · [`error`] · `token` (module registry, login, session pool) · [`aes`]
//! · [`rsa`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aes;
pub mod config;
pub mod error;
mod module;
mod object;
mod pool;
pub mod rsa;
mod token;

/// The `tracing` target of the event each draw of random bytes emits (see
/// [Random bytes](crate#random-bytes)).
pub const RNG_TRACE_TARGET: &str = "keyring_pkcs11_hsm::rng";
/// `purpose` of a draw for a data key.
pub(crate) const PURPOSE_DATA_KEY: &str = "data key";
/// `purpose` of a draw for an AES-GCM IV.
pub(crate) const PURPOSE_IV: &str = "AES-GCM IV";

pub use crate::aes::{AesKeyConfig, HsmAesKeyring};
pub use crate::config::{
    Pin, PinSource, Pkcs11Config, RandomSource, TokenSelector, UserType, DEFAULT_MAX_SESSIONS,
};
pub use crate::error::Pkcs11Error;
pub use crate::pool::SessionStats;
pub use crate::rsa::{HsmRsaKeyring, RsaKeyConfig, RsaPadding, MAX_DATA_KEY_LEN};
pub use crate::token::Pkcs11Token;
/// The `cryptoki` crate this one is built on (for [`Pkcs11Token::context`]).
pub use cryptoki;
