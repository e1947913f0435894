//! Object paths, key encoding and the path layout.
//!
//! Every storage reads and writes bytes at an [`ObjectPath`]: a relative, `/`-joined
//! path of *encoded* segments. [`PathLayout`] turns an asset key (and partition) or an op output
//! into such a path, exactly as Dagster lays out its stores, so a store can be shared with a
//! Python Dagster deployment:
//!
//! | what | path |
//! |---|---|
//! | asset | `<prefix>/<key segment>/.../<key segment>[<ext>]` |
//! | partitioned asset | `<prefix>/<key...>/<partition segment(s)>[<ext>]` |
//! | op output ([`LayoutPreset::Iomanager`]) | `<prefix>/storage/<run_id>/files/<step_key>/<name>[/<mapping_key>][<ext>]` |
//! | versioned op output | `<prefix>/storage/versioned_outputs/<version>/<step_key>/<name>[<ext>]` |
//!
//! See [`LayoutPreset`] for Dagster's other historical op-output layouts.
//!
//! # Segment encoding
//!
//! Each raw segment (an asset-key segment, a partition key, a step key, ...) becomes one path
//! segment through [`encode_segment`]: `%`, `/`, `\`, every control character and a leading `.`
//! are percent-encoded (UTF-8 bytes, uppercase hex); everything else is kept. The encoding is
//! injective, and never yields an empty segment, `.`, `..` or a segment holding `/`, so no key
//! can name a path outside the layout's prefix, and two distinct keys never share an object.
//!
//! ```
//! use iomanager_core::path::{encode_segment, PathLayout};
//! use iomanager_core::{AssetKey, PartitionKey};
//! assert_eq!(encode_segment("..")?, "%2E.");
//! assert_eq!(encode_segment("a/../b")?, "a%2F..%2Fb");
//!
//! let layout = PathLayout::default().with_prefix("dagster")?;
//! let key = AssetKey::parse("sales/daily")?;
//! let day = PartitionKey::from("2024-01-01");
//! let path = layout.asset_path(&key, Some(&day), ".parquet")?;
//! assert_eq!(path.as_str(), "dagster/sales/daily/2024-01-01.parquet");
//! # Ok::<(), iomanager_core::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::{AssetKey, PartitionKey};

// ---------------------------------------------------------------------------------------------
// Segment encoding
// ---------------------------------------------------------------------------------------------

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// True for a character [`encode_segment`] escapes wherever it appears.
fn always_escaped(c: char) -> bool {
    matches!(c, '%' | '/' | '\\') || c.is_control()
}

fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        out.push('%');
        out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(b & 0x0F)]));
    }
}

/// Encodes one raw segment (an asset-key segment, a partition key, a step key, ...) into a
/// single path segment.
///
/// `%`, `/`, `\`, every control character (`char::is_control`: NUL, `\n`, DEL, U+0085, ...) and
/// a leading `.` are percent-encoded as the uppercase hex of their UTF-8 bytes; everything else,
/// including non-ASCII text, spaces, `[`, `]`, `|` and `:`, is kept as is. The encoding is
/// injective and its result is never empty, `.` or `..`, and never holds `/`.
///
/// An empty segment is [`Error::InvalidKey`] with the reason `empty segment`.
///
/// ```
/// use iomanager_core::path::encode_segment;
/// assert_eq!(encode_segment(".")?, "%2E");
/// assert_eq!(encode_segment("..")?, "%2E.");
/// assert_eq!(encode_segment(".hidden")?, "%2Ehidden");
/// assert_eq!(encode_segment("my..backup")?, "my..backup");
/// assert_eq!(encode_segment("/etc")?, "%2Fetc");
/// assert_eq!(encode_segment("50%")?, "50%25");
/// assert_eq!(encode_segment("données [v1]")?, "données [v1]");
/// assert!(encode_segment("").is_err());
/// # Ok::<(), iomanager_core::Error>(())
/// ```
pub fn encode_segment(raw: &str) -> Result<String> {
    if raw.is_empty() {
        return Err(Error::invalid_key(raw, "empty segment"));
    }
    let mut out = String::with_capacity(raw.len() + 2);
    for (i, c) in raw.char_indices() {
        if always_escaped(c) || (i == 0 && c == '.') {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes an encoded segment, or says why it is not a valid one.
fn try_decode(enc: &str) -> std::result::Result<String, String> {
    match enc {
        "" => return Err("empty segment".to_owned()),
        "." | ".." => return Err(format!("a segment may not be `{enc}`")),
        _ => {}
    }
    if let Some(c) = enc.chars().find(|&c| always_escaped(c) && c != '%') {
        return Err(format!("unescaped {c:?} in an encoded segment"));
    }
    let bytes = enc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                _ => {
                    return Err(format!(
                        "malformed escape at byte {i}: `%` must be followed by two hex digits"
                    ));
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the escapes do not decode to UTF-8 text".to_owned())
}

/// Decodes a segment made by [`encode_segment`]: `decode_segment(&encode_segment(x)?)? == x`.
///
/// It rejects what no encoding can be: an empty segment, `.`, `..`, a `%` not followed by two
/// hex digits, escapes that are not UTF-8, and an unescaped `/`, `\` or control character. To
/// read paths written by other tools it also accepts lowercase hex digits, needless escapes
/// (`%41` is `A`, Dagster's `%2E%2E` is `..`) and an unescaped leading `.` (`.hidden`).
///
/// ```
/// use iomanager_core::path::decode_segment;
/// assert_eq!(decode_segment("%2E.")?, "..");
/// assert_eq!(decode_segment("a%2F..%2Fb")?, "a/../b");
/// assert!(decode_segment("%zz").is_err());
/// assert!(decode_segment("..").is_err());
/// # Ok::<(), iomanager_core::Error>(())
/// ```
pub fn decode_segment(enc: &str) -> Result<String> {
    try_decode(enc).map_err(|reason| Error::invalid_key(enc, reason))
}

/// Encodes `raw`, naming `key` (the whole key the segment belongs to) and `what` in the error.
fn encode_part(raw: &str, key: impl FnOnce() -> String, what: &str) -> Result<String> {
    if raw.is_empty() {
        return Err(Error::invalid_key(key(), format!("empty segment ({what})")));
    }
    encode_segment(raw)
}

fn check_extension(ext: &str) -> Result<()> {
    if ext.is_empty() {
        return Ok(());
    }
    if !ext.starts_with('.') {
        return Err(Error::invalid_key(
            ext,
            "an extension must be empty or start with `.` (e.g. `.json`)",
        ));
    }
    if let Some(c) = ext.chars().find(|&c| always_escaped(c)) {
        return Err(Error::invalid_key(
            ext,
            format!("an extension may not contain {c:?} (no `/`, `\\`, `%` or control characters)"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ObjectPath
// ---------------------------------------------------------------------------------------------

/// A relative, `/`-joined path of encoded segments: the unit every storage reads and writes.
///
/// It never starts or ends with `/`, and every segment is a valid encoding (non-empty, not `.`
/// or `..`, decodable by [`decode_segment`]), so it never leaves the storage's base. The root
/// (the empty path) names the base itself and is only used for listing.
///
/// It serializes as its string and deserializing validates it like [`ObjectPath::parse`].
///
/// ```
/// use iomanager_core::path::ObjectPath;
/// let p = ObjectPath::from_raw_segments(["reports", "q1/q2", ".."])?;
/// assert_eq!(p.as_str(), "reports/q1%2Fq2/%2E.");
/// assert_eq!(p.raw_segments(), ["reports", "q1/q2", ".."]);
/// assert_eq!(ObjectPath::parse(p.as_str())?, p);
/// assert!(ObjectPath::parse("a/../b").is_err());
/// let json = p.with_extension_appended(".json")?;
/// assert_eq!(json.file_name(), Some("%2E..json"));
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectPath(String);

impl ObjectPath {
    /// The root: the empty path, naming the storage's base (for listing only).
    pub fn root() -> Self {
        Self(String::new())
    }

    /// True for the root (the empty path).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as a string of encoded segments joined by `/` (`""` for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The encoded segments; none for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The decoded (raw) segments, the inverse of [`ObjectPath::from_raw_segments`].
    pub fn raw_segments(&self) -> Vec<String> {
        // Every segment is a valid encoding (checked on construction), so decoding cannot fail.
        self.segments()
            .map(|s| try_decode(s).unwrap_or_else(|_| s.to_owned()))
            .collect()
    }

    /// A path from raw segments, each encoded with [`encode_segment`]; no segment gives the
    /// root. An empty segment is [`Error::InvalidKey`] naming the whole key.
    pub fn from_raw_segments<I, S>(segs: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let raw: Vec<S> = segs.into_iter().collect();
        let mut out = String::new();
        for (i, seg) in raw.iter().enumerate() {
            let seg = seg.as_ref();
            let enc = encode_part(
                seg,
                || raw.iter().map(AsRef::as_ref).collect::<Vec<_>>().join("/"),
                &format!("segment {i}"),
            )?;
            if i > 0 {
                out.push('/');
            }
            out.push_str(&enc);
        }
        Ok(Self(out))
    }

    /// Accepts an already encoded path, such as one a storage listing returns. `""` is the root.
    ///
    /// Every segment must be a valid encoding (see [`decode_segment`]): a leading or trailing
    /// `/`, an empty segment, `.`, `..` and malformed escapes are [`Error::InvalidKey`].
    pub fn parse(path: &str) -> Result<Self> {
        if path.is_empty() {
            return Ok(Self::root());
        }
        if path.starts_with('/') {
            return Err(Error::invalid_key(
                path,
                "an object path must be relative (no leading `/`)",
            ));
        }
        for (i, seg) in path.split('/').enumerate() {
            if let Err(reason) = try_decode(seg) {
                return Err(Error::invalid_key(
                    path,
                    format!("segment {i} ({seg:?}): {reason}"),
                ));
            }
        }
        Ok(Self(path.to_owned()))
    }

    /// This path with one more segment, `raw` encoded with [`encode_segment`].
    pub fn join_raw(&self, raw_segment: &str) -> Result<Self> {
        let enc = encode_part(
            raw_segment,
            || format!("{}/{raw_segment}", self.0),
            "the segment to join",
        )?;
        Ok(self.push_encoded(&enc))
    }

    /// This path followed by `rest` (both already encoded).
    pub fn join(&self, rest: &ObjectPath) -> Self {
        self.push_encoded(&rest.0)
    }

    fn push_encoded(&self, enc: &str) -> Self {
        match (self.is_root(), enc.is_empty()) {
            (_, true) => self.clone(),
            (true, false) => Self(enc.to_owned()),
            (false, false) => Self(format!("{}/{enc}", self.0)),
        }
    }

    /// The path without its last segment: `None` for the root, the root for a single segment.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => Self(self.0[..i].to_owned()),
            None => Self::root(),
        })
    }

    /// The last (encoded) segment; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.0.rsplit('/').next()
    }

    /// This path with `ext` appended to its last segment, never substituted: `my.asset` +
    /// `.json` is `my.asset.json`, as Dagster's `path.with_suffix(path.suffix + ext)`.
    ///
    /// `ext` must be empty (the path is returned unchanged) or start with `.`, and may not hold
    /// `/`, `\`, `%` or control characters. Appending to the root is an error.
    pub fn with_extension_appended(&self, ext: &str) -> Result<Self> {
        check_extension(ext)?;
        if self.is_root() {
            return Err(Error::invalid_key(
                ext,
                "cannot append an extension to the root path",
            ));
        }
        if ext.is_empty() {
            return Ok(self.clone());
        }
        Ok(Self(format!("{}{ext}", self.0)))
    }

    /// True when `prefix`'s segments are the first segments of this path (segment-wise: `a/b`
    /// starts with `a`, `ab` does not). Every path starts with the root and with itself.
    pub fn starts_with(&self, prefix: &ObjectPath) -> bool {
        self.strip_prefix(prefix).is_some()
    }

    /// The rest of this path after `prefix` (segment-wise), or `None` when it does not start
    /// with `prefix`. Stripping the whole path gives the root.
    pub fn strip_prefix(&self, prefix: &ObjectPath) -> Option<Self> {
        if prefix.is_root() {
            return Some(self.clone());
        }
        let rest = self.0.strip_prefix(prefix.as_str())?;
        if rest.is_empty() {
            Some(Self::root())
        } else {
            rest.strip_prefix('/').map(|r| Self(r.to_owned()))
        }
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ObjectPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ObjectPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)?;
        Ok(Self(s))
    }
}

impl TryFrom<&str> for ObjectPath {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<ObjectPath> for String {
    fn from(p: ObjectPath) -> Self {
        p.0
    }
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

/// Which of Dagster's op-output layouts a [`PathLayout`] writes. Asset paths are the same for
/// every preset: `<prefix>/<key...>[/<partition...>][<ext>]`.
///
/// | preset | op output | versioned op output |
/// |---|---|---|
/// | `Iomanager` (default; Dagster's GCS and ADLS2 managers) | `<prefix>/storage/<run_id>/files/<step_key>/<name>[/<mapping_key>][<ext>]` | `<prefix>/storage/versioned_outputs/<version>/<step_key>/<name>[<ext>]` |
/// | `DagsterFs` (Dagster's `FilesystemIOManager`) | `<prefix>/<run_id>/<step_key>/<name>[/<mapping_key>][<ext>]` | `<prefix>/versioned_outputs/<version>/<step_key>/<name>[<ext>]` |
/// | `DagsterS3` (Dagster's `S3PickleIOManager`) | `<prefix>/storage/<run_id>/<step_key>/<name>[/<mapping_key>][<ext>]`, each part with `[` → `--` and `]` removed | `<prefix>/storage/versioned_outputs/<version>/<step_key>/<name>[<ext>]`, sanitized the same way |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutPreset {
    /// iomanager's own layout, the same as Dagster's GCS and ADLS2 managers.
    #[default]
    Iomanager,
    /// Dagster's `FilesystemIOManager`: runs live directly under the prefix.
    DagsterFs,
    /// Dagster's `S3PickleIOManager`: `storage/<run_id>/...` with `[`/`]` sanitized.
    DagsterS3,
}

/// The identifier of an op output (Dagster's `get_identifier()`), for [`PathLayout::op_path`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OutputId {
    /// The run id (`__EPHEMERAL_RUN_ID` outside a run).
    pub run_id: String,
    /// The step key (`op`, `graph.op`, `op[mapping_key]` for mapped downstream steps).
    pub step_key: String,
    /// The output name (`result` by default).
    pub name: String,
    /// The mapping key of a dynamic output.
    pub mapping_key: Option<String>,
    /// The output's version; selects the versioned layout. Exclusive with `mapping_key`.
    pub version: Option<String>,
}

impl OutputId {
    /// Dagster's `get_identifier()`: `[run_id, step_key, name(, mapping_key)]`, or
    /// `["versioned_outputs", version, step_key, name]` with a version. A version together with
    /// a mapping key is [`Error::InvalidContext`] with Dagster's text.
    pub fn identifier(&self) -> Result<Vec<String>> {
        if self.version.is_some() && self.mapping_key.is_some() {
            return Err(Error::invalid_context(format!(
                "Mapping key and version both provided for output '{}' of step '{}'. Dynamic \
                 mapping is not supported when using versioning.",
                self.name, self.step_key
            )));
        }
        Ok(match &self.version {
            Some(v) => {
                vec![
                    "versioned_outputs".into(),
                    v.clone(),
                    self.step_key.clone(),
                    self.name.clone(),
                ]
            }
            None => {
                let mut parts = vec![
                    self.run_id.clone(),
                    self.step_key.clone(),
                    self.name.clone(),
                ];
                parts.extend(self.mapping_key.clone());
                parts
            }
        })
    }
}

/// Dagster's S3 sanitizing of an op-output identifier part: `[` becomes `--`, `]` is removed.
fn sanitize_s3(part: &str) -> Cow<'_, str> {
    if part.contains(['[', ']']) {
        Cow::Owned(part.replace('[', "--").replace(']', ""))
    } else {
        Cow::Borrowed(part)
    }
}

/// Where objects go under a storage's base: an optional prefix and a [`LayoutPreset`].
///
/// Every part of a path (prefix segment, asset-key segment, partition, run id, step key, output
/// name, mapping key, version) is encoded with [`encode_segment`], so no key can create extra
/// directories or climb out of the prefix.
///
/// ```
/// use iomanager_core::path::{LayoutPreset, OutputId, PathLayout};
/// let layout = PathLayout::new(LayoutPreset::DagsterS3).with_prefix("dagster")?;
/// let id = OutputId {
///     run_id: "RUN".into(),
///     step_key: "echo[foo]".into(),
///     name: "result".into(),
///     mapping_key: Some("mk".into()),
///     version: None,
/// };
/// assert_eq!(layout.op_path(&id, "")?.as_str(), "dagster/storage/RUN/echo--foo/result/mk");
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathLayout {
    prefix: ObjectPath,
    preset: LayoutPreset,
}

impl PathLayout {
    /// A layout with `preset` and no prefix (objects go directly under the storage's base).
    /// Dagster's object-store managers default to the prefix `dagster`; set it with
    /// [`PathLayout::with_prefix`] to share their stores.
    pub fn new(preset: LayoutPreset) -> Self {
        Self {
            prefix: ObjectPath::root(),
            preset,
        }
    }

    /// This layout with `prefix`: split on `/`, empty segments dropped, each segment encoded, so
    /// `dagster/../x` becomes `dagster/%2E./x` and a prefix can never climb out of the base.
    /// `""` (or `"/"`) means no prefix.
    pub fn with_prefix(self, prefix: &str) -> Result<Self> {
        let prefix = ObjectPath::from_raw_segments(prefix.split('/').filter(|s| !s.is_empty()))?;
        Ok(Self { prefix, ..self })
    }

    /// The (encoded) prefix; the root when there is none.
    pub fn prefix(&self) -> &ObjectPath {
        &self.prefix
    }

    /// The preset.
    pub fn preset(&self) -> LayoutPreset {
        self.preset
    }

    /// `<prefix>/<key segments...>`: where an asset's object lives, or the directory of its
    /// partitions.
    pub fn asset_dir(&self, key: &AssetKey) -> Result<ObjectPath> {
        let mut out = self.prefix.clone();
        for (i, seg) in key.path().iter().enumerate() {
            let enc = encode_part(seg, || key.to_string(), &format!("asset key segment {i}"))?;
            out = out.push_encoded(&enc);
        }
        Ok(out)
    }

    /// `<prefix>/<key segments...>[/<partition segments...>][<ext>]`, the same for every
    /// preset. A multi-dimensional partition contributes one segment per dimension, ordered by
    /// dimension name ([`PartitionKey::segments`]); a one-dimensional key is always one segment
    /// (a `/` in it is encoded).
    ///
    /// As in Dagster, asset `a` partition `b` and the unpartitioned asset `a/b` share a path;
    /// pairs with the same number of key segments and partition segments never do.
    pub fn asset_path(
        &self,
        key: &AssetKey,
        partition: Option<&PartitionKey>,
        ext: &str,
    ) -> Result<ObjectPath> {
        let mut out = self.asset_dir(key)?;
        if let Some(partition) = partition {
            for (i, seg) in partition.segments().into_iter().enumerate() {
                let enc = encode_part(
                    seg,
                    || format!("{key} partition {partition}"),
                    &format!("partition segment {i}"),
                )?;
                out = out.push_encoded(&enc);
            }
        }
        out.with_extension_appended(ext)
    }

    /// The path of an op output (an output without an asset key); see [`LayoutPreset`] for the
    /// layout of each preset.
    ///
    /// A version together with a mapping key is [`Error::InvalidContext`], as in Dagster.
    pub fn op_path(&self, id: &OutputId, ext: &str) -> Result<ObjectPath> {
        if id.mapping_key.is_some() && id.version.is_some() {
            return Err(Error::invalid_context(format!(
                "Mapping key and version both provided for output '{}' of step '{}'. Dynamic \
                 mapping is not supported when using versioning.",
                id.name, id.step_key
            )));
        }
        // Dagster's `get_identifier()`.
        let mut identifier: Vec<(&str, &str)> = match &id.version {
            Some(version) => vec![
                ("", "versioned_outputs"),
                ("version", version),
                ("step key", &id.step_key),
                ("output name", &id.name),
            ],
            None => vec![
                ("run id", &id.run_id),
                ("step key", &id.step_key),
                ("output name", &id.name),
            ],
        };
        if let Some(mk) = &id.mapping_key {
            identifier.push(("mapping key", mk));
        }
        let parts: Vec<(&str, Cow<'_, str>)> = match self.preset {
            LayoutPreset::Iomanager => {
                let mut parts = vec![("", Cow::Borrowed("storage"))];
                for (i, (what, part)) in identifier.iter().enumerate() {
                    parts.push((what, Cow::Borrowed(part)));
                    if i == 0 && id.version.is_none() {
                        parts.push(("", Cow::Borrowed("files")));
                    }
                }
                parts
            }
            LayoutPreset::DagsterFs => identifier
                .iter()
                .map(|(what, part)| (*what, Cow::Borrowed(*part)))
                .collect(),
            LayoutPreset::DagsterS3 => std::iter::once(("", Cow::Borrowed("storage")))
                .chain(
                    identifier
                        .iter()
                        .map(|(what, part)| (*what, sanitize_s3(part))),
                )
                .collect(),
        };
        let describe = || {
            let mut text = format!("{}/{}/{}", id.run_id, id.step_key, id.name);
            if let Some(mk) = &id.mapping_key {
                text.push('/');
                text.push_str(mk);
            }
            if let Some(v) = &id.version {
                text.push_str(&format!(" (version {v})"));
            }
            text
        };
        let mut out = self.prefix.clone();
        for (what, part) in &parts {
            let what = if part.is_empty() && self.preset == LayoutPreset::DagsterS3 {
                format!("the {what} is empty after Dagster's S3 sanitizing of `[` and `]`")
            } else {
                format!("the {what}")
            };
            let enc = encode_part(part, describe, &what)?;
            out = out.push_encoded(&enc);
        }
        out.with_extension_appended(ext)
    }

    /// Where op outputs live: `<prefix>/storage` for [`LayoutPreset::Iomanager`] and
    /// [`LayoutPreset::DagsterS3`]; the prefix itself for [`LayoutPreset::DagsterFs`], whose
    /// run directories sit directly beside the assets (as in Dagster's `FilesystemIOManager`).
    pub fn storage_root(&self) -> ObjectPath {
        match self.preset {
            LayoutPreset::Iomanager | LayoutPreset::DagsterS3 => {
                self.prefix.push_encoded("storage")
            }
            LayoutPreset::DagsterFs => self.prefix.clone(),
        }
    }

    /// The asset name (`a/b`, raw segments joined by `/`) an object path belongs to: the inverse
    /// of [`PathLayout::asset_path`], used to list the assets stored under the base.
    ///
    /// `None` when `path` is not under the prefix, is the prefix itself, or is an op output
    /// (under `<prefix>/storage` for [`LayoutPreset::Iomanager`] and
    /// [`LayoutPreset::DagsterS3`]; with [`LayoutPreset::DagsterFs`] op outputs cannot be told
    /// apart and are not filtered). `ext` is stripped from the last segment when present. For a
    /// partitioned asset the name includes the partition (`asset/partition`).
    pub fn asset_name_from_path(&self, path: &ObjectPath, ext: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.prefix)?;
        let mut segs: Vec<&str> = rest.segments().collect();
        let first = *segs.first()?;
        if first == "storage"
            && matches!(
                self.preset,
                LayoutPreset::Iomanager | LayoutPreset::DagsterS3
            )
        {
            return None;
        }
        if !ext.is_empty()
            && let Some(last) = segs.last_mut()
            && let Some(stem) = last.strip_suffix(ext)
            && !stem.is_empty()
        {
            *last = stem;
        }
        let raw: Option<Vec<String>> = segs.iter().map(|s| try_decode(s).ok()).collect();
        Some(raw?.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn key(text: &str) -> AssetKey {
        AssetKey::parse(text).unwrap()
    }

    fn layout(preset: LayoutPreset, prefix: &str) -> PathLayout {
        PathLayout::new(preset).with_prefix(prefix).unwrap()
    }

    fn output(run: &str, step: &str, name: &str, mk: Option<&str>, v: Option<&str>) -> OutputId {
        OutputId {
            run_id: run.into(),
            step_key: step.into(),
            name: name.into(),
            mapping_key: mk.map(Into::into),
            version: v.map(Into::into),
        }
    }

    // ---- encoding -----------------------------------------------------------------------

    #[test]
    fn encoding_table() {
        let rows: &[(&str, &str)] = &[
            ("a", "a"),
            ("a/../b", "a%2F..%2Fb"),
            ("..", "%2E."),
            (".", "%2E"),
            ("...", "%2E.."),
            (".hidden", "%2Ehidden"),
            ("my..backup", "my..backup"),
            ("trailing.", "trailing."),
            ("/etc", "%2Fetc"),
            ("/", "%2F"),
            ("a\0b", "a%00b"),
            ("\0", "%00"),
            ("tab\there", "tab%09here"),
            ("line\nbreak\r", "line%0Abreak%0D"),
            ("del\u{7f}", "del%7F"),
            ("nel\u{85}", "nel%C2%85"),
            ("%", "%25"),
            ("100%25", "100%2525"),
            ("a\\b", "a%5Cb"),
            ("..\\..\\x", "%2E.%5C..%5Cx"),
            ("données", "données"),
            ("日本", "日本"),
            ("with space", "with space"),
            (" ", " "),
            ("[x]|y:z", "[x]|y:z"),
            ("2024-01-01", "2024-01-01"),
            ("0.0-to-1.0", "0.0-to-1.0"),
            ("a1|z1", "a1|z1"),
        ];
        for (raw, enc) in rows {
            assert_eq!(encode_segment(raw).unwrap(), *enc, "encode {raw:?}");
            assert_eq!(decode_segment(enc).unwrap(), *raw, "decode {enc:?}");
        }
    }

    #[test]
    fn empty_segment_is_invalid_key() {
        let err = encode_segment("").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(err.to_string().contains("empty segment"), "{err}");

        let err = ObjectPath::from_raw_segments(["a", "", "c"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        let text = err.to_string();
        assert!(
            text.contains("a//c") && text.contains("empty segment"),
            "{text}"
        );
    }

    #[test]
    fn decode_rejects_malformed() {
        for bad in [
            "", ".", "..", "%", "%2", "a%", "%zz", "%g0", "a/b", "a\\b", "a\0b", "tab\t", "%FF",
            "%C3", "%C3%28",
        ] {
            let err = decode_segment(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}");
        }
    }

    #[test]
    fn decode_is_lenient_with_foreign_encodings() {
        // Dagster's FilesystemIOManager writes `..` as `%2E%2E`; lowercase hex is RFC 3986 too.
        assert_eq!(decode_segment("%2E%2E").unwrap(), "..");
        assert_eq!(decode_segment("%2e%2e").unwrap(), "..");
        assert_eq!(decode_segment("%41").unwrap(), "A");
        assert_eq!(decode_segment(".hidden").unwrap(), ".hidden");
        assert_eq!(decode_segment("%C3%A9").unwrap(), "é");
    }

    // ---- ObjectPath ----------------------------------------------------------------------

    #[test]
    fn object_path_basics() {
        let root = ObjectPath::root();
        assert!(root.is_root());
        assert_eq!(root.as_str(), "");
        assert_eq!(root.segments().count(), 0);
        assert_eq!(root.parent(), None);
        assert_eq!(root.file_name(), None);
        assert_eq!(ObjectPath::default(), root);
        assert_eq!(
            ObjectPath::from_raw_segments(Vec::<String>::new()).unwrap(),
            root
        );

        let p = ObjectPath::from_raw_segments(["a", "b c", "d/e"]).unwrap();
        assert_eq!(p.as_str(), "a/b c/d%2Fe");
        assert_eq!(p.to_string(), "a/b c/d%2Fe");
        assert_eq!(p.segments().collect::<Vec<_>>(), ["a", "b c", "d%2Fe"]);
        assert_eq!(p.raw_segments(), ["a", "b c", "d/e"]);
        assert_eq!(p.file_name(), Some("d%2Fe"));
        assert_eq!(p.parent().unwrap().as_str(), "a/b c");
        assert_eq!(p.parent().unwrap().parent().unwrap().as_str(), "a");
        assert_eq!(
            p.parent().unwrap().parent().unwrap().parent().unwrap(),
            root
        );

        let joined = p.join_raw("..").unwrap();
        assert_eq!(joined.as_str(), "a/b c/d%2Fe/%2E.");
        assert_eq!(root.join_raw("x").unwrap().as_str(), "x");
        assert!(p.join_raw("").is_err());
        assert_eq!(root.join(&p), p);
        assert_eq!(p.join(&root), p);
        assert_eq!(
            ObjectPath::parse("a")
                .unwrap()
                .join(&ObjectPath::parse("b/c").unwrap())
                .as_str(),
            "a/b/c"
        );
    }

    #[test]
    fn object_path_parse() {
        for ok in [
            "",
            "a",
            "a/b",
            "dagster/storage/RUN/echo--foo/result",
            "%2E./x",
            "a/%2E%2E",
        ] {
            assert_eq!(ObjectPath::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "/a", "a/", "a//b", "/", "a/../b", "./a", "a/.", "a/%zz", "a\\b", "a/\0",
        ] {
            let err = ObjectPath::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}");
        }
        assert!("a/b".parse::<ObjectPath>().is_ok());
        assert!(ObjectPath::try_from("..").is_err());
    }

    #[test]
    fn object_path_serde() {
        let p = ObjectPath::from_raw_segments(["a", "..", "日本"]).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#""a/%2E./日本""#);
        assert_eq!(serde_json::from_str::<ObjectPath>(&json).unwrap(), p);
        assert!(serde_json::from_str::<ObjectPath>(r#""a/../b""#).is_err());
        assert!(serde_json::from_str::<ObjectPath>(r#""/etc""#).is_err());
        assert_eq!(
            serde_json::from_str::<ObjectPath>(r#""""#).unwrap(),
            ObjectPath::root()
        );
    }

    #[test]
    fn extension_is_appended_never_substituted() {
        let p = ObjectPath::parse("dir/my.asset").unwrap();
        assert_eq!(
            p.with_extension_appended(".json").unwrap().as_str(),
            "dir/my.asset.json"
        );
        assert_eq!(p.with_extension_appended("").unwrap(), p);
        assert_eq!(
            p.with_extension_appended(".tar.gz").unwrap().as_str(),
            "dir/my.asset.tar.gz"
        );
        for bad in ["json", ".a/b", ".a\\b", ".a\0", ".%41"] {
            let err = p.with_extension_appended(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{bad:?}");
        }
        assert!(ObjectPath::root().with_extension_appended(".json").is_err());
        assert!(ObjectPath::root().with_extension_appended("").is_err());
        // `..` as a partition + `.json`: `%2E.` + `.json`, never a `..` segment.
        let dots = ObjectPath::from_raw_segments(["p", ".."]).unwrap();
        assert_eq!(
            dots.with_extension_appended(".json").unwrap().as_str(),
            "p/%2E..json"
        );
    }

    #[test]
    fn starts_with_and_strip_prefix_are_segment_wise() {
        let p = |s: &str| ObjectPath::parse(s).unwrap();
        assert!(p("a/b").starts_with(&p("a")));
        assert!(p("a/b").starts_with(&p("a/b")));
        assert!(p("a/b").starts_with(&ObjectPath::root()));
        assert!(ObjectPath::root().starts_with(&ObjectPath::root()));
        assert!(!p("ab").starts_with(&p("a")));
        assert!(!p("ab/c").starts_with(&p("a")));
        assert!(!p("a").starts_with(&p("a/b")));
        assert!(!ObjectPath::root().starts_with(&p("a")));

        assert_eq!(p("a/b/c").strip_prefix(&p("a")), Some(p("b/c")));
        assert_eq!(p("a/b").strip_prefix(&p("a/b")), Some(ObjectPath::root()));
        assert_eq!(p("a/b").strip_prefix(&ObjectPath::root()), Some(p("a/b")));
        assert_eq!(p("ab/c").strip_prefix(&p("a")), None);
    }

    // ---- layout: the DESIGN.md "Paths" table --------------------------------------------

    #[test]
    fn asset_paths_table() {
        let multi = PartitionKey::multi([("zeta", "z1"), ("alpha", "a1")]).unwrap();
        let day = PartitionKey::from("2020-05-03");
        let range = PartitionKey::from("0.0-to-1.0");
        let dots = PartitionKey::from("..");
        let slashed = PartitionKey::from("2024/01");
        type Row<'a> = (&'a str, &'a str, Option<&'a PartitionKey>, &'a str, &'a str);
        let rows: &[Row<'_>] = &[
            // prefix, key, partition, ext, expected
            ("", "a", None, "", "a"),
            ("", "one/two/a1", None, "", "one/two/a1"),
            ("dagster", "a/b", None, "", "dagster/a/b"),
            (
                "dagster",
                "part",
                Some(&PartitionKey::from("p1")),
                "",
                "dagster/part/p1",
            ),
            ("", "daily", Some(&day), "", "daily/2020-05-03"),
            ("", "multi", Some(&multi), "", "multi/a1/z1"),
            ("", "multi", Some(&multi), ".json", "multi/a1/z1.json"),
            ("", "my.asset", None, ".json", "my.asset.json"),
            ("", "ranged", Some(&range), ".ext", "ranged/0.0-to-1.0.ext"),
            ("", "ranged", Some(&dots), ".json", "ranged/%2E..json"),
            ("", "monthly", Some(&slashed), "", "monthly/2024%2F01"),
            ("base/dir", "x", None, ".parquet", "base/dir/x.parquet"),
            ("/abs//dir/", "x", None, "", "abs/dir/x"),
            ("dagster/../x", "a", None, "", "dagster/%2E./x/a"),
            ("..", "a", None, "", "%2E./a"),
            ("", "données/日本", None, "", "données/日本"),
            ("", "../etc", None, "", "%2E./etc"),
            ("", "a\\b/with space", None, "", "a%5Cb/with space"),
        ];
        for preset in [
            LayoutPreset::Iomanager,
            LayoutPreset::DagsterFs,
            LayoutPreset::DagsterS3,
        ] {
            for (prefix, k, partition, ext, expected) in rows {
                let l = layout(preset, prefix);
                let got = l.asset_path(&key(k), *partition, ext).unwrap();
                assert_eq!(
                    got.as_str(),
                    *expected,
                    "{preset:?} {prefix:?} {k:?} {partition:?}"
                );
                assert!(got.starts_with(l.prefix()));
                assert_eq!(ObjectPath::parse(got.as_str()).unwrap(), got);
            }
        }
    }

    #[test]
    fn asset_dir_has_no_partition_or_extension() {
        let l = layout(LayoutPreset::Iomanager, "dagster");
        assert_eq!(l.asset_dir(&key("a/b")).unwrap().as_str(), "dagster/a/b");
        assert_eq!(l.asset_dir(&key(".")).unwrap().as_str(), "dagster/%2E");
    }

    #[test]
    fn empty_partition_is_invalid_key() {
        let l = PathLayout::default();
        let err = l
            .asset_path(&key("a"), Some(&PartitionKey::from("")), "")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(err.to_string().contains("empty segment"), "{err}");
    }

    #[test]
    fn partitioned_asset_shares_path_with_longer_key_as_in_dagster() {
        let l = PathLayout::default();
        assert_eq!(
            l.asset_path(&key("a"), Some(&PartitionKey::from("b")), "")
                .unwrap(),
            l.asset_path(&key("a/b"), None, "").unwrap()
        );
    }

    #[test]
    fn op_paths_table() {
        use LayoutPreset::{DagsterFs, DagsterS3, Iomanager};
        let plain = output("RUN", "a", "result", None, None);
        let mapped = output("RUN", "dyn", "result", Some("foo"), None);
        let bracketed = output("RUN", "echo[foo]", "result", None, None);
        let bracketed_mk = output("RUN", "echo[foo]", "result", Some("mk"), None);
        let versioned = output("RUN", "op", "result", None, Some("v1"));
        let graph = output("RUN", "graph_asset.first_op", "result", None, None);
        let rows: &[(LayoutPreset, &str, &OutputId, &str, &str)] = &[
            (Iomanager, "", &plain, "", "storage/RUN/files/a/result"),
            (
                Iomanager,
                "",
                &mapped,
                "",
                "storage/RUN/files/dyn/result/foo",
            ),
            (
                Iomanager,
                "",
                &bracketed,
                "",
                "storage/RUN/files/echo[foo]/result",
            ),
            (
                Iomanager,
                "assets",
                &graph,
                "",
                "assets/storage/RUN/files/graph_asset.first_op/result",
            ),
            (
                Iomanager,
                "",
                &plain,
                ".json",
                "storage/RUN/files/a/result.json",
            ),
            (
                Iomanager,
                "",
                &mapped,
                ".json",
                "storage/RUN/files/dyn/result/foo.json",
            ),
            (
                Iomanager,
                "",
                &versioned,
                "",
                "storage/versioned_outputs/v1/op/result",
            ),
            (
                Iomanager,
                "p",
                &versioned,
                ".bin",
                "p/storage/versioned_outputs/v1/op/result.bin",
            ),
            (DagsterFs, "", &plain, "", "RUN/a/result"),
            (DagsterFs, "", &mapped, "", "RUN/dyn/result/foo"),
            (DagsterFs, "", &bracketed, "", "RUN/echo[foo]/result"),
            (DagsterFs, "base", &plain, ".pkl", "base/RUN/a/result.pkl"),
            (
                DagsterFs,
                "",
                &versioned,
                "",
                "versioned_outputs/v1/op/result",
            ),
            (
                DagsterS3,
                "dagster",
                &plain,
                "",
                "dagster/storage/RUN/a/result",
            ),
            (
                DagsterS3,
                "dagster",
                &mapped,
                "",
                "dagster/storage/RUN/dyn/result/foo",
            ),
            (
                DagsterS3,
                "dagster",
                &bracketed,
                "",
                "dagster/storage/RUN/echo--foo/result",
            ),
            (
                DagsterS3,
                "dagster",
                &bracketed_mk,
                "",
                "dagster/storage/RUN/echo--foo/result/mk",
            ),
            (
                DagsterS3,
                "",
                &output("R", "s", "return_value[foo]", None, None),
                "",
                "storage/R/s/return_value--foo",
            ),
            (
                DagsterS3,
                "dagster",
                &versioned,
                "",
                "dagster/storage/versioned_outputs/v1/op/result",
            ),
        ];
        for (preset, prefix, id, ext, expected) in rows {
            let l = layout(*preset, prefix);
            let got = l.op_path(id, ext).unwrap();
            assert_eq!(got.as_str(), *expected, "{preset:?} {prefix:?} {id:?}");
            assert!(
                got.starts_with(&l.storage_root()),
                "{got} under {}",
                l.storage_root()
            );
        }
    }

    #[test]
    fn op_path_parts_are_encoded() {
        let l = PathLayout::default();
        let id = output("..", "a/b", ".", Some("../../etc"), None);
        assert_eq!(
            l.op_path(&id, "").unwrap().as_str(),
            "storage/%2E./files/a%2Fb/%2E/%2E.%2F..%2Fetc"
        );
        let v = output("RUN", "s", "o", None, Some("../v"));
        assert_eq!(
            layout(LayoutPreset::DagsterFs, "")
                .op_path(&v, "")
                .unwrap()
                .as_str(),
            "versioned_outputs/%2E.%2Fv/s/o"
        );
        for preset in [
            LayoutPreset::Iomanager,
            LayoutPreset::DagsterFs,
            LayoutPreset::DagsterS3,
        ] {
            let err = layout(preset, "").op_path(&output("RUN", "", "o", None, None), "");
            assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidKey);
        }
        let err = layout(LayoutPreset::DagsterS3, "")
            .op_path(&output("RUN", "]]", "o", None, None), "")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(err.to_string().contains("sanitizing"), "{err}");
    }

    #[test]
    fn version_with_mapping_key_is_an_error() {
        let id = output("RUN", "my_step", "out", Some("mk"), Some("v1"));
        for preset in [
            LayoutPreset::Iomanager,
            LayoutPreset::DagsterFs,
            LayoutPreset::DagsterS3,
        ] {
            let err = layout(preset, "").op_path(&id, "").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidContext);
            assert_eq!(
                err.to_string(),
                "Mapping key and version both provided for output 'out' of step 'my_step'. \
                 Dynamic mapping is not supported when using versioning."
            );
        }
    }

    #[test]
    fn prefix_handling() {
        assert_eq!(PathLayout::default().prefix(), &ObjectPath::root());
        assert_eq!(PathLayout::default().preset(), LayoutPreset::Iomanager);
        assert_eq!(
            PathLayout::new(LayoutPreset::DagsterS3).preset(),
            LayoutPreset::DagsterS3
        );
        let cases = [
            ("", ""),
            ("/", ""),
            ("dagster", "dagster"),
            ("dagster/", "dagster"),
            ("/a//b/", "a/b"),
            ("dagster/../x", "dagster/%2E./x"),
            ("../..", "%2E./%2E."),
            (".", "%2E"),
            ("a\\..\\b", "a%5C..%5Cb"),
        ];
        for (raw, enc) in cases {
            let l = PathLayout::default().with_prefix(raw).unwrap();
            assert_eq!(l.prefix().as_str(), enc, "{raw:?}");
        }
    }

    #[test]
    fn storage_root_per_preset() {
        assert_eq!(
            layout(LayoutPreset::Iomanager, "").storage_root().as_str(),
            "storage"
        );
        assert_eq!(
            layout(LayoutPreset::Iomanager, "d").storage_root().as_str(),
            "d/storage"
        );
        assert_eq!(
            layout(LayoutPreset::DagsterS3, "d").storage_root().as_str(),
            "d/storage"
        );
        assert_eq!(
            layout(LayoutPreset::DagsterFs, "d").storage_root().as_str(),
            "d"
        );
        assert_eq!(
            layout(LayoutPreset::DagsterFs, "").storage_root(),
            ObjectPath::root()
        );
    }

    #[test]
    fn asset_name_from_path_inverts_asset_path() {
        let l = layout(LayoutPreset::Iomanager, "dagster");
        let cases: &[(&str, Option<&str>)] =
            &[("a/b", None), ("my.asset", None), ("x", Some("2024/01"))];
        for (k, p) in cases {
            let partition = p.map(PartitionKey::from);
            let path = l.asset_path(&key(k), partition.as_ref(), ".json").unwrap();
            let expected = match p {
                Some(p) => format!("{k}/{p}"),
                None => (*k).to_owned(),
            };
            assert_eq!(
                l.asset_name_from_path(&path, ".json").as_deref(),
                Some(expected.as_str())
            );
        }
        let name = |l: &PathLayout, p: &str, ext: &str| {
            l.asset_name_from_path(&ObjectPath::parse(p).unwrap(), ext)
        };
        assert_eq!(name(&l, "dagster/%2E./etc", "").as_deref(), Some("../etc"));
        assert_eq!(name(&l, "dagster/a.json", "").as_deref(), Some("a.json"));
        assert_eq!(
            name(&l, "dagster/a.parquet", ".json").as_deref(),
            Some("a.parquet")
        );
        assert_eq!(
            name(&l, "dagster/%2Ejson", ".json").as_deref(),
            Some(".json")
        );
        assert_eq!(name(&l, "dagster", ""), None);
        assert_eq!(name(&l, "other/a", ""), None);
        assert_eq!(name(&l, "dagsterx/a", ""), None);
        assert_eq!(name(&l, "dagster/storage/RUN/files/s/result", ""), None);
        let s3 = layout(LayoutPreset::DagsterS3, "dagster");
        assert_eq!(name(&s3, "dagster/storage/RUN/s/result", ""), None);
        assert_eq!(name(&s3, "dagster/a/b", "").as_deref(), Some("a/b"));
        let fs = layout(LayoutPreset::DagsterFs, "");
        assert_eq!(
            name(&fs, "RUN/s/result", "").as_deref(),
            Some("RUN/s/result")
        );
        assert_eq!(name(&fs, "storage/x", "").as_deref(), Some("storage/x"));
        assert_eq!(name(&fs, "", ""), None);
    }

    #[test]
    fn preset_serde_is_snake_case() {
        assert_eq!(LayoutPreset::default(), LayoutPreset::Iomanager);
        for (preset, text) in [
            (LayoutPreset::Iomanager, "\"iomanager\""),
            (LayoutPreset::DagsterFs, "\"dagster_fs\""),
            (LayoutPreset::DagsterS3, "\"dagster_s3\""),
        ] {
            assert_eq!(serde_json::to_string(&preset).unwrap(), text);
            assert_eq!(serde_json::from_str::<LayoutPreset>(text).unwrap(), preset);
        }
    }

    // ---- properties ----------------------------------------------------------------------

    /// Characters that stress the encoding, mixed with arbitrary ones.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec![
                '.', '%', '/', '\\', '\0', '\u{7f}', '\u{85}', '\n', '2', 'E', 'F', 'e', 'a',
                ' ', '[', ']', '|', ':', 'é', '日',
            ]),
            1 => any::<char>(),
        ]
    }

    /// A raw segment from a tricky alphabet, or (often) a short one from a tiny alphabet so
    /// that equal and nearly equal segments are frequent.
    fn raw_segment() -> BoxedStrategy<String> {
        prop_oneof![
            prop::collection::vec(tricky_char(), 1..8),
            prop::collection::vec(
                prop::sample::select(vec!['.', '%', '/', '2', 'E', 'a']),
                1..4
            ),
        ]
        .prop_map(|cs| cs.into_iter().collect())
        .boxed()
    }

    /// A multi-dimensional value: non-empty, without `| [ ] ,`.
    fn multi_value() -> impl Strategy<Value = String> {
        raw_segment().prop_map(|s| {
            let s: String = s
                .chars()
                .filter(|c| !crate::key::MULTI_PARTITION_FORBIDDEN.contains(c))
                .collect();
            if s.is_empty() { "v".to_owned() } else { s }
        })
    }

    /// A partition of a given shape: 0 none, 1 one-dimensional, 2 or 3 a key over the fixed
    /// dimensions `d0`, `d1`(, `d2`) (an asset has one partitions definition, so one set of
    /// dimension names).
    fn partition_of_shape(shape: usize) -> BoxedStrategy<Option<PartitionKey>> {
        match shape {
            0 => Just(None).boxed(),
            1 => raw_segment()
                .prop_map(|s| Some(PartitionKey::from(s)))
                .boxed(),
            n => prop::collection::vec(multi_value(), n..=n)
                .prop_map(|vals| {
                    let dims = vals
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("d{i}"), v));
                    Some(PartitionKey::multi(dims).unwrap())
                })
                .boxed(),
        }
    }

    fn partition() -> impl Strategy<Value = Option<PartitionKey>> {
        (0..4usize).prop_flat_map(partition_of_shape)
    }

    fn asset_key_of_len(n: usize) -> impl Strategy<Value = AssetKey> + Clone {
        prop::collection::vec(raw_segment(), n..=n).prop_map(|segs| AssetKey::new(segs).unwrap())
    }

    fn asset_key() -> impl Strategy<Value = AssetKey> {
        (1..4usize).prop_flat_map(asset_key_of_len)
    }

    type Target = (AssetKey, Option<PartitionKey>);

    /// Two (asset key, partition) pairs with the same number of key and partition segments.
    fn same_shape_pair() -> impl Strategy<Value = (Target, Target)> {
        (1..4usize, 0..4usize).prop_flat_map(|(n, shape)| {
            let one = (asset_key_of_len(n), partition_of_shape(shape));
            (one.clone(), one)
        })
    }

    fn partition_len(p: &Option<PartitionKey>) -> usize {
        p.as_ref().map_or(0, |p| p.segments().len())
    }

    proptest! {
        #[test]
        fn encode_is_injective_and_round_trips(a in raw_segment(), b in raw_segment()) {
            let ea = encode_segment(&a).unwrap();
            let eb = encode_segment(&b).unwrap();
            prop_assert_eq!(a == b, ea == eb);
            prop_assert_eq!(decode_segment(&ea).unwrap(), a);
            prop_assert_eq!(decode_segment(&eb).unwrap(), b);
            prop_assert!(!ea.is_empty() && ea != "." && ea != "..");
            prop_assert!(!ea.contains('/') && !ea.contains('\\'));
            prop_assert!(!ea.starts_with('.'));
            prop_assert!(!ea.chars().any(char::is_control));
        }

        #[test]
        fn asset_paths_are_safe(
            prefix in prop::collection::vec(raw_segment(), 0..3),
            key in asset_key(),
            part in partition(),
            ext in prop::sample::select(vec!["", ".json", ".parquet", ".", ".."]),
            preset in prop::sample::select(vec![
                LayoutPreset::Iomanager, LayoutPreset::DagsterFs, LayoutPreset::DagsterS3,
            ]),
        ) {
            let l = PathLayout::new(preset).with_prefix(&prefix.join("/")).unwrap();
            let path = l.asset_path(&key, part.as_ref(), ext).unwrap();
            prop_assert!(path.starts_with(l.prefix()));
            prop_assert!(!path.as_str().starts_with('/'));
            for seg in path.segments() {
                prop_assert!(!seg.is_empty() && seg != "." && seg != "..", "{:?}", path);
            }
            prop_assert_eq!(path.as_str().split('/').count(),
                l.prefix().segments().count() + key.path().len() + partition_len(&part));
            prop_assert_eq!(ObjectPath::parse(path.as_str()).unwrap(), path.clone());
            if ext.is_empty() {
                let rest = path.strip_prefix(l.prefix()).unwrap();
                let mut raw: Vec<String> = key.path().to_vec();
                if let Some(p) = &part {
                    raw.extend(p.segments().into_iter().map(str::to_owned));
                }
                prop_assert_eq!(rest.raw_segments(), raw);
            }
        }

        #[test]
        fn distinct_keys_never_share_a_path(
            ((k1, p1), (k2, p2)) in same_shape_pair(),
            ext in prop::sample::select(vec!["", ".json"]),
        ) {
            let l = PathLayout::default().with_prefix("dagster").unwrap();
            let a = l.asset_path(&k1, p1.as_ref(), ext).unwrap();
            let b = l.asset_path(&k2, p2.as_ref(), ext).unwrap();
            prop_assert_eq!((&k1, &p1) == (&k2, &p2), a == b, "{:?} {:?}", a, b);
        }

        #[test]
        fn same_key_distinct_partitions_never_share_a_path(
            ((k, p1), (_, p2)) in same_shape_pair(),
        ) {
            let l = PathLayout::default();
            let a = l.asset_path(&k, p1.as_ref(), ".bin").unwrap();
            let b = l.asset_path(&k, p2.as_ref(), ".bin").unwrap();
            prop_assert_eq!(p1 == p2, a == b, "{:?} {:?}", a, b);
        }

        #[test]
        fn parse_accepts_only_safe_paths(s in prop::collection::vec(tricky_char(), 0..12)) {
            let s: String = s.into_iter().collect();
            if let Ok(p) = ObjectPath::parse(&s) {
                prop_assert_eq!(p.as_str(), s.as_str());
                for seg in p.segments() {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
                    prop_assert!(!seg.contains('\\') && !seg.chars().any(char::is_control));
                }
            }
        }
    }
}
