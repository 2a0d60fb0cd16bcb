//! The message header, versions 1 and 2: parsing (incrementally, from however many bytes
//! have arrived) and serialization.

use super::reader::{Reader, Short};
use crate::context::{self, EncryptionContext};
use crate::edk::EncryptedDataKey;
use crate::error::{Error, FormatError, Result};
use crate::suite::{AlgorithmSuite, MessageFormatVersion};

/// The v1 type byte ("customer authenticated encrypted data").
const V1_TYPE: u8 = 0x80;

/// How the body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// One AES-GCM block (legacy; decrypt only).
    NonFramed,
    /// A sequence of frames (the only type encrypt writes).
    Framed,
}

impl ContentType {
    fn byte(self) -> u8 {
        match self {
            Self::NonFramed => 0x01,
            Self::Framed => 0x02,
        }
    }
}

/// A parsed (or to-be-written) message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (follows from the suite).
    pub version: MessageFormatVersion,
    /// Algorithm suite.
    pub suite: AlgorithmSuite,
    /// Random message id: 16 bytes (v1) or 32 bytes (v2).
    pub message_id: Vec<u8>,
    /// The encryption context stored in the header (without required-only keys).
    pub encryption_context: EncryptionContext,
    /// Encrypted data keys.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Body layout.
    pub content_type: ContentType,
    /// Frame length (0 for non-framed).
    pub frame_length: u32,
    /// The commit key (v2 only).
    pub commitment: Option<[u8; 32]>,
    /// Header authentication IV (v1 writes zeros; v2 has none and uses zeros).
    pub auth_iv: [u8; 12],
    /// Header authentication tag.
    pub auth_tag: [u8; 16],
}

/// A header parsed from received bytes, with the lengths needed to authenticate it over the
/// exact bytes received.
#[derive(Debug, Clone)]
pub struct ParsedHeader {
    /// The header.
    pub header: Header,
    /// Length of the header body (what the authentication tag covers).
    pub body_len: usize,
    /// Length of body plus authentication: where the message body starts.
    pub total_len: usize,
}

impl Header {
    /// Serialize the header body (everything before the authentication tag).
    pub fn serialize_body(&self) -> Result<Vec<u8>> {
        let ec_len = context::serialized_len(self.encryption_context.iter())?;
        let mut out = Vec::with_capacity(96 + ec_len);
        out.push(self.version.byte());
        if self.version == MessageFormatVersion::V1 {
            out.push(V1_TYPE);
        }
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(&self.message_id);
        let ec_len16 = u16::try_from(ec_len).map_err(|_| Error::Crypto("context length"))?;
        out.extend_from_slice(&ec_len16.to_be_bytes());
        context::serialize_pairs_into(self.encryption_context.iter(), &mut out)?;
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| Error::Materials("more than 65535 encrypted data keys".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for edk in &self.encrypted_data_keys {
            if edk.serialized_len().is_none() {
                return Err(Error::Materials(
                    "an encrypted data key field exceeds 65535 bytes".into(),
                ));
            }
            edk.write_to(&mut out);
        }
        out.push(self.content_type.byte());
        if self.version == MessageFormatVersion::V1 {
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.push(12);
        }
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        if self.version == MessageFormatVersion::V2 {
            let commitment = self
                .commitment
                .ok_or(Error::Materials("v2 header without a commit key".into()))?;
            out.extend_from_slice(&commitment);
        }
        Ok(out)
    }

    /// The serialized authentication section: IV ‖ tag (v1) or tag (v2).
    pub fn serialize_auth(&self, out: &mut Vec<u8>) {
        if self.version == MessageFormatVersion::V1 {
            out.extend_from_slice(&self.auth_iv);
        }
        out.extend_from_slice(&self.auth_tag);
    }

    /// Parse a header from the start of `input`.
    ///
    /// Returns `Ok(None)` when `input` is a valid prefix that ends too early, so a streaming
    /// caller can read more and try again. The EDK limit is enforced as soon as the count is
    /// read, before any EDK is parsed. Nothing is allocated beyond what the input holds.
    pub fn parse(
        input: &[u8],
        max_encrypted_data_keys: Option<u16>,
    ) -> Result<Option<ParsedHeader>> {
        match Self::parse_inner(input, max_encrypted_data_keys) {
            Ok(parsed) => Ok(Some(parsed)),
            Err(ParseFailure::Short(_)) => Ok(None),
            Err(ParseFailure::Bad(e)) => Err(e),
        }
    }

    /// Check a header prefix without copying anything: `Ok(Ok(len))` when `input` holds a
    /// whole header of `len` bytes (parse it then), `Ok(Err(n))` when at least `n` bytes in
    /// all are needed before anything new can be learnt. The same checks as
    /// [`parse`](Self::parse). `progress` carries what earlier probes of the same (growing)
    /// input already checked, so a stream reading a header in small pieces looks at the
    /// encryption context and at each EDK a bounded number of times, not once per piece.
    pub(crate) fn probe(
        input: &[u8],
        max_encrypted_data_keys: Option<u16>,
        progress: &mut ProbeProgress,
    ) -> Result<core::result::Result<usize, usize>> {
        let need = |short: Short| Ok(Err(input.len().saturating_add(short.needed)));
        let mut cursor = match progress.edks {
            Some(cursor) => cursor,
            None => {
                let mut r = Reader::new(input);
                let prefix = match Prefix::read(&mut r, max_encrypted_data_keys) {
                    Ok(prefix) => prefix,
                    Err(ParseFailure::Short(short)) => return need(short),
                    Err(ParseFailure::Bad(e)) => return Err(e),
                };
                EdkCursor {
                    version: prefix.version,
                    pos: r.position(),
                    next: 0,
                    count: prefix.edk_count,
                }
            }
        };
        // Resume after the last EDK a probe saw whole.
        let mut r = Reader::at(input, cursor.pos);
        while cursor.next < cursor.count {
            match EncryptedDataKey::read_borrowed(&mut r) {
                Ok(Some(_)) => {
                    cursor.next += 1;
                    cursor.pos = r.position();
                }
                Ok(None) => {
                    return Err(FormatError::ProviderIdNotUtf8 {
                        index: usize::from(cursor.next),
                    }
                    .into())
                }
                Err(short) => {
                    progress.edks = Some(cursor);
                    return need(short);
                }
            }
        }
        progress.edks = Some(cursor);
        match Tail::read(&mut r, cursor.version) {
            Ok(tail) => Ok(Ok(tail.total_len)),
            Err(ParseFailure::Short(short)) => need(short),
            Err(ParseFailure::Bad(e)) => Err(e),
        }
    }

    /// The parser: prefix, EDKs, tail.
    fn parse_inner(input: &[u8], max_edks: Option<u16>) -> Result<ParsedHeader, ParseFailure> {
        let mut r = Reader::new(input);
        let prefix = Prefix::read(&mut r, max_edks)?;
        let mut encrypted_data_keys = Vec::with_capacity(usize::from(prefix.edk_count));
        for index in 0..usize::from(prefix.edk_count) {
            match EncryptedDataKey::read_borrowed(&mut r)? {
                Some((id, info, ct)) => {
                    encrypted_data_keys.push(EncryptedDataKey::new(id, info, ct));
                }
                None => return Err(FormatError::ProviderIdNotUtf8 { index }.into()),
            }
        }
        let tail = Tail::read(&mut r, prefix.version)?;
        Ok(ParsedHeader {
            header: Header {
                version: prefix.version,
                suite: prefix.suite,
                message_id: prefix.message_id.to_vec(),
                encryption_context: prefix.encryption_context,
                encrypted_data_keys,
                content_type: tail.content_type,
                frame_length: tail.frame_length,
                commitment: tail.commitment,
                auth_iv: tail.auth_iv,
                auth_tag: tail.auth_tag,
            },
            body_len: tail.body_len,
            total_len: tail.total_len,
        })
    }
}

/// How far [`Header::probe`] got through a header arriving in pieces.
#[derive(Debug, Default)]
pub(crate) struct ProbeProgress {
    /// Set once everything up to the EDK count has been checked.
    edks: Option<EdkCursor>,
}

#[derive(Debug, Clone, Copy)]
struct EdkCursor {
    version: MessageFormatVersion,
    /// Where EDK number `next` starts.
    pos: usize,
    next: u16,
    count: u16,
}

/// The header up to and including the EDK count, checked, borrowed from the input.
struct Prefix<'a> {
    version: MessageFormatVersion,
    suite: AlgorithmSuite,
    message_id: &'a [u8],
    encryption_context: EncryptionContext,
    edk_count: u16,
}

impl<'a> Prefix<'a> {
    fn read(r: &mut Reader<'a>, max_edks: Option<u16>) -> Result<Self, ParseFailure> {
        let version_byte = r.u8()?;
        let version = match version_byte {
            0x01 => MessageFormatVersion::V1,
            0x02 => MessageFormatVersion::V2,
            // 'A' followed by 'Y' or 'g' is what a Base64-encoded v1 or v2 message starts with.
            b'A' if matches!(r.peek(), None | Some(b'Y' | b'g')) => {
                return Err(Error::Base64Encoded.into())
            }
            other => return Err(FormatError::UnknownVersion(other).into()),
        };
        if version == MessageFormatVersion::V1 {
            let t = r.u8()?;
            if t != V1_TYPE {
                return Err(FormatError::UnknownType(t).into());
            }
        }
        let suite_id = r.u16()?;
        let suite = AlgorithmSuite::from_id(suite_id).ok_or(Error::UnknownSuite(suite_id))?;
        if suite.message_format() != version {
            return Err(FormatError::VersionSuiteMismatch {
                version: version_byte,
                suite,
            }
            .into());
        }
        let message_id = r.take(version.message_id_len())?;
        let encryption_context =
            context::deserialize(r.u16_prefixed()?).map_err(FormatError::from)?;
        let edk_count = r.u16()?;
        if edk_count == 0 {
            return Err(FormatError::NoEncryptedDataKeys.into());
        }
        if let Some(max) = max_edks {
            if edk_count > max {
                return Err(Error::TooManyEncryptedDataKeys {
                    count: usize::from(edk_count),
                    max,
                }
                .into());
            }
        }
        Ok(Self {
            version,
            suite,
            message_id,
            encryption_context,
            edk_count,
        })
    }
}

/// The header after the EDKs: content type to authentication tag.
struct Tail {
    content_type: ContentType,
    frame_length: u32,
    commitment: Option<[u8; 32]>,
    auth_iv: [u8; 12],
    auth_tag: [u8; 16],
    body_len: usize,
    total_len: usize,
}

impl Tail {
    fn read(r: &mut Reader<'_>, version: MessageFormatVersion) -> Result<Self, ParseFailure> {
        let content_type = match r.u8()? {
            0x01 => ContentType::NonFramed,
            0x02 => ContentType::Framed,
            other => return Err(FormatError::UnknownContentType(other).into()),
        };
        if version == MessageFormatVersion::V1 {
            if r.array::<4>()? != [0; 4] {
                return Err(FormatError::ReservedNotZero.into());
            }
            let iv_len = r.u8()?;
            if usize::from(iv_len) != AlgorithmSuite::IV_LEN {
                return Err(FormatError::IvLength(iv_len).into());
            }
        }
        let frame_length = r.u32()?;
        match (content_type, frame_length) {
            (ContentType::NonFramed, 0) | (ContentType::Framed, 1..) => {}
            (ContentType::NonFramed, _) => {
                return Err(FormatError::FrameLength {
                    frame_length,
                    content: "a non-framed body",
                }
                .into())
            }
            (ContentType::Framed, 0) => {
                return Err(FormatError::FrameLength {
                    frame_length,
                    content: "a framed body",
                }
                .into())
            }
        }
        let commitment = match version {
            MessageFormatVersion::V2 => Some(r.array::<32>()?),
            MessageFormatVersion::V1 => None,
        };
        let body_len = r.position();
        let auth_iv = match version {
            MessageFormatVersion::V1 => r.array::<12>()?,
            MessageFormatVersion::V2 => [0; 12],
        };
        let auth_tag = r.array::<16>()?;
        Ok(Self {
            content_type,
            frame_length,
            commitment,
            auth_iv,
            auth_tag,
            body_len,
            total_len: r.position(),
        })
    }
}

enum ParseFailure {
    Short(Short),
    Bad(Error),
}

impl From<Short> for ParseFailure {
    fn from(s: Short) -> Self {
        Self::Short(s)
    }
}

impl From<Error> for ParseFailure {
    fn from(e: Error) -> Self {
        Self::Bad(e)
    }
}

impl From<FormatError> for ParseFailure {
    fn from(e: FormatError) -> Self {
        Self::Bad(e.into())
    }
}
