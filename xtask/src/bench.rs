//! `cargo xtask bench`: throughput and latency of esdk-core next to the limit, measured in the
//! same process, plus peak memory of a 1 GiB streamed message and a provider comparison.
//!
//! The limit is what the hardware and `ring` allow for the same bytes: AES-256-GCM in
//! 4096-byte frames from the input into a separate output buffer (one copy, as any API that
//! leaves its input intact must make), plus one HKDF-SHA-512 derivation, plus SHA-384 over the
//! ciphertext for the signed suite. For "all cores" the limit spreads the frames over the
//! threads (the SHA-384 stays one serial stream, run beside the AES threads).
//!
//! The PKCS#11 keyring (`keyring-pkcs11-hsm`, AES mode and RSA mode) is measured per 1 KiB
//! message with suite 0x0478 next to the raw AES keyring, against a throw-away SoftHSM2
//! token: the outermost `cargo xtask bench` sets the token up ([`SoftHsm::setup`]) and hands
//! its environment down to the release process that measures. If there is no token, the
//! bench says why and goes on without those rows.
//!
//! Output: one table on stdout, `--json FILE` (an array of row objects), and an SVG chart
//! (`--svg FILE`, default `target/bench/bench.svg`).

#![allow(clippy::cast_possible_truncation)] // timing arithmetic: counts and sizes are small and positive

use crate::softhsm::SoftHsm;
use esdk_core::crypto::{self, CryptoProvider};
use esdk_core::stream::{DecryptingReader, EncryptingWriter};
use esdk_core::{
    AlgorithmSuite, Client, CommitmentPolicy, DecryptOptions, EncryptOptions, MaterialsSource,
};
use keyring_pkcs11_hsm::{
    AesKeyConfig, HsmAesKeyring, HsmRsaKeyring, Pin, PinSource, Pkcs11Config, Pkcs11Token,
    RsaKeyConfig, RsaPadding, TokenSelector,
};
use keyring_raw_aes::RawAesKeyring;
use ring::{aead, digest, hkdf};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Reduced set (1 KiB and 1 MiB; suites 0x0478 and 0x0578; one thread and all cores):
    /// under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Write the rows as a JSON array to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the chart to FILE (SVG; default target/bench/bench.svg).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also run the official Rust crate (benches/official-rust) and Python SDK (venv).
    #[arg(long)]
    pub official: bool,
    /// Crypto provider for the esdk rows: aws-lc or ring (default: the crate default).
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Threads for the "all cores" rows (default: the available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only these message sizes (comma-separated, e.g. "1K,256M").
    #[arg(long, value_name = "LIST")]
    pub sizes: Option<String>,
    /// Keep glibc's default allocator settings instead of asking it for transparent huge
    /// pages for large buffers (see the module docs).
    #[arg(long)]
    pub default_malloc: bool,
    /// Only the PKCS#11 keyring rows (AES and RSA mode, 0x0478, 1 KiB, one thread) next to the
    /// raw AES keyring's and the limit; fails if no SoftHSM2 token can be set up. (Without it
    /// the PKCS#11 rows are measured too, when a token can be set up.)
    #[arg(long)]
    pub hsm: bool,
    /// Internal: measure one streamed message in this process ("encrypt" or "decrypt").
    #[arg(long, hide = true)]
    pub rss_child: Option<String>,
    /// Internal: the ciphertext file of --rss-child.
    #[arg(long, hide = true)]
    pub rss_file: Option<PathBuf>,
    /// Internal: plaintext bytes of --rss-child.
    #[arg(long, hide = true)]
    pub rss_bytes: Option<u64>,
    /// Internal: measure the provider comparison in this process.
    #[arg(long, hide = true)]
    pub provider_child: bool,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const GIB: u64 = 1 << 30;
const FRAME: usize = 4096;
const WRAPPING_KEY: [u8; 32] = [0x5a; 32];

/// One line of the table and of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// "esdk", "limit", "aws-esdk" or "python".
    #[serde(rename = "impl")]
    pub implementation: String,
    /// Suite id as hex ("0x0478"), or null for the limit.
    pub suite: Option<String>,
    /// "encrypt" or "decrypt".
    pub op: &'static str,
    /// Plaintext bytes per message.
    pub size_bytes: u64,
    /// Threads the row may use.
    pub threads: usize,
    /// Plaintext MiB per second.
    pub mib_per_s: f64,
    /// Microseconds per message.
    pub us_per_msg: f64,
    /// Throughput relative to the limit row of the same op, size and threads (null for the
    /// limit itself).
    pub ratio_to_limit: Option<f64>,
    /// Peak resident memory of the process, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// "one-shot", "stream", or "raw" (the limit).
    pub api: &'static str,
    /// Which limit: "aes-gcm" or "aes-gcm+sha384" (limit rows), or the limit a row is
    /// compared with.
    pub limit: &'static str,
    /// Output buffer discipline: "fresh" (a new buffer per message: the one-shot API and its
    /// limit) or "reused" (streaming into a sink, and its limit).
    pub output: &'static str,
    /// Crypto provider of the esdk rows.
    pub provider: String,
    /// The keyring of the row: "raw-aes", "pkcs11-aes" or "pkcs11-rsa" (null for the limit).
    pub keyring: Option<&'static str>,
}

/// Keyring name of the rows through the raw AES keyring.
const RAW_AES: &str = "raw-aes";

fn suite_hex(s: AlgorithmSuite) -> String {
    format!("0x{:04X}", s.id())
}

fn limit_kind(suite: AlgorithmSuite) -> &'static str {
    if suite.is_signed() {
        "aes-gcm+sha384"
    } else {
        "aes-gcm"
    }
}

const HUGEPAGE_TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// Entry point of `cargo xtask bench`.
pub fn run(args: BenchArgs) -> Result<(), String> {
    // The token for the PKCS#11 rows: set up by the outermost process (which keeps the guard,
    // so the token lives until the bench ends) and handed to the re-runs below through the
    // environment. The memory and provider children do not use it.
    let (hsm, _hsm_guard) = if args.rss_child.is_none() && !args.provider_child {
        HsmToken::get()
    } else {
        (HsmToken::Unavailable("not used here".into()), None)
    };
    // `cargo xtask` builds in debug; timings need the release build of everything.
    if cfg!(debug_assertions) {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["run", "--release", "--quiet", "--package", "xtask", "--"])
            .args(std::env::args_os().skip(1))
            .current_dir(workspace_root());
        hsm.apply(&mut cmd);
        let status = cmd
            .status()
            .map_err(|e| format!("re-running in release: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("bench exited with {status}"))
        };
    }
    // Large one-shot messages need fresh output buffers, and on this kind of VM every 4 KiB
    // page first touched costs about 3 us, serialized: 256 MiB of fresh pages take ~200 ms,
    // more than the AES-GCM work itself, for the limit and for esdk alike. Transparent huge
    // pages (2 MiB) remove that, so the bench runs itself with glibc asked for them.
    if !args.default_malloc && std::env::var_os("GLIBC_TUNABLES").is_none() {
        let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        cmd.args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", HUGEPAGE_TUNABLE);
        hsm.apply(&mut cmd);
        let status = cmd
            .status()
            .map_err(|e| format!("re-running with {HUGEPAGE_TUNABLE}: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("bench exited with {status}"))
        };
    }
    if let Some(name) = &args.provider {
        install_provider(name)?;
    }
    if let Some(op) = &args.rss_child {
        return rss_child(op, &args);
    }
    if args.provider_child {
        return provider_child(args.quick);
    }
    let all = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let provider = crypto::provider().name().to_string();
    let started = Instant::now();
    println!(
        "esdk bench ({} mode): provider {provider}, {all} cores for the all-cores rows, {}, \
         GLIBC_TUNABLES={}, load average {}",
        if args.hsm {
            "hsm"
        } else if args.quick {
            "quick"
        } else {
            "full"
        },
        cpu_name(),
        std::env::var("GLIBC_TUNABLES").unwrap_or_else(|_| "(unset)".into()),
        load_average()
    );
    // The PKCS#11 keyrings, measured with the 0x0478 1 KiB one-thread cases.
    let hsm_sources = match hsm.sources() {
        Ok(sources) => {
            println!(
                "PKCS#11 keyring rows: SoftHSM2 token {:?} (pkcs11-aes: AES-256 key, CKM_AES_GCM \
                 in the token; pkcs11-rsa: RSA-2048, OAEP-SHA1 unwrap in the token)",
                hsm.var("ESDK_PKCS11_TOKEN").unwrap_or("?")
            );
            sources
        }
        Err(why) if args.hsm => return Err(format!("--hsm: no PKCS#11 token: {why}")),
        Err(why) => {
            println!("PKCS#11 keyring rows skipped: {why}");
            Vec::new()
        }
    };
    let mut rows = Vec::new();
    let (sizes, suites): (Vec<usize>, Vec<AlgorithmSuite>) = if args.hsm {
        (vec![KIB], vec![UNSIGNED_COMMIT])
    } else if args.quick {
        (vec![KIB, MIB], vec![UNSIGNED_COMMIT, SIGNED_COMMIT])
    } else {
        (
            vec![KIB, MIB, 8 * MIB, 256 * MIB],
            vec![UNSIGNED_LEGACY, UNSIGNED_COMMIT, SIGNED_COMMIT],
        )
    };
    let sizes: Vec<usize> = match &args.sizes {
        Some(list) => list.split(',').map(parse_size).collect::<Result<_, _>>()?,
        None => sizes,
    };
    let budget = if args.quick {
        Duration::from_millis(250)
    } else {
        Duration::from_millis(1200)
    };
    let thread_counts: Vec<usize> = if all > 1 && !args.hsm {
        vec![1, all]
    } else {
        vec![1]
    };
    for &size in &sizes {
        let plaintext = pattern(size);
        for &threads in &thread_counts {
            // Every case of this size and thread count, measured in interleaved rounds so
            // that load from elsewhere hits the limit and esdk alike.
            let mut cases: Vec<(Row, Box<dyn FnMut() + '_>)> = Vec::new();
            for kind in ["aes-gcm", "aes-gcm+sha384"] {
                let signed = kind != "aes-gcm";
                if !suites.iter().any(|s| s.is_signed() == signed) {
                    continue;
                }
                // Streams (256 MiB and up) write into reused buffers; one-shot calls return a
                // fresh one. Each is compared with the limit doing the same.
                let outputs: &[&'static str] = if size >= 256 * MIB {
                    &["fresh", "reused"]
                } else {
                    &["fresh"]
                };
                for &output in outputs {
                    for op in ["encrypt", "decrypt"] {
                        let row = Row {
                            implementation: "limit".into(),
                            suite: None,
                            op,
                            size_bytes: size as u64,
                            threads,
                            mib_per_s: 0.0,
                            us_per_msg: 0.0,
                            ratio_to_limit: None,
                            peak_rss_bytes: None,
                            api: "raw",
                            limit: kind,
                            output,
                            provider: "ring".into(),
                            keyring: None,
                        };
                        let plaintext = &plaintext;
                        let reuse = output == "reused";
                        cases.push((
                            row,
                            Box::new(move || limit_run(plaintext, op, signed, threads, reuse)),
                        ));
                    }
                }
            }
            for &suite in &suites {
                let client = client(suite, threads)?;
                let source = source()?;
                let opts = EncryptOptions::default()
                    .with_suite(suite)
                    .with_frame_length(FRAME as u32);
                let sample = client
                    .encrypt_blocking(&source, &plaintext, &opts)
                    .map_err(|e| format!("encrypt {suite}: {e}"))?
                    .ciphertext;
                let sample = std::rc::Rc::new(sample);
                let plaintext = &plaintext;
                let [encrypt, decrypt] =
                    one_shot_cases(client, &source, opts.clone(), plaintext, sample.clone());
                cases.push((
                    esdk_row(suite, "encrypt", size, threads, 0.0, "one-shot", &provider),
                    encrypt,
                ));
                cases.push((
                    esdk_row(suite, "decrypt", size, threads, 0.0, "one-shot", &provider),
                    decrypt,
                ));
                if size >= 256 * MIB {
                    let (source2, opts2) = (source.clone(), opts.clone());
                    cases.push((
                        esdk_row(suite, "encrypt", size, threads, 0.0, "stream", &provider),
                        Box::new(move || {
                            std::hint::black_box(
                                stream_encrypt(&client, &source2, &opts2, plaintext).ok(),
                            );
                        }),
                    ));
                    let sample = sample.clone();
                    cases.push((
                        esdk_row(suite, "decrypt", size, threads, 0.0, "stream", &provider),
                        Box::new(move || {
                            std::hint::black_box(stream_decrypt(&client, &source, &sample).ok());
                        }),
                    ));
                }
            }
            if size == KIB && threads == 1 && suites.contains(&UNSIGNED_COMMIT) {
                for (keyring, source) in &hsm_sources {
                    let suite = UNSIGNED_COMMIT;
                    let client = client(suite, threads)?;
                    let opts = EncryptOptions::default()
                        .with_suite(suite)
                        .with_frame_length(FRAME as u32);
                    let sample = client
                        .encrypt_blocking(source, &plaintext, &opts)
                        .map_err(|e| format!("encrypt {suite} with {keyring}: {e}"))?
                        .ciphertext;
                    // The timed calls discard their result: check once that both work.
                    client
                        .decrypt_blocking(source, &sample, &DecryptOptions::default())
                        .map_err(|e| format!("decrypt {suite} with {keyring}: {e}"))?;
                    let row = |op| {
                        let mut row =
                            esdk_row(suite, op, size, threads, 0.0, "one-shot", &provider);
                        row.keyring = Some(*keyring);
                        row
                    };
                    let [encrypt, decrypt] =
                        one_shot_cases(client, source, opts, &plaintext, std::rc::Rc::new(sample));
                    cases.push((row("encrypt"), encrypt));
                    cases.push((row("decrypt"), decrypt));
                }
            }
            let mut fns: Vec<&mut dyn FnMut()> = cases
                .iter_mut()
                .map(|(_, f)| &mut **f as &mut dyn FnMut())
                .collect();
            let secs = measure_interleaved(budget * (fns.len() as u32), &mut fns);
            drop(fns);
            for ((mut row, _), secs) in cases.into_iter().zip(secs) {
                row.mib_per_s = mib_per_s(size, secs);
                row.us_per_msg = secs * 1e6;
                rows.push(row);
            }
        }
    }
    if !args.hsm {
        rows.extend(rss_rows(&args, all, &provider)?);
    }
    fill_ratios(&mut rows);
    let providers = if args.hsm {
        String::new()
    } else {
        provider_comparison(&args)?
    };
    if args.official && !args.hsm {
        // The official SDKs are compared when they run; a failure there keeps the rest.
        match official_rows(&args, &sizes) {
            Ok(official) => {
                rows.extend(official);
                fill_ratios(&mut rows);
            }
            Err(e) => eprintln!("warning: --official: {e}"),
        }
    }
    print_table(&rows);
    print_hsm_summary(&rows);
    print!("{providers}");
    if !args.hsm {
        print_targets(&rows, args.quick);
    }
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    let json_path = args.json.clone().unwrap_or_else(|| dir.join("bench.json"));
    std::fs::write(&json_path, json)
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    // The chart shows throughput rows (1 MiB and up): none under --hsm, unless asked for.
    let mut wrote = json_path.display().to_string();
    if !args.hsm || args.svg.is_some() {
        let svg_path = args.svg.clone().unwrap_or_else(|| dir.join("bench.svg"));
        std::fs::write(&svg_path, chart(&rows, &provider))
            .map_err(|e| format!("writing {}: {e}", svg_path.display()))?;
        wrote = format!("{wrote} and {}", svg_path.display());
    }
    println!(
        "\nwrote {wrote} in {:.0} s (load average at the end {})",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

const UNSIGNED_LEGACY: AlgorithmSuite = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256;
const UNSIGNED_COMMIT: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED_COMMIT: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

fn install_provider(name: &str) -> Result<(), String> {
    let p: &'static dyn CryptoProvider = match name {
        "ring" => crypto::ring(),
        "aws-lc" | "aws-lc-rs" => crypto::aws_lc(),
        "combined" | "ring+aws-lc" => crypto::combined_provider(),
        other => return Err(format!("unknown provider {other:?} (aws-lc or ring)")),
    };
    crypto::install_default(p).map_err(|p| format!("provider {} already in use", p.name()))
}

fn esdk_row(
    suite: AlgorithmSuite,
    op: &'static str,
    size: usize,
    threads: usize,
    secs: f64,
    api: &'static str,
    provider: &str,
) -> Row {
    Row {
        implementation: "esdk".into(),
        suite: Some(suite_hex(suite)),
        op,
        size_bytes: size as u64,
        threads,
        mib_per_s: mib_per_s(size, secs),
        us_per_msg: secs * 1e6,
        ratio_to_limit: None,
        peak_rss_bytes: None,
        api,
        limit: limit_kind(suite),
        output: if api == "stream" { "reused" } else { "fresh" },
        provider: provider.to_string(),
        keyring: Some(RAW_AES),
    }
}

/// Timed one-shot calls through `source`: encrypt `plaintext`, and decrypt `sample` (a message
/// sealed once up front). Results are discarded (through `black_box`); the caller checked once
/// that both calls succeed.
fn one_shot_cases<'a>(
    client: Client,
    source: &MaterialsSource,
    opts: EncryptOptions,
    plaintext: &'a [u8],
    sample: std::rc::Rc<Vec<u8>>,
) -> [Box<dyn FnMut() + 'a>; 2] {
    let encrypt_source = source.clone();
    let decrypt_source = source.clone();
    [
        Box::new(move || {
            let out = client.encrypt_blocking(&encrypt_source, plaintext, &opts);
            std::hint::black_box(out.map(|o| o.ciphertext.len()).ok());
        }),
        Box::new(move || {
            let out = client.decrypt_blocking(&decrypt_source, &sample, &DecryptOptions::default());
            std::hint::black_box(out.map(|o| o.plaintext.len()).ok());
        }),
    ]
}

fn client(suite: AlgorithmSuite, threads: usize) -> Result<Client, String> {
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder()
        .commitment_policy(policy)
        .threads(threads)
        .build()
        .map_err(|e| e.to_string())
}

fn source() -> Result<MaterialsSource, String> {
    let keyring =
        RawAesKeyring::new("bench", "bench-key", &WRAPPING_KEY).map_err(|e| e.to_string())?;
    Ok(MaterialsSource::keyring(keyring))
}

/// Deterministic, incompressible-looking plaintext.
fn pattern(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = vec![0u8; n];
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn mib_per_s(size: usize, secs: f64) -> f64 {
    size as f64 / MIB as f64 / secs
}

/// Seconds per call of `f`: its fastest batch (batches of about 20 ms, for about `budget`,
/// at least three), as in [`measure_interleaved`].
fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    let once = t.elapsed().max(Duration::from_nanos(50));
    let per_batch =
        ((Duration::from_millis(20).as_secs_f64() / once.as_secs_f64()).ceil() as usize).max(1);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 3 || (start.elapsed() < budget && samples.len() < 1000) {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() / per_batch as f64);
    }
    samples.into_iter().fold(f64::INFINITY, f64::min)
}

/// Seconds per call of each function, measured in interleaved rounds (one batch of about
/// 20 ms of each function per round) for about `budget` in all, at least three rounds. Each
/// function's figure is its fastest batch: on a shared machine, the batches that ran
/// undisturbed; every function gets the same chances.
fn measure_interleaved(budget: Duration, fns: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let per_batch: Vec<usize> = fns
        .iter_mut()
        .map(|f| {
            let t = Instant::now();
            f();
            let once = t.elapsed().max(Duration::from_nanos(50)).as_secs_f64();
            ((0.02 / once).ceil() as usize).max(1)
        })
        .collect();
    let mut best = vec![f64::INFINITY; fns.len()];
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || (start.elapsed() < budget && rounds < 200) {
        for (i, f) in fns.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..per_batch[i] {
                f();
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64() / per_batch[i] as f64);
        }
        rounds += 1;
    }
    best
}

// ---------------------------------------------------------------------------------------
// The limit: raw ring.

/// As long as a v2 message's regular-frame AAD: 32-byte message id, "AWSKMSEncryptionClient
/// Frame", sequence number and length (the content does not change the cost).
const FRAME_AAD: [u8; 72] = [0x41; 72];

struct Limit {
    key: aead::LessSafeKey,
}

impl Limit {
    fn new() -> Self {
        // The frame key comes from one HKDF per message (below); any fixed key serves here.
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &[7u8; 32]).expect("32-byte key");
        Self {
            key: aead::LessSafeKey::new(key),
        }
    }

    fn nonce(seq: usize) -> aead::Nonce {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&(seq as u32).to_be_bytes());
        aead::Nonce::assume_unique_for_key(iv)
    }

    /// Seal `ct` in place and write its tag.
    fn seal(&self, ct: &mut [u8], tag_out: &mut [u8], seq: usize) {
        let tag = self
            .key
            .seal_in_place_separate_tag(Self::nonce(seq), aead::Aad::from(&FRAME_AAD), ct)
            .expect("seal");
        tag_out[..16].copy_from_slice(tag.as_ref());
    }

    /// Open `ct` in place against `tag`.
    fn open_in_place(&self, ct: &mut [u8], tag: &[u8], seq: usize) {
        let tag = aead::Tag::try_from(tag).expect("16-byte tag");
        self.key
            .open_in_place_separate_tag(Self::nonce(seq), aead::Aad::from(&FRAME_AAD), tag, ct, 0..)
            .expect("open");
    }

    /// Seal `input` in frames into `out` (frame ‖ tag each), starting at frame `first`.
    fn seal_frames(&self, input: &[u8], out: &mut [u8], first: usize) {
        for (i, (plain, wire)) in input
            .chunks(FRAME)
            .zip(out.chunks_mut(FRAME + 16))
            .enumerate()
        {
            let (ct, tag_out) = wire.split_at_mut(plain.len());
            ct.copy_from_slice(plain);
            self.seal(ct, tag_out, first + i);
        }
    }

    /// Open frames of `input` (frame ‖ tag each) into `out`.
    fn open_frames(&self, input: &[u8], out: &mut [u8], first: usize) {
        for (i, (wire, plain)) in input
            .chunks(FRAME + 16)
            .zip(out.chunks_mut(FRAME))
            .enumerate()
        {
            let (ct, tag) = wire.split_at(wire.len() - 16);
            plain.copy_from_slice(ct);
            self.open_in_place(plain, tag, first + i);
        }
    }
}

fn wire_len(n: usize) -> usize {
    n + n.div_ceil(FRAME) * 16
}

/// One HKDF-SHA-512 extract and two expands, as a committing suite derives per message.
fn one_hkdf() {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, &[1u8; 32]).extract(&[2u8; 32]);
    let mut key = [0u8; 32];
    let mut commit = [0u8; 32];
    struct L(usize);
    impl hkdf::KeyType for L {
        fn len(&self) -> usize {
            self.0
        }
    }
    let info: &[&[u8]] = &[b"\x05\x78", b"DERIVEKEY"];
    prk.expand(info, L(32))
        .and_then(|o| o.fill(&mut key))
        .expect("hkdf");
    prk.expand(&[b"COMMITKEY"], L(32))
        .and_then(|o| o.fill(&mut commit))
        .expect("hkdf");
    std::hint::black_box((key, commit));
}

thread_local! {
    /// The ciphertext a decrypt limit run reads (made once per size).
    static LIMIT_WIRE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The output buffer of the "reused" limit.
    static LIMIT_OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One message's worth of limit work: HKDF, then the frames from the input into a fresh
/// output buffer (as any encrypt or decrypt returning new bytes must produce one), over
/// `threads` threads, then SHA-384 if signed. Spread over threads, the SHA-384 (one serial
/// stream) runs beside the AES threads over a buffer of the same length.
fn limit_run(plaintext: &[u8], op: &str, signed: bool, threads: usize, reuse: bool) {
    let limit = &Limit::new();
    let mut out = if reuse {
        LIMIT_OUT.with(|o| std::mem::take(&mut *o.borrow_mut()))
    } else {
        Vec::new()
    };
    LIMIT_WIRE.with(|cached| {
        let wire = &mut *cached.borrow_mut();
        let n = wire_len(plaintext.len());
        if wire.len() != n {
            wire.resize(n, 0);
            limit.seal_frames(plaintext, wire, 1);
        }
        let wire: &[u8] = wire;
        one_hkdf();
        let out_len = if op == "encrypt" { n } else { plaintext.len() };
        // Like esdk, spread over threads only from 4 MiB: below that one thread is faster.
        if threads == 1 || (plaintext.len() as u64) < esdk_core::parallel::MIN_PARALLEL_BYTES {
            // Sequential: build the output by appending, as a one-pass encoder does.
            out.clear();
            out.reserve(out_len);
            if op == "encrypt" {
                for (i, p) in plaintext.chunks(FRAME).enumerate() {
                    let at = out.len();
                    out.extend_from_slice(p);
                    out.extend_from_slice(&[0u8; 16]);
                    let (ct, tag) = out[at..].split_at_mut(p.len());
                    limit.seal(ct, tag, 1 + i);
                }
            } else {
                for (i, w) in wire.chunks(FRAME + 16).enumerate() {
                    let at = out.len();
                    out.extend_from_slice(&w[..w.len() - 16]);
                    limit.open_in_place(&mut out[at..], &w[w.len() - 16..], 1 + i);
                }
            }
            if signed {
                let hashed: &[u8] = if op == "encrypt" { &out } else { wire };
                std::hint::black_box(digest::digest(&digest::SHA384, hashed));
            }
            keep(out, reuse);
            return;
        }
        if !reuse {
            out = vec![0u8; out_len];
        } else if out.len() != out_len {
            out.resize(out_len, 0);
        }
        let frames = plaintext.len().div_ceil(FRAME).max(1);
        let aes_threads = if signed { threads - 1 } else { threads }.max(1);
        let per = frames.div_ceil(aes_threads);
        std::thread::scope(|s| {
            let hasher =
                signed.then(|| s.spawn(move || digest::digest(&digest::SHA384, plaintext)));
            if op == "encrypt" {
                for (i, (p, w)) in plaintext
                    .chunks(per * FRAME)
                    .zip(out.chunks_mut(per * (FRAME + 16)))
                    .enumerate()
                {
                    s.spawn(move || limit.seal_frames(p, w, 1 + i * per));
                }
            } else {
                for (i, (w, p)) in wire
                    .chunks(per * (FRAME + 16))
                    .zip(out.chunks_mut(per * FRAME))
                    .enumerate()
                {
                    s.spawn(move || limit.open_frames(w, p, 1 + i * per));
                }
            }
            if let Some(h) = hasher {
                std::hint::black_box(h.join().ok());
            }
        });
        keep(out, reuse);
    });
}

/// Keep a reused limit buffer for the next run, or drop a fresh one.
fn keep(out: Vec<u8>, reuse: bool) {
    let out = std::hint::black_box(out);
    if reuse {
        LIMIT_OUT.with(|o| *o.borrow_mut() = out);
    }
}

// ---------------------------------------------------------------------------------------
// Streaming paths.

fn stream_encrypt(
    client: &Client,
    source: &MaterialsSource,
    opts: &EncryptOptions,
    plaintext: &[u8],
) -> Result<usize, String> {
    let mut w =
        EncryptingWriter::new(client, source, opts, std::io::sink()).map_err(|e| e.to_string())?;
    for chunk in plaintext.chunks(64 * KIB) {
        w.write_all(chunk).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(plaintext.len())
}

fn stream_decrypt(
    client: &Client,
    source: &MaterialsSource,
    message: &[u8],
) -> Result<u64, String> {
    let mut r = DecryptingReader::new(client, source, &DecryptOptions::default(), message)
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * KIB];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

// ---------------------------------------------------------------------------------------
// Peak memory of a 1 GiB streamed message, in a child process.

fn rss_rows(args: &BenchArgs, threads: usize, provider: &str) -> Result<Vec<Row>, String> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("rss-message.bin");
    let mut rows = Vec::new();
    for op in ["encrypt", "decrypt"] {
        let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        cmd.args(["bench", "--rss-child", op, "--rss-bytes"])
            .arg(GIB.to_string())
            .arg("--rss-file")
            .arg(&file)
            .args(["--threads", &threads.to_string()]);
        if let Some(p) = &args.provider {
            cmd.args(["--provider", p]);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("running the memory child: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "memory child ({op}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("memory child output: {e}"))?;
        let secs = v["secs"].as_f64().unwrap_or(f64::NAN);
        let mut row = esdk_row(
            UNSIGNED_COMMIT,
            op,
            GIB as usize,
            threads,
            secs,
            "stream",
            provider,
        );
        row.peak_rss_bytes = v["peak_rss_bytes"].as_u64();
        rows.push(row);
    }
    let _ = std::fs::remove_file(&file);
    Ok(rows)
}

/// Peak resident set size of this process (VmHWM).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn rss_child(op: &str, args: &BenchArgs) -> Result<(), String> {
    let bytes = args.rss_bytes.ok_or("--rss-bytes missing")?;
    let path = args.rss_file.as_ref().ok_or("--rss-file missing")?;
    let client = client(UNSIGNED_COMMIT, args.threads.unwrap_or(1))?;
    let source = source()?;
    let start = Instant::now();
    match op {
        "encrypt" => {
            let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
            let opts = EncryptOptions::default().with_suite(UNSIGNED_COMMIT);
            let mut w =
                EncryptingWriter::new(&client, &source, &opts, file).map_err(|e| e.to_string())?;
            let chunk = pattern(MIB);
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                w.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
                left -= n as u64;
            }
            w.finish().map_err(|e| e.to_string())?;
        }
        "decrypt" => {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            let mut r = DecryptingReader::new(&client, &source, &DecryptOptions::default(), file)
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * KIB];
            let mut total = 0u64;
            loop {
                let n = r.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            if total != bytes {
                return Err(format!("decrypted {total} bytes, expected {bytes}"));
            }
        }
        other => return Err(format!("unknown --rss-child {other}")),
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"peak_rss_bytes": peak_rss(), "secs": secs})
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Provider comparison, each provider in its own child process.

fn provider_comparison(args: &BenchArgs) -> Result<String, String> {
    let mut out = String::from("\nCrypto providers (each in its own process; one thread):\n");
    let _ = writeln!(
        out,
        "{:<10} {:>14} {:>14} {:>14} {:>14} {:>16} {:>16} {:>12} {:>12} {:>12} {:>16} {:>16}",
        "provider",
        "0x0578 enc us",
        "0x0578 dec us",
        "0x0478 enc us",
        "0x0478 dec us",
        "0x0478 1M enc",
        "0x0478 1M dec",
        "P384 gen us",
        "sign us",
        "verify us",
        "AES-GCM 4K",
        "SHA-384"
    );
    for name in ["combined", "aws-lc", "ring"] {
        let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        cmd.args(["bench", "--provider-child", "--provider", name]);
        if args.quick {
            cmd.arg("--quick");
        }
        let o = cmd
            .output()
            .map_err(|e| format!("running the provider child: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "provider child {name} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).map_err(|e| format!("provider child output: {e}"))?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "{:<10} {:>14.1} {:>14.1} {:>14.1} {:>14.1} {:>11.0} MiB/s {:>11.0} MiB/s {:>12.1} {:>12.1} {:>12.1} {:>11.0} MiB/s {:>11.0} MiB/s",
            name,
            f("signed_1k_enc_us"),
            f("signed_1k_dec_us"),
            f("unsigned_1k_enc_us"),
            f("unsigned_1k_dec_us"),
            f("unsigned_1m_enc_mibs"),
            f("unsigned_1m_dec_mibs"),
            f("p384_keygen_us"),
            f("p384_sign_us"),
            f("p384_verify_us"),
            f("aes_gcm_4k_mibs"),
            f("sha384_mibs"),
        );
    }
    Ok(out)
}

fn provider_child(quick: bool) -> Result<(), String> {
    let budget = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(800)
    };
    let source = source()?;
    let mut result = serde_json::Map::new();
    for (suite, size, enc_key, dec_key, as_mibs) in [
        (
            SIGNED_COMMIT,
            KIB,
            "signed_1k_enc_us",
            "signed_1k_dec_us",
            false,
        ),
        (
            UNSIGNED_COMMIT,
            KIB,
            "unsigned_1k_enc_us",
            "unsigned_1k_dec_us",
            false,
        ),
        (
            UNSIGNED_COMMIT,
            MIB,
            "unsigned_1m_enc_mibs",
            "unsigned_1m_dec_mibs",
            true,
        ),
    ] {
        let client = client(suite, 1)?;
        let plaintext = pattern(size);
        let opts = EncryptOptions::default().with_suite(suite);
        let sample = client
            .encrypt_blocking(&source, &plaintext, &opts)
            .map_err(|e| e.to_string())?
            .ciphertext;
        let enc = measure(budget, || {
            std::hint::black_box(client.encrypt_blocking(&source, &plaintext, &opts).ok());
        });
        let dec = measure(budget, || {
            std::hint::black_box(
                client
                    .decrypt_blocking(&source, &sample, &DecryptOptions::default())
                    .ok(),
            );
        });
        let conv = |s: f64| if as_mibs { mib_per_s(size, s) } else { s * 1e6 };
        result.insert(enc_key.into(), conv(enc).into());
        result.insert(dec_key.into(), conv(dec).into());
    }
    let p = crypto::provider();
    let alg = esdk_core::suite::SignatureAlgorithm::EcdsaP384Sha384;
    let keygen = measure(budget, || {
        std::hint::black_box(p.generate_signing_key(alg).ok());
    });
    let key = p.generate_signing_key(alg).map_err(|e| e.to_string())?;
    let digest = [3u8; 48];
    let sign = measure(budget, || {
        std::hint::black_box(key.sign_digest(&digest).ok());
    });
    let sig = key.sign_digest(&digest).map_err(|e| e.to_string())?;
    let public = key.public_key_compressed();
    let verify = measure(budget, || {
        let vk = p.verifying_key(alg, &public).expect("valid point");
        std::hint::black_box(vk.verify_digest(&digest, &sig).is_ok());
    });
    let aead = p.aead_key(&[7u8; 32]).map_err(|e| e.to_string())?;
    let mut buf = pattern(MIB);
    let seal = measure(budget, || {
        for (i, frame) in buf.chunks_mut(FRAME).enumerate() {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
            std::hint::black_box(aead.seal_in_place(&iv, b"aad", frame).ok());
        }
    });
    let sha = measure(budget, || {
        let mut h = p.hasher(crypto::HashAlgorithm::Sha384);
        h.update(&buf);
        std::hint::black_box(h.finish());
    });
    result.insert("aes_gcm_4k_mibs".into(), mib_per_s(MIB, seal).into());
    result.insert("sha384_mibs".into(), mib_per_s(MIB, sha).into());
    result.insert("p384_keygen_us".into(), (keygen * 1e6).into());
    result.insert("p384_sign_us".into(), (sign * 1e6).into());
    result.insert("p384_verify_us".into(), (verify * 1e6).into());
    result.insert("provider".into(), p.name().into());
    println!("{}", serde_json::Value::Object(result));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The official SDKs.

fn official_rows(args: &BenchArgs, sizes: &[usize]) -> Result<Vec<Row>, String> {
    let root = workspace_root();
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let budget_ms = if args.quick { "300" } else { "1000" };
    let suites = "0x0478,0x0578";
    let list = |sizes: &[usize]| {
        sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };

    // Build times from scratch, each in its own target directory (recorded once, when the
    // build really starts from nothing).
    let ours = build_timed(
        "esdk (esdk-core + keyring-raw-aes)",
        Command::new("cargo")
            .args([
                "build",
                "--release",
                "-p",
                "esdk-core",
                "-p",
                "keyring-raw-aes",
                "--target-dir",
            ])
            .arg(target_dir().join("buildtime-ours"))
            .current_dir(&root),
        &dir.join("build-secs-ours.txt"),
    )?;
    let manifest = root.join("benches/official-rust/Cargo.toml");
    let official_target = target_dir().join("official-rust");
    let theirs = build_timed(
        "aws-esdk (official Rust crate)",
        Command::new("cargo")
            .args(["build", "--release", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&official_target),
        &dir.join("build-secs-official.txt"),
    )?;
    println!("build from scratch: ours {ours}, official Rust crate {theirs}");

    let mut rows = Vec::new();
    let exe = official_target.join("release/official-rust-bench");
    let out = Command::new(&exe)
        .args([
            "--sizes",
            &list(sizes),
            "--suites",
            suites,
            "--budget-ms",
            budget_ms,
        ])
        .output()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "official Rust bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    rows.extend(parse_official(&out.stdout, "aws-lc-rs")?);

    // Python: 256 MiB would take minutes per call at its speed; 1 KiB and 1 MiB tell enough.
    let venv = dir.join("py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("python3 -m venv: {e}"))?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "aws-encryption-sdk"])
                .status()
                .map_err(|e| format!("pip install aws-encryption-sdk: {e}"))?
                .success();
        if !ok {
            return Err("could not set up the Python venv with aws-encryption-sdk".into());
        }
    }
    let small: Vec<usize> = sizes.iter().copied().filter(|&s| s <= MIB).collect();
    let out = Command::new(&python)
        .arg(root.join("benches/official-python/bench.py"))
        .args([
            "--sizes",
            &list(&small),
            "--suites",
            suites,
            "--budget-ms",
            budget_ms,
        ])
        .output()
        .map_err(|e| format!("running the Python bench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "Python bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    rows.extend(parse_official(&out.stdout, "pyca/cryptography")?);
    Ok(rows)
}

/// Run a build, timing it; a build that compiled from scratch (over 30 s) is recorded in
/// `record`, and the recorded figure is what gets reported.
fn build_timed(name: &str, cmd: &mut Command, record: &Path) -> Result<String, String> {
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("building {name}: {e}"))?;
    if !status.success() {
        return Err(format!("building {name} failed"));
    }
    let secs = start.elapsed().as_secs_f64();
    if secs > 30.0 {
        let _ = std::fs::write(record, format!("{secs:.0}"));
    }
    Ok(match std::fs::read_to_string(record) {
        Ok(recorded) => format!("{} s", recorded.trim()),
        Err(_) => format!("(already built; {secs:.0} s now)"),
    })
}

fn parse_official(json: &[u8], provider: &str) -> Result<Vec<Row>, String> {
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| format!("official bench output: {e}"))?;
    v.iter()
        .map(|r| {
            let suite = r["suite"].as_str().unwrap_or("").to_string();
            Ok(Row {
                implementation: r["impl"].as_str().unwrap_or("?").to_string(),
                limit: if suite == "0x0578" {
                    "aes-gcm+sha384"
                } else {
                    "aes-gcm"
                },
                suite: Some(suite),
                op: if r["op"] == "encrypt" {
                    "encrypt"
                } else {
                    "decrypt"
                },
                size_bytes: r["size_bytes"].as_u64().unwrap_or(0),
                threads: 1,
                mib_per_s: r["mib_per_s"].as_f64().unwrap_or(f64::NAN),
                us_per_msg: r["us_per_msg"].as_f64().unwrap_or(f64::NAN),
                ratio_to_limit: None,
                peak_rss_bytes: None,
                api: "one-shot",
                output: "fresh",
                provider: provider.to_string(),
                keyring: Some(RAW_AES),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reporting.

/// Each row's ratio to the limit row of the same op, size, threads and limit kind.
fn fill_ratios(rows: &mut [Row]) {
    let limits: Vec<Row> = rows
        .iter()
        .filter(|r| r.implementation == "limit")
        .cloned()
        .collect();
    for row in rows.iter_mut().filter(|r| r.implementation != "limit") {
        // Sizes above the largest measured limit use the largest limit of that op.
        let limit = limits
            .iter()
            .filter(|l| {
                l.op == row.op
                    && l.threads == row.threads
                    && l.limit == row.limit
                    && l.output == row.output
                    && l.size_bytes <= row.size_bytes
            })
            .max_by_key(|l| l.size_bytes);
        row.ratio_to_limit = limit.map(|l| row.mib_per_s / l.mib_per_s);
    }
}

fn human_size(n: u64) -> String {
    if n >= GIB {
        format!("{} GiB", n / GIB)
    } else if n >= MIB as u64 {
        format!("{} MiB", n / MIB as u64)
    } else {
        format!("{} KiB", n / KIB as u64)
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<8} {:<10} {:<7} {:<8} {:>7} {:>3} {:<15} {:<8} {:<7} {:>10} {:>12} {:>7} {:>10}",
        "impl",
        "keyring",
        "suite",
        "op",
        "size",
        "thr",
        "limit",
        "api",
        "output",
        "MiB/s",
        "us/msg",
        "ratio",
        "peak RSS"
    );
    for r in rows {
        println!(
            "{:<8} {:<10} {:<7} {:<8} {:>7} {:>3} {:<15} {:<8} {:<7} {:>10.1} {:>12.1} {:>7} {:>10}",
            r.implementation,
            r.keyring.unwrap_or("-"),
            r.suite.as_deref().unwrap_or("-"),
            r.op,
            human_size(r.size_bytes),
            r.threads,
            r.limit,
            r.api,
            r.output,
            r.mib_per_s,
            r.us_per_msg,
            r.ratio_to_limit.map_or("-".into(), |x| format!("{x:.2}")),
            r.peak_rss_bytes
                .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / MIB as f64)),
        );
    }
}

fn find<'a>(
    rows: &'a [Row],
    imp: &str,
    suite: Option<&str>,
    op: &str,
    size: u64,
    threads: usize,
    api: &str,
) -> Option<&'a Row> {
    // The targets and the official comparison are about the raw AES keyring's rows.
    rows.iter().find(|r| {
        r.implementation == imp
            && r.keyring.is_none_or(|k| k == RAW_AES)
            && r.suite.as_deref() == suite
            && r.op == op
            && r.size_bytes == size
            && r.threads == threads
            && r.api == api
    })
}

fn print_targets(rows: &[Row], quick: bool) {
    println!("\nTargets:");
    let check = |name: String, value: Option<f64>, ok: &dyn Fn(f64) -> bool, unit: &str| match value
    {
        Some(v) => println!(
            "  [{}] {name}: {v:.2}{unit}",
            if ok(v) { "met " } else { "MISS" }
        ),
        None => println!("  [ -- ] {name}: not measured in this mode"),
    };
    let big: Vec<u64> = if quick {
        vec![MIB as u64]
    } else {
        vec![MIB as u64, 256 * MIB as u64]
    };
    for (suite, bound) in [("0x0478", 0.90), ("0x0578", 0.85)] {
        for &size in &big {
            for api in ["one-shot", "stream"] {
                for op in ["encrypt", "decrypt"] {
                    if api == "stream" && size < 256 * MIB as u64 {
                        continue;
                    }
                    let r = find(rows, "esdk", Some(suite), op, size, 1, api)
                        .and_then(|r| r.ratio_to_limit);
                    check(
                        format!(
                            "{suite} {op} {} {api} 1 thread, ratio to limit >= {bound}",
                            human_size(size)
                        ),
                        r,
                        &|v| v >= bound,
                        "",
                    );
                }
            }
        }
    }
    let all = rows.iter().map(|r| r.threads).max().unwrap_or(1);
    for (api, size) in [
        ("one-shot", 256 * MIB as u64),
        ("stream", 256 * MIB as u64),
        ("one-shot", 8 * MIB as u64),
    ] {
        for op in ["encrypt", "decrypt"] {
            let one = find(rows, "esdk", Some("0x0478"), op, size, 1, api);
            let many = find(rows, "esdk", Some("0x0478"), op, size, all, api);
            let v = one.zip(many).map(|(a, b)| b.mib_per_s / a.mib_per_s);
            check(
                format!(
                    "0x0478 {op} {} {api}, {all} threads vs 1, >= 1.7x",
                    human_size(size)
                ),
                v,
                &|v| v >= 1.7,
                "x",
            );
        }
    }
    for op in ["encrypt", "decrypt"] {
        let us =
            find(rows, "esdk", Some("0x0478"), op, KIB as u64, 1, "one-shot").map(|r| r.us_per_msg);
        let limit = find(rows, "limit", None, op, KIB as u64, 1, "raw").map(|r| r.us_per_msg);
        let v = us.zip(limit).map(|(a, b)| a / b);
        check(
            format!("0x0478 {op} 1 KiB, time / (limit + HKDF) <= 3"),
            v,
            &|v| v <= 3.0,
            "x",
        );
    }
    for (op, bound) in [("encrypt", 350.0), ("decrypt", 650.0)] {
        let us =
            find(rows, "esdk", Some("0x0578"), op, KIB as u64, 1, "one-shot").map(|r| r.us_per_msg);
        check(
            format!("0x0578 {op} 1 KiB <= {bound} us"),
            us,
            &|v| v <= bound,
            " us",
        );
    }
    for op in ["encrypt", "decrypt"] {
        let rss = rows
            .iter()
            .find(|r| r.op == op && r.peak_rss_bytes.is_some())
            .and_then(|r| r.peak_rss_bytes)
            .map(|b| b as f64 / MIB as f64);
        check(
            format!("peak RSS, 1 GiB streamed {op} < 32 MiB"),
            rss,
            &|v| v < 32.0,
            " MiB",
        );
    }
    for (suite, bound) in [("0x0478", 15.0), ("0x0578", 4.0)] {
        for &size in &big {
            for op in ["encrypt", "decrypt"] {
                let ours = find(rows, "esdk", Some(suite), op, size, 1, "one-shot");
                let theirs = find(rows, "aws-esdk", Some(suite), op, size, 1, "one-shot");
                let v = ours.zip(theirs).map(|(a, b)| a.mib_per_s / b.mib_per_s);
                check(
                    format!(
                        "{suite} {op} {} vs official Rust >= {bound}x",
                        human_size(size)
                    ),
                    v,
                    &|v| v >= bound,
                    "x",
                );
            }
        }
    }
    let compared: Vec<&Row> = rows
        .iter()
        .filter(|r| r.implementation == "aws-esdk" || r.implementation == "python")
        .collect();
    if !compared.is_empty() {
        println!("\nAgainst the official SDKs (one thread, one-shot):");
        for theirs in compared {
            let Some(ours) = find(
                rows,
                "esdk",
                theirs.suite.as_deref(),
                theirs.op,
                theirs.size_bytes,
                1,
                "one-shot",
            ) else {
                continue;
            };
            println!(
                "  {:<8} {} {:<7} {:>7}: esdk {:>9.1} MiB/s {:>9.1} us | {:<8} {:>8.1} MiB/s {:>9.1} us | {:>6.1}x",
                theirs.implementation,
                theirs.suite.as_deref().unwrap_or("-"),
                theirs.op,
                human_size(theirs.size_bytes),
                ours.mib_per_s,
                ours.us_per_msg,
                theirs.implementation,
                theirs.mib_per_s,
                theirs.us_per_msg,
                ours.mib_per_s / theirs.mib_per_s
            );
        }
    }
}

/// A horizontal bar chart: MiB/s of every throughput row (1 MiB and up), each esdk bar drawn
/// over the pale bar of its limit.
fn chart(rows: &[Row], provider: &str) -> String {
    let bars: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.size_bytes >= MIB as u64 && r.implementation != "limit" && r.peak_rss_bytes.is_none()
        })
        .collect();
    let limit_of = |r: &Row| {
        rows.iter()
            .filter(|l| {
                l.implementation == "limit"
                    && l.op == r.op
                    && l.threads == r.threads
                    && l.limit == r.limit
                    && l.output == r.output
                    && l.size_bytes <= r.size_bytes
            })
            .max_by_key(|l| l.size_bytes)
            .map(|l| l.mib_per_s)
    };
    let max = bars
        .iter()
        .flat_map(|r| [Some(r.mib_per_s), limit_of(r)])
        .flatten()
        .fold(1.0f64, f64::max);
    let (left, width, bar_h, gap, top) = (300.0, 560.0, 16.0, 6.0, 50.0);
    let height = top + bars.len() as f64 * (bar_h + gap) + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        left + width + 120.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15">esdk throughput (MiB/s, plaintext) vs the limit (pale), provider {provider}: cargo xtask bench</text>"#
    );
    for (i, r) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let label = format!(
            "{} {} {} {} {} thr{}",
            r.implementation,
            r.suite.as_deref().unwrap_or("-"),
            r.op,
            human_size(r.size_bytes),
            r.threads,
            if r.api == "stream" { " (stream)" } else { "" }
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
            left - 8.0,
            y + 12.0
        );
        if let Some(l) = limit_of(r) {
            let _ = writeln!(
                s,
                r##"<rect x="{left}" y="{y}" width="{:.1}" height="{bar_h}" fill="#d9d9d9"/>"##,
                l / max * width
            );
        }
        let color = match (r.implementation.as_str(), r.op) {
            ("esdk", "encrypt") => "#2b6cb0",
            ("esdk", _) => "#2f855a",
            _ => "#c05621",
        };
        let w = r.mib_per_s / max * width;
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{}" width="{w:.1}" height="{}" fill="{color}"/>"#,
            y + 3.0,
            bar_h - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{:.0}{}</text>"#,
            left + w.max(limit_of(r).map_or(0.0, |l| l / max * width)) + 6.0,
            y + 12.0,
            r.mib_per_s,
            r.ratio_to_limit
                .map_or(String::new(), |x| format!(" ({:.0}%)", x * 100.0))
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], KIB),
        Some('M' | 'm') => (&s[..s.len() - 1], MIB),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad size {s:?} (e.g. 1K, 256M)"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Says where the PKCS#11 rows' token is to the re-run processes (set by the outermost one).
const HSM_UNAVAILABLE_VAR: &str = "ESDK_BENCH_HSM_UNAVAILABLE";

/// The SoftHSM2 token of the PKCS#11 rows, as handed from process to process. (No `Debug`:
/// the variables hold the PIN.)
enum HsmToken {
    /// The token's variables ([`SoftHsm::env`]): set up here, or inherited.
    Ready(Vec<(String, String)>),
    /// Why there is none.
    Unavailable(String),
}

impl HsmToken {
    /// The token a parent process handed down (or `cargo xtask softhsm -- cargo xtask bench`
    /// set up), else a new one whose guard the caller keeps for as long as it is used.
    fn get() -> (Self, Option<SoftHsm>) {
        if let Ok(why) = std::env::var(HSM_UNAVAILABLE_VAR) {
            return (Self::Unavailable(why), None);
        }
        if std::env::var_os("ESDK_PKCS11_MODULE").is_some() {
            let env = std::env::vars()
                .filter(|(k, _)| k.starts_with("ESDK_PKCS11_") || k == "SOFTHSM2_CONF")
                .collect();
            return (Self::Ready(env), None);
        }
        match SoftHsm::setup() {
            Ok(hsm) => (Self::Ready(hsm.env().to_vec()), Some(hsm)),
            Err(e) => (
                Self::Unavailable(format!("no SoftHSM2 token could be set up: {e}")),
                None,
            ),
        }
    }

    /// Hand the token (or why there is none) to a child process.
    fn apply(&self, cmd: &mut Command) {
        match self {
            Self::Ready(env) => {
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
            }
            Self::Unavailable(why) => {
                cmd.env(HSM_UNAVAILABLE_VAR, why);
            }
        }
    }

    fn var(&self, name: &str) -> Result<&str, String> {
        match self {
            Self::Ready(env) => env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("{name} is not set")),
            Self::Unavailable(why) => Err(why.clone()),
        }
    }

    /// The PKCS#11 keyrings on the token, by row name: AES mode on the AES-256 key, RSA mode
    /// (OAEP-SHA1, as SoftHSM2 unwraps) on the RSA-2048 key pair.
    fn sources(&self) -> Result<Vec<(&'static str, MaterialsSource)>, String> {
        let config = Pkcs11Config::new(
            self.var("ESDK_PKCS11_MODULE")?,
            TokenSelector::Label(self.var("ESDK_PKCS11_TOKEN")?.to_owned()),
            PinSource::Secret(Pin::new(self.var("ESDK_PKCS11_PIN")?)),
        )
        .max_sessions(2);
        let token = Pkcs11Token::open(config).map_err(|e| format!("opening the token: {e}"))?;
        let aes = HsmAesKeyring::new(
            &token,
            AesKeyConfig::new("bench", "pkcs11-aes", self.var("ESDK_PKCS11_AES_LABEL")?),
        )
        .map_err(|e| format!("the AES-mode keyring: {e}"))?;
        let rsa = HsmRsaKeyring::new(
            &token,
            RsaKeyConfig::new("bench", "pkcs11-rsa", RsaPadding::OaepSha1)
                .private_key_label(self.var("ESDK_PKCS11_RSA_LABEL")?),
        )
        .map_err(|e| format!("the RSA-mode keyring: {e}"))?;
        Ok(vec![
            ("pkcs11-aes", MaterialsSource::keyring(aes)),
            ("pkcs11-rsa", MaterialsSource::keyring(rsa)),
        ])
    }
}

/// The PKCS#11 rows next to the raw AES keyring's row of the same case.
fn print_hsm_summary(rows: &[Row]) {
    let hsm: Vec<&Row> = rows
        .iter()
        .filter(|r| r.keyring.is_some_and(|k| k.starts_with("pkcs11")))
        .collect();
    if hsm.is_empty() {
        return;
    }
    println!("\nPKCS#11 keyrings (SoftHSM2) next to the raw AES keyring, per message:");
    for r in hsm {
        let raw = find(
            rows,
            "esdk",
            r.suite.as_deref(),
            r.op,
            r.size_bytes,
            r.threads,
            r.api,
        );
        println!(
            "  {:<10} {} {:<7} {:>7} {} thr: {:>9.1} us{}",
            r.keyring.unwrap_or("-"),
            r.suite.as_deref().unwrap_or("-"),
            r.op,
            human_size(r.size_bytes),
            r.threads,
            r.us_per_msg,
            raw.map_or(String::new(), |raw| format!(
                " | raw-aes {:>7.1} us | {:>6.1}x",
                raw.us_per_msg,
                r.us_per_msg / raw.us_per_msg
            )),
        );
    }
}
