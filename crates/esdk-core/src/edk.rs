//! Encrypted data keys: a data key wrapped by one keyring, as stored in the header.

use crate::format::reader::{Reader, Short};
use core::fmt;

/// A data key wrapped by a keyring, with the provider id and info that name the wrapping key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncryptedDataKey {
    /// The key provider id (the keyring's namespace), UTF-8.
    pub provider_id: String,
    /// The key provider info (the key name, possibly with keyring-specific structure).
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl EncryptedDataKey {
    /// An EDK from its three parts.
    pub fn new(
        provider_id: impl Into<String>,
        provider_info: impl Into<Vec<u8>>,
        ciphertext: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            provider_id: provider_id.into(),
            provider_info: provider_info.into(),
            ciphertext: ciphertext.into(),
        }
    }

    /// Serialized length, or `None` if a field exceeds 65535 bytes.
    pub fn serialized_len(&self) -> Option<usize> {
        let max = usize::from(u16::MAX);
        if self.provider_id.len() > max
            || self.provider_info.len() > max
            || self.ciphertext.len() > max
        {
            return None;
        }
        Some(6 + self.provider_id.len() + self.provider_info.len() + self.ciphertext.len())
    }

    /// Append the wire form; the caller has checked `serialized_len`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        for field in [
            self.provider_id.as_bytes(),
            &self.provider_info,
            &self.ciphertext,
        ] {
            // Lengths were checked by serialized_len; truncation cannot happen.
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
    }

    /// Read one EDK entry without copying it: provider id, info and ciphertext as slices of
    /// the input (the header parser copies what it keeps). `Ok(None)` means the provider id was not UTF-8.
    #[allow(clippy::type_complexity)]
    pub(crate) fn read_borrowed<'a>(
        r: &mut Reader<'a>,
    ) -> Result<Option<(&'a str, &'a [u8], &'a [u8])>, Short> {
        let id = r.u16_prefixed()?;
        let info = r.u16_prefixed()?;
        let ct = r.u16_prefixed()?;
        Ok(core::str::from_utf8(id).ok().map(|id| (id, info, ct)))
    }
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field(
                "provider_info",
                &String::from_utf8_lossy(&self.provider_info),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}
