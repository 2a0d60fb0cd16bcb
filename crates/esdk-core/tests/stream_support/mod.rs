//! Shared helpers for the streaming tests: a small AES-GCM keyring, a deterministic byte
//! generator, and readers that hand out input in chosen chunk sizes.

#![allow(dead_code)]

use esdk_core::crypto::{aes_gcm_open, aes_gcm_seal};
use esdk_core::{
    async_trait, AlgorithmSuite, Client, DataKey, DecryptionMaterials, EncryptOptions,
    EncryptedDataKey, EncryptionMaterials, Keyring, KeyringError, KeyringFailure, MaterialsSource,
};
use std::io::{self, Read};

/// Wraps data keys with AES-256-GCM under a fixed test key (IV fixed: test use only).
pub struct TestKeyring;

const WRAP_KEY: [u8; 32] = [0x42; 32];
const PROVIDER: &str = "stream-test";

#[async_trait]
impl Keyring for TestKeyring {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let fail = |r| KeyringError::new("stream test keyring", r);
        let m = match m.data_key() {
            Some(_) => m.clone(),
            None => {
                let key = DataKey::generate(m.suite())
                    .map_err(|e| fail(KeyringFailure::WrapFailed(e.to_string())))?;
                m.clone().with_data_key(key).map_err(fail)?
            }
        };
        let key = m
            .data_key()
            .ok_or_else(|| fail(KeyringFailure::NoDataKey))?;
        let wrapped = aes_gcm_seal(&WRAP_KEY, &[0; 12], b"", key.as_bytes())
            .map_err(|e| fail(KeyringFailure::WrapFailed(e.to_string())))?;
        Ok(m.with_encrypted_data_key(EncryptedDataKey::new(PROVIDER, b"k".to_vec(), wrapped)))
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let fail = |r| KeyringError::new("stream test keyring", r);
        let edk = edks
            .iter()
            .find(|e| e.provider_id == PROVIDER)
            .ok_or(fail(KeyringFailure::NoMatchingKey(edks.len())))?;
        let key = aes_gcm_open(&WRAP_KEY, &[0; 12], b"", &edk.ciphertext)
            .map_err(|e| fail(KeyringFailure::UnwrapFailed(vec![e.to_string()])))?;
        m.clone()
            .with_data_key(DataKey::new(key.to_vec()))
            .map_err(fail)
    }
}

pub fn source() -> MaterialsSource {
    MaterialsSource::keyring(TestKeyring)
}

/// A client whose commitment policy lets it encrypt with `suite`, using `threads` threads.
pub fn client_for(suite: AlgorithmSuite, threads: usize) -> Client {
    let policy = if suite.is_committing() {
        esdk_core::CommitmentPolicy::RequireEncryptAllowDecrypt
    } else {
        esdk_core::CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder()
        .commitment_policy(policy)
        .threads(threads)
        .build()
        .expect("valid client settings")
}

pub const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
pub const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

pub fn options(suite: AlgorithmSuite, frame_length: u32) -> EncryptOptions {
    EncryptOptions::default()
        .with_suite(suite)
        .with_frame_length(frame_length)
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).expect("below n")
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// How a [`ChunkedReader`] cuts its input.
#[derive(Debug, Clone, Copy)]
pub enum Chunks {
    /// One byte per read.
    Single,
    /// Random sizes from 1 to the given maximum, from a seed.
    Random(u64, usize),
    /// Everything the caller's buffer can take.
    Whole,
}

/// A reader over a byte slice that hands out at most a chosen number of bytes per call.
pub struct ChunkedReader<'a> {
    data: &'a [u8],
    pos: usize,
    chunks: Chunks,
    rng: Prng,
}

impl<'a> ChunkedReader<'a> {
    pub fn new(data: &'a [u8], chunks: Chunks) -> Self {
        let seed = match chunks {
            Chunks::Random(seed, _) => seed,
            _ => 1,
        };
        Self {
            data,
            pos: 0,
            chunks,
            rng: Prng::new(seed),
        }
    }
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.data.len() - self.pos;
        let want = match self.chunks {
            Chunks::Single => 1,
            Chunks::Random(_, max) => 1 + self.rng.below(max),
            Chunks::Whole => usize::MAX,
        };
        let n = want.min(left).min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read everything a reader releases until it ends or fails: the bytes released, and the
/// failure if any.
pub fn drain<R: Read>(mut r: R, read_size: usize) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}
