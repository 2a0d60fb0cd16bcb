//! Encryption context parsing: never panics; what parses re-serializes to a canonical form
//! that parses to the same map.
#![no_main]
#![forbid(unsafe_code)]

use esdk::context;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = context::deserialize(data) {
        let canonical = context::serialize(&map).expect("a parsed context re-serializes");
        assert_eq!(
            context::deserialize(&canonical).expect("canonical parses"),
            map
        );
    }
});
