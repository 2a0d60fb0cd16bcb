//! Key derivation: from the plaintext data key and message id to the frame key, and for
//! committing suites the commit key.

use crate::crypto::{self, HashAlgorithm};
use crate::error::Result;
use crate::suite::{AlgorithmSuite, Kdf};
use zeroize::Zeroizing;

/// The derived frame key and, for committing suites, the commit key.
pub struct DerivedKeys {
    /// The AES key for the header tag and frames.
    pub data_key: Zeroizing<Vec<u8>>,
    /// The commit key (committing suites only).
    pub commitment: Option<[u8; 32]>,
}

/// Derive the frame key (and commit key) for `suite`.
pub fn derive_keys(suite: AlgorithmSuite, data_key: &[u8], message_id: &[u8]) -> Result<DerivedKeys> {
    let id = suite.id().to_be_bytes();
    let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
    let provider = crypto::provider();
    let commitment = match suite.kdf() {
        Kdf::Identity => {
            key.copy_from_slice(data_key);
            None
        }
        Kdf::HkdfSha256 | Kdf::HkdfSha384 => {
            let hash = if suite.kdf() == Kdf::HkdfSha256 {
                HashAlgorithm::Sha256
            } else {
                HashAlgorithm::Sha384
            };
            provider.hkdf(hash, None, data_key, &mut [(&[&id, message_id], &mut key[..])])?;
            None
        }
        Kdf::HkdfSha512Commit => {
            let mut commit = [0u8; 32];
            provider.hkdf(
                HashAlgorithm::Sha512,
                Some(message_id),
                data_key,
                &mut [
                    (&[&id, b"DERIVEKEY"], &mut key[..]),
                    (&[b"COMMITKEY"], &mut commit[..]),
                ],
            )?;
            Some(commit)
        }
    };
    Ok(DerivedKeys {
        data_key: key,
        commitment,
    })
}
