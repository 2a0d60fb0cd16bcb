//! Streaming decryption: a sans-I/O core ([`DecryptCore`]), the header accumulator, and the
//! `std::io::Read` adapter ([`DecryptingReader`]) built on them.

use super::engine::{Batch, Engine, Slot, Work};
use super::{fail_io, StreamState};
use crate::client::{Client, DecryptOptions, MaterialsSource};
use crate::context::EncryptionContext;
use crate::decrypt::MessageDecryptor;
use crate::error::{Error, Result};
use crate::format::body::{FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD};
use crate::format::header::{ContentType, Header, ParsedHeader, ProbeProgress};
use crate::materials::DecryptionMaterials;
use crate::parallel::batch_frames;
use crate::suite::AlgorithmSuite;
use std::io::{self, BufRead, Read};

/// Where decryption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading frames.
    Body,
    /// A parse failure or truncation was queued behind the frames before it: read no more.
    Stopped,
    /// The final frame was read; the footer (signed suites) is next.
    Footer,
    /// The footer verified; the input must end here.
    Trailer,
    /// Everything verified.
    Done,
}

/// What [`DecryptCore::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// [`DecryptCore::plaintext`] holds verified plaintext.
    Ready,
    /// Read input into [`DecryptCore::input_buf`] and report it with
    /// [`DecryptCore::input_filled`].
    NeedInput,
    /// The message ended and verified: no more plaintext.
    End,
}

/// The decryption state machine behind the sync and async readers and random access.
pub(crate) struct DecryptCore {
    decryptor: MessageDecryptor,
    engine: Engine,
    header: Header,
    encryption_context: EncryptionContext,
    per_batch: usize,
    /// Largest buffer a batch needs (bounded by the input that actually arrives).
    batch_cap: usize,
    phase: Phase,
    eof: bool,
    /// The last read returned less than it was offered: the input may have nothing more for
    /// now (a pipe or socket), so complete frames are not kept waiting for a full batch.
    input_idle: bool,
    /// How many bytes the last [`input_buf`](Self::input_buf) offered.
    offered: usize,
    /// Input being parsed into frames; `parsed` is the offset after the last complete frame.
    cur: Batch,
    parsed: usize,
    /// Bytes after the body: the footer, then whatever follows.
    tail: Vec<u8>,
    tail_len: usize,
    footer_len: usize,
    /// The batch whose plaintext is being released: frame `out_slot`, byte `out_pos`.
    out: Option<Batch>,
    out_slot: usize,
    out_pos: usize,
    state: StreamState,
}

/// The input still needed for a frame is at most this much beyond what is buffered; reads go
/// into buffers grown in steps.
const TAIL_STEP: usize = 4096;

impl DecryptCore {
    /// Authenticate the header (commitment, header tag) and get ready for the body. `after`
    /// holds bytes already read past the header.
    pub(crate) fn new(
        parsed: &ParsedHeader,
        header_bytes: &[u8],
        materials: &DecryptionMaterials,
        threads: usize,
        after: &[u8],
    ) -> Result<Self> {
        let decryptor = MessageDecryptor::new(parsed, header_bytes, materials)?;
        let header = parsed.header.clone();
        let (per_batch, batch_cap) = match header.content_type {
            ContentType::Framed => {
                let fl = header.frame_length as usize;
                let per_batch = batch_frames(header.frame_length);
                let cap = per_batch
                    .saturating_mul(fl.saturating_add(REGULAR_FRAME_OVERHEAD))
                    .saturating_add(FINAL_FRAME_OVERHEAD);
                (per_batch, cap)
            }
            ContentType::NonFramed => (1, usize::MAX),
        };
        let mut engine = Engine::new(
            decryptor.cipher().clone(),
            Work::Open,
            threads,
            decryptor.is_signed(),
        );
        let mut cur = engine.spare();
        cur.ensure_len(after.len(), usize::MAX);
        cur.buf[..after.len()].copy_from_slice(after);
        cur.len = after.len();
        Ok(Self {
            decryptor,
            engine,
            encryption_context: materials.encryption_context().clone(),
            header,
            per_batch,
            batch_cap,
            phase: Phase::Body,
            eof: false,
            // Whatever came with the header is all there is until the next read.
            input_idle: true,
            offered: 0,
            cur,
            parsed: 0,
            tail: Vec::new(),
            tail_len: 0,
            footer_len: 0,
            out: None,
            out_slot: 0,
            out_pos: 0,
            state: StreamState::Running,
        })
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Where to put more input (never empty unless the message is complete).
    pub(crate) fn input_buf(&mut self) -> &mut [u8] {
        self.offered = self.input_space().len();
        // The space is ready: asking again changes nothing.
        self.input_space()
    }

    fn input_space(&mut self) -> &mut [u8] {
        match self.phase {
            Phase::Body => {
                if self.cur.len == self.cur.buf.len() {
                    if self.cur.slots.is_empty() && self.parsed > 0 {
                        self.cur.buf.copy_within(self.parsed..self.cur.len, 0);
                        self.cur.len -= self.parsed;
                        self.parsed = 0;
                    }
                    self.cur.ensure_len(self.cur.len + 1, self.batch_cap);
                }
                &mut self.cur.buf[self.cur.len..]
            }
            Phase::Footer | Phase::Trailer => {
                if self.tail_len == self.tail.len() {
                    self.tail.resize(self.tail_len + TAIL_STEP, 0);
                }
                &mut self.tail[self.tail_len..]
            }
            Phase::Stopped | Phase::Done => &mut [],
        }
    }

    /// `n` bytes were put in [`input_buf`](Self::input_buf); 0 means the input ended.
    pub(crate) fn input_filled(&mut self, n: usize) {
        if n == 0 {
            self.eof = true;
            return;
        }
        self.input_idle = n < self.offered;
        match self.phase {
            Phase::Body => self.cur.len += n,
            Phase::Footer | Phase::Trailer => self.tail_len += n,
            Phase::Stopped | Phase::Done => {}
        }
    }

    /// Verified plaintext ready to release (after [`Progress::Ready`]).
    pub(crate) fn plaintext(&self) -> &[u8] {
        match &self.out {
            Some(batch) if self.out_slot < batch.verified => {
                let slot = &batch.slots[self.out_slot];
                &batch.buf[slot.content_start + self.out_pos..slot.content_start + slot.content_len]
            }
            _ => &[],
        }
    }

    /// `n` bytes of [`plaintext`](Self::plaintext) were released.
    pub(crate) fn consume(&mut self, n: usize) {
        self.out_pos += n;
    }

    /// Stop the stream after a failure outside the core (e.g. reading the input failed).
    pub(crate) fn poison(&mut self, e: &Error) {
        self.state.poison(e);
    }

    /// Move decryption forward until plaintext is ready, input is needed, or the message
    /// ended. Errors are final: the stream stays failed.
    pub(crate) fn advance(&mut self) -> Result<Progress> {
        self.state.check()?;
        let r = self.advance_inner();
        self.state.track(r)
    }

    fn advance_inner(&mut self) -> Result<Progress> {
        loop {
            if let Some(batch) = &mut self.out {
                if self.out_slot < batch.verified {
                    let slot = batch.slots[self.out_slot];
                    if slot.is_last() && self.phase != Phase::Done {
                        // The last block waits for the footer and the end of the input.
                        if let Some(progress) = self.progress_end()? {
                            return Ok(progress);
                        }
                        continue;
                    }
                    if self.out_pos < slot.content_len {
                        return Ok(Progress::Ready);
                    }
                    self.out_slot += 1;
                    self.out_pos = 0;
                    continue;
                }
                if let Some(e) = batch.failure.take() {
                    return Err(e);
                }
                if let Some(e) = batch.then_fail.take() {
                    return Err(e);
                }
                if let Some(done) = self.out.take() {
                    self.engine.recycle(done);
                }
                continue;
            }
            if let Some(batch) = self.engine.collect(false)? {
                self.release(batch);
                continue;
            }
            if self.phase == Phase::Body && self.engine.in_flight() < self.engine.max_in_flight() {
                if self.parse()? {
                    continue;
                }
                if self.input_idle {
                    // The input paused: release what is decryptable before waiting for more,
                    // so an interactive stream never sits on complete frames.
                    if let Some(batch) = self.engine.collect(true)? {
                        self.release(batch);
                        continue;
                    }
                    if !self.cur.slots.is_empty() {
                        self.submit_cur()?;
                        continue;
                    }
                }
                return Ok(Progress::NeedInput);
            }
            if let Some(batch) = self.engine.collect(true)? {
                self.release(batch);
                continue;
            }
            return match self.phase {
                Phase::Done => Ok(Progress::End),
                // Unreachable by construction: the last block is held in `out` until Done,
                // and a stopped stream queued its error in a batch.
                _ => Err(Error::Crypto("decrypting stream lost its place")),
            };
        }
    }

    fn release(&mut self, batch: Batch) {
        self.out = Some(batch);
        self.out_slot = 0;
        self.out_pos = 0;
    }

    /// Parse frames from `cur`. Returns `true` when a batch was submitted, `false` when more
    /// input is needed first.
    fn parse(&mut self) -> Result<bool> {
        loop {
            let input = &self.cur.buf[self.parsed..self.cur.len];
            let frame = match self.decryptor.next_frame(input) {
                Ok(Some(frame)) => frame,
                Ok(None) if self.eof => {
                    self.stop(Error::Truncated(
                        "the body ends inside a frame or before the final frame",
                    ))?;
                    return Ok(true);
                }
                Ok(None) => return Ok(false),
                Err(e) => {
                    self.stop(e)?;
                    return Ok(true);
                }
            };
            let wire_start = self.parsed;
            let content_len = frame.ciphertext.len();
            let wire_end = wire_start + frame.wire_len;
            let slot = Slot {
                sequence_number: frame.sequence_number,
                kind: frame.kind,
                iv: frame.iv,
                tag: frame.tag,
                wire_start,
                content_start: wire_end - AlgorithmSuite::TAG_LEN - content_len,
                content_len,
            };
            self.cur.slots.push(slot);
            self.parsed = wire_end;
            if slot.is_last() {
                let rest = self.parsed..self.cur.len;
                self.tail.clear();
                self.tail.extend_from_slice(&self.cur.buf[rest]);
                self.tail_len = self.tail.len();
                self.phase = Phase::Footer;
                let batch = std::mem::take(&mut self.cur);
                self.engine.submit(batch, false)?;
                return Ok(true);
            }
            if self.cur.slots.len() == self.per_batch {
                self.submit_cur()?;
                return Ok(true);
            }
        }
    }

    /// Submit the frames parsed into `cur` (more follow); the bytes after them start the next
    /// batch.
    fn submit_cur(&mut self) -> Result<()> {
        // Size the next batch like this one at once.
        let size = self.batch_cap.min(self.cur.buf.len());
        let mut next = self.engine.spare_sized(size, self.per_batch);
        let rest = self.cur.len - self.parsed;
        next.ensure_len(rest, self.batch_cap);
        next.buf[..rest].copy_from_slice(&self.cur.buf[self.parsed..self.cur.len]);
        next.len = rest;
        let batch = std::mem::replace(&mut self.cur, next);
        self.parsed = 0;
        self.engine.submit(batch, true)
    }

    /// Queue `e` behind the frames parsed so far, and read no further.
    fn stop(&mut self, e: Error) -> Result<()> {
        let mut batch = std::mem::take(&mut self.cur);
        batch.then_fail = Some(e);
        self.phase = Phase::Stopped;
        self.engine.submit(batch, false)
    }

    /// Verify the footer and the end of the input. `Some(progress)`: input is needed first.
    fn progress_end(&mut self) -> Result<Option<Progress>> {
        loop {
            match self.phase {
                Phase::Footer => match self.decryptor.finish(&self.tail[..self.tail_len])? {
                    Some(len) => {
                        self.footer_len = len;
                        self.phase = Phase::Trailer;
                    }
                    None if self.eof => {
                        return Err(Error::Truncated("the signature footer is incomplete"))
                    }
                    None => return Ok(Some(Progress::NeedInput)),
                },
                Phase::Trailer => {
                    if self.tail_len > self.footer_len {
                        return Err(Error::TrailingBytes(self.tail_len - self.footer_len));
                    }
                    if self.eof {
                        self.phase = Phase::Done;
                        return Ok(None);
                    }
                    return Ok(Some(Progress::NeedInput));
                }
                Phase::Done => return Ok(None),
                Phase::Body | Phase::Stopped => {
                    return Err(Error::Crypto(
                        "the last block arrived before the body ended",
                    ))
                }
            }
        }
    }
}

/// Collects the bytes of a header as they arrive.
#[derive(Default)]
pub(crate) struct HeaderBuf {
    buf: Vec<u8>,
    len: usize,
    /// Bytes the header needs at least, as the last probe found: no point looking again
    /// before they are here.
    need: usize,
    /// What the probes have already checked.
    probe: ProbeProgress,
}

impl HeaderBuf {
    /// Where to read the next bytes.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.len == self.buf.len() {
            let grow = self.buf.len().max(TAIL_STEP);
            self.buf.resize(self.len + grow, 0);
        }
        &mut self.buf[self.len..]
    }

    /// `n` bytes arrived (0: the input ended). Returns the parsed header once complete.
    pub(crate) fn filled(
        &mut self,
        n: usize,
        max_edks: Option<u16>,
    ) -> Result<Option<ParsedHeader>> {
        if n == 0 {
            return match Header::parse(self.bytes(), max_edks)? {
                Some(parsed) => Ok(Some(parsed)),
                None => Err(Error::Truncated("the header is incomplete")),
            };
        }
        self.len += n;
        if self.len < self.need {
            return Ok(None);
        }
        // Probe (no copies) until the header is whole, then parse it once.
        match Header::probe(&self.buf[..self.len], max_edks, &mut self.probe)? {
            Ok(_) => Header::parse(self.bytes(), max_edks),
            Err(need) => {
                self.need = need;
                Ok(None)
            }
        }
    }

    /// Everything read so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Read and parse a message header from `inner`. Returns the parsed header and every byte
/// read (the header and possibly the start of the body).
pub(crate) fn read_header<R: Read>(
    inner: &mut R,
    max_edks: Option<u16>,
) -> Result<(ParsedHeader, HeaderBuf)> {
    let mut hb = HeaderBuf::default();
    loop {
        let n = loop {
            match inner.read(hb.space()) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(parsed) = hb.filled(n, max_edks)? {
            return Ok((parsed, hb));
        }
    }
}

/// Decrypts one message read from `R`, releasing plaintext as frames verify.
///
/// Reading follows the streaming rules of the format:
/// - a frame's plaintext is released only after its authentication tag verified;
/// - the last frame (and a non-framed body) is released only after the footer signature
///   verified (signed suites) and the input ended right after the message;
/// - a truncated, tampered or over-long message makes `read` fail with an [`io::Error`] whose
///   inner error is this crate's [`Error`] (see [`super::error_of`]); the stream stays failed;
/// - `read` returns `Ok(0)` only once the whole message verified;
/// - while input keeps coming, frames are opened in batches (up to about 256 KiB); as soon as
///   a read of `R` returns less than it was offered (a pipe or socket with nothing more for
///   now), every complete frame is opened and released before `R` is read again, so an
///   interactive stream never waits on plaintext that is ready. The last frame still waits
///   for the end of the input (nothing may follow a message).
///
/// **Signed messages:** the frames before the last one are released once their tags verify,
/// *before* the signature is checked. Their plaintext is authentic to a holder of the data key
/// but not yet known to come from the signer; a caller that must not act on such data either
/// waits for `Ok(0)` before using anything, or refuses signed messages with
/// [`DecryptOptions::unsigned_only`], which fails right after the header.
pub struct DecryptingReader<R: Read> {
    core: DecryptCore,
    inner: R,
}

impl<R: Read> DecryptingReader<R> {
    /// Read the header from `inner`, get materials from `source` (blocking on the keyring),
    /// authenticate the header, and get ready to decrypt. Frames are opened on up to
    /// [`Client::threads`] threads.
    pub fn new(
        client: &Client,
        source: &MaterialsSource,
        options: &DecryptOptions,
        mut inner: R,
    ) -> Result<Self> {
        let (parsed, hb) = read_header(&mut inner, client.max_encrypted_data_keys())?;
        let materials = pollster::block_on(client.decryption_materials(source, &parsed, options))?;
        let core = DecryptCore::new(
            &parsed,
            hb.bytes(),
            &materials,
            client.threads(),
            &hb.bytes()[parsed.total_len..],
        )?;
        Ok(Self { core, inner })
    }

    /// Like [`new`](Self::new) with materials already obtained for this header (from
    /// [`Client::decryption_materials`]). `bytes_read` is everything read from `inner` so far,
    /// starting with the header (as parsed by [`Header::parse`]).
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

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Run the core until plaintext is ready (`true`) or the message ended (`false`).
    fn fill(&mut self) -> Result<bool> {
        loop {
            match self.core.advance()? {
                Progress::Ready => return Ok(true),
                Progress::End => return Ok(false),
                Progress::NeedInput => {
                    let n = loop {
                        match self.inner.read(self.core.input_buf()) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                let e = Error::Io(e);
                                self.core.poison(&e);
                                return Err(e);
                            }
                        }
                    };
                    self.core.input_filled(n);
                }
            }
        }
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.fill().map_err(fail_io)? {
            return Ok(0);
        }
        let plaintext = self.core.plaintext();
        let n = plaintext.len().min(buf.len());
        buf[..n].copy_from_slice(&plaintext[..n]);
        self.core.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for DecryptingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.fill().map_err(fail_io)? {
            return Ok(&[]);
        }
        Ok(self.core.plaintext())
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.core.plaintext().len());
        self.core.consume(amt);
    }
}

impl<R: Read> core::fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("suite", &self.core.header().suite)
            .field("frame_length", &self.core.header().frame_length)
            .finish_non_exhaustive()
    }
}
