//! Typed errors for everything a KMS keyring can meet at run time.
//!
//! Keyrings report failures as [`esdk_core::KeyringError`] (which names the keyring) whose
//! reason is [`KeyringFailure::Backend`] holding a [`KmsError`]; get it back with
//! [`kms_error`]. Every variant that involves a KMS call names the key and the operation;
//! a failure KMS reported carries KMS's error code ([`KmsError::code`]). No variant carries
//! plaintext or key material.

use crate::arn::ArnError;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use core::fmt;
use esdk_core::{KeyringError, KeyringFailure};

/// The KMS API operation a call made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KmsOperation {
    /// `GenerateDataKey`.
    GenerateDataKey,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
    /// `GetPublicKey`.
    GetPublicKey,
}

impl KmsOperation {
    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GenerateDataKey => "GenerateDataKey",
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::GetPublicKey => "GetPublicKey",
        }
    }
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in a KMS keyring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// KMS answered with an error (`NotFoundException`, `AccessDeniedException`,
    /// `InvalidCiphertextException`, `ThrottlingException`, ...), after the client's retries.
    #[error("KMS {operation} with key {key_id} failed with {code}: {message}")]
    Service {
        /// The key the call named.
        key_id: String,
        /// The operation.
        operation: KmsOperation,
        /// KMS's error code.
        code: String,
        /// KMS's message (may be empty).
        message: String,
    },
    /// The call was not made because no Tokio runtime is running on this thread: the AWS
    /// SDK's HTTP client and timers need one (and would panic without it). Drive KMS
    /// keyrings from async code on a Tokio runtime (`Client::encrypt` / `decrypt` awaited
    /// there, or `Runtime::block_on`), not from `Client::encrypt_blocking` /
    /// `decrypt_blocking` on a thread outside Tokio.
    #[error("KMS {operation} with key {key_id} was not called: a KMS keyring needs a Tokio runtime (the AWS SDK's HTTP client and timers run on it), and none is running on this thread; call it from async code on a Tokio runtime instead of encrypt_blocking / decrypt_blocking")]
    NoTokioRuntime {
        /// The key the call would have named.
        key_id: String,
        /// The operation.
        operation: KmsOperation,
    },
    /// No answer within the client's configured timeouts.
    #[error("KMS {operation} with key {key_id} timed out (see ClientSettings for the timeouts): {detail}")]
    Timeout {
        /// The key the call named.
        key_id: String,
        /// The operation.
        operation: KmsOperation,
        /// What the SDK reported.
        detail: String,
    },
    /// KMS could not be reached (connection refused, DNS, TLS, ...).
    #[error("KMS {operation} with key {key_id}: could not reach KMS: {detail}")]
    Unreachable {
        /// The key the call named.
        key_id: String,
        /// The operation.
        operation: KmsOperation,
        /// What the SDK reported.
        detail: String,
    },
    /// The call failed in the SDK before or after the network (bad request parameters, an
    /// unparsable response, ...).
    #[error("KMS {operation} with key {key_id} failed in the SDK: {detail}")]
    Sdk {
        /// The key the call named.
        key_id: String,
        /// The operation.
        operation: KmsOperation,
        /// What the SDK reported.
        detail: String,
    },
    /// KMS answered for a different key than the one asked.
    #[error("KMS {operation} was asked to use key {requested} but answered for key {returned}")]
    KeyIdMismatch {
        /// The operation.
        operation: KmsOperation,
        /// The key the call named.
        requested: String,
        /// The key KMS named in its response.
        returned: String,
    },
    /// The response's key id is not a key ARN.
    #[error("KMS {operation} with key {key_id} returned key id {returned:?}, which is not a key ARN: {reason}")]
    ReturnedKeyIdNotArn {
        /// The operation.
        operation: KmsOperation,
        /// The key the call named.
        key_id: String,
        /// What KMS returned.
        returned: String,
        /// Why it is not a key ARN.
        reason: ArnError,
    },
    /// A field the specification requires is missing from the response.
    #[error("KMS {operation} with key {key_id} returned no {field}")]
    MissingField {
        /// The operation.
        operation: KmsOperation,
        /// The key the call named.
        key_id: String,
        /// The missing field.
        field: &'static str,
    },
    /// The plaintext data key KMS returned has the wrong length for the suite.
    #[error("KMS {operation} with key {key_id} returned a {actual}-byte data key; the algorithm suite needs {expected} bytes")]
    PlaintextLength {
        /// The operation.
        operation: KmsOperation,
        /// The key the call named.
        key_id: String,
        /// The suite's data key length.
        expected: usize,
        /// What KMS returned.
        actual: usize,
    },
    /// An `aws-kms` (or `aws-kms-rsa`) encrypted data key whose provider info is not a key
    /// ARN: the specification makes decryption fail outright.
    #[error("encrypted data key {index} has provider id {provider_id:?} but its provider info {provider_info:?} is not a KMS key ARN: {reason}")]
    MalformedProviderInfo {
        /// Position of the EDK in the message.
        index: usize,
        /// The provider id.
        provider_id: String,
        /// The provider info, lossily decoded as UTF-8.
        provider_info: String,
        /// Why it is not a key ARN.
        reason: ArnError,
    },
    /// The keyring is configured with an alias or bare key id, which can encrypt but never
    /// match an encrypted data key.
    #[error("this keyring's key {key_id:?} is {kind}; decrypt needs the key ARN (arn:<partition>:kms:<region>:<account>:key/<id>), because encrypted data keys name their key by key ARN")]
    DecryptNeedsKeyArn {
        /// The configured identifier.
        key_id: String,
        /// What kind of identifier it is.
        kind: &'static str,
    },
    /// A discovery keyring skipped a key its discovery filter excludes.
    #[error("key {key_arn} is excluded by the discovery filter: {why}")]
    FilteredOut {
        /// The key ARN from the encrypted data key.
        key_arn: String,
        /// Which part of the filter excluded it.
        why: String,
    },
    /// An MRK discovery keyring skipped a single-region key of another region.
    #[error("key {key_arn} is a single-region key in {key_region}; this keyring's client is in {region}")]
    OtherRegion {
        /// The key ARN from the encrypted data key.
        key_arn: String,
        /// The key's region.
        key_region: String,
        /// The keyring's region.
        region: String,
    },
    /// An encrypted data key for a key other than the configured one.
    #[error("encrypted data key {index} is for key {key_arn}, not this keyring's key")]
    OtherKey {
        /// Position of the EDK in the message.
        index: usize,
        /// The key ARN from the encrypted data key.
        key_arn: String,
    },
    /// The KMS RSA keyring unwrapped a data key bound to another encryption context.
    #[error(
        "the data key unwrapped by KMS key {key_id} is bound to a different encryption context"
    )]
    EncryptionContextMismatch {
        /// The key.
        key_id: String,
    },
    /// Local RSA-OAEP encryption with the KMS key's public key failed.
    #[error("RSA-OAEP encryption with the public key of {key_id} failed: {detail}")]
    LocalEncrypt {
        /// The key.
        key_id: String,
        /// What failed.
        detail: String,
    },
    /// No encrypted data key could be decrypted: one reason per `aws-kms` EDK considered.
    #[error("none of the {edk_count} encrypted data keys was decrypted{}", Reasons(.reasons))]
    NothingDecrypted {
        /// How many EDKs the message holds (all providers).
        edk_count: usize,
        /// Why each EDK addressed to a KMS key was skipped or failed, in message order.
        reasons: Vec<KmsError>,
    },
}

struct Reasons<'a>(&'a [KmsError]);

impl fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(" (none was addressed to an AWS KMS key this keyring can use)");
        }
        f.write_str(": ")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {r}", i + 1)?;
        }
        Ok(())
    }
}

impl KmsError {
    /// KMS's error code (`NotFoundException`, ...), for failures KMS reported.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The key the failure concerns, where there is one.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Service { key_id, .. }
            | Self::NoTokioRuntime { key_id, .. }
            | Self::Timeout { key_id, .. }
            | Self::Unreachable { key_id, .. }
            | Self::Sdk { key_id, .. }
            | Self::ReturnedKeyIdNotArn { key_id, .. }
            | Self::MissingField { key_id, .. }
            | Self::PlaintextLength { key_id, .. }
            | Self::DecryptNeedsKeyArn { key_id, .. }
            | Self::EncryptionContextMismatch { key_id }
            | Self::LocalEncrypt { key_id, .. } => Some(key_id),
            Self::KeyIdMismatch { requested, .. } => Some(requested),
            Self::FilteredOut { key_arn, .. }
            | Self::OtherRegion { key_arn, .. }
            | Self::OtherKey { key_arn, .. } => Some(key_arn),
            Self::MalformedProviderInfo { .. } | Self::NothingDecrypted { .. } => None,
        }
    }

    /// For [`KmsError::NothingDecrypted`], the reason for each EDK; otherwise empty.
    pub fn reasons(&self) -> &[KmsError] {
        match self {
            Self::NothingDecrypted { reasons, .. } => reasons,
            _ => &[],
        }
    }

    /// Map an SDK error to a typed error naming the key and operation.
    pub(crate) fn from_sdk<E, R>(key_id: &str, operation: KmsOperation, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let key_id = key_id.to_owned();
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                Self::Service {
                    key_id,
                    operation,
                    code: e.code().unwrap_or("(no error code)").to_owned(),
                    message: e.message().unwrap_or_default().to_owned(),
                }
            }
            SdkError::TimeoutError(_) => Self::Timeout {
                key_id,
                operation,
                detail: source_chain(&err),
            },
            SdkError::DispatchFailure(d) if d.is_timeout() => Self::Timeout {
                key_id,
                operation,
                detail: source_chain(&err),
            },
            SdkError::DispatchFailure(d) if d.is_io() || d.is_other() => Self::Unreachable {
                key_id,
                operation,
                detail: source_chain(&err),
            },
            _ => Self::Sdk {
                key_id,
                operation,
                detail: source_chain(&err),
            },
        }
    }

    /// Wrap as a keyring failure.
    pub(crate) fn into_failure(self) -> KeyringFailure {
        KeyringFailure::Backend(Box::new(self))
    }
}

/// The error and its sources, joined: the SDK's top-level messages ("dispatch failure") say
/// little without them.
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    let mut depth = 0;
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    out
}

/// The [`KmsError`] inside a keyring error from this crate, if there is one.
///
/// ```
/// use esdk_core::{KeyringError, KeyringFailure};
/// use keyring_kms::{kms_error, KmsError};
///
/// let err = KeyringError::new(
///     "AWS KMS keyring",
///     KeyringFailure::Backend(Box::new(KmsError::DecryptNeedsKeyArn {
///         key_id: "alias/orders".into(),
///         kind: "an alias name",
///     })),
/// );
/// assert_eq!(kms_error(&err).and_then(KmsError::key_id), Some("alias/orders"));
/// ```
pub fn kms_error(err: &KeyringError) -> Option<&KmsError> {
    match &err.reason {
        KeyringFailure::Backend(b) => b.downcast_ref::<KmsError>(),
        _ => None,
    }
}
