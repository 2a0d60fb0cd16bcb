//! KMS keyring tests against the moto emulator (one test binary: the AWS SDK links once).
//!
//! Run with `cargo xtask moto cargo test -p keyring-kms`, which installs, patches and starts
//! moto and exports `AWS_ENDPOINT_URL` and dummy credentials. Without `AWS_ENDPOINT_URL`
//! every test here fails under CI (`CI` set to anything but empty, `false` or `0`) and
//! skips loudly otherwise.
//!
//! Not here: interop with the official Python SDK (`tests/python_interop.rs`, run by
//! `cargo xtask interop`; `xtask/kms_interop.py` is the Python side).

mod common;

mod concurrency;
mod discovery;
mod faults;
mod mrk;
mod round_trip;
mod rsa;
mod spans;
