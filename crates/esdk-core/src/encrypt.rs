//! Message encryption as a frame-at-a-time encoder: header, then frames, then the footer.
//! The one-shot API and the streaming writers drive the same [`MessageEncryptor`].

use crate::context;
use crate::crypto::{self, HashAlgorithm, Hasher, SigningKey};
use crate::error::{Error, Result};
use crate::format::body::FrameCipher;
use crate::format::footer::write_footer;
use crate::format::header::{ContentType, Header};
use crate::kdf::derive_keys;
use crate::materials::EncryptionMaterials;
use crate::suite::{AlgorithmSuite, SignatureAlgorithm};
use std::sync::Arc;

/// The hash a signature algorithm signs with.
pub(crate) fn signature_hash(alg: SignatureAlgorithm) -> HashAlgorithm {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => HashAlgorithm::Sha256,
        SignatureAlgorithm::EcdsaP384Sha384 => HashAlgorithm::Sha384,
    }
}

/// Splits a plaintext length into frames: `(regular frames, final frame length)`.
/// An exact multiple of the frame length ends with a full final frame, as the spec prefers.
pub fn frame_layout(plaintext_len: u64, frame_length: u32) -> (u64, u64) {
    let fl = u64::from(frame_length);
    if plaintext_len == 0 {
        return (0, 0);
    }
    let regular = (plaintext_len - 1) / fl;
    (regular, plaintext_len - regular * fl)
}

/// The exact ciphertext length of a message, given its header length.
pub fn ciphertext_len(header_len: usize, plaintext_len: u64, frame_length: u32, signed_footer_max: usize) -> Option<u64> {
    let (regular, last) = frame_layout(plaintext_len, frame_length);
    let frames = regular
        .checked_mul(u64::from(frame_length) + crate::format::body::REGULAR_FRAME_OVERHEAD as u64)?
        .checked_add(last + crate::format::body::FINAL_FRAME_OVERHEAD as u64)?;
    frames.checked_add(header_len as u64 + signed_footer_max as u64)
}

/// Encodes one message. Feed it regular frames of exactly `frame_length` bytes, then one
/// final frame, then call [`finish`](Self::finish).
pub struct MessageEncryptor {
    header: Header,
    cipher: Arc<FrameCipher>,
    next_sequence: u32,
    signer: Option<(Box<dyn Hasher>, Arc<dyn SigningKey>)>,
    final_written: bool,
}

impl MessageEncryptor {
    /// Derive keys from `materials`, build and authenticate the header, and append the
    /// serialized header to `out`.
    pub fn new(materials: &EncryptionMaterials, frame_length: u32, out: &mut Vec<u8>) -> Result<Self> {
        if frame_length == 0 {
            return Err(Error::Config("frame length must be at least 1".into()));
        }
        let suite = materials.suite();
        let data_key = materials
            .data_key()
            .ok_or_else(|| Error::Materials("no plaintext data key".into()))?;
        let version = suite.message_format();
        let mut message_id = vec![0u8; version.message_id_len()];
        crypto::provider().fill_random(&mut message_id)?;
        let derived = derive_keys(suite, data_key.as_bytes(), &message_id)?;
        let required = materials.required_encryption_context_keys();
        let stored_context = materials
            .encryption_context()
            .iter()
            .filter(|(k, _)| !required.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut header = Header {
            version,
            suite,
            message_id: message_id.clone(),
            encryption_context: stored_context,
            encrypted_data_keys: materials.encrypted_data_keys().to_vec(),
            content_type: ContentType::Framed,
            frame_length,
            commitment: derived.commitment,
            auth_iv: [0; 12],
            auth_tag: [0; 16],
        };
        let key = crypto::provider().aead_key(&derived.data_key)?;
        let header_start = out.len();
        let body = header.serialize_body()?;
        let mut aad = body;
        let body_len = aad.len();
        context::serialize_subset(materials.encryption_context(), required)
            .map(|extra| aad.extend_from_slice(&extra))?;
        header.auth_tag = key.seal_in_place(&[0; 12], &aad, &mut [])?;
        out.extend_from_slice(&aad[..body_len]);
        header.serialize_auth(out);
        let signer = match suite.signature() {
            Some(alg) => {
                let signing_key = materials
                    .signing_key()
                    .ok_or_else(|| Error::Materials("signed suite without a signing key".into()))?
                    .clone();
                let mut hasher = crypto::provider().hasher(signature_hash(alg));
                hasher.update(&out[header_start..]);
                Some((hasher, signing_key))
            }
            None => None,
        };
        Ok(Self {
            header,
            cipher: Arc::new(FrameCipher::new(key, message_id, frame_length)),
            next_sequence: 1,
            signer,
            final_written: false,
        })
    }

    /// The header written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.header.suite
    }

    /// The frame length.
    pub fn frame_length(&self) -> u32 {
        self.header.frame_length
    }

    /// The shared frame cipher (for sealing frames on other threads).
    pub fn cipher(&self) -> &Arc<FrameCipher> {
        &self.cipher
    }

    /// The sequence number the next frame gets.
    pub fn next_sequence_number(&self) -> u32 {
        self.next_sequence
    }

    /// Append one frame (regular: exactly the frame length; final: at most) to `out`.
    pub fn write_frame(&mut self, plaintext: &[u8], is_final: bool, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + FrameCipher::frame_wire_len(plaintext.len(), is_final), 0);
        self.seal_into(plaintext, is_final, &mut out[start..])
    }

    /// Seal the next frame into `out`, which must be exactly its wire length.
    pub fn seal_into(&mut self, plaintext: &[u8], is_final: bool, out: &mut [u8]) -> Result<()> {
        if self.final_written {
            return Err(Error::Config("the final frame was already written".into()));
        }
        self.cipher
            .seal_frame(self.next_sequence, is_final, plaintext, out)?;
        self.account_sealed(is_final, out);
        Ok(())
    }

    /// Record frames sealed elsewhere (in order): advance the sequence number and hash them.
    pub fn account_sealed(&mut self, is_final: bool, wire: &[u8]) {
        if let Some((hasher, _)) = &mut self.signer {
            hasher.update(wire);
        }
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.final_written = is_final;
    }

    /// Finish the message: append the footer for signed suites.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<()> {
        if !self.final_written {
            return Err(Error::Config("finish called before the final frame".into()));
        }
        if let Some((hasher, key)) = self.signer {
            let signature = key.sign_digest(&hasher.finish())?;
            write_footer(&signature, out)?;
        }
        Ok(())
    }
}
