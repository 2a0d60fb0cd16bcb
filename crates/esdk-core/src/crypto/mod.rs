//! The crypto seam: every primitive the format needs, behind one small trait.
//!
//! The format code never names `ring`, `aws-lc-rs` or a RustCrypto crate; it asks the
//! [`CryptoProvider`] for AEAD keys, HKDF, hashes, ECDSA keys and randomness. A second
//! provider is a new module implementing this trait, with no change to the format code.
//!
//! # Key material in memory
//!
//! Every key buffer this crate owns is zeroized when dropped: plaintext data keys, derived
//! frame keys, the plaintext copy [`aes_gcm_seal`] seals in place (also when sealing fails),
//! the plaintext [`aes_gcm_open`] returns, and ECDSA scalar candidates. What a provider
//! builds *from* a key is the provider's own memory, and not every provider clears it:
//!
//! - **AWS-LC** (`aws-lc`, `fips`; in the default combined provider, ECDSA and AES-192-GCM)
//!   clears its AES-GCM key schedules when they are freed (AWS-LC's allocator cleanses every
//!   block it frees), and `aws-lc-rs` zeroizes HKDF PRKs on drop.
//! - **RustCrypto** (`aes-gcm` for AES-192-GCM and `p256`/`p384` for ECDSA, under the `ring`
//!   provider): `aes-gcm` is built with its `zeroize` feature, so its AES key schedule and
//!   GHASH key are cleared on drop; ECDSA signing scalars are zeroized on drop.
//! - **`ring`** (AES-128/256-GCM and HKDF in the `ring` provider and in the default combined
//!   provider) does **not** zeroize its expanded AES key schedules, GHASH keys or HKDF PRKs
//!   (HMAC key states) on drop, and offers no way to clear them from outside; they stay in
//!   freed heap (AEAD keys) or stack (HKDF) memory until it is reused. Where that matters,
//!   install the AWS-LC provider: `crypto::install_default(crypto::aws_lc())`.

use crate::error::{Error, Result};
use crate::suite::SignatureAlgorithm;
use core::fmt;

#[cfg(any(feature = "aws-lc", feature = "fips"))]
mod aws_lc_provider;
#[cfg(all(feature = "ring", feature = "aws-lc", not(feature = "fips")))]
mod combined;
#[cfg(feature = "ring")]
mod ring_provider;
#[cfg(feature = "ring")]
mod rustcrypto;

#[cfg(not(any(feature = "ring", feature = "aws-lc", feature = "fips")))]
compile_error!("esdk-core needs a crypto provider: enable the `aws-lc` or the `ring` feature");

/// An AES-GCM key with a 12-byte IV and 16-byte tag.
pub trait AeadKey: Send + Sync {
    /// Encrypt `in_out` in place and return the tag.
    fn seal_in_place(&self, iv: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; 16]>;

    /// Decrypt `in_out` in place after verifying `tag`. On failure the buffer's contents are
    /// unspecified and must not be released; the caller gets only the error.
    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AuthenticationFailed>;
}

/// The AEAD tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// Hash functions the format uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// A running hash.
pub trait Hasher: Send {
    /// Absorb bytes.
    fn update(&mut self, data: &[u8]);
    /// The digest of everything absorbed.
    fn finish(self: Box<Self>) -> Vec<u8>;
}

/// A per-message ECDSA signing key. Implementations zeroize the scalar on drop.
pub trait SigningKey: Send + Sync {
    /// The curve and hash.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The compressed SEC1 public point.
    fn public_key_compressed(&self) -> Vec<u8>;
    /// Sign a digest computed with the suite's hash; returns a DER signature.
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>>;
}

/// An ECDSA verification key.
pub trait VerifyingKey: Send + Sync {
    /// The curve and hash.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Verify a DER signature over a digest computed with the suite's hash.
    fn verify_digest(&self, digest: &[u8], signature_der: &[u8]) -> Result<()>;
}

/// All primitives one provider offers.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// An AES-GCM key of 16, 24 or 32 bytes.
    fn aead_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>>;
    /// HKDF-Extract then Expand to fill each output of `outputs` with its own info.
    /// `salt = None` means the RFC 5869 default (hash-length zeros).
    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: Option<&[u8]>,
        ikm: &[u8],
        outputs: &mut [(&[&[u8]], &mut [u8])],
    ) -> Result<()>;
    /// A new running hash.
    fn hasher(&self, hash: HashAlgorithm) -> Box<dyn Hasher>;
    /// A fresh ECDSA key pair.
    fn generate_signing_key(&self, alg: SignatureAlgorithm) -> Result<Box<dyn SigningKey>>;
    /// Parse a compressed (or uncompressed) SEC1 public point.
    fn verifying_key(&self, alg: SignatureAlgorithm, sec1: &[u8]) -> Result<Box<dyn VerifyingKey>>;
    /// Fill `out` from a CSPRNG.
    fn fill_random(&self, out: &mut [u8]) -> Result<()>;
}

static INSTALLED: std::sync::OnceLock<&'static dyn CryptoProvider> = std::sync::OnceLock::new();

/// The provider in use: the one given to [`install_default`] if any; otherwise, by the
/// features built:
/// - `fips`: AWS-LC's FIPS module for everything;
/// - `ring` and `aws-lc` (the default): `ring` for AES-GCM, HKDF, SHA-2 and randomness, AWS-LC
///   for ECDSA and AES-192 (`combined_provider`);
/// - `aws-lc` alone: AWS-LC; `ring` alone: `ring` with RustCrypto ECDSA and AES-192.
pub fn provider() -> &'static dyn CryptoProvider {
    *INSTALLED.get_or_init(compiled_default)
}

/// Choose the provider for the whole process. Works once, before the first use of
/// [`provider`]; otherwise returns the provider already in use.
///
/// ```
/// let chosen = esdk_core::crypto::provider();
/// assert!(esdk_core::crypto::install_default(chosen).is_err());
/// ```
pub fn install_default(
    provider: &'static dyn CryptoProvider,
) -> Result<(), &'static dyn CryptoProvider> {
    INSTALLED.set(provider).map_err(|_| self::provider())
}

fn compiled_default() -> &'static dyn CryptoProvider {
    #[cfg(feature = "fips")]
    {
        aws_lc()
    }
    #[cfg(all(feature = "ring", feature = "aws-lc", not(feature = "fips")))]
    {
        combined_provider()
    }
    #[cfg(all(feature = "aws-lc", not(feature = "ring"), not(feature = "fips")))]
    {
        aws_lc()
    }
    #[cfg(not(any(feature = "aws-lc", feature = "fips")))]
    {
        ring()
    }
}

/// `ring` for AES-GCM, HKDF, SHA-2 and randomness, AWS-LC for ECDSA and AES-192: the fastest
/// of each on current servers (features `ring` and `aws-lc`, without `fips`).
#[cfg(all(feature = "ring", feature = "aws-lc", not(feature = "fips")))]
pub fn combined_provider() -> &'static dyn CryptoProvider {
    &combined::COMBINED
}

/// The `ring` provider (feature `ring`), whichever provider is in use.
#[cfg(feature = "ring")]
pub fn ring() -> &'static dyn CryptoProvider {
    &ring_provider::RING
}

/// The `aws-lc-rs` provider (feature `aws-lc` or `fips`).
#[cfg(any(feature = "aws-lc", feature = "fips"))]
pub fn aws_lc() -> &'static dyn CryptoProvider {
    &aws_lc_provider::AWS_LC
}

/// Random bytes from the default provider.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    provider().fill_random(&mut out)?;
    Ok(out)
}

/// One-shot AES-GCM seal with the default provider: returns ciphertext ‖ tag.
/// Meant for keyrings wrapping small data keys.
///
/// The copy of `plaintext` sealed in place stays in a zeroizing buffer until the seal
/// succeeds; if it fails, the buffer is cleared before the error is returned.
pub fn aes_gcm_seal(key: &[u8], iv: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = provider().aead_key(key)?;
    // Room for the tag up front: appending it never reallocates, so no stray copy of the
    // buffer is ever freed without being cleared.
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    out.extend_from_slice(plaintext);
    let tag = key.seal_in_place(iv, aad, &mut out)?;
    out.extend_from_slice(&tag);
    // Only ciphertext ‖ tag is left: release the buffer without clearing it.
    Ok(core::mem::take(&mut *out))
}

/// One-shot AES-GCM open with the default provider of `ciphertext ‖ tag`.
/// The plaintext is returned in a zeroizing buffer.
pub fn aes_gcm_open(
    key: &[u8],
    iv: &[u8; 12],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let split = ciphertext_and_tag
        .len()
        .checked_sub(16)
        .ok_or(Error::Crypto("AES-GCM input shorter than its tag"))?;
    let (ct, tag) = ciphertext_and_tag.split_at(split);
    let mut tag_arr = [0u8; 16];
    tag_arr.copy_from_slice(tag);
    let key = provider().aead_key(key)?;
    let mut out = zeroize::Zeroizing::new(ct.to_vec());
    key.open_in_place(iv, aad, &mut out, &tag_arr)
        .map_err(|_| Error::Crypto("AES-GCM authentication failed"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIST GCM test vector (Test Case 3 of the GCM spec, AES-128).
    #[test]
    fn aes_gcm_known_answer_and_tamper() {
        let key = [0u8; 16];
        let iv = [0u8; 12];
        let sealed = aes_gcm_seal(&key, &iv, &[], &[0u8; 16]).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"
        );
        assert_eq!(
            &aes_gcm_open(&key, &iv, &[], &sealed).unwrap()[..],
            &[0u8; 16]
        );
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(aes_gcm_open(&key, &iv, &[], &bad).is_err());
        assert!(aes_gcm_open(&key, &iv, b"x", &sealed).is_err());
        assert!(aes_gcm_open(&key, &iv, &[], &sealed[..10]).is_err());
    }

    #[test]
    fn aes_192_gcm_round_trip() {
        let key = [7u8; 24];
        let iv = [1u8; 12];
        let sealed = aes_gcm_seal(&key, &iv, b"aad", b"hello").unwrap();
        assert_eq!(
            &aes_gcm_open(&key, &iv, b"aad", &sealed).unwrap()[..],
            b"hello"
        );
        assert!(provider().aead_key(&[0u8; 20]).is_err());
    }

    #[test]
    fn hkdf_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        provider()
            .hkdf(
                HashAlgorithm::Sha256,
                Some(&salt),
                &ikm,
                &mut [(&[&info[..]], &mut okm[..])],
            )
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn ecdsa_sign_verify_both_curves() {
        for alg in [
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP384Sha384,
        ] {
            let hash = match alg {
                SignatureAlgorithm::EcdsaP256Sha256 => HashAlgorithm::Sha256,
                SignatureAlgorithm::EcdsaP384Sha384 => HashAlgorithm::Sha384,
            };
            let key = provider().generate_signing_key(alg).unwrap();
            let public = key.public_key_compressed();
            assert_eq!(public.len(), alg.compressed_point_len());
            let mut h = provider().hasher(hash);
            h.update(b"message");
            let digest = h.finish();
            let sig = key.sign_digest(&digest).unwrap();
            let vk = provider().verifying_key(alg, &public).unwrap();
            vk.verify_digest(&digest, &sig).unwrap();
            let mut other = digest.clone();
            other[0] ^= 1;
            assert!(vk.verify_digest(&other, &sig).is_err());
            assert!(vk.verify_digest(&digest, &sig[1..]).is_err());
            assert!(provider().verifying_key(alg, &public[1..]).is_err());
        }
    }
}
