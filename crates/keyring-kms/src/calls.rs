//! The four KMS calls the keyrings make, each in a `tracing` span, with the response checks
//! the specification requires. Plaintext data keys go straight into zeroizing buffers and
//! never reach a span or event.

use crate::arn::{KeyIdentifier, KmsArn, ResourceType};
use crate::client::client_region;
use crate::error::{KmsError, KmsOperation};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::EncryptionAlgorithmSpec;
use aws_sdk_kms::Client;
use esdk_core::EncryptionContext;
use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;
use tracing::field::Empty;
use tracing::Instrument;
use zeroize::Zeroizing;

/// A KMS client and the grant tokens sent on every call.
#[derive(Clone)]
pub(crate) struct KmsCaller {
    pub(crate) client: Client,
    pub(crate) grant_tokens: Vec<String>,
}

/// A data key generated or decrypted by KMS.
pub(crate) struct Unwrapped {
    /// The plaintext.
    pub(crate) plaintext: Zeroizing<Vec<u8>>,
}

/// A data key wrapped by KMS.
pub(crate) struct Wrapped {
    /// The key ARN KMS answered with (the EDK's provider info).
    pub(crate) key_arn: String,
    /// The ciphertext blob.
    pub(crate) ciphertext: Vec<u8>,
    /// The generated plaintext, for GenerateDataKey.
    pub(crate) plaintext: Option<Zeroizing<Vec<u8>>>,
}

fn context_map(ec: &EncryptionContext) -> Option<HashMap<String, String>> {
    if ec.is_empty() {
        None
    } else {
        Some(ec.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

fn tokens(t: &[String]) -> Option<Vec<String>> {
    if t.is_empty() {
        None
    } else {
        Some(t.to_vec())
    }
}

impl KmsCaller {
    /// Run `fut` in a span naming the operation, key and region; record latency and outcome.
    ///
    /// Without a Tokio runtime on this thread, `fut` is never polled and the call fails with
    /// [`KmsError::NoTokioRuntime`]: the SDK would panic ("there is no reactor running").
    async fn traced<T>(
        &self,
        operation: KmsOperation,
        key_id: &str,
        fut: impl Future<Output = Result<T, KmsError>>,
    ) -> Result<T, KmsError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(KmsError::NoTokioRuntime {
                key_id: key_id.to_owned(),
                operation,
            });
        }
        let region = client_region(&self.client).unwrap_or_default();
        let span = tracing::info_span!(
            "kms_call",
            operation = operation.as_str(),
            key_id,
            region = region.as_str(),
            grant_tokens = self.grant_tokens.len(),
            latency_ms = Empty,
            outcome = Empty,
        );
        let start = Instant::now();
        let out = fut.instrument(span.clone()).await;
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        span.record("latency_ms", latency_ms);
        match &out {
            Ok(_) => {
                span.record("outcome", "ok");
                tracing::debug!(parent: &span, latency_ms, "KMS call succeeded");
            }
            Err(e) => {
                span.record("outcome", e.code().unwrap_or("error"));
                tracing::warn!(parent: &span, latency_ms, error = %e, "KMS call failed");
            }
        }
        out
    }

    /// `GenerateDataKey` for `len` bytes, checked.
    pub(crate) async fn generate_data_key(
        &self,
        key: &KeyIdentifier,
        key_id: &str,
        len: usize,
        ec: &EncryptionContext,
    ) -> Result<Wrapped, KmsError> {
        let op = KmsOperation::GenerateDataKey;
        self.traced(op, key_id, async {
            let bytes = i32::try_from(len).map_err(|_| KmsError::PlaintextLength {
                operation: op,
                key_id: key_id.to_owned(),
                expected: len,
                actual: 0,
            })?;
            let out = self
                .client
                .generate_data_key()
                .key_id(key_id)
                .number_of_bytes(bytes)
                .set_encryption_context(context_map(ec))
                .set_grant_tokens(tokens(&self.grant_tokens))
                .send()
                .await
                .map_err(|e| KmsError::from_sdk(key_id, op, e))?;
            let key_arn = check_wrapping_key_id(op, key, key_id, out.key_id())?;
            let plaintext = Zeroizing::new(
                out.plaintext
                    .ok_or_else(|| missing(op, key_id, "Plaintext"))?
                    .into_inner(),
            );
            if plaintext.len() != len {
                return Err(KmsError::PlaintextLength {
                    operation: op,
                    key_id: key_id.to_owned(),
                    expected: len,
                    actual: plaintext.len(),
                });
            }
            let ciphertext = out
                .ciphertext_blob
                .ok_or_else(|| missing(op, key_id, "CiphertextBlob"))?
                .into_inner();
            Ok(Wrapped {
                key_arn,
                ciphertext,
                plaintext: Some(plaintext),
            })
        })
        .await
    }

    /// `Encrypt` of an existing data key, checked.
    pub(crate) async fn encrypt(
        &self,
        key: &KeyIdentifier,
        key_id: &str,
        plaintext: &[u8],
        ec: &EncryptionContext,
    ) -> Result<Wrapped, KmsError> {
        let op = KmsOperation::Encrypt;
        self.traced(op, key_id, async {
            let out = self
                .client
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(plaintext))
                .set_encryption_context(context_map(ec))
                .set_grant_tokens(tokens(&self.grant_tokens))
                .send()
                .await
                .map_err(|e| KmsError::from_sdk(key_id, op, e))?;
            let key_arn = check_wrapping_key_id(op, key, key_id, out.key_id())?;
            let ciphertext = out
                .ciphertext_blob
                .ok_or_else(|| missing(op, key_id, "CiphertextBlob"))?
                .into_inner();
            Ok(Wrapped {
                key_arn,
                ciphertext,
                plaintext: None,
            })
        })
        .await
    }

    /// `Decrypt` with `KeyId = key_id`; the response must name exactly `key_id` and carry
    /// `expected_len` bytes. `ec` is `None` for the KMS RSA keyring (asymmetric keys take no
    /// encryption context).
    pub(crate) async fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ec: Option<&EncryptionContext>,
        algorithm: Option<EncryptionAlgorithmSpec>,
        expected_len: usize,
    ) -> Result<Unwrapped, KmsError> {
        let op = KmsOperation::Decrypt;
        self.traced(op, key_id, async {
            let out = self
                .client
                .decrypt()
                .key_id(key_id)
                .ciphertext_blob(Blob::new(ciphertext))
                .set_encryption_context(ec.and_then(context_map))
                .set_grant_tokens(tokens(&self.grant_tokens))
                .set_encryption_algorithm(algorithm)
                .send()
                .await
                .map_err(|e| KmsError::from_sdk(key_id, op, e))?;
            let returned = out.key_id().ok_or_else(|| missing(op, key_id, "KeyId"))?;
            if returned != key_id {
                return Err(KmsError::KeyIdMismatch {
                    operation: op,
                    requested: key_id.to_owned(),
                    returned: returned.to_owned(),
                });
            }
            let plaintext = Zeroizing::new(
                out.plaintext
                    .ok_or_else(|| missing(op, key_id, "Plaintext"))?
                    .into_inner(),
            );
            if plaintext.len() != expected_len {
                return Err(KmsError::PlaintextLength {
                    operation: op,
                    key_id: key_id.to_owned(),
                    expected: expected_len,
                    actual: plaintext.len(),
                });
            }
            Ok(Unwrapped { plaintext })
        })
        .await
    }

    /// `GetPublicKey`: the DER SubjectPublicKeyInfo and the algorithms KMS allows.
    pub(crate) async fn get_public_key(
        &self,
        key_id: &str,
    ) -> Result<(Vec<u8>, Vec<EncryptionAlgorithmSpec>), KmsError> {
        let op = KmsOperation::GetPublicKey;
        self.traced(op, key_id, async {
            let out = self
                .client
                .get_public_key()
                .key_id(key_id)
                .set_grant_tokens(tokens(&self.grant_tokens))
                .send()
                .await
                .map_err(|e| KmsError::from_sdk(key_id, op, e))?;
            let der = out
                .public_key
                .ok_or_else(|| missing(op, key_id, "PublicKey"))?
                .into_inner();
            Ok((der, out.encryption_algorithms.unwrap_or_default()))
        })
        .await
    }
}

fn missing(operation: KmsOperation, key_id: &str, field: &'static str) -> KmsError {
    KmsError::MissingField {
        operation,
        key_id: key_id.to_owned(),
        field,
    }
}

/// The key id returned by GenerateDataKey / Encrypt must be a key ARN (it becomes the EDK's
/// provider info). Beyond the specification, when the keyring was configured with a key ARN
/// or bare key id it must also be that key: KMS resolves only aliases to other names.
fn check_wrapping_key_id(
    operation: KmsOperation,
    key: &KeyIdentifier,
    key_id: &str,
    returned: Option<&str>,
) -> Result<String, KmsError> {
    let returned = returned.ok_or_else(|| missing(operation, key_id, "KeyId"))?;
    let arn = KmsArn::parse_key_arn(returned).map_err(|reason| KmsError::ReturnedKeyIdNotArn {
        operation,
        key_id: key_id.to_owned(),
        returned: returned.to_owned(),
        reason,
    })?;
    let same = match key {
        KeyIdentifier::Arn(a) if a.resource_type() == ResourceType::Key => *a == arn,
        KeyIdentifier::KeyId(id) => arn.resource_id() == id,
        KeyIdentifier::Arn(_) | KeyIdentifier::AliasName(_) => true,
    };
    if !same {
        return Err(KmsError::KeyIdMismatch {
            operation,
            requested: key_id.to_owned(),
            returned: returned.to_owned(),
        });
    }
    Ok(returned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn wrapping_key_id_checks() {
        let op = KmsOperation::Encrypt;
        let arn_id = KeyIdentifier::parse(ARN).unwrap();
        assert_eq!(
            check_wrapping_key_id(op, &arn_id, ARN, Some(ARN)).unwrap(),
            ARN
        );
        let other = ARN.replace("1234abcd", "9999abcd");
        assert!(matches!(
            check_wrapping_key_id(op, &arn_id, ARN, Some(&other)),
            Err(KmsError::KeyIdMismatch { .. })
        ));
        let bare = KeyIdentifier::parse("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert!(check_wrapping_key_id(
            op,
            &bare,
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            Some(ARN)
        )
        .is_ok());
        assert!(check_wrapping_key_id(
            op,
            &bare,
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            Some(&other)
        )
        .is_err());
        let alias = KeyIdentifier::parse("alias/x").unwrap();
        assert!(check_wrapping_key_id(op, &alias, "alias/x", Some(&other)).is_ok());
        assert!(matches!(
            check_wrapping_key_id(op, &alias, "alias/x", Some("1234abcd")),
            Err(KmsError::ReturnedKeyIdNotArn { .. })
        ));
        assert!(matches!(
            check_wrapping_key_id(op, &alias, "alias/x", None),
            Err(KmsError::MissingField { field: "KeyId", .. })
        ));
    }
}
