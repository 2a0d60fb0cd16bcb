//! Header parsing: never panics, and a parsed header's lengths lie within the input.
#![no_main]
#![forbid(unsafe_code)]

use esdk::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(parsed)) = Header::parse(data, Some(64)) {
        assert!(parsed.body_len <= parsed.total_len && parsed.total_len <= data.len());
        assert!(parsed.header.encrypted_data_keys.len() <= 64);
        // Anything parsed re-serializes (the context may be re-ordered, never rejected).
        let _ = parsed.header.serialize_body();
    }
});
