//! The default provider when both `ring` and `aws-lc` are built (and `fips` is not): each
//! primitive from the library that is fastest at it on current x86-64 and ARM servers.
//!
//! - AES-128/256-GCM, HKDF, SHA-2 and the RNG from `ring`, whose AES-GCM has VAES/AVX2 code
//!   that AWS-LC only has for AVX-512 (measured here: 2.2 GiB/s against 1.35 GiB/s in
//!   4096-byte frames on a Zen 3 EPYC without AVX-512);
//! - ECDSA P-256/P-384 and AES-192-GCM from AWS-LC, whose P-384 signs about ten times faster
//!   than the RustCrypto code the `ring` provider falls back to (`ring` cannot sign a digest
//!   computed as a message streams).
//!
//! Both halves are the same code as [`super::ring`] and [`super::aws_lc`]; only the routing
//! is here.

use super::{AeadKey, CryptoProvider, HashAlgorithm, Hasher, SigningKey, VerifyingKey};
use crate::error::Result;
use crate::suite::SignatureAlgorithm;

/// `ring` for symmetric primitives, AWS-LC for signatures and AES-192.
#[derive(Debug)]
pub(crate) struct Combined;

pub(crate) static COMBINED: Combined = Combined;

impl CryptoProvider for Combined {
    fn name(&self) -> &'static str {
        "ring + aws-lc-rs"
    }

    fn aead_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>> {
        match key.len() {
            24 => super::aws_lc().aead_key(key),
            _ => super::ring().aead_key(key),
        }
    }

    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: Option<&[u8]>,
        ikm: &[u8],
        outputs: &mut [(&[&[u8]], &mut [u8])],
    ) -> Result<()> {
        super::ring().hkdf(hash, salt, ikm, outputs)
    }

    fn hasher(&self, hash: HashAlgorithm) -> Box<dyn Hasher> {
        super::ring().hasher(hash)
    }

    fn generate_signing_key(&self, alg: SignatureAlgorithm) -> Result<Box<dyn SigningKey>> {
        super::aws_lc().generate_signing_key(alg)
    }

    fn verifying_key(&self, alg: SignatureAlgorithm, sec1: &[u8]) -> Result<Box<dyn VerifyingKey>> {
        super::aws_lc().verifying_key(alg, sec1)
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<()> {
        super::ring().fill_random(out)
    }
}
