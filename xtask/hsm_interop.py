#!/usr/bin/env python3
"""The official Python AWS Encryption SDK's side of the PKCS#11 (HSM) keyring interop check.

The HSM keyring writes EDKs in the raw AES (and raw RSA) keyrings' wire format, so the Python
SDK's raw keyrings holding the same key material read its messages, and the reverse. This
script encrypts or decrypts one file with such a raw keyring. Needs `aws-encryption-sdk[MPL]`
(PyPI) in the python running it.

    hsm_interop.py encrypt --wrapping W --namespace NS --name NAME --key-env VAR --in PLAIN --out MESSAGE
                           [--api mpl|legacy] [--suite 0x0478] [--context k=v ...]
    hsm_interop.py decrypt --wrapping W --namespace NS --name NAME --key-env VAR --in MESSAGE --out PLAIN
                           [--api mpl|legacy] [--context k=v ...]

W is `aes` (VAR holds the key bytes in hex, e.g. ESDK_PKCS11_AES_KEY_HEX), `rsa-oaep-sha1` or
`rsa-pkcs1` (VAR holds the path of a PKCS#8 PEM private key, e.g. ESDK_PKCS11_RSA_KEY_PEM). Key
material is read from the environment, never from the command line. `--api mpl` (default) uses
the Material Providers Library keyrings, `--api legacy` a RawMasterKey. --context on decrypt
lists pairs the message's encryption context must contain. Exit code 0 on success; errors go to
stderr as one line.
"""

import argparse
import logging
import os
import sys


def pairs(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--context wants key=value, got {item!r}")
        out[key] = value
    return out


def key_material(wrapping, var):
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"{var} is not set (it should hold the key material for --wrapping {wrapping})")
    if wrapping == "aes":
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise SystemExit(f"{var} is not hex") from None
        if len(key) not in (16, 24, 32):
            raise SystemExit(f"{var} holds {len(key)} bytes; an AES key has 16, 24 or 32")
        return key
    with open(value, "rb") as f:
        return f.read()


def mpl_keyring(wrapping, namespace, name, material):
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import (
        AesWrappingAlg,
        CreateRawAesKeyringInput,
        CreateRawRsaKeyringInput,
        PaddingScheme,
    )
    from cryptography.hazmat.primitives import serialization

    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    if wrapping == "aes":
        algorithm = {
            16: AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16,
            24: AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16,
            32: AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        }[len(material)]
        return mpl.create_raw_aes_keyring(
            CreateRawAesKeyringInput(
                key_namespace=namespace, key_name=name, wrapping_key=material, wrapping_alg=algorithm
            )
        )
    private = serialization.load_pem_private_key(material, password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    padding = {"rsa-oaep-sha1": PaddingScheme.OAEP_SHA1_MGF1, "rsa-pkcs1": PaddingScheme.PKCS1}[wrapping]
    return mpl.create_raw_rsa_keyring(
        CreateRawRsaKeyringInput(
            key_namespace=namespace,
            key_name=name,
            padding_scheme=padding,
            public_key=public_pem,
            private_key=material,
        )
    )


def legacy_master_key(wrapping, namespace, name, material):
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    if wrapping == "aes":
        algorithm = {
            16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
            24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
            32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        }[len(material)]
        key_type = EncryptionKeyType.SYMMETRIC
    else:
        algorithm = {
            "rsa-oaep-sha1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
            "rsa-pkcs1": WrappingAlgorithm.RSA_PKCS1,
        }[wrapping]
        key_type = EncryptionKeyType.PRIVATE
    wrapping_key = WrappingKey(wrapping_algorithm=algorithm, wrapping_key=material, wrapping_key_type=key_type)
    return RawMasterKey(provider_id=namespace, key_id=name.encode("utf-8"), wrapping_key=wrapping_key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=["encrypt", "decrypt"])
    parser.add_argument("--wrapping", required=True, choices=["aes", "rsa-oaep-sha1", "rsa-pkcs1"])
    parser.add_argument("--api", default="mpl", choices=["mpl", "legacy"])
    parser.add_argument("--namespace", required=True, help="key namespace (EDK provider id)")
    parser.add_argument("--name", required=True, help="key name")
    parser.add_argument("--key-env", required=True, help="environment variable holding the key material")
    parser.add_argument("--suite", help="algorithm suite id for encrypt, e.g. 0x0478")
    parser.add_argument("--in", dest="input", required=True)
    parser.add_argument("--out", dest="output", required=True)
    parser.add_argument("--context", action="append", help="key=value (repeatable)")
    args = parser.parse_args()
    # The SDK logs a traceback of its own when a decrypt fails; the one-line error is enough.
    logging.getLogger("aws_encryption_sdk").setLevel(logging.CRITICAL)

    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    from aws_encryption_sdk.identifiers import Algorithm

    material = key_material(args.wrapping, args.key_env)
    if args.api == "mpl":
        keys = {"keyring": mpl_keyring(args.wrapping, args.namespace, args.name, material)}
    else:
        keys = {"key_provider": legacy_master_key(args.wrapping, args.namespace, args.name, material)}
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    context = pairs(args.context)
    with open(args.input, "rb") as f:
        data = f.read()

    if args.operation == "encrypt":
        extra = {}
        if args.suite:
            extra["algorithm"] = Algorithm.get_by_id(int(args.suite, 16))
        result, _header = client.encrypt(source=data, encryption_context=context, **keys, **extra)
    else:
        if args.suite:
            raise SystemExit("--suite is for encrypt only")
        result, header = client.decrypt(source=data, **keys)
        for key, value in context.items():
            if header.encryption_context.get(key) != value:
                raise SystemExit(
                    f"the message's encryption context has {key}={header.encryption_context.get(key)!r}, "
                    f"expected {value!r}"
                )

    with open(args.output, "wb") as f:
        f.write(result)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # report SDK failures as one line, exit non-zero
        print(f"hsm_interop.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
