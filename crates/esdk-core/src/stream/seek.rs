//! Random access: decrypt a plaintext byte range of a framed message read through
//! `Read + Seek`, opening only the frames that cover it.

use super::decrypt::read_header;
use crate::client::{Client, DecryptOptions, MaterialsSource};
use crate::context::EncryptionContext;
use crate::decrypt::MessageDecryptor;
use crate::error::FormatError;
use crate::error::{Error, Result};
use crate::format::body::{
    parse_frame, BlockKind, FrameCipher, FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD,
};
use crate::format::header::{ContentType, Header, ParsedHeader};
use crate::materials::DecryptionMaterials;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// Longest DER ECDSA signature a footer may hold when locating the end of a signed body
/// (P-384: at most 104 bytes; a little slack for non-minimal encodings).
const MAX_SIGNATURE_LEN: u64 = 140;

/// Settings for [`RandomAccessDecryptor`].
#[derive(Debug, Clone, Default)]
pub struct RandomAccessOptions {
    /// The usual decrypt settings (reproduced encryption context, unsigned-only).
    pub decrypt: DecryptOptions,
    /// Accept messages of signed suites. The signature covers the whole message, so a byte
    /// range read at random is **never signature-verified**: the output is unsigned (each frame
    /// is still authenticated by its tag under the data key). Off by default: a signed message
    /// is refused right after its header.
    pub accept_unsigned_output: bool,
}

impl RandomAccessOptions {
    /// Use these decrypt settings.
    pub fn with_decrypt_options(mut self, options: DecryptOptions) -> Self {
        self.decrypt = options;
        self
    }

    /// Accept signed messages, releasing plaintext whose signature is never verified.
    pub fn accept_unsigned_output(mut self) -> Self {
        self.accept_unsigned_output = true;
        self
    }
}

/// Decrypts byte ranges of one framed message without reading the frames before them.
///
/// On construction the header is read and authenticated (key commitment and header tag), and
/// the final frame is located from the message's length and authenticated, which fixes the
/// plaintext length. Each [`read_at`](Self::read_at) then seeks to the frames covering the
/// range, checks each one's sequence number and tag, and copies out the requested bytes.
/// Memory use is one frame.
///
/// The message must span from the reader's position at construction to the end of the
/// stream. Signed messages are refused unless
/// [`RandomAccessOptions::accept_unsigned_output`] is set.
///
/// ```
/// # use esdk_core::{Client, EncryptOptions, MaterialsSource, AlgorithmSuite};
/// # use esdk_core::stream::{RandomAccessDecryptor, RandomAccessOptions};
/// # fn demo(source: &MaterialsSource) -> Result<(), esdk_core::Error> {
/// let client = Client::new();
/// let options = EncryptOptions::default()
///     .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
///     .with_frame_length(4096);
/// let plaintext: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
/// let message = client.encrypt_blocking(source, &plaintext, &options)?.ciphertext;
///
/// let mut ra = RandomAccessDecryptor::new(&client, source, &RandomAccessOptions::default(),
///     std::io::Cursor::new(message))?;
/// assert_eq!(ra.plaintext_len(), 100_000);
/// let mut part = [0u8; 10];
/// ra.read_at(50_000, &mut part)?;
/// assert_eq!(&part[..], &plaintext[50_000..50_010]);
/// # Ok(()) }
/// ```
pub struct RandomAccessDecryptor<R: Read + Seek> {
    inner: R,
    cipher: Arc<FrameCipher>,
    header: Header,
    encryption_context: EncryptionContext,
    /// Absolute position of the first frame.
    body_start: u64,
    body_len: u64,
    regular_frames: u64,
    plaintext_len: u64,
    /// One frame's wire bytes, reused.
    buf: Vec<u8>,
}

impl<R: Read + Seek> RandomAccessDecryptor<R> {
    /// Read and authenticate the header, get materials from `source` (blocking on the
    /// keyring), and locate the final frame.
    pub fn new(
        client: &Client,
        source: &MaterialsSource,
        options: &RandomAccessOptions,
        mut inner: R,
    ) -> Result<Self> {
        let start = inner.stream_position()?;
        let (parsed, hb) = read_header(&mut inner, client.max_encrypted_data_keys())?;
        check_allowed(&parsed.header, options)?;
        let materials =
            pollster::block_on(client.decryption_materials(source, &parsed, &options.decrypt))?;
        Self::from_materials(
            &parsed,
            &hb.bytes()[..parsed.total_len],
            &materials,
            options,
            start,
            inner,
        )
    }

    /// Like [`new`](Self::new) with materials already obtained for this header.
    /// `header_bytes` is the header as read, and `message_start` the absolute position where
    /// the message (the header) starts in `inner`.
    pub fn from_materials(
        parsed: &ParsedHeader,
        header_bytes: &[u8],
        materials: &DecryptionMaterials,
        options: &RandomAccessOptions,
        message_start: u64,
        mut inner: R,
    ) -> Result<Self> {
        check_allowed(&parsed.header, options)?;
        if parsed.header.content_type != ContentType::Framed {
            return Err(Error::Config(
                "random access needs a framed message; this one has a non-framed body".into(),
            ));
        }
        let decryptor = MessageDecryptor::new(parsed, header_bytes, materials)?;
        let cipher = Arc::clone(decryptor.cipher());
        let body_start = message_start + parsed.total_len as u64;
        let end = inner.seek(SeekFrom::End(0))?;
        let body_len = end
            .checked_sub(body_start)
            .ok_or(Error::Truncated("the message ends inside its header"))?;
        let mut this = Self {
            inner,
            cipher,
            header: parsed.header.clone(),
            encryption_context: materials.encryption_context().clone(),
            body_start,
            body_len,
            regular_frames: 0,
            plaintext_len: 0,
            buf: Vec::new(),
        };
        this.locate_final_frame(body_len, parsed.header.suite.is_signed())?;
        Ok(this)
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The encryption context (stored plus reproduced), authenticated with the header.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// The plaintext length of the message.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn fl(&self) -> u64 {
        u64::from(self.cipher.frame_length())
    }

    fn regular_wire(&self) -> u64 {
        self.fl() + REGULAR_FRAME_OVERHEAD as u64
    }

    /// Find the final frame: for unsigned messages it ends the input; for signed ones a footer
    /// of unknown length follows, so each footer length whose length field matches is tried
    /// until a final frame authenticates there.
    fn locate_final_frame(&mut self, body_len: u64, signed: bool) -> Result<()> {
        let mut candidates = Vec::new();
        if signed {
            let look = body_len.min(MAX_SIGNATURE_LEN + 2);
            let mut end = vec![0u8; usize::try_from(look).unwrap_or(0)];
            self.inner
                .seek(SeekFrom::Start(self.body_start + body_len - look))?;
            read_exact(&mut self.inner, &mut end)?;
            for sig_len in 1..=look.saturating_sub(2) {
                let at = usize::try_from(look - sig_len - 2).unwrap_or(0);
                if u64::from(u16::from_be_bytes([end[at], end[at + 1]])) == sig_len {
                    candidates.push(body_len - sig_len - 2);
                }
            }
        } else {
            candidates.push(body_len);
        }
        let mut last_error = Error::Truncated("the body does not end with a final frame");
        for body_end in candidates {
            match self.try_final_frame(body_end) {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn try_final_frame(&mut self, body_end: u64) -> Result<()> {
        let rest = body_end
            .checked_sub(FINAL_FRAME_OVERHEAD as u64)
            .ok_or(Error::Truncated("the body is shorter than a final frame"))?;
        let regular = rest / self.regular_wire();
        let final_len = rest % self.regular_wire();
        if final_len > self.fl() {
            return Err(Error::Truncated("the body does not end with a final frame"));
        }
        // The frame found there must be a final frame ending exactly at `body_end`: a regular
        // frame at that offset means the message was cut at a frame boundary, and a shorter
        // final frame means bytes follow it.
        let final_len_usize = usize::try_from(final_len)
            .map_err(|_| Error::Config("frame too large for this platform".into()))?;
        self.open_frame(regular, BlockKind::FinalFrame, final_len_usize, |_| ())?;
        self.regular_frames = regular;
        self.plaintext_len = regular * self.fl() + final_len;
        Ok(())
    }

    /// Read frame `index` (0-based), check that it is of the `kind` and content length its
    /// place implies, check its sequence number and tag, and hand its plaintext to `f`.
    fn open_frame<T>(
        &mut self,
        index: u64,
        kind: BlockKind,
        content_len: usize,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let sequence =
            u32::try_from(index + 1).map_err(|_| crate::error::FormatError::TooManyFrames)?;
        let fl = self.cipher.frame_length();
        let pos = self.body_start + index * self.regular_wire();
        self.inner.seek(SeekFrom::Start(pos))?;
        // A regular frame's wire length is fixed; a final frame is at most 8 bytes longer.
        // Never more than what the message holds from there.
        let left = (self.body_start + self.body_len).saturating_sub(pos);
        let want = usize::try_from(left.min(u64::from(fl) + FINAL_FRAME_OVERHEAD as u64))
            .map_err(|_| Error::Config("frame too large for this platform".into()))?;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let got = read_up_to(&mut self.inner, &mut self.buf[..want])?;
        let frame = parse_frame(&self.buf[..got], fl, sequence)?
            .ok_or(Error::Truncated("the message ends inside a frame"))?;
        if frame.kind != kind {
            return Err(match kind {
                BlockKind::FinalFrame => {
                    Error::Truncated("the body does not end with a final frame")
                }
                _ => FormatError::FinalFrameBeforeEnd(sequence).into(),
            });
        }
        if frame.ciphertext.len() != content_len {
            // Only a final frame can be shorter than its place implies: bytes follow it.
            return Err(Error::TrailingBytes(
                content_len.saturating_sub(frame.ciphertext.len()),
            ));
        }
        let content_start = frame.wire_len - 16 - content_len;
        let meta = crate::format::body::FrameRef {
            ciphertext: &[],
            ..frame
        };
        let content = &mut self.buf[content_start..content_start + content_len];
        self.cipher.open_in_place(&meta, content)?;
        Ok(f(content))
    }

    /// Fill `out` with the plaintext bytes starting at `offset`. Only the frames covering the
    /// range are read and authenticated. A range reaching past the plaintext is refused with
    /// [`Error::RangeOutOfBounds`] before anything is read.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|&end| end <= self.plaintext_len)
            .ok_or(Error::RangeOutOfBounds {
                start: offset,
                len: out.len() as u64,
                plaintext_len: self.plaintext_len,
            })?;
        if out.is_empty() {
            return Ok(());
        }
        let fl = self.fl();
        let mut pos = offset;
        let mut written = 0usize;
        while pos < end {
            let index = pos / fl;
            let within = usize::try_from(pos - index * fl).unwrap_or(0);
            let n = usize::try_from((fl - (pos - index * fl)).min(end - pos)).unwrap_or(0);
            let dest = &mut out[written..written + n];
            let (kind, len) = if index < self.regular_frames {
                (BlockKind::Frame, fl)
            } else {
                (BlockKind::FinalFrame, self.plaintext_len - index * fl)
            };
            let len = usize::try_from(len).unwrap_or(0);
            self.open_frame(index, kind, len, |plain| {
                dest.copy_from_slice(&plain[within..within + n]);
            })?;
            pos += n as u64;
            written += n;
        }
        Ok(())
    }

    /// The plaintext bytes of `range` in a new vector (see [`read_at`](Self::read_at)).
    pub fn read_range(&mut self, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let len = range
            .end
            .checked_sub(range.start)
            .ok_or(Error::RangeOutOfBounds {
                start: range.start,
                len: 0,
                plaintext_len: self.plaintext_len,
            })?;
        if range.end > self.plaintext_len {
            return Err(Error::RangeOutOfBounds {
                start: range.start,
                len,
                plaintext_len: self.plaintext_len,
            });
        }
        let mut out = vec![
            0u8;
            usize::try_from(len).map_err(|_| Error::Config(
                "range too large for this platform".into()
            ))?
        ];
        self.read_at(range.start, &mut out)?;
        Ok(out)
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader, by value.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

fn check_allowed(header: &Header, options: &RandomAccessOptions) -> Result<()> {
    if header.suite.is_signed()
        && (options.decrypt.unsigned_only || !options.accept_unsigned_output)
    {
        return Err(Error::SignedMessageRefused(header.suite));
    }
    Ok(())
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated("the message ends early"),
        _ => Error::Io(e),
    })
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

impl<R: Read + Seek> core::fmt::Debug for RandomAccessDecryptor<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RandomAccessDecryptor")
            .field("suite", &self.header.suite)
            .field("frame_length", &self.header.frame_length)
            .field("frames", &(self.regular_frames + 1))
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}
