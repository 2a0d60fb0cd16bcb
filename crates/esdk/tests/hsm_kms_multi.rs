//! A multi-keyring of HSM (PKCS#11) keyrings and an AWS KMS keyring, against both emulators:
//! SoftHSM2 and moto. Either member can be the generator; every member alone decrypts what
//! the multi-keyring wrote; a decrypt failure lists each member's reason.
//!
//! Needs the SoftHSM2 token (`ESDK_PKCS11_*`, from `cargo xtask softhsm`) and the KMS emulator
//! (`AWS_ENDPOINT_URL`, from `cargo xtask moto`); `cargo xtask test` provides both:
//!
//! ```text
//! cargo xtask softhsm -- cargo xtask moto cargo test -p esdk --all-features --test hsm_kms_multi
//! ```
//!
//! Without them the tests fail under CI (`CI` set) and skip loudly otherwise.

#![cfg(all(feature = "kms", feature = "pkcs11", feature = "multi"))]

use esdk::kms::aws_sdk_kms::{
    self,
    config::{BehaviorVersion, Credentials, Region},
};
use esdk::kms::KmsKeyring;
use esdk::multi::MultiKeyring;
use esdk::pkcs11::{
    AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, Pin, PinSource, Pkcs11Config, Pkcs11Token,
    RsaKeyConfig, RsaPadding, TokenSelector,
};
use esdk::{
    AlgorithmSuite, Client, DecryptOptions, DecryptionMaterials, EncryptOptions, EncryptionContext,
    Keyring, KeyringFailure, MaterialsSource,
};
use std::io::Write as _;
use std::sync::Arc;

const REGION: &str = "us-west-2";
const HSM_NAMESPACE: &str = "esdk-hsm";

/// Both emulators: a KMS client at moto and the SoftHSM2 token with its key labels.
struct Emulators {
    kms: aws_sdk_kms::Client,
    token: Pkcs11Token,
    aes_label: String,
    rsa_label: String,
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The emulators, or `None` after a loud message (outside CI) when one is missing.
fn emulators() -> Option<Emulators> {
    let endpoint = var("AWS_ENDPOINT_URL");
    let module = var("ESDK_PKCS11_MODULE");
    let missing: Vec<&str> = [
        ("AWS_ENDPOINT_URL (moto)", endpoint.is_none()),
        ("ESDK_PKCS11_MODULE (SoftHSM2)", module.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        assert!(
            !ci(),
            "CI is set, but not {}: the HSM + KMS multi-keyring tests need both emulators; run \
             them with `cargo xtask test`",
            missing.join(" and ")
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!! SKIP: not set: {}; so this HSM + KMS multi-keyring test did NOT run.\n\
             !!!!!! Run: cargo xtask softhsm -- cargo xtask moto cargo test -p esdk --all-features --test hsm_kms_multi\n",
            missing.join(" and ")
        );
        return None;
    }
    let (Some(endpoint), Some(module)) = (endpoint, module) else {
        return None;
    };
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "AWS_ENDPOINT_URL={endpoint} is not a loopback address; these tests create keys and only \
         run against a local emulator"
    );
    let required = |name: &str| {
        var(name).unwrap_or_else(|| {
            panic!("{name} is not set although ESDK_PKCS11_MODULE is: use `cargo xtask softhsm`")
        })
    };
    let config = Pkcs11Config::new(
        module,
        TokenSelector::Label(required("ESDK_PKCS11_TOKEN")),
        PinSource::Secret(Pin::new(required("ESDK_PKCS11_PIN"))),
    )
    .max_sessions(4);
    let token = Pkcs11Token::open(config).expect("open the SoftHSM2 token");
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(endpoint)
            .build(),
    );
    Some(Emulators {
        kms,
        token,
        aes_label: required("ESDK_PKCS11_AES_LABEL"),
        rsa_label: required("ESDK_PKCS11_RSA_LABEL"),
    })
}

impl Emulators {
    async fn new_kms_key(&self) -> String {
        let out = self
            .kms
            .create_key()
            .send()
            .await
            .expect("CreateKey on moto");
        out.key_metadata()
            .and_then(|m| m.arn())
            .expect("CreateKey returns an ARN")
            .to_owned()
    }

    fn kms_keyring(&self, arn: &str) -> Arc<dyn Keyring> {
        Arc::new(KmsKeyring::new(arn, self.kms.clone()).expect("KmsKeyring"))
    }

    async fn hsm_aes(&self) -> Arc<dyn Keyring> {
        Arc::new(
            HsmAesKeyring::new_async(
                &self.token,
                AesKeyConfig::new(HSM_NAMESPACE, "aes-256", &self.aes_label),
            )
            .await
            .expect("HSM AES keyring"),
        )
    }

    async fn hsm_rsa(&self) -> Arc<dyn Keyring> {
        Arc::new(
            HsmRsaKeyring::new_async(
                &self.token,
                RsaKeyConfig::new("esdk-hsm-rsa", "rsa-2048", RsaPadding::OaepSha1)
                    .private_key_label(&self.rsa_label),
            )
            .await
            .expect("HSM RSA keyring"),
        )
    }
}

fn context() -> EncryptionContext {
    [("tenant".to_string(), "acme".to_string())]
        .into_iter()
        .collect()
}

async fn decrypt_with(keyring: Arc<dyn Keyring>, message: &[u8]) -> Result<Vec<u8>, esdk::Error> {
    Client::new()
        .decrypt(
            &MaterialsSource::from(keyring),
            message,
            &DecryptOptions::default().with_reproduced_encryption_context(context()),
        )
        .await
        .map(|o| o.plaintext)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_generator_with_hsm_children_and_each_member_decrypts_alone() {
    let Some(emu) = emulators() else { return };
    let arn = emu.new_kms_key().await;
    let (kms, aes, rsa) = (
        emu.kms_keyring(&arn),
        emu.hsm_aes().await,
        emu.hsm_rsa().await,
    );
    let multi: Arc<dyn Keyring> = Arc::new(
        MultiKeyring::builder()
            .generator(kms.clone())
            .child(aes.clone())
            .child(rsa.clone())
            .build()
            .unwrap(),
    );
    let plaintext = b"one data key, three wrapping keys in two emulators".repeat(50);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    ] {
        let sealed = Client::new()
            .encrypt(
                &MaterialsSource::from(multi.clone()),
                &plaintext,
                &EncryptOptions::default()
                    .with_encryption_context(context())
                    .with_suite(suite),
            )
            .await
            .unwrap();
        let edks = &sealed.header.encrypted_data_keys;
        let ids: Vec<&str> = edks.iter().map(|e| e.provider_id.as_str()).collect();
        assert_eq!(
            ids,
            ["aws-kms", HSM_NAMESPACE, "esdk-hsm-rsa"],
            "generator first"
        );
        assert_eq!(edks[0].provider_info, arn.as_bytes());
        for (name, member) in [
            ("multi", multi.clone()),
            ("KMS alone", kms.clone()),
            ("HSM AES alone", aes.clone()),
            ("HSM RSA alone", rsa.clone()),
        ] {
            let opened = decrypt_with(member, &sealed.ciphertext)
                .await
                .unwrap_or_else(|e| panic!("{name} ({suite:?}): {e}"));
            assert_eq!(opened, plaintext, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_generator_with_a_kms_child() {
    let Some(emu) = emulators() else { return };
    let arn = emu.new_kms_key().await;
    let (kms, aes) = (emu.kms_keyring(&arn), emu.hsm_aes().await);
    let multi: Arc<dyn Keyring> = Arc::new(
        MultiKeyring::builder()
            .generator(aes.clone())
            .child(kms.clone())
            .build()
            .unwrap(),
    );
    let sealed = Client::new()
        .encrypt(
            &MaterialsSource::from(multi.clone()),
            b"generated by the HSM keyring, also wrapped by KMS Encrypt",
            &EncryptOptions::default().with_encryption_context(context()),
        )
        .await
        .unwrap();
    let edks = &sealed.header.encrypted_data_keys;
    let ids: Vec<&str> = edks.iter().map(|e| e.provider_id.as_str()).collect();
    assert_eq!(ids, [HSM_NAMESPACE, "aws-kms"]);
    // The KMS keyring alone reads it, so KMS really wrapped the HSM keyring's data key.
    for member in [kms, aes, multi] {
        assert_eq!(
            decrypt_with(member, &sealed.ciphertext).await.unwrap(),
            b"generated by the HSM keyring, also wrapped by KMS Encrypt"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_decrypt_lists_the_kms_and_the_hsm_reasons() {
    let Some(emu) = emulators() else { return };
    let (ours, theirs) = (emu.new_kms_key().await, emu.new_kms_key().await);
    // A message only another KMS key can read.
    let sealed = Client::new()
        .encrypt(
            &MaterialsSource::from(emu.kms_keyring(&theirs)),
            b"not for this multi-keyring",
            &EncryptOptions::default().with_encryption_context(context()),
        )
        .await
        .unwrap();
    let multi = MultiKeyring::builder()
        .generator(emu.kms_keyring(&ours))
        .child(emu.hsm_aes().await)
        .build()
        .unwrap();
    let err = multi
        .on_decrypt(
            &DecryptionMaterials::new(sealed.suite, sealed.header.encryption_context.clone()),
            &sealed.header.encrypted_data_keys,
        )
        .await
        .unwrap_err();
    let KeyringFailure::AllFailed(reasons) = &err.reason else {
        panic!("expected AllFailed, got {err}");
    };
    assert_eq!(reasons.len(), 2, "{err}");
    assert!(reasons[0].keyring.contains(&ours), "{}", reasons[0]);
    assert!(reasons[1].keyring.contains("PKCS#11"), "{}", reasons[1]);
    assert!(
        matches!(reasons[1].reason, KeyringFailure::NoMatchingKey(1)),
        "{}",
        reasons[1]
    );
    let text = err.to_string();
    assert!(
        text.contains(&ours) && text.contains(HSM_NAMESPACE),
        "{text}"
    );
    // And the whole decrypt fails with that error, not a panic or a hang.
    assert!(decrypt_with(Arc::new(multi), &sealed.ciphertext)
        .await
        .is_err());
}
