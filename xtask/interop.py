#!/usr/bin/env python3
"""Interoperability harness between esdk-rs and the official AWS Encryption SDK for Python.

Run by `cargo xtask interop` inside a virtual environment that has `aws-encryption-sdk`
(with the Material Providers Library) installed; see xtask/interop-requirements.txt.

Commands (each prints a closing line `NAME: N passed, N failed`):

  matrix  --out DIR         write DIR/encrypt-manifest.json (awses-encrypt v5) and DIR/keys.json:
                            a matrix of raw AES 128/192/256 and raw RSA (every padding, 2048 to
                            4096-bit keys) keyrings, multi-keyrings and required-encryption-context
                            CMMs, over every suite, several frame lengths and non-framed, empty and
                            multi-pair Unicode encryption contexts, and several plaintext sizes.
                            Keys are generated afresh on every run.
  encrypt MANIFEST --out DIR  encrypt every scenario of an awses-encrypt v5 manifest with the Python
                            SDK and write DIR as an awses-decrypt manifest (v2, or v4 when a required
                            encryption context CMM or a reproduced context is needed).
  decrypt MANIFEST          decrypt every test of an awses-decrypt manifest (v1 to v4) with the
                            Python SDK: through the Material Providers Library keyrings and CMMs,
                            and, for tests that need no CMM or reproduced context, a second time
                            through the legacy RawMasterKey API.
"""

import argparse
import base64
import json
import os
import sys
import traceback
from pathlib import Path

import aws_encryption_sdk
from aws_encryption_sdk.exceptions import InvalidKeyIdError
from aws_encryption_sdk.identifiers import (
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.base import MasterKeyProvider, MasterKeyProviderConfig
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    AesWrappingAlg,
    CreateDefaultCryptographicMaterialsManagerInput,
    CreateMultiKeyringInput,
    CreateRawAesKeyringInput,
    CreateRawRsaKeyringInput,
    CreateRequiredEncryptionContextCMMInput,
    PaddingScheme,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MPL = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())


def _memoize_pem_loading():
    """Parse each private-key PEM once.

    `cryptography` checks an RSA key's consistency every time it loads one (about a second for
    4096 bits here), and the Material Providers Library loads the PEM on every decryption. The
    harness decrypts hundreds of messages with the same few keys, so the parsed key object is
    reused; the RSA operations themselves are untouched. If the library's layout changes, this
    quietly does nothing (the run is only slower).
    """
    try:
        from aws_cryptography_primitives.internaldafny.extern import RSAEncryption as extern
    except ImportError:
        return
    original = getattr(extern, "load_pem_private_key", None)
    if original is None:
        return
    cache = {}

    def load(data, password, *args, **kwargs):
        cache_key = (bytes(data), password)
        if cache_key not in cache:
            cache[cache_key] = original(data, password, *args, **kwargs)
        return cache[cache_key]

    extern.load_pem_private_key = load


_memoize_pem_loading()
_PRIVATE_KEYS = {}


def load_private_pem(pem):
    if pem not in _PRIVATE_KEYS:
        _PRIVATE_KEYS[pem] = serialization.load_pem_private_key(pem, password=None)
    return _PRIVATE_KEYS[pem]

SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578]
COMMITTING = {0x0478, 0x0578}
# 0 = non-framed. The Python SDK wants multiples of 128 (it compares with the AES block size
# in bits), so no smaller frames; 10240 equals the "small" plaintext (an empty final frame).
FRAMES = [0, 128, 1024, 4096, 10240, 65536]
PLAINTEXTS = {"empty": 0, "one-byte": 1, "frame-4096": 4096, "small": 10240, "medium": 100003}
UNICODE_CONTEXT = {
    "tenant": "a\u010dme-\u2603",
    "\u65e5\u672c\u8a9e\u30ad\u30fc": "\u5024",
    "emoji-\U0001F600": "\U0001F30D",
    "bmp-max-\uffff": "sorts before the emoji key in UTF-16, after it in UTF-8",
    "empty-value": "",
}

AES_ALGS = {
    16: (AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16, WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING),
    24: (AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16, WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING),
    32: (AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16, WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING),
}
RSA_PADDINGS = {
    ("pkcs1", None): (PaddingScheme.PKCS1, WrappingAlgorithm.RSA_PKCS1),
    ("oaep-mgf1", "sha1"): (PaddingScheme.OAEP_SHA1_MGF1, WrappingAlgorithm.RSA_OAEP_SHA1_MGF1),
    ("oaep-mgf1", "sha256"): (PaddingScheme.OAEP_SHA256_MGF1, WrappingAlgorithm.RSA_OAEP_SHA256_MGF1),
    ("oaep-mgf1", "sha384"): (PaddingScheme.OAEP_SHA384_MGF1, WrappingAlgorithm.RSA_OAEP_SHA384_MGF1),
    ("oaep-mgf1", "sha512"): (PaddingScheme.OAEP_SHA512_MGF1, WrappingAlgorithm.RSA_OAEP_SHA512_MGF1),
}


class Unsupported(Exception):
    """A test this harness cannot run (reported as skipped)."""


# ---------------------------------------------------------------------------------------------
# Manifests and keys


def load_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def resolve(base_dir, uri):
    if not uri.startswith("file://"):
        raise ValueError("only file:// URIs are supported, got %r" % uri)
    return Path(base_dir) / uri[len("file://"):]


def load_keys(path):
    doc = load_json(path)
    if doc["manifest"]["type"] != "keys":
        raise ValueError("%s is not a keys manifest" % path)
    keys = {}
    for name, k in doc["keys"].items():
        material = k.get("material")
        if isinstance(material, list):
            material = k.get("line-separator", "").join(material)
        k = dict(k)
        k["material"] = material
        k["key-id"] = k.get("key-id", name)
        keys[name] = k
    return keys


def padding_of(desc):
    alg = desc.get("padding-algorithm", "").lower()
    digest = desc.get("padding-hash")
    digest = digest.lower().replace("-", "") if digest else None
    if alg == "pkcs1":
        digest = None
    try:
        return RSA_PADDINGS[(alg, digest)]
    except KeyError:
        raise Unsupported("RSA padding %r/%r" % (alg, digest))


def key_of(desc, keys):
    name = desc["key"]
    if name not in keys:
        raise ValueError("key %r not in the keys manifest" % name)
    return keys[name]


def keyring_for(desc, keys):
    """An MPL keyring for a key description (raw, multi-keyring)."""
    kind = desc["type"]
    if kind == "raw":
        key = key_of(desc, keys)
        algorithm = desc.get("encryption-algorithm")
        if algorithm == "aes":
            wrapping = base64.b64decode(key["material"])
            return MPL.create_raw_aes_keyring(
                CreateRawAesKeyringInput(
                    key_namespace=desc["provider-id"],
                    key_name=key["key-id"],
                    wrapping_key=wrapping,
                    wrapping_alg=AES_ALGS[len(wrapping)][0],
                )
            )
        if algorithm == "rsa":
            pem = key["material"].encode("utf-8")
            private = key["type"] == "private"
            public_pem = pem
            if private:
                loaded = load_private_pem(pem)
                public_pem = loaded.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            return MPL.create_raw_rsa_keyring(
                CreateRawRsaKeyringInput(
                    key_namespace=desc["provider-id"],
                    key_name=key["key-id"],
                    padding_scheme=padding_of(desc)[0],
                    public_key=public_pem,
                    private_key=pem if private else None,
                )
            )
        raise Unsupported("raw %r keyring" % algorithm)
    if kind == "multi-keyring":
        generator = desc.get("generator")
        return MPL.create_multi_keyring(
            CreateMultiKeyringInput(
                generator=keyring_for(generator, keys) if generator else None,
                child_keyrings=[keyring_for(c, keys) for c in desc.get("childKeyrings", [])],
            )
        )
    raise Unsupported("%s keyring" % kind)


def cmm_for(desc, keys):
    """An MPL CMM (required-encryption-context) or None for a plain keyring description."""
    if desc["type"] == "required-encryption-context-cmm":
        underlying = MPL.create_default_cryptographic_materials_manager(
            CreateDefaultCryptographicMaterialsManagerInput(keyring=keyring_for(desc["underlying"], keys))
        )
        return MPL.create_required_encryption_context_cmm(
            CreateRequiredEncryptionContextCMMInput(
                underlying_cmm=underlying,
                required_encryption_context_keys=list(desc["requiredEncryptionContextKeys"]),
            )
        )
    return None


class StaticMasterKeyProvider(MasterKeyProvider):
    """A legacy master key provider holding a fixed list of raw master keys."""

    provider_id = "esdk-rs-interop-static"
    _config_class = MasterKeyProviderConfig

    def __init__(self, **kwargs):  # pylint: disable=super-init-not-called
        pass

    def _new_master_key(self, key_id):
        raise InvalidKeyIdError("static provider vends no new keys")


_LEGACY = {}


def legacy_master_key(desc, keys):
    """A legacy RawMasterKey for a raw key description (cached: loading a key is slow)."""
    cache_key = json.dumps(desc, sort_keys=True)
    if cache_key not in _LEGACY:
        _LEGACY[cache_key] = _legacy_master_key(desc, keys)
    return _LEGACY[cache_key]


def _legacy_master_key(desc, keys):
    if desc["type"] != "raw":
        raise Unsupported("legacy master keys only model raw keys")
    key = key_of(desc, keys)
    algorithm = desc.get("encryption-algorithm")
    if algorithm == "aes":
        wrapping = base64.b64decode(key["material"])
        wrapping_key = WrappingKey(
            wrapping_algorithm=AES_ALGS[len(wrapping)][1],
            wrapping_key=wrapping,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )
    elif algorithm == "rsa":
        wrapping_key = WrappingKey(
            wrapping_algorithm=padding_of(desc)[1],
            wrapping_key=key["material"].encode("utf-8"),
            wrapping_key_type=EncryptionKeyType.PRIVATE if key["type"] == "private" else EncryptionKeyType.PUBLIC,
        )
    else:
        raise Unsupported("raw %r master key" % algorithm)
    return RawMasterKey(provider_id=desc["provider-id"], key_id=key["key-id"].encode("utf-8"), wrapping_key=wrapping_key)


def legacy_provider(descs, keys):
    """One legacy provider for raw descriptions (first = primary)."""
    provider = StaticMasterKeyProvider()
    for d in descs:
        provider.add_master_key_provider(legacy_master_key(d, keys))
    return provider


def flatten(desc):
    """The raw members of a keyring description, generator first."""
    if desc["type"] == "raw":
        return [desc]
    if desc["type"] == "multi-keyring":
        out = []
        if desc.get("generator"):
            out.extend(flatten(desc["generator"]))
        for c in desc.get("childKeyrings", []):
            out.extend(flatten(c))
        return out
    raise Unsupported("%s cannot be flattened" % desc["type"])


def client_for(suite_id):
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite_id in COMMITTING
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy)


def safe_name(test_id):
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in test_id)


def tally_line(name, passed, failed, skipped=None):
    line = "%s: %d passed, %d failed" % (name, passed, failed)
    if skipped is not None:
        line += ", %d skipped" % skipped
    print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# matrix


def raw_aes(bits):
    return {"type": "raw", "key": "aes-%d" % bits, "provider-id": "esdk-rs-interop-aes", "encryption-algorithm": "aes"}


def raw_rsa(bits, half, algorithm, digest):
    d = {
        "type": "raw",
        "key": "rsa-%d-%s" % (bits, half),
        "provider-id": "esdk-rs-interop-rsa",
        "encryption-algorithm": "rsa",
        "padding-algorithm": algorithm,
    }
    d["padding-hash"] = digest if digest else "sha1"
    return d


def rsa_pair(bits, algorithm, digest=None):
    return raw_rsa(bits, "public", algorithm, digest), raw_rsa(bits, "private", algorithm, digest)


def multi(generator, children):
    return {"type": "multi-keyring", "generator": generator, "childKeyrings": children}


def required(underlying, keys):
    return {"type": "required-encryption-context-cmm", "underlying": underlying, "requiredEncryptionContextKeys": keys}


def families():
    """(name, encrypt description, decrypt description, reproduced-context rule, legacy-capable)."""
    out = []
    for bits in (128, 192, 256):
        d = raw_aes(bits)
        out.append(("aes-%d" % bits, d, d, None, True))
    for algorithm, digest in [("pkcs1", None), ("oaep-mgf1", "sha1"), ("oaep-mgf1", "sha256"),
                              ("oaep-mgf1", "sha384"), ("oaep-mgf1", "sha512")]:
        enc, dec = rsa_pair(2048, algorithm, digest)
        out.append(("rsa-2048-%s" % (digest or algorithm), enc, dec, None, True))
    for bits, algorithm, digest in [(3072, "oaep-mgf1", "sha384"), (4096, "oaep-mgf1", "sha512"), (4096, "pkcs1", None)]:
        enc, dec = rsa_pair(bits, algorithm, digest)
        out.append(("rsa-%d-%s" % (bits, digest or algorithm), enc, dec, None, True))
    rsa_enc, rsa_dec = rsa_pair(2048, "oaep-mgf1", "sha256")
    multi_a_enc = multi(raw_aes(256), [rsa_enc, raw_aes(128)])
    multi_a_dec = multi(raw_aes(256), [rsa_dec, raw_aes(128)])
    out.append(("multi-aes256-rsa2048-aes128", multi_a_enc, multi_a_dec, None, True))
    gen_enc, gen_dec = rsa_pair(3072, "oaep-mgf1", "sha1")
    child_enc, child_dec = rsa_pair(4096, "pkcs1")
    out.append(("multi-rsa3072-aes192-rsa4096", multi(gen_enc, [raw_aes(192), child_enc]),
                multi(gen_dec, [raw_aes(192), child_dec]), None, True))
    out.append(("required-tenant-aes256", required(raw_aes(256), ["tenant"]),
                required(raw_aes(256), ["tenant"]), "required-only", False))
    two = ["tenant", "\u65e5\u672c\u8a9e\u30ad\u30fc"]
    out.append(("required-two-multi", required(multi_a_enc, two), required(multi_a_dec, two), "full", False))
    enc, dec = rsa_pair(2048, "oaep-mgf1", "sha512")
    out.append(("required-tenant-rsa2048", required(enc, ["tenant"]), required(dec, ["tenant"]), "full", False))
    return out


def make_matrix(out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = {}
    for bits in (128, 192, 256):
        keys["aes-%d" % bits] = {
            "type": "symmetric", "algorithm": "aes", "bits": bits, "encoding": "base64",
            "encrypt": True, "decrypt": True, "key-id": "aes-%d" % bits,
            "material": base64.b64encode(os.urandom(bits // 8)).decode("ascii"),
        }
    for bits in (2048, 3072, 4096):
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        keys["rsa-%d-private" % bits] = {
            "type": "private", "algorithm": "rsa", "bits": bits, "encoding": "pem",
            "encrypt": True, "decrypt": True, "key-id": "rsa-%d" % bits,
            "material": private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii"),
        }
        keys["rsa-%d-public" % bits] = {
            "type": "public", "algorithm": "rsa", "bits": bits, "encoding": "pem",
            "encrypt": True, "decrypt": False, "key-id": "rsa-%d" % bits,
            "material": private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii"),
        }
    tests = {}
    plaintext_names = list(PLAINTEXTS)

    def add(test_id, description, suite, frame, context, reproduced, enc, dec, api, plaintext):
        tests[test_id] = {
            "encryption-scenario": {
                "type": "positive-esdk",
                "plaintext": plaintext,
                "description": description,
                "algorithmSuiteId": "%04X" % suite,
                "frame-size": frame,
                "encryptKeyDescription": enc,
                "decryptKeyDescription": dec,
                "encryption-context": context,
                "reproduced-encryption-context": reproduced,
                # Read only by this script: which Python API encrypts (ignored by other runners).
                "x-python-api": api,
            }
        }

    for f, (name, enc, dec, rule, legacy_ok) in enumerate(families()):
        for s, suite in enumerate(SUITES):
            frame = FRAMES[(s + f) % len(FRAMES)]
            plaintext = plaintext_names[(3 * s + f) % len(plaintext_names)]
            if rule is None:
                context = dict(UNICODE_CONTEXT) if (s + f) % 2 else {}
                reproduced = {}
            else:
                context = dict(UNICODE_CONTEXT)
                required_keys = enc["requiredEncryptionContextKeys"]
                reproduced = (
                    {k: context[k] for k in required_keys} if rule == "required-only" else dict(context)
                )
            api = "master-key" if legacy_ok and (s + f) % 3 == 0 else "keyring"
            test_id = "%s-%04X-frame%d-%s-%s-%s" % (name, suite, frame, "ctx" if context else "noctx", plaintext, api)
            add(test_id, "%s, suite %04X, frame %d" % (name, suite, frame), suite, frame, context, reproduced,
                enc, dec, api, plaintext)
    # The full product of suites, frame lengths and contexts for one key.
    aes = raw_aes(256)
    i = 0
    for suite in SUITES:
        for frame in FRAMES:
            for with_context in (False, True):
                plaintext = plaintext_names[i % len(plaintext_names)]
                api = "master-key" if i % 2 else "keyring"
                context = dict(UNICODE_CONTEXT) if with_context else {}
                test_id = "grid-aes-256-%04X-frame%d-%s-%s-%s" % (
                    suite, frame, "ctx" if with_context else "noctx", plaintext, api)
                add(test_id, "grid: aes-256, suite %04X, frame %d" % (suite, frame), suite, frame, context, {},
                    aes, aes, api, plaintext)
                i += 1
    manifest = {
        "manifest": {"type": "awses-encrypt", "version": 5},
        "client": {"name": "esdk-rs-interop", "version": aws_encryption_sdk.__version__},
        "keys": "file://keys.json",
        "plaintexts": PLAINTEXTS,
        "tests": tests,
    }
    with open(out_dir / "keys.json", "w", encoding="utf-8") as f:
        json.dump({"manifest": {"type": "keys", "version": 3}, "keys": keys}, f, indent=2, ensure_ascii=False)
    with open(out_dir / "encrypt-manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    print("matrix: wrote %d scenarios to %s" % (len(tests), out_dir / "encrypt-manifest.json"))
    return 0


# ---------------------------------------------------------------------------------------------
# encrypt


def decrypt_master_keys(desc):
    """(master-keys list, required keys or None) for the decrypt manifest."""
    if desc["type"] == "required-encryption-context-cmm":
        return flatten(desc["underlying"]), list(desc["requiredEncryptionContextKeys"])
    return flatten(desc), None


def encrypt_manifest(manifest_path, out_dir):
    manifest_path = Path(manifest_path)
    doc = load_json(manifest_path)
    if doc["manifest"]["type"] != "awses-encrypt" or doc["manifest"]["version"] != 5:
        raise ValueError("expected an awses-encrypt v5 manifest")
    keys_path = resolve(manifest_path.parent, doc["keys"])
    keys = load_keys(keys_path)
    out_dir = Path(out_dir)
    (out_dir / "ciphertexts").mkdir(parents=True, exist_ok=True)
    (out_dir / "plaintexts").mkdir(parents=True, exist_ok=True)
    plaintexts = {}
    for name, size in doc["plaintexts"].items():
        plaintexts[name] = os.urandom(size)
        (out_dir / "plaintexts" / safe_name(name)).write_bytes(plaintexts[name])
    tests = {}
    passed = failed = skipped = 0
    needs_v4 = False
    used_keys = set()
    for test_id, test in doc["tests"].items():
        s = test["encryption-scenario"]
        try:
            if s["type"] != "positive-esdk":
                raise Unsupported("scenario type %s" % s["type"])
            suite_id = int(s["algorithmSuiteId"], 16)
            enc = s["encryptKeyDescription"]
            api = s.get("x-python-api", "keyring")
            kwargs = dict(
                source=plaintexts[s["plaintext"]],
                encryption_context=s["encryption-context"],
                algorithm=Algorithm.get_by_id(suite_id),
                frame_length=s["frame-size"],
            )
            if api == "master-key":
                kwargs["key_provider"] = legacy_provider(flatten(enc), keys)
            else:
                cmm = cmm_for(enc, keys)
                if cmm is not None:
                    kwargs["materials_manager"] = cmm
                else:
                    kwargs["keyring"] = keyring_for(enc, keys)
            ciphertext, _header = client_for(suite_id).encrypt(**kwargs)
            master_keys, required_keys = decrypt_master_keys(s["decryptKeyDescription"])
        except Unsupported as e:
            skipped += 1
            print("SKIP %s: %s" % (test_id, e))
            continue
        except Exception as e:  # pylint: disable=broad-except
            failed += 1
            print("FAIL %s: %s: %s" % (test_id, type(e).__name__, e))
            continue
        name = safe_name(test_id)
        (out_dir / "ciphertexts" / name).write_bytes(ciphertext)
        reproduced = s.get("reproduced-encryption-context", {})
        if required_keys is not None or reproduced:
            needs_v4 = True
        for mk in master_keys + flatten_all(enc):
            used_keys.add(mk["key"])
        tests[test_id] = {
            "description": "%s (Python SDK %s, %s API)" % (s.get("description", ""), aws_encryption_sdk.__version__, api),
            "ciphertext": "file://ciphertexts/%s" % name,
            "master-keys": master_keys,
            "cmm": "RequiredEncryptionContext" if required_keys is not None else "Default",
            "encryption-context": reproduced,
            "result": {"output": {"plaintext": "file://plaintexts/%s" % safe_name(s["plaintext"])}},
        }
        passed += 1
    version = 4 if needs_v4 else 2
    if not needs_v4:
        for t in tests.values():
            del t["cmm"]
            del t["encryption-context"]
    all_keys = load_json(keys_path)
    out_keys = {k: v for k, v in all_keys["keys"].items() if k in used_keys}
    with open(out_dir / "keys.json", "w", encoding="utf-8") as f:
        json.dump({"manifest": {"type": "keys", "version": 3}, "keys": out_keys}, f, indent=2, ensure_ascii=False)
    with open(out_dir / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "manifest": {"type": "awses-decrypt", "version": version},
                "client": {"name": "aws-encryption-sdk-python", "version": aws_encryption_sdk.__version__},
                "keys": "file://keys.json",
                "tests": tests,
            },
            f, indent=2, ensure_ascii=False,
        )
    print("wrote %s (awses-decrypt v%d, %d tests)" % (out_dir / "manifest.json", version, len(tests)))
    tally_line("python-encrypt", passed, failed, skipped)
    return 0 if failed == 0 else 1


def flatten_all(desc):
    if desc["type"] == "required-encryption-context-cmm":
        return flatten(desc["underlying"])
    return flatten(desc)


# ---------------------------------------------------------------------------------------------
# decrypt


def decrypt_manifest(manifest_path):
    manifest_path = Path(manifest_path)
    doc = load_json(manifest_path)
    if doc["manifest"]["type"] != "awses-decrypt":
        raise ValueError("expected an awses-decrypt manifest")
    version = doc["manifest"]["version"]
    if version not in (1, 2, 3, 4):
        raise ValueError("awses-decrypt version %d is not supported" % version)
    base = manifest_path.parent
    keys = load_keys(resolve(base, doc["keys"]))
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    passed = failed = skipped = 0
    for test_id, t in doc["tests"].items():
        ciphertext = resolve(base, t["ciphertext"]).read_bytes()
        if version == 1:
            expected = resolve(base, t["plaintext"]).read_bytes()
        elif "output" in t["result"]:
            expected = resolve(base, t["result"]["output"]["plaintext"]).read_bytes()
        else:
            expected = None
        master_keys = t["master-keys"]
        cmm_kind = t.get("cmm", "Default")
        reproduced = t.get("encryption-context") if version == 4 else None
        if t.get("decryption-method") not in (None, "streaming-unsigned-only"):
            raise ValueError("%s: unknown decryption-method" % test_id)
        attempts = []
        try:
            if len(master_keys) == 1:
                keyring_desc = master_keys[0]
            else:
                keyring_desc = multi(master_keys[0], master_keys[1:])
            if cmm_kind == "RequiredEncryptionContext":
                cmm = cmm_for(required(keyring_desc, list((reproduced or {}).keys())), keys)
                attempts.append(("keyring", dict(materials_manager=cmm)))
            elif cmm_kind == "Default":
                attempts.append(("keyring", dict(keyring=keyring_for(keyring_desc, keys))))
                if not reproduced:
                    attempts.append(("master-key", dict(key_provider=legacy_provider(master_keys, keys))))
            else:
                raise Unsupported("cmm %r" % cmm_kind)
        except Unsupported as e:
            skipped += 1
            print("SKIP %s: %s" % (test_id, e))
            continue
        for api, kwargs in attempts:
            if reproduced and api == "keyring":
                kwargs["encryption_context"] = reproduced
            label = "%s [%s API]" % (test_id, api)
            try:
                plaintext, _header = client.decrypt(source=ciphertext, **kwargs)
            except Exception as e:  # pylint: disable=broad-except
                if expected is None:
                    passed += 1
                else:
                    failed += 1
                    print("FAIL %s: %s: %s" % (label, type(e).__name__, e))
                continue
            if expected is None:
                failed += 1
                print("FAIL %s: decrypted, but the manifest expects an error" % label)
            elif plaintext != expected:
                failed += 1
                print("FAIL %s: plaintext differs (%d bytes, expected %d)" % (label, len(plaintext), len(expected)))
            else:
                passed += 1
    tally_line("python-decrypt", passed, failed, skipped)
    return 0 if failed == 0 else 1


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("matrix")
    p.add_argument("--out", required=True)
    p = sub.add_parser("encrypt")
    p.add_argument("manifest")
    p.add_argument("--out", required=True)
    p = sub.add_parser("decrypt")
    p.add_argument("manifest")
    args = parser.parse_args(argv)
    try:
        if args.command == "matrix":
            return make_matrix(args.out)
        if args.command == "encrypt":
            return encrypt_manifest(args.manifest, args.out)
        return decrypt_manifest(args.manifest)
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
