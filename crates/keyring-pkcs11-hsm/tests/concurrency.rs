//! Many callers, few sessions: 8 tasks x 200 messages through `Client` on a multi-thread
//! runtime, and more blocking callers than sessions (they wait; none fails).

mod common;

use esdk_core::{
    AlgorithmSuite, Client, DecryptOptions, EncryptOptions, EncryptionContext, MaterialsSource,
};
use keyring_pkcs11_hsm::{AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, RsaKeyConfig, RsaPadding};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Signing costs far more than the token round trips in a debug build; these tests are
/// about the keyring, so they use the committing suite without a signature.
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

#[test]
fn eight_tasks_times_200_messages_on_a_multi_thread_runtime() {
    let Some(env) = common::env() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let token = env.token(3);
    let keyring =
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let source = Arc::new(MaterialsSource::keyring(keyring));
    let client = Arc::new(Client::new());
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..8u32 {
            let source = source.clone();
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u32;
                for i in 0..200u32 {
                    let plaintext = format!("task {task} message {i}").repeat(1 + (i as usize % 7));
                    let ctx: EncryptionContext = [
                        ("task".to_string(), task.to_string()),
                        ("i".to_string(), i.to_string()),
                    ]
                    .into();
                    let sealed = client
                        .encrypt(
                            &source,
                            plaintext.as_bytes(),
                            &EncryptOptions::default()
                                .with_suite(UNSIGNED)
                                .with_encryption_context(ctx.clone()),
                        )
                        .await
                        .unwrap();
                    let opened = client
                        .decrypt(
                            &source,
                            &sealed.ciphertext,
                            &DecryptOptions::default().with_reproduced_encryption_context(ctx),
                        )
                        .await
                        .unwrap();
                    assert_eq!(opened.plaintext, plaintext.as_bytes());
                    ok += 1;
                }
                ok
            }));
        }
        let mut total = Vec::new();
        for t in tasks {
            total.push(t.await.unwrap());
        }
        total
    });
    assert_eq!(results, vec![200; 8]);
    let stats = token.stats();
    assert!(stats.opened_total <= 3, "{stats:?}");
    assert!(stats.open <= 3, "{stats:?}");
    // Login state is per process: another test's token may have logged in first.
    assert!(stats.logins <= 1, "{stats:?}");
}

#[test]
fn more_blocking_callers_than_sessions_wait_and_all_succeed() {
    let Some(env) = common::env() else { return };
    let token = env.token(2);
    let aes = HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let rsa = HsmRsaKeyring::new(
        &token,
        RsaKeyConfig::new("hsm-rsa", "rsa", RsaPadding::OaepSha1).private_key_label(&env.rsa_label),
    )
    .unwrap();
    let sources = Arc::new([MaterialsSource::keyring(aes), MaterialsSource::keyring(rsa)]);
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let sources = sources.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let client = Client::new();
                let source = &sources[t % 2];
                barrier.wait();
                for i in 0..25 {
                    let msg = format!("thread {t} #{i}");
                    let sealed = client
                        .encrypt_blocking(
                            source,
                            msg.as_bytes(),
                            &EncryptOptions::default().with_suite(UNSIGNED),
                        )
                        .unwrap();
                    let opened = client
                        .decrypt_blocking(source, &sealed.ciphertext, &DecryptOptions::default())
                        .unwrap();
                    assert_eq!(opened.plaintext, msg.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = token.stats();
    assert!(
        stats.opened_total <= 2,
        "never more sessions than configured: {stats:?}"
    );
    assert!(
        stats.waits > 0,
        "16 callers on 2 sessions must have waited: {stats:?}"
    );
    assert_eq!(
        stats.idle, stats.open,
        "every session is back in the pool: {stats:?}"
    );
    // Login state is per process: another test's token may have logged in first.
    assert!(stats.logins <= 1, "{stats:?}");
}

#[test]
fn async_callers_leave_the_runtime_thread_free_during_token_calls() {
    let Some(env) = common::env() else { return };
    // One thread runs every task. If the keyring called the token inline, the encrypting
    // task would never yield (nothing in it is really asynchronous) and the other task
    // could not run until it finished. With spawn_blocking each token call is awaited, so
    // the other task keeps running meanwhile.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = env.token(1);
    let keyring =
        HsmAesKeyring::new(&token, AesKeyConfig::new("hsm", "k256", &env.aes_label)).unwrap();
    let source = Arc::new(MaterialsSource::keyring(keyring));
    let finished = Arc::new(AtomicBool::new(false));
    let (ticks, encrypted) = runtime.block_on(async {
        let worker = {
            let (source, finished) = (source.clone(), finished.clone());
            tokio::spawn(async move {
                let client = Client::new();
                for i in 0..50 {
                    let msg = format!("message {i}");
                    let sealed = client
                        .encrypt(
                            &source,
                            msg.as_bytes(),
                            &EncryptOptions::default().with_suite(UNSIGNED),
                        )
                        .await
                        .unwrap();
                    let opened = client
                        .decrypt(&source, &sealed.ciphertext, &DecryptOptions::default())
                        .await
                        .unwrap();
                    assert_eq!(opened.plaintext, msg.as_bytes());
                }
                finished.store(true, Ordering::SeqCst);
                50
            })
        };
        let ticker = {
            let finished = finished.clone();
            tokio::spawn(async move {
                let mut ticks = 0u32;
                while !finished.load(Ordering::SeqCst) {
                    ticks += 1;
                    tokio::task::yield_now().await;
                }
                ticks
            })
        };
        (ticker.await.unwrap(), worker.await.unwrap())
    });
    assert_eq!(encrypted, 50);
    // 100 token round trips, each awaited: the ticker ran at least once per round trip.
    assert!(
        ticks >= 100,
        "the runtime thread was blocked: only {ticks} ticks"
    );
}
