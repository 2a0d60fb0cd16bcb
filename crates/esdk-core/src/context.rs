//! The encryption context: non-secret, authenticated key-value pairs bound to a message.

use crate::error::ContextError;
use crate::format::reader::Reader;
use std::collections::BTreeMap;

/// The prefix reserved for the SDK's own context keys.
pub const RESERVED_PREFIX: &str = "aws-crypto-";
/// The context key under which signed suites store the verification key.
pub const PUBLIC_KEY_FIELD: &str = "aws-crypto-public-key";

/// A map of UTF-8 keys to UTF-8 values.
///
/// `String`'s ordering is byte-wise over UTF-8, which is exactly the order the wire format
/// sorts pairs in, so a `BTreeMap` serializes canonically without an extra sort.
pub type EncryptionContext = BTreeMap<String, String>;

/// Reject keys with the reserved `aws-crypto-` prefix (caller-supplied contexts on encrypt).
pub fn check_no_reserved_keys(context: &EncryptionContext) -> Result<(), ContextError> {
    match context.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
        Some(key) => Err(ContextError::ReservedKey(key.clone())),
        None => Ok(()),
    }
}

/// The serialized length of `pairs` (0 for an empty context).
pub fn serialized_len<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<usize, ContextError> {
    let mut count = 0usize;
    let mut len = 2usize;
    for (k, v) in pairs {
        if k.len() > usize::from(u16::MAX) || v.len() > usize::from(u16::MAX) {
            return Err(ContextError::EntryTooLarge);
        }
        count += 1;
        len += 4 + k.len() + v.len();
    }
    if count == 0 {
        return Ok(0);
    }
    if count > usize::from(u16::MAX) || len > usize::from(u16::MAX) {
        return Err(ContextError::TooLarge(len));
    }
    Ok(len)
}

/// Append the canonical serialization of `pairs` (already sorted by key bytes) to `out`.
/// An empty context serializes to nothing.
pub fn serialize_pairs_into<'a, I>(pairs: I, out: &mut Vec<u8>) -> Result<(), ContextError>
where
    I: Iterator<Item = (&'a String, &'a String)> + Clone,
{
    let len = serialized_len(pairs.clone())?;
    if len == 0 {
        return Ok(());
    }
    out.reserve(len);
    let count = pairs.clone().count();
    out.extend_from_slice(&to_u16(count)?.to_be_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&to_u16(k.len())?.to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&to_u16(v.len())?.to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    Ok(())
}

fn to_u16(n: usize) -> Result<u16, ContextError> {
    u16::try_from(n).map_err(|_| ContextError::EntryTooLarge)
}

/// The canonical serialization of a whole context.
pub fn serialize(context: &EncryptionContext) -> Result<Vec<u8>, ContextError> {
    let mut out = Vec::new();
    serialize_pairs_into(context.iter(), &mut out)?;
    Ok(out)
}

/// The serialization of only the pairs whose keys are in `keys`.
pub fn serialize_subset(
    context: &EncryptionContext,
    keys: &[String],
) -> Result<Vec<u8>, ContextError> {
    let mut out = Vec::new();
    serialize_pairs_into(
        context.iter().filter(|(k, _)| keys.iter().any(|r| r == *k)),
        &mut out,
    )?;
    Ok(out)
}

/// Parse a serialized context (the header's key-value pairs field, exactly `bytes`).
///
/// Pairs in an order other than sorted are accepted: the header is authenticated over the
/// bytes as received, so order carries no security meaning, and old writers may differ.
pub fn deserialize(bytes: &[u8]) -> Result<EncryptionContext, ContextError> {
    let mut context = EncryptionContext::new();
    if bytes.is_empty() {
        return Ok(context);
    }
    let mut r = Reader::new(bytes);
    let count = r.u16().map_err(|_| ContextError::LengthMismatch)?;
    if count == 0 {
        return Err(ContextError::ZeroCount);
    }
    for _ in 0..count {
        let key = r.u16_prefixed().map_err(|_| ContextError::LengthMismatch)?;
        let value = r.u16_prefixed().map_err(|_| ContextError::LengthMismatch)?;
        let key = core::str::from_utf8(key).map_err(|_| ContextError::NotUtf8)?;
        let value = core::str::from_utf8(value).map_err(|_| ContextError::NotUtf8)?;
        if context.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(ContextError::DuplicateKey(key.to_owned()));
        }
    }
    if !r.is_empty() {
        return Err(ContextError::LengthMismatch);
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn golden_serialization_sorted_by_utf8_bytes() {
        // "b" < "aé"? No: byte order puts "a\u{e9}" (0x61 0xC3 0xA9) before "b" (0x62),
        // and "Z" (0x5A) before both.
        let c = ctx(&[("b", "2"), ("a\u{e9}", "1"), ("Z", "")]);
        let bytes = serialize(&c).unwrap();
        let expected: Vec<u8> = [
            &[0x00, 0x03][..],
            &[0x00, 0x01, b'Z', 0x00, 0x00],
            &[0x00, 0x03, b'a', 0xC3, 0xA9, 0x00, 0x01, b'1'],
            &[0x00, 0x01, b'b', 0x00, 0x01, b'2'],
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(deserialize(&bytes).unwrap(), c);
    }

    #[test]
    fn empty_context_is_empty_bytes() {
        assert!(serialize(&EncryptionContext::new()).unwrap().is_empty());
        assert!(deserialize(&[]).unwrap().is_empty());
    }

    #[test]
    fn rejections() {
        assert_eq!(deserialize(&[0, 0]), Err(ContextError::ZeroCount));
        assert_eq!(
            deserialize(&[0, 1, 0, 1, b'a']),
            Err(ContextError::LengthMismatch)
        );
        assert_eq!(
            deserialize(&[0, 1, 0, 1, b'a', 0, 0, 9]),
            Err(ContextError::LengthMismatch)
        );
        assert_eq!(
            deserialize(&[0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0]),
            Err(ContextError::DuplicateKey("a".into()))
        );
        assert_eq!(
            deserialize(&[0, 1, 0, 1, 0xff, 0, 0]),
            Err(ContextError::NotUtf8)
        );
        assert_eq!(
            deserialize(&[0, 1, 0, 1, b'a', 0, 1, 0xff]),
            Err(ContextError::NotUtf8)
        );
        assert!(matches!(
            check_no_reserved_keys(&ctx(&[("aws-crypto-x", "1")])),
            Err(ContextError::ReservedKey(_))
        ));
        let big = ctx(&[("k", &"v".repeat(70_000))]);
        assert_eq!(serialize(&big), Err(ContextError::EntryTooLarge));
        let many: EncryptionContext = (0..20_000)
            .map(|i| (format!("{i:05}"), String::new()))
            .collect();
        assert!(matches!(serialize(&many), Err(ContextError::TooLarge(_))));
    }

    /// Pairs out of order are accepted (the header is authenticated over the bytes received,
    /// so order carries no meaning); serializing again sorts them.
    #[test]
    fn unsorted_pairs_are_accepted() {
        let unsorted = [0, 2, 0, 1, b'b', 0, 1, b'2', 0, 1, b'a', 0, 1, b'1'];
        let parsed = deserialize(&unsorted).unwrap();
        assert_eq!(parsed, ctx(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            serialize(&parsed).unwrap(),
            [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2']
        );
    }

    #[test]
    fn subset_serialization() {
        let c = ctx(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let s = serialize_subset(&c, &["c".into(), "a".into()]).unwrap();
        assert_eq!(s, serialize(&ctx(&[("a", "1"), ("c", "3")])).unwrap());
        assert!(serialize_subset(&c, &[]).unwrap().is_empty());
    }
}
