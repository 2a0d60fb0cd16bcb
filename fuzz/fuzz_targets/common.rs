//! What the decrypting fuzz targets share: the raw AES keyring `cargo xtask fuzz` seeds the
//! corpus with, and a client that accepts every suite and at most 16 EDKs.

use esdk::raw_aes::RawAesKeyring;
use esdk::{Client, CommitmentPolicy, MaterialsSource};
use std::sync::OnceLock;

/// The keyring of the seed corpus (namespace "fuzz", key "key", 32 bytes of 0x17).
pub fn source() -> &'static MaterialsSource {
    static SOURCE: OnceLock<MaterialsSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        MaterialsSource::keyring(RawAesKeyring::new("fuzz", "key", &[0x17; 32]).expect("valid key"))
    })
}

/// A one-thread client that decrypts every suite and refuses more than 16 EDKs.
pub fn client() -> Client {
    Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .max_encrypted_data_keys(16)
        .threads(1)
        .build()
        .expect("valid client")
}
