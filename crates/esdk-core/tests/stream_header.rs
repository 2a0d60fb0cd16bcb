//! A large header read in small pieces costs work in proportion to its size: the streaming
//! reader does not re-parse (and re-copy) the whole header each time a few more bytes arrive.
//! Asserted through a counting global allocator (dhat), so this file is its own test binary.

mod stream_support;

use esdk_core::stream::DecryptingReader;
use esdk_core::{
    async_trait, DecryptOptions, DecryptionMaterials, EncryptedDataKey, EncryptionContext,
    EncryptionMaterials, Keyring, KeyringError,
};
use std::io::Read;
use stream_support::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// dhat counts for the whole process: the tests of this file take turns.
static PROFILER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The stream test keyring, plus `count` decoy EDKs with `info` bytes of provider info each.
struct WithDecoys {
    count: usize,
    info: usize,
}

#[async_trait]
impl Keyring for WithDecoys {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let mut m = TestKeyring.on_encrypt(m).await?;
        for i in 0..self.count {
            let info = vec![u8::try_from(i % 251).expect("below 251"); self.info];
            let ciphertext = if self.info > 0 {
                vec![0u8; 48]
            } else {
                Vec::new()
            };
            m = m.with_encrypted_data_key(EncryptedDataKey::new("", info, ciphertext));
        }
        Ok(m)
    }

    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        TestKeyring.on_decrypt(m, edks).await
    }
}

/// What streaming `message` read one byte at a time allocates: (bytes, allocations).
fn allocations_to_stream(keyring: WithDecoys, message: &[u8], plaintext: &[u8]) -> (u64, u64) {
    let source = esdk_core::MaterialsSource::keyring(keyring);
    let client = client_for(UNSIGNED, 1);
    let _turn = PROFILER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let mut reader = DecryptingReader::new(
        &client,
        &source,
        &DecryptOptions::default(),
        ChunkedReader::new(message, Chunks::Single),
    )
    .expect("header");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("body");
    assert_eq!(out, plaintext);
    let after = dhat::HeapStats::get();
    (
        after.total_bytes - before.total_bytes,
        after.total_blocks - before.total_blocks,
    )
}

fn seal(keyring: WithDecoys, context: EncryptionContext, plaintext: &[u8]) -> Vec<u8> {
    client_for(UNSIGNED, 1)
        .encrypt_blocking(
            &esdk_core::MaterialsSource::keyring(keyring),
            plaintext,
            &options(UNSIGNED, 4096).with_encryption_context(context),
        )
        .expect("encrypt")
        .ciphertext
}

/// 1,500 EDKs with 1,000 bytes of provider info each (a 1.5 MB header), read byte by byte.
#[test]
fn a_large_header_read_byte_by_byte_is_parsed_once() {
    let decoys = || WithDecoys {
        count: 1500,
        info: 1000,
    };
    let plaintext = b"behind a large header".to_vec();
    let message = seal(decoys(), EncryptionContext::new(), &plaintext);
    let header_len = message.len() - plaintext.len();
    assert!(header_len > 1500 * 1000, "the header holds the decoys");
    let (bytes, _) = allocations_to_stream(decoys(), &message, &plaintext);
    // The header buffer (grown by doubling), one parsed copy, the materials' copy of the EDKs
    // and the body: a small multiple of the header. Re-parsing on every byte would allocate
    // about header_len^2 / 2 bytes.
    assert!(
        bytes < 12 * header_len as u64,
        "{bytes} bytes allocated to stream a {header_len}-byte header"
    );
}

/// A large encryption context (4,000 pairs) followed by 20,000 empty EDKs (6 bytes each),
/// read a byte at a time: the context is parsed a fixed number of times, not once for every
/// EDK field that arrives (which made about 60,000 copies of the map).
#[test]
fn a_large_context_before_many_tiny_edks_is_parsed_a_fixed_number_of_times() {
    const PAIRS: usize = 4_000;
    const EDKS: usize = 20_000;
    let decoys = || WithDecoys {
        count: EDKS,
        info: 0,
    };
    let context: EncryptionContext = (0..PAIRS)
        .map(|i| (format!("k{i:05}"), "v".to_string()))
        .collect();
    let plaintext = b"behind many tiny keys".to_vec();
    let message = seal(decoys(), context, &plaintext);
    let (_, blocks) = allocations_to_stream(decoys(), &message, &plaintext);
    // Each context copy costs two allocations per pair; the parse, the materials and the
    // keyring's view each hold one. Twenty copies is far above that and far below the
    // thousands a per-field re-parse makes.
    let bound = 20 * 2 * PAIRS as u64 + 4 * EDKS as u64;
    assert!(
        blocks < bound,
        "{blocks} allocations to stream a header of {PAIRS} pairs and {EDKS} EDKs (bound {bound})"
    );
}
