//! Sessions that die under the keyring, in a process of its own (these faults hit every
//! session of the process): a lost login, sessions the token no longer knows (module
//! re-initialized by someone else), and a module finalized behind the keyring's back. Each
//! time the next operation recovers by itself.

mod common;

use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, RsaKeyConfig, RsaPadding};

#[test]
fn recovers_from_lost_login_closed_sessions_and_finalized_module() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let aes = MaterialsSource::keyring(
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap(),
    );
    let rsa = MaterialsSource::keyring(
        HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new("hsm-rsa", "rsa", RsaPadding::OaepSha1)
                .private_key_label(&env.rsa_label),
        )
        .unwrap(),
    );
    let client = Client::new();
    let round_trip = |label: &str| {
        for source in [&aes, &rsa] {
            let sealed = client
                .encrypt_blocking(source, label.as_bytes(), &EncryptOptions::default())
                .unwrap_or_else(|e| panic!("{label}: encrypt: {e}"));
            let opened = client
                .decrypt_blocking(source, &sealed.ciphertext, &DecryptOptions::default())
                .unwrap_or_else(|e| panic!("{label}: decrypt: {e}"));
            assert_eq!(opened.plaintext, label.as_bytes());
        }
    };
    // Fill the pool: two sessions in use at once.
    std::thread::scope(|s| {
        s.spawn(|| round_trip("warm-up a"));
        s.spawn(|| round_trip("warm-up b"));
    });
    let before = token.stats();
    assert_eq!(before.logins, 1, "{before:?}");

    // 1. Someone logs the process out (C_Logout on any session logs out all of them).
    let side = token.context().open_ro_session(token.slot()).unwrap();
    side.logout().unwrap();
    drop(side);
    round_trip("after logout");
    let stats = token.stats();
    assert_eq!(stats.logins, 2, "logged in again: {stats:?}");

    // 2. The module is finalized and initialized again by someone else: every session handle
    //    the pool holds is unknown to the token (CKR_SESSION_HANDLE_INVALID).
    let opened_before = token.stats().opened_total;
    token.context().clone().finalize().unwrap();
    token
        .context()
        .initialize(keyring_pkcs11_hsm::cryptoki::context::CInitializeArgs::new(
            keyring_pkcs11_hsm::cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
        ))
        .unwrap();
    round_trip("after the sessions were closed");
    let stats = token.stats();
    assert!(
        stats.opened_total > opened_before,
        "new sessions: {stats:?}"
    );
    assert_eq!(stats.logins, 3, "{stats:?}");
    assert!(stats.open <= 2, "{stats:?}");

    // 3. The module is finalized and left so: the keyring initializes it again.
    let opened_before = token.stats().opened_total;
    token.context().clone().finalize().unwrap();
    round_trip("after finalize");
    let stats = token.stats();
    assert!(stats.opened_total > opened_before, "{stats:?}");
    assert_eq!(stats.logins, 4, "{stats:?}");
    assert!(stats.open <= 2, "{stats:?}");
}
