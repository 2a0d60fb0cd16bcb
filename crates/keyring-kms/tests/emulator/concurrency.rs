//! Async behaviour: no KMS call blocks a runtime thread, and a multi-keyring wraps its
//! additional keys concurrently.

use crate::common::{client, symmetric_key, KmsProxy, WEST};
use crate::emulator_or_skip;
use esdk_core::{Client, DecryptOptions, EncryptOptions, MaterialsSource};
use keyring_kms::{KmsKeyring, KmsMultiKeyring, StaticClientSupplier};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 200 concurrent encrypts (each a GenerateDataKey plus an Encrypt) on a runtime with 2
/// worker threads. The proxy between the SDK and moto runs as tasks on the same runtime, so
/// if any KMS call blocked its worker thread (block_on, block_in_place, a synchronous HTTP
/// client), both workers would soon be stuck waiting for responses the proxy could no
/// longer forward, and the watchdog thread below would fail the test. A ticker task
/// measures how late the runtime runs its timers meanwhile.
#[test]
fn two_hundred_concurrent_encrypts_on_two_workers() {
    let Some(endpoint) = crate::common::endpoint() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let result = runtime.block_on(async move {
            let proxy = KmsProxy::start(&endpoint).await;
            let kms = client(&proxy.url, WEST);
            let (g, k) = (symmetric_key(&kms).await, symmetric_key(&kms).await);
            let keyring = KmsMultiKeyring::builder()
                .generator(&g)
                .key(&k)
                .client_supplier(StaticClientSupplier::new().with_client(WEST, kms.clone()))
                .build()
                .await
                .unwrap();
            let source = Arc::new(MaterialsSource::keyring(keyring));
            let sdk = Arc::new(Client::new());

            let ticking = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let ticker = {
                let ticking = ticking.clone();
                tokio::spawn(async move {
                    let mut worst = Duration::ZERO;
                    let mut ticks = 0u32;
                    while ticking.load(std::sync::atomic::Ordering::SeqCst) {
                        let t = Instant::now();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        worst = worst.max(t.elapsed().saturating_sub(Duration::from_millis(10)));
                        ticks += 1;
                    }
                    (ticks, worst)
                })
            };

            let start = Instant::now();
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let (sdk, source) = (sdk.clone(), source.clone());
                    tokio::spawn(async move {
                        let msg = format!("message {i}");
                        let sealed = sdk
                            .encrypt(&source, msg.as_bytes(), &EncryptOptions::default())
                            .await
                            .unwrap();
                        (msg, sealed.ciphertext)
                    })
                })
                .collect();
            let mut sealed = Vec::new();
            for t in tasks {
                sealed.push(t.await.unwrap());
            }
            let elapsed = start.elapsed();
            ticking.store(false, std::sync::atomic::Ordering::SeqCst);
            let (ticks, worst) = ticker.await.unwrap();

            // Spot-check that the messages decrypt, with the second key alone.
            let second = MaterialsSource::keyring(KmsKeyring::new(&k, kms).unwrap());
            for (msg, ct) in sealed.iter().step_by(50) {
                let opened = sdk.decrypt(&second, ct, &DecryptOptions::default()).await.unwrap();
                assert_eq!(opened.plaintext, msg.as_bytes());
            }
            (elapsed, ticks, worst, proxy.max_in_flight())
        });
        let _ = done_tx.send(());
        result
    });
    if done_rx.recv_timeout(Duration::from_secs(180)).is_err() {
        panic!("200 concurrent encrypts did not finish within 180 s: a KMS call is blocking the runtime");
    }
    let (elapsed, ticks, worst, max_in_flight) = handle.join().unwrap();
    eprintln!(
        "200 encrypts in {elapsed:?}; ticker ran {ticks} times, worst lateness {worst:?}; \
         up to {max_in_flight} KMS requests in flight"
    );
    // Requests overlapped: the calls were not serialized behind one another.
    assert!(max_in_flight > 2, "max in flight {max_in_flight}");
    assert!(ticks > 0);
    assert!(worst < Duration::from_secs(2), "the runtime's timers ran {worst:?} late");
}

/// With every KMS request held for 300 ms, a generator and three more keys take about two
/// round trips, not four, and the three Encrypt calls are in flight together.
#[tokio::test]
async fn additional_keys_are_wrapped_concurrently() {
    let endpoint = emulator_or_skip!();
    let proxy = KmsProxy::start(&endpoint).await;
    let kms = client(&proxy.url, WEST);
    let mut keys = Vec::new();
    for _ in 0..4 {
        keys.push(symmetric_key(&kms).await);
    }
    let keyring = KmsMultiKeyring::builder()
        .generator(&keys[0])
        .keys(&keys[1..])
        .client_supplier(StaticClientSupplier::new().with_client(WEST, kms))
        .build()
        .await
        .unwrap();
    proxy.delay(Duration::from_millis(300));
    let start = Instant::now();
    let sealed = Client::new()
        .encrypt(&MaterialsSource::keyring(keyring), b"fan out", &EncryptOptions::default())
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sealed.header.encrypted_data_keys.len(), 4);
    let order: Vec<&[u8]> = sealed
        .header
        .encrypted_data_keys
        .iter()
        .map(|e| e.provider_info.as_slice())
        .collect();
    let expected: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    assert_eq!(order, expected, "EDKs stay in configuration order");
    assert_eq!(proxy.max_in_flight(), 3, "the three Encrypt calls overlap");
    assert!(elapsed < Duration::from_millis(1150), "took {elapsed:?}; sequential would be >= 1.2 s");
}
