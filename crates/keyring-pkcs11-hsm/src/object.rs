//! Finding key objects in the token by label (and id), and telling "absent" from "of the
//! wrong kind".

use crate::error::Pkcs11Error;
use crate::token::OpError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::atomic::{AtomicU64, Ordering};

/// A key the keyring uses: label, optional id, the class and type it must have.
#[derive(Debug, Clone)]
pub(crate) struct KeyRef {
    /// Unique per `KeyRef`, the key of the per-session handle cache.
    pub(crate) cache_id: u64,
    pub(crate) label: String,
    pub(crate) id: Option<Vec<u8>>,
    pub(crate) class: ObjectClass,
    pub(crate) key_type: KeyType,
    /// "AES secret key", "RSA private key", ...
    pub(crate) what: &'static str,
}

impl KeyRef {
    pub(crate) fn new(
        label: String,
        id: Option<Vec<u8>>,
        class: ObjectClass,
        key_type: KeyType,
        what: &'static str,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            cache_id: NEXT.fetch_add(1, Ordering::Relaxed),
            label,
            id,
            class,
            key_type,
            what,
        }
    }
}

fn describe(class: Option<ObjectClass>, key_type: Option<KeyType>) -> String {
    match (class, key_type) {
        (Some(c), Some(t)) => format!("a {t} {c}"),
        (Some(c), None) => format!("a {c}"),
        _ => "an object of unknown class".to_owned(),
    }
}

/// The one object matching `key`, searched through `session`.
pub(crate) fn find(session: &Session, key: &KeyRef, token: &str) -> Result<ObjectHandle, OpError> {
    let mut template = vec![Attribute::Label(key.label.as_bytes().to_vec())];
    if let Some(id) = &key.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| OpError::Ck(e, "searching the token for the key"))?;
    let mut matching = Vec::new();
    let mut others = Vec::new();
    for handle in found {
        let attrs = session
            .get_attributes(handle, &[AttributeType::Class, AttributeType::KeyType])
            .map_err(|e| OpError::Ck(e, "reading the key's class"))?;
        let mut class = None;
        let mut key_type = None;
        for attr in attrs {
            match attr {
                Attribute::Class(c) => class = Some(c),
                Attribute::KeyType(t) => key_type = Some(t),
                _ => {}
            }
        }
        if class == Some(key.class) && key_type == Some(key.key_type) {
            matching.push(handle);
        } else {
            others.push(describe(class, key_type));
        }
    }
    match matching.len() {
        1 => Ok(matching[0]),
        0 if others.is_empty() => Err(OpError::Fail(Pkcs11Error::KeyNotFound {
            token: token.to_owned(),
            label: key.label.clone(),
            id: key.id.clone(),
            class: key.what,
        })),
        0 => Err(OpError::Fail(Pkcs11Error::KeyWrongType {
            token: token.to_owned(),
            label: key.label.clone(),
            expected: key.what,
            found: others.join(" and "),
        })),
        count => Err(OpError::Fail(Pkcs11Error::AmbiguousKey {
            token: token.to_owned(),
            label: key.label.clone(),
            count,
        })),
    }
}

/// Read attributes of a key (those the token reports; sensitive ones are skipped).
pub(crate) fn attributes(
    session: &Session,
    handle: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, OpError> {
    session
        .get_attributes(handle, types)
        .map_err(|e| OpError::Ck(e, "reading the key's attributes"))
}
