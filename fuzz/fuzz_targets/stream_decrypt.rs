//! Streaming decrypt of arbitrary bytes, fed in chunk sizes the input chooses, checked against
//! one-shot decrypt of the same bytes: the stream never panics, succeeds exactly when the
//! one-shot API does, and then released exactly the same plaintext. (Seed the corpus with
//! `cargo xtask fuzz`, which writes valid messages for every suite first.)
#![no_main]
#![forbid(unsafe_code)]

#[path = "common.rs"]
mod common;

use common::source;
use esdk::stream::DecryptingReader;
use esdk::DecryptOptions;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Hands out the message in pieces of 1 to `max` bytes.
struct Pieces<'a> {
    data: &'a [u8],
    max: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.max.min(self.data.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&shape, message)) = input.split_first() else {
        return;
    };
    let client = common::client();
    let one_shot = client.decrypt_blocking(source(), message, &DecryptOptions::default());

    let pieces = Pieces {
        data: message,
        max: usize::from(shape & 0x3f) + 1,
    };
    let read_size = usize::from(shape >> 6) * 37 + 1;
    let streamed = DecryptingReader::new(&client, source(), &DecryptOptions::default(), pieces)
        .map_err(|e| e.to_string())
        .and_then(|mut reader| {
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_size];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(out),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(e.to_string()),
                }
            }
        });
    match (one_shot, streamed) {
        (Ok(decrypted), Ok(out)) => assert!(decrypted.plaintext == out, "stream output differs"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("one-shot decrypt succeeded, the stream failed: {e}"),
        (Err(e), Ok(_)) => panic!("the stream succeeded, one-shot decrypt failed: {e}"),
    }
});
