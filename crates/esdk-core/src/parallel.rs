//! Spreading the frames of one message over several threads.
//!
//! Frames are independent AES-GCM operations under one key with deterministic IVs, so they
//! can be sealed and opened on any thread; only the signature hash must see the bytes in wire
//! order. The one-shot API uses scoped threads over the caller's buffers (no copy): worker
//! threads seal or open batches of frames while the calling thread feeds the signature hash in
//! order. The output is byte-for-byte the layout the sequential path writes.
//!
//! Small messages do not pay: below [`MIN_PARALLEL_BYTES`] of body the work runs on the
//! calling thread with no thread spawned (starting threads and touching a fresh output buffer
//! cost about as much as they save on a 1 MiB message).
//!
//! For signed suites the signature hash (one serial SHA-2 stream, several times slower than
//! AES-GCM) runs on the calling thread, so one thread fewer is started for the frames.

use crate::decrypt::MessageDecryptor;
use crate::encrypt::{frame_layout, MessageEncryptor};
use crate::error::{Error, Result};
use crate::format::body::{
    parse_frame, FrameCipher, FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Plaintext bytes per batch handed to a worker thread (rounded to whole frames, at least one).
pub const BATCH_BYTES: usize = 256 * 1024;

/// A message is spread over threads only if its regular frames hold at least this many bytes.
pub const MIN_PARALLEL_BYTES: u64 = 4 << 20;

/// The number of threads this machine offers (1 if unknown). Asked once per process: on Linux
/// `available_parallelism` reads cgroup files, tens of microseconds that would otherwise be
/// paid by every short message.
pub fn available_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Most frames in one batch: with tiny frames (the header picks the frame length) the
/// per-frame bookkeeping and the 32 bytes of framing per frame, not the content, would
/// otherwise set a batch's memory (a 1-byte frame length would mean 262,144 frames and about
/// 25 MiB per batch).
const MAX_BATCH_FRAMES: usize = 4096;

/// Frames per batch for a frame length.
pub(crate) fn batch_frames(frame_length: u32) -> usize {
    (BATCH_BYTES / (frame_length as usize).max(1)).clamp(1, MAX_BATCH_FRAMES)
}

/// Whether a body of `regular_frames` regular frames is worth spreading over `threads`.
fn worth_spreading(threads: usize, regular_frames: u64, frame_length: u32) -> bool {
    threads > 1
        && regular_frames.saturating_mul(u64::from(frame_length)) >= MIN_PARALLEL_BYTES
        && regular_frames >= 2 * batch_frames(frame_length) as u64
}

/// How `threads` threads share a large message: worker threads to start, and whether the
/// calling thread takes a share of the frames too. It does unless the message is signed: then
/// it feeds the signature hash (one serial stream, slower than AES-GCM) instead.
pub(crate) fn split_threads(threads: usize, signed: bool) -> (usize, bool) {
    (threads.saturating_sub(1).max(1), !signed)
}

/// Lock-free "somebody failed" flag shared by the workers of one message.
struct Abort(AtomicBool);

impl Abort {
    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The lowest frame index known to have failed while opening (`usize::MAX`: none yet). Work
/// on later frames is pointless; work on earlier ones goes on, so the failure reported is the
/// earliest in the message, whichever thread found which first.
struct FirstFailure(AtomicUsize);

impl FirstFailure {
    fn new() -> Self {
        Self(AtomicUsize::new(usize::MAX))
    }
    fn record(&self, index: usize) {
        self.0.fetch_min(index, Ordering::Relaxed);
    }
    /// Whether a frame at or before `index` failed.
    fn at_or_before(&self, index: usize) -> bool {
        self.0.load(Ordering::Relaxed) <= index
    }
    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) != usize::MAX
    }
}

/// Seal the whole body of `plaintext` into `out` (after the header the encryptor wrote),
/// using up to `threads` worker threads for large messages.
pub(crate) fn encrypt_body(
    encryptor: &mut MessageEncryptor,
    plaintext: &[u8],
    out: &mut Vec<u8>,
    threads: usize,
) -> Result<()> {
    let frame_length = encryptor.frame_length();
    let fl = frame_length as usize;
    let (regular, last_len) = frame_layout(plaintext.len() as u64, frame_length);
    let regular =
        usize::try_from(regular).map_err(|_| Error::Config("message too large".into()))?;
    let regular_bytes = regular * fl;
    if !worth_spreading(threads, regular as u64, frame_length) {
        for chunk in plaintext[..regular_bytes].chunks_exact(fl) {
            append_frame(encryptor, chunk, false, out)?;
        }
        return append_frame(encryptor, &plaintext[regular_bytes..], true, out);
    }
    let rw = fl + REGULAR_FRAME_OVERHEAD;
    let start = out.len();
    let final_wire = usize::try_from(last_len)
        .map_err(|_| Error::Config("message too large".into()))?
        + FINAL_FRAME_OVERHEAD;
    let body_end = start + regular * rw + final_wire;
    // A fresh zeroed allocation (pages the kernel zeroes on first touch, in the worker
    // threads) rather than resizing, which would zero the whole body on this thread first.
    // The slack leaves room for the footer.
    let mut fresh = vec![0u8; body_end + FOOTER_SLACK];
    fresh[..start].copy_from_slice(out);
    fresh.truncate(body_end);
    *out = fresh;
    let (body, final_out) = out[start..].split_at_mut(regular * rw);
    let (workers, inline) = split_threads(threads, encryptor.suite().is_signed());
    seal_regular_frames(
        encryptor,
        &plaintext[..regular_bytes],
        body,
        workers,
        inline,
    )?;
    encryptor.seal_into(&plaintext[regular_bytes..], true, final_out)
}

/// Room kept after the body for the footer: length field and the longest DER signature.
const FOOTER_SLACK: usize = 2 + 139;

/// Append one sealed frame to `out`: the plaintext is copied once, straight into place, and
/// sealed there (no zero-fill pass).
fn append_frame(
    encryptor: &mut MessageEncryptor,
    plaintext: &[u8],
    is_final: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FINAL_FRAME_OVERHEAD][..FrameCipher::content_offset(is_final)]);
    out.extend_from_slice(plaintext);
    out.extend_from_slice(&[0u8; crate::suite::AlgorithmSuite::TAG_LEN]);
    let sequence = encryptor.next_sequence_number();
    encryptor
        .cipher()
        .seal_in_place(sequence, is_final, &mut out[start..])?;
    encryptor.account_sealed(is_final, &out[start..]);
    Ok(())
}

/// A batch of regular frames for a worker: its index, first sequence number, plaintext and
/// output wire bytes.
struct SealJob<'a> {
    index: usize,
    first_sequence: u32,
    plaintext: &'a [u8],
    wire: &'a mut [u8],
}

fn seal_regular_frames(
    encryptor: &mut MessageEncryptor,
    plaintext: &[u8],
    body: &mut [u8],
    workers: usize,
    inline: bool,
) -> Result<()> {
    let cipher: &FrameCipher = &encryptor.cipher().clone();
    let fl = cipher.frame_length() as usize;
    let rw = fl + REGULAR_FRAME_OVERHEAD;
    let per_batch = batch_frames(cipher.frame_length());
    let first = encryptor.next_sequence_number();
    let lanes = workers + usize::from(inline);
    let mut queues: Vec<Vec<SealJob<'_>>> = (0..lanes).map(|_| Vec::new()).collect();
    let mut batches = 0usize;
    for (index, (plaintext, wire)) in plaintext
        .chunks(per_batch * fl)
        .zip(body.chunks_mut(per_batch * rw))
        .enumerate()
    {
        let offset = u32::try_from(index * per_batch)
            .map_err(|_| crate::error::FormatError::TooManyFrames)?;
        let first_sequence = first
            .checked_add(offset)
            .ok_or(crate::error::FormatError::TooManyFrames)?;
        queues[index % lanes].push(SealJob {
            index,
            first_sequence,
            plaintext,
            wire,
        });
        batches += 1;
    }
    let own_queue = if inline { queues.pop() } else { None };
    let abort = Abort(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<&[u8]>)>();
    std::thread::scope(|scope| -> Result<()> {
        for queue in queues {
            let done_tx = done_tx.clone();
            let abort = &abort;
            scope.spawn(move || seal_queue(queue, cipher, abort, &done_tx, fl, rw));
        }
        if let Some(queue) = own_queue {
            seal_queue(queue, cipher, &abort, &done_tx, fl, rw);
        }
        drop(done_tx);
        // Feed the frames to the encryptor (sequence numbers, signature hash) in wire order.
        let mut ready: Vec<Option<&[u8]>> = vec![None; batches];
        let mut next = 0;
        while next < batches {
            let Ok((index, result)) = done_rx.recv() else {
                abort.raise();
                return Err(Error::Crypto("a frame-sealing thread stopped"));
            };
            match result {
                Ok(wire) => ready[index] = Some(wire),
                Err(e) => {
                    abort.raise();
                    return Err(e);
                }
            }
            while let Some(Some(wire)) = ready.get(next) {
                for frame in wire.chunks_exact(rw) {
                    encryptor.account_sealed(false, frame);
                }
                next += 1;
            }
        }
        Ok(())
    })
}

/// Seal each job of `queue` in turn, reporting each to `done` (stops after a failure anywhere).
fn seal_queue<'a>(
    queue: Vec<SealJob<'a>>,
    cipher: &FrameCipher,
    abort: &Abort,
    done: &mpsc::Sender<(usize, Result<&'a [u8]>)>,
    fl: usize,
    rw: usize,
) {
    for job in queue {
        if abort.raised() {
            return;
        }
        let SealJob {
            index,
            first_sequence,
            plaintext,
            wire,
        } = job;
        let result = seal_batch(cipher, first_sequence, plaintext, wire, fl, rw);
        let sealed: &[u8] = wire;
        let sent = match result {
            Ok(()) => done.send((index, Ok(sealed))),
            Err(e) => {
                abort.raise();
                done.send((index, Err(e)))
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn seal_batch(
    cipher: &FrameCipher,
    first_sequence: u32,
    plaintext: &[u8],
    wire: &mut [u8],
    fl: usize,
    rw: usize,
) -> Result<()> {
    let mut sequence = first_sequence;
    for (plain, frame) in plaintext.chunks_exact(fl).zip(wire.chunks_exact_mut(rw)) {
        cipher.seal_frame(sequence, false, plain, frame)?;
        sequence = sequence
            .checked_add(1)
            .ok_or(crate::error::FormatError::TooManyFrames)?;
    }
    Ok(())
}

/// Open the whole body of `message` starting at `pos` into `plaintext` (which must be empty),
/// using up to `threads` worker threads for large framed messages. Returns the position after
/// the body. Nothing is released here: the caller returns the plaintext only after the footer
/// verified.
pub(crate) fn decrypt_body(
    decryptor: &mut MessageDecryptor,
    message: &[u8],
    pos: usize,
    frame_length: u32,
    plaintext: &mut Vec<u8>,
    threads: usize,
) -> Result<usize> {
    // Finding the layout touches every frame: only where threads could be used at all.
    let body_len = message.len().saturating_sub(pos) as u64;
    if threads > 1 && body_len >= MIN_PARALLEL_BYTES {
        if let Some(layout) = scan_layout(&message[pos..], frame_length) {
            if worth_spreading(threads, layout.regular as u64, frame_length) {
                let (workers, inline) = split_threads(threads, decryptor.is_signed());
                return open_spread(decryptor, message, pos, layout, plaintext, workers, inline);
            }
        }
    }
    decrypt_sequential(decryptor, message, pos, plaintext)
}

/// The frame-by-frame path: also the one that reports the precise error for any malformed
/// body.
fn decrypt_sequential(
    decryptor: &mut MessageDecryptor,
    message: &[u8],
    mut pos: usize,
    plaintext: &mut Vec<u8>,
) -> Result<usize> {
    while !decryptor.body_done() {
        let frame = decryptor
            .next_frame(&message[pos..])?
            .ok_or(Error::Truncated(
                "the body ends inside a frame or before the final frame",
            ))?;
        // Copy the ciphertext in and open it in place: one pass, no zero-fill first.
        let start = plaintext.len();
        plaintext.extend_from_slice(frame.ciphertext);
        decryptor
            .cipher()
            .open_in_place(&frame, &mut plaintext[start..])?;
        pos += frame.wire_len;
    }
    Ok(pos)
}

/// Where the frames of a well-formed framed body lie.
#[derive(Debug, Clone, Copy)]
struct Layout {
    regular: usize,
    final_len: usize,
}

/// Find the final frame by stepping over regular frames (reading only their first four
/// bytes). `None` for anything unusual: the sequential path then reports the exact error.
fn scan_layout(body: &[u8], frame_length: u32) -> Option<Layout> {
    if frame_length == 0 {
        return None;
    }
    // Checked arithmetic throughout: on a 32-bit target a frame length near 2^32 would wrap.
    let rw = usize::try_from(frame_length)
        .ok()?
        .checked_add(REGULAR_FRAME_OVERHEAD)?;
    let mut p = 0usize;
    let mut regular = 0usize;
    loop {
        let first = body.get(p..p.checked_add(4)?)?;
        if first == FINAL_FRAME_MARKER.to_be_bytes() {
            let len_at = p.checked_add(4 + 4 + 12)?;
            let len =
                u32::from_be_bytes(body.get(len_at..len_at.checked_add(4)?)?.try_into().ok()?);
            let end = len_at
                .checked_add(4 + 16)?
                .checked_add(usize::try_from(len).ok()?)?;
            if len > frame_length || body.len() < end {
                return None;
            }
            return Some(Layout {
                regular,
                final_len: len as usize,
            });
        }
        regular += 1;
        p = p.checked_add(rw)?;
    }
}

/// A batch of regular frames to open: index of its first frame, wire bytes, plaintext out.
struct OpenJob<'a> {
    first_frame: usize,
    wire: &'a [u8],
    out: &'a mut [u8],
}

fn open_spread(
    decryptor: &mut MessageDecryptor,
    message: &[u8],
    pos: usize,
    layout: Layout,
    plaintext: &mut Vec<u8>,
    workers: usize,
    inline: bool,
) -> Result<usize> {
    let cipher: &FrameCipher = &decryptor.cipher().clone();
    let frame_length = cipher.frame_length();
    let fl = frame_length as usize;
    let rw = fl + REGULAR_FRAME_OVERHEAD;
    let per_batch = batch_frames(frame_length);
    let regular_wire = layout.regular * rw;
    // Zeroed pages from the allocator, first touched by the workers (no zero-fill pass here).
    *plaintext = vec![0u8; layout.regular * fl + layout.final_len];
    let (regular_out, final_out) = plaintext.split_at_mut(layout.regular * fl);
    let body = &message[pos..];
    let lanes = workers + usize::from(inline);
    let mut queues: Vec<Vec<OpenJob<'_>>> = (0..lanes).map(|_| Vec::new()).collect();
    for (index, (wire, out)) in body[..regular_wire]
        .chunks(per_batch * rw)
        .zip(regular_out.chunks_mut(per_batch * fl))
        .enumerate()
    {
        queues[index % lanes].push(OpenJob {
            first_frame: index * per_batch,
            wire,
            out,
        });
    }
    let failed = FirstFailure::new();
    // The first failure of each worker, by frame index.
    let (fail_tx, fail_rx) = mpsc::channel::<(usize, Error)>();
    let own_queue = if inline { queues.pop() } else { None };
    let main_result = std::thread::scope(|scope| -> Result<usize, (usize, Error)> {
        for queue in queues {
            let fail_tx = fail_tx.clone();
            let failed = &failed;
            scope.spawn(move || open_queue(queue, cipher, failed, &fail_tx, fl, rw));
        }
        if let Some(queue) = own_queue {
            open_queue(queue, cipher, &failed, &fail_tx, fl, rw);
        }
        drop(fail_tx);
        // Meanwhile, walk the frames in order: sequence numbers, IVs and the signature hash.
        // Unsigned messages need no hash, and the threads check each regular frame's place,
        // IV and kind as they open it: only the final frame is left (a second pass over a
        // large body costs a cache miss per frame).
        let mut p = pos;
        let mut index = 0usize;
        if !decryptor.is_signed() {
            decryptor
                .skip_checked_regular_frames(layout.regular)
                .map_err(|e| (0, e))?;
            p += layout.regular * rw;
            index = layout.regular;
        }
        while !decryptor.body_done() {
            if failed.at_or_before(index) {
                break;
            }
            let fail = |e| {
                failed.record(index);
                (index, e)
            };
            let frame = decryptor
                .next_frame(&message[p..])
                .map_err(fail)?
                .ok_or_else(|| {
                    fail(Error::Truncated(
                        "the body ends inside a frame or before the final frame",
                    ))
                })?;
            if frame.is_last() {
                if index != layout.regular {
                    return Err(fail(Error::Crypto("frame layout changed while decrypting")));
                }
                cipher.open_frame(&frame, final_out).map_err(fail)?;
            }
            p += frame.wire_len;
            index += 1;
        }
        Ok(p)
    });
    // Report the failure at the earliest frame, whoever found it.
    let (end, mut first) = match main_result {
        Ok(p) => (Some(p), None),
        Err(failure) => (None, Some(failure)),
    };
    for (i, e) in fail_rx.try_iter() {
        if first.as_ref().is_none_or(|(f, _)| i < *f) {
            first = Some((i, e));
        }
    }
    if let Some((_, e)) = first {
        plaintext.fill(0);
        plaintext.clear();
        return Err(e);
    }
    match end {
        Some(p) if !failed.any() => Ok(p),
        _ => Err(Error::Crypto("a frame-opening thread stopped")),
    }
}

/// Open each job of `queue` in turn, skipping those after a known failure; report the first
/// failure of this queue.
fn open_queue(
    queue: Vec<OpenJob<'_>>,
    cipher: &FrameCipher,
    failed: &FirstFailure,
    fail: &mpsc::Sender<(usize, Error)>,
    fl: usize,
    rw: usize,
) {
    for job in queue {
        if failed.at_or_before(job.first_frame) {
            return;
        }
        if let Err(failure) = open_batch(cipher, job, fl, rw) {
            failed.record(failure.0);
            // The receiver outlives every worker (scoped threads).
            let _ = fail.send(failure);
            return;
        }
    }
}

fn open_batch(
    cipher: &FrameCipher,
    job: OpenJob<'_>,
    fl: usize,
    rw: usize,
) -> Result<(), (usize, Error)> {
    let OpenJob {
        first_frame,
        wire,
        out,
    } = job;
    for (i, (frame_wire, frame_out)) in wire
        .chunks_exact(rw)
        .zip(out.chunks_exact_mut(fl))
        .enumerate()
    {
        let index = first_frame + i;
        let fail = |e| (index, e);
        let sequence = u32::try_from(index + 1)
            .map_err(|_| fail(crate::error::FormatError::TooManyFrames.into()))?;
        let frame = parse_frame(frame_wire, cipher.frame_length(), sequence)
            .map_err(fail)?
            .ok_or_else(|| fail(Error::Truncated("the body ends inside a frame")))?;
        cipher.open_frame(&frame, frame_out).map_err(fail)?;
    }
    Ok(())
}
