//! Encrypt and decrypt with wrapping keys that never leave a PKCS#11 token.
//!
//! Needs a token with an AES key and (optionally) an RSA key pair. The quickest way is a
//! throw-away SoftHSM2 token:
//!
//! ```text
//! cargo xtask softhsm -- cargo run -p esdk --features pkcs11 --example pkcs11
//! ```
//!
//! which sets `ESDK_PKCS11_MODULE`, `ESDK_PKCS11_TOKEN`, `ESDK_PKCS11_PIN`,
//! `ESDK_PKCS11_AES_LABEL` and `ESDK_PKCS11_RSA_LABEL` (see the `keyring-pkcs11-hsm` crate
//! docs for setting a token up by hand).

use esdk::pkcs11::{
    AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, Pkcs11Config, Pkcs11Token, RsaKeyConfig, RsaPadding,
};
use esdk::{Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource};

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set; run: cargo xtask softhsm -- cargo run -p esdk --features pkcs11 --example pkcs11"
        )
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The PIN is read from the environment variable when the token is opened; it is never
    // printed (the configuration's Debug shows the variable's name only).
    let config = Pkcs11Config::with_label_and_pin_env(
        var("ESDK_PKCS11_MODULE")?,
        var("ESDK_PKCS11_TOKEN")?,
        "ESDK_PKCS11_PIN",
    )
    .max_sessions(4);
    println!("opening {config:?}");
    let token = Pkcs11Token::open_async(config).await?;

    // AES mode: EDKs in the raw AES format, readable by a raw AES keyring with the same
    // key bytes under namespace "example" and name "aes-key".
    let aes = HsmAesKeyring::new_async(
        &token,
        AesKeyConfig::new("example", "aes-key", var("ESDK_PKCS11_AES_LABEL")?),
    )
    .await?;
    println!("AES keyring: {aes:?}");

    let client = Client::new();
    let context: EncryptionContext = [("purpose".to_string(), "example".to_string())].into();
    let source = MaterialsSource::keyring(aes);
    let sealed = client
        .encrypt(
            &source,
            b"kept under a key in the HSM",
            &EncryptOptions::default().with_encryption_context(context.clone()),
        )
        .await?;
    let edk = &sealed.header.encrypted_data_keys[0];
    println!(
        "message: {} bytes, EDK provider id {:?}, wrapped key {} bytes",
        sealed.ciphertext.len(),
        edk.provider_id,
        edk.ciphertext.len()
    );
    let opened = client
        .decrypt(
            &source,
            &sealed.ciphertext,
            &DecryptOptions::default().with_reproduced_encryption_context(context),
        )
        .await?;
    println!("AES mode: {}", String::from_utf8_lossy(&opened.plaintext));

    // RSA mode, if the token holds a key pair: unwrap in the token, wrap in software.
    if let Ok(label) = var("ESDK_PKCS11_RSA_LABEL") {
        let rsa = HsmRsaKeyring::new_async(
            &token,
            RsaKeyConfig::new("example", "rsa-key", RsaPadding::OaepSha1).private_key_label(label),
        )
        .await?;
        let source = MaterialsSource::keyring(rsa);
        let sealed = client
            .encrypt(&source, b"and under an RSA key", &EncryptOptions::default())
            .await?;
        let opened = client
            .decrypt(&source, &sealed.ciphertext, &DecryptOptions::default())
            .await?;
        println!("RSA mode: {}", String::from_utf8_lossy(&opened.plaintext));
    }
    println!("sessions: {:?}", token.stats());
    Ok(())
}
