//! Asset keys and partition keys.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of an asset: one or more non-empty segments, written `a/b/c`.
///
/// Any character may appear in a segment (the path layout percent-encodes what a storage path
/// cannot hold); only an empty key or an empty segment is rejected.
///
/// ```
/// use iomanager_core::AssetKey;
/// let key: AssetKey = "sales/daily".parse()?;
/// assert_eq!(key.path(), ["sales", "daily"]);
/// assert_eq!(key, AssetKey::new(["sales", "daily"])?);
/// assert_eq!(key.to_string(), "sales/daily");
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AssetKey(Vec<String>);

impl AssetKey {
    /// A key from its segments; fails on no segment or an empty one.
    pub fn new<I, S>(segments: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        if segments.is_empty() {
            return Err(Error::invalid_key(
                "",
                "an asset key needs at least one segment",
            ));
        }
        if let Some(i) = segments.iter().position(String::is_empty) {
            return Err(Error::invalid_key(
                segments.join("/"),
                format!("segment {i} of the asset key is empty"),
            ));
        }
        Ok(Self(segments))
    }

    /// Parses `a/b/c` into three segments.
    pub fn parse(text: &str) -> Result<Self> {
        Self::new(text.split('/'))
    }

    /// The segments, like Dagster's `AssetKey.path`.
    pub fn path(&self) -> &[String] {
        &self.0
    }

    /// The last segment (the table name for SQL managers).
    pub fn name(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or_default()
    }

    /// A new key with `segment` appended.
    pub fn child(&self, segment: impl Into<String>) -> Result<Self> {
        let mut segments = self.0.clone();
        segments.push(segment.into());
        Self::new(segments)
    }
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

impl fmt::Debug for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssetKey({:?})", self.0)
    }
}

impl FromStr for AssetKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for AssetKey {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AssetKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl TryFrom<Vec<String>> for AssetKey {
    type Error = Error;
    fn try_from(v: Vec<String>) -> Result<Self> {
        Self::new(v)
    }
}

impl TryFrom<Vec<&str>> for AssetKey {
    type Error = Error;
    fn try_from(v: Vec<&str>) -> Result<Self> {
        Self::new(v)
    }
}

impl<const N: usize> TryFrom<[&str; N]> for AssetKey {
    type Error = Error;
    fn try_from(v: [&str; N]) -> Result<Self> {
        Self::new(v)
    }
}

impl TryFrom<&AssetKey> for AssetKey {
    type Error = Error;
    fn try_from(v: &AssetKey) -> Result<Self> {
        Ok(v.clone())
    }
}

impl From<AssetKey> for Vec<String> {
    fn from(k: AssetKey) -> Self {
        k.0
    }
}

/// The separator of a multi-dimensional key's string form, as in Dagster.
pub const MULTI_PARTITION_DELIMITER: char = '|';

/// Characters a dimension value of a multi-dimensional key may not contain (Dagster's rule).
pub const MULTI_PARTITION_FORBIDDEN: [char; 4] = ['|', '[', ']', ','];

/// One partition: a plain key, or one key per dimension of a multi-dimensional definition.
///
/// A multi-dimensional key's string form joins its values with `|` in dimension-name order, as
/// Dagster's `MultiPartitionKey` does.
///
/// ```
/// use iomanager_core::PartitionKey;
/// let key = PartitionKey::multi([("zeta", "z1"), ("alpha", "a1")])?;
/// assert_eq!(key.to_string(), "a1|z1");
/// assert_eq!(key.segments(), ["a1", "z1"]);
/// assert_eq!(PartitionKey::from("2024-01-01").to_string(), "2024-01-01");
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PartitionKey {
    /// A key of a one-dimensional definition.
    Single(String),
    /// One key per dimension, keyed by dimension name (kept sorted by name).
    Multi(BTreeMap<String, String>),
}

impl PartitionKey {
    /// A one-dimensional key.
    pub fn single(key: impl Into<String>) -> Self {
        PartitionKey::Single(key.into())
    }

    /// A multi-dimensional key from `(dimension, value)` pairs. Needs two or more distinct
    /// dimensions; values may not be empty nor contain `|`, `[`, `]` or `,`.
    pub fn multi<I, D, V>(dims: I) -> Result<Self>
    where
        I: IntoIterator<Item = (D, V)>,
        D: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        let mut count = 0;
        for (d, v) in dims {
            count += 1;
            let (d, v) = (d.into(), v.into());
            if v.is_empty() {
                return Err(Error::partition(format!(
                    "dimension `{d}` has an empty value"
                )));
            }
            if let Some(c) = v.chars().find(|c| MULTI_PARTITION_FORBIDDEN.contains(c)) {
                return Err(Error::partition(format!(
                    "value {v:?} of dimension `{d}` contains {c:?}; multi-dimensional values may \
                     not contain | [ ] ,"
                )));
            }
            map.insert(d, v);
        }
        if map.len() < 2 || map.len() != count {
            return Err(Error::partition(format!(
                "a multi-dimensional key needs two or more distinct dimensions, got {count}"
            )));
        }
        Ok(PartitionKey::Multi(map))
    }

    /// The value of dimension `name` of a multi-dimensional key.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        match self {
            PartitionKey::Single(_) => None,
            PartitionKey::Multi(m) => m.get(name).map(String::as_str),
        }
    }

    /// The path segments this key contributes: one, or one per dimension in dimension-name
    /// order.
    pub fn segments(&self) -> Vec<&str> {
        match self {
            PartitionKey::Single(s) => vec![s.as_str()],
            PartitionKey::Multi(m) => m.values().map(String::as_str).collect(),
        }
    }

    /// True for a multi-dimensional key.
    pub fn is_multi(&self) -> bool {
        matches!(self, PartitionKey::Multi(_))
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionKey::Single(s) => f.write_str(s),
            PartitionKey::Multi(m) => {
                let mut first = true;
                for v in m.values() {
                    if !first {
                        f.write_str("|")?;
                    }
                    first = false;
                    f.write_str(v)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionKey::Single(s) => write!(f, "PartitionKey({s:?})"),
            PartitionKey::Multi(m) => write!(f, "PartitionKey({m:?})"),
        }
    }
}

impl From<&str> for PartitionKey {
    fn from(s: &str) -> Self {
        PartitionKey::Single(s.to_owned())
    }
}

impl From<String> for PartitionKey {
    fn from(s: String) -> Self {
        PartitionKey::Single(s)
    }
}

impl From<&String> for PartitionKey {
    fn from(s: &String) -> Self {
        PartitionKey::Single(s.clone())
    }
}

impl From<&PartitionKey> for PartitionKey {
    fn from(k: &PartitionKey) -> Self {
        k.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_key_forms_agree() {
        let a: AssetKey = "a/b".parse().unwrap();
        assert_eq!(a, AssetKey::new(["a", "b"]).unwrap());
        assert_eq!(
            a,
            AssetKey::try_from(vec!["a".to_string(), "b".to_string()]).unwrap()
        );
        assert_eq!(format!("{a:?}"), r#"AssetKey(["a", "b"])"#);
        assert_eq!(a.name(), "b");
    }

    #[test]
    fn asset_key_rejects_empty() {
        assert_eq!(
            AssetKey::parse("").unwrap_err().kind(),
            crate::ErrorKind::InvalidKey
        );
        assert!(
            AssetKey::parse("a//b")
                .unwrap_err()
                .to_string()
                .contains("segment 1")
        );
        assert!(AssetKey::new(Vec::<String>::new()).is_err());
        assert!(AssetKey::parse("/a").is_err());
    }

    #[test]
    fn asset_key_serde_round_trip() {
        let a = AssetKey::new(["x", "y"]).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"["x","y"]"#);
        assert_eq!(serde_json::from_str::<AssetKey>(&json).unwrap(), a);
        assert!(serde_json::from_str::<AssetKey>("[]").is_err());
    }

    #[test]
    fn multi_key_is_ordered_by_dimension_name() {
        let k = PartitionKey::multi([("zeta", "z1"), ("alpha", "a1")]).unwrap();
        assert_eq!(k.to_string(), "a1|z1");
        assert_eq!(k.segments(), vec!["a1", "z1"]);
        assert_eq!(k.dimension("zeta"), Some("z1"));
    }

    #[test]
    fn multi_key_validation() {
        assert!(PartitionKey::multi([("a", "x")]).is_err());
        assert!(PartitionKey::multi([("a", "x"), ("a", "y")]).is_err());
        assert!(PartitionKey::multi([("a", "x|y"), ("b", "z")]).is_err());
        assert!(PartitionKey::multi([("a", ""), ("b", "z")]).is_err());
    }
}
