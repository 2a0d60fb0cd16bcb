#!/usr/bin/env python3
"""Fix four defects of moto 5.2.5's KMS emulation that the KMS keyring tests meet.

Run with the moto virtual environment's python (`cargo xtask moto` does, after every
install). Idempotent: each edit is skipped when its marker is already in the file. Loud: if
moto is not the pinned version, or a piece of source an edit anchors on is missing or
ambiguous, nothing is written and the script exits non-zero naming the file and the anchor.

The defects (see ../shared/emulators/README.md):
 1. moto's ciphertext blob reserves 36 bytes for the key id (a UUID), but moto names
    multi-Region keys "mrk-<uuid>" (40 characters), so their ids are cut and their
    ciphertexts never decrypt. Widen the field to 40 bytes and strip the NUL padding that
    shorter ids get when reading it back.
 2. ReplicateKey looks the key up by the raw KeyId parameter, so a key ARN raises KeyError
    (HTTP 500). Resolve ARNs to key ids first.
 3. Encrypt/Decrypt ignore EncryptionAlgorithm and use moto's symmetric blob format for RSA
    keys too, so a ciphertext made locally with the GetPublicKey key (what the KMS RSA
    keyring does) cannot be decrypted. Route RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256 to real
    RSA-OAEP with the key pair moto holds.
 4. DeriveSharedSecret does not exist. Add it: ECDH between the KMS key's private half and
    the caller's public key (DER SubjectPublicKeyInfo), as KMS does.
"""

import pathlib
import sys

PINNED = "5.2.5"
MARK = "# esdk-rs moto patch"

# Defect 3: an RSA-OAEP path for Encrypt and Decrypt, and defect 4: DeriveSharedSecret.
# Both become methods of KmsResponse, inserted right after the class line.
RESPONSE_METHODS = '''
    # esdk-rs moto patch: RSA-OAEP Encrypt/Decrypt and DeriveSharedSecret.
    def _esdk_rs_oaep(self, encrypting):
        algorithm = self._get_param("EncryptionAlgorithm")
        if algorithm not in ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"):
            return None
        from cryptography.hazmat.primitives import hashes as _h
        from cryptography.hazmat.primitives.asymmetric import padding as _p
        from .exceptions import InvalidCiphertextException, InvalidKeyUsageException

        key_id = self._get_param("KeyId")
        self._validate_key_id(key_id)
        key = self.kms_backend.describe_key(key_id)
        if key.key_usage != "ENCRYPT_DECRYPT" or not str(key.key_spec).startswith("RSA_"):
            raise InvalidKeyUsageException(
                f"{key.arn} is not an RSA key with key usage ENCRYPT_DECRYPT"
            )
        digest = _h.SHA1() if algorithm == "RSAES_OAEP_SHA_1" else _h.SHA256()
        oaep = _p.OAEP(mgf=_p.MGF1(algorithm=digest), algorithm=digest, label=None)
        private = key.private_key.private_key
        if encrypting:
            blob = private.public_key().encrypt(self._get_param("Plaintext"), oaep)
            field = "CiphertextBlob"
        else:
            try:
                blob = private.decrypt(self._get_param("CiphertextBlob"), oaep)
            except ValueError:
                raise InvalidCiphertextException()
            field = "Plaintext"
        return json.dumps(
            {
                "KeyId": key.arn,
                "EncryptionAlgorithm": algorithm,
                field: base64.b64encode(blob).decode("ascii"),
            }
        )

    def derive_shared_secret(self):
        from cryptography.hazmat.primitives import serialization as _s
        from cryptography.hazmat.primitives.asymmetric import ec as _ec
        from .exceptions import InvalidKeyUsageException

        key_id = self._get_param("KeyId")
        self._validate_key_id(key_id)
        key = self.kms_backend.describe_key(key_id)
        if key.key_usage != "KEY_AGREEMENT":
            raise InvalidKeyUsageException(f"{key.arn} does not have key usage KEY_AGREEMENT")
        peer = _s.load_der_public_key(base64.b64decode(self._get_param("PublicKey")))
        secret = key.private_key.private_key.exchange(_ec.ECDH(), peer)
        return json.dumps(
            {
                "KeyId": key.arn,
                "SharedSecret": base64.b64encode(secret).decode("ascii"),
                "KeyAgreementAlgorithm": "ECDH",
                "KeyOrigin": "AWS_KMS",
            }
        )

'''

ENCRYPT_DOC = '        """https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html"""\n'
DECRYPT_DOC = '        """https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html"""\n'


def hook(doc, encrypting):
    return (
        doc
        + f"        _oaep = self._esdk_rs_oaep({encrypting})  {MARK}\n"
        + "        if _oaep is not None:\n"
        + "            return _oaep\n"
    )


# (module, [(anchor, replacement)], marker proving the edits are in place)
EDITS = [
    (
        "moto/kms/utils.py",
        [
            ("KEY_ID_LEN = 36\n", f"KEY_ID_LEN = 40  {MARK}: room for mrk- ids\n"),
            ('key_id=key_id.decode("utf-8")', 'key_id=key_id.rstrip(b"\\0").decode("utf-8")'),
        ],
        f"KEY_ID_LEN = 40  {MARK}",
    ),
    (
        "moto/kms/models.py",
        [
            (
                "replica_key = copy(self.keys[key_id])",
                f"replica_key = copy(self.keys[self.get_key_id(key_id)])  {MARK}",
            )
        ],
        f"self.get_key_id(key_id)])  {MARK}",
    ),
    (
        "moto/kms/responses.py",
        [
            ("class KmsResponse(BaseResponse):\n", "class KmsResponse(BaseResponse):\n" + RESPONSE_METHODS),
            (ENCRYPT_DOC, hook(ENCRYPT_DOC, True)),
            (DECRYPT_DOC, hook(DECRYPT_DOC, False)),
        ],
        "def _esdk_rs_oaep(self, encrypting):",
    ),
]


def fail(msg):
    print(f"moto_patch: ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    try:
        import moto
    except ImportError as e:
        fail(f"cannot import moto ({e}); run this with the moto virtual environment's python")
    if moto.__version__ != PINNED:
        fail(f"moto {moto.__version__} is installed; this patch is written for {PINNED}")
    root = pathlib.Path(moto.__file__).resolve().parent.parent
    planned = []
    for rel, pairs, marker in EDITS:
        path = root / rel
        if not path.is_file():
            fail(f"{path} does not exist: moto's source layout changed")
        text = path.read_text(encoding="utf-8")
        if marker in text:
            print(f"moto_patch: {rel}: already patched")
            continue
        for anchor, replacement in pairs:
            count = text.count(anchor)
            if count != 1:
                fail(f"{path}: expected exactly one {anchor!r}, found {count}: moto's source changed")
            text = text.replace(anchor, replacement)
        compile(text, str(path), "exec")  # a syntax error here must never reach the disk
        planned.append((rel, path, text))
    for rel, path, text in planned:
        path.write_text(text, encoding="utf-8")
        for cache in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
            cache.unlink()
        print(f"moto_patch: {rel}: patched")
    print("moto_patch: moto KMS is patched")


if __name__ == "__main__":
    main()
