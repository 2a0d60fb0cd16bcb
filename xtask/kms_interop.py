#!/usr/bin/env python3
"""The official Python AWS Encryption SDK's side of the KMS interop check.

Encrypts a file with a KMS master key provider, or decrypts one, against the KMS endpoint in
AWS_ENDPOINT_URL (the local moto emulator: a non-loopback endpoint is refused, so this never
touches a real AWS account). Needs `aws-encryption-sdk` (PyPI) in the python running it, and
the variables `cargo xtask moto` exports (dummy credentials, AWS_DEFAULT_REGION).

    kms_interop.py encrypt --key ARN [--key ARN2 ...] --in PLAIN --out MESSAGE [--context k=v ...]
    kms_interop.py decrypt --key ARN --in MESSAGE --out PLAIN [--context k=v ...]
    kms_interop.py decrypt --discovery --account ID --in MESSAGE --out PLAIN

decrypt with --key uses a strict provider (only that key ARN); with --discovery a discovery
provider limited to the account. --context on decrypt lists pairs the message's encryption
context must contain. The exit code is 0 on success; errors go to stderr.
"""

import argparse
import logging
import os
import sys
import urllib.parse


def pairs(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--context wants key=value, got {item!r}")
        out[key] = value
    return out


def check_endpoint():
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urllib.parse.urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(
            f"AWS_ENDPOINT_URL={url!r} is not a loopback endpoint; this helper only talks to the "
            "local KMS emulator (run it through `cargo xtask moto`)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=["encrypt", "decrypt"])
    parser.add_argument("--key", action="append", default=[], help="KMS key ARN (repeatable)")
    parser.add_argument("--discovery", action="store_true", help="decrypt with a discovery provider")
    parser.add_argument("--account", action="append", default=[], help="discovery filter account")
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--in", dest="input", required=True)
    parser.add_argument("--out", dest="output", required=True)
    parser.add_argument("--context", action="append", help="key=value (repeatable)")
    args = parser.parse_args()
    check_endpoint()
    # The SDK logs a traceback of its own when a decrypt fails; the one-line error is enough.
    logging.getLogger("aws_encryption_sdk").setLevel(logging.CRITICAL)

    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    from aws_encryption_sdk.key_providers.kms import (
        DiscoveryAwsKmsMasterKeyProvider,
        DiscoveryFilter,
        StrictAwsKmsMasterKeyProvider,
    )

    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    context = pairs(args.context)
    with open(args.input, "rb") as f:
        data = f.read()

    if args.operation == "encrypt":
        if not args.key or args.discovery:
            raise SystemExit("encrypt needs --key ARN (and no --discovery)")
        provider = StrictAwsKmsMasterKeyProvider(key_ids=args.key)
        result, _header = client.encrypt(source=data, key_provider=provider, encryption_context=context)
    else:
        if args.discovery:
            if not args.account:
                raise SystemExit("--discovery needs at least one --account")
            provider = DiscoveryAwsKmsMasterKeyProvider(
                discovery_filter=DiscoveryFilter(account_ids=args.account, partition=args.partition)
            )
        elif args.key:
            provider = StrictAwsKmsMasterKeyProvider(key_ids=args.key)
        else:
            raise SystemExit("decrypt needs --key ARN or --discovery --account ID")
        result, header = client.decrypt(source=data, key_provider=provider)
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
        print(f"kms_interop.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
