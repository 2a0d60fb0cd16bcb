//! Random access over arbitrary bytes: opening and reading any range never panics, and when
//! the bytes are a message one-shot decrypt accepts, every range read matches its plaintext.
//! A message one-shot decrypt refuses may still open (random access does not read every
//! frame), but nothing it returns may contradict a successful one-shot decrypt.
#![no_main]
#![forbid(unsafe_code)]

#[path = "common.rs"]
mod common;

use common::source;
use esdk::stream::{RandomAccessDecryptor, RandomAccessOptions};
use esdk::DecryptOptions;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|input: &[u8]| {
    // Four bytes choose a range; the rest is the message.
    if input.len() < 4 {
        return;
    }
    let (range, message) = input.split_at(4);
    let client = common::client();
    let options = RandomAccessOptions::default().accept_unsigned_output();
    let Ok(mut ra) =
        RandomAccessDecryptor::new(&client, source(), &options, Cursor::new(message.to_vec()))
    else {
        return;
    };
    let len = ra.plaintext_len();
    let start = u64::from(u16::from_be_bytes([range[0], range[1]]));
    let count = u64::from(u16::from_be_bytes([range[2], range[3]]));
    let read = ra.read_range(start..start.saturating_add(count));
    if start.saturating_add(count) > len {
        assert!(read.is_err(), "a range past the plaintext was read");
    }
    if let Ok(decrypted) = client.decrypt_blocking(source(), message, &DecryptOptions::default()) {
        assert_eq!(
            decrypted.plaintext.len() as u64,
            len,
            "plaintext length differs"
        );
        if let Ok(bytes) = read {
            let from = usize::try_from(start).expect("u16");
            assert!(
                decrypted.plaintext[from..from + bytes.len()] == bytes[..],
                "range differs"
            );
        }
    }
});
