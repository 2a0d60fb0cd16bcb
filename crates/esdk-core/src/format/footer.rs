//! The footer of signed messages: a u16 length and a DER ECDSA signature.

use super::reader::Reader;
use crate::error::{FormatError, Result};

/// Append the footer for `signature` to `out`.
pub fn write_footer(signature: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let len = u16::try_from(signature.len()).map_err(|_| FormatError::Footer)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(signature);
    Ok(())
}

/// Parse a footer at the start of `input`: `Ok(None)` if `input` ends before it does.
/// Returns the signature and the footer's wire length.
pub fn parse_footer(input: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let mut r = Reader::new(input);
    let Ok(sig) = r.u16_prefixed() else {
        return Ok(None);
    };
    if sig.is_empty() {
        return Err(FormatError::Footer.into());
    }
    Ok(Some((sig, r.position())))
}
