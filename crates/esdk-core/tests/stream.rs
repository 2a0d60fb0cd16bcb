//! Streaming encrypt and decrypt: round trips against the one-shot API, chunk-boundary
//! fuzzing, truncation at every byte, tampering, the release rules of signed messages, and
//! the parallel paths.

mod stream_support;

use esdk_core::format::header::Header;
use esdk_core::stream::{error_of, DecryptingReader, EncryptingWriter};
use esdk_core::{AlgorithmSuite, DecryptOptions, Error};
use std::io::{Read, Write};
use stream_support::*;

fn stream_encrypt(
    threads: usize,
    suite: AlgorithmSuite,
    fl: u32,
    plaintext: &[u8],
    write_size: usize,
) -> Vec<u8> {
    let client = client_for(suite, threads);
    let mut w =
        EncryptingWriter::new(&client, &source(), &options(suite, fl), Vec::new()).expect("writer");
    for chunk in plaintext.chunks(write_size.max(1)) {
        w.write_all(chunk).expect("write");
    }
    if plaintext.is_empty() {
        w.write_all(&[]).expect("empty write");
    }
    w.finish().expect("finish")
}

fn stream_decrypt(
    threads: usize,
    suite: AlgorithmSuite,
    message: &[u8],
    chunks: Chunks,
    read_size: usize,
) -> Result<Vec<u8>, std::io::Error> {
    let client = client_for(suite, threads);
    let reader = DecryptingReader::new(
        &client,
        &source(),
        &DecryptOptions::default(),
        ChunkedReader::new(message, chunks),
    )
    .map_err(std::io::Error::other)?;
    let (out, err) = drain(reader, read_size);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn inner_error(e: &std::io::Error) -> &Error {
    error_of(e).unwrap_or_else(|| panic!("not an esdk error: {e:?}"))
}

/// Every suite family, frame lengths around the boundaries, sizes around frame and batch
/// boundaries: streaming and one-shot agree in both directions and in length.
#[test]
fn round_trips_match_one_shot_for_every_shape() {
    let mut rng = Prng::new(7);
    let suites = [
        AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        UNSIGNED,
        SIGNED,
    ];
    for suite in suites {
        for fl in [1u32, 16, 4096] {
            let f = fl as usize;
            for len in [0, 1, f.saturating_sub(1), f, f + 1, 3 * f, 3 * f + 5] {
                let plaintext = rng.bytes(len);
                for threads in [1, 3] {
                    let client = client_for(suite, threads);
                    let streamed = stream_encrypt(threads, suite, fl, &plaintext, 1 + len / 3);
                    let one_shot = client
                        .encrypt_blocking(&source(), &plaintext, &options(suite, fl))
                        .expect("one-shot encrypt");
                    let footer_slack = if suite.is_signed() { 4 } else { 0 };
                    assert!(
                        streamed.len().abs_diff(one_shot.ciphertext.len()) <= footer_slack,
                        "suite {suite} fl {fl} len {len}: layouts differ"
                    );
                    let opened = client
                        .decrypt_blocking(&source(), &streamed, &DecryptOptions::default())
                        .expect("one-shot decrypt of a streamed message");
                    assert_eq!(opened.plaintext, plaintext);
                    let back =
                        stream_decrypt(threads, suite, &one_shot.ciphertext, Chunks::Whole, 4096)
                            .expect("stream decrypt of a one-shot message");
                    assert_eq!(back, plaintext, "suite {suite} fl {fl} len {len}");
                }
            }
        }
    }
}

/// Large enough (over 4 MiB, several 256 KiB batches) for the worker threads to start; the message the
/// threaded paths write decrypts on the single-threaded path and the other way round, with
/// the signature (hashed in wire order) verifying.
#[test]
fn parallel_and_sequential_paths_interoperate() {
    let mut rng = Prng::new(11);
    let plaintext = rng.bytes(4 * 1024 * 1024 + 3 * 256 * 1024 + 12345);
    for suite in [UNSIGNED, SIGNED] {
        for fl in [4096u32, 1000, 300_000] {
            let one = client_for(suite, 1);
            let many = client_for(suite, 4);
            let opts = options(suite, fl);
            let par = many
                .encrypt_blocking(&source(), &plaintext, &opts)
                .expect("parallel encrypt");
            let seq = one
                .encrypt_blocking(&source(), &plaintext, &opts)
                .expect("sequential encrypt");
            let slack = if suite.is_signed() { 4 } else { 0 };
            assert!(par.ciphertext.len().abs_diff(seq.ciphertext.len()) <= slack);
            for (encrypted, decryptor) in [
                (&par.ciphertext, &one),
                (&seq.ciphertext, &many),
                (&par.ciphertext, &many),
            ] {
                let out = decryptor
                    .decrypt_blocking(&source(), encrypted, &DecryptOptions::default())
                    .expect("decrypt");
                assert!(out.plaintext == plaintext, "suite {suite} fl {fl}");
            }
            let streamed = stream_encrypt(4, suite, fl, &plaintext, 100_000);
            assert!(streamed.len().abs_diff(seq.ciphertext.len()) <= slack);
            let out = one
                .decrypt_blocking(&source(), &streamed, &DecryptOptions::default())
                .expect("sequential decrypt of a parallel stream");
            assert!(out.plaintext == plaintext);
            let back = stream_decrypt(4, suite, &seq.ciphertext, Chunks::Random(5, 70_000), 10_000)
                .expect("parallel stream decrypt");
            assert!(back == plaintext);
        }
    }
}

/// The same message fed in 1-byte chunks, random chunks, and whole, read with several buffer
/// sizes, gives identical plaintext.
#[test]
fn chunk_boundaries_do_not_matter() {
    let mut rng = Prng::new(3);
    for suite in [UNSIGNED, SIGNED] {
        for (len, fl) in [
            (0usize, 64u32),
            (100, 64),
            (5000, 64),
            (600_000, 4096),
            (5_000_000, 4096),
        ] {
            let plaintext = rng.bytes(len);
            let message = stream_encrypt(1, suite, fl, &plaintext, 777);
            for threads in [1, 2] {
                for (chunks, read_size) in [
                    (Chunks::Single, 1),
                    (Chunks::Single, 4096),
                    (Chunks::Random(len as u64 + 1, 200), 7),
                    (Chunks::Random(99, 5000), 1000),
                    (Chunks::Whole, 1),
                    (Chunks::Whole, 1 << 20),
                ] {
                    if matches!(chunks, Chunks::Single) && len > 10_000 {
                        continue;
                    }
                    let out = stream_decrypt(threads, suite, &message, chunks, read_size)
                        .unwrap_or_else(|e| panic!("{suite} len {len} {chunks:?}: {e}"));
                    assert!(
                        out == plaintext,
                        "{suite} len {len} {chunks:?} read {read_size}"
                    );
                }
            }
        }
    }
}

/// Cutting the message anywhere (header, any frame, footer) is an error, never a short read.
#[test]
fn every_truncation_point_is_an_error() {
    let mut rng = Prng::new(5);
    for suite in [UNSIGNED, SIGNED] {
        let plaintext = rng.bytes(150);
        let message = stream_encrypt(1, suite, 64, &plaintext, 150);
        let client = client_for(suite, 1);
        let parsed = Header::parse(&message, None)
            .expect("header")
            .expect("complete header");
        let materials = pollster::block_on(client.decryption_materials(
            &source(),
            &parsed,
            &DecryptOptions::default(),
        ))
        .expect("materials");
        for cut in 0..message.len() {
            let cut_message = &message[..cut];
            if cut < parsed.total_len {
                let err = DecryptingReader::new(
                    &client,
                    &source(),
                    &DecryptOptions::default(),
                    cut_message,
                )
                .expect_err("a cut header must fail");
                assert!(matches!(err, Error::Truncated(_)), "cut {cut}: {err}");
                continue;
            }
            let reader =
                DecryptingReader::from_materials(&parsed, cut_message, &materials, 1, &[][..])
                    .expect("header verified");
            let (out, err) = drain(reader, 50);
            let err = err.unwrap_or_else(|| {
                panic!("{suite}: cut at {cut} of {} read as success", message.len())
            });
            assert!(
                matches!(inner_error(&err), Error::Truncated(_)),
                "cut {cut}: {err}"
            );
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
            // Whatever was released is a prefix of the plaintext, without the final frame.
            assert!(out.len() <= 128 && plaintext.starts_with(&out), "cut {cut}");
        }
        // The whole message reads to the end.
        let reader = DecryptingReader::from_materials(&parsed, &message, &materials, 1, &[][..])
            .expect("header");
        let (out, err) = drain(reader, 50);
        assert!(err.is_none());
        assert_eq!(out, plaintext);
    }
}

/// A tampered frame stops the stream at that frame: the frames before it are released, the
/// error names it, and nothing after it comes out.
#[test]
fn tampered_frame_stops_the_stream_there() {
    let mut rng = Prng::new(9);
    for suite in [UNSIGNED, SIGNED] {
        for (threads, fl, len, bad_frame) in [
            (1usize, 64u32, 64 * 10 + 3, 4u32),
            (2, 4096, 4096 * 1100 + 1, 1050),
        ] {
            let plaintext = rng.bytes(len);
            let mut message = stream_encrypt(1, suite, fl, &plaintext, 10_000);
            let header_len = Header::parse(&message, None).unwrap().unwrap().total_len;
            let frame_wire = fl as usize + 32;
            // A byte in the content of frame `bad_frame`.
            let at = header_len + (bad_frame as usize - 1) * frame_wire + 20;
            message[at] ^= 0x01;
            for chunks in [Chunks::Whole, Chunks::Random(1, 3000)] {
                let client = client_for(suite, threads);
                let reader = DecryptingReader::new(
                    &client,
                    &source(),
                    &DecryptOptions::default(),
                    ChunkedReader::new(&message, chunks),
                )
                .expect("header is intact");
                let (out, err) = drain(reader, 4096);
                let err = err.expect("tampering must be detected");
                assert!(
                    matches!(inner_error(&err), Error::FrameAuthentication { sequence_number } if *sequence_number == bad_frame),
                    "{err}"
                );
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
                let released = (bad_frame as usize - 1) * fl as usize;
                assert_eq!(out.len(), released);
                assert!(out == plaintext[..released]);
            }
        }
    }
}

/// With several tampered frames, the parallel one-shot decrypt reports the earliest, whichever
/// thread finds which first (a thread that found a later one must not stop the others from
/// checking the frames before it).
#[test]
fn parallel_one_shot_decrypt_reports_the_earliest_tampered_frame() {
    const FL: usize = 4096;
    let mut rng = Prng::new(21);
    let plaintext = rng.bytes(FL * 1500 + 9);
    let client = client_for(UNSIGNED, 2);
    let message = client
        .encrypt_blocking(&source(), &plaintext, &options(UNSIGNED, 4096))
        .unwrap()
        .ciphertext;
    let header_len = Header::parse(&message, None).unwrap().unwrap().total_len;
    // Pairs of frame indexes (from 0) in batches of 64 frames on alternating threads.
    for bad in [
        [130, 200],
        [193, 64],
        [1000, 1030],
        [1400, 3],
        [63, 64],
        [1499, 1450],
    ] {
        let mut tampered = message.clone();
        for frame in bad {
            tampered[header_len + frame * (FL + 32) + 20] ^= 0x01;
        }
        let earliest = u32::try_from(bad.iter().min().unwrap() + 1).unwrap();
        for _ in 0..3 {
            let err = client
                .decrypt_blocking(&source(), &tampered, &DecryptOptions::default())
                .unwrap_err();
            assert!(
                matches!(err, Error::FrameAuthentication { sequence_number } if sequence_number == earliest),
                "frames {bad:?}: {err}"
            );
        }
    }
    // Each frame's place is checked on the threads too: an IV or a sequence number changed
    // deep in the body is named as such.
    let frame_at = |index: usize| header_len + index * (FL + 32);
    let mut bad_iv = message.clone();
    bad_iv[frame_at(700) + 4 + 11] ^= 0x01;
    let err = client
        .decrypt_blocking(&source(), &bad_iv, &DecryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::Format(esdk_core::FormatError::FrameIv(701))),
        "{err}"
    );
    let mut bad_sequence = message.clone();
    bad_sequence[frame_at(900) + 3] ^= 0x01;
    let err = client
        .decrypt_blocking(&source(), &bad_sequence, &DecryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Format(esdk_core::FormatError::SequenceNumber { expected: 901, .. })
        ),
        "{err}"
    );
}

/// After a failure the reader stays failed.
#[test]
fn a_failed_reader_stays_failed() {
    let plaintext = vec![5u8; 1000];
    let mut message = stream_encrypt(1, UNSIGNED, 100, &plaintext, 1000);
    let n = message.len();
    message[n - 5] ^= 1;
    let client = client_for(UNSIGNED, 1);
    let mut reader =
        DecryptingReader::new(&client, &source(), &DecryptOptions::default(), &message[..])
            .unwrap();
    let mut sink = Vec::new();
    let first = reader
        .read_to_end(&mut sink)
        .expect_err("final frame tampered");
    assert!(matches!(
        inner_error(&first),
        Error::FrameAuthentication {
            sequence_number: 10
        }
    ));
    let mut buf = [0u8; 10];
    let again = reader.read(&mut buf).expect_err("still failed");
    match inner_error(&again) {
        Error::StreamFailed(first) => assert!(first.contains("frame 10"), "{first}"),
        other => panic!("expected StreamFailed, got {other:?}"),
    }
}

/// Signed messages: the final frame is held until the signature verifies; a bad signature
/// means the final frame is never released.
#[test]
fn signed_final_frame_waits_for_the_signature() {
    let plaintext: Vec<u8> = (0..1000u32).map(|i| i.to_le_bytes()[0]).collect();
    let mut message = stream_encrypt(1, SIGNED, 300, &plaintext, 1000);
    let n = message.len();
    // The last byte belongs to the DER signature.
    message[n - 1] ^= 0x01;
    let (out, err) = drain(
        DecryptingReader::new(
            &client_for(SIGNED, 1),
            &source(),
            &DecryptOptions::default(),
            &message[..],
        )
        .unwrap(),
        64,
    );
    let err = err.expect("bad signature");
    assert!(
        matches!(inner_error(&err), Error::SignatureVerification),
        "{err}"
    );
    // Three regular frames came out; the final frame (100 bytes) did not.
    assert_eq!(out, plaintext[..900]);
}

/// Bytes after the end of the message are an error, and the final frame is not released.
#[test]
fn trailing_bytes_are_an_error() {
    for suite in [UNSIGNED, SIGNED] {
        let plaintext = vec![9u8; 500];
        let mut message = stream_encrypt(1, suite, 200, &plaintext, 500);
        message.push(0);
        let (out, err) = drain(
            DecryptingReader::new(
                &client_for(suite, 1),
                &source(),
                &DecryptOptions::default(),
                ChunkedReader::new(&message, Chunks::Single),
            )
            .unwrap(),
            1000,
        );
        let err = err.expect("trailing byte");
        assert!(
            matches!(inner_error(&err), Error::TrailingBytes(1)),
            "{err}"
        );
        assert_eq!(out.len(), 400);
    }
}

/// The unsigned-only option refuses a signed message right after its header.
#[test]
fn unsigned_only_refuses_signed_messages_after_the_header() {
    let message = stream_encrypt(1, SIGNED, 64, b"signed", 6);
    let err = DecryptingReader::new(
        &client_for(SIGNED, 1),
        &source(),
        &DecryptOptions::default().unsigned_only(),
        &message[..],
    )
    .expect_err("signed message refused");
    assert!(matches!(err, Error::SignedMessageRefused(s) if s == SIGNED));
    let message = stream_encrypt(1, UNSIGNED, 64, b"unsigned", 8);
    let mut reader = DecryptingReader::new(
        &client_for(UNSIGNED, 1),
        &source(),
        &DecryptOptions::default().unsigned_only(),
        &message[..],
    )
    .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"unsigned");
}

/// The plaintext bound fails the write that crosses it.
#[test]
fn plaintext_bound_is_enforced_while_writing() {
    let client = client_for(UNSIGNED, 1);
    let opts = options(UNSIGNED, 64).with_plaintext_length_bound(100);
    let mut w = EncryptingWriter::new(&client, &source(), &opts, Vec::new()).unwrap();
    w.write_all(&[0u8; 60]).unwrap();
    w.write_all(&[0u8; 40]).unwrap();
    let err = w.write_all(&[0u8; 1]).expect_err("bound exceeded");
    assert!(
        matches!(inner_error(&err), Error::PlaintextTooLong { bound: 100 }),
        "{err}"
    );
    assert!(w.finish().is_err(), "a failed writer cannot finish");
    // Exactly the bound is fine.
    let mut w = EncryptingWriter::new(&client, &source(), &opts, Vec::new()).unwrap();
    w.write_all(&[1u8; 100]).unwrap();
    let message = w.finish().unwrap();
    let out = client
        .decrypt_blocking(&source(), &message, &DecryptOptions::default())
        .unwrap();
    assert_eq!(out.plaintext, vec![1u8; 100]);
}

/// Flushing seals and writes every complete frame; only the frame being filled (which may
/// yet be the final frame) stays buffered.
#[test]
fn flush_writes_every_complete_frame() {
    const RW: usize = 16 + 32; // a regular frame of 16 bytes on the wire
    for threads in [1, 2] {
        let client = client_for(UNSIGNED, threads);
        let mut w =
            EncryptingWriter::new(&client, &source(), &options(UNSIGNED, 16), Vec::new()).unwrap();
        w.flush().unwrap();
        let header_len = w.get_ref().len();
        assert!(header_len > 0, "the header is written first");
        let mut plaintext = Vec::new();
        // (bytes to write, frames on the wire after a flush)
        for (n, frames) in [(10, 0), (90, 6), (12, 6), (1, 7), (31, 8)] {
            let chunk: Vec<u8> = (0..n)
                .map(|i| u8::try_from((plaintext.len() + i) % 251).expect("below 251"))
                .collect();
            w.write_all(&chunk).unwrap();
            plaintext.extend_from_slice(&chunk);
            w.flush().unwrap();
            assert_eq!(
                w.get_ref().len(),
                header_len + frames * RW,
                "after {} bytes, flushed output holds {frames} frames",
                plaintext.len()
            );
        }
        let message = w.finish().unwrap();
        // 144 bytes: 8 regular frames and a full final frame (8 bytes more than a regular one).
        assert_eq!(message.len(), header_len + 8 * RW + RW + 8);
        let out = client
            .decrypt_blocking(&source(), &message, &DecryptOptions::default())
            .unwrap();
        assert_eq!(out.plaintext, plaintext);
    }
}

/// Flushing while worker threads seal (a message past the 4 MiB threshold) hands out every
/// complete frame too, and the message stays whole.
#[test]
fn flush_with_worker_threads_running() {
    const FL: usize = 4096;
    let client = client_for(UNSIGNED, 2);
    let mut w =
        EncryptingWriter::new(&client, &source(), &options(UNSIGNED, 4096), Vec::new()).unwrap();
    w.flush().unwrap();
    let header_len = w.get_ref().len();
    let plaintext = Prng::new(3).bytes(5 * 1024 * 1024 + 100);
    let (first, second) = plaintext.split_at(4 * 1024 * 1024 + 3 * FL + 10);
    for chunk in first.chunks(100_000) {
        w.write_all(chunk).unwrap();
    }
    w.flush().unwrap();
    let complete = first.len() / FL;
    assert_eq!(w.get_ref().len(), header_len + complete * (FL + 32));
    w.write_all(second).unwrap();
    let message = w.finish().unwrap();
    let out = client
        .decrypt_blocking(&source(), &message, &DecryptOptions::default())
        .unwrap();
    assert!(out.plaintext == plaintext);
}

/// A reader that hands out a message in scripted pieces, like a socket whose peer sends a bit
/// at a time, and checks at the start of every piece that the decryptor released every
/// complete regular frame before asking for more.
struct Interactive<'a> {
    data: &'a [u8],
    pos: usize,
    /// Where each piece ends.
    ends: Vec<usize>,
    released: std::rc::Rc<std::cell::Cell<usize>>,
    expected: Box<dyn Fn(usize) -> usize + 'a>,
    checked: usize,
}

impl Read for Interactive<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(&end) = self.ends.iter().find(|&&e| e > self.pos) else {
            return Ok(0);
        };
        if self.ends.contains(&self.pos) {
            // A new piece: the last one is fully decrypted and consumed by now.
            assert_eq!(
                self.released.get(),
                (self.expected)(self.pos),
                "plaintext released when {} bytes had arrived",
                self.pos
            );
            self.checked += 1;
        }
        // Short reads, as from a socket with nothing more to give yet.
        let n = (end - self.pos).min(buf.len().saturating_sub(1).max(1));
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Complete frames are decrypted and released as soon as the input pauses, not when a whole
/// batch of frames has arrived: an interactive stream never waits on plaintext that is ready.
#[test]
fn complete_frames_are_released_when_the_input_pauses() {
    const FL: usize = 64;
    const RW: usize = FL + 32;
    for threads in [1, 2] {
        let plaintext: Vec<u8> = (0..20 * FL + 5)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
        let message = stream_encrypt(threads, UNSIGNED, 64, &plaintext, plaintext.len());
        let header_len = Header::parse(&message, None).unwrap().unwrap().total_len;
        let mut rng = Prng::new(7 + threads as u64);
        let mut ends = Vec::new();
        let mut at = 0;
        while at < message.len() {
            at = (at + 1 + rng.below(3 * RW)).min(message.len());
            ends.push(at);
        }
        let pieces = ends.len();
        let released = std::rc::Rc::new(std::cell::Cell::new(0));
        let input = Interactive {
            data: &message,
            pos: 0,
            ends,
            released: released.clone(),
            // Every complete regular frame; the final frame waits for the end of the input.
            expected: Box::new(move |arrived| {
                arrived.saturating_sub(header_len).div_euclid(RW).min(20) * FL
            }),
            checked: 0,
        };
        let client = client_for(UNSIGNED, threads);
        let mut reader =
            DecryptingReader::new(&client, &source(), &DecryptOptions::default(), input).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            released.set(out.len());
        }
        assert_eq!(out, plaintext);
        let checked = reader.get_ref().checked;
        assert!(
            checked + 1 >= pieces / 2,
            "{checked} of {pieces} piece starts checked"
        );
    }
}

/// Zero threads is a configuration error.
#[test]
fn zero_threads_is_refused() {
    let err = esdk_core::Client::builder()
        .threads(0)
        .build()
        .expect_err("zero threads");
    assert!(matches!(err, Error::Config(_)));
    assert!(esdk_core::Client::new().threads() >= 1);
}
