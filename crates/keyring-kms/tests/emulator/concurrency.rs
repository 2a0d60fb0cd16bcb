//! Async behaviour: no KMS call blocks a runtime thread, and a multi-keyring wraps its
//! additional keys concurrently.

use crate::common::{client, symmetric_key, KmsProxy, WEST};
use crate::emulator_or_skip;
use esdk_core::{AlgorithmSuite, Client, DecryptOptions, EncryptOptions, MaterialsSource};
use keyring_kms::{KmsKeyring, KmsMultiKeyring, StaticClientSupplier};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Normally the run takes a few seconds; a blocking implementation never finishes (checked
/// by temporarily wrapping the KMS calls in `pollster::block_on`: both tests fail).
const WATCHDOG: Duration = Duration::from_secs(180);

/// What one run of 200 concurrent encrypts observed.
struct Run {
    elapsed: Duration,
    ticks: u32,
    worst_lateness: Duration,
    max_in_flight: usize,
}

/// 200 concurrent encrypts (each a GenerateDataKey plus an Encrypt through a multi-keyring),
/// spawned as tasks on `runtime`, under a watchdog thread.
///
/// Why this catches blocking: the proxy between the SDK and moto runs as tasks on the same
/// runtime, and so does the I/O driver the SDK's connections need. If a KMS call blocked its
/// thread waiting for the response (`block_on` of any kind), the runtime's threads would
/// soon all be stuck waiting for responses that nothing can deliver any more, and the
/// watchdog fails the test. On a current-thread runtime `block_in_place` panics outright.
fn two_hundred_encrypts(runtime: tokio::runtime::Runtime, endpoint: String) -> Run {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let run = runtime.block_on(async move {
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
            // Unsigned suite: the default suite's per-message ECDSA work (slow in debug
            // builds) would otherwise dominate the run.
            let opts =
                EncryptOptions::default().with_suite(AlgorithmSuite::from_id(0x0478).unwrap());

            let ticking = Arc::new(AtomicBool::new(true));
            let ticker = {
                let ticking = ticking.clone();
                tokio::spawn(async move {
                    let (mut worst, mut ticks) = (Duration::ZERO, 0u32);
                    while ticking.load(Ordering::SeqCst) {
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
                    let (sdk, source, opts) = (sdk.clone(), source.clone(), opts.clone());
                    tokio::spawn(async move {
                        let msg = format!("message {i}");
                        let sealed = sdk.encrypt(&source, msg.as_bytes(), &opts).await.unwrap();
                        (msg, sealed.ciphertext)
                    })
                })
                .collect();
            let mut sealed = Vec::new();
            for t in tasks {
                sealed.push(t.await.unwrap());
            }
            let elapsed = start.elapsed();
            ticking.store(false, Ordering::SeqCst);
            let (ticks, worst_lateness) = ticker.await.unwrap();

            // Spot-check that the messages decrypt, with the second key alone.
            let second = MaterialsSource::keyring(KmsKeyring::new(&k, kms).unwrap());
            for (msg, ct) in sealed.iter().step_by(50) {
                let opened = sdk
                    .decrypt(&second, ct, &DecryptOptions::default())
                    .await
                    .unwrap();
                assert_eq!(opened.plaintext, msg.as_bytes());
            }
            Run {
                elapsed,
                ticks,
                worst_lateness,
                max_in_flight: proxy.max_in_flight(),
            }
        });
        let _ = done_tx.send(());
        run
    });
    if done_rx.recv_timeout(WATCHDOG).is_err() {
        panic!("200 concurrent encrypts did not finish within {WATCHDOG:?}: a KMS call is blocking the runtime");
    }
    let run = handle.join().unwrap();
    eprintln!(
        "200 encrypts in {:?}; ticker ran {} times (worst lateness {:?}, CPU contention \
         included); up to {} KMS requests in flight",
        run.elapsed, run.ticks, run.worst_lateness, run.max_in_flight
    );
    // The calls overlapped instead of queueing behind one another, and timers kept running.
    assert!(
        run.max_in_flight > 10,
        "max in flight {}",
        run.max_in_flight
    );
    assert!(run.ticks > 0);
    run
}

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
    two_hundred_encrypts(runtime, endpoint);
}

#[test]
fn two_hundred_concurrent_encrypts_on_one_thread() {
    let Some(endpoint) = crate::common::endpoint() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    two_hundred_encrypts(runtime, endpoint);
}

/// With every KMS request held for 1 s at the proxy, the three Encrypt calls of a generator
/// plus three more keys are all in flight at once (wrapped one after the other, at most one
/// would be). Elapsed time is printed, not asserted: it also depends on how busy moto is
/// with the other tests running beside this one.
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
    proxy.delay(Duration::from_secs(1));
    let opts = EncryptOptions::default().with_suite(AlgorithmSuite::from_id(0x0478).unwrap());
    let start = Instant::now();
    let sealed = Client::new()
        .encrypt(&MaterialsSource::keyring(keyring), b"fan out", &opts)
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
    eprintln!("generator + 3 keys with 1 s per KMS request: {elapsed:?}");
}
