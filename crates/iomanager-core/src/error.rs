//! The one error type of iomanager.
//!
//! Every backend maps its SDK's errors into [`Error`] in one function, so a missing object is
//! [`ErrorKind::NotFound`] on memory, the filesystem, every cloud and SQL alike, and
//! `allow_missing_partitions` behaves the same everywhere.

use std::fmt;

/// A boxed error from a backend SDK or the operating system, kept as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `std::result::Result<T, iomanager_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an error happened: the object's uri, and the asset and partition it belongs to.
///
/// Storages fill in the uri; [`crate::StorageIoManager`] adds the asset and partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The object's uri (`file:///…`, `s3://bucket/key`, `memory:///…`).
    pub uri: Option<String>,
    /// The asset key in its `a/b/c` form.
    pub asset: Option<String>,
    /// The partition key in its string form (`2024-01-01`, `a1|z1`).
    pub partition: Option<String>,
}

impl Location {
    /// A location that only knows the uri.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self {
            uri: Some(uri.into()),
            ..Self::default()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(asset) = &self.asset {
            parts.push(format!("asset `{asset}`"));
        }
        if let Some(partition) = &self.partition {
            parts.push(format!("partition `{partition}`"));
        }
        if let Some(uri) = &self.uri {
            parts.push(format!("at {uri}"));
        }
        if parts.is_empty() {
            f.write_str("(location unknown)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The objects that do exist under a manager's base, listed in a not-found error so a typo in an
/// asset key is obvious. At most [`ExistingObjects::MAX_NAMES`] names are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingObjects {
    /// The base that was listed (a uri).
    pub base: String,
    /// Up to [`ExistingObjects::MAX_NAMES`] asset names, sorted.
    pub names: Vec<String>,
    /// How many distinct names were found in all.
    pub total: usize,
    /// True when the listing stopped early (the total is a lower bound).
    pub truncated: bool,
}

impl ExistingObjects {
    /// How many names a not-found error shows at most.
    pub const MAX_NAMES: usize = 20;
}

impl fmt::Display for ExistingObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == 0 {
            return write!(f, "nothing is stored under {}", self.base);
        }
        let more = if self.truncated { "+" } else { "" };
        write!(
            f,
            "{}{} asset(s) stored under {}: {}",
            self.total,
            more,
            self.base,
            self.names.join(", ")
        )?;
        if self.total > self.names.len() {
            write!(f, ", …")?;
        }
        Ok(())
    }
}

fn existing_suffix(existing: &Option<Box<ExistingObjects>>) -> String {
    match existing {
        Some(e) => format!("; {e}"),
        None => String::new(),
    }
}

/// What went wrong, without the details; see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, asset, partition or stored value does not exist.
    NotFound,
    /// A key (asset key, partition key, step key, mapping key, prefix) cannot be stored safely.
    InvalidKey,
    /// Stored bytes failed their checksum or could not be decoded.
    Corrupted,
    /// A context accessor was asked for something the context was built without.
    MissingContext,
    /// The context's parts contradict each other, or the call does not fit the context.
    InvalidContext,
    /// A partitions definition or partition selection is invalid.
    Partition,
    /// Invalid configuration.
    Config,
    /// The value could not be encoded; nothing was written.
    Encode,
    /// A conditional write's precondition did not hold (the object exists, or changed).
    PreconditionFailed,
    /// The backend cannot honour the requested operation or mode.
    Unsupported,
    /// The backend refused access.
    PermissionDenied,
    /// A transient backend failure (timeout, throttling, 5xx, connection reset): retryable.
    Transient,
    /// Any other backend failure: not retried.
    Backend,
    /// A value of another type is stored under this key.
    TypeMismatch,
    /// The blocking facade could not run the operation.
    Runtime,
}

/// The error type of every iomanager operation.
///
/// Messages say what failed, where (uri, asset, partition) and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing is stored where a load looked.
    #[error("not found: nothing stored for {at}{}", existing_suffix(.existing))]
    NotFound {
        /// Where the load looked.
        at: Box<Location>,
        /// What does exist under the base, when the manager listed it.
        existing: Option<Box<ExistingObjects>>,
    },
    /// A key cannot be turned into a safe storage path.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key as given.
        key: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Stored bytes are corrupt or truncated.
    #[error("corrupted data for {at}: {reason}")]
    Corrupted {
        /// The object that is corrupt.
        at: Box<Location>,
        /// What check failed.
        reason: String,
    },
    /// A context was asked for something it was built without.
    #[error("{message}")]
    MissingContext {
        /// Dagster-style text: "Attempting to access X, but it was not provided when constructing
        /// the OutputContext".
        message: String,
    },
    /// The context's parts contradict each other, or the call does not fit the context.
    #[error("{message}")]
    InvalidContext {
        /// What is wrong and what to do.
        message: String,
    },
    /// A partitions definition or partition selection is invalid.
    #[error("partition error: {message}")]
    Partition {
        /// What is wrong.
        message: String,
    },
    /// Invalid configuration.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The value could not be encoded; nothing was written.
    #[error("could not encode the value as {format} for {at}: {reason}; nothing was written")]
    Encode {
        /// The codec's format name.
        format: String,
        /// Where the value was going.
        at: Box<Location>,
        /// The encoder's message.
        reason: String,
    },
    /// A conditional write's precondition did not hold.
    #[error("precondition failed for {at}: {reason}")]
    PreconditionFailed {
        /// The object.
        at: Box<Location>,
        /// Which precondition.
        reason: String,
    },
    /// The backend cannot honour the requested operation or mode.
    #[error("{backend} does not support {what}")]
    Unsupported {
        /// The backend's name.
        backend: String,
        /// The operation or mode.
        what: String,
    },
    /// The backend refused access.
    #[error("permission denied for {at}: {reason}")]
    PermissionDenied {
        /// The object or container.
        at: Box<Location>,
        /// The backend's message.
        reason: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A transient failure; retrying may succeed.
    #[error("transient backend error for {at}: {reason}")]
    Transient {
        /// The object.
        at: Box<Location>,
        /// The backend's message.
        reason: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A permanent backend failure.
    #[error("backend error for {at}: {reason}")]
    Backend {
        /// The object.
        at: Box<Location>,
        /// The backend's message.
        reason: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A value of another type is stored under this key.
    #[error("type mismatch for {at}: expected {expected}, found {found}")]
    TypeMismatch {
        /// The key.
        at: Box<Location>,
        /// The type the load asked for.
        expected: String,
        /// The type that is stored.
        found: String,
    },
    /// The blocking facade could not run the operation.
    #[error("runtime error: {message}")]
    Runtime {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The kind of this error, for matching without the details.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidKey { .. } => ErrorKind::InvalidKey,
            Error::Corrupted { .. } => ErrorKind::Corrupted,
            Error::MissingContext { .. } => ErrorKind::MissingContext,
            Error::InvalidContext { .. } => ErrorKind::InvalidContext,
            Error::Partition { .. } => ErrorKind::Partition,
            Error::Config { .. } => ErrorKind::Config,
            Error::Encode { .. } => ErrorKind::Encode,
            Error::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Transient { .. } => ErrorKind::Transient,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::TypeMismatch { .. } => ErrorKind::TypeMismatch,
            Error::Runtime { .. } => ErrorKind::Runtime,
        }
    }

    /// True for transient failures that a retry may cure (timeouts, 429, 5xx, resets).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// True when nothing is stored at the location.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// A not-found error at `uri`.
    pub fn not_found(uri: impl Into<String>) -> Self {
        Error::NotFound {
            at: Location::uri(uri).into(),
            existing: None,
        }
    }

    /// A corrupted-data error at `uri`.
    pub fn corrupted(uri: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupted {
            at: Location::uri(uri).into(),
            reason: reason.into(),
        }
    }

    /// An invalid-key error.
    pub fn invalid_key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// An invalid-context error.
    pub fn invalid_context(message: impl Into<String>) -> Self {
        Error::InvalidContext {
            message: message.into(),
        }
    }

    /// A partition error.
    pub fn partition(message: impl Into<String>) -> Self {
        Error::Partition {
            message: message.into(),
        }
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    /// A transient (retryable) backend error.
    pub fn transient(
        uri: impl Into<String>,
        reason: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::Transient {
            at: Location::uri(uri).into(),
            reason: reason.into(),
            source,
        }
    }

    /// A permanent backend error.
    pub fn backend(
        uri: impl Into<String>,
        reason: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::Backend {
            at: Location::uri(uri).into(),
            reason: reason.into(),
            source,
        }
    }

    /// The location this error carries, if its variant has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::NotFound { at, .. }
            | Error::Corrupted { at, .. }
            | Error::Encode { at, .. }
            | Error::PreconditionFailed { at, .. }
            | Error::PermissionDenied { at, .. }
            | Error::Transient { at, .. }
            | Error::Backend { at, .. }
            | Error::TypeMismatch { at, .. } => Some(at),
            _ => None,
        }
    }

    fn location_mut(&mut self) -> Option<&mut Location> {
        match self {
            Error::NotFound { at, .. }
            | Error::Corrupted { at, .. }
            | Error::Encode { at, .. }
            | Error::PreconditionFailed { at, .. }
            | Error::PermissionDenied { at, .. }
            | Error::Transient { at, .. }
            | Error::Backend { at, .. }
            | Error::TypeMismatch { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Fills in the asset and partition (and uri) where the error does not name them yet.
    pub fn at(mut self, uri: Option<&str>, asset: Option<&str>, partition: Option<&str>) -> Self {
        if let Some(loc) = self.location_mut() {
            if loc.uri.is_none() {
                loc.uri = uri.map(str::to_owned);
            }
            if loc.asset.is_none() {
                loc.asset = asset.map(str::to_owned);
            }
            if loc.partition.is_none() {
                loc.partition = partition.map(str::to_owned);
            }
        }
        self
    }

    /// Maps an operating-system I/O error at `uri` into the matching kind: not found, permission
    /// denied, transient (interrupted, timed out, would block, connection reset) or backend.
    pub fn from_io(uri: impl Into<String>, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let uri = uri.into();
        let reason = err.to_string();
        match err.kind() {
            K::NotFound => Error::not_found(uri),
            K::PermissionDenied | K::ReadOnlyFilesystem => Error::PermissionDenied {
                at: Location::uri(uri).into(),
                reason,
                source: Some(Box::new(err)),
            },
            K::Interrupted
            | K::TimedOut
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe => Error::transient(uri, reason, Some(Box::new(err))),
            _ => Error::backend(uri, reason, Some(Box::new(err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retryable() {
        assert!(Error::transient("u", "slow down", None).is_retryable());
        assert!(!Error::backend("u", "bad", None).is_retryable());
        assert!(!Error::not_found("u").is_retryable());
        assert_eq!(Error::not_found("u").kind(), ErrorKind::NotFound);
        assert_eq!(Error::corrupted("u", "x").kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn message_names_uri_asset_partition() {
        let err =
            Error::not_found("memory:///a/2024-01-01").at(None, Some("a"), Some("2024-01-01"));
        let text = err.to_string();
        assert!(text.contains("memory:///a/2024-01-01"), "{text}");
        assert!(text.contains("asset `a`"), "{text}");
        assert!(text.contains("partition `2024-01-01`"), "{text}");
    }

    #[test]
    fn at_does_not_overwrite() {
        let err = Error::not_found("u1")
            .at(Some("u2"), Some("a"), None)
            .at(None, Some("b"), None);
        let loc = err.location().unwrap();
        assert_eq!(loc.uri.as_deref(), Some("u1"));
        assert_eq!(loc.asset.as_deref(), Some("a"));
    }

    #[test]
    fn io_errors_map_by_kind() {
        use std::io;
        let nf = Error::from_io("file:///x", io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert!(nf.is_not_found());
        let pd = Error::from_io(
            "file:///x",
            io::Error::new(io::ErrorKind::PermissionDenied, "no"),
        );
        assert_eq!(pd.kind(), ErrorKind::PermissionDenied);
        let tr = Error::from_io("file:///x", io::Error::new(io::ErrorKind::TimedOut, "slow"));
        assert!(tr.is_retryable());
    }

    #[test]
    fn existing_objects_listing() {
        let e = ExistingObjects {
            base: "memory:///".into(),
            names: vec!["a".into(), "b".into()],
            total: 30,
            truncated: false,
        };
        let err = Error::NotFound {
            at: Location::uri("memory:///c").into(),
            existing: Some(Box::new(e)),
        };
        let text = err.to_string();
        assert!(
            text.contains("30 asset(s) stored under memory:///: a, b, …"),
            "{text}"
        );
    }
}
