//! Encrypt and decrypt with a raw AES keyring, printing what happened.
//!
//! Run with `cargo run --example quickstart`.

use esdk::raw_aes::RawAesKeyring;
use esdk::{Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A 256-bit wrapping key. In production it comes from a secret store or an HSM.
    let wrapping_key: [u8; 32] = esdk::crypto::random_bytes()?;
    let keyring = RawAesKeyring::new("quickstart", "demo-key", &wrapping_key)?;
    let source = MaterialsSource::keyring(keyring);

    // The encryption context is authenticated, not secret: say what the data is.
    let context: EncryptionContext = [
        ("purpose".to_string(), "quickstart".to_string()),
        ("tenant".to_string(), "example-corp".to_string()),
    ]
    .into();

    let client = Client::new();
    let plaintext = b"The quick brown fox jumps over the lazy dog.";
    let sealed = client.encrypt_blocking(
        &source,
        plaintext,
        &EncryptOptions::default().with_encryption_context(context.clone()),
    )?;
    println!(
        "encrypted {} bytes into a {}-byte message with suite {} ({} encrypted data key, frame length {})",
        plaintext.len(),
        sealed.ciphertext.len(),
        sealed.suite,
        sealed.header.encrypted_data_keys.len(),
        sealed.header.frame_length,
    );
    println!(
        "stored encryption context keys: {:?}",
        sealed.header.encryption_context.keys().collect::<Vec<_>>()
    );

    let opened = client.decrypt_blocking(
        &source,
        &sealed.ciphertext,
        &DecryptOptions::default().with_reproduced_encryption_context(context),
    )?;
    assert_eq!(opened.plaintext, plaintext);
    println!("decrypted: {}", String::from_utf8_lossy(&opened.plaintext));

    // Tampering with any byte makes decryption fail with a typed error.
    let mut tampered = sealed.ciphertext.clone();
    let last = tampered.len() - 120;
    tampered[last] ^= 1;
    match client.decrypt_blocking(&source, &tampered, &DecryptOptions::default()) {
        Ok(_) => return Err("tampered message decrypted".into()),
        Err(e) => println!("tampered message rejected: {e}"),
    }
    Ok(())
}
