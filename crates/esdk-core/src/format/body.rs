//! The message body: frame layouts, the body AAD, and the per-frame seal and open operations.
//!
//! [`FrameCipher`] holds the derived key and the message id; it is immutable and shared, so
//! frames can be sealed or opened on several threads at once. Nothing here allocates.

use super::reader::{Reader, Short};
use crate::crypto::AeadKey;
use crate::error::{Error, FormatError, Result};
use crate::suite::AlgorithmSuite;

/// The marker that opens a final frame.
pub const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// Largest non-framed content length the format allows (2^36 - 32).
pub const MAX_NON_FRAMED_LEN: u64 = (1 << 36) - 32;

const IV_LEN: usize = AlgorithmSuite::IV_LEN;
const TAG_LEN: usize = AlgorithmSuite::TAG_LEN;

/// Bytes a regular frame adds around its content: sequence number, IV, tag.
pub const REGULAR_FRAME_OVERHEAD: usize = 4 + IV_LEN + TAG_LEN;
/// Bytes a final frame adds: marker, sequence number, IV, content length, tag.
pub const FINAL_FRAME_OVERHEAD: usize = 4 + 4 + IV_LEN + 4 + TAG_LEN;

/// Which body AAD content string a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A regular frame.
    Frame,
    /// The final frame.
    FinalFrame,
    /// A non-framed body.
    SingleBlock,
}

impl BlockKind {
    fn aad_content(self) -> &'static [u8] {
        match self {
            Self::Frame => b"AWSKMSEncryptionClient Frame",
            Self::FinalFrame => b"AWSKMSEncryptionClient Final Frame",
            Self::SingleBlock => b"AWSKMSEncryptionClient Single Block",
        }
    }
}

/// Longest body AAD: 32-byte message id, longest content string, sequence number, length.
pub const MAX_AAD_LEN: usize = 32 + 35 + 4 + 8;

/// Build the body AAD on the stack: message id ‖ content string ‖ seq (u32) ‖ length (u64).
pub fn body_aad<'b>(
    message_id: &[u8],
    kind: BlockKind,
    sequence_number: u32,
    content_len: u64,
    buf: &'b mut [u8; MAX_AAD_LEN],
) -> &'b [u8] {
    let content = kind.aad_content();
    let mut n = 0;
    for part in [
        message_id,
        content,
        &sequence_number.to_be_bytes(),
        &content_len.to_be_bytes(),
    ] {
        buf[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    &buf[..n]
}

/// The deterministic IV of a frame: the sequence number, big-endian, left-padded with zeros.
pub fn frame_iv(sequence_number: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&sequence_number.to_be_bytes());
    iv
}

/// A frame located in received bytes, not yet authenticated.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// Sequence number.
    pub sequence_number: u32,
    /// Regular, final or single block.
    pub kind: BlockKind,
    /// The IV as written.
    pub iv: [u8; IV_LEN],
    /// The encrypted content.
    pub ciphertext: &'a [u8],
    /// The tag.
    pub tag: [u8; TAG_LEN],
    /// Bytes the whole frame occupies on the wire.
    pub wire_len: usize,
}

impl FrameRef<'_> {
    /// Whether this is the last block of the body.
    pub fn is_last(&self) -> bool {
        self.kind != BlockKind::Frame
    }
}

/// Locate the next frame of a framed body at the start of `input`, checking its sequence
/// number and lengths. `Ok(None)`: `input` ends before the frame does.
pub fn parse_frame(
    input: &[u8],
    frame_length: u32,
    expected_sequence: u32,
) -> Result<Option<FrameRef<'_>>> {
    match parse_frame_inner(input, frame_length, expected_sequence) {
        Ok(f) => Ok(Some(f)),
        Err(Ok(_short)) => Ok(None),
        Err(Err(e)) => Err(e),
    }
}

fn parse_frame_inner(
    input: &[u8],
    frame_length: u32,
    expected: u32,
) -> Result<FrameRef<'_>, Result<Short>> {
    let mut r = Reader::new(input);
    let first = r.u32().map_err(Ok)?;
    let (kind, sequence_number) = if first == FINAL_FRAME_MARKER {
        (BlockKind::FinalFrame, r.u32().map_err(Ok)?)
    } else {
        (BlockKind::Frame, first)
    };
    if sequence_number != expected {
        return Err(Err(FormatError::SequenceNumber {
            found: sequence_number,
            expected,
        }
        .into()));
    }
    let iv = r.array::<IV_LEN>().map_err(Ok)?;
    if iv != frame_iv(sequence_number) {
        return Err(Err(FormatError::FrameIv(sequence_number).into()));
    }
    let len = if kind == BlockKind::FinalFrame {
        let len = r.u32().map_err(Ok)?;
        if len > frame_length {
            return Err(Err(FormatError::FinalFrameLength {
                length: len,
                frame_length,
            }
            .into()));
        }
        len
    } else {
        frame_length
    };
    let ciphertext = r.take(len as usize).map_err(Ok)?;
    let tag = r.array::<TAG_LEN>().map_err(Ok)?;
    Ok(FrameRef {
        sequence_number,
        kind,
        iv,
        ciphertext,
        tag,
        wire_len: r.position(),
    })
}

/// Locate a non-framed body at the start of `input`. `Ok(None)`: `input` is too short.
pub fn parse_single_block(input: &[u8]) -> Result<Option<FrameRef<'_>>> {
    let mut r = Reader::new(input);
    let parsed = (|| -> Result<Result<FrameRef<'_>, Short>> {
        let iv = match r.array::<IV_LEN>() {
            Ok(iv) => iv,
            Err(s) => return Ok(Err(s)),
        };
        let len = match r.u64() {
            Ok(l) => l,
            Err(s) => return Ok(Err(s)),
        };
        if len > MAX_NON_FRAMED_LEN {
            return Err(FormatError::NonFramedLength(len).into());
        }
        let len = usize::try_from(len).map_err(|_| FormatError::NonFramedLength(len))?;
        let ciphertext = match r.take(len) {
            Ok(c) => c,
            Err(s) => return Ok(Err(s)),
        };
        let tag = match r.array::<TAG_LEN>() {
            Ok(t) => t,
            Err(s) => return Ok(Err(s)),
        };
        Ok(Ok(FrameRef {
            sequence_number: 1,
            kind: BlockKind::SingleBlock,
            iv,
            ciphertext,
            tag,
            wire_len: r.position(),
        }))
    })()?;
    Ok(parsed.ok())
}

/// Seals and opens the frames of one message. Immutable, so shareable across threads.
pub struct FrameCipher {
    key: Box<dyn AeadKey>,
    message_id: Vec<u8>,
    frame_length: u32,
}

impl FrameCipher {
    /// A cipher for one message's frames.
    pub fn new(key: Box<dyn AeadKey>, message_id: Vec<u8>, frame_length: u32) -> Self {
        Self {
            key,
            message_id,
            frame_length,
        }
    }

    /// The header's frame length.
    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    /// Wire size of a frame carrying `content_len` bytes.
    pub fn frame_wire_len(content_len: usize, is_final: bool) -> usize {
        content_len
            + if is_final {
                FINAL_FRAME_OVERHEAD
            } else {
                REGULAR_FRAME_OVERHEAD
            }
    }

    /// Where a frame's content starts within its wire bytes: after the sequence number and IV
    /// of a regular frame, or after the marker, sequence number, IV and length of a final one.
    pub const fn content_offset(is_final: bool) -> usize {
        if is_final {
            FINAL_FRAME_OVERHEAD - TAG_LEN
        } else {
            REGULAR_FRAME_OVERHEAD - TAG_LEN
        }
    }

    /// Seal one frame into `out`, which must be exactly `frame_wire_len(plaintext.len())`
    /// bytes. Regular frames must carry exactly the frame length.
    pub fn seal_frame(
        &self,
        sequence_number: u32,
        is_final: bool,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        if out.len() != Self::frame_wire_len(plaintext.len(), is_final) {
            return Err(Error::Crypto("frame output buffer of the wrong length"));
        }
        let start = Self::content_offset(is_final);
        out[start..start + plaintext.len()].copy_from_slice(plaintext);
        self.seal_in_place(sequence_number, is_final, out)
    }

    /// Seal one frame in place: `frame` is the frame's whole wire extent (its
    /// `frame_wire_len`) with the plaintext already at [`content_offset`](Self::content_offset).
    /// The sequence number, IV, (final) length and tag are written around it. Lets streaming
    /// writers copy input once, straight into the output buffer.
    pub fn seal_in_place(
        &self,
        sequence_number: u32,
        is_final: bool,
        frame: &mut [u8],
    ) -> Result<()> {
        let kind = if is_final {
            BlockKind::FinalFrame
        } else {
            BlockKind::Frame
        };
        if sequence_number == FINAL_FRAME_MARKER || sequence_number == 0 {
            return Err(FormatError::TooManyFrames.into());
        }
        let start = Self::content_offset(is_final);
        let content_len = frame
            .len()
            .checked_sub(start + TAG_LEN)
            .ok_or(Error::Crypto("frame output buffer of the wrong length"))?;
        if !is_final && content_len != self.frame_length as usize {
            return Err(Error::Crypto("regular frame of the wrong length"));
        }
        if content_len > self.frame_length as usize {
            return Err(Error::Crypto("final frame longer than the frame length"));
        }
        let iv = frame_iv(sequence_number);
        let mut n = 0;
        let mut put = |bytes: &[u8], out: &mut [u8]| {
            out[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        if is_final {
            put(&FINAL_FRAME_MARKER.to_be_bytes(), frame);
        }
        put(&sequence_number.to_be_bytes(), frame);
        put(&iv, frame);
        if is_final {
            let len = u32::try_from(content_len)
                .map_err(|_| Error::Crypto("final frame longer than u32"))?;
            put(&len.to_be_bytes(), frame);
        }
        debug_assert_eq!(n, start);
        let end = start + content_len;
        let mut aad_buf = [0u8; MAX_AAD_LEN];
        let aad = body_aad(
            &self.message_id,
            kind,
            sequence_number,
            content_len as u64,
            &mut aad_buf,
        );
        let tag = self.key.seal_in_place(&iv, aad, &mut frame[start..end])?;
        frame[end..].copy_from_slice(&tag);
        Ok(())
    }

    /// Authenticate and decrypt `frame` into `out` (exactly its ciphertext length). On error,
    /// `out` is zeroed so no unauthenticated byte can be released by mistake.
    pub fn open_frame(&self, frame: &FrameRef<'_>, out: &mut [u8]) -> Result<()> {
        out.copy_from_slice(frame.ciphertext);
        self.open_in_place(frame, out)
    }

    /// Like [`open_frame`](Self::open_frame) but `buf` already holds the ciphertext.
    pub fn open_in_place(&self, frame: &FrameRef<'_>, buf: &mut [u8]) -> Result<()> {
        let mut aad_buf = [0u8; MAX_AAD_LEN];
        let aad = body_aad(
            &self.message_id,
            frame.kind,
            frame.sequence_number,
            buf.len() as u64,
            &mut aad_buf,
        );
        if self
            .key
            .open_in_place(&frame.iv, aad, buf, &frame.tag)
            .is_err()
        {
            buf.fill(0);
            return Err(Error::FrameAuthentication {
                sequence_number: frame.sequence_number,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_body_aad_layout() {
        let mut buf = [0u8; MAX_AAD_LEN];
        let id = [0xAAu8; 16];
        let aad = body_aad(&id, BlockKind::FinalFrame, 3, 10, &mut buf);
        let mut expected = id.to_vec();
        expected.extend_from_slice(b"AWSKMSEncryptionClient Final Frame");
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10]);
        assert_eq!(aad, &expected[..]);
        let id = [0x11u8; 32];
        let aad = body_aad(&id, BlockKind::SingleBlock, 1, 1 << 40, &mut buf);
        assert_eq!(aad.len(), 32 + 35 + 12);
        assert_eq!(&aad[32..67], b"AWSKMSEncryptionClient Single Block");
        assert_eq!(&aad[67..], &[0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
        let aad = body_aad(&id, BlockKind::Frame, 0x01020304, 4096, &mut buf);
        assert_eq!(&aad[32..60], b"AWSKMSEncryptionClient Frame");
        assert_eq!(&aad[60..], &[1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0x10, 0]);
    }

    #[test]
    fn frame_iv_is_left_padded_sequence_number() {
        assert_eq!(frame_iv(1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(frame_iv(0x0102_0304)[8..], [1, 2, 3, 4]);
    }

    #[test]
    fn frame_parse_reports_shortfall_and_errors() {
        // Regular frame of length 4 with sequence number 2 when 1 is expected.
        let mut f = vec![0, 0, 0, 2];
        f.extend_from_slice(&frame_iv(2));
        f.extend_from_slice(&[0; 4 + 16]);
        assert!(matches!(
            parse_frame(&f, 4, 1),
            Err(Error::Format(FormatError::SequenceNumber {
                found: 2,
                expected: 1
            }))
        ));
        for cut in 0..f.len() {
            assert!(parse_frame(&f[..cut], 4, 2).unwrap().is_none());
        }
        assert_eq!(parse_frame(&f, 4, 2).unwrap().unwrap().wire_len, f.len());
        // Final frame longer than the frame length.
        let mut f = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1];
        f.extend_from_slice(&frame_iv(1));
        f.extend_from_slice(&[0, 0, 0, 5]);
        assert!(matches!(
            parse_frame(&f, 4, 1),
            Err(Error::Format(FormatError::FinalFrameLength { .. }))
        ));
        // Non-framed length over the limit.
        let mut b = [0u8; 12].to_vec();
        b.extend_from_slice(&(MAX_NON_FRAMED_LEN + 1).to_be_bytes());
        assert!(matches!(
            parse_single_block(&b),
            Err(Error::Format(FormatError::NonFramedLength(_)))
        ));
    }
}
