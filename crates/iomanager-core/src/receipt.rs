//! The typed receipt `handle_output` returns: Dagster's output metadata, with the checksum,
//! size, duration and retry count Dagster never records.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One user metadata value (Dagster's `MetadataValue`, the kinds a manager needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum MetadataValue {
    /// Text.
    Text(String),
    /// An integer (row counts, sizes).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A path or uri.
    Path(String),
    /// Any JSON (a schema, a list of columns).
    Json(serde_json::Value),
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataValue::Text(s) | MetadataValue::Path(s) => f.write_str(s),
            MetadataValue::Int(i) => write!(f, "{i}"),
            MetadataValue::Float(x) => write!(f, "{x}"),
            MetadataValue::Bool(b) => write!(f, "{b}"),
            MetadataValue::Json(v) => write!(f, "{v}"),
        }
    }
}

impl From<&str> for MetadataValue {
    fn from(v: &str) -> Self {
        MetadataValue::Text(v.to_owned())
    }
}
impl From<String> for MetadataValue {
    fn from(v: String) -> Self {
        MetadataValue::Text(v)
    }
}
impl From<i64> for MetadataValue {
    fn from(v: i64) -> Self {
        MetadataValue::Int(v)
    }
}
impl From<usize> for MetadataValue {
    fn from(v: usize) -> Self {
        MetadataValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u64> for MetadataValue {
    fn from(v: u64) -> Self {
        MetadataValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for MetadataValue {
    fn from(v: f64) -> Self {
        MetadataValue::Float(v)
    }
}
impl From<bool> for MetadataValue {
    fn from(v: bool) -> Self {
        MetadataValue::Bool(v)
    }
}
impl From<serde_json::Value> for MetadataValue {
    fn from(v: serde_json::Value) -> Self {
        MetadataValue::Json(v)
    }
}

/// What a manager reports after storing an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputReceipt {
    /// Where the value lives, as a uri (`file:///…`, `s3://bucket/key`, `memory:///…`); for a
    /// partitioned asset it includes the partition.
    pub uri: String,
    /// The storage path relative to the storage root, when the value is stored as bytes.
    pub path: Option<String>,
    /// Bytes written (0 for managers that keep values without serializing them).
    pub bytes: u64,
    /// Checksum of the stored bytes, `xxh3-64:<16 hex digits>`, when bytes were written.
    pub checksum: Option<String>,
    /// The version token the storage returned (ETag, generation, counter), if any.
    pub version: Option<String>,
    /// The partition this receipt is for, in its string form.
    pub partition: Option<String>,
    /// Time spent storing (encode + write).
    pub duration: Duration,
    /// How many times a transient failure was retried.
    pub retries: u32,
    entries: BTreeMap<String, MetadataValue>,
}

impl OutputReceipt {
    /// A receipt for `uri` with everything else empty.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            path: None,
            bytes: 0,
            checksum: None,
            version: None,
            partition: None,
            duration: Duration::ZERO,
            retries: 0,
            entries: BTreeMap::new(),
        }
    }

    /// Adds a user entry (rows, columns, schema, …). Adding a key twice is an error, as in
    /// Dagster's `add_output_metadata`.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Result<()> {
        let key = key.into();
        if self.entries.contains_key(&key) {
            return Err(Error::invalid_context(format!(
                "Tried to add metadata for key(s) that already have metadata: {{'{key}'}}"
            )));
        }
        self.entries.insert(key, value.into());
        Ok(())
    }

    /// The user entries, sorted by key.
    pub fn entries(&self) -> &BTreeMap<String, MetadataValue> {
        &self.entries
    }

    /// One user entry.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.entries.get(key)
    }
}

impl fmt::Display for OutputReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes", self.uri, self.bytes)?;
        if let Some(c) = &self.checksum {
            write!(f, ", {c}")?;
        }
        write!(f, ", {:.1?}", self.duration)?;
        if self.retries > 0 {
            write!(f, ", {} retries", self.retries)?;
        }
        for (k, v) in &self.entries {
            write!(f, ", {k}={v}")?;
        }
        f.write_str(")")
    }
}

/// The checksum iomanager records for stored bytes: `xxh3-64:<hex>`.
pub fn checksum(bytes: &[u8]) -> String {
    format_checksum(xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Formats a raw xxh3-64 value as a receipt checksum.
pub fn format_checksum(hash: u64) -> String {
    format!("xxh3-64:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_user_key_is_an_error() {
        let mut r = OutputReceipt::new("memory:///a");
        r.add("rows", 3usize).unwrap();
        let err = r.add("rows", 4usize).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Tried to add metadata for key(s) that already have metadata: {'rows'}"
        );
        assert_eq!(r.get("rows"), Some(&MetadataValue::Int(3)));
    }

    #[test]
    fn checksum_is_stable() {
        assert_eq!(checksum(b""), "xxh3-64:2d06800538d394c2");
        assert_ne!(checksum(b"a"), checksum(b"b"));
    }

    #[test]
    fn display_lists_entries() {
        let mut r = OutputReceipt::new("memory:///a");
        r.bytes = 10;
        r.add("rows", 2usize).unwrap();
        assert!(r.to_string().starts_with("memory:///a (10 bytes"));
        assert!(r.to_string().contains("rows=2"));
    }
}
