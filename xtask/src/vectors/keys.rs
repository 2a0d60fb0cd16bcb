//! Keys manifests and the keyrings the test vectors name.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use esdk::Keyring;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One key of a keys manifest.
#[derive(Debug, Clone)]
#[allow(dead_code)] // `encrypt`/`decrypt` serve the encrypt-side runner
pub struct KeyMaterial {
    /// `symmetric`, `private`, `public`, `aws-kms`, ...
    pub kind: String,
    /// The raw keyring's key name (`key-id`, else the map key).
    pub key_id: String,
    /// Decoded bytes (AES) or PEM text (RSA, as bytes).
    pub material: Vec<u8>,
    /// Whether the key may encrypt.
    pub encrypt: bool,
    /// Whether the key may decrypt.
    pub decrypt: bool,
}

/// A loaded keys manifest.
pub type Keys = BTreeMap<String, KeyMaterial>;

/// Load a `keys` manifest (v1 with line lists, v3 with strings).
pub fn load_keys(path: &Path) -> Result<Keys> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    if doc["manifest"]["type"] != "keys" {
        bail!("{} is not a keys manifest", path.display());
    }
    let mut keys = Keys::new();
    let entries = doc["keys"]
        .as_object()
        .ok_or_else(|| anyhow!("keys manifest without `keys`"))?;
    for (name, k) in entries {
        let kind = k["type"].as_str().unwrap_or_default().to_owned();
        let material_text = match &k["material"] {
            Value::String(s) => s.clone(),
            Value::Array(lines) => {
                let sep = k["line-separator"].as_str().unwrap_or("");
                lines
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(sep)
            }
            _ => String::new(),
        };
        let material = match k["encoding"].as_str() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(material_text.trim())
                .with_context(|| format!("key {name}: bad base64"))?,
            _ => material_text.into_bytes(),
        };
        keys.insert(
            name.clone(),
            KeyMaterial {
                kind,
                key_id: k["key-id"].as_str().unwrap_or(name).to_owned(),
                material,
                encrypt: k["encrypt"].as_bool().unwrap_or(true),
                decrypt: k["decrypt"].as_bool().unwrap_or(true),
            },
        );
    }
    Ok(keys)
}

/// RSA padding schemes as the manifests name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    /// PKCS#1 v1.5.
    Pkcs1,
    /// OAEP with SHA-1.
    OaepSha1,
    /// OAEP with SHA-256.
    OaepSha256,
    /// OAEP with SHA-384.
    OaepSha384,
    /// OAEP with SHA-512.
    OaepSha512,
}

impl RsaPadding {
    /// Parse `padding-algorithm` / `padding-hash`.
    pub fn parse(algorithm: &str, hash: Option<&str>) -> Result<Self> {
        let algorithm = algorithm.to_ascii_lowercase();
        let hash = hash.map(|h| h.to_ascii_lowercase().replace('-', ""));
        Ok(match (algorithm.as_str(), hash.as_deref()) {
            ("pkcs1", _) => Self::Pkcs1,
            ("oaep-mgf1", Some("sha1")) => Self::OaepSha1,
            ("oaep-mgf1", Some("sha256")) => Self::OaepSha256,
            ("oaep-mgf1", Some("sha384")) => Self::OaepSha384,
            ("oaep-mgf1", Some("sha512")) => Self::OaepSha512,
            other => bail!("unknown RSA padding {other:?}"),
        })
    }
}

/// A keyring a vector names, independent of which crate implements it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // RSA fields are read once the raw RSA keyring is wired in
pub enum KeyringSpec {
    /// Raw AES.
    RawAes {
        /// Key namespace.
        namespace: String,
        /// Key name.
        name: String,
        /// Wrapping key.
        key: Vec<u8>,
    },
    /// Raw RSA.
    RawRsa {
        /// Key namespace.
        namespace: String,
        /// Key name.
        name: String,
        /// Padding.
        padding: RsaPadding,
        /// PEM text.
        pem: String,
        /// Whether `pem` is a private key.
        private: bool,
    },
    /// Something this workspace has no keyring for.
    Unsupported(String),
}

/// Parse one `master-keys` entry of an `awses-decrypt`/`awses-encrypt` manifest.
pub fn spec_from_master_key(mk: &Value, keys: &Keys) -> Result<KeyringSpec> {
    let kind = mk["type"].as_str().unwrap_or_default();
    if kind != "raw" {
        return Ok(KeyringSpec::Unsupported(format!("{kind} keyring")));
    }
    let key_name = mk["key"]
        .as_str()
        .ok_or_else(|| anyhow!("master key without `key`"))?;
    let key = keys
        .get(key_name)
        .ok_or_else(|| anyhow!("key {key_name:?} not in the keys manifest"))?;
    let namespace = mk["provider-id"]
        .as_str()
        .ok_or_else(|| anyhow!("raw master key without provider-id"))?
        .to_owned();
    match mk["encryption-algorithm"].as_str() {
        Some("aes") => Ok(KeyringSpec::RawAes {
            namespace,
            name: key.key_id.clone(),
            key: key.material.clone(),
        }),
        Some("rsa") => Ok(KeyringSpec::RawRsa {
            namespace,
            name: key.key_id.clone(),
            padding: RsaPadding::parse(
                mk["padding-algorithm"].as_str().unwrap_or_default(),
                mk["padding-hash"].as_str(),
            )?,
            pem: String::from_utf8(key.material.clone())?,
            private: key.kind == "private",
        }),
        other => Ok(KeyringSpec::Unsupported(format!("raw {other:?} keyring"))),
    }
}

/// Build the keyring for a spec, or say why this workspace cannot.
pub fn build_keyring(spec: &KeyringSpec) -> Result<Result<Arc<dyn Keyring>, String>> {
    match spec {
        KeyringSpec::RawAes {
            namespace,
            name,
            key,
        } => Ok(Ok(Arc::new(esdk::raw_aes::RawAesKeyring::new(
            namespace.clone(),
            name.clone(),
            key,
        )?))),
        KeyringSpec::RawRsa {
            namespace,
            name,
            padding,
            pem,
            private,
        } => {
            use esdk::raw_rsa::{Padding, RawRsaKeyring, RsaPrivateKey, RsaPublicKey};
            let padding = match padding {
                RsaPadding::Pkcs1 => Padding::Pkcs1V15,
                RsaPadding::OaepSha1 => Padding::OaepSha1,
                RsaPadding::OaepSha256 => Padding::OaepSha256,
                RsaPadding::OaepSha384 => Padding::OaepSha384,
                RsaPadding::OaepSha512 => Padding::OaepSha512,
            };
            let keyring = if *private {
                // Test harness: the vectors give one private key for both directions, so the
                // public half is taken from it explicitly.
                RawRsaKeyring::with_key_pair(
                    namespace.clone(),
                    name.clone(),
                    padding,
                    RsaPrivateKey::from_pem(pem)?,
                )?
            } else {
                RawRsaKeyring::encrypt_only(
                    namespace.clone(),
                    name.clone(),
                    padding,
                    RsaPublicKey::from_pem(pem)?,
                )?
            };
            Ok(Ok(Arc::new(keyring)))
        }
        KeyringSpec::Unsupported(what) => Ok(Err(format!("needs a {what}"))),
    }
}

/// Build one keyring from several specs: one alone, or a multi-keyring (first = generator).
pub fn build_keyrings(specs: &[KeyringSpec]) -> Result<Result<Arc<dyn Keyring>, String>> {
    let mut built = Vec::new();
    for spec in specs {
        match build_keyring(spec)? {
            Ok(k) => built.push(k),
            Err(why) => return Ok(Err(why)),
        }
    }
    match built.len() {
        0 => bail!("no keyrings"),
        1 => Ok(Ok(built.remove(0))),
        _ => {
            let generator = built.remove(0);
            let multi = esdk::multi::MultiKeyring::new(Some(generator), built)?;
            Ok(Ok(Arc::new(multi)))
        }
    }
}
