//! The `aws-lc-rs` provider: every primitive the format needs from AWS-LC alone.
//! AES-128/192/256-GCM, HKDF, SHA-2, the system RNG, and ECDSA P-256/P-384 signing and
//! verifying a digest computed as the message streams (compressed SEC1 public points).
//!
//! AWS-LC's P-384 is several times faster than the RustCrypto code the `ring` provider
//! borrows for ECDSA, which is what signed messages spend their time on when they are short.
//!
//! With the `fips` feature the same code runs on the FIPS-validated AWS-LC module. Two calls
//! used here are outside that module's approved services: ECDSA over a precomputed digest
//! (needed to sign a message hashed as it streams) and AES-GCM with a caller-chosen nonce
//! (the format fixes the IVs). The build is FIPS-module-backed; whether a deployment counts
//! as FIPS-approved is for its security policy to decide.

use super::{
    AeadKey, AuthenticationFailed, CryptoProvider, HashAlgorithm, Hasher, SigningKey, VerifyingKey,
};
use crate::error::{Error, FormatError, Result};
use crate::suite::SignatureAlgorithm;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, ParsedPublicKey};
use aws_lc_rs::{aead, digest, hkdf};

/// The `aws-lc-rs` provider.
#[derive(Debug)]
pub(crate) struct AwsLcProvider;

pub(crate) static AWS_LC: AwsLcProvider = AwsLcProvider;

struct AwsLcAeadKey(aead::LessSafeKey);

impl AeadKey for AwsLcAeadKey {
    fn seal_in_place(&self, iv: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; 16]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| Error::Crypto("AES-GCM seal failed"))?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AuthenticationFailed> {
        self.0
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                tag,
                in_out,
            )
            .map(|_| ())
            .map_err(|_| AuthenticationFailed)
    }
}

struct AwsLcHasher(digest::Context);

impl Hasher for AwsLcHasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

/// Lets HKDF fill an output of any length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn digest_alg(alg: SignatureAlgorithm) -> &'static digest::Algorithm {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => &digest::SHA256,
        SignatureAlgorithm::EcdsaP384Sha384 => &digest::SHA384,
    }
}

/// An ECDSA key pair; AWS-LC clears the private scalar when the key is freed.
struct AwsLcSigningKey {
    alg: SignatureAlgorithm,
    key: EcdsaKeyPair,
}

impl SigningKey for AwsLcSigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    fn public_key_compressed(&self) -> Vec<u8> {
        // Compressing a valid point cannot fail; an empty result would be caught by the
        // point-length checks of whoever reads it.
        AsBigEndian::<EcPublicKeyCompressedBin>::as_be_bytes(self.key.public_key())
            .map(|bin| bin.as_ref().to_vec())
            .unwrap_or_default()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let digest = digest::Digest::import_less_safe(digest, digest_alg(self.alg))
            .map_err(|_| Error::Crypto("digest of the wrong length for the signature"))?;
        let signature = self
            .key
            .sign_digest(&digest)
            .map_err(|_| Error::Crypto("ECDSA signing failed"))?;
        Ok(signature.as_ref().to_vec())
    }
}

struct AwsLcVerifyingKey {
    alg: SignatureAlgorithm,
    key: ParsedPublicKey,
}

impl VerifyingKey for AwsLcVerifyingKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    fn verify_digest(&self, digest: &[u8], signature_der: &[u8]) -> Result<()> {
        if !is_der_ecdsa_signature(signature_der) {
            return Err(Error::Format(FormatError::Footer));
        }
        let digest = digest::Digest::import_less_safe(digest, digest_alg(self.alg))
            .map_err(|_| Error::Crypto("digest of the wrong length for the signature"))?;
        self.key
            .verify_digest_sig(&digest, signature_der)
            .map_err(|_| Error::SignatureVerification)
    }
}

/// Whether `sig` is shaped like a DER `SEQUENCE { INTEGER r, INTEGER s }`, so a malformed
/// footer is reported as such rather than as a failed verification (AWS-LC does the strict
/// parse).
fn is_der_ecdsa_signature(sig: &[u8]) -> bool {
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        if t != tag {
            return None;
        }
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 => {
                let (&len, rest) = rest.split_first()?;
                (usize::from(len), rest)
            }
            _ => return None,
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let Some((body, after)) = tlv(sig, 0x30) else {
        return false;
    };
    let Some((r, body)) = tlv(body, 0x02) else {
        return false;
    };
    let Some((s, body)) = tlv(body, 0x02) else {
        return false;
    };
    after.is_empty() && body.is_empty() && !r.is_empty() && !s.is_empty()
}

impl CryptoProvider for AwsLcProvider {
    fn name(&self) -> &'static str {
        if cfg!(feature = "fips") {
            "aws-lc-rs (FIPS module)"
        } else {
            "aws-lc-rs"
        }
    }

    fn aead_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            24 => &aead::AES_192_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(Error::Crypto("AES-GCM key must be 16, 24 or 32 bytes")),
        };
        let key = aead::UnboundKey::new(alg, key).map_err(|_| Error::Crypto("bad AES key"))?;
        Ok(Box::new(AwsLcAeadKey(aead::LessSafeKey::new(key))))
    }

    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: Option<&[u8]>,
        ikm: &[u8],
        outputs: &mut [(&[&[u8]], &mut [u8])],
    ) -> Result<()> {
        let alg = match hash {
            HashAlgorithm::Sha256 => hkdf::HKDF_SHA256,
            HashAlgorithm::Sha384 => hkdf::HKDF_SHA384,
            HashAlgorithm::Sha512 => hkdf::HKDF_SHA512,
        };
        let zeros = [0u8; 64];
        let salt = salt.unwrap_or(&zeros[..hash.output_len()]);
        let prk = hkdf::Salt::new(alg, salt).extract(ikm);
        for (info, out) in outputs.iter_mut() {
            prk.expand(info, Len(out.len()))
                .and_then(|okm| okm.fill(out))
                .map_err(|_| Error::Crypto("HKDF output too long"))?;
        }
        Ok(())
    }

    fn hasher(&self, hash: HashAlgorithm) -> Box<dyn Hasher> {
        let alg = match hash {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        };
        Box::new(AwsLcHasher(digest::Context::new(alg)))
    }

    fn generate_signing_key(&self, alg: SignatureAlgorithm) -> Result<Box<dyn SigningKey>> {
        let signing = match alg {
            SignatureAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            SignatureAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        };
        let key = EcdsaKeyPair::generate(signing)
            .map_err(|_| Error::Crypto("could not generate an ECDSA key"))?;
        Ok(Box::new(AwsLcSigningKey { alg, key }))
    }

    fn verifying_key(&self, alg: SignatureAlgorithm, sec1: &[u8]) -> Result<Box<dyn VerifyingKey>> {
        let (verify, len) = match alg {
            SignatureAlgorithm::EcdsaP256Sha256 => (&signature::ECDSA_P256_SHA256_ASN1, 32),
            SignatureAlgorithm::EcdsaP384Sha384 => (&signature::ECDSA_P384_SHA384_ASN1, 48),
        };
        // Only SEC1 points: compressed (the format's) or uncompressed.
        let shaped = matches!(
            (sec1.first(), sec1.len()),
            (Some(2 | 3), n) if n == 1 + len
        ) || matches!((sec1.first(), sec1.len()), (Some(4), n) if n == 1 + 2 * len);
        let bad = || {
            Error::Format(FormatError::VerificationKey(
                "not a valid point on the suite's curve",
            ))
        };
        if !shaped {
            return Err(bad());
        }
        let key = ParsedPublicKey::new(verify, sec1).map_err(|_| bad())?;
        Ok(Box::new(AwsLcVerifyingKey { alg, key }))
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<()> {
        aws_lc_rs::rand::SystemRandom::new()
            .fill(out)
            .map_err(|_| Error::Crypto("system random number generator failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_shape_check() {
        assert!(is_der_ecdsa_signature(&[0x30, 6, 2, 1, 1, 2, 1, 1]));
        assert!(!is_der_ecdsa_signature(&[0x30, 6, 2, 1, 1, 2, 1]));
        assert!(!is_der_ecdsa_signature(&[0x30, 7, 2, 1, 1, 2, 1, 1, 0]));
        assert!(!is_der_ecdsa_signature(&[0x31, 6, 2, 1, 1, 2, 1, 1]));
        assert!(!is_der_ecdsa_signature(&[0x30, 4, 2, 0, 2, 0]));
        assert!(!is_der_ecdsa_signature(&[]));
    }

    /// With both providers built, each one's output is accepted by the other: AES-GCM, HKDF,
    /// and ECDSA signatures and compressed points on both curves.
    #[cfg(feature = "ring")]
    #[test]
    fn interoperates_with_the_ring_provider() {
        let (a, b) = (crate::crypto::aws_lc(), crate::crypto::ring());
        for key_len in [16, 24, 32] {
            let key = vec![9u8; key_len];
            let mut buf = b"frame content".to_vec();
            let tag = a
                .aead_key(&key)
                .unwrap()
                .seal_in_place(&[1; 12], b"aad", &mut buf)
                .unwrap();
            b.aead_key(&key)
                .unwrap()
                .open_in_place(&[1; 12], b"aad", &mut buf, &tag)
                .unwrap();
            assert_eq!(buf, b"frame content");
        }
        let (mut x, mut y) = ([0u8; 40], [0u8; 40]);
        a.hkdf(
            HashAlgorithm::Sha512,
            Some(b"salt"),
            b"ikm",
            &mut [(&[b"info"], &mut x[..])],
        )
        .unwrap();
        b.hkdf(
            HashAlgorithm::Sha512,
            Some(b"salt"),
            b"ikm",
            &mut [(&[b"info"], &mut y[..])],
        )
        .unwrap();
        assert_eq!(x, y);
        for alg in [
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP384Sha384,
        ] {
            let hash = crate::encrypt::signature_hash(alg);
            for (signer, verifier) in [(a, b), (b, a)] {
                let key = signer.generate_signing_key(alg).unwrap();
                let mut h = signer.hasher(hash);
                h.update(b"message");
                let digest = h.finish();
                let sig = key.sign_digest(&digest).unwrap();
                let vk = verifier
                    .verifying_key(alg, &key.public_key_compressed())
                    .unwrap();
                vk.verify_digest(&digest, &sig).unwrap();
                let mut other = digest.clone();
                other[3] ^= 1;
                assert!(matches!(
                    vk.verify_digest(&other, &sig),
                    Err(Error::SignatureVerification)
                ));
            }
        }
    }
}
