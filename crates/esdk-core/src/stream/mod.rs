//! Streaming encryption and decryption in bounded memory, and random access to framed
//! messages.
//!
//! - [`EncryptingWriter`] implements [`std::io::Write`] over any `Write`: plaintext written to
//!   it is cut into frames, sealed, and written out frame batch by frame batch.
//!   [`EncryptingWriter::finish`] writes the final frame and (signed suites) the footer.
//! - [`DecryptingReader`] implements [`std::io::Read`] (and `BufRead`) over any `Read`.
//! - [`RandomAccessDecryptor`] decrypts a plaintext byte range of a framed message read
//!   through `Read + Seek`, opening only the frames that cover it.
//! - With the `tokio` feature, `AsyncEncryptingWriter` and `AsyncDecryptingReader` do the
//!   same over `tokio::io::AsyncWrite` / `AsyncRead`.
//!
//! # Memory
//! Memory stays bounded by a few batches of frames (a batch is about 256 KiB of frames, or one
//! frame when frames are larger) whatever the message size: nothing grows with the input and
//! buffers are reused, so no allocation happens per frame. The only exception is the legacy
//! non-framed body, which is one AES-GCM block and must be held whole before it can be
//! authenticated (such messages are only ever decrypted, never written).
//!
//! # Threads
//! A stream uses up to [`Client::threads`](crate::Client::threads) threads (default: the
//! available cores): `threads - 1` worker threads seal or open batches of frames, and the
//! calling thread, which also copies the data in and out, takes a smaller share (for signed
//! suites it feeds the signature hash instead). The workers start only once a message has
//! passed [`MIN_PARALLEL_BYTES`](crate::parallel::MIN_PARALLEL_BYTES) (4 MiB) and goes on, so
//! short messages never pay for them. The output is byte-identical to a single-threaded run;
//! the signature hash always sees the bytes in wire order.
//!
//! The async types wait for those threads synchronously when a batch is not yet done (the
//! wait is CPU work of the same size the task would otherwise do itself).
//!
//! # Release rules on decrypt
//! - A frame's plaintext is released only after its authentication tag verifies.
//! - The last frame, and a non-framed body, are released only after the message signature
//!   verified (signed suites) and the input ended right after the message.
//! - **For signed suites, the frames before the last one are released before the signature is
//!   verified.** They are authentic to whoever holds the data key, but not yet proven to come
//!   from the signer. Either wait for the end of the stream (`Ok(0)`) before acting on the
//!   plaintext and roll back if decryption fails, or set
//!   [`DecryptOptions::unsigned_only`](crate::DecryptOptions::unsigned_only): a signed
//!   message then fails right after its header, before any plaintext.
//! - A message that stops early (at any byte), has bytes after its end, or fails a check
//!   makes the reader fail with an error; it never reports a silent short read. Success
//!   (`Ok(0)`) is reported only at the end of a message that verified completely.
//! - The one-shot [`Client::decrypt`](crate::Client::decrypt) still releases nothing until
//!   everything verified.
//!
//! Errors surface through `std::io` as an [`io::Error`] wrapping this crate's [`Error`]; get
//! it back with [`error_of`].

mod decrypt;
mod encrypt;
mod engine;
mod seek;
#[cfg(feature = "tokio")]
mod tokio_io;

pub use decrypt::DecryptingReader;
pub use encrypt::EncryptingWriter;
pub use seek::{RandomAccessDecryptor, RandomAccessOptions};
#[cfg(feature = "tokio")]
pub use tokio_io::{AsyncDecryptingReader, AsyncEncryptingWriter};

use crate::error::Error;
use std::io;

/// This crate's error inside an [`io::Error`] returned by a streaming reader or writer, if it
/// is one (errors of the inner reader or writer are passed through unchanged).
pub fn error_of(e: &io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// Turn this crate's error into an [`io::Error`] for the `Read`/`Write` traits. Inner I/O
/// errors pass through unchanged.
pub(crate) fn fail_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Io(_) => {
            if let Error::Io(inner) = e {
                return inner;
            }
            io::ErrorKind::Other
        }
        Error::Truncated(_) => io::ErrorKind::UnexpectedEof,
        Error::Config(_) | Error::PlaintextTooLong { .. } => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// Whether a stream may go on; after any failure it refuses to, with the first error's text.
#[derive(Debug)]
pub(crate) enum StreamState {
    Running,
    Failed(String),
}

impl StreamState {
    /// Fail if an earlier call failed.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Self::Running => Ok(()),
            Self::Failed(first) => Err(Error::StreamFailed(first.clone())),
        }
    }

    /// Remember a failure.
    pub(crate) fn track<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            self.poison(e);
        }
        r
    }

    /// Record `e` as the failure that stopped the stream.
    pub(crate) fn poison(&mut self, e: &Error) {
        if matches!(self, Self::Running) {
            *self = Self::Failed(e.to_string());
        }
    }
}
