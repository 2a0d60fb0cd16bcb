//! The async streaming writer and reader (feature `tokio`): round trips against the sync and
//! one-shot paths, inputs that arrive in small pieces and return `Pending`, truncation and
//! tampering.
#![cfg(feature = "tokio")]

mod stream_support;

use core::pin::Pin;
use core::task::{Context, Poll};
use esdk_core::stream::{error_of, AsyncDecryptingReader, AsyncEncryptingWriter};
use esdk_core::{DecryptOptions, Error};
use std::io;
use stream_support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Hands out its bytes in pieces of up to `max`, answering `Pending` (and waking at once)
/// every other call.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    max: usize,
    pend: bool,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.pend = !self.pend;
        if self.pend {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = self
            .max
            .min(buf.remaining())
            .min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// A writer that accepts at most `max` bytes per call and is `Pending` every other call.
struct SlowSink {
    data: Vec<u8>,
    max: usize,
    pend: bool,
}

impl AsyncWrite for SlowSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pend = !self.pend;
        if self.pend {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = self.max.min(buf.len());
        self.data.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn encrypt_async(
    threads: usize,
    suite: esdk_core::AlgorithmSuite,
    fl: u32,
    plaintext: &[u8],
) -> Vec<u8> {
    let client = client_for(suite, threads);
    let sink = SlowSink {
        data: Vec::new(),
        max: 3000,
        pend: false,
    };
    let mut w = AsyncEncryptingWriter::new(&client, &source(), &options(suite, fl), sink)
        .await
        .expect("writer");
    for chunk in plaintext.chunks(5000) {
        w.write_all(chunk).await.expect("write");
    }
    w.shutdown().await.expect("shutdown finishes the message");
    // After shutdown the message is complete; `finish` has nothing left to do.
    w.finish().await.expect("finish").data
}

async fn decrypt_async(
    threads: usize,
    suite: esdk_core::AlgorithmSuite,
    message: &[u8],
    max: usize,
) -> (Vec<u8>, Option<io::Error>) {
    let client = client_for(suite, threads);
    let input = Trickle {
        data: message.to_vec(),
        pos: 0,
        max,
        pend: false,
    };
    let mut reader =
        match AsyncDecryptingReader::new(&client, &source(), &DecryptOptions::default(), input)
            .await
        {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(io::Error::other(e))),
        };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1500];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn async_round_trips_agree_with_one_shot() {
    let mut rng = Prng::new(21);
    for suite in [
        UNSIGNED,
        SIGNED,
        esdk_core::AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
    ] {
        for (len, fl, threads) in [
            (0usize, 64u32, 1usize),
            (1000, 64, 1),
            (700_000, 4096, 2),
            (700_000, 4096, 1),
        ] {
            let plaintext = rng.bytes(len);
            let message = encrypt_async(threads, suite, fl, &plaintext).await;
            let client = client_for(suite, 1);
            let opened = client
                .decrypt_blocking(&source(), &message, &DecryptOptions::default())
                .expect("one-shot decrypt of an async message");
            assert!(opened.plaintext == plaintext, "{suite} {len}");
            let one_shot = client
                .encrypt_blocking(&source(), &plaintext, &options(suite, fl))
                .unwrap();
            let (back, err) = decrypt_async(threads, suite, &one_shot.ciphertext, 777).await;
            assert!(err.is_none(), "{suite} {len}: {err:?}");
            assert!(back == plaintext, "{suite} {len}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn async_truncation_and_tampering_fail() {
    let plaintext = vec![3u8; 1000];
    for suite in [UNSIGNED, SIGNED] {
        let message = encrypt_async(1, suite, 100, &plaintext).await;
        for cut in (0..message.len()).step_by(37) {
            let (out, err) = decrypt_async(1, suite, &message[..cut], 50).await;
            assert!(err.is_some(), "{suite}: cut at {cut} read as success");
            assert!(out.len() <= 900);
        }
        let mut bad = message.clone();
        let header_len = esdk_core::Header::parse(&bad, None)
            .unwrap()
            .unwrap()
            .total_len;
        bad[header_len + 2 * 132 + 40] ^= 4;
        let (out, err) = decrypt_async(1, suite, &bad, 64).await;
        let err = err.expect("tampered");
        assert!(
            matches!(
                error_of(&err),
                Some(Error::FrameAuthentication { sequence_number: 3 })
            ),
            "{err}"
        );
        assert_eq!(out, plaintext[..200]);
    }
}

/// Over an open pipe, the frames a flush wrote reach the reader while the writer is still
/// open: neither side waits for a whole batch of frames.
#[tokio::test(flavor = "current_thread")]
async fn flushed_frames_cross_an_open_pipe() {
    let client = client_for(UNSIGNED, 1);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let mut writer = AsyncEncryptingWriter::new(&client, &source(), &options(UNSIGNED, 16), ours)
        .await
        .expect("writer");
    let plaintext: Vec<u8> = (0..100u8).collect();
    writer.write_all(&plaintext).await.expect("write");
    writer.flush().await.expect("flush");
    let mut reader =
        AsyncDecryptingReader::new(&client, &source(), &DecryptOptions::default(), theirs)
            .await
            .expect("reader");
    // Six complete 16-byte frames were flushed; the seventh is still being filled.
    let mut first = vec![0u8; 96];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_exact(&mut first),
    )
    .await
    .expect("the flushed frames arrive while the writer is open")
    .expect("read");
    assert_eq!(first, plaintext[..96]);

    writer.write_all(&[7u8; 3]).await.expect("write");
    writer.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.expect("the rest");
    assert_eq!(rest, [96, 97, 98, 99, 7, 7, 7]);
}
