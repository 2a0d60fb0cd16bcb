//! One-shot decrypt of arbitrary bytes with a raw AES keyring: never panics, never succeeds
//! on input the keyring did not produce (seed the corpus with `cargo xtask fuzz`, which
//! writes valid messages for every suite first).
#![no_main]
#![forbid(unsafe_code)]

use esdk::raw_aes::RawAesKeyring;
use esdk::{Client, CommitmentPolicy, DecryptOptions, MaterialsSource};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn source() -> &'static MaterialsSource {
    static SOURCE: OnceLock<MaterialsSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        MaterialsSource::keyring(RawAesKeyring::new("fuzz", "key", &[0x17; 32]).expect("valid key"))
    })
}

fuzz_target!(|data: &[u8]| {
    let client = Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .max_encrypted_data_keys(16)
        .build()
        .expect("valid client");
    let _ = client.decrypt_blocking(source(), data, &DecryptOptions::default());
});
