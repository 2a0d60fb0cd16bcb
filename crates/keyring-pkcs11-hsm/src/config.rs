//! How to reach a token: module path, token, PIN, user type, session pool size, RNG.

use crate::error::Pkcs11Error;
use std::fmt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Which token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token whose label is this (trailing blanks ignored). Preferred: slot ids may be
    /// reassigned (SoftHSM2 gives slots random-looking ids).
    Label(String),
    /// The token in this slot.
    Slot(u64),
}

/// A token PIN. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// A PIN from a secret string.
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

/// Where the PIN comes from.
#[derive(Clone)]
pub enum PinSource {
    /// This PIN.
    Secret(Pin),
    /// The value of this environment variable, read when the token is opened.
    EnvVar(String),
}

impl PinSource {
    pub(crate) fn resolve(&self) -> Result<Pin, Pkcs11Error> {
        match self {
            Self::Secret(pin) => Ok(pin.clone()),
            Self::EnvVar(var) => std::env::var(var)
                .map(Pin::new)
                .map_err(|_| Pkcs11Error::PinEnvVarMissing { var: var.clone() }),
        }
    }
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([REDACTED])"),
            Self::EnvVar(var) => f.debug_tuple("EnvVar").field(var).finish(),
        }
    }
}

/// The PKCS#11 user type to log in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserType {
    /// The normal user (`CKU_USER`): what key operations need.
    #[default]
    User,
    /// The security officer (`CKU_SO`); sessions are opened read-write.
    SecurityOfficer,
    /// `CKU_CONTEXT_SPECIFIC`.
    ContextSpecific,
}

impl From<UserType> for cryptoki::session::UserType {
    fn from(u: UserType) -> Self {
        match u {
            UserType::User => Self::User,
            UserType::SecurityOfficer => Self::So,
            UserType::ContextSpecific => Self::ContextSpecific,
        }
    }
}

/// Where data keys (and AES-GCM IVs) come from. Each draw is reported as a `tracing`
/// event (target [`RNG_TRACE_TARGET`](crate::RNG_TRACE_TARGET)) naming its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RandomSource {
    /// The SDK's system CSPRNG (no token round trip).
    #[default]
    System,
    /// The token's RNG (`C_GenerateRandom`).
    Token,
}

/// The default maximum number of sessions a token handle keeps open.
pub const DEFAULT_MAX_SESSIONS: usize = 4;

/// Configuration of a [`Pkcs11Token`](crate::Pkcs11Token). `Debug` never shows the PIN.
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    pub(crate) module: PathBuf,
    pub(crate) token: TokenSelector,
    pub(crate) pin: PinSource,
    pub(crate) user_type: UserType,
    pub(crate) max_sessions: usize,
    pub(crate) random: RandomSource,
}

impl Pkcs11Config {
    /// A configuration for the token chosen by `token` in the module at `module`, logging in
    /// as the normal user with `pin`.
    pub fn new(module: impl Into<PathBuf>, token: TokenSelector, pin: PinSource) -> Self {
        Self {
            module: module.into(),
            token,
            pin,
            user_type: UserType::User,
            max_sessions: DEFAULT_MAX_SESSIONS,
            random: RandomSource::System,
        }
    }

    /// Shorthand: the token labelled `label`, with the PIN from the environment variable
    /// `pin_var`.
    pub fn with_label_and_pin_env(
        module: impl Into<PathBuf>,
        label: impl Into<String>,
        pin_var: impl Into<String>,
    ) -> Self {
        Self::new(
            module,
            TokenSelector::Label(label.into()),
            PinSource::EnvVar(pin_var.into()),
        )
    }

    /// Log in as this user type (default: the normal user).
    pub fn user_type(mut self, user_type: UserType) -> Self {
        self.user_type = user_type;
        self
    }

    /// Keep at most this many sessions open (default [`DEFAULT_MAX_SESSIONS`]). More
    /// concurrent callers wait for a free session. Must be at least 1.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Where data keys and IVs come from (default: the system RNG).
    pub fn random_source(mut self, source: RandomSource) -> Self {
        self.random = source;
        self
    }

    /// The module path.
    pub fn module(&self) -> &std::path::Path {
        &self.module
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_show_in_debug() {
        let config = Pkcs11Config::new(
            "/m.so",
            TokenSelector::Label("t".into()),
            PinSource::Secret(Pin::new("s3cr3t-pin")),
        );
        let text = format!("{config:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
        let env = Pkcs11Config::with_label_and_pin_env("/m.so", "t", "MY_PIN_VAR");
        assert!(format!("{env:?}").contains("MY_PIN_VAR"));
    }

    #[test]
    fn pin_from_a_missing_variable_is_a_typed_error() {
        let var = "KEYRING_PKCS11_HSM_UNIT_TEST_UNSET_VARIABLE";
        match PinSource::EnvVar(var.into()).resolve() {
            Err(Pkcs11Error::PinEnvVarMissing { var: v }) => assert_eq!(v, var),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            PinSource::Secret(Pin::new("1234"))
                .resolve()
                .unwrap()
                .expose(),
            "1234"
        );
    }
}
