//! Random access to framed messages: ranges anywhere, only the covering frames read, ranges
//! outside the message refused with a typed error, signed messages refused unless the caller
//! accepts unsigned output.

mod stream_support;

use esdk_core::stream::{RandomAccessDecryptor, RandomAccessOptions};
use esdk_core::{AlgorithmSuite, DecryptOptions, Error, Header};
use std::io::{Cursor, Read, Seek, SeekFrom};
use stream_support::*;

fn encrypt(suite: AlgorithmSuite, fl: u32, plaintext: &[u8]) -> Vec<u8> {
    client_for(suite, 1)
        .encrypt_blocking(&source(), plaintext, &options(suite, fl))
        .expect("encrypt")
        .ciphertext
}

fn open(
    suite: AlgorithmSuite,
    message: Vec<u8>,
    options: &RandomAccessOptions,
) -> Result<RandomAccessDecryptor<Cursor<Vec<u8>>>, Error> {
    RandomAccessDecryptor::new(
        &client_for(suite, 1),
        &source(),
        options,
        Cursor::new(message),
    )
}

#[test]
fn any_range_matches_the_plaintext() {
    let mut rng = Prng::new(31);
    for (suite, opts) in [
        (UNSIGNED, RandomAccessOptions::default()),
        (
            AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256,
            RandomAccessOptions::default(),
        ),
        (
            SIGNED,
            RandomAccessOptions::default().accept_unsigned_output(),
        ),
        (
            AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
            RandomAccessOptions::default().accept_unsigned_output(),
        ),
    ] {
        for (len, fl) in [
            (0usize, 64u32),
            (1, 64),
            (64, 64),
            (65, 64),
            (1000, 64),
            (10_000, 333),
        ] {
            let plaintext = rng.bytes(len);
            let mut ra = open(suite, encrypt(suite, fl, &plaintext), &opts).expect("open");
            assert_eq!(ra.plaintext_len(), len as u64, "{suite} {len}");
            for _ in 0..40 {
                let start = rng.below(len + 1);
                let n = rng.below(len - start + 1);
                let mut out = vec![0u8; n];
                ra.read_at(start as u64, &mut out).expect("range inside");
                assert_eq!(
                    out,
                    plaintext[start..start + n],
                    "{suite} len {len} at {start}+{n}"
                );
            }
            assert_eq!(ra.read_range(0..len as u64).unwrap(), plaintext);
        }
    }
}

#[test]
fn ranges_outside_the_message_are_typed_errors() {
    let plaintext = vec![1u8; 1000];
    let mut ra = open(
        UNSIGNED,
        encrypt(UNSIGNED, 100, &plaintext),
        &RandomAccessOptions::default(),
    )
    .unwrap();
    let mut buf = [0u8; 10];
    for (start, n) in [(995u64, 10usize), (1000, 1), (u64::MAX, 2), (5000, 0)] {
        let err = ra.read_at(start, &mut buf[..n]).expect_err("outside");
        assert!(
            matches!(err, Error::RangeOutOfBounds { start: s, len, plaintext_len: 1000 } if s == start && len == n as u64),
            "{err}"
        );
    }
    ra.read_at(1000, &mut [])
        .expect("an empty range at the end is inside");
    assert!(matches!(
        ra.read_range(std::ops::Range { start: 10, end: 5 }),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(matches!(
        ra.read_range(900..1001),
        Err(Error::RangeOutOfBounds { .. })
    ));
}

#[test]
fn signed_messages_need_the_unsigned_output_option() {
    let message = encrypt(SIGNED, 64, b"signed data");
    let err = open(SIGNED, message.clone(), &RandomAccessOptions::default()).expect_err("refused");
    assert!(matches!(err, Error::SignedMessageRefused(s) if s == SIGNED));
    // unsigned_only wins over accepting unsigned output.
    let both = RandomAccessOptions::default()
        .accept_unsigned_output()
        .with_decrypt_options(DecryptOptions::default().unsigned_only());
    assert!(matches!(
        open(SIGNED, message.clone(), &both),
        Err(Error::SignedMessageRefused(_))
    ));
    let mut ra = open(
        SIGNED,
        message,
        &RandomAccessOptions::default().accept_unsigned_output(),
    )
    .unwrap();
    assert_eq!(ra.read_range(7..11).unwrap(), b"data");
}

/// Only the frames covering the range are read: a tampered frame elsewhere does not matter,
/// a tampered frame inside the range is caught by its tag.
#[test]
fn only_covering_frames_are_read_and_each_is_authenticated() {
    let plaintext: Vec<u8> = (0..2000u32)
        .map(|i| u8::try_from(i % 251).expect("small"))
        .collect();
    let mut message = encrypt(UNSIGNED, 100, &plaintext);
    let header_len = Header::parse(&message, None).unwrap().unwrap().total_len;
    // Corrupt frame 5 (plaintext bytes 400..500).
    message[header_len + 4 * 132 + 30] ^= 0x80;
    let mut ra = open(UNSIGNED, message, &RandomAccessOptions::default())
        .expect("header and final frame intact");
    assert_eq!(ra.read_range(0..400).unwrap(), plaintext[..400]);
    assert_eq!(ra.read_range(500..2000).unwrap(), plaintext[500..]);
    let err = ra.read_range(399..401).expect_err("frame 5 is tampered");
    assert!(
        matches!(err, Error::FrameAuthentication { sequence_number: 5 }),
        "{err}"
    );
}

/// A reader that counts how many bytes were read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_small_range_of_a_large_message_reads_little() {
    let plaintext = vec![7u8; 4 << 20];
    let message = encrypt(UNSIGNED, 4096, &plaintext);
    let total = message.len() as u64;
    let input = Counting {
        inner: Cursor::new(message),
        read: 0,
    };
    let mut ra = RandomAccessDecryptor::new(
        &client_for(UNSIGNED, 1),
        &source(),
        &RandomAccessOptions::default(),
        input,
    )
    .unwrap();
    let before = ra.get_ref().read;
    let mut out = [0u8; 100];
    ra.read_at(3 << 20, &mut out).unwrap();
    assert_eq!(out, [7u8; 100]);
    let used = ra.get_ref().read - before;
    assert!(used <= 2 * 4136, "read {used} bytes for a 100-byte range");
    assert!(
        ra.get_ref().read < total / 100,
        "opening read {} of {total} bytes",
        ra.get_ref().read
    );
}

#[test]
fn a_cut_or_extended_message_is_rejected_on_open() {
    for (suite, opts) in [
        (UNSIGNED, RandomAccessOptions::default()),
        (
            SIGNED,
            RandomAccessOptions::default().accept_unsigned_output(),
        ),
    ] {
        // A final frame shorter than a regular one, and one exactly a frame long (an empty
        // final frame follows the regular frames).
        for (len, fl) in [(1000usize, 100u32), (50, 100), (300, 100)] {
            let plaintext = vec![2u8; len];
            let message = encrypt(suite, fl, &plaintext);
            let header_len = Header::parse(&message, None).unwrap().unwrap().total_len;
            // Every cut, frame boundaries included (a cut after a regular frame leaves a body
            // whose length fits "regular frames + a short final frame").
            for cut in header_len..message.len() {
                assert!(
                    open(suite, message[..cut].to_vec(), &opts).is_err(),
                    "{suite} {len}/{fl}: cut at {cut} of {}",
                    message.len()
                );
            }
            // Bytes after the message, up to more than a frame.
            for extra in 1..=fl as usize + 40 {
                let mut longer = message.clone();
                longer.extend(std::iter::repeat_n(0x5a, extra));
                assert!(
                    open(suite, longer, &opts).is_err(),
                    "{suite} {len}/{fl}: {extra} bytes appended"
                );
            }
            let err =
                open(suite, message[..header_len - 1].to_vec(), &opts).expect_err("cut header");
            assert!(matches!(err, Error::Truncated(_)), "{err}");
        }
    }
}

#[test]
fn bytes_after_a_short_final_frame_are_reported_as_trailing() {
    let plaintext = vec![7u8; 50];
    let mut message = encrypt(UNSIGNED, 100, &plaintext);
    message.extend_from_slice(&[0u8; 30]);
    let err = open(UNSIGNED, message, &RandomAccessOptions::default()).expect_err("extended");
    assert!(matches!(err, Error::TrailingBytes(30)), "{err}");
}

/// A final frame where the layout puts a regular frame (spliced in from another message, the
/// same length on the wire) is named as such, before any decryption is tried.
#[test]
fn a_final_frame_in_a_regular_place_is_refused() {
    const RW: usize = 16 + 32;
    let plaintext = vec![3u8; 16 * 3 + 5];
    let mut message = encrypt(UNSIGNED, 16, &plaintext);
    // Another message whose final frame (sequence 2, 8 bytes of content) is 48 bytes long.
    let donor = encrypt(UNSIGNED, 16, &[4u8; 16 + 8]);
    let at = Header::parse(&message, None).unwrap().unwrap().total_len + RW;
    let donor_at = Header::parse(&donor, None).unwrap().unwrap().total_len + RW;
    message[at..at + RW].copy_from_slice(&donor[donor_at..donor_at + RW]);
    let mut ra = open(UNSIGNED, message, &RandomAccessOptions::default())
        .expect("header and final frame intact");
    // The first frame is fine; the second is the spliced final frame.
    assert_eq!(ra.read_range(0..16).expect("frame 1"), vec![3u8; 16]);
    let err = ra.read_range(16..20).expect_err("frame 2 is a final frame");
    assert!(
        matches!(
            err,
            Error::Format(esdk_core::FormatError::FinalFrameBeforeEnd(2))
        ),
        "{err}"
    );
}
