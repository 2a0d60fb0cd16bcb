//! `cargo xtask vectors encrypt MANIFEST --out DIR`: run an official `awses-encrypt` manifest
//! (v5 with `encryption-scenario`s, as in the Dafny 4.1.0 set; v1 to v4 with `master-keys`)
//! and write what it produces as an `awses-decrypt` manifest (`manifest.json`, `keys.json`,
//! `ciphertexts/`, `plaintexts/`) that any ESDK runner, ours included, can decrypt.
//!
//! The output is version 2 when every test uses the default CMM with no reproduced context,
//! and version 4 (`cmm` + `encryption-context`, the form ESDK-NET and Dafny use) otherwise.

use super::keys::{build_keyring, load_keys, spec_from_master_key, Keys};
use super::Tally;
use anyhow::{anyhow, bail, Context, Result};
use esdk::{
    AlgorithmSuite, Client, CommitmentPolicy, EncryptOptions, EncryptionContext, Keyring,
    MaterialsSource, RequiredEncryptionContextCmm,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The client name written into produced manifests.
pub const CLIENT_NAME: &str = "esdk-rs";

/// A key description (the `encryptKeyDescription` / `decryptKeyDescription` of a v5
/// scenario, or a v1-v4 `master-keys` list).
#[derive(Debug, Clone)]
enum KeyDescription {
    /// A raw AES or RSA key, with its manifest JSON (copied into the decrypt manifest).
    Raw { json: Value, key_name: String },
    /// A multi-keyring.
    Multi {
        generator: Option<Box<KeyDescription>>,
        children: Vec<KeyDescription>,
    },
    /// The required-encryption-context CMM over a keyring.
    RequiredCmm {
        underlying: Box<KeyDescription>,
        keys: Vec<String>,
    },
}

/// Parse a key description; `Ok(Err(reason))` when this workspace cannot use it.
fn parse_description(v: &Value, keys: &Keys) -> Result<Result<KeyDescription, String>> {
    let kind = v["type"].as_str().unwrap_or_default();
    match kind {
        "raw" => {
            let spec = spec_from_master_key(v, keys)?;
            if let super::keys::KeyringSpec::Unsupported(what) = spec {
                return Ok(Err(format!("needs a {what}")));
            }
            let key_name = v["key"]
                .as_str()
                .ok_or_else(|| anyhow!("raw key description without `key`"))?
                .to_owned();
            Ok(Ok(KeyDescription::Raw {
                json: v.clone(),
                key_name,
            }))
        }
        "multi-keyring" => {
            let generator = match v.get("generator") {
                Some(g) if !g.is_null() => match parse_description(g, keys)? {
                    Ok(d) => Some(Box::new(d)),
                    Err(why) => return Ok(Err(why)),
                },
                _ => None,
            };
            let mut children = Vec::new();
            for c in v["childKeyrings"].as_array().into_iter().flatten() {
                match parse_description(c, keys)? {
                    Ok(d) => children.push(d),
                    Err(why) => return Ok(Err(why)),
                }
            }
            if generator.is_none() && children.is_empty() {
                bail!("multi-keyring description with neither generator nor children");
            }
            Ok(Ok(KeyDescription::Multi {
                generator,
                children,
            }))
        }
        "required-encryption-context-cmm" => {
            let underlying = match parse_description(&v["underlying"], keys)? {
                Ok(d) => d,
                Err(why) => return Ok(Err(why)),
            };
            let keys = v["requiredEncryptionContextKeys"]
                .as_array()
                .ok_or_else(|| anyhow!("required-encryption-context-cmm without keys"))?
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("required key is not a string"))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Ok(KeyDescription::RequiredCmm {
                underlying: Box::new(underlying),
                keys,
            }))
        }
        "raw-ecdh" => Ok(Err(
            "needs the raw ECDH keyring (not in this workspace)".into()
        )),
        "" => bail!("key description without `type`"),
        other => Ok(Err(format!(
            "needs a {other} keyring (not in this workspace)"
        ))),
    }
}

/// A v1-v4 `master-keys` list: one key alone, or a multi-keyring whose first is the generator.
fn parse_master_keys(list: &Value, keys: &Keys) -> Result<Result<KeyDescription, String>> {
    let mut parsed = Vec::new();
    for mk in list
        .as_array()
        .ok_or_else(|| anyhow!("`master-keys` is not a list"))?
    {
        match parse_description(mk, keys)? {
            Ok(d) => parsed.push(d),
            Err(why) => return Ok(Err(why)),
        }
    }
    if parsed.is_empty() {
        bail!("empty `master-keys`");
    }
    if parsed.len() == 1 {
        return Ok(Ok(parsed.remove(0)));
    }
    let generator = parsed.remove(0);
    Ok(Ok(KeyDescription::Multi {
        generator: Some(Box::new(generator)),
        children: parsed,
    }))
}

impl KeyDescription {
    /// The keyring this description names (not for a CMM description).
    fn keyring(&self, keys: &Keys) -> Result<Arc<dyn Keyring>> {
        match self {
            KeyDescription::Raw { json, .. } => {
                let spec = spec_from_master_key(json, keys)?;
                build_keyring(&spec)?.map_err(|why| anyhow!(why))
            }
            KeyDescription::Multi {
                generator,
                children,
            } => {
                let generator = generator.as_ref().map(|g| g.keyring(keys)).transpose()?;
                let children = children
                    .iter()
                    .map(|c| c.keyring(keys))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(esdk::multi::MultiKeyring::new(
                    generator, children,
                )?))
            }
            KeyDescription::RequiredCmm { .. } => {
                bail!("a required-encryption-context CMM cannot be used as a keyring")
            }
        }
    }

    /// The materials source (keyring through the default CMM, or the required-context CMM).
    fn source(&self, keys: &Keys) -> Result<MaterialsSource> {
        match self {
            KeyDescription::RequiredCmm {
                underlying,
                keys: required,
            } => Ok(MaterialsSource::cmm(
                RequiredEncryptionContextCmm::with_keyring(
                    underlying.keyring(keys)?,
                    required.clone(),
                ),
            )),
            other => Ok(other.keyring(keys)?.into()),
        }
    }

    /// The decrypt manifest's `master-keys` (first = generator) and the required keys if a
    /// required-context CMM is asked for.
    fn master_keys(&self) -> Result<(Vec<Value>, Option<Vec<String>>), String> {
        match self {
            KeyDescription::Raw { json, .. } => Ok((vec![json.clone()], None)),
            KeyDescription::Multi {
                generator,
                children,
            } => {
                let mut out = Vec::new();
                for member in generator.iter().map(|g| &**g).chain(children.iter()) {
                    match member.master_keys()? {
                        (mks, None) => out.extend(mks),
                        (_, Some(_)) => return Err(
                            "a CMM inside a multi-keyring cannot be written as a decrypt manifest"
                                .into(),
                        ),
                    }
                }
                Ok((out, None))
            }
            KeyDescription::RequiredCmm { underlying, keys } => match underlying.master_keys()? {
                (mks, None) => Ok((mks, Some(keys.clone()))),
                (_, Some(_)) => Err(
                    "nested required-context CMMs cannot be written as a decrypt manifest".into(),
                ),
            },
        }
    }

    /// Every key-manifest name this description uses.
    fn key_names(&self, out: &mut BTreeSet<String>) {
        match self {
            KeyDescription::Raw { key_name, .. } => {
                out.insert(key_name.clone());
            }
            KeyDescription::Multi {
                generator,
                children,
            } => {
                for m in generator.iter().map(|g| &**g).chain(children.iter()) {
                    m.key_names(out);
                }
            }
            KeyDescription::RequiredCmm { underlying, .. } => underlying.key_names(out),
        }
    }
}

/// One scenario to encrypt.
struct Scenario {
    id: String,
    description: Option<String>,
    plaintext: String,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
    context: EncryptionContext,
    reproduced: EncryptionContext,
    encrypt: KeyDescription,
    decrypt: KeyDescription,
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
    } else if !value.is_null() {
        bail!("encryption context is not an object");
    }
    Ok(ctx)
}

fn parse_suite(v: &Value) -> Result<Option<AlgorithmSuite>> {
    let Some(hex) = v.as_str() else {
        return Ok(None);
    };
    let id = u16::from_str_radix(hex.trim_start_matches("0x"), 16)
        .with_context(|| format!("bad algorithm suite id {hex:?}"))?;
    AlgorithmSuite::from_id(id)
        .map(Some)
        .ok_or_else(|| anyhow!("unknown algorithm suite {hex}"))
}

fn parse_frame(v: &Value) -> Result<u32> {
    match v {
        Value::Null => Ok(esdk::DEFAULT_FRAME_LENGTH),
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| anyhow!("bad frame-size {v}")),
    }
}

/// Parse every test: `Ok(scenario)` or a skip reason.
fn load_scenarios(doc: &Value, keys: &Keys) -> Result<Vec<(String, Result<Scenario, String>)>> {
    let version = doc["manifest"]["version"].as_u64().unwrap_or(0);
    let tests = doc["tests"]
        .as_object()
        .ok_or_else(|| anyhow!("manifest without `tests`"))?;
    let mut out = Vec::new();
    for (id, t) in tests {
        let parsed = (|| -> Result<Result<Scenario, String>> {
            let (s, encrypt, decrypt, reproduced) = if version >= 5 {
                let s = &t["encryption-scenario"];
                if s.is_null() {
                    return Ok(Err("not an encryption-scenario".into()));
                }
                let kind = s["type"].as_str().unwrap_or_default();
                if kind != "positive-esdk" {
                    return Ok(Err(format!("scenario type {kind:?} is not positive-esdk")));
                }
                let encrypt = match parse_description(&s["encryptKeyDescription"], keys)? {
                    Ok(d) => d,
                    Err(why) => return Ok(Err(why)),
                };
                let decrypt = match parse_description(&s["decryptKeyDescription"], keys)? {
                    Ok(d) => d,
                    Err(why) => return Ok(Err(why)),
                };
                let reproduced = context_from(&s["reproduced-encryption-context"])?;
                (s, encrypt, decrypt, reproduced)
            } else {
                if matches!(t["cmm"].as_str(), Some(c) if c != "Default") {
                    return Ok(Err(format!("cmm {:?} in a v{version} manifest", t["cmm"])));
                }
                let desc = match parse_master_keys(&t["master-keys"], keys)? {
                    Ok(d) => d,
                    Err(why) => return Ok(Err(why)),
                };
                (t, desc.clone(), desc, EncryptionContext::new())
            };
            let suite = parse_suite(if version >= 5 {
                &s["algorithmSuiteId"]
            } else {
                &s["algorithm"]
            })?;
            let frame_length = parse_frame(&s["frame-size"])?;
            if frame_length == 0 {
                return Ok(Err(
                    "frame-size 0 (non-framed): this workspace writes framed messages only".into(),
                ));
            }
            Ok(Ok(Scenario {
                id: id.clone(),
                description: s["description"].as_str().map(str::to_owned),
                plaintext: s["plaintext"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no plaintext"))?
                    .to_owned(),
                suite,
                frame_length,
                context: context_from(&s["encryption-context"])?,
                reproduced,
                encrypt,
                decrypt,
            }))
        })()
        .with_context(|| format!("test {id}"))?;
        out.push((id.clone(), parsed));
    }
    Ok(out)
}

/// Where the output goes; refuses a non-empty folder that is not an earlier output of ours.
fn prepare_out_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let manifest = out.join("manifest.json");
        let ours = std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|m| m["client"]["name"] == CLIENT_NAME);
        let empty = std::fs::read_dir(out)?.next().is_none();
        if !ours && !empty {
            bail!(
                "{} exists and is not an earlier `vectors encrypt` output; choose an empty or new folder",
                out.display()
            );
        }
        for sub in ["ciphertexts", "plaintexts"] {
            let p = out.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p)?;
            }
        }
    }
    std::fs::create_dir_all(out.join("ciphertexts"))?;
    std::fs::create_dir_all(out.join("plaintexts"))?;
    Ok(())
}

fn client_for(suite: Option<AlgorithmSuite>) -> Result<Client> {
    let policy = match suite {
        Some(s) if !s.is_committing() => CommitmentPolicy::ForbidEncryptAllowDecrypt,
        _ => CommitmentPolicy::RequireEncryptRequireDecrypt,
    };
    Ok(Client::builder().commitment_policy(policy).build()?)
}

/// A file name safe on every platform for a test id.
fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Run `manifest` and write the decrypt manifest into `out`.
pub fn run(manifest: &Path, out: &Path, verbose: bool) -> Result<Tally> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(manifest).with_context(|| format!("reading {}", manifest.display()))?,
    )
    .with_context(|| format!("parsing {}", manifest.display()))?;
    if doc["manifest"]["type"] != "awses-encrypt" {
        bail!("{} is not an awses-encrypt manifest", manifest.display());
    }
    let version = doc["manifest"]["version"].as_u64().unwrap_or(0);
    if !matches!(version, 1..=5) {
        bail!("awses-encrypt version {version} is not supported (1 to 5 are)");
    }
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let keys_uri = doc["keys"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without `keys`"))?;
    let keys_path = resolve(dir, keys_uri)?;
    let keys = load_keys(&keys_path)?;
    let keys_doc: Value = serde_json::from_slice(&std::fs::read(&keys_path)?)?;

    prepare_out_dir(out)?;

    // Plaintexts: random bytes of each named length.
    let mut plaintexts = BTreeMap::new();
    for (name, size) in doc["plaintexts"]
        .as_object()
        .ok_or_else(|| anyhow!("manifest without `plaintexts`"))?
    {
        let size = size
            .as_u64()
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| *s <= 1 << 30)
            .ok_or_else(|| anyhow!("plaintext {name}: bad size {size}"))?;
        let mut bytes = vec![0u8; size];
        esdk::crypto::provider().fill_random(&mut bytes)?;
        std::fs::write(out.join("plaintexts").join(file_name(name)), &bytes)?;
        plaintexts.insert(name.clone(), bytes);
    }

    let mut tally = Tally::default();
    let mut skip_reasons = BTreeMap::<String, usize>::new();
    let mut tests = Map::new();
    let mut used_keys = BTreeSet::new();
    let mut needs_v4 = false;
    for (id, scenario) in load_scenarios(&doc, &keys)? {
        let s = match scenario {
            Ok(s) => s,
            Err(why) => {
                tally.skipped += 1;
                *skip_reasons.entry(why).or_default() += 1;
                continue;
            }
        };
        let (master_keys, required) = match s.decrypt.master_keys() {
            Ok(x) => x,
            Err(why) => {
                tally.skipped += 1;
                *skip_reasons.entry(why).or_default() += 1;
                continue;
            }
        };
        match encrypt_one(&s, &keys, &plaintexts) {
            Ok(ciphertext) => {
                let name = file_name(&s.id);
                std::fs::write(out.join("ciphertexts").join(&name), ciphertext)?;
                s.encrypt.key_names(&mut used_keys);
                s.decrypt.key_names(&mut used_keys);
                let mut test = Map::new();
                if let Some(d) = &s.description {
                    test.insert("description".into(), json!(d));
                }
                test.insert(
                    "ciphertext".into(),
                    json!(format!("file://ciphertexts/{name}")),
                );
                test.insert("master-keys".into(), Value::Array(master_keys));
                let cmm = if required.is_some() {
                    "RequiredEncryptionContext"
                } else {
                    "Default"
                };
                if required.is_some() || !s.reproduced.is_empty() {
                    needs_v4 = true;
                }
                test.insert("cmm".into(), json!(cmm));
                test.insert("encryption-context".into(), json!(s.reproduced));
                test.insert(
                    "result".into(),
                    json!({"output": {"plaintext": format!("file://plaintexts/{}", file_name(&s.plaintext))}}),
                );
                tests.insert(s.id.clone(), Value::Object(test));
                tally.passed += 1;
                if verbose {
                    println!("ENCRYPTED {id}");
                }
            }
            Err(e) => {
                tally.failed += 1;
                println!("FAIL {id}: {e:#}");
            }
        }
    }

    // Version 2 has neither `cmm` nor a reproduced context: drop them when none is needed.
    let version = if needs_v4 { 4 } else { 2 };
    if !needs_v4 {
        for t in tests.values_mut() {
            if let Some(t) = t.as_object_mut() {
                t.remove("cmm");
                t.remove("encryption-context");
            }
        }
    }
    let manifest_out = json!({
        "manifest": {"type": "awses-decrypt", "version": version},
        "client": {"name": CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")},
        "keys": "file://keys.json",
        "tests": tests,
    });
    let mut out_keys = Map::new();
    for name in &used_keys {
        let entry = keys_doc["keys"][name].clone();
        if entry.is_null() {
            bail!("key {name:?} is not in {}", keys_path.display());
        }
        out_keys.insert(name.clone(), entry);
    }
    let keys_out = json!({"manifest": {"type": "keys", "version": 3}, "keys": out_keys});
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest_out)?,
    )?;
    std::fs::write(out.join("keys.json"), serde_json::to_vec_pretty(&keys_out)?)?;
    for (why, n) in skip_reasons {
        println!("skipped {n}: {why}");
    }
    println!(
        "wrote {} (awses-decrypt v{version}, {} tests)",
        out.join("manifest.json").display(),
        tally.passed
    );
    Ok(tally)
}

fn encrypt_one(
    s: &Scenario,
    keys: &Keys,
    plaintexts: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>> {
    let mut names = BTreeSet::new();
    s.encrypt.key_names(&mut names);
    for name in &names {
        if keys.get(name).is_some_and(|k| !k.encrypt) {
            bail!("key {name:?} is marked encrypt: false");
        }
    }
    let mut decrypt_names = BTreeSet::new();
    s.decrypt.key_names(&mut decrypt_names);
    if !decrypt_names
        .iter()
        .any(|n| keys.get(n).is_some_and(|k| k.decrypt))
    {
        bail!("no key of the decrypt description may decrypt");
    }
    let plaintext = plaintexts
        .get(&s.plaintext)
        .ok_or_else(|| anyhow!("plaintext {:?} is not in the manifest", s.plaintext))?;
    let source = s.encrypt.source(keys)?;
    let mut options = EncryptOptions::default()
        .with_encryption_context(s.context.clone())
        .with_frame_length(s.frame_length);
    if let Some(suite) = s.suite {
        options = options.with_suite(suite);
    }
    let out = client_for(s.suite)?.encrypt_blocking(&source, plaintext, &options)?;
    Ok(out.ciphertext)
}

fn resolve(dir: &Path, uri: &str) -> Result<PathBuf> {
    let rest = uri
        .strip_prefix("file://")
        .ok_or_else(|| anyhow!("unsupported URI scheme in {uri:?}: only file:// is allowed"))?;
    Ok(dir.join(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::decrypt::{load_manifest, run_vector};

    const PRIVATE_PEM: &str =
        include_str!("../../../crates/keyring-raw-rsa/tests/keys/rsa-2048.pk8.pem");
    const PUBLIC_PEM: &str =
        include_str!("../../../crates/keyring-raw-rsa/tests/keys/rsa-2048.spki.pem");

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "esdk-rs-encrypt-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn aes(name: &str) -> Value {
        json!({"type": "raw", "key": name, "provider-id": "ns-aes", "encryption-algorithm": "aes"})
    }

    fn rsa(half: &str) -> Value {
        json!({"type": "raw", "key": format!("rsa-{half}"), "provider-id": "ns-rsa",
               "encryption-algorithm": "rsa", "padding-algorithm": "oaep-mgf1", "padding-hash": "sha256"})
    }

    fn scenario(
        suite: &str,
        frame: u32,
        enc: Value,
        dec: Value,
        ctx: Value,
        reproduced: Value,
    ) -> Value {
        json!({"encryption-scenario": {
            "type": "positive-esdk", "plaintext": "small", "description": "test",
            "algorithmSuiteId": suite, "frame-size": frame,
            "encryptKeyDescription": enc, "decryptKeyDescription": dec,
            "encryption-context": ctx, "reproduced-encryption-context": reproduced}})
    }

    fn write_manifest(dir: &Path, tests: Value) -> PathBuf {
        let key = |bytes: u8, n: usize| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(vec![bytes; n])
        };
        let keys = json!({"manifest": {"type": "keys", "version": 3}, "keys": {
            "aes-128": {"type": "symmetric", "key-id": "aes-128", "encoding": "base64", "material": key(1, 16)},
            "aes-256": {"type": "symmetric", "key-id": "aes-256", "encoding": "base64", "material": key(2, 32)},
            "unused": {"type": "symmetric", "key-id": "unused", "encoding": "base64", "material": key(3, 32)},
            "rsa-private": {"type": "private", "key-id": "rsa", "encoding": "pem", "material": PRIVATE_PEM},
            "rsa-public": {"type": "public", "key-id": "rsa", "encoding": "pem", "material": PUBLIC_PEM,
                           "decrypt": false},
        }});
        std::fs::write(dir.join("keys.json"), keys.to_string()).unwrap();
        let manifest = json!({"manifest": {"type": "awses-encrypt", "version": 5},
            "keys": "file://keys.json", "plaintexts": {"small": 1000}, "tests": tests});
        let path = dir.join("encrypt-manifest.json");
        std::fs::write(&path, manifest.to_string()).unwrap();
        path
    }

    fn decrypt_all(out: &Path) -> usize {
        let vectors = load_manifest(&out.join("manifest.json")).unwrap();
        for v in &vectors {
            match run_vector(v) {
                Ok(Ok(())) => {}
                other => panic!("{}: {other:?}", v.id),
            }
        }
        vectors.len()
    }

    #[test]
    fn writes_a_v4_decrypt_manifest_that_our_runner_decrypts() {
        let tmp = TempDir::new("v4");
        let multi = json!({"type": "multi-keyring", "generator": aes("aes-128"), "childKeyrings": [rsa("public")]});
        let multi_dec = json!({"type": "multi-keyring", "generator": aes("aes-128"), "childKeyrings": [rsa("private")]});
        let required = json!({"type": "required-encryption-context-cmm", "underlying": aes("aes-256"),
                              "requiredEncryptionContextKeys": ["a"]});
        let ecdh = json!({"type": "raw-ecdh", "sender": "x", "recipient": "y"});
        let manifest = write_manifest(
            &tmp.0,
            json!({
                "aes": scenario("0478", 512, aes("aes-256"), aes("aes-256"), json!({}), json!({})),
                "rsa": scenario("0014", 100, rsa("public"), rsa("private"), json!({"k": "v"}), json!({})),
                "multi": scenario("0578", 64, multi, multi_dec, json!({}), json!({})),
                "required": scenario("0146", 512, required.clone(), required, json!({"a": "1", "b": "2"}), json!({"a": "1"})),
                "ecdh": scenario("0478", 512, ecdh.clone(), ecdh, json!({}), json!({})),
                "unframed": scenario("0478", 0, aes("aes-256"), aes("aes-256"), json!({}), json!({})),
            }),
        );
        let out = tmp.0.join("out");
        let tally = run(&manifest, &out, false).unwrap();
        assert_eq!((tally.passed, tally.failed, tally.skipped), (4, 0, 2));
        let written: Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(written["manifest"]["version"], 4);
        assert_eq!(
            written["tests"]["required"]["cmm"],
            "RequiredEncryptionContext"
        );
        assert_eq!(
            written["tests"]["required"]["encryption-context"],
            json!({"a": "1"})
        );
        assert_eq!(
            written["tests"]["multi"]["master-keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            written["tests"]["rsa"]["master-keys"][0]["key"],
            "rsa-private"
        );
        let keys: Value =
            serde_json::from_slice(&std::fs::read(out.join("keys.json")).unwrap()).unwrap();
        let names: Vec<_> = keys["keys"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(names, ["aes-128", "aes-256", "rsa-private", "rsa-public"]);
        assert_eq!(decrypt_all(&out), 4);
        // Running again into our own output replaces it.
        assert_eq!(run(&manifest, &out, false).unwrap().passed, 4);
        assert_eq!(decrypt_all(&out), 4);
    }

    #[test]
    fn writes_v2_when_no_cmm_or_reproduced_context_is_needed_and_guards_foreign_folders() {
        let tmp = TempDir::new("v2");
        let manifest = write_manifest(
            &tmp.0,
            json!({
                "aes": scenario("0078", 4096, aes("aes-256"), aes("aes-256"), json!({"x": "y"}), json!({})),
            }),
        );
        let out = tmp.0.join("out");
        assert_eq!(run(&manifest, &out, false).unwrap().passed, 1);
        let written: Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(written["manifest"]["version"], 2);
        assert!(written["tests"]["aes"].get("cmm").is_none());
        assert_eq!(decrypt_all(&out), 1);
        // A non-empty folder that is not ours is refused.
        let foreign = tmp.0.join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
        assert!(run(&manifest, &foreign, false).is_err());
        assert!(foreign.join("notes.txt").exists());
    }
}
