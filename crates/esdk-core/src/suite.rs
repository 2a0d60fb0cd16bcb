//! The eleven ESDK algorithm suites and the commitment policy that limits them.

use core::fmt;

/// Which key derivation a suite uses to turn the data key into the frame key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// The data key is the frame key (legacy suites 0x00xx).
    Identity,
    /// HKDF-SHA-256, salt-less, info = suite id ‖ message id.
    HkdfSha256,
    /// HKDF-SHA-384, salt-less, info = suite id ‖ message id.
    HkdfSha384,
    /// HKDF-SHA-512 salted with the message id, with a key commitment.
    HkdfSha512Commit,
}

/// The signature algorithm of a signed suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA over P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA over P-384 with SHA-384.
    EcdsaP384Sha384,
}

impl SignatureAlgorithm {
    /// Length of the compressed SEC1 public point.
    pub const fn compressed_point_len(self) -> usize {
        match self {
            Self::EcdsaP256Sha256 => 33,
            Self::EcdsaP384Sha384 => 49,
        }
    }
}

/// The message format version a suite is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormatVersion {
    /// Header version 1 (16-byte message id).
    V1,
    /// Header version 2 (32-byte message id, commit key in the header).
    V2,
}

impl MessageFormatVersion {
    /// The version byte that opens the header.
    pub const fn byte(self) -> u8 {
        match self {
            Self::V1 => 0x01,
            Self::V2 => 0x02,
        }
    }

    /// Length of the message id in this version.
    pub const fn message_id_len(self) -> usize {
        match self {
            Self::V1 => 16,
            Self::V2 => 32,
        }
    }
}

/// An ESDK algorithm suite. All use AES-GCM with a 12-byte IV and 16-byte tag.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlgorithmSuite {
    /// 0x0014: AES-128-GCM, no KDF.
    Aes128GcmIv12Tag16NoKdf,
    /// 0x0046: AES-192-GCM, no KDF.
    Aes192GcmIv12Tag16NoKdf,
    /// 0x0078: AES-256-GCM, no KDF.
    Aes256GcmIv12Tag16NoKdf,
    /// 0x0114: AES-128-GCM, HKDF-SHA-256.
    Aes128GcmIv12Tag16HkdfSha256,
    /// 0x0146: AES-192-GCM, HKDF-SHA-256.
    Aes192GcmIv12Tag16HkdfSha256,
    /// 0x0178: AES-256-GCM, HKDF-SHA-256.
    Aes256GcmIv12Tag16HkdfSha256,
    /// 0x0214: AES-128-GCM, HKDF-SHA-256, ECDSA P-256.
    Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    /// 0x0346: AES-192-GCM, HKDF-SHA-384, ECDSA P-384.
    Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0378: AES-256-GCM, HKDF-SHA-384, ECDSA P-384.
    Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0478: AES-256-GCM, HKDF-SHA-512, key commitment.
    Aes256GcmHkdfSha512CommitKey,
    /// 0x0578: AES-256-GCM, HKDF-SHA-512, key commitment, ECDSA P-384.
    Aes256GcmHkdfSha512CommitKeyEcdsaP384,
}

impl AlgorithmSuite {
    /// Every suite, in id order.
    pub const ALL: [AlgorithmSuite; 11] = [
        Self::Aes128GcmIv12Tag16NoKdf,
        Self::Aes192GcmIv12Tag16NoKdf,
        Self::Aes256GcmIv12Tag16NoKdf,
        Self::Aes128GcmIv12Tag16HkdfSha256,
        Self::Aes192GcmIv12Tag16HkdfSha256,
        Self::Aes256GcmIv12Tag16HkdfSha256,
        Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmHkdfSha512CommitKey,
        Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];

    /// Length of the AEAD IV.
    pub const IV_LEN: usize = 12;
    /// Length of the AEAD tag.
    pub const TAG_LEN: usize = 16;
    /// Length of the commit key in v2 headers.
    pub const COMMIT_KEY_LEN: usize = 32;

    /// The suite with the given wire id, if it is an ESDK suite.
    pub const fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            0x0014 => Self::Aes128GcmIv12Tag16NoKdf,
            0x0046 => Self::Aes192GcmIv12Tag16NoKdf,
            0x0078 => Self::Aes256GcmIv12Tag16NoKdf,
            0x0114 => Self::Aes128GcmIv12Tag16HkdfSha256,
            0x0146 => Self::Aes192GcmIv12Tag16HkdfSha256,
            0x0178 => Self::Aes256GcmIv12Tag16HkdfSha256,
            0x0214 => Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
            0x0346 => Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
            0x0378 => Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
            0x0478 => Self::Aes256GcmHkdfSha512CommitKey,
            0x0578 => Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            _ => return None,
        })
    }

    /// The two-byte wire id.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes128GcmIv12Tag16NoKdf => 0x0014,
            Self::Aes192GcmIv12Tag16NoKdf => 0x0046,
            Self::Aes256GcmIv12Tag16NoKdf => 0x0078,
            Self::Aes128GcmIv12Tag16HkdfSha256 => 0x0114,
            Self::Aes192GcmIv12Tag16HkdfSha256 => 0x0146,
            Self::Aes256GcmIv12Tag16HkdfSha256 => 0x0178,
            Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => 0x0214,
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0346,
            Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0378,
            Self::Aes256GcmHkdfSha512CommitKey => 0x0478,
            Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => 0x0578,
        }
    }

    /// AES key length in bytes; also the data key (KDF input) length.
    pub const fn key_len(self) -> usize {
        match self.id() & 0x00ff {
            0x14 => 16,
            0x46 => 24,
            _ => 32,
        }
    }

    /// The data key length (the KDF input); equal to the key length for every ESDK suite.
    pub const fn data_key_len(self) -> usize {
        self.key_len()
    }

    /// The key derivation function.
    pub const fn kdf(self) -> Kdf {
        match self.id() >> 8 {
            0x00 => Kdf::Identity,
            0x01 | 0x02 => Kdf::HkdfSha256,
            0x03 => Kdf::HkdfSha384,
            _ => Kdf::HkdfSha512Commit,
        }
    }

    /// The signature algorithm, for signed suites.
    pub const fn signature(self) -> Option<SignatureAlgorithm> {
        match self.id() >> 8 {
            0x02 => Some(SignatureAlgorithm::EcdsaP256Sha256),
            0x03 | 0x05 => Some(SignatureAlgorithm::EcdsaP384Sha384),
            _ => None,
        }
    }

    /// Whether the suite signs the message.
    pub const fn is_signed(self) -> bool {
        self.signature().is_some()
    }

    /// Whether the suite commits to its key (v2 header with a commit key).
    pub const fn is_committing(self) -> bool {
        matches!(self.kdf(), Kdf::HkdfSha512Commit)
    }

    /// The message format version this suite is written with.
    pub const fn message_format(self) -> MessageFormatVersion {
        if self.is_committing() {
            MessageFormatVersion::V2
        } else {
            MessageFormatVersion::V1
        }
    }
}

impl fmt::Debug for AlgorithmSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlgorithmSuite(0x{:04X})", self.id())
    }
}

impl fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.id())
    }
}

/// Which suites encrypt may use and decrypt may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitmentPolicy {
    /// Encrypt with non-committing suites only; decrypt anything.
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites only; decrypt anything.
    RequireEncryptAllowDecrypt,
    /// Encrypt and decrypt committing suites only (the default).
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// Whether encrypt may use `suite` under this policy.
    pub const fn allows_encrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            Self::RequireEncryptAllowDecrypt | Self::RequireEncryptRequireDecrypt => {
                suite.is_committing()
            }
        }
    }

    /// Whether decrypt may accept `suite` under this policy.
    pub const fn allows_decrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::ForbidEncryptAllowDecrypt | Self::RequireEncryptAllowDecrypt => true,
            Self::RequireEncryptRequireDecrypt => suite.is_committing(),
        }
    }

    /// The suite encrypt uses when the caller names none. For the forbid policy this follows
    /// the shipping implementations (0x0378), not the spec text (0x0078).
    pub const fn default_suite(self) -> AlgorithmSuite {
        match self {
            Self::ForbidEncryptAllowDecrypt => AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
            _ => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_properties() {
        for suite in AlgorithmSuite::ALL {
            assert_eq!(AlgorithmSuite::from_id(suite.id()), Some(suite));
        }
        for id in [0x0000u16, 0x0070, 0x0074, 0x6700, 0x6701, 0xffff] {
            assert_eq!(AlgorithmSuite::from_id(id), None, "{id:#06x}");
        }
        let s = AlgorithmSuite::from_id(0x0346).unwrap();
        assert_eq!(s.key_len(), 24);
        assert_eq!(s.kdf(), Kdf::HkdfSha384);
        assert_eq!(s.signature(), Some(SignatureAlgorithm::EcdsaP384Sha384));
        assert_eq!(s.message_format(), MessageFormatVersion::V1);
        let s = AlgorithmSuite::from_id(0x0214).unwrap();
        assert_eq!((s.key_len(), s.kdf()), (16, Kdf::HkdfSha256));
        assert_eq!(s.signature(), Some(SignatureAlgorithm::EcdsaP256Sha256));
        let s = AlgorithmSuite::from_id(0x0478).unwrap();
        assert!(s.is_committing() && !s.is_signed());
        assert_eq!(s.message_format(), MessageFormatVersion::V2);
        assert_eq!(
            AlgorithmSuite::from_id(0x0078).unwrap().kdf(),
            Kdf::Identity
        );
    }

    #[test]
    fn policy_rules() {
        use CommitmentPolicy::*;
        let committing = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let legacy = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256;
        assert!(ForbidEncryptAllowDecrypt.allows_encrypt(legacy));
        assert!(!ForbidEncryptAllowDecrypt.allows_encrypt(committing));
        assert!(ForbidEncryptAllowDecrypt.allows_decrypt(committing));
        assert!(RequireEncryptAllowDecrypt.allows_decrypt(legacy));
        assert!(!RequireEncryptAllowDecrypt.allows_encrypt(legacy));
        assert!(!RequireEncryptRequireDecrypt.allows_decrypt(legacy));
        assert_eq!(CommitmentPolicy::default(), RequireEncryptRequireDecrypt);
        assert_eq!(RequireEncryptRequireDecrypt.default_suite().id(), 0x0578);
        assert_eq!(ForbidEncryptAllowDecrypt.default_suite().id(), 0x0378);
    }
}
