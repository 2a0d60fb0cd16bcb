//! What can go wrong between this crate and a PKCS#11 token.
//!
//! [`Pkcs11Error`] is returned by the constructors ([`Pkcs11Token::open`],
//! [`HsmAesKeyring::new`], [`HsmRsaKeyring::new`]; the RSA keyring's refuses a key too small
//! for its padding with [`Pkcs11Error::KeyTooSmall`]). The keyrings' `on_encrypt` and
//! `on_decrypt` return the SDK's `KeyringError`: a token fault travels inside it as
//! `KeyringFailure::Backend` and can be recovered with [`Pkcs11Error::from_keyring_error`];
//! an EDK the token refused to unwrap (tampered, another key, another encryption context) is
//! `KeyringFailure::UnwrapFailed`, like every other keyring's.
//!
//! No variant carries a PIN or key material.
//!
//! [`Pkcs11Token::open`]: crate::Pkcs11Token::open
//! [`HsmAesKeyring::new`]: crate::HsmAesKeyring::new
//! [`HsmRsaKeyring::new`]: crate::HsmRsaKeyring::new

use crate::rsa::{RsaPadding, MAX_DATA_KEY_LEN};
use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use esdk_core::{KeyringError, KeyringFailure};
use std::path::PathBuf;

/// A fault of the PKCS#11 module, the token, or this crate's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// No file at the module path.
    #[error("PKCS#11 module not found at {path}")]
    ModuleNotFound {
        /// The configured module path.
        path: PathBuf,
    },

    /// The module file exists but could not be loaded as a PKCS#11 library.
    #[error("cannot load PKCS#11 module {path}: {detail}")]
    ModuleLoad {
        /// The configured module path.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },

    /// `C_Initialize` failed.
    #[error("cannot initialize PKCS#11 module {path}: {source}")]
    ModuleInitialize {
        /// The configured module path.
        path: PathBuf,
        /// The module's error.
        source: CkError,
    },

    /// No slot holds a token with this label.
    #[error("no PKCS#11 token labelled {label:?} (tokens present: {available:?})")]
    TokenNotFound {
        /// The label asked for.
        label: String,
        /// Labels of the tokens that are present.
        available: Vec<String>,
    },

    /// No slot with this id has a token.
    #[error("PKCS#11 slot {slot} does not exist or holds no token")]
    SlotNotFound {
        /// The slot id asked for.
        slot: u64,
    },

    /// The PIN environment variable is not set (or not UTF-8).
    #[error("the PIN environment variable {var} is not set or not valid UTF-8")]
    PinEnvVarMissing {
        /// The variable's name.
        var: String,
    },

    /// The token refused the PIN (`CKR_PIN_INCORRECT`).
    #[error("login to token {token:?} failed: wrong PIN")]
    WrongPin {
        /// The token's label.
        token: String,
    },

    /// The token's PIN is locked, expired, or otherwise unusable.
    #[error("login to token {token:?} failed: {reason}")]
    PinUnusable {
        /// The token's label.
        token: String,
        /// Locked, expired, ...
        reason: &'static str,
    },

    /// No object with this label (and id) and class is visible in the token.
    #[error("no {class} labelled {label:?}{} in token {token:?}", id_suffix(.id))]
    KeyNotFound {
        /// The token's label.
        token: String,
        /// The key label asked for.
        label: String,
        /// The key id asked for, if any.
        id: Option<Vec<u8>>,
        /// The object class looked for ("AES secret key", "RSA private key", ...).
        class: &'static str,
    },

    /// Objects with this label exist but none is the kind of key the keyring needs.
    #[error("object labelled {label:?} in token {token:?} is {found}, not an {expected}")]
    KeyWrongType {
        /// The token's label.
        token: String,
        /// The key label.
        label: String,
        /// What the keyring needs.
        expected: &'static str,
        /// What was found.
        found: String,
    },

    /// More than one key matches; add an id to the configuration.
    #[error(
        "{count} objects labelled {label:?} match in token {token:?}; configure the key id too"
    )]
    AmbiguousKey {
        /// The token's label.
        token: String,
        /// The key label.
        label: String,
        /// How many matched.
        count: usize,
    },

    /// The key's attributes forbid the operation (e.g. `CKA_DECRYPT` false) or do not fit.
    #[error("key {label:?} in token {token:?} cannot be used: {reason}")]
    KeyUnusable {
        /// The token's label.
        token: String,
        /// The key label.
        label: String,
        /// Which attribute is wrong.
        reason: String,
    },

    /// The public key does not belong to the private key.
    #[error("the public key does not match private key {label:?} (different modulus)")]
    KeyPairMismatch {
        /// The private key's label.
        label: String,
    },

    /// The RSA key's modulus is too short for the padding to wrap the longest data key
    /// ([`MAX_DATA_KEY_LEN`] bytes); see [`RsaPadding::max_plaintext_len`].
    #[error(
        "RSA key {key:?} in token {token:?} has {bits} bits: with {} it can wrap at most {max} \
         bytes, but data keys can be {MAX_DATA_KEY_LEN} bytes; use a larger key or another padding",
        .padding.mechanism_name()
    )]
    KeyTooSmall {
        /// The token's label.
        token: String,
        /// The key object's label (private or public key object), or `(public key given as
        /// X.509)` for a public key configured as PEM or DER.
        key: String,
        /// The modulus size in bits.
        bits: usize,
        /// The padding configured.
        padding: RsaPadding,
        /// The longest plaintext this key and padding can wrap, in bytes (0 if none).
        max: usize,
    },

    /// A public key given in software could not be parsed.
    #[error("invalid RSA public key: {0}")]
    PublicKey(String),

    /// The token does not offer the mechanism, or refuses its parameters.
    #[error("token {token:?} does not support {mechanism}: {detail}")]
    MechanismUnsupported {
        /// The token's label.
        token: String,
        /// The mechanism with its parameters, e.g. `CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256)`.
        mechanism: String,
        /// What the token said.
        detail: String,
    },

    /// The token closed the session (or logged it out) and a fresh session failed too.
    #[error("token {token:?} closed the session and recovery failed: {detail}")]
    SessionLost {
        /// The token's label.
        token: String,
        /// The error of the last attempt.
        detail: String,
    },

    /// Any other PKCS#11 failure.
    #[error("token {token:?}: {operation} failed: {source}")]
    Token {
        /// The token's label.
        token: String,
        /// What this crate was doing.
        operation: &'static str,
        /// The module's error (function and return value).
        source: CkError,
    },

    /// The system random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),

    /// The configuration is invalid.
    #[error("invalid PKCS#11 keyring configuration: {0}")]
    Config(String),

    /// The blocking task running the PKCS#11 call panicked or was cancelled.
    #[error("the blocking PKCS#11 task failed: {0}")]
    Runtime(String),
}

fn id_suffix(id: &Option<Vec<u8>>) -> String {
    match id {
        Some(id) => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            format!(" with id {hex}")
        }
        None => String::new(),
    }
}

impl Pkcs11Error {
    /// The PKCS#11 fault inside a keyring error, if the keyring error came from one.
    pub fn from_keyring_error(error: &KeyringError) -> Option<&Pkcs11Error> {
        match &error.reason {
            KeyringFailure::Backend(inner) => inner.downcast_ref::<Pkcs11Error>(),
            _ => None,
        }
    }

    /// The PKCS#11 return value, when the token returned one.
    pub fn return_value(&self) -> Option<RvError> {
        match self {
            Self::ModuleInitialize { source, .. } | Self::Token { source, .. } => rv(source),
            _ => None,
        }
    }

    /// Wrap into a keyring error for the keyring described by `keyring`.
    pub(crate) fn into_keyring_error(self, keyring: &str) -> KeyringError {
        KeyringError::new(keyring, KeyringFailure::Backend(Box::new(self)))
    }
}

/// The return value of a PKCS#11 error, if it is one.
pub(crate) fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// The function that failed, if it was a PKCS#11 call.
pub(crate) fn function(e: &CkError) -> Option<Function> {
    match e {
        CkError::Pkcs11(_, f) => Some(*f),
        _ => None,
    }
}

/// How the session layer should react to a PKCS#11 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// The session is gone (closed by the token, device removed): open a new one.
    NewSession,
    /// The whole module was finalized: initialize it again, then open a new session.
    Reinitialize,
    /// The session lost its login (or its object handles): log in again, find keys again.
    Relogin,
    /// Not a session problem.
    None,
}

pub(crate) fn recovery_for(e: &CkError) -> Recovery {
    match rv(e) {
        Some(
            RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::OperationActive,
        ) => Recovery::NewSession,
        Some(RvError::CryptokiNotInitialized) => Recovery::Reinitialize,
        Some(
            RvError::UserNotLoggedIn | RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
        ) => Recovery::Relogin,
        _ => Recovery::None,
    }
}

/// Whether an error at `C_*Init` means the token refuses the mechanism or its parameters.
pub(crate) fn is_mechanism_refusal(e: &CkError) -> bool {
    matches!(
        function(e),
        Some(Function::DecryptInit | Function::EncryptInit)
    ) && matches!(
        rv(e),
        Some(
            RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::ArgumentsBad
                | RvError::FunctionNotSupported
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(rv: RvError, f: Function) -> CkError {
        CkError::Pkcs11(rv, f)
    }

    #[test]
    fn session_faults_are_classified_for_recovery() {
        for rv in [
            RvError::SessionClosed,
            RvError::SessionHandleInvalid,
            RvError::DeviceRemoved,
        ] {
            assert_eq!(
                recovery_for(&ck(rv, Function::Decrypt)),
                Recovery::NewSession
            );
        }
        assert_eq!(
            recovery_for(&ck(RvError::CryptokiNotInitialized, Function::EncryptInit)),
            Recovery::Reinitialize
        );
        for rv in [RvError::UserNotLoggedIn, RvError::KeyHandleInvalid] {
            assert_eq!(
                recovery_for(&ck(rv, Function::EncryptInit)),
                Recovery::Relogin
            );
        }
        // A bad GCM tag (SoftHSM2: CKR_GENERAL_ERROR) is not a session fault.
        assert_eq!(
            recovery_for(&ck(RvError::GeneralError, Function::Decrypt)),
            Recovery::None
        );
        assert_eq!(recovery_for(&CkError::NotSupported), Recovery::None);
    }

    #[test]
    fn mechanism_refusals_only_at_init() {
        assert!(is_mechanism_refusal(&ck(
            RvError::ArgumentsBad,
            Function::DecryptInit
        )));
        assert!(is_mechanism_refusal(&ck(
            RvError::MechanismInvalid,
            Function::EncryptInit
        )));
        assert!(!is_mechanism_refusal(&ck(
            RvError::ArgumentsBad,
            Function::Decrypt
        )));
        assert!(!is_mechanism_refusal(&ck(
            RvError::GeneralError,
            Function::DecryptInit
        )));
    }

    #[test]
    fn keyring_errors_carry_the_typed_fault() {
        let e = Pkcs11Error::WrongPin { token: "t".into() }.into_keyring_error("some keyring");
        assert!(
            e.to_string()
                .starts_with("some keyring: login to token \"t\" failed: wrong PIN"),
            "{e}"
        );
        assert!(matches!(
            Pkcs11Error::from_keyring_error(&e),
            Some(Pkcs11Error::WrongPin { .. })
        ));
        let other = KeyringError::new("k", KeyringFailure::NoDataKey);
        assert!(Pkcs11Error::from_keyring_error(&other).is_none());
        let e = Pkcs11Error::KeyNotFound {
            token: "t".into(),
            label: "l".into(),
            id: Some(vec![0xa1, 0x02]),
            class: "AES secret key",
        };
        assert_eq!(
            e.to_string(),
            "no AES secret key labelled \"l\" with id a102 in token \"t\""
        );
    }
}
