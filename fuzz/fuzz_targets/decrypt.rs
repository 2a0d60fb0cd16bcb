//! One-shot decrypt of arbitrary bytes with a raw AES keyring: never panics (seed the corpus
//! with `cargo xtask fuzz`, which writes valid messages for every suite first).
#![no_main]
#![forbid(unsafe_code)]

#[path = "common.rs"]
mod common;

use common::source;
use esdk::DecryptOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let client = common::client();
    let _ = client.decrypt_blocking(source(), data, &DecryptOptions::default());
});
