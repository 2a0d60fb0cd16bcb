//! A large header read in small pieces costs work in proportion to its size: the streaming
//! reader does not re-parse (and re-copy) the whole header each time a few more bytes arrive.
//! Asserted through a counting global allocator (dhat), so this file is its own test binary.

mod stream_support;

use esdk_core::stream::DecryptingReader;
use esdk_core::{
    async_trait, DecryptOptions, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials,
    Keyring, KeyringError,
};
use std::io::Read;
use stream_support::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// dhat counts for the whole process: the tests of this file take turns.
static PROFILER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Decoy EDKs next to the real one, each with a long provider info.
const DECOYS: usize = 1500;
const DECOY_INFO: usize = 1000;

/// The stream test keyring, plus many decoy EDKs that make the header about 1.5 MB.
struct ManyEdks;

#[async_trait]
impl Keyring for ManyEdks {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let mut m = TestKeyring.on_encrypt(m).await?;
        for i in 0..DECOYS {
            let info = vec![u8::try_from(i % 251).expect("below 251"); DECOY_INFO];
            m = m.with_encrypted_data_key(EncryptedDataKey::new("decoy", info, vec![0u8; 48]));
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

#[test]
fn a_large_header_read_byte_by_byte_is_parsed_once() {
    let source = esdk_core::MaterialsSource::keyring(ManyEdks);
    let client = client_for(UNSIGNED, 1);
    let plaintext = b"behind a large header".to_vec();
    let message = client
        .encrypt_blocking(&source, &plaintext, &options(UNSIGNED, 4096))
        .expect("encrypt")
        .ciphertext;
    let header_len = message.len() - plaintext.len();
    assert!(
        header_len > DECOYS * DECOY_INFO,
        "the header holds the decoys"
    );

    let _turn = PROFILER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().total_bytes;
    let mut reader = DecryptingReader::new(
        &client,
        &source,
        &DecryptOptions::default(),
        ChunkedReader::new(&message, Chunks::Single),
    )
    .expect("header");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("body");
    assert_eq!(out, plaintext);
    let allocated = dhat::HeapStats::get().total_bytes - before;
    // The header buffer (grown by doubling), one parsed copy, the materials' copy of the EDKs
    // and the body: a small multiple of the header. Re-parsing on every byte would allocate
    // about header_len^2 / 2 bytes.
    assert!(
        allocated < 12 * header_len as u64,
        "{allocated} bytes allocated to stream a {header_len}-byte header"
    );
}

/// Empty decoy EDKs: the most EDKs per header byte (6 bytes each).
const TINY_EDKS: usize = 20_000;
/// Encryption-context pairs: about 40 KB of context.
const PAIRS: usize = 4_000;

/// The stream test keyring plus many empty EDKs.
struct ManyTinyEdks;

#[async_trait]
impl Keyring for ManyTinyEdks {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let mut m = TestKeyring.on_encrypt(m).await?;
        for _ in 0..TINY_EDKS {
            m = m.with_encrypted_data_key(EncryptedDataKey::new("", Vec::new(), Vec::new()));
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

/// A large encryption context followed by many tiny EDKs, read a byte at a time: the context
/// is parsed a fixed number of times, not once for every EDK field that arrives (which made
/// about 60,000 copies of a 4,000-pair map).
#[test]
fn a_large_context_before_many_tiny_edks_is_parsed_a_fixed_number_of_times() {
    let source = esdk_core::MaterialsSource::keyring(ManyTinyEdks);
    let client = client_for(UNSIGNED, 1);
    let context: esdk_core::EncryptionContext = (0..PAIRS)
        .map(|i| (format!("k{i:05}"), "v".to_string()))
        .collect();
    let plaintext = b"behind many tiny keys".to_vec();
    let message = client
        .encrypt_blocking(
            &source,
            &plaintext,
            &options(UNSIGNED, 4096).with_encryption_context(context),
        )
        .expect("encrypt")
        .ciphertext;

    let _turn = PROFILER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().total_blocks;
    let mut reader = DecryptingReader::new(
        &client,
        &source,
        &DecryptOptions::default(),
        ChunkedReader::new(&message, Chunks::Single),
    )
    .expect("header");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("body");
    assert_eq!(out, plaintext);
    let blocks = dhat::HeapStats::get().total_blocks - before;
    // Each context copy costs two allocations per pair; the parse, the materials and the
    // keyring's view each hold one. Twenty copies is far above that and far below the
    // thousands a per-field re-parse makes.
    let bound = 20 * 2 * PAIRS as u64 + 4 * TINY_EDKS as u64;
    assert!(
        blocks < bound,
        "{blocks} allocations to stream a header of {PAIRS} pairs and {TINY_EDKS} EDKs (bound {bound})"
    );
}
