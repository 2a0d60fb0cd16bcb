//! Message decryption as a frame-at-a-time decoder over received bytes. The one-shot API and
//! the streaming readers drive the same [`MessageDecryptor`]: it checks the commitment and
//! header tag, locates and authenticates each frame in order, and verifies the footer.

use crate::context;
use crate::crypto::{self, Hasher, VerifyingKey};
use crate::encrypt::signature_hash;
use crate::error::{Error, Result};
use crate::format::body::{parse_frame, parse_single_block, FrameCipher, FrameRef};
use crate::format::footer::parse_footer;
use crate::format::header::{ContentType, ParsedHeader};
use crate::kdf::derive_keys;
use crate::materials::DecryptionMaterials;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Decodes the body and footer of one message whose header has been parsed.
pub struct MessageDecryptor {
    cipher: Arc<FrameCipher>,
    content_type: ContentType,
    next_sequence: u32,
    /// The running signature hash and key, until the footer is checked.
    verifier: Option<(Box<dyn Hasher>, Arc<dyn VerifyingKey>)>,
    signed: bool,
    body_done: bool,
    /// How `finish` ended, once it has: the footer length, or `None` after a failure. Kept so
    /// that calling it again repeats the outcome instead of skipping the signature.
    finished: Option<Option<usize>>,
}

impl MessageDecryptor {
    /// Check the key commitment and the header tag over `header_bytes` (the header exactly as
    /// received), then get ready for the body.
    pub fn new(
        parsed: &ParsedHeader,
        header_bytes: &[u8],
        materials: &DecryptionMaterials,
    ) -> Result<Self> {
        let header = &parsed.header;
        if materials.suite() != header.suite {
            return Err(Error::Materials("materials are for another suite".into()));
        }
        let data_key = materials
            .data_key()
            .ok_or_else(|| Error::Materials("no plaintext data key".into()))?;
        let derived = derive_keys(header.suite, data_key.as_bytes(), &header.message_id)?;
        match (derived.commitment, header.commitment) {
            (Some(expected), Some(found)) if bool::from(expected.ct_eq(&found)) => {}
            (None, None) => {}
            // A committing suite without a commitment (or the reverse) is no match either.
            _ => return Err(Error::CommitmentMismatch),
        }
        let key = crypto::provider().aead_key(&derived.data_key)?;
        let required = context::serialize_subset(
            materials.encryption_context(),
            materials.required_encryption_context_keys(),
        )?;
        // `parsed` and `header_bytes` come from the caller: check they belong together.
        let (Some(header_all), Some(header_body)) = (
            header_bytes.get(..parsed.total_len),
            header_bytes.get(..parsed.body_len),
        ) else {
            return Err(Error::Truncated(
                "the header bytes are shorter than the parsed header",
            ));
        };
        let auth_ok = if required.is_empty() {
            key.open_in_place(&header.auth_iv, header_body, &mut [], &header.auth_tag)
        } else {
            let mut aad = Vec::with_capacity(header_body.len() + required.len());
            aad.extend_from_slice(header_body);
            aad.extend_from_slice(&required);
            key.open_in_place(&header.auth_iv, &aad, &mut [], &header.auth_tag)
        };
        if auth_ok.is_err() {
            return Err(Error::HeaderAuthentication);
        }
        let verifier = match header.suite.signature() {
            Some(alg) => {
                let vk = materials
                    .verifying_key()
                    .ok_or_else(|| {
                        Error::Materials("signed suite without a verification key".into())
                    })?
                    .clone();
                let mut hasher = crypto::provider().hasher(signature_hash(alg));
                hasher.update(header_all);
                Some((hasher, vk))
            }
            None => None,
        };
        Ok(Self {
            cipher: Arc::new(FrameCipher::new(
                key,
                header.message_id.clone(),
                header.frame_length,
            )),
            content_type: header.content_type,
            next_sequence: 1,
            signed: verifier.is_some(),
            verifier,
            body_done: false,
            finished: None,
        })
    }

    /// The shared frame cipher (for opening frames on other threads).
    pub fn cipher(&self) -> &Arc<FrameCipher> {
        &self.cipher
    }

    /// Whether the message is signed (a footer follows the body).
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// Whether the last block of the body has been located.
    pub fn body_done(&self) -> bool {
        self.body_done
    }

    /// Locate the next frame (or the single non-framed block) at the start of `input`,
    /// check its place in the sequence, and feed its bytes to the signature hash. `Ok(None)`:
    /// more input is needed. The frame is not yet authenticated: call
    /// [`FrameCipher::open_frame`] before releasing anything.
    pub fn next_frame<'a>(&mut self, input: &'a [u8]) -> Result<Option<FrameRef<'a>>> {
        if self.body_done {
            return Err(Error::Config("the body has already ended".into()));
        }
        let frame = match self.content_type {
            ContentType::Framed => {
                parse_frame(input, self.cipher.frame_length(), self.next_sequence)?
            }
            ContentType::NonFramed => parse_single_block(input)?,
        };
        let Some(frame) = frame else {
            return Ok(None);
        };
        if let Some((hasher, _)) = &mut self.verifier {
            hasher.update(&input[..frame.wire_len]);
        }
        self.body_done = frame.is_last();
        if !self.body_done {
            self.next_sequence = self
                .next_sequence
                .checked_add(1)
                .ok_or(crate::error::FormatError::TooManyFrames)?;
        }
        Ok(Some(frame))
    }

    /// Account for `count` regular frames that the caller parsed and checked itself (place in
    /// the sequence, IV, kind) and authenticated, without reading them again: the parallel
    /// decrypt of an unsigned message, whose threads check every frame they open. Signed
    /// messages must feed every byte to the signature hash, so they are refused here.
    pub(crate) fn skip_checked_regular_frames(&mut self, count: usize) -> Result<()> {
        if self.verifier.is_some() || self.body_done || self.content_type != ContentType::Framed {
            return Err(Error::Crypto("frames skipped where they must be read"));
        }
        let count = u32::try_from(count).map_err(|_| crate::error::FormatError::TooManyFrames)?;
        self.next_sequence = self
            .next_sequence
            .checked_add(count)
            .ok_or(crate::error::FormatError::TooManyFrames)?;
        Ok(())
    }

    /// After the body: parse and verify the footer for signed suites. Returns the footer's
    /// length (0 for unsigned suites), or `Ok(None)` if more input is needed. Once it has
    /// succeeded or failed, later calls repeat that outcome (a failure as
    /// [`Error::SignatureVerification`]).
    pub fn finish(&mut self, input: &[u8]) -> Result<Option<usize>> {
        if !self.body_done {
            return Err(Error::Truncated("the body has no final frame"));
        }
        match self.finished {
            Some(Some(len)) => return Ok(Some(len)),
            Some(None) => return Err(Error::SignatureVerification),
            None => {}
        }
        if !self.signed {
            self.finished = Some(Some(0));
            return Ok(Some(0));
        }
        let footer = match parse_footer(input) {
            Ok(None) => return Ok(None),
            Ok(Some(footer)) => footer,
            Err(e) => {
                self.finished = Some(None);
                return Err(e);
            }
        };
        let (signature, len) = footer;
        self.finished = Some(None);
        let (hasher, key) = self.verifier.take().ok_or(Error::SignatureVerification)?;
        key.verify_digest(&hasher.finish(), signature)?;
        self.finished = Some(Some(len));
        Ok(Some(len))
    }
}
