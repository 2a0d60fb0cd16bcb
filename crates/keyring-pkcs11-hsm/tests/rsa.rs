//! RSA mode against SoftHSM2: round trips with OAEP-SHA1 and PKCS#1 v1.5, EDKs checked with
//! the `rsa` crate holding the known private key (both directions), the padding SoftHSM2 2.6
//! lacks reported as such, and keys too small for their padding refused at construction.

mod common;

use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, DecryptionMaterials, EncryptOptions, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, Keyring, KeyringFailure, MaterialsSource,
};
use keyring_pkcs11_hsm::cryptoki::mechanism::Mechanism;
use keyring_pkcs11_hsm::cryptoki::object::{Attribute, AttributeType};
use keyring_pkcs11_hsm::cryptoki::session::Session;
use keyring_pkcs11_hsm::{
    HsmRsaKeyring, Pkcs11Error, Pkcs11Token, RsaKeyConfig, RsaPadding, MAX_DATA_KEY_LEN,
};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn context() -> EncryptionContext {
    [("app".to_string(), "rsa-test".to_string())]
        .into_iter()
        .collect()
}

fn keyring(token: &Pkcs11Token, label: &str, padding: RsaPadding) -> HsmRsaKeyring {
    HsmRsaKeyring::new(
        token,
        RsaKeyConfig::new("hsm-rsa", "rsa-key", padding).private_key_label(label),
    )
    .unwrap_or_else(|e| panic!("{padding:?}: {e}"))
}

/// Decrypt with the known private key in software.
fn software_decrypt(key: &rsa::PrivateKey, padding: RsaPadding, ciphertext: &[u8]) -> Vec<u8> {
    match padding {
        RsaPadding::OaepSha1 => key.oaep_decrypt::<sha1::Sha1>(ciphertext).unwrap(),
        RsaPadding::Pkcs1v15 => key.pkcs1v15_decrypt(ciphertext).unwrap(),
        other => panic!("not used here: {other:?}"),
    }
}

fn software_encrypt(key: &rsa::PublicKey, padding: RsaPadding, plaintext: &[u8]) -> Vec<u8> {
    match padding {
        RsaPadding::OaepSha1 => key.oaep_encrypt::<sha1::Sha1>(plaintext).unwrap(),
        RsaPadding::Pkcs1v15 => key.pkcs1v15_encrypt(plaintext).unwrap(),
        other => panic!("not used here: {other:?}"),
    }
}

#[test]
fn round_trips_with_oaep_sha1_and_pkcs1() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let client = Client::new();
    for padding in [RsaPadding::OaepSha1, RsaPadding::Pkcs1v15] {
        let k = keyring(&token, &env.rsa_label, padding);
        assert!(k.can_encrypt() && k.can_decrypt());
        let source = MaterialsSource::keyring(k);
        let sealed = client
            .encrypt_blocking(
                &source,
                b"rsa in the token",
                &EncryptOptions::default().with_encryption_context(context()),
            )
            .unwrap();
        let edk = &sealed.header.encrypted_data_keys[0];
        assert_eq!(edk.provider_id, "hsm-rsa");
        assert_eq!(edk.provider_info, b"rsa-key");
        assert_eq!(edk.ciphertext.len(), 256, "raw RSA-2048 output");
        let opened = client
            .decrypt_blocking(&source, &sealed.ciphertext, &DecryptOptions::default())
            .unwrap();
        assert_eq!(opened.plaintext, b"rsa in the token");
    }
}

#[test]
fn edks_match_software_rsa_with_the_known_key_both_ways() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let private = env.rsa_private_key();
    let public = private.to_public_key();
    for padding in [RsaPadding::OaepSha1, RsaPadding::Pkcs1v15] {
        let k = keyring(&token, &env.rsa_label, padding);
        // HSM keyring -> software private key.
        let m =
            pollster::block_on(k.on_encrypt(&EncryptionMaterials::new(SUITE, context()))).unwrap();
        let edk = &m.encrypted_data_keys()[0];
        assert_eq!(
            software_decrypt(&private, padding, &edk.ciphertext),
            m.data_key().unwrap().as_bytes(),
            "{padding:?}"
        );
        // Software public key -> the token unwraps.
        let data_key = [0x42u8; 32];
        let edk = EncryptedDataKey::new(
            "hsm-rsa",
            b"rsa-key".to_vec(),
            software_encrypt(&public, padding, &data_key),
        );
        let d =
            pollster::block_on(k.on_decrypt(&DecryptionMaterials::new(SUITE, context()), &[edk]))
                .unwrap();
        assert_eq!(d.data_key().unwrap().as_bytes(), data_key, "{padding:?}");
    }
}

#[test]
fn oaep_with_sha2_is_reported_as_unsupported_by_softhsm_2_6() {
    let Some(env) = common::env() else { return };
    let token = env.token(1);
    let info = token.context().get_library_info().unwrap();
    let version = info.library_version();
    let is_softhsm_2_6 =
        info.manufacturer_id().contains("SoftHSM") && version.major() == 2 && version.minor() <= 6;
    for padding in [
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ] {
        let result = HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new("hsm-rsa", "rsa-key", padding).private_key_label(&env.rsa_label),
        );
        if is_softhsm_2_6 {
            match result {
                Err(Pkcs11Error::MechanismUnsupported {
                    mechanism, detail, ..
                }) => {
                    assert_eq!(mechanism, padding.mechanism_name());
                    assert!(detail.contains("SHA-1 only"), "{detail}");
                }
                other => panic!("{padding:?}: expected MechanismUnsupported, got {other:?}"),
            }
        } else {
            // A token that does offer it must round-trip.
            let k = result.unwrap();
            let m = pollster::block_on(k.on_encrypt(&EncryptionMaterials::new(SUITE, context())))
                .unwrap();
            let d = pollster::block_on(k.on_decrypt(
                &DecryptionMaterials::new(SUITE, context()),
                m.encrypted_data_keys(),
            ))
            .unwrap();
            assert_eq!(
                d.data_key().unwrap().as_bytes(),
                m.data_key().unwrap().as_bytes()
            );
        }
    }
    // A public-key-only keyring never asks the token, so it wraps with OAEP-SHA256 anyway.
    let pem = env
        .rsa_private_key()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let wrap_only = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha256).public_key_pem(pem),
    )
    .unwrap();
    let m = pollster::block_on(wrap_only.on_encrypt(&EncryptionMaterials::new(SUITE, context())))
        .unwrap();
    let plain = env
        .rsa_private_key()
        .oaep_decrypt::<rsa::sha2::Sha256>(&m.encrypted_data_keys()[0].ciphertext)
        .unwrap();
    assert_eq!(plain, m.data_key().unwrap().as_bytes());
}

#[test]
fn public_key_in_software_and_key_roles() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let public = env.rsa_private_key().to_public_key();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let der = public.to_public_key_der().unwrap().as_bytes().to_vec();

    // Wrap-only keyrings (PEM and DER) feed the token keyring.
    let unwrapper = keyring(&token, &env.rsa_label, RsaPadding::OaepSha1);
    for config in [
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1).public_key_pem(pem.clone()),
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1).public_key_der(der),
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1)
            .public_key_label(&env.rsa_label, None),
    ] {
        let wrapper = HsmRsaKeyring::new(&token, config).unwrap();
        assert!(wrapper.can_encrypt() && !wrapper.can_decrypt());
        let m = pollster::block_on(wrapper.on_encrypt(&EncryptionMaterials::new(SUITE, context())))
            .unwrap();
        let err = pollster::block_on(wrapper.on_decrypt(
            &DecryptionMaterials::new(SUITE, context()),
            m.encrypted_data_keys(),
        ))
        .unwrap_err();
        assert!(
            matches!(err.reason, KeyringFailure::Unsupported(_)),
            "{err}"
        );
        let d = pollster::block_on(unwrapper.on_decrypt(
            &DecryptionMaterials::new(SUITE, context()),
            m.encrypted_data_keys(),
        ))
        .unwrap();
        assert_eq!(
            d.data_key().unwrap().as_bytes(),
            m.data_key().unwrap().as_bytes()
        );
    }

    // A public key that is not the private key's partner is refused at construction.
    let mut n = public.n_bytes().to_vec();
    let i = n.len() - 2;
    n[i] ^= 0x01;
    let other = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&public.e_bytes()),
    )
    .unwrap();
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1)
            .private_key_label(&env.rsa_label)
            .public_key_pem(other.to_public_key_pem(LineEnding::LF).unwrap()),
    )
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::KeyPairMismatch { .. }), "{err}");

    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1).public_key_pem("not a pem"),
    )
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::PublicKey(_)), "{err}");
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("hsm-rsa", "rsa-key", RsaPadding::OaepSha1),
    )
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::Config(_)), "{err}");
}

#[test]
fn tampered_or_mispadded_edks_fail_as_unwrap_failures() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let oaep = keyring(&token, &env.rsa_label, RsaPadding::OaepSha1);
    let pkcs1 = keyring(&token, &env.rsa_label, RsaPadding::Pkcs1v15);
    let decrypt = |k: &HsmRsaKeyring, edks: &[EncryptedDataKey]| {
        pollster::block_on(k.on_decrypt(&DecryptionMaterials::new(SUITE, context()), edks))
    };
    for k in [&oaep, &pkcs1] {
        let m =
            pollster::block_on(k.on_encrypt(&EncryptionMaterials::new(SUITE, context()))).unwrap();
        let edks = m.encrypted_data_keys().to_vec();
        for position in [0, 100, 255] {
            let mut tampered = edks.clone();
            tampered[0].ciphertext[position] ^= 0x10;
            let err = decrypt(k, &tampered).unwrap_err();
            assert!(
                matches!(err.reason, KeyringFailure::UnwrapFailed(_)),
                "{k:?} byte {position}: {err}"
            );
        }
        let mut short = edks.clone();
        short[0].ciphertext.truncate(255);
        let err = decrypt(k, &short).unwrap_err();
        assert!(err.to_string().contains("the RSA modulus is 256"), "{err}");
        let mut renamed = edks.clone();
        renamed[0].provider_info = b"other-key".to_vec();
        assert!(matches!(
            decrypt(k, &renamed).unwrap_err().reason,
            KeyringFailure::NoMatchingKey(1)
        ));
        assert!(decrypt(k, &edks).is_ok());
    }
    // OAEP ciphertext under the PKCS#1 keyring (same namespace and name) does not unwrap.
    let m =
        pollster::block_on(oaep.on_encrypt(&EncryptionMaterials::new(SUITE, context()))).unwrap();
    let err = decrypt(&pkcs1, m.encrypted_data_keys()).unwrap_err();
    assert!(
        matches!(err.reason, KeyringFailure::UnwrapFailed(_)),
        "{err}"
    );
}

#[test]
fn pkcs1_failures_read_the_same_whether_padding_or_length_is_wrong() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let public = env.rsa_private_key().to_public_key();
    let pkcs1 = keyring(&token, &env.rsa_label, RsaPadding::Pkcs1v15);
    let oaep = keyring(&token, &env.rsa_label, RsaPadding::OaepSha1);
    let decrypt = |k: &HsmRsaKeyring, ciphertext: Vec<u8>| {
        let edk = EncryptedDataKey::new("hsm-rsa", b"rsa-key".to_vec(), ciphertext);
        let err =
            pollster::block_on(k.on_decrypt(&DecryptionMaterials::new(SUITE, context()), &[edk]))
                .unwrap_err();
        assert!(
            matches!(err.reason, KeyringFailure::UnwrapFailed(_)),
            "{err}"
        );
        err.to_string()
    };
    // Good PKCS#1 v1.5 padding around a 16-byte payload: the suite needs 32 bytes.
    let wrong_length = decrypt(
        &pkcs1,
        software_encrypt(&public, RsaPadding::Pkcs1v15, &[0x42; 16]),
    );
    // Ciphertext 1 decrypts to the integer 1: no 00 02 prefix, bad padding for certain.
    let mut one = vec![0u8; 256];
    one[255] = 1;
    let bad_padding = decrypt(&pkcs1, one.clone());
    // OAEP output is (almost surely) not PKCS#1 v1.5-padded either.
    let other_padding = decrypt(
        &pkcs1,
        software_encrypt(&public, RsaPadding::OaepSha1, &[0x42; 32]),
    );
    assert_eq!(wrong_length, bad_padding);
    assert_eq!(wrong_length, other_padding);
    for message in [&wrong_length, &bad_padding] {
        assert!(!message.contains("CKR_"), "{message}");
        assert!(!message.contains("16 bytes"), "{message}");
    }
    // OAEP is not an oracle this way and keeps the detail.
    let oaep_wrong_length = decrypt(
        &oaep,
        software_encrypt(&public, RsaPadding::OaepSha1, &[0x42; 16]),
    );
    assert!(
        oaep_wrong_length.contains("unwrapped to 16 bytes, expected 32"),
        "{oaep_wrong_length}"
    );
    let oaep_bad = decrypt(&oaep, one);
    assert!(oaep_bad.contains("token said: "), "{oaep_bad}");
}

/// Generate an RSA key pair of `bits` bits in the token as session objects (gone when the
/// returned session closes), both objects labelled `label`; returns the public key.
fn generate_session_key_pair(
    token: &Pkcs11Token,
    label: &str,
    bits: u64,
) -> (Session, rsa::PublicKey) {
    let session = token.context().open_rw_session(token.slot()).unwrap();
    let label = label.as_bytes().to_vec();
    let (public, _private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::Label(label.clone()),
                Attribute::ModulusBits(bits.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Label(label),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap_or_else(|e| panic!("generating an RSA-{bits} key pair in the token: {e}"));
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for attr in session
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap()
    {
        match attr {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    assert_eq!(
        u64::try_from(n.len() * 8).unwrap(),
        bits,
        "modulus of the generated key"
    );
    // `rsa::PublicKey::new` refuses moduli under 1024 bits; this one only describes the key.
    let public = rsa::PublicKey::new_unchecked(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    );
    (session, public)
}

fn expect_too_small(
    result: Result<HsmRsaKeyring, Pkcs11Error>,
    token: &str,
    key: &str,
    bits: usize,
    padding: RsaPadding,
    max: usize,
) {
    match result {
        Err(
            ref e @ Pkcs11Error::KeyTooSmall {
                token: ref t,
                key: ref k,
                bits: b,
                padding: p,
                max: m,
            },
        ) => {
            assert_eq!(
                (t.as_str(), k.as_str(), b, p, m),
                (token, key, bits, padding, max),
                "{e}"
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "RSA key {key:?} in token {token:?} has {bits} bits: with {} it can wrap at \
                     most {max} bytes, but data keys can be 32 bytes; use a larger key or \
                     another padding",
                    padding.mechanism_name()
                )
            );
        }
        other => panic!("{key} with {padding:?}: expected KeyTooSmall, got {other:?}"),
    }
}

#[test]
fn keys_too_small_for_the_padding_are_refused_at_construction() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    assert_eq!(MAX_DATA_KEY_LEN, 32);
    let new = |config: RsaKeyConfig| HsmRsaKeyring::new(&token, config);

    // RSA-512 with OAEP-SHA-1: 64 - 42 = 22 bytes < 32. Refused whether the key comes as the
    // private key object (with its public object), or as the public key object alone.
    let (_s512, _) = generate_session_key_pair(&token, "rsa-512-too-small", 512);
    assert_eq!(RsaPadding::OaepSha1.max_plaintext_len(64), Some(22));
    expect_too_small(
        new(RsaKeyConfig::new("hsm-rsa", "small", RsaPadding::OaepSha1)
            .private_key_label("rsa-512-too-small")),
        &env.token,
        "rsa-512-too-small",
        512,
        RsaPadding::OaepSha1,
        22,
    );
    expect_too_small(
        new(RsaKeyConfig::new("hsm-rsa", "small", RsaPadding::OaepSha1)
            .public_key_label("rsa-512-too-small", None)),
        &env.token,
        "rsa-512-too-small",
        512,
        RsaPadding::OaepSha1,
        22,
    );
    // PKCS#1 v1.5 could carry 53 bytes in it, so it is not KeyTooSmall; the `rsa` crate that
    // wraps refuses moduli under 1024 bits.
    let err = new(RsaKeyConfig::new("hsm-rsa", "small", RsaPadding::Pkcs1v15)
        .private_key_label("rsa-512-too-small"))
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::PublicKey(_)), "{err}");

    // RSA-1024: OAEP-SHA-384 leaves 30 bytes, OAEP-SHA-512 none. Refused before the token is
    // asked (SoftHSM2 2.6 would otherwise report the SHA-2 OAEP as unsupported), also when
    // the only key is an X.509 public key given in software.
    let (_s1024, public1024) = generate_session_key_pair(&token, "rsa-1024-small", 1024);
    expect_too_small(
        new(
            RsaKeyConfig::new("hsm-rsa", "small", RsaPadding::OaepSha384)
                .private_key_label("rsa-1024-small"),
        ),
        &env.token,
        "rsa-1024-small",
        1024,
        RsaPadding::OaepSha384,
        30,
    );
    let pem = public1024.to_public_key_pem(LineEnding::LF).unwrap();
    expect_too_small(
        new(RsaKeyConfig::new("hsm-rsa", "small", RsaPadding::OaepSha512).public_key_pem(pem)),
        &env.token,
        "(public key given as X.509)",
        1024,
        RsaPadding::OaepSha512,
        0,
    );

    // Controls: the same RSA-1024 key with OAEP-SHA-1 (86 bytes) and the token's RSA-2048 key
    // (214 bytes) are accepted and round-trip.
    for (label, padding) in [
        ("rsa-1024-small", RsaPadding::OaepSha1),
        (env.rsa_label.as_str(), RsaPadding::OaepSha1),
        (env.rsa_label.as_str(), RsaPadding::Pkcs1v15),
    ] {
        let k = keyring(&token, label, padding);
        let m =
            pollster::block_on(k.on_encrypt(&EncryptionMaterials::new(SUITE, context()))).unwrap();
        let d = pollster::block_on(k.on_decrypt(
            &DecryptionMaterials::new(SUITE, context()),
            m.encrypted_data_keys(),
        ))
        .unwrap();
        assert_eq!(
            d.data_key().unwrap().as_bytes(),
            m.data_key().unwrap().as_bytes(),
            "{label} {padding:?}"
        );
    }
}
