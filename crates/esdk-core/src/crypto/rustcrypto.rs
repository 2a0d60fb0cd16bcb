//! RustCrypto pieces that fill the gaps of the primary provider: AES-192-GCM, and ECDSA over
//! a precomputed digest (needed to sign and verify a message hashed as it streams) with
//! compressed SEC1 points.

use super::{AeadKey, AuthenticationFailed, SigningKey, VerifyingKey};
use crate::error::{Error, FormatError, Result};
use crate::suite::SignatureAlgorithm;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};

/// AES-192-GCM, which `ring` lacks.
pub(crate) struct Aes192GcmKey(AesGcm<aes_gcm::aes::Aes192, U12>);

impl Aes192GcmKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self> {
        AesGcm::new_from_slice(key)
            .map(Self)
            .map_err(|_| Error::Crypto("AES-192 key must be 24 bytes"))
    }
}

impl AeadKey for Aes192GcmKey {
    fn seal_in_place(&self, iv: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; 16]> {
        let tag = self
            .0
            .encrypt_inout_detached(iv.into(), aad, in_out.into())
            .map_err(|_| Error::Crypto("AES-192-GCM seal failed"))?;
        Ok(tag.into())
    }

    fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AuthenticationFailed> {
        self.0
            .decrypt_inout_detached(iv.into(), aad, in_out.into(), tag.into())
            .map_err(|_| AuthenticationFailed)
    }
}

/// An ECDSA key pair on P-256 or P-384; the scalar is zeroized on drop by the `ecdsa` crate.
pub(crate) enum EcdsaSigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl EcdsaSigningKey {
    /// Build from uniformly random scalar candidates drawn by `fill`, rejecting out-of-range
    /// values (probability about 2^-128 or less per try).
    pub(crate) fn generate(
        alg: SignatureAlgorithm,
        mut fill: impl FnMut(&mut [u8]) -> Result<()>,
    ) -> Result<Self> {
        let mut candidate = zeroize::Zeroizing::new([0u8; 48]);
        for _ in 0..64 {
            match alg {
                SignatureAlgorithm::EcdsaP256Sha256 => {
                    fill(&mut candidate[..32])?;
                    if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&candidate[..32]) {
                        return Ok(Self::P256(k));
                    }
                }
                SignatureAlgorithm::EcdsaP384Sha384 => {
                    fill(&mut candidate[..])?;
                    if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&candidate[..]) {
                        return Ok(Self::P384(k));
                    }
                }
            }
        }
        Err(Error::Crypto("could not generate an ECDSA key"))
    }
}

impl SigningKey for EcdsaSigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            Self::P384(_) => SignatureAlgorithm::EcdsaP384Sha384,
        }
    }

    fn public_key_compressed(&self) -> Vec<u8> {
        match self {
            Self::P256(k) => k.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            Self::P384(k) => k.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
        }
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let err = |_| Error::Crypto("ECDSA signing failed");
        Ok(match self {
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash(digest).map_err(err)?;
                sig.to_der().as_bytes().to_vec()
            }
            Self::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign_prehash(digest).map_err(err)?;
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

/// An ECDSA public key on P-256 or P-384.
pub(crate) enum EcdsaVerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl EcdsaVerifyingKey {
    pub(crate) fn from_sec1(alg: SignatureAlgorithm, sec1: &[u8]) -> Result<Self> {
        let bad = |_| Error::Format(FormatError::VerificationKey("not a valid point on the suite's curve"));
        Ok(match alg {
            SignatureAlgorithm::EcdsaP256Sha256 => {
                Self::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).map_err(bad)?)
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                Self::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1).map_err(bad)?)
            }
        })
    }
}

impl VerifyingKey for EcdsaVerifyingKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            Self::P384(_) => SignatureAlgorithm::EcdsaP384Sha384,
        }
    }

    fn verify_digest(&self, digest: &[u8], signature_der: &[u8]) -> Result<()> {
        let ok = match self {
            Self::P256(k) => p256::ecdsa::Signature::from_der(signature_der)
                .map_err(|_| Error::Format(FormatError::Footer))
                .map(|sig| k.verify_prehash(digest, &sig).is_ok())?,
            Self::P384(k) => p384::ecdsa::Signature::from_der(signature_der)
                .map_err(|_| Error::Format(FormatError::Footer))
                .map(|sig| k.verify_prehash(digest, &sig).is_ok())?,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::SignatureVerification)
        }
    }
}
