//! Login, in a process of its own: PKCS#11 login state belongs to the process, so these
//! checks need a process that is not logged in yet. One test function, run in order.

mod common;

use esdk_core::{
    AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring,
    KeyringFailure,
};
use keyring_pkcs11_hsm::{
    AesKeyConfig, HsmAesKeyring, Pin, PinSource, Pkcs11Error, Pkcs11Token, TokenSelector,
};

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

#[test]
fn wrong_pin_login_once_and_a_wrong_pin_surfacing_at_relogin() {
    let Some(env) = common::env() else { return };
    let wrong = |env: &common::Env| {
        keyring_pkcs11_hsm::Pkcs11Config::new(
            &env.module,
            TokenSelector::Label(env.token.clone()),
            PinSource::Secret(Pin::new(format!("{}0", env.pin))),
        )
    };

    // 1. Nobody in this process is logged in: the token checks the PIN.
    match Pkcs11Token::open(wrong(&env)) {
        Err(Pkcs11Error::WrongPin { token }) => assert_eq!(token, env.token),
        other => panic!("expected WrongPin, got {other:?}"),
    }

    // 2. The right PIN: one login, however many sessions and operations follow.
    let token = env.token(3);
    assert_eq!(token.stats().logins, 1);
    let keyring =
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k", &env.aes_label)).unwrap();
    let ctx = EncryptionContext::new();
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..30 {
                    let m = pollster::block_on(
                        keyring.on_encrypt(&EncryptionMaterials::new(SUITE, ctx.clone())),
                    )
                    .unwrap();
                    pollster::block_on(keyring.on_decrypt(
                        &DecryptionMaterials::new(SUITE, ctx.clone()),
                        m.encrypted_data_keys(),
                    ))
                    .unwrap();
                }
            });
        }
    });
    let stats = token.stats();
    assert_eq!(stats.logins, 1, "{stats:?}");
    assert!(
        stats.opened_total >= 2,
        "several sessions were used: {stats:?}"
    );

    // 3. While the process is logged in, the token does not check a second handle's PIN
    //    (PKCS#11 semantics). When the login is then lost, that handle has to log in itself,
    //    and the wrong PIN surfaces as a typed error inside the keyring error.
    let impostor = Pkcs11Token::open(wrong(&env)).expect("logged-in process: no PIN check");
    let impostor_keyring =
        HsmAesKeyring::new(&impostor, AesKeyConfig::new("hsm", "k", &env.aes_label)).unwrap();
    let side = token.context().open_ro_session(token.slot()).unwrap();
    side.logout().unwrap();
    drop(side);
    let err = pollster::block_on(
        impostor_keyring.on_encrypt(&EncryptionMaterials::new(SUITE, ctx.clone())),
    )
    .unwrap_err();
    assert!(matches!(err.reason, KeyringFailure::Backend(_)), "{err}");
    assert!(
        matches!(
            Pkcs11Error::from_keyring_error(&err),
            Some(Pkcs11Error::WrongPin { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("PKCS#11 AES keyring"),
        "names the keyring: {err}"
    );

    // 4. The handle with the right PIN logs in again and carries on.
    let m = pollster::block_on(keyring.on_encrypt(&EncryptionMaterials::new(SUITE, ctx.clone())))
        .unwrap();
    pollster::block_on(keyring.on_decrypt(
        &DecryptionMaterials::new(SUITE, ctx),
        m.encrypted_data_keys(),
    ))
    .unwrap();
    assert_eq!(token.stats().logins, 2, "{:?}", token.stats());
}
