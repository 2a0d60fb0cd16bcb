//! The memory bound of streaming, asserted through a counting global allocator (dhat): a
//! message streamed through an `EncryptingWriter` into a pipe and back out of a
//! `DecryptingReader` never has more than a few MiB of heap live, and the number of
//! allocations does not grow with the number of frames (buffers are reused).
//!
//! Streams 1 GiB per run by default (`ESDK_STREAM_MEMORY_BYTES` sets another size); the
//! plaintext is produced and checked with `memcpy`/`memcmp` against one pattern buffer, so
//! even a debug build moves a GiB in seconds. `cargo xtask bench` also measures the peak RSS
//! of a 1 GiB message in release.
//!
//! This file is its own test binary so the allocator sees nothing but this test.

mod stream_support;

use esdk_core::stream::{DecryptingReader, EncryptingWriter};
use esdk_core::{AlgorithmSuite, DecryptOptions};
use std::io::{Read, Write};
use stream_support::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: u64 = 1 << 20;
/// Heap bytes a stream may hold at its peak, both ends and the pool included.
const HEAP_BOUND: u64 = 8 * MIB;

/// Length of the repeating plaintext pattern: prime, so coprime to the frame length, and a
/// frame released at the wrong place (a shift by a multiple of 4096 bytes short of 256 MiB)
/// cannot match it.
const PERIOD: usize = 65_521;

/// Twice the pattern, so any window of up to `PERIOD` bytes starting anywhere in the first
/// period is one slice.
fn pattern() -> Vec<u8> {
    (0..2 * PERIOD as u64)
        .map(|i| {
            let i = i % PERIOD as u64;
            (i ^ (i >> 7) ^ (i * 31)).to_le_bytes()[0]
        })
        .collect()
}

/// The plaintext bytes at `offset..offset + len` (`len <= PERIOD`).
fn expected(pattern: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = usize::try_from(offset % PERIOD as u64).expect("below PERIOD");
    &pattern[start..start + len]
}

/// Stream `total` bytes: encrypt on a thread into a pipe, decrypt from it here, checking every
/// byte. Returns (peak live heap bytes, blocks allocated) over the run.
fn stream_through_pipe(
    suite: AlgorithmSuite,
    frame_length: u32,
    total: u64,
    threads: usize,
) -> (u64, u64) {
    let client = client_for(suite, threads);
    let before = dhat::HeapStats::get();
    let (pipe_in, pipe_out) = std::io::pipe().expect("pipe");
    let writer_client = client;
    let producer = std::thread::spawn(move || {
        let mut w = EncryptingWriter::new(
            &writer_client,
            &source(),
            &options(suite, frame_length),
            pipe_out,
        )
        .expect("writer");
        let pattern = pattern();
        let mut sent = 0u64;
        while sent < total {
            let n = usize::try_from((total - sent).min(PERIOD as u64)).expect("chunk-sized");
            w.write_all(expected(&pattern, sent, n)).expect("write");
            sent += n as u64;
        }
        drop(w.finish().expect("finish"));
    });
    let mut reader = DecryptingReader::new(&client, &source(), &DecryptOptions::default(), pipe_in)
        .expect("reader");
    let pattern = pattern();
    let mut buf = vec![0u8; PERIOD];
    let mut got = 0u64;
    loop {
        let n = reader.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        assert!(
            buf[..n] == *expected(&pattern, got, n),
            "plaintext differs in the {n} bytes from offset {got}"
        );
        got += n as u64;
    }
    producer.join().expect("producer");
    assert_eq!(got, total);
    drop(reader);
    let after = dhat::HeapStats::get();
    (
        after.max_bytes as u64,
        after.total_blocks - before.total_blocks,
    )
}

#[test]
fn streaming_heap_is_bounded_and_allocations_do_not_grow_with_frames() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let total = std::env::var("ESDK_STREAM_MEMORY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024 * MIB);
    // First (dhat's peak covers the whole run): the frame length comes from the message, and
    // 1-byte frames (33 bytes on the wire each) must not make batches of a quarter of a
    // million frames.
    for threads in [1, 2] {
        let (peak, _) = stream_through_pipe(SIGNED, 1, 6 * MIB, threads);
        eprintln!(
            "frame length 1, threads {threads}: peak heap {:.2} MiB",
            peak as f64 / MIB as f64
        );
        assert!(
            peak < HEAP_BOUND,
            "peak heap {peak} bytes with 1-byte frames"
        );
    }
    for (suite, threads) in [
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 1),
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 2),
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 2),
    ] {
        // Large enough that the worker threads start in both runs (from 4 MiB).
        let small = (total / 8).max(8 * MIB);
        let (_, small_blocks) = stream_through_pipe(suite, 4096, small, threads);
        let (peak, blocks) = stream_through_pipe(suite, 4096, total, threads);
        let frames = total / 4096;
        eprintln!(
            "{suite} threads {threads}: {} MiB streamed, peak heap {:.2} MiB, {blocks} allocations \
             ({small_blocks} for {} MiB)",
            total / MIB,
            peak as f64 / MIB as f64,
            small / MIB
        );
        assert!(
            peak < HEAP_BOUND,
            "peak heap {peak} bytes for {total} bytes streamed"
        );
        // 8x the frames must not mean more allocations: only a little noise (how many batch
        // buffers the thread pool ends up cycling through).
        assert!(
            blocks <= small_blocks + 32,
            "{blocks} allocations for {frames} frames vs {small_blocks} for an eighth of them"
        );
    }
}
