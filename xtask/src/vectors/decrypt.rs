//! `cargo xtask vectors decrypt MANIFEST`: run an official decrypt manifest (the legacy
//! `ciphertext` manifest, or `awses-decrypt` versions 1 to 4).

use super::keys::{build_keyrings, load_keys, spec_from_master_key, KeyringSpec, RsaPadding};
use super::Tally;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use esdk::{
    Client, CommitmentPolicy, DecryptOptions, EncryptionContext, MaterialsSource,
    RequiredEncryptionContextCmm,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What one vector asks for.
pub struct DecryptVector {
    /// Test id.
    pub id: String,
    /// Ciphertext file.
    pub ciphertext: PathBuf,
    /// Expected plaintext file, or `None` when decryption must fail.
    pub plaintext: Option<PathBuf>,
    /// The keyrings to decrypt with (several: a multi-keyring, first is the generator).
    pub keyrings: Vec<KeyringSpec>,
    /// `RequiredEncryptionContext` CMM with these keys, or the default CMM.
    pub required_keys: Option<Vec<String>>,
    /// The reproduced encryption context.
    pub reproduced: Option<EncryptionContext>,
    /// Only the unsigned streaming API may be used.
    pub unsigned_only: bool,
}

/// Resolve a `file://` URI against the directory of the manifest that names it.
fn resolve(dir: &Path, uri: &str) -> Result<PathBuf> {
    let rest = uri
        .strip_prefix("file://")
        .ok_or_else(|| anyhow!("unsupported URI scheme in {uri:?}: only file:// is allowed"))?;
    Ok(dir.join(rest))
}

fn context_from(value: &Value) -> Result<EncryptionContext> {
    let mut ctx = EncryptionContext::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| anyhow!("encryption context value for {k:?} is not a string"))?;
            ctx.insert(k.clone(), v.to_owned());
        }
    }
    Ok(ctx)
}

/// Load the vectors of a manifest, whichever kind it is.
pub fn load_manifest(path: &Path) -> Result<Vec<DecryptVector>> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    match doc["manifest"]["type"].as_str() {
        Some("ciphertext") => load_legacy(&doc, dir),
        Some("awses-decrypt") => load_awses(&doc, dir),
        other => bail!("{}: unsupported manifest type {other:?}", path.display()),
    }
}

fn load_awses(doc: &Value, dir: &Path) -> Result<Vec<DecryptVector>> {
    let version = doc["manifest"]["version"].as_u64().unwrap_or(0);
    if !(1..=4).contains(&version) {
        bail!("awses-decrypt version {version} is not supported (1 to 4 are)");
    }
    let keys_uri = doc["keys"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without `keys`"))?;
    let keys = load_keys(&resolve(dir, keys_uri)?)?;
    let tests = doc["tests"]
        .as_object()
        .ok_or_else(|| anyhow!("manifest without `tests`"))?;
    let mut out = Vec::new();
    for (id, t) in tests {
        let ciphertext = resolve(
            dir,
            t["ciphertext"]
                .as_str()
                .ok_or_else(|| anyhow!("{id}: no ciphertext"))?,
        )?;
        let plaintext = if version == 1 {
            Some(resolve(dir, t["plaintext"].as_str().unwrap_or_default())?)
        } else if let Some(p) = t["result"]["output"]["plaintext"].as_str() {
            Some(resolve(dir, p)?)
        } else if t["result"].get("error").is_some() {
            None
        } else {
            bail!("{id}: result has neither output nor error");
        };
        let keyrings = t["master-keys"]
            .as_array()
            .ok_or_else(|| anyhow!("{id}: no master-keys"))?
            .iter()
            .map(|mk| spec_from_master_key(mk, &keys))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("test {id}"))?;
        let context = context_from(&t["encryption-context"])?;
        let (required_keys, reproduced) = match t["cmm"].as_str() {
            Some("RequiredEncryptionContext") => {
                (Some(context.keys().cloned().collect()), Some(context))
            }
            Some("Default") | None => (None, t.get("encryption-context").map(|_| context)),
            Some(other) => bail!("{id}: unknown cmm {other:?}"),
        };
        out.push(DecryptVector {
            id: id.clone(),
            ciphertext,
            plaintext,
            keyrings,
            required_keys,
            reproduced,
            unsigned_only: t["decryption-method"] == "streaming-unsigned-only",
        });
    }
    Ok(out)
}

fn load_legacy(doc: &Value, manifest_dir: &Path) -> Result<Vec<DecryptVector>> {
    // Legacy file names are relative to the set directory, the parent of `manifests/`.
    let set_dir = manifest_dir.parent().unwrap_or(manifest_dir);
    let test_keys = &doc["test_keys"];
    let mut out = Vec::new();
    for (index, case) in doc["test_cases"]
        .as_array()
        .ok_or_else(|| anyhow!("legacy manifest without test_cases"))?
        .iter()
        .enumerate()
    {
        let ct_name = case["ciphertext"]["filename"]
            .as_str()
            .ok_or_else(|| anyhow!("case {index}: no ciphertext"))?;
        let suite_id = u16::from_str_radix(case["algorithm"].as_str().unwrap_or_default(), 16)
            .with_context(|| format!("case {index}: bad algorithm"))?;
        let suite = esdk::AlgorithmSuite::from_id(suite_id)
            .ok_or_else(|| anyhow!("case {index}: unknown suite {suite_id:04x}"))?;
        let mut keyrings = Vec::new();
        for mk in case["master_keys"].as_array().into_iter().flatten() {
            // Ephemeral keys were thrown away after encryption; only decryptable ones exist.
            if mk["decryptable"] != true {
                continue;
            }
            let namespace = mk["provider_id"].as_str().unwrap_or_default().to_owned();
            let alg = mk["encryption_algorithm"].as_str().unwrap_or_default();
            let padding_alg = mk["padding_algorithm"].as_str().unwrap_or_default();
            let padding_hash = mk["padding_hash"].as_str().unwrap_or_default();
            match alg {
                "AES" => {
                    let bits = suite.key_len() * 8;
                    let key_b64 = test_keys["AES"][bits.to_string()]["key"][0]
                        .as_str()
                        .ok_or_else(|| anyhow!("no AES.{bits} test key"))?;
                    keyrings.push(KeyringSpec::RawAes {
                        namespace,
                        name: format!("AES.{bits}.{padding_alg}.{padding_hash}"),
                        key: base64::engine::general_purpose::STANDARD.decode(key_b64)?,
                    });
                }
                "RSA" => {
                    let bits = mk["key_bits"].as_u64().unwrap_or(2048);
                    let entry = &test_keys["RSA"][bits.to_string()];
                    let sep = entry["line_separator"].as_str().unwrap_or("\n");
                    let pem = entry["key"]
                        .as_array()
                        .ok_or_else(|| anyhow!("no RSA.{bits} test key"))?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(sep);
                    keyrings.push(KeyringSpec::RawRsa {
                        namespace,
                        name: format!("RSA.{bits}.{padding_alg}.{padding_hash}"),
                        padding: RsaPadding::parse(
                            &padding_alg.replace("OAEP-MGF1", "oaep-mgf1"),
                            Some(padding_hash),
                        )?,
                        pem,
                        private: true,
                    });
                }
                _ => keyrings.push(KeyringSpec::Unsupported(format!("{alg} master key"))),
            }
        }
        out.push(DecryptVector {
            id: ct_name.to_owned(),
            ciphertext: set_dir.join(ct_name),
            plaintext: Some(
                set_dir.join(
                    case["plaintext"]["filename"]
                        .as_str()
                        .ok_or_else(|| anyhow!("case {index}: no plaintext"))?,
                ),
            ),
            keyrings,
            required_keys: None,
            reproduced: None,
            unsigned_only: false,
        });
    }
    Ok(out)
}

/// Decrypt one vector with every decrypt API; `Ok(Err(reason))` means skipped.
pub fn run_vector(v: &DecryptVector) -> Result<Result<(), String>> {
    let keyring = match build_keyrings(&v.keyrings)? {
        Ok(k) => k,
        Err(why) => return Ok(Err(why)),
    };
    let source: MaterialsSource = match &v.required_keys {
        Some(keys) => MaterialsSource::cmm(RequiredEncryptionContextCmm::with_keyring(
            keyring,
            keys.clone(),
        )),
        None => keyring.into(),
    };
    let client = Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()?;
    let options = DecryptOptions {
        reproduced_encryption_context: v.reproduced.clone(),
        unsigned_only: v.unsigned_only,
    };
    let message = std::fs::read(&v.ciphertext)
        .with_context(|| format!("reading {}", v.ciphertext.display()))?;
    let expected = match &v.plaintext {
        Some(p) => Some(std::fs::read(p)?),
        None => None,
    };
    // Every decrypt API: one-shot, and (unless the vector names the unsigned streaming API
    // only, which the options enforce on both) the streaming reader, fed in odd-sized reads.
    let one_shot = client
        .decrypt_blocking(&source, &message, &options)
        .map(|o| o.plaintext)
        .map_err(|e| e.to_string());
    check_outcome("one-shot", &v.id, expected.as_deref(), one_shot)?;
    let streamed = stream_decrypt(&client, &source, &options, &message);
    check_outcome("streaming", &v.id, expected.as_deref(), streamed)?;
    Ok(Ok(()))
}

/// Decrypt through the streaming reader, reading 7 bytes at a time from a reader that hands
/// out at most 5, so every frame boundary lands mid-read.
fn stream_decrypt(
    client: &Client,
    source: &MaterialsSource,
    options: &DecryptOptions,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(5).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut reader = esdk::stream::DecryptingReader::new(client, source, options, Trickle(message))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(esdk::stream::error_of(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string()))
            }
        }
    }
}

/// Compare one API's result with the vector's expectation.
fn check_outcome(
    api: &str,
    id: &str,
    expected: Option<&[u8]>,
    result: Result<Vec<u8>, String>,
) -> Result<()> {
    match (expected, result) {
        (Some(expected), Ok(plaintext)) => {
            if plaintext != expected {
                bail!(
                    "{api}: plaintext differs ({} bytes, expected {})",
                    plaintext.len(),
                    expected.len()
                );
            }
        }
        (Some(_), Err(e)) => bail!("{api}: decryption failed: {e}"),
        (None, Ok(_)) => bail!("{api}: decryption succeeded but the manifest expects an error"),
        (None, Err(e)) => {
            if std::env::var_os("ESDK_VECTORS_SHOW_ERRORS").is_some() {
                println!("expected error ({api}) for {id}: {e}");
            }
        }
    }
    Ok(())
}

/// Run a manifest and print failures and the closing tally.
pub fn run(manifest: &Path, verbose: bool) -> Result<Tally> {
    let vectors = load_manifest(manifest)?;
    let mut tally = Tally::default();
    let mut skip_reasons = std::collections::BTreeMap::<String, usize>::new();
    for v in &vectors {
        match run_vector(v) {
            Ok(Ok(())) => {
                tally.passed += 1;
                if verbose {
                    println!("PASS {}", v.id);
                }
            }
            Ok(Err(why)) => {
                tally.skipped += 1;
                *skip_reasons.entry(why).or_default() += 1;
            }
            Err(e) => {
                tally.failed += 1;
                println!("FAIL {}: {e:#}", v.id);
            }
        }
    }
    for (why, n) in skip_reasons {
        println!("skipped {n}: {why}");
    }
    Ok(tally)
}
