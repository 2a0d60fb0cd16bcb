//! `RandomSource::Token` really takes data keys (and AES-GCM IVs) from the token's RNG.
//!
//! Two independent observations of one `on_encrypt` call, both confined to the calling
//! thread (the keyring runs its token work inline when no Tokio runtime is current, as under
//! `pollster`), so tests running beside each other cannot disturb them:
//!
//! * a `tracing` subscriber records the keyring's [`RNG_TRACE_TARGET`] events: which source
//!   each draw used, for what, and how many bytes;
//! * this test binary installs a crypto provider that counts every draw from the system RNG
//!   (`CryptoProvider::fill_random`), the only other place a data key could come from.
//!
//! With the token as the source, the data key's draw must be reported from the token and the
//! system RNG must not be touched at all; with the system source (the control) it is the
//! other way round. The data key is then checked to be the one the EDK holds.

#![forbid(unsafe_code)]

mod common;

use esdk_core::crypto::{AeadKey, CryptoProvider, HashAlgorithm, Hasher, SigningKey, VerifyingKey};
use esdk_core::suite::SignatureAlgorithm;
use esdk_core::{
    AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring,
};
use keyring_pkcs11_hsm::{
    AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, Pkcs11Token, RandomSource, RsaKeyConfig,
    RsaPadding, RNG_TRACE_TARGET,
};
use keyring_raw_aes::RawAesKeyring;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata};

// ---------------------------------------------------------------------------------------
// The system RNG, counted.

thread_local! {
    /// Lengths of the system-RNG draws made on this thread while counting.
    static SYSTEM_DRAWS: RefCell<Option<Vec<usize>>> = const { RefCell::new(None) };
}

/// The `ring` provider, with every `fill_random` on a counting thread recorded.
#[derive(Debug)]
struct CountingProvider;

static COUNTING: CountingProvider = CountingProvider;

fn inner() -> &'static dyn CryptoProvider {
    esdk_core::crypto::ring()
}

impl CryptoProvider for CountingProvider {
    fn name(&self) -> &'static str {
        "counting ring"
    }
    fn aead_key(&self, key: &[u8]) -> esdk_core::Result<Box<dyn AeadKey>> {
        inner().aead_key(key)
    }
    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: Option<&[u8]>,
        ikm: &[u8],
        outputs: &mut [(&[&[u8]], &mut [u8])],
    ) -> esdk_core::Result<()> {
        inner().hkdf(hash, salt, ikm, outputs)
    }
    fn hasher(&self, hash: HashAlgorithm) -> Box<dyn Hasher> {
        inner().hasher(hash)
    }
    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> esdk_core::Result<Box<dyn SigningKey>> {
        inner().generate_signing_key(alg)
    }
    fn verifying_key(
        &self,
        alg: SignatureAlgorithm,
        sec1: &[u8],
    ) -> esdk_core::Result<Box<dyn VerifyingKey>> {
        inner().verifying_key(alg, sec1)
    }
    fn fill_random(&self, out: &mut [u8]) -> esdk_core::Result<()> {
        SYSTEM_DRAWS.with(|d| {
            if let Some(draws) = d.borrow_mut().as_mut() {
                draws.push(out.len());
            }
        });
        inner().fill_random(out)
    }
}

fn install_counting_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        esdk_core::crypto::install_default(&COUNTING)
            .expect("the counting provider is installed before any crypto runs");
    });
    assert_eq!(esdk_core::crypto::provider().name(), "counting ring");
}

// ---------------------------------------------------------------------------------------
// The keyring's RNG events, recorded.

/// One [`RNG_TRACE_TARGET`] event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Draw {
    source: String,
    purpose: String,
    bytes: u64,
}

impl Draw {
    fn new(source: &str, purpose: &str, bytes: usize) -> Self {
        Self {
            source: source.into(),
            purpose: purpose.into(),
            bytes: u64::try_from(bytes).unwrap(),
        }
    }
}

impl Visit for Draw {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "source" => self.source = value.into(),
            "purpose" => self.purpose = value.into(),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "bytes" {
            self.bytes = value;
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// A subscriber that keeps the RNG events and ignores everything else.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Draw>>>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == RNG_TRACE_TARGET {
            let mut draw = Draw::default();
            event.record(&mut draw);
            self.0.lock().unwrap().push(draw);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Run `f` on this thread, returning its result, the RNG events the keyring emitted and the
/// system-RNG draws made.
fn observe<T>(f: impl FnOnce() -> T) -> (T, Vec<Draw>, Vec<usize>) {
    let recorder = Recorder::default();
    SYSTEM_DRAWS.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let out = tracing::subscriber::with_default(recorder.clone(), f);
    let system = SYSTEM_DRAWS.with(|d| d.borrow_mut().take().unwrap_or_default());
    let events = recorder.0.lock().unwrap().clone();
    (out, events, system)
}

// ---------------------------------------------------------------------------------------

const IV_LEN: usize = 12;
/// Two suites with different data key lengths, so that a draw's size names what it was for.
const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
];

fn context() -> EncryptionContext {
    [("test".to_string(), "token-rng".to_string())].into()
}

fn token(env: &common::Env, source: RandomSource) -> Pkcs11Token {
    Pkcs11Token::open(env.config().max_sessions(1).random_source(source))
        .expect("open the SoftHSM2 test token")
}

#[test]
fn aes_mode_data_keys_come_from_the_token_rng() {
    install_counting_provider();
    let Some(env) = common::env() else { return };
    let raw = RawAesKeyring::new("hsm", "k256", &env.aes_key).unwrap();
    for source in [RandomSource::Token, RandomSource::System] {
        let token = token(&env, source);
        let hsm =
            HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
        let (name, expected_system) = match source {
            RandomSource::Token => ("token", false),
            RandomSource::System => ("system", true),
        };
        for suite in SUITES {
            let key_len = suite.data_key_len();
            let materials = EncryptionMaterials::new(suite, context());
            let (sealed, events, system) =
                observe(|| pollster::block_on(hsm.on_encrypt(&materials)).unwrap());
            assert_eq!(
                events,
                [
                    Draw::new(name, "data key", key_len),
                    Draw::new(name, "AES-GCM IV", IV_LEN)
                ],
                "{source:?}, suite {suite:?}"
            );
            if expected_system {
                assert_eq!(system, [key_len, IV_LEN], "{source:?}, suite {suite:?}");
            } else {
                assert!(
                    system.is_empty(),
                    "RandomSource::Token, suite {suite:?}: the system RNG was used ({system:?} bytes)"
                );
            }
            // The key in the materials is the one the EDK holds.
            let key = sealed.data_key().unwrap().as_bytes().to_vec();
            assert_eq!(key.len(), key_len);
            let opened = pollster::block_on(raw.on_decrypt(
                &DecryptionMaterials::new(suite, context()),
                sealed.encrypted_data_keys(),
            ))
            .unwrap();
            assert_eq!(opened.data_key().unwrap().as_bytes(), key.as_slice());

            // A data key already present is wrapped as is: only the IV is drawn.
            let (_, events, system) =
                observe(|| pollster::block_on(hsm.on_encrypt(&sealed)).unwrap());
            assert_eq!(events, [Draw::new(name, "AES-GCM IV", IV_LEN)]);
            assert_eq!(system.len(), usize::from(expected_system));
        }
    }
}

#[test]
fn rsa_mode_data_keys_come_from_the_token_rng() {
    install_counting_provider();
    let Some(env) = common::env() else { return };
    for source in [RandomSource::Token, RandomSource::System] {
        let token = token(&env, source);
        let hsm = HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1)
                .private_key_label(&env.rsa_label),
        )
        .unwrap();
        let name = match source {
            RandomSource::Token => "token",
            RandomSource::System => "system",
        };
        for suite in SUITES {
            let key_len = suite.data_key_len();
            let materials = EncryptionMaterials::new(suite, context());
            let (sealed, events, system) =
                observe(|| pollster::block_on(hsm.on_encrypt(&materials)).unwrap());
            assert_eq!(
                events,
                [Draw::new(name, "data key", key_len)],
                "{source:?}, suite {suite:?}"
            );
            // (OAEP padding draws its seed from the `rsa` crate's own RNG, not the provider.)
            match source {
                RandomSource::Token => assert!(
                    system.is_empty(),
                    "RandomSource::Token, suite {suite:?}: the system RNG was used ({system:?} bytes)"
                ),
                RandomSource::System => assert_eq!(system, [key_len], "suite {suite:?}"),
            }
            let key = sealed.data_key().unwrap().as_bytes().to_vec();
            assert_eq!(key.len(), key_len);
            let opened = pollster::block_on(hsm.on_decrypt(
                &DecryptionMaterials::new(suite, context()),
                sealed.encrypted_data_keys(),
            ))
            .unwrap();
            assert_eq!(opened.data_key().unwrap().as_bytes(), key.as_slice());

            // A data key already present is wrapped as is: nothing is drawn.
            let (_, events, system) =
                observe(|| pollster::block_on(hsm.on_encrypt(&sealed)).unwrap());
            assert!(events.is_empty(), "{events:?}");
            assert!(system.is_empty(), "{system:?}");
        }
    }
}
