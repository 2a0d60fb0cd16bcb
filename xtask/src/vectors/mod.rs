//! The official test-vector runners.

pub mod decrypt;
pub mod encrypt;
pub mod keys;

use std::fmt;
use std::path::{Path, PathBuf};

/// Pass/fail/skip counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped (with a printed reason).
    pub skipped: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Every decrypt manifest under a test-vectors folder: `manifest.json` in each set, plus the
/// legacy set's `manifests/ciphertext.manifest`.
pub fn find_decrypt_manifests(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let dir = entry?.path();
        if !dir.is_dir() {
            continue;
        }
        for candidate in [
            dir.join("manifest.json"),
            dir.join("manifests").join("ciphertext.manifest"),
        ] {
            if candidate.is_file() {
                found.push(candidate);
            }
        }
    }
    found.sort();
    Ok(found)
}
