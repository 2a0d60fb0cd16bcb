//! Multi-keyring: the generator and children rules of DIGEST 7.1, decrypt order, error
//! aggregation, nesting, and members of any kind (including custom keyrings defined here).

use esdk_core::{
    async_trait, AlgorithmSuite, Client, DataKey, DecryptOptions, DecryptionMaterials,
    EncryptOptions, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, Keyring,
    KeyringError, KeyringFailure, MaterialsSource,
};
use keyring_multi::MultiKeyring;
use keyring_raw_aes::RawAesKeyring;
use keyring_raw_rsa::{Padding, RawRsaKeyring, RsaPrivateKey};
use std::sync::{Arc, Mutex};

fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("multi-tests", name, &[byte; 32]).unwrap())
}

fn suite() -> AlgorithmSuite {
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
}

fn ctx() -> EncryptionContext {
    [("k".to_string(), "v".to_string())].into_iter().collect()
}

fn enc() -> EncryptionMaterials {
    EncryptionMaterials::new(suite(), ctx())
}

fn dec() -> DecryptionMaterials {
    DecryptionMaterials::new(suite(), ctx())
}

/// A custom keyring that always fails, with a reason of its own.
struct Failing(&'static str);

#[async_trait]
impl Keyring for Failing {
    async fn on_encrypt(
        &self,
        _: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        Err(KeyringError::new(
            format!("failing keyring {}", self.0),
            KeyringFailure::Unsupported(format!("{} refuses to encrypt", self.0)),
        ))
    }
    async fn on_decrypt(
        &self,
        _: &DecryptionMaterials,
        _: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        Err(KeyringError::new(
            format!("failing keyring {}", self.0),
            KeyringFailure::Unsupported(format!("{} refuses to decrypt", self.0)),
        ))
    }
}

/// A custom keyring that records each call and whether the materials it saw held a key.
struct Recorder {
    label: &'static str,
    inner: Arc<dyn Keyring>,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Keyring for Recorder {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.log.lock().unwrap().push(format!(
            "{} encrypt key={} edks={}",
            self.label,
            m.data_key().is_some(),
            m.encrypted_data_keys().len()
        ));
        self.inner.on_encrypt(m).await
    }
    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        self.log.lock().unwrap().push(format!(
            "{} decrypt key={}",
            self.label,
            m.data_key().is_some()
        ));
        self.inner.on_decrypt(m, edks).await
    }
}

fn recorder(
    label: &'static str,
    inner: Arc<dyn Keyring>,
    log: &Arc<Mutex<Vec<String>>>,
) -> Arc<dyn Keyring> {
    Arc::new(Recorder {
        label,
        inner,
        log: log.clone(),
    })
}

/// A misbehaving child that swaps the data key for another.
struct Replacer;

#[async_trait]
impl Keyring for Replacer {
    async fn on_encrypt(
        &self,
        m: &EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let mut out = EncryptionMaterials::new(m.suite(), m.encryption_context().clone())
            .with_data_key(DataKey::new(vec![9u8; 32]))
            .map_err(|r| KeyringError::new("replacer", r))?;
        for edk in m.encrypted_data_keys() {
            out = out.with_encrypted_data_key(edk.clone());
        }
        Ok(out.with_encrypted_data_key(EncryptedDataKey::new("replacer", b"x".to_vec(), vec![1])))
    }
    async fn on_decrypt(
        &self,
        m: &DecryptionMaterials,
        _: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        // Claims success without unwrapping anything.
        Ok(m.clone())
    }
}

#[test]
fn generator_makes_the_key_and_every_child_wraps_it() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let multi = MultiKeyring::builder()
        .generator(recorder("gen", aes("a", 1), &log))
        .child(recorder("c1", aes("b", 2), &log))
        .child(recorder("c2", aes("c", 3), &log))
        .build()
        .unwrap();
    let m = pollster::block_on(multi.on_encrypt(&enc())).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "gen encrypt key=false edks=0",
            "c1 encrypt key=true edks=1",
            "c2 encrypt key=true edks=2"
        ]
    );
    let names: Vec<_> = m
        .encrypted_data_keys()
        .iter()
        .map(|e| e.provider_info[..1].to_vec())
        .collect();
    assert_eq!(names, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    // Each member alone unwraps the same data key.
    for (name, byte) in [("a", 1), ("b", 2), ("c", 3)] {
        let d = pollster::block_on(aes(name, byte).on_decrypt(&dec(), m.encrypted_data_keys()))
            .unwrap();
        assert_eq!(
            d.data_key().unwrap().as_bytes(),
            m.data_key().unwrap().as_bytes()
        );
    }
}

#[test]
fn a_generator_refuses_materials_that_already_hold_a_key() {
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .build()
        .unwrap();
    let with_key = enc().with_data_key(DataKey::new(vec![1u8; 32])).unwrap();
    let err = pollster::block_on(multi.on_encrypt(&with_key)).unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::DataKeyAlreadyPresent),
        "{err}"
    );
    assert!(err.keyring.contains("multi-keyring"));
}

#[test]
fn without_a_generator_the_children_wrap_an_existing_key_and_need_one() {
    let multi = MultiKeyring::builder()
        .child(aes("b", 2))
        .child(aes("c", 3))
        .build()
        .unwrap();
    let err = pollster::block_on(multi.on_encrypt(&enc())).unwrap_err();
    assert!(matches!(err.reason, KeyringFailure::NoDataKey), "{err}");

    let with_key = enc().with_data_key(DataKey::new(vec![7u8; 32])).unwrap();
    let m = pollster::block_on(multi.on_encrypt(&with_key)).unwrap();
    assert_eq!(m.data_key().unwrap().as_bytes(), &[7u8; 32]);
    assert_eq!(m.encrypted_data_keys().len(), 2);
}

#[test]
fn a_failing_generator_or_child_fails_the_whole_encrypt() {
    let multi = MultiKeyring::builder()
        .generator(Arc::new(Failing("G")))
        .child(aes("b", 2))
        .build()
        .unwrap();
    let err = pollster::block_on(multi.on_encrypt(&enc())).unwrap_err();
    assert!(
        matches!(&err.reason, KeyringFailure::Unsupported(r) if r.contains("G refuses")),
        "{err}"
    );
    assert!(
        err.keyring.contains("generator") && err.keyring.contains("failing keyring G"),
        "{err}"
    );

    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(aes("b", 2))
        .child(Arc::new(Failing("C2")))
        .build()
        .unwrap();
    let err = pollster::block_on(multi.on_encrypt(&enc())).unwrap_err();
    assert!(
        err.keyring.contains("child 2") && err.keyring.contains("failing keyring C2"),
        "{err}"
    );

    // Through the client: no message is produced.
    let client = Client::new();
    assert!(client
        .encrypt_blocking(
            &MaterialsSource::keyring(multi),
            b"x",
            &EncryptOptions::default()
        )
        .is_err());
}

#[test]
fn a_child_that_replaces_the_data_key_is_caught() {
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(Arc::new(Replacer))
        .build()
        .unwrap();
    let err = pollster::block_on(multi.on_encrypt(&enc())).unwrap_err();
    assert!(
        matches!(&err.reason, KeyringFailure::Materials(r) if r.contains("child 1")),
        "{err}"
    );
}

#[test]
fn decrypt_tries_generator_then_children_in_order_and_stops_at_the_first_success() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // The message is wrapped only for "c".
    let m = pollster::block_on(aes("c", 3).on_encrypt(&enc())).unwrap();
    let multi = MultiKeyring::builder()
        .generator(recorder("gen", aes("a", 1), &log))
        .child(recorder("c1", Arc::new(Failing("F")), &log))
        .child(recorder("c2", aes("c", 3), &log))
        .child(recorder("c3", aes("c", 3), &log))
        .build()
        .unwrap();
    let d = pollster::block_on(multi.on_decrypt(&dec(), m.encrypted_data_keys())).unwrap();
    assert_eq!(
        d.data_key().unwrap().as_bytes(),
        m.data_key().unwrap().as_bytes()
    );
    // Every member saw the caller's unmodified materials (no key); c3 was never asked.
    assert_eq!(
        *log.lock().unwrap(),
        [
            "gen decrypt key=false",
            "c1 decrypt key=false",
            "c2 decrypt key=false"
        ]
    );
}

#[test]
fn decrypt_failure_lists_every_members_reason_in_order() {
    let m = pollster::block_on(aes("z", 9).on_encrypt(&enc())).unwrap();
    let public_only = {
        let private = RsaPrivateKey::from_pem(include_str!(
            "../../keyring-raw-rsa/tests/keys/rsa-2048.pk8.pem"
        ))
        .unwrap();
        RawRsaKeyring::encrypt_only(
            "multi-tests",
            "rsa",
            Padding::OaepSha256,
            private.public_key(),
        )
        .unwrap()
    };
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(Arc::new(Failing("F")))
        .child(Arc::new(public_only))
        .child(aes("z", 8)) // right name, wrong key
        .build()
        .unwrap();
    let err = pollster::block_on(multi.on_decrypt(&dec(), m.encrypted_data_keys())).unwrap_err();
    let KeyringFailure::AllFailed(errors) = &err.reason else {
        panic!("expected AllFailed, got {err}");
    };
    assert_eq!(errors.len(), 4);
    assert!(
        matches!(errors[0].reason, KeyringFailure::NoMatchingKey(1)),
        "{}",
        errors[0]
    );
    assert!(errors[0].keyring.contains("generator") && errors[0].keyring.contains("raw AES"));
    assert!(matches!(&errors[1].reason, KeyringFailure::Unsupported(r) if r.contains("F refuses")));
    assert!(errors[1].keyring.contains("child 1"));
    assert!(
        matches!(errors[2].reason, KeyringFailure::Unsupported(_)),
        "{}",
        errors[2]
    );
    assert!(errors[2].keyring.contains("child 2") && errors[2].keyring.contains("raw RSA"));
    assert!(
        matches!(errors[3].reason, KeyringFailure::UnwrapFailed(_)),
        "{}",
        errors[3]
    );
    assert!(errors[3].keyring.contains("child 3"));
    // The message names each one, numbered.
    let text = err.to_string();
    for needle in [
        "[1]",
        "[2]",
        "[3]",
        "[4]",
        "F refuses to decrypt",
        "encrypt-only",
        "authentication failed",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
    // And the client surfaces it unchanged.
    let client = Client::new();
    let sealed = client
        .encrypt_blocking(
            &MaterialsSource::keyring(aes("z", 9)),
            b"x",
            &EncryptOptions::default(),
        )
        .unwrap();
    let err = client
        .decrypt_blocking(
            &MaterialsSource::keyring(multi),
            &sealed.ciphertext,
            &DecryptOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Keyring(KeyringError { reason: KeyringFailure::AllFailed(v), .. }) if v.len() == 4),
        "{err}"
    );
}

#[test]
fn a_member_that_claims_success_without_a_key_counts_as_a_failure() {
    let m = pollster::block_on(aes("b", 2).on_encrypt(&enc())).unwrap();
    let multi = MultiKeyring::builder()
        .generator(Arc::new(Replacer))
        .child(aes("b", 2))
        .build()
        .unwrap();
    let d = pollster::block_on(multi.on_decrypt(&dec(), m.encrypted_data_keys())).unwrap();
    assert_eq!(
        d.data_key().unwrap().as_bytes(),
        m.data_key().unwrap().as_bytes()
    );
    let only = MultiKeyring::builder()
        .generator(Arc::new(Replacer))
        .build()
        .unwrap();
    let err = pollster::block_on(only.on_decrypt(&dec(), m.encrypted_data_keys())).unwrap_err();
    assert!(
        matches!(&err.reason, KeyringFailure::AllFailed(v) if v.len() == 1),
        "{err}"
    );
}

#[test]
fn decrypt_refuses_materials_that_already_hold_a_key() {
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .build()
        .unwrap();
    let m = pollster::block_on(multi.on_encrypt(&enc())).unwrap();
    let with_key = dec().with_data_key(DataKey::new(vec![0u8; 32])).unwrap();
    let err = pollster::block_on(multi.on_decrypt(&with_key, m.encrypted_data_keys())).unwrap_err();
    assert!(matches!(err.reason, KeyringFailure::DataKeyAlreadyPresent));
}

#[test]
fn multi_keyrings_nest() {
    let inner: Arc<dyn Keyring> = Arc::new(
        MultiKeyring::builder()
            .child(aes("b", 2))
            .child(aes("c", 3))
            .build()
            .unwrap(),
    );
    let outer = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(inner.clone())
        .build()
        .unwrap();
    let client = Client::new();
    let sealed = client
        .encrypt_blocking(
            &MaterialsSource::keyring(outer.clone()),
            b"nested",
            &EncryptOptions::default(),
        )
        .unwrap();
    assert_eq!(sealed.header.encrypted_data_keys.len(), 3);
    for source in [
        MaterialsSource::keyring(outer),
        MaterialsSource::from(inner.clone()),
        MaterialsSource::from(aes("c", 3)),
    ] {
        let opened = client
            .decrypt_blocking(&source, &sealed.ciphertext, &DecryptOptions::default())
            .unwrap();
        assert_eq!(opened.plaintext, b"nested");
    }
    // A nested failure keeps its own list inside the outer one.
    let other = pollster::block_on(aes("q", 5).on_encrypt(&enc())).unwrap();
    let outer = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(inner)
        .build()
        .unwrap();
    let err =
        pollster::block_on(outer.on_decrypt(&dec(), other.encrypted_data_keys())).unwrap_err();
    let KeyringFailure::AllFailed(errors) = &err.reason else {
        panic!("{err}")
    };
    assert!(
        matches!(&errors[1].reason, KeyringFailure::AllFailed(v) if v.len() == 2),
        "{err}"
    );
}

#[test]
fn an_empty_multi_keyring_is_refused_and_debug_is_terse() {
    let err = MultiKeyring::builder().build().unwrap_err();
    assert!(matches!(err.reason, KeyringFailure::Config(_)), "{err}");
    assert!(MultiKeyring::new(None, Vec::new()).is_err());
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(aes("b", 2))
        .build()
        .unwrap();
    assert_eq!(
        format!("{multi:?}"),
        "MultiKeyring { has_generator: true, children: 1 }"
    );
    assert!(multi.generator().is_some());
    assert_eq!(multi.children().len(), 1);
}
