//! Shared by the SoftHSM2-backed tests: where the token is, and the known key material.
//!
//! `cargo xtask softhsm -- cargo test -p keyring-pkcs11-hsm` (or the lead's `cargo xtask
//! test`) creates the token and sets the variables read here.

#![allow(dead_code)] // each test binary uses a different part

use keyring_pkcs11_hsm::{Pin, PinSource, Pkcs11Config, Pkcs11Token, TokenSelector};
use std::io::Write as _;
use std::path::PathBuf;

/// The token and key material the set-up created.
pub struct Env {
    pub module: PathBuf,
    pub token: String,
    pub pin: String,
    pub aes_label: String,
    pub aes_key: Vec<u8>,
    pub aes128_label: String,
    pub aes128_key: Vec<u8>,
    pub rsa_label: String,
    pub rsa_pem: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set although ESDK_PKCS11_MODULE is: run the tests through `cargo xtask softhsm -- ...`")
    })
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex key bytes"))
        .collect()
}

/// Whether this is a CI run: `CI` is set to something other than empty, `false` or `0` (the
/// rule every test crate of the workspace uses).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The SoftHSM2 environment; `None` (after a loud message) when it is absent outside CI.
/// In CI (see [`ci`]), an absent environment fails the test.
pub fn env() -> Option<Env> {
    let Ok(module) = std::env::var("ESDK_PKCS11_MODULE") else {
        if ci() {
            panic!(
                "CI is set but ESDK_PKCS11_MODULE is not: the PKCS#11 tests need SoftHSM2; run \
                 them with `cargo xtask softhsm -- cargo test -p keyring-pkcs11-hsm` (or `cargo xtask test`)"
            );
        }
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!! SKIP: ESDK_PKCS11_MODULE is not set, so this PKCS#11 test did NOT run.\n\
             !!!!!! Run: cargo xtask softhsm -- cargo test -p keyring-pkcs11-hsm\n"
        );
        return None;
    };
    Some(Env {
        module: PathBuf::from(module),
        token: var("ESDK_PKCS11_TOKEN"),
        pin: var("ESDK_PKCS11_PIN"),
        aes_label: var("ESDK_PKCS11_AES_LABEL"),
        aes_key: unhex(&var("ESDK_PKCS11_AES_KEY_HEX")),
        aes128_label: var("ESDK_PKCS11_AES128_LABEL"),
        aes128_key: unhex(&var("ESDK_PKCS11_AES128_KEY_HEX")),
        rsa_label: var("ESDK_PKCS11_RSA_LABEL"),
        rsa_pem: PathBuf::from(var("ESDK_PKCS11_RSA_KEY_PEM")),
    })
}

impl Env {
    /// A configuration for the test token with the PIN as a secret string.
    pub fn config(&self) -> Pkcs11Config {
        Pkcs11Config::new(
            &self.module,
            TokenSelector::Label(self.token.clone()),
            PinSource::Secret(Pin::new(self.pin.clone())),
        )
    }

    /// The test token with at most `max_sessions` sessions.
    pub fn token(&self, max_sessions: usize) -> Pkcs11Token {
        Pkcs11Token::open(self.config().max_sessions(max_sessions))
            .expect("open the SoftHSM2 test token")
    }

    /// The known RSA private key, parsed in software.
    pub fn rsa_private_key(&self) -> rsa::PrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(&self.rsa_pem).expect("read the RSA PEM");
        rsa::PrivateKey::from_pkcs8_pem(&pem).expect("parse the RSA PEM")
    }
}
