//! One error type for the whole SDK, with sub-enums for the families of failure.
//!
//! Variants say what was wrong (which header field, which frame, which keyring and why) and
//! never carry a byte of key material or plaintext.

use crate::suite::{AlgorithmSuite, CommitmentPolicy};
use std::fmt;

/// Everything that can go wrong while encrypting or decrypting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message bytes are not a well-formed ESDK message.
    #[error("malformed message: {0}")]
    Format(#[from] FormatError),

    /// The message ended before it was complete.
    #[error("message truncated: {0}")]
    Truncated(&'static str),

    /// The input looks like a Base64-encoded message; decode it first.
    #[error("the message appears to be Base64-encoded; decode it before decrypting")]
    Base64Encoded,

    /// The suite is not an ESDK suite.
    #[error("algorithm suite 0x{0:04X} is not an AWS Encryption SDK suite")]
    UnknownSuite(u16),

    /// The commitment policy refuses this suite.
    #[error("algorithm suite {suite} is not allowed by commitment policy {policy:?}")]
    SuiteNotAllowed {
        /// The suite refused.
        suite: AlgorithmSuite,
        /// The policy in force.
        policy: CommitmentPolicy,
    },

    /// The message holds more encrypted data keys than the client allows.
    #[error("message has {count} encrypted data keys, more than the configured maximum {max}")]
    TooManyEncryptedDataKeys {
        /// How many the message (or materials) hold.
        count: usize,
        /// The configured maximum.
        max: u16,
    },

    /// The encryption context is invalid for this use.
    #[error("invalid encryption context: {0}")]
    EncryptionContext(#[from] ContextError),

    /// The key commitment in the header does not match the data key.
    #[error("key commitment mismatch: the data key does not match the header's commitment")]
    CommitmentMismatch,

    /// The header authentication tag did not verify.
    #[error("header authentication failed (wrong key, tampered header, or wrong reproduced encryption context)")]
    HeaderAuthentication,

    /// A frame's authentication tag did not verify.
    #[error("authentication failed for frame {sequence_number}")]
    FrameAuthentication {
        /// The sequence number of the frame (1 for a non-framed body).
        sequence_number: u32,
    },

    /// The message signature did not verify.
    #[error("message signature verification failed")]
    SignatureVerification,

    /// The message is signed and the caller refused signed messages.
    #[error("message uses signed suite {0} but unsigned-only decryption was requested")]
    SignedMessageRefused(AlgorithmSuite),

    /// A random-access read asked for plaintext outside the message.
    #[error("plaintext range of {len} bytes at offset {start} is outside the message's {plaintext_len} bytes")]
    RangeOutOfBounds {
        /// Offset of the first byte asked for.
        start: u64,
        /// Bytes asked for.
        len: u64,
        /// The message's plaintext length.
        plaintext_len: u64,
    },

    /// Bytes follow the end of the message.
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),

    /// A keyring failed.
    #[error(transparent)]
    Keyring(#[from] KeyringError),

    /// The materials a CMM or keyring returned break the rules.
    #[error("invalid materials: {0}")]
    Materials(String),

    /// The plaintext is longer than the bound the caller declared.
    #[error("plaintext exceeds the declared bound of {bound} bytes")]
    PlaintextTooLong {
        /// The declared bound.
        bound: u64,
    },

    /// A streaming reader or writer was used again after it failed; it stays failed.
    #[error("the stream already failed: {0}")]
    StreamFailed(String),

    /// A caller-supplied setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A cryptographic primitive failed unexpectedly (never carries secrets).
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),

    /// Reading or writing a stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Which part of the message was malformed, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The first byte is not a known header version.
    #[error("unknown header version 0x{0:02X}")]
    UnknownVersion(u8),
    /// The v1 type byte is not 0x80.
    #[error("unknown v1 message type 0x{0:02X} (expected 0x80)")]
    UnknownType(u8),
    /// The header version does not match the suite.
    #[error("header version {version} cannot carry suite {suite}")]
    VersionSuiteMismatch {
        /// The header version byte.
        version: u8,
        /// The suite in the header.
        suite: AlgorithmSuite,
    },
    /// The AAD length and the serialized context disagree.
    #[error("encryption context: {0}")]
    EncryptionContext(#[from] ContextError),
    /// Zero EDKs.
    #[error("the header holds no encrypted data keys")]
    NoEncryptedDataKeys,
    /// An EDK provider id is not UTF-8.
    #[error("encrypted data key {index}: provider id is not UTF-8")]
    ProviderIdNotUtf8 {
        /// Index of the EDK.
        index: usize,
    },
    /// Unknown content type.
    #[error("unknown content type 0x{0:02X}")]
    UnknownContentType(u8),
    /// Non-zero v1 reserved field.
    #[error("reserved header field is not zero")]
    ReservedNotZero,
    /// IV length field other than 12.
    #[error("header IV length {0} does not match the suite's 12")]
    IvLength(u8),
    /// Frame length inconsistent with the content type.
    #[error("frame length {frame_length} is invalid for {content}")]
    FrameLength {
        /// The header's frame length.
        frame_length: u32,
        /// The content type it was paired with.
        content: &'static str,
    },
    /// A frame arrived out of order.
    #[error("frame sequence number {found}, expected {expected}")]
    SequenceNumber {
        /// What the frame said.
        found: u32,
        /// What was expected.
        expected: u32,
    },
    /// A frame's IV is not the deterministic IV for its sequence number.
    #[error("frame {0} carries an IV that does not match its sequence number")]
    FrameIv(u32),
    /// Final frame longer than the frame length.
    #[error("final frame content length {length} exceeds the frame length {frame_length}")]
    FinalFrameLength {
        /// The final frame's length.
        length: u32,
        /// The header's frame length.
        frame_length: u32,
    },
    /// Non-framed content longer than the format allows.
    #[error("non-framed content length {0} exceeds 2^36 - 32")]
    NonFramedLength(u64),
    /// A final frame where the message's length puts a regular frame.
    #[error("frame {0} is a final frame, but the message goes on after it")]
    FinalFrameBeforeEnd(u32),
    /// The frame count would overflow a u32.
    #[error("too many frames")]
    TooManyFrames,
    /// The footer signature is not a DER ECDSA signature or has a bad length.
    #[error("malformed signature footer")]
    Footer,
    /// The verification key in the context is bad.
    #[error("invalid verification key in the encryption context: {0}")]
    VerificationKey(&'static str),
}

/// What is wrong with an encryption context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A key uses the reserved `aws-crypto-` prefix.
    #[error("key {0:?} uses the reserved prefix \"aws-crypto-\"")]
    ReservedKey(String),
    /// The serialization would exceed a u16 length field.
    #[error("serialized encryption context is too large ({0} bytes, at most 65535)")]
    TooLarge(usize),
    /// A key or value longer than 65535 bytes.
    #[error("a key or value is longer than 65535 bytes")]
    EntryTooLarge,
    /// The same key appears twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// The serialized pairs do not fill the declared length exactly.
    #[error("serialized pairs do not match the declared length")]
    LengthMismatch,
    /// A non-empty serialization with a zero count.
    #[error("non-empty encryption context with a pair count of zero")]
    ZeroCount,
    /// Not UTF-8.
    #[error("a key or value is not valid UTF-8")]
    NotUtf8,
    /// A reproduced value disagrees with the stored one.
    #[error("reproduced encryption context value for key {0:?} differs from the message's")]
    ReproducedMismatch(String),
    /// A required key is absent.
    #[error("required encryption context key {0:?} is missing")]
    MissingRequiredKey(String),
    /// The public key entry is missing for a signed suite, or present for an unsigned one.
    #[error("{0}")]
    PublicKeyEntry(&'static str),
}

/// A keyring's failure: which keyring, and why.
#[derive(Debug, thiserror::Error)]
#[error("{keyring}: {reason}")]
pub struct KeyringError {
    /// A description of the keyring (kind and key name; never key material).
    pub keyring: String,
    /// What went wrong.
    pub reason: KeyringFailure,
}

impl KeyringError {
    /// A keyring error for the keyring described by `keyring`.
    pub fn new(keyring: impl Into<String>, reason: KeyringFailure) -> Self {
        Self {
            keyring: keyring.into(),
            reason,
        }
    }
}

/// Why a keyring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringFailure {
    /// On decrypt the materials already hold a data key.
    #[error("the materials already hold a plaintext data key")]
    DataKeyAlreadyPresent,
    /// A keyring that cannot generate was given materials with no data key.
    #[error("no plaintext data key to wrap and this keyring cannot generate one")]
    NoDataKey,
    /// None of the EDKs is addressed to this keyring.
    #[error("none of the {0} encrypted data keys is addressed to this keyring")]
    NoMatchingKey(usize),
    /// EDKs addressed to this keyring were found but none unwrapped.
    #[error("could not unwrap any encrypted data key: {}", DisplayList(.0))]
    UnwrapFailed(Vec<String>),
    /// The keyring holds no key for this operation (e.g. a public-only RSA keyring on decrypt).
    #[error("{0}")]
    Unsupported(String),
    /// Wrapping failed.
    #[error("wrapping the data key failed: {0}")]
    WrapFailed(String),
    /// The keyring's configuration is invalid.
    #[error("invalid keyring configuration: {0}")]
    Config(String),
    /// Every keyring of a multi-keyring failed: each one's error, in order.
    #[error("every keyring failed: {}", DisplayList(.0))]
    AllFailed(Vec<KeyringError>),
    /// A backend (KMS, HSM, ...) error.
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The materials violate a rule.
    #[error("invalid materials: {0}")]
    Materials(String),
}

struct DisplayList<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for DisplayList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {item}", i + 1)?;
        }
        Ok(())
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
