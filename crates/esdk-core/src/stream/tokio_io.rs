//! The streaming writer and reader over `tokio::io::AsyncWrite` / `AsyncRead` (feature
//! `tokio`). They share their state machines with the sync types, so framing, memory bounds,
//! threads and the release rules are the same (see the [module docs](super)).

use super::decrypt::{DecryptCore, HeaderBuf, Progress};
use super::encrypt::EncryptCore;
use super::fail_io;
use crate::client::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
use crate::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::format::header::{Header, ParsedHeader};
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use core::future::poll_fn;
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Encrypts everything written to it into one message written to `W`, asynchronously.
///
/// [`finish`](Self::finish) (or `shutdown`, which also shuts the inner writer down) writes
/// the final frame and the footer; without it the message is incomplete and every decryptor
/// rejects it.
///
/// ```
/// # use esdk_core::{Client, EncryptOptions, DecryptOptions, MaterialsSource};
/// # use esdk_core::stream::{AsyncEncryptingWriter, AsyncDecryptingReader};
/// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # async fn demo(source: &MaterialsSource) -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new();
/// let mut writer = AsyncEncryptingWriter::new(&client, source, &EncryptOptions::default(), Vec::new()).await?;
/// writer.write_all(b"streamed plaintext").await?;
/// let ciphertext = writer.finish().await?;
///
/// let mut reader = AsyncDecryptingReader::new(&client, source, &DecryptOptions::default(), &ciphertext[..]).await?;
/// let mut plaintext = Vec::new();
/// reader.read_to_end(&mut plaintext).await?;
/// assert_eq!(plaintext, b"streamed plaintext");
/// # Ok(()) }
/// ```
pub struct AsyncEncryptingWriter<W> {
    core: EncryptCore,
    inner: W,
    finished: bool,
}

impl<W: AsyncWrite + Unpin> AsyncEncryptingWriter<W> {
    /// Get materials from `source` and start a message. Frames are sealed on up to
    /// [`Client::threads`] threads.
    pub async fn new(
        client: &Client,
        source: &MaterialsSource,
        options: &EncryptOptions,
        inner: W,
    ) -> Result<Self> {
        let materials = client.encryption_materials(source, options, None).await?;
        Self::from_materials(&materials, options, client.threads(), inner)
    }

    /// Start a message with materials already obtained, using up to `threads` threads.
    pub fn from_materials(
        materials: &EncryptionMaterials,
        options: &EncryptOptions,
        threads: usize,
        inner: W,
    ) -> Result<Self> {
        Ok(Self {
            core: EncryptCore::new(
                materials,
                options.frame_length,
                options.plaintext_length_bound,
                threads,
            )?,
            inner,
            finished: false,
        })
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        self.core.header()
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            let out = self.core.output();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = match ready!(Pin::new(&mut self.inner).poll_write(cx, out)) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                other => other,
            };
            match n {
                Ok(n) => self.core.consume_output(n),
                Err(e) => {
                    let e = Error::Io(e);
                    self.core.poison(&e);
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while !self.finished {
            ready!(self.poll_drain(cx))?;
            self.finished = self.core.finish()?;
        }
        ready!(self.poll_drain(cx))?;
        Poll::Ready(ready!(Pin::new(&mut self.inner).poll_flush(cx)).map_err(Error::Io))
    }

    /// Write the final frame and the footer, flush, and return the inner writer.
    pub async fn finish(mut self) -> Result<W> {
        poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok(self.inner)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEncryptingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_drain(cx)).map_err(fail_io)?;
            let n = this.core.accept(buf).map_err(fail_io)?;
            if n > 0 || buf.is_empty() {
                return Poll::Ready(Ok(n));
            }
        }
    }

    /// Seals and writes out every complete frame (see [`EncryptingWriter`'s
    /// `flush`](super::EncryptingWriter#impl-Write-for-EncryptingWriter<W>)), then flushes the
    /// inner writer.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_drain(cx)).map_err(fail_io)?;
            if this.core.flush().map_err(fail_io)? {
                break;
            }
        }
        ready!(this.poll_drain(cx)).map_err(fail_io)?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Finishes the message (final frame, footer), then shuts the inner writer down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx)).map_err(fail_io)?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W> core::fmt::Debug for AsyncEncryptingWriter<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncEncryptingWriter")
            .field("suite", &self.core.header().suite)
            .field("frame_length", &self.core.header().frame_length)
            .finish_non_exhaustive()
    }
}

/// Decrypts one message read from `R` asynchronously, releasing plaintext as frames verify,
/// under the same rules as [`DecryptingReader`](super::DecryptingReader) (read its docs on
/// signed messages).
pub struct AsyncDecryptingReader<R> {
    core: DecryptCore,
    inner: R,
}

impl<R: AsyncRead + Unpin> AsyncDecryptingReader<R> {
    /// Read the header, get materials from `source`, authenticate the header, and get ready to
    /// decrypt. Frames are opened on up to [`Client::threads`] threads.
    pub async fn new(
        client: &Client,
        source: &MaterialsSource,
        options: &DecryptOptions,
        mut inner: R,
    ) -> Result<Self> {
        let mut hb = HeaderBuf::default();
        let parsed = loop {
            let n = inner.read(hb.space()).await?;
            if let Some(parsed) = hb.filled(n, client.max_encrypted_data_keys())? {
                break parsed;
            }
        };
        let materials = client
            .decryption_materials(source, &parsed, options)
            .await?;
        Self::from_materials(&parsed, hb.bytes(), &materials, client.threads(), inner)
    }

    /// Like [`new`](Self::new) with materials already obtained for this header. `bytes_read`
    /// is everything read from `inner` so far, starting with the header.
    pub fn from_materials(
        parsed: &ParsedHeader,
        bytes_read: &[u8],
        materials: &DecryptionMaterials,
        threads: usize,
        inner: R,
    ) -> Result<Self> {
        let after = bytes_read
            .get(parsed.total_len..)
            .ok_or(Error::Truncated("the header is incomplete"))?;
        let core = DecryptCore::new(parsed, bytes_read, materials, threads, after)?;
        Ok(Self { core, inner })
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        self.core.header()
    }

    /// The encryption context (stored plus reproduced), authenticated with the header.
    pub fn encryption_context(&self) -> &EncryptionContext {
        self.core.encryption_context()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncDecryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.core.advance().map_err(fail_io)? {
                Progress::Ready => {
                    let plaintext = this.core.plaintext();
                    let n = plaintext.len().min(buf.remaining());
                    buf.put_slice(&plaintext[..n]);
                    this.core.consume(n);
                    return Poll::Ready(Ok(()));
                }
                Progress::End => return Poll::Ready(Ok(())),
                Progress::NeedInput => {
                    let mut input = ReadBuf::new(this.core.input_buf());
                    match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut input)) {
                        Ok(()) => {
                            let n = input.filled().len();
                            this.core.input_filled(n);
                        }
                        Err(e) => {
                            let e = Error::Io(e);
                            this.core.poison(&e);
                            return Poll::Ready(Err(fail_io(e)));
                        }
                    }
                }
            }
        }
    }
}

impl<R> core::fmt::Debug for AsyncDecryptingReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncDecryptingReader")
            .field("suite", &self.core.header().suite)
            .field("frame_length", &self.core.header().frame_length)
            .finish_non_exhaustive()
    }
}
