//! `tracing` spans: one per KMS call, with operation, key id and latency; never a data key.

use crate::common::{client, symmetric_key, WEST};
use crate::emulator_or_skip;
use base64::Engine;
use esdk_core::{AlgorithmSuite, DecryptionMaterials, EncryptionMaterials, Keyring};
use keyring_kms::KmsKeyring;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_span_per_call_without_secrets() {
    let endpoint = emulator_or_skip!();
    let kms = client(&endpoint, WEST);
    let arn = symmetric_key(&kms).await;
    let keyring = KmsKeyring::new(&arn, kms).unwrap();

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let suite = AlgorithmSuite::from_id(0x0478).unwrap();
    let enc = keyring
        .on_encrypt(&EncryptionMaterials::new(suite, Default::default()))
        .await
        .unwrap();
    let dec = keyring
        .on_decrypt(
            &DecryptionMaterials::new(suite, Default::default()),
            enc.encrypted_data_keys(),
        )
        .await
        .unwrap();
    drop(guard);

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keyring_kms::calls: close"))
        .collect();
    assert_eq!(closes.len(), 2, "one span per KMS call:\n{log}");
    for (line, op) in closes.iter().zip(["GenerateDataKey", "Decrypt"]) {
        assert!(line.contains(&format!("operation=\"{op}\"")), "{line}");
        assert!(line.contains(&arn), "{line}");
        assert!(line.contains("latency_ms="), "{line}");
        assert!(line.contains("outcome=\"ok\""), "{line}");
        assert!(line.contains(WEST), "{line}");
    }
    let key = dec.data_key().unwrap().as_bytes();
    assert_eq!(key, enc.data_key().unwrap().as_bytes());
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for secret in [
        base64::engine::general_purpose::STANDARD.encode(key),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(key),
        hex.clone(),
        hex.to_uppercase(),
        format!("{key:?}"),
    ] {
        assert!(!log.contains(&secret), "the data key appears in the logs");
    }
}
