//! The `ring` provider: AES-128/256-GCM, HKDF, SHA-2 and the system RNG from `ring`;
//! AES-192-GCM and digest-based ECDSA from RustCrypto, which `ring` does not offer.

use super::rustcrypto::{Aes192GcmKey, EcdsaSigningKey, EcdsaVerifyingKey};
use super::{AeadKey, AuthenticationFailed, CryptoProvider, HashAlgorithm, Hasher, SigningKey, VerifyingKey};
use crate::error::{Error, Result};
use crate::suite::SignatureAlgorithm;
use ring::rand::SecureRandom;
use ring::{aead, digest, hkdf};

/// The `ring`-based provider.
#[derive(Debug)]
pub(crate) struct RingProvider;

pub(crate) static RING: RingProvider = RingProvider;

struct RingAeadKey(aead::LessSafeKey);

impl AeadKey for RingAeadKey {
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
        let tag = aead::Tag::from(*tag);
        self.0
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*iv),
                aead::Aad::from(aad),
                tag,
                in_out,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AuthenticationFailed)
    }
}

struct RingHasher(digest::Context);

impl Hasher for RingHasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

/// Lets ring's HKDF fill an output of any length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl CryptoProvider for RingProvider {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn aead_key(&self, key: &[u8]) -> Result<Box<dyn AeadKey>> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            24 => return Ok(Box::new(Aes192GcmKey::new(key)?)),
            32 => &aead::AES_256_GCM,
            _ => return Err(Error::Crypto("AES-GCM key must be 16, 24 or 32 bytes")),
        };
        let key = aead::UnboundKey::new(alg, key).map_err(|_| Error::Crypto("bad AES key"))?;
        Ok(Box::new(RingAeadKey(aead::LessSafeKey::new(key))))
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
        Box::new(RingHasher(digest::Context::new(alg)))
    }

    fn generate_signing_key(&self, alg: SignatureAlgorithm) -> Result<Box<dyn SigningKey>> {
        Ok(Box::new(EcdsaSigningKey::generate(alg, |buf| {
            self.fill_random(buf)
        })?))
    }

    fn verifying_key(&self, alg: SignatureAlgorithm, sec1: &[u8]) -> Result<Box<dyn VerifyingKey>> {
        Ok(Box::new(EcdsaVerifyingKey::from_sec1(alg, sec1)?))
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<()> {
        ring::rand::SystemRandom::new()
            .fill(out)
            .map_err(|_| Error::Crypto("system random number generator failed"))
    }
}
