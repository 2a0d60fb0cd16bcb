//! RSA mode against `keyring-raw-rsa`: the raw RSA keyring holding the token's private key
//! (from the PEM the set-up imported) reads whole messages the HSM RSA keyring wrote, and the
//! HSM keyring reads the raw keyring's, with OAEP-SHA1 and with PKCS#1 v1.5. The EDKs are the
//! same wire format (DIGEST 5.2), so this is what lets a key leave an HSM, or move into one,
//! without re-encrypting stored messages.

mod common;

use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource,
};
use keyring_pkcs11_hsm::{HsmRsaKeyring, RsaKeyConfig, RsaPadding};
use keyring_raw_rsa::{Padding, RawRsaKeyring, RsaPrivateKey, RsaPublicKey};

const NAMESPACE: &str = "shared-rsa";
const NAME: &str = "rsa-2048";

fn context() -> EncryptionContext {
    [
        ("app".to_string(), "rsa interchange".to_string()),
        ("tenant".to_string(), "a\u{10d}me".to_string()),
    ]
    .into_iter()
    .collect()
}

fn encrypt_options(suite: AlgorithmSuite) -> EncryptOptions {
    EncryptOptions::default()
        .with_encryption_context(context())
        .with_suite(suite)
}

fn decrypt_options() -> DecryptOptions {
    DecryptOptions::default().with_reproduced_encryption_context(context())
}

#[test]
fn raw_rsa_keyring_with_the_same_key_reads_hsm_messages_and_the_reverse() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let pem = std::fs::read_to_string(&env.rsa_pem).expect("read the RSA PEM");
    let private = RsaPrivateKey::from_pem(&pem).expect("the set-up's PEM parses");
    let client = Client::new();
    let plaintext = b"moved between an HSM and process memory".repeat(100);

    for (hsm_padding, raw_padding, suite) in [
        (
            RsaPadding::OaepSha1,
            Padding::OaepSha1,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ),
        (
            RsaPadding::Pkcs1v15,
            Padding::Pkcs1V15,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        ),
    ] {
        let hsm = MaterialsSource::keyring(
            HsmRsaKeyring::new(
                &token,
                RsaKeyConfig::new(NAMESPACE, NAME, hsm_padding).private_key_label(&env.rsa_label),
            )
            .unwrap_or_else(|e| panic!("{hsm_padding:?}: {e}")),
        );
        let raw = MaterialsSource::keyring(
            RawRsaKeyring::with_key_pair(NAMESPACE, NAME, raw_padding, private.clone()).unwrap(),
        );

        // HSM -> raw RSA keyring.
        let from_hsm = client
            .encrypt_blocking(&hsm, &plaintext, &encrypt_options(suite))
            .unwrap();
        let edk = &from_hsm.header.encrypted_data_keys[0];
        assert_eq!(edk.provider_id, NAMESPACE);
        assert_eq!(edk.provider_info, NAME.as_bytes());
        assert_eq!(
            edk.ciphertext.len(),
            256,
            "{hsm_padding:?}: RSA-2048 output"
        );
        let opened = client
            .decrypt_blocking(&raw, &from_hsm.ciphertext, &decrypt_options())
            .unwrap_or_else(|e| panic!("{raw_padding:?}: raw RSA reads the HSM message: {e}"));
        assert_eq!(opened.plaintext, plaintext);
        assert_eq!(opened.suite, suite);

        // Raw RSA keyring -> HSM.
        let from_raw = client
            .encrypt_blocking(&raw, &plaintext, &encrypt_options(suite))
            .unwrap();
        let opened = client
            .decrypt_blocking(&hsm, &from_raw.ciphertext, &decrypt_options())
            .unwrap_or_else(|e| panic!("{hsm_padding:?}: the HSM reads the raw message: {e}"));
        assert_eq!(opened.plaintext, plaintext);

        // An encrypt-only raw keyring (public key only) feeds the token too.
        let public_only = MaterialsSource::keyring(
            RawRsaKeyring::encrypt_only(NAMESPACE, NAME, raw_padding, private.public_key())
                .unwrap(),
        );
        let sealed = client
            .encrypt_blocking(&public_only, b"public key only", &encrypt_options(suite))
            .unwrap();
        let opened = client
            .decrypt_blocking(&hsm, &sealed.ciphertext, &decrypt_options())
            .unwrap();
        assert_eq!(opened.plaintext, b"public key only");
    }
}

#[test]
fn the_other_padding_or_another_key_does_not_read_them() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let pem = std::fs::read_to_string(&env.rsa_pem).expect("read the RSA PEM");
    let private = RsaPrivateKey::from_pem(&pem).expect("the set-up's PEM parses");
    let client = Client::new();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

    let hsm_oaep = MaterialsSource::keyring(
        HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new(NAMESPACE, NAME, RsaPadding::OaepSha1)
                .private_key_label(&env.rsa_label),
        )
        .unwrap(),
    );
    let hsm_pkcs1 = MaterialsSource::keyring(
        HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new(NAMESPACE, NAME, RsaPadding::Pkcs1v15)
                .private_key_label(&env.rsa_label),
        )
        .unwrap(),
    );
    let raw = |padding| {
        MaterialsSource::keyring(
            RawRsaKeyring::with_key_pair(NAMESPACE, NAME, padding, private.clone()).unwrap(),
        )
    };

    // Same key, other padding: neither side unwraps (same namespace and name, so the keyring
    // does try, and the padding check fails).
    let from_hsm = client
        .encrypt_blocking(&hsm_oaep, b"oaep", &encrypt_options(suite))
        .unwrap();
    assert!(client
        .decrypt_blocking(
            &raw(Padding::Pkcs1V15),
            &from_hsm.ciphertext,
            &decrypt_options()
        )
        .is_err());
    let from_raw = client
        .encrypt_blocking(&raw(Padding::OaepSha1), b"oaep", &encrypt_options(suite))
        .unwrap();
    assert!(client
        .decrypt_blocking(&hsm_pkcs1, &from_raw.ciphertext, &decrypt_options())
        .is_err());
    // And with matching paddings both read (so the failures above are the padding's).
    assert!(client
        .decrypt_blocking(
            &raw(Padding::OaepSha1),
            &from_hsm.ciphertext,
            &decrypt_options()
        )
        .is_ok());
    assert!(client
        .decrypt_blocking(&hsm_oaep, &from_raw.ciphertext, &decrypt_options())
        .is_ok());

    // A message for another public key (the token's key with its modulus changed is no
    // longer its key) does not unwrap in the token.
    let der = {
        use rsa::pkcs8::EncodePublicKey;
        use rsa::traits::PublicKeyParts;
        let public = env.rsa_private_key().to_public_key();
        let mut n = public.n_bytes().to_vec();
        let i = n.len() - 1;
        n[i] ^= 0x02; // stays odd
        let other = rsa::PublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(&n),
            rsa::BoxedUint::from_be_slice_vartime(&public.e_bytes()),
        )
        .unwrap();
        other.to_public_key_der().unwrap().as_bytes().to_vec()
    };
    let stranger = MaterialsSource::keyring(
        RawRsaKeyring::encrypt_only(
            NAMESPACE,
            NAME,
            Padding::OaepSha1,
            RsaPublicKey::from_der(&der).unwrap(),
        )
        .unwrap(),
    );
    let sealed = client
        .encrypt_blocking(&stranger, b"someone else's", &encrypt_options(suite))
        .unwrap();
    assert!(client
        .decrypt_blocking(&hsm_oaep, &sealed.ciphertext, &decrypt_options())
        .is_err());
}
