//! Streaming encryption: a sans-I/O core ([`EncryptCore`]) and the `std::io::Write` adapter
//! ([`EncryptingWriter`]) built on it.

use super::engine::{Batch, Engine, Slot, Work};
use super::{fail_io, StreamState};
use crate::client::{Client, EncryptOptions, MaterialsSource};
use crate::encrypt::MessageEncryptor;
use crate::error::{Error, FormatError, Result};
use crate::format::body::{frame_iv, BlockKind, FrameCipher, REGULAR_FRAME_OVERHEAD};
use crate::format::header::Header;
use crate::materials::EncryptionMaterials;
use crate::parallel::batch_frames;
use crate::suite::AlgorithmSuite;
use std::io::{self, Write};

/// Where a frame's content sits before the frame is known to be regular or final.
const REGULAR_CONTENT: usize = FrameCipher::content_offset(false);
/// How far a final frame's content sits after a regular frame's.
const FINAL_SHIFT: usize = FrameCipher::content_offset(true) - REGULAR_CONTENT;

/// The encryption state machine behind the sync and async writers. Plaintext goes in with
/// [`accept`](Self::accept); ciphertext comes out through [`output`](Self::output) and
/// [`consume_output`](Self::consume_output), which the caller must drain before feeding more.
pub(crate) struct EncryptCore {
    encryptor: Option<MessageEncryptor>,
    engine: Engine,
    header: Header,
    fl: usize,
    rw: usize,
    per_batch: usize,
    /// Sequence number of the first frame of `cur`.
    next_sequence: u32,
    /// Frames being filled: frames `0..full` of `cur` are complete and known to be regular;
    /// frame `full` holds `partial` bytes.
    cur: Batch,
    full: usize,
    partial: usize,
    /// Output not yet handed out: header or footer bytes, then one sealed batch.
    extra: Vec<u8>,
    extra_pos: usize,
    out: Option<Batch>,
    out_pos: usize,
    bound: Option<u64>,
    accepted: u64,
    closing: bool,
    state: StreamState,
}

impl EncryptCore {
    /// Start a message: the header is the first output.
    pub(crate) fn new(
        materials: &EncryptionMaterials,
        frame_length: u32,
        plaintext_length_bound: Option<u64>,
        threads: usize,
    ) -> Result<Self> {
        let mut extra = Vec::new();
        let encryptor = MessageEncryptor::new(materials, frame_length, &mut extra)?;
        let fl = frame_length as usize;
        let mut engine = Engine::new(
            encryptor.cipher().clone(),
            Work::Seal,
            threads,
            encryptor.suite().is_signed(),
        );
        let cur = engine.spare();
        Ok(Self {
            header: encryptor.header().clone(),
            next_sequence: encryptor.next_sequence_number(),
            encryptor: Some(encryptor),
            engine,
            fl,
            rw: fl + REGULAR_FRAME_OVERHEAD,
            per_batch: batch_frames(frame_length),
            cur,
            full: 0,
            partial: 0,
            extra,
            extra_pos: 0,
            out: None,
            out_pos: 0,
            bound: plaintext_length_bound,
            accepted: 0,
            closing: false,
            state: StreamState::Running,
        })
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Ciphertext ready to be written.
    pub(crate) fn output(&self) -> &[u8] {
        if self.extra_pos < self.extra.len() {
            return &self.extra[self.extra_pos..];
        }
        match &self.out {
            Some(batch) => &batch.buf[self.out_pos..batch.len],
            None => &[],
        }
    }

    /// `n` bytes of [`output`](Self::output) were written.
    pub(crate) fn consume_output(&mut self, n: usize) {
        if self.extra_pos < self.extra.len() {
            self.extra_pos += n;
            if self.extra_pos == self.extra.len() {
                self.extra.clear();
                self.extra_pos = 0;
            }
            return;
        }
        if let Some(batch) = &self.out {
            self.out_pos += n;
            if self.out_pos >= batch.len {
                if let Some(batch) = self.out.take() {
                    self.engine.recycle(batch);
                }
                self.out_pos = 0;
            }
        }
    }

    /// Stop the stream after a failure outside the core (e.g. writing the output failed).
    pub(crate) fn poison(&mut self, e: &Error) {
        self.state.poison(e);
    }

    fn has_output(&self) -> bool {
        !self.output().is_empty()
    }

    /// Take plaintext. Returns how much was taken: it stops early when output is waiting to be
    /// drained (memory stays bounded). Fails if the declared length bound is exceeded.
    pub(crate) fn accept(&mut self, data: &[u8]) -> Result<usize> {
        self.state.check()?;
        if self.closing {
            return Err(Error::Config("the message was already finished".into()));
        }
        let r = self.accept_inner(data);
        self.state.track(r)
    }

    fn accept_inner(&mut self, data: &[u8]) -> Result<usize> {
        if let Some(bound) = self.bound {
            if self.accepted.saturating_add(data.len() as u64) > bound {
                return Err(Error::PlaintextTooLong { bound });
            }
        }
        let mut taken = 0;
        while taken < data.len() {
            if !self.has_output() && self.engine.in_flight() > 0 {
                // Hand out sealed frames as soon as they are ready.
                self.collect(false)?;
            }
            if self.has_output() {
                break;
            }
            if self.partial == self.fl {
                // More plaintext follows a full frame: that frame is regular.
                if self.full + 1 == self.per_batch {
                    if !self.make_room()? {
                        break;
                    }
                    self.dispatch_regular_batch()?;
                } else {
                    self.full += 1;
                    self.partial = 0;
                }
            }
            let at = self.full * self.rw + REGULAR_CONTENT + self.partial;
            let n = (self.fl - self.partial).min(data.len() - taken);
            // Room for this frame as a final frame too (8 more header bytes, and its tag).
            let cap = self.per_batch * self.rw + FINAL_SHIFT;
            self.cur.ensure_len(at + n + FINAL_SHIFT + 16, cap);
            self.cur.buf[at..at + n].copy_from_slice(&data[taken..taken + n]);
            self.partial += n;
            taken += n;
        }
        self.accepted += taken as u64;
        Ok(taken)
    }

    /// Make sure a batch can be submitted: if the engine is full, collect the oldest batch as
    /// output. Returns whether there is room now.
    fn make_room(&mut self) -> Result<bool> {
        if self.engine.in_flight() < self.engine.max_in_flight() {
            return Ok(true);
        }
        self.collect(true)?;
        Ok(!self.has_output() && self.engine.in_flight() < self.engine.max_in_flight())
    }

    /// Collect the oldest sealed batch: feed it to the signature hash and make it the output.
    fn collect(&mut self, block: bool) -> Result<bool> {
        let Some(mut batch) = self.engine.collect(block)? else {
            return Ok(false);
        };
        if let Some(e) = batch.failure.take() {
            return Err(e);
        }
        let encryptor = self
            .encryptor
            .as_mut()
            .ok_or_else(|| Error::Config("the message was already finished".into()))?;
        for slot in &batch.slots {
            encryptor.account_sealed(slot.is_last(), &batch.buf[slot.wire_start..slot.wire_end()]);
        }
        batch.len = batch.slots.last().map_or(0, Slot::wire_end);
        self.out = Some(batch);
        self.out_pos = 0;
        Ok(true)
    }

    fn slot(&self, index: usize, kind: BlockKind, content_len: usize) -> Result<Slot> {
        let offset = u32::try_from(index).map_err(|_| FormatError::TooManyFrames)?;
        let sequence_number = self
            .next_sequence
            .checked_add(offset)
            .ok_or(FormatError::TooManyFrames)?;
        let wire_start = index * self.rw;
        let content_start = wire_start
            + match kind {
                BlockKind::Frame => REGULAR_CONTENT,
                _ => REGULAR_CONTENT + FINAL_SHIFT,
            };
        Ok(Slot {
            sequence_number,
            kind,
            iv: frame_iv(sequence_number),
            tag: [0; AlgorithmSuite::TAG_LEN],
            wire_start,
            content_start,
            content_len,
        })
    }

    /// `cur` holds `per_batch` full frames and more plaintext follows: seal them all as
    /// regular frames.
    fn dispatch_regular_batch(&mut self) -> Result<()> {
        self.dispatch_regular(self.per_batch)?;
        self.partial = 0;
        Ok(())
    }

    /// Seal frames `0..count` of `cur` (complete and known to be regular) as a batch; the frame
    /// being filled, if any (`count == full`), moves to the start of the next batch.
    fn dispatch_regular(&mut self, count: usize) -> Result<()> {
        let mut next = self
            .engine
            .spare_sized(self.per_batch * self.rw + FINAL_SHIFT, self.per_batch);
        if count == self.full && self.partial > 0 {
            let at = count * self.rw + REGULAR_CONTENT;
            next.buf[REGULAR_CONTENT..REGULAR_CONTENT + self.partial]
                .copy_from_slice(&self.cur.buf[at..at + self.partial]);
        }
        let mut batch = std::mem::replace(&mut self.cur, next);
        for i in 0..count {
            batch.slots.push(self.slot(i, BlockKind::Frame, self.fl)?);
        }
        batch.len = count * self.rw;
        self.advance_sequence(count)?;
        self.full = 0;
        self.engine.submit(batch, true)
    }

    /// Seal every frame known to be complete and regular and make all sealed frames output,
    /// so that a flushing writer hands out everything it can: the frame being filled stays
    /// (a regular frame must be full, and a full one may yet turn out to be the final frame).
    /// Call repeatedly, draining [`output`](Self::output) in between, until it returns
    /// `Ok(true)`.
    pub(crate) fn flush(&mut self) -> Result<bool> {
        self.state.check()?;
        let r = self.flush_inner();
        self.state.track(r)
    }

    fn flush_inner(&mut self) -> Result<bool> {
        if self.has_output() || self.closing {
            return Ok(!self.has_output());
        }
        if self.full > 0 {
            if !self.make_room()? {
                return Ok(false);
            }
            self.dispatch_regular(self.full)?;
        }
        if self.engine.in_flight() > 0 {
            self.collect(true)?;
            return Ok(false);
        }
        Ok(true)
    }

    fn advance_sequence(&mut self, count: usize) -> Result<()> {
        let count = u32::try_from(count).map_err(|_| FormatError::TooManyFrames)?;
        self.next_sequence = self
            .next_sequence
            .checked_add(count)
            .ok_or(FormatError::TooManyFrames)?;
        Ok(())
    }

    /// End of plaintext: seal the rest with its final frame, then the footer. Call repeatedly,
    /// draining [`output`](Self::output) in between, until it returns `Ok(true)`.
    pub(crate) fn finish(&mut self) -> Result<bool> {
        self.state.check()?;
        let r = self.finish_inner();
        self.state.track(r)
    }

    fn finish_inner(&mut self) -> Result<bool> {
        if self.has_output() {
            return Ok(false);
        }
        if !self.closing {
            if self.engine.in_flight() >= self.engine.max_in_flight() {
                self.collect(true)?;
                return Ok(false);
            }
            self.dispatch_final_batch()?;
            self.closing = true;
        }
        if self.engine.in_flight() > 0 {
            self.collect(true)?;
            return Ok(false);
        }
        match self.encryptor.take() {
            Some(encryptor) => {
                encryptor.finish(&mut self.extra)?;
                self.extra_pos = 0;
                Ok(self.extra.is_empty())
            }
            None => Ok(true),
        }
    }

    /// Seal frames `0..full` of `cur` as regular and frame `full` (with `partial` bytes) as the
    /// final frame.
    fn dispatch_final_batch(&mut self) -> Result<()> {
        let mut batch = std::mem::take(&mut self.cur);
        let full = self.full;
        for i in 0..full {
            batch.slots.push(self.slot(i, BlockKind::Frame, self.fl)?);
        }
        let last = self.slot(full, BlockKind::FinalFrame, self.partial)?;
        let at = full * self.rw + REGULAR_CONTENT;
        batch.ensure_len(last.wire_end(), last.wire_end());
        batch
            .buf
            .copy_within(at..at + self.partial, last.content_start);
        batch.len = last.wire_end();
        batch.slots.push(last);
        self.advance_sequence(full + 1)?;
        self.engine.submit(batch, false)
    }
}

/// Encrypts everything written to it into one message written to `W`.
///
/// Plaintext is cut into frames as it arrives; each frame is written to `W` once sealed, and
/// memory stays bounded by a few batches of frames whatever the message size. Call
/// [`finish`](Self::finish) after the last write: it writes the final frame and, for signed
/// suites, the footer. Dropping the writer without `finish` leaves an incomplete message that
/// every decryptor rejects.
///
/// ```
/// # use esdk_core::{Client, EncryptOptions, DecryptOptions, MaterialsSource};
/// # use esdk_core::stream::{EncryptingWriter, DecryptingReader};
/// # use std::io::{Read, Write};
/// # fn demo(source: &MaterialsSource) -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new();
/// let mut writer = EncryptingWriter::new(&client, source, &EncryptOptions::default(), Vec::new())?;
/// writer.write_all(b"streamed plaintext")?;
/// let ciphertext = writer.finish()?;
///
/// let mut reader = DecryptingReader::new(&client, source, &DecryptOptions::default(), &ciphertext[..])?;
/// let mut plaintext = Vec::new();
/// reader.read_to_end(&mut plaintext)?;
/// assert_eq!(plaintext, b"streamed plaintext");
/// # Ok(()) }
/// ```
pub struct EncryptingWriter<W: Write> {
    core: EncryptCore,
    inner: W,
}

impl<W: Write> EncryptingWriter<W> {
    /// Get materials from `source` (blocking on the keyring; for keyrings that need an async
    /// runtime use [`from_materials`](Self::from_materials) or the `tokio` writer) and start a
    /// message. Frames are sealed on up to [`Client::threads`] threads.
    pub fn new(
        client: &Client,
        source: &MaterialsSource,
        options: &EncryptOptions,
        inner: W,
    ) -> Result<Self> {
        let materials = pollster::block_on(client.encryption_materials(source, options, None))?;
        Self::from_materials(&materials, options, client.threads(), inner)
    }

    /// Start a message with materials already obtained (from
    /// [`Client::encryption_materials`]), using up to `threads` threads.
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
        })
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        self.core.header()
    }

    /// Write out everything the core has ready.
    fn drain(&mut self) -> Result<()> {
        loop {
            let out = self.core.output();
            if out.is_empty() {
                return Ok(());
            }
            let n = out.len();
            if let Err(e) = self.inner.write_all(out) {
                let e = Error::Io(e);
                self.core.poison(&e);
                return Err(e);
            }
            self.core.consume_output(n);
        }
    }

    /// Write the final frame and the footer, flush, and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        loop {
            self.drain()?;
            if self.core.finish()? {
                break;
            }
        }
        self.drain()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            self.drain().map_err(fail_io)?;
            taken += self.core.accept(&buf[taken..]).map_err(fail_io)?;
            if taken == buf.len() {
                return Ok(taken);
            }
        }
    }

    /// Seals and writes out every complete frame, then flushes the inner writer. The
    /// plaintext of the frame being filled stays buffered: a frame is sealed once it is full
    /// and more plaintext follows (or the message is finished), since only the final frame
    /// may be short.
    fn flush(&mut self) -> io::Result<()> {
        loop {
            self.drain().map_err(fail_io)?;
            if self.core.flush().map_err(fail_io)? {
                break;
            }
        }
        self.drain().map_err(fail_io)?;
        self.inner.flush()
    }
}

impl<W: Write> core::fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("suite", &self.core.header().suite)
            .field("frame_length", &self.core.header().frame_length)
            .finish_non_exhaustive()
    }
}
