//! AWS KMS key identifiers: ARN parsing and the multi-Region key (MRK) rules of the
//! specification (`aws-kms-key-arn.md`, `aws-kms-mrk-match-for-decrypt.md`,
//! `aws-kms-mrk-are-unique.md`).
//!
//! KMS accepts four spellings of a key: a key ARN
//! (`arn:aws:kms:us-west-2:111122223333:key/1234abcd-...`), an alias ARN
//! (`arn:aws:kms:us-west-2:111122223333:alias/my-key`), an alias name (`alias/my-key`) and a
//! bare key id (`1234abcd-...` or `mrk-...`). Encrypted data keys always record the key ARN
//! KMS returned, so only key ARNs can be matched on decrypt.

use core::fmt;
use std::collections::BTreeMap;

/// KMS accepts key identifiers of at most this many characters.
pub const MAX_KEY_ID_LEN: usize = 2048;

/// The prefix of a multi-Region key's id.
const MRK_PREFIX: &str = "mrk-";

/// Why a string is not a valid KMS ARN or key identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArnError {
    /// The identifier is empty.
    #[error("the key identifier is empty")]
    Empty,
    /// Longer than KMS accepts.
    #[error("the key identifier is {0} characters long; KMS accepts at most 2048")]
    TooLong(usize),
    /// Not six `:`-separated parts.
    #[error(
        "an ARN has six ':'-separated parts (arn:partition:kms:region:account:resource), found {0}"
    )]
    PartCount(usize),
    /// The first part is not `arn`.
    #[error("an ARN starts with \"arn:\"")]
    NotArn,
    /// A part that must not be empty is empty.
    #[error("the ARN's {0} is empty")]
    EmptyPart(&'static str),
    /// The service is not `kms`.
    #[error("the ARN's service is {0:?}, not \"kms\"")]
    NotKms(String),
    /// The resource has no `/`.
    #[error("the ARN's resource {0:?} is not of the form key/<id> or alias/<name>")]
    NoResourceType(String),
    /// The resource type is neither `key` nor `alias`.
    #[error("the ARN's resource type is {0:?}; KMS uses \"key\" or \"alias\"")]
    ResourceType(String),
    /// An alias ARN where a key ARN is required.
    #[error("this is an alias ARN; a key ARN (resource type \"key\") is required here")]
    AliasNotKey,
}

/// The resource type of a KMS ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `key/<key id>`.
    Key,
    /// `alias/<alias name>`.
    Alias,
}

impl ResourceType {
    /// The ARN spelling (`key` or `alias`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Alias => "alias",
        }
    }
}

/// A parsed AWS KMS ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KmsArn {
    partition: String,
    region: String,
    account: String,
    resource_type: ResourceType,
    resource_id: String,
}

impl KmsArn {
    /// Parse `arn:<partition>:kms:<region>:<account>:<type>/<id>`.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        check_len(s)?;
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(ArnError::PartCount(parts.len()));
        }
        if parts[0] != "arn" {
            return Err(ArnError::NotArn);
        }
        let names = ["", "partition", "service", "region", "account", "resource"];
        for (i, part) in parts.iter().enumerate().skip(1) {
            if part.is_empty() {
                return Err(ArnError::EmptyPart(names[i]));
            }
        }
        if parts[2] != "kms" {
            return Err(ArnError::NotKms(parts[2].to_owned()));
        }
        let (kind, id) = parts[5]
            .split_once('/')
            .ok_or_else(|| ArnError::NoResourceType(parts[5].to_owned()))?;
        let resource_type = match kind {
            "key" => ResourceType::Key,
            "alias" => ResourceType::Alias,
            other => return Err(ArnError::ResourceType(other.to_owned())),
        };
        if id.is_empty() {
            return Err(ArnError::EmptyPart("resource id"));
        }
        Ok(Self {
            partition: parts[1].to_owned(),
            region: parts[3].to_owned(),
            account: parts[4].to_owned(),
            resource_type,
            resource_id: id.to_owned(),
        })
    }

    /// Parse and require resource type `key` (what encrypted data keys must name).
    pub fn parse_key_arn(s: &str) -> Result<Self, ArnError> {
        let arn = Self::parse(s)?;
        if arn.resource_type != ResourceType::Key {
            return Err(ArnError::AliasNotKey);
        }
        Ok(arn)
    }

    /// The partition (`aws`, `aws-cn`, ...).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The resource type.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The key id or alias name (everything after the first `/` of the resource).
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// Whether this ARN names a multi-Region key: type `key` and an id starting `mrk-`.
    pub fn is_mrk(&self) -> bool {
        self.resource_type == ResourceType::Key && self.resource_id.starts_with(MRK_PREFIX)
    }

    /// The same ARN in another region (used to address an MRK replica).
    pub fn with_region(&self, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for KmsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:kms:{}:{}:{}/{}",
            self.partition,
            self.region,
            self.account,
            self.resource_type.as_str(),
            self.resource_id
        )
    }
}

fn check_len(s: &str) -> Result<(), ArnError> {
    if s.is_empty() {
        return Err(ArnError::Empty);
    }
    if s.len() > MAX_KEY_ID_LEN {
        return Err(ArnError::TooLong(s.len()));
    }
    Ok(())
}

/// A KMS key identifier in any form KMS accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyIdentifier {
    /// A key or alias ARN.
    Arn(KmsArn),
    /// `alias/<name>` (resolved by KMS in the client's region).
    AliasName(String),
    /// A bare key id (resolved by KMS in the client's region).
    KeyId(String),
}

impl KeyIdentifier {
    /// Parse an identifier: a string starting `arn:` must be a valid KMS ARN; `alias/...` is
    /// an alias name; anything else non-empty is a bare key id.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        check_len(s)?;
        if s.starts_with("arn:") {
            return KmsArn::parse(s).map(Self::Arn);
        }
        if let Some(name) = s.strip_prefix("alias/") {
            if name.is_empty() {
                return Err(ArnError::EmptyPart("alias name"));
            }
            return Ok(Self::AliasName(s.to_owned()));
        }
        Ok(Self::KeyId(s.to_owned()))
    }

    /// The region named by an ARN; `None` for alias names and bare ids.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::Arn(arn) => Some(arn.region()),
            _ => None,
        }
    }

    /// The key ARN, if this identifier is one.
    pub fn key_arn(&self) -> Option<&KmsArn> {
        match self {
            Self::Arn(arn) if arn.resource_type() == ResourceType::Key => Some(arn),
            _ => None,
        }
    }

    /// A short description of the form, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Arn(arn) if arn.resource_type() == ResourceType::Key => "a key ARN",
            Self::Arn(_) => "an alias ARN",
            Self::AliasName(_) => "an alias name",
            Self::KeyId(_) => "a bare key id",
        }
    }

    /// Whether this identifier names a multi-Region key (spec: a key ARN with an `mrk-` id,
    /// or a bare id starting `mrk-`; aliases never do).
    pub fn is_mrk(&self) -> bool {
        match self {
            Self::Arn(arn) => arn.is_mrk(),
            Self::AliasName(_) => false,
            Self::KeyId(id) => id.starts_with(MRK_PREFIX),
        }
    }

    /// The resource id used for MRK uniqueness: the ARN's resource id or the bare id.
    fn resource_id(&self) -> &str {
        match self {
            Self::Arn(arn) => arn.resource_id(),
            Self::AliasName(name) => name,
            Self::KeyId(id) => id,
        }
    }
}

/// Whether the string `identifier` names a multi-Region key (spec `aws-kms-key-arn.md`):
/// starts `arn:` ⇒ the ARN rule (an unparsable ARN is not an MRK); starts `alias/` ⇒ false;
/// starts `mrk-` ⇒ true; otherwise false.
pub fn is_mrk_identifier(identifier: &str) -> bool {
    if identifier.starts_with("arn:") {
        return KmsArn::parse(identifier).is_ok_and(|arn| arn.is_mrk());
    }
    if identifier.starts_with("alias/") {
        return false;
    }
    identifier.starts_with(MRK_PREFIX)
}

/// MRK match for decrypt (`aws-kms-mrk-match-for-decrypt.md`): identical strings match;
/// otherwise both must be multi-Region key ARNs that agree on everything except the region.
pub fn mrk_match_for_decrypt(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if !is_mrk_identifier(a) || !is_mrk_identifier(b) {
        return false;
    }
    match (KmsArn::parse(a), KmsArn::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.partition == b.partition
                && a.account == b.account
                && a.resource_type == b.resource_type
                && a.resource_id == b.resource_id
        }
        _ => false,
    }
}

/// Two or more configured identifiers name the same multi-Region key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("multi-Region key identifiers must be unique (one per key, whatever the region), but these name the same key: {}", .0.join(", "))]
pub struct DuplicateMrks(pub Vec<String>);

/// Check that no two identifiers name the same multi-Region key (`aws-kms-mrk-are-unique.md`).
/// Non-MRK identifiers are ignored; the error lists every identifier involved.
pub fn check_mrks_unique<'a>(
    identifiers: impl IntoIterator<Item = &'a KeyIdentifier>,
) -> Result<(), DuplicateMrks> {
    let mut by_id: BTreeMap<&str, Vec<&KeyIdentifier>> = BTreeMap::new();
    let mut order = Vec::new();
    for id in identifiers.into_iter().filter(|i| i.is_mrk()) {
        order.push(id);
        by_id.entry(id.resource_id()).or_default().push(id);
    }
    let duplicates: Vec<String> = order
        .into_iter()
        .filter(|id| by_id.get(id.resource_id()).is_some_and(|v| v.len() > 1))
        .map(identifier_to_string)
        .collect();
    if duplicates.is_empty() {
        Ok(())
    } else {
        Err(DuplicateMrks(duplicates))
    }
}

fn identifier_to_string(id: &KeyIdentifier) -> String {
    match id {
        KeyIdentifier::Arn(arn) => arn.to_string(),
        KeyIdentifier::AliasName(s) | KeyIdentifier::KeyId(s) => s.clone(),
    }
}

impl fmt::Display for KeyIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&identifier_to_string(self))
    }
}

/// Restricts discovery keyrings to keys of one partition and a set of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFilter {
    partition: String,
    account_ids: Vec<String>,
}

/// A discovery filter's configuration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryFilterError {
    /// The partition is empty.
    #[error("the discovery filter's partition is empty")]
    EmptyPartition,
    /// No accounts.
    #[error("the discovery filter lists no account ids")]
    NoAccounts,
    /// An empty account id.
    #[error("the discovery filter contains an empty account id")]
    EmptyAccount,
}

impl DiscoveryFilter {
    /// A filter accepting keys in `partition` owned by one of `account_ids`.
    pub fn new(
        partition: impl Into<String>,
        account_ids: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, DiscoveryFilterError> {
        let partition = partition.into();
        let account_ids: Vec<String> = account_ids.into_iter().map(Into::into).collect();
        if partition.is_empty() {
            return Err(DiscoveryFilterError::EmptyPartition);
        }
        if account_ids.is_empty() {
            return Err(DiscoveryFilterError::NoAccounts);
        }
        if account_ids.iter().any(String::is_empty) {
            return Err(DiscoveryFilterError::EmptyAccount);
        }
        Ok(Self {
            partition,
            account_ids,
        })
    }

    /// The partition.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The accepted account ids.
    pub fn account_ids(&self) -> &[String] {
        &self.account_ids
    }

    /// `Ok` if `arn` passes the filter, else a sentence saying why not.
    pub fn check(&self, arn: &KmsArn) -> Result<(), String> {
        if arn.partition() != self.partition {
            return Err(format!(
                "its partition {:?} is not the filter's partition {:?}",
                arn.partition(),
                self.partition
            ));
        }
        if !self.account_ids.iter().any(|a| a == arn.account()) {
            return Err(format!(
                "its account {} is not one of the filter's accounts [{}]",
                arn.account(),
                self.account_ids.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const MRK_WEST: &str =
        "arn:aws:kms:us-west-2:111122223333:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";
    const MRK_EAST: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";

    #[test]
    fn parses_key_and_alias_arns() {
        let arn = KmsArn::parse(KEY).unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.region(), "us-west-2");
        assert_eq!(arn.account(), "111122223333");
        assert_eq!(arn.resource_type(), ResourceType::Key);
        assert_eq!(arn.resource_id(), "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(arn.to_string(), KEY);

        let alias =
            KmsArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:alias/my/nested/name").unwrap();
        assert_eq!(alias.resource_type(), ResourceType::Alias);
        // Only the first '/' splits type from id.
        assert_eq!(alias.resource_id(), "my/nested/name");
        assert_eq!(
            KmsArn::parse_key_arn("arn:aws:kms:us-west-2:111122223333:alias/x"),
            Err(ArnError::AliasNotKey)
        );
    }

    #[test]
    fn rejects_malformed_arns_with_the_reason() {
        let cases: &[(&str, ArnError)] = &[
            ("", ArnError::Empty),
            ("arn:aws:kms:us-west-2:111122223333", ArnError::PartCount(5)),
            (
                "arn:aws:kms:us-west-2:111122223333:key/a:b",
                ArnError::PartCount(7),
            ),
            ("urn:aws:kms:us-west-2:111122223333:key/a", ArnError::NotArn),
            (
                "arn::kms:us-west-2:111122223333:key/a",
                ArnError::EmptyPart("partition"),
            ),
            (
                "arn:aws::us-west-2:111122223333:key/a",
                ArnError::EmptyPart("service"),
            ),
            (
                "arn:aws:s3:us-west-2:111122223333:key/a",
                ArnError::NotKms("s3".into()),
            ),
            (
                "arn:aws:kms::111122223333:key/a",
                ArnError::EmptyPart("region"),
            ),
            (
                "arn:aws:kms:us-west-2::key/a",
                ArnError::EmptyPart("account"),
            ),
            (
                "arn:aws:kms:us-west-2:111122223333:",
                ArnError::EmptyPart("resource"),
            ),
            (
                "arn:aws:kms:us-west-2:111122223333:key",
                ArnError::NoResourceType("key".into()),
            ),
            (
                "arn:aws:kms:us-west-2:111122223333:grant/a",
                ArnError::ResourceType("grant".into()),
            ),
            (
                "arn:aws:kms:us-west-2:111122223333:key/",
                ArnError::EmptyPart("resource id"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(KmsArn::parse(input).as_ref(), Err(want), "input {input:?}");
        }
        let long = format!("arn:aws:kms:us-west-2:1:key/{}", "a".repeat(2048));
        assert!(matches!(KmsArn::parse(&long), Err(ArnError::TooLong(_))));
    }

    #[test]
    fn identifiers_in_every_form() {
        assert!(matches!(
            KeyIdentifier::parse(KEY),
            Ok(KeyIdentifier::Arn(_))
        ));
        assert_eq!(
            KeyIdentifier::parse("alias/my-key"),
            Ok(KeyIdentifier::AliasName("alias/my-key".into()))
        );
        assert_eq!(
            KeyIdentifier::parse("1234abcd-12ab-34cd-56ef-1234567890ab"),
            Ok(KeyIdentifier::KeyId(
                "1234abcd-12ab-34cd-56ef-1234567890ab".into()
            ))
        );
        assert_eq!(
            KeyIdentifier::parse("alias/"),
            Err(ArnError::EmptyPart("alias name"))
        );
        assert_eq!(KeyIdentifier::parse(""), Err(ArnError::Empty));
        // Starts with "arn:" so it must be a valid ARN.
        assert_eq!(
            KeyIdentifier::parse("arn:aws:kms"),
            Err(ArnError::PartCount(3))
        );
        assert_eq!(
            KeyIdentifier::parse(KEY).unwrap().region(),
            Some("us-west-2")
        );
        assert_eq!(KeyIdentifier::parse("alias/x").unwrap().region(), None);
    }

    #[test]
    fn mrk_identification() {
        assert!(is_mrk_identifier(MRK_WEST));
        assert!(!is_mrk_identifier(KEY));
        // An alias ARN is never an MRK, even with an mrk- name.
        assert!(!is_mrk_identifier(
            "arn:aws:kms:us-west-2:111122223333:alias/mrk-x"
        ));
        assert!(!is_mrk_identifier("alias/mrk-x"));
        assert!(is_mrk_identifier("mrk-80bd8ecdcd4342aebd84b7dc9da498a7"));
        assert!(!is_mrk_identifier("1234abcd"));
        // An unparsable ARN is not an MRK.
        assert!(!is_mrk_identifier("arn:aws:kms:us-west-2:key/mrk-1"));
        assert!(KeyIdentifier::parse("mrk-1").unwrap().is_mrk());
        assert!(!KeyIdentifier::parse("alias/mrk-1").unwrap().is_mrk());
    }

    #[test]
    fn mrk_match_ignores_only_the_region() {
        assert!(mrk_match_for_decrypt(KEY, KEY));
        assert!(mrk_match_for_decrypt(MRK_WEST, MRK_EAST));
        assert!(mrk_match_for_decrypt(MRK_EAST, MRK_WEST));
        // Single-region keys match only exactly.
        let key_east = KEY.replace("us-west-2", "us-east-1");
        assert!(!mrk_match_for_decrypt(KEY, &key_east));
        // Any other difference fails.
        assert!(!mrk_match_for_decrypt(
            MRK_WEST,
            &MRK_EAST.replace("111122223333", "444455556666")
        ));
        assert!(!mrk_match_for_decrypt(
            MRK_WEST,
            &MRK_EAST.replace(":aws:", ":aws-cn:")
        ));
        assert!(!mrk_match_for_decrypt(
            MRK_WEST,
            &MRK_EAST.replace("a7", "a8")
        ));
        // A bare mrk id is an MRK but not an ARN: only an identical string matches.
        let bare = "mrk-80bd8ecdcd4342aebd84b7dc9da498a7";
        assert!(!mrk_match_for_decrypt(bare, MRK_WEST));
        assert!(mrk_match_for_decrypt(bare, bare));
        // MRK vs non-MRK.
        assert!(!mrk_match_for_decrypt(MRK_WEST, KEY));
    }

    #[test]
    fn mrks_must_be_unique() {
        let ids: Vec<KeyIdentifier> = [KEY, MRK_WEST, "alias/a", MRK_EAST]
            .iter()
            .map(|s| KeyIdentifier::parse(s).unwrap())
            .collect();
        let err = check_mrks_unique(&ids).unwrap_err();
        assert_eq!(err.0, vec![MRK_WEST.to_owned(), MRK_EAST.to_owned()]);
        assert!(err.to_string().contains(MRK_EAST));

        let bare = KeyIdentifier::parse("mrk-80bd8ecdcd4342aebd84b7dc9da498a7").unwrap();
        let west = KeyIdentifier::parse(MRK_WEST).unwrap();
        assert!(check_mrks_unique([&bare, &west]).is_err());
        // The same single-region key twice is not an MRK conflict.
        let key = KeyIdentifier::parse(KEY).unwrap();
        assert!(check_mrks_unique([&key, &key, &west]).is_ok());
        assert!(check_mrks_unique([]).is_ok());
    }

    #[test]
    fn discovery_filter() {
        let f = DiscoveryFilter::new("aws", ["111122223333"]).unwrap();
        assert!(f.check(&KmsArn::parse(KEY).unwrap()).is_ok());
        let other = KmsArn::parse(&KEY.replace("111122223333", "444455556666")).unwrap();
        let why = f.check(&other).unwrap_err();
        assert!(why.contains("444455556666"), "{why}");
        let cn = KmsArn::parse(&KEY.replace(":aws:", ":aws-cn:")).unwrap();
        assert!(f.check(&cn).unwrap_err().contains("aws-cn"));
        assert_eq!(
            DiscoveryFilter::new("", ["1"]),
            Err(DiscoveryFilterError::EmptyPartition)
        );
        assert_eq!(
            DiscoveryFilter::new("aws", Vec::<String>::new()),
            Err(DiscoveryFilterError::NoAccounts)
        );
        assert_eq!(
            DiscoveryFilter::new("aws", ["1", ""]),
            Err(DiscoveryFilterError::EmptyAccount)
        );
    }

    #[test]
    fn with_region_rewrites_only_the_region() {
        let west = KmsArn::parse(MRK_WEST).unwrap();
        assert_eq!(west.with_region("us-east-1").to_string(), MRK_EAST);
    }
}
