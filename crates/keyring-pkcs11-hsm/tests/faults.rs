//! Configuration faults, each with its typed error: module, token, slot, PIN source, key
//! label, key type, key id, reserved namespace.

mod common;

use keyring_pkcs11_hsm::{
    AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, Pin, PinSource, Pkcs11Config, Pkcs11Error,
    Pkcs11Token, RsaKeyConfig, RsaPadding, TokenSelector,
};

fn open_err(config: Pkcs11Config) -> Pkcs11Error {
    match Pkcs11Token::open(config) {
        Ok(token) => panic!("expected an error, opened {token:?}"),
        Err(e) => e,
    }
}

#[test]
fn module_faults() {
    let Some(env) = common::env() else { return };
    let pin = || PinSource::Secret(Pin::new(env.pin.clone()));
    let label = || TokenSelector::Label(env.token.clone());

    let err = open_err(Pkcs11Config::new(
        "/nonexistent/libnothing.so",
        label(),
        pin(),
    ));
    assert!(
        matches!(&err, Pkcs11Error::ModuleNotFound { path } if path.ends_with("libnothing.so")),
        "{err}"
    );

    // A file that is not a shared library.
    let err = open_err(Pkcs11Config::new(&env.rsa_pem, label(), pin()));
    assert!(matches!(err, Pkcs11Error::ModuleLoad { .. }), "{err}");
    assert!(
        err.to_string().contains(&env.rsa_pem.display().to_string()),
        "{err}"
    );
}

#[test]
fn token_and_slot_faults_and_selection_by_slot() {
    let Some(env) = common::env() else { return };
    let err = open_err(Pkcs11Config::new(
        &env.module,
        TokenSelector::Label("no-such-token".into()),
        PinSource::Secret(Pin::new(env.pin.clone())),
    ));
    match &err {
        Pkcs11Error::TokenNotFound { label, available } => {
            assert_eq!(label, "no-such-token");
            assert!(available.contains(&env.token), "{available:?}");
        }
        other => panic!("{other:?}"),
    }

    let token = env.token(1);
    let by_slot = Pkcs11Token::open(Pkcs11Config::new(
        &env.module,
        TokenSelector::Slot(token.slot_id()),
        PinSource::Secret(Pin::new(env.pin.clone())),
    ))
    .unwrap();
    assert_eq!(by_slot.label(), env.token);

    let missing_slot = token.slot_id().wrapping_add(12345);
    let err = open_err(Pkcs11Config::new(
        &env.module,
        TokenSelector::Slot(missing_slot),
        PinSource::Secret(Pin::new(env.pin.clone())),
    ));
    assert!(
        matches!(err, Pkcs11Error::SlotNotFound { slot } if slot == missing_slot),
        "{err}"
    );
}

#[test]
fn pin_sources_and_pool_size() {
    let Some(env) = common::env() else { return };
    let var = "ESDK_PKCS11_TEST_VARIABLE_THAT_IS_NEVER_SET";
    let err = open_err(Pkcs11Config::with_label_and_pin_env(
        &env.module,
        &env.token,
        var,
    ));
    assert!(
        matches!(&err, Pkcs11Error::PinEnvVarMissing { var: v } if v == var),
        "{err}"
    );
    // The set-up exports the PIN as ESDK_PKCS11_PIN.
    let token = Pkcs11Token::open(Pkcs11Config::with_label_and_pin_env(
        &env.module,
        &env.token,
        "ESDK_PKCS11_PIN",
    ))
    .unwrap();
    assert_eq!(token.label(), env.token);
    let err = open_err(env.config().max_sessions(0));
    assert!(matches!(err, Pkcs11Error::Config(_)), "{err}");
}

#[test]
fn key_faults() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);

    let err = HsmAesKeyring::new(&token, AesKeyConfig::new("ns", "n", "no-such-key")).unwrap_err();
    match &err {
        Pkcs11Error::KeyNotFound {
            label, class, id, ..
        } => {
            assert_eq!(label, "no-such-key");
            assert_eq!(*class, "AES secret key");
            assert!(id.is_none());
        }
        other => panic!("{other:?}"),
    }

    // The label exists, the id does not match; then the right id.
    let err = HsmAesKeyring::new(
        &token,
        AesKeyConfig::new("ns", "n", &env.aes_label).key_id(vec![0xde, 0xad]),
    )
    .unwrap_err();
    assert!(
        matches!(err, Pkcs11Error::KeyNotFound { id: Some(_), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("with id dead"), "{err}");
    HsmAesKeyring::new(
        &token,
        AesKeyConfig::new("ns", "n", &env.aes_label).key_id(vec![0xa2, 0x56]),
    )
    .unwrap();

    // An RSA label given as the AES key, and an AES label as the RSA key.
    let err = HsmAesKeyring::new(&token, AesKeyConfig::new("ns", "n", &env.rsa_label)).unwrap_err();
    match &err {
        Pkcs11Error::KeyWrongType {
            expected, found, ..
        } => {
            assert_eq!(*expected, "AES secret key");
            assert!(found.contains("RSA"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("ns", "n", RsaPadding::OaepSha1).private_key_label(&env.aes_label),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyWrongType {
                expected: "RSA private key",
                ..
            }
        ),
        "{err}"
    );
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("ns", "n", RsaPadding::OaepSha1).private_key_label("no-such-rsa"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyNotFound {
                class: "RSA private key",
                ..
            }
        ),
        "{err}"
    );
    // An explicitly named public key must exist.
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("ns", "n", RsaPadding::OaepSha1).public_key_label("no-such-public", None),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Pkcs11Error::KeyNotFound {
                class: "RSA public key",
                ..
            }
        ),
        "{err}"
    );

    // Reserved namespace.
    let err = HsmAesKeyring::new(
        &token,
        AesKeyConfig::new("aws-kms-mine", "n", &env.aes_label),
    )
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::Config(_)), "{err}");
    let err = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("aws-kms", "n", RsaPadding::OaepSha1).private_key_label(&env.rsa_label),
    )
    .unwrap_err();
    assert!(matches!(err, Pkcs11Error::Config(_)), "{err}");
}
