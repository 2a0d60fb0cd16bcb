//! Batches of frames and the engine that seals or opens them, on the calling thread or on a
//! small pool of worker threads.
//!
//! A [`Batch`] owns one buffer holding several frames exactly as they lie on the wire, so a
//! frame is sealed or opened in place: the input is copied once, into the batch, and the
//! output is written from it. Buffers go round between the stream and the workers and are
//! reused; nothing is allocated per frame. Results come back in submission order (batch `n`
//! goes to worker `n % threads` and comes back on that worker's channel), so the signature
//! hash and the release of plaintext stay in wire order.

use crate::error::{Error, Result};
use crate::format::body::{BlockKind, FrameCipher, FrameRef};
use crate::suite::AlgorithmSuite;
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One frame inside a batch buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) sequence_number: u32,
    pub(crate) kind: BlockKind,
    pub(crate) iv: [u8; AlgorithmSuite::IV_LEN],
    pub(crate) tag: [u8; AlgorithmSuite::TAG_LEN],
    /// Offset of the frame's first wire byte in the batch buffer.
    pub(crate) wire_start: usize,
    /// Offset of the frame's content.
    pub(crate) content_start: usize,
    /// Content length.
    pub(crate) content_len: usize,
}

impl Slot {
    /// One past the frame's last wire byte (its tag ends the frame).
    pub(crate) fn wire_end(&self) -> usize {
        self.content_start + self.content_len + AlgorithmSuite::TAG_LEN
    }

    /// Whether this is the last block of the body.
    pub(crate) fn is_last(&self) -> bool {
        self.kind != BlockKind::Frame
    }

    /// The frame as [`FrameCipher::open_in_place`] wants it (the content is passed apart).
    fn as_frame_ref(&self) -> FrameRef<'static> {
        FrameRef {
            sequence_number: self.sequence_number,
            kind: self.kind,
            iv: self.iv,
            ciphertext: &[],
            tag: self.tag,
            wire_len: self.wire_end() - self.wire_start,
        }
    }
}

/// Several frames in one reusable buffer.
#[derive(Default)]
pub(crate) struct Batch {
    /// The wire bytes (plaintext in place of the content before sealing / after opening).
    pub(crate) buf: Vec<u8>,
    /// Bytes of `buf` in use (on decrypt, bytes received).
    pub(crate) len: usize,
    /// The frames, in order.
    pub(crate) slots: Vec<Slot>,
    /// On decrypt: how many leading frames verified.
    pub(crate) verified: usize,
    /// The first failure while sealing or opening (frames after `verified` must not be
    /// released).
    pub(crate) failure: Option<Error>,
    /// A failure found while parsing, to report once the frames before it are released.
    pub(crate) then_fail: Option<Error>,
}

/// A batch buffer holds plaintext (before sealing, after opening): wiped when the stream is
/// done with it, not left in freed memory. Buffers are reused while a stream runs, so this
/// costs one pass over a few batches per stream.
impl Drop for Batch {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl Batch {
    /// Empty the batch for reuse, keeping its allocations.
    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.slots.clear();
        self.verified = 0;
        self.failure = None;
        self.then_fail = None;
    }

    /// Grow the buffer (never shrink) so that it holds at least `len` bytes.
    pub(crate) fn ensure_len(&mut self, len: usize, cap: usize) {
        if self.buf.len() < len {
            let target = len
                .max(self.buf.len().saturating_mul(2))
                .max(16 * 1024)
                .min(cap.max(len));
            self.buf.resize(target, 0);
        }
    }
}

/// What the engine does to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Seal every slot in place (encrypt).
    Seal,
    /// Open every slot in place, stopping at the first that fails (decrypt).
    Open,
}

fn process(cipher: &FrameCipher, work: Work, batch: &mut Batch) {
    let Batch {
        buf,
        slots,
        verified,
        failure,
        ..
    } = batch;
    for slot in slots.iter() {
        let result = match work {
            Work::Seal => cipher.seal_in_place(
                slot.sequence_number,
                slot.kind == BlockKind::FinalFrame,
                &mut buf[slot.wire_start..slot.wire_end()],
            ),
            Work::Open => cipher.open_in_place(
                &slot.as_frame_ref(),
                &mut buf[slot.content_start..slot.content_start + slot.content_len],
            ),
        };
        if let Err(e) = result {
            *failure = Some(e);
            return;
        }
        *verified += 1;
    }
}

/// One worker thread and its two channels.
struct Lane {
    jobs: Option<SyncSender<Batch>>,
    results: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

/// How many times each worker appears in one round of the schedule when the calling thread
/// also takes a batch per round: the caller copies every byte in and out of the batches, so it
/// takes one batch in `3 * workers + 1`. Without a caller share (signed messages), two.
const ROUNDS_WITH_CALLER: usize = 3;
const ROUNDS_WITHOUT_CALLER: usize = 2;

/// Worker threads, and possibly the calling thread, fed and drained along a fixed repeating
/// schedule, so results come back in submission order without reordering.
struct Pool {
    lanes: Vec<Lane>,
    /// Which lane takes the n-th batch of each round (`None`: the calling thread).
    schedule: Vec<Option<usize>>,
    done_inline: VecDeque<Batch>,
    submitted: usize,
    collected: usize,
}

impl Pool {
    fn new(
        cipher: &Arc<FrameCipher>,
        work: Work,
        workers: usize,
        inline: bool,
    ) -> std::io::Result<Self> {
        let rounds = if inline {
            ROUNDS_WITH_CALLER
        } else {
            ROUNDS_WITHOUT_CALLER
        }
        // Many cores: fewer rounds, so memory stays within about 32 batches (~8 MiB).
        .min((32 / workers.max(1)).max(1));
        let mut schedule: Vec<Option<usize>> =
            (0..rounds).flat_map(|_| (0..workers).map(Some)).collect();
        if inline {
            schedule.push(None);
        }
        let mut lanes = Vec::with_capacity(workers);
        for i in 0..workers {
            // Bounded (array-backed) channels allocate once, unlike unbounded ones, which
            // allocate a block every few dozen messages. At most one round of the schedule is
            // in flight, holding `rounds` batches per worker, so sends never wait.
            let (job_tx, job_rx) = mpsc::sync_channel::<Batch>(rounds);
            let (done_tx, done_rx) = mpsc::sync_channel::<Batch>(rounds);
            let cipher = Arc::clone(cipher);
            let handle = std::thread::Builder::new()
                .name(format!("esdk-frames-{i}"))
                .spawn(move || {
                    while let Ok(mut batch) = job_rx.recv() {
                        process(&cipher, work, &mut batch);
                        if done_tx.send(batch).is_err() {
                            return;
                        }
                    }
                })?;
            lanes.push(Lane {
                jobs: Some(job_tx),
                results: done_rx,
                handle: Some(handle),
            });
        }
        Ok(Self {
            lanes,
            schedule,
            done_inline: VecDeque::with_capacity(2),
            submitted: 0,
            collected: 0,
        })
    }

    /// Batches in one round of the schedule: the most that may be in flight.
    fn round(&self) -> usize {
        self.schedule.len()
    }

    fn in_flight(&self) -> usize {
        self.submitted - self.collected
    }

    fn lane(&self, n: usize) -> Option<&Lane> {
        self.schedule[n % self.schedule.len()].map(|i| &self.lanes[i])
    }

    fn submit(&mut self, mut batch: Batch, cipher: &FrameCipher, work: Work) -> Result<()> {
        match self.lane(self.submitted) {
            Some(lane) => lane
                .jobs
                .as_ref()
                .and_then(|tx| tx.send(batch).ok())
                .ok_or_else(stopped)?,
            None => {
                process(cipher, work, &mut batch);
                self.done_inline.push_back(batch);
            }
        }
        self.submitted += 1;
        Ok(())
    }

    fn collect(&mut self, block: bool) -> Result<Option<Batch>> {
        if self.in_flight() == 0 {
            return Ok(None);
        }
        let batch = match self.lane(self.collected) {
            None => self.done_inline.pop_front().ok_or_else(stopped)?,
            Some(lane) if block => lane.results.recv().map_err(|_| stopped())?,
            Some(lane) => match lane.results.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(stopped()),
            },
        };
        self.collected += 1;
        Ok(Some(batch))
    }
}

fn stopped() -> Error {
    Error::Crypto("a frame worker thread stopped unexpectedly")
}

impl Drop for Pool {
    fn drop(&mut self) {
        for lane in &mut self.lanes {
            lane.jobs = None;
        }
        for lane in &mut self.lanes {
            if let Some(handle) = lane.handle.take() {
                // A worker that panicked has nothing left to report: the stream already
                // failed with `stopped()`.
                let _ = handle.join();
            }
        }
    }
}

/// Seals or opens batches in order, on worker threads once a message proves large enough.
pub(crate) struct Engine {
    cipher: Arc<FrameCipher>,
    work: Work,
    /// Worker threads to start (0: everything stays on the calling thread).
    workers: usize,
    /// Whether the calling thread takes a share of the batches once workers run.
    inline: bool,
    pool: Option<Pool>,
    submitted_bytes: u64,
    /// Batches processed on the calling thread before any worker started, oldest first.
    done_here: VecDeque<Batch>,
    spare: Vec<Batch>,
}

impl Engine {
    /// An engine for one message that may use `threads` threads in all, the caller's
    /// included. The calling thread also seals or opens a share of the batches, unless the
    /// message is `signed`: then it feeds the signature hash instead.
    pub(crate) fn new(cipher: Arc<FrameCipher>, work: Work, threads: usize, signed: bool) -> Self {
        Self {
            cipher,
            work,
            workers: threads.saturating_sub(1),
            inline: !signed,
            pool: None,
            submitted_bytes: 0,
            done_here: VecDeque::with_capacity(1),
            spare: Vec::new(),
        }
    }

    /// Batches submitted and not yet collected.
    pub(crate) fn in_flight(&self) -> usize {
        self.done_here.len() + self.pool.as_ref().map_or(0, Pool::in_flight)
    }

    /// How many batches may be in flight at once: one on the calling thread alone, one round
    /// of the schedule once workers run.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.pool.as_ref().map_or(1, Pool::round)
    }

    /// Hand over a batch. `more_follow`: the message has batches after this one. Worker threads
    /// start once a message has passed [`MIN_PARALLEL_BYTES`](crate::parallel::MIN_PARALLEL_BYTES)
    /// and goes on, so short messages never start them.
    pub(crate) fn submit(&mut self, mut batch: Batch, more_follow: bool) -> Result<()> {
        self.submitted_bytes = self.submitted_bytes.saturating_add(batch.len as u64);
        if self.pool.is_none()
            && self.workers > 0
            && more_follow
            && self.submitted_bytes >= crate::parallel::MIN_PARALLEL_BYTES
        {
            // If threads cannot be started, carry on here.
            self.pool = Pool::new(&self.cipher, self.work, self.workers, self.inline).ok();
        }
        match &mut self.pool {
            Some(pool) => pool.submit(batch, &self.cipher, self.work),
            None => {
                process(&self.cipher, self.work, &mut batch);
                self.done_here.push_back(batch);
                Ok(())
            }
        }
    }

    /// The oldest batch, if done (`block`: wait for it). `Ok(None)` if none is in flight or
    /// (not blocking) it is not done yet.
    pub(crate) fn collect(&mut self, block: bool) -> Result<Option<Batch>> {
        if let Some(batch) = self.done_here.pop_front() {
            return Ok(Some(batch));
        }
        match &mut self.pool {
            Some(pool) => pool.collect(block),
            None => Ok(None),
        }
    }

    /// A cleared batch to fill, reusing a returned one when possible.
    pub(crate) fn spare(&mut self) -> Batch {
        let mut batch = self.spare.pop().unwrap_or_default();
        batch.reset();
        batch
    }

    /// A cleared batch whose buffer holds `len` bytes and `frames` slots: for the second and
    /// later batches of a message, which will be filled, sized once in full.
    pub(crate) fn spare_sized(&mut self, len: usize, frames: usize) -> Batch {
        let mut batch = self.spare();
        if batch.buf.len() < len {
            batch.buf.resize(len, 0);
        }
        batch.slots.reserve(frames);
        batch
    }

    /// Give a batch back for reuse.
    pub(crate) fn recycle(&mut self, batch: Batch) {
        self.spare.push(batch);
    }
}
