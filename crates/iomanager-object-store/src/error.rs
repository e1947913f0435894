//! The one place `object_store` errors become [`Error`]s.

use std::error::Error as StdError;

use iomanager_core::{Error, Location};

/// What a failed call was doing, for the cases where that changes the meaning of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// get, ranged get, stream, head.
    Read,
    /// An unconditional put, or a multipart upload.
    Write,
    /// A create-only or if-version put.
    ConditionalWrite,
    /// A delete.
    Delete,
    /// A listing.
    List,
}

/// Maps an `object_store` error for the object at `uri` (on the storage named `backend`) into
/// [`Error`]. Never includes credentials: `object_store` keeps them out of its messages.
///
/// | `object_store` | iomanager |
/// |---|---|
/// | `NotFound` (HTTP 404) | `NotFound` naming `uri`; on a conditional write `PreconditionFailed` (the version to replace is not there); a 404 whose body says `NoSuchBucket` is `Backend` (the bucket, not the object, is missing) |
/// | `AlreadyExists` (409, or `If-None-Match` refused), `Precondition` (412) | `PreconditionFailed` |
/// | `NotSupported`, `NotImplemented` (e.g. `PutMode::Update` on `LocalFileSystem`, or conditional put disabled on S3) | `Unsupported` |
/// | `PermissionDenied` (403), `Unauthenticated` (401) | `PermissionDenied` |
/// | `UnknownConfigurationKey` | `Config` |
/// | `Generic` and anything else | `Transient` or `Backend`, see below |
///
/// A `Generic` error is `Transient` (retried by [`iomanager_core::RetryStorage`]) exactly when
/// its cause chain shows a transient failure:
/// - an HTTP status 5xx, 429 or 408 in `object_store`'s request error (its text
///   `Server returned non-2xx status code: <status>`; the status itself is not reachable through
///   a public type), or an S3 `InternalError`/`SlowDown` answer inside a 200 response;
/// - a transport failure: with a cloud feature of this crate, an `object_store`
///   `HttpError` of kind `Connect`, `Request`, `Timeout` or `Interrupted`; for any store, an
///   operating-system I/O error that timed out, was interrupted, or whose connection was
///   refused, reset or aborted.
///
/// These are the failures `object_store`'s own HTTP client retries, so reaching us they mean its
/// retries were exhausted; iomanager's retry wrapper may try again later with its own backoff.
/// Every other `Generic` error (a 400, a malformed response, a panicked task, a file the OS
/// refuses to write, ...) is a permanent `Backend` error, except an I/O permission error, which
/// is `PermissionDenied`, and, on reads, an I/O "not found / not a directory / is a directory",
/// which is `NotFound` (a path through a file on `LocalFileSystem`).
pub(crate) fn map_error(err: object_store::Error, uri: &str, backend: &str, op: Op) -> Error {
    use object_store::Error as E;
    let at = || Box::new(Location::uri(uri));
    match err {
        E::NotFound { .. } if mentions(&err, "NoSuchBucket") => Error::Backend {
            at: at(),
            reason: format!(
                "the bucket does not exist ({}); create it or fix the store's bucket",
                chain(&err)
            ),
            source: Some(Box::new(err)),
        },
        E::NotFound { .. } if op == Op::ConditionalWrite => Error::PreconditionFailed {
            at: at(),
            reason: format!("the object to replace does not exist ({})", chain(&err)),
        },
        E::NotFound { .. } => Error::NotFound {
            at: at(),
            existing: None,
        },
        E::AlreadyExists { .. } => Error::PreconditionFailed {
            at: at(),
            reason: format!("an object already exists ({})", chain(&err)),
        },
        E::Precondition { .. } => Error::PreconditionFailed {
            at: at(),
            reason: format!("the stored object changed or is missing ({})", chain(&err)),
        },
        E::NotSupported { .. } | E::NotImplemented { .. } => Error::Unsupported {
            backend: backend.to_owned(),
            what: format!("this operation at {uri} ({})", chain(&err)),
        },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Error::PermissionDenied {
            at: at(),
            reason: format!(
                "{}; check the store's credentials and its access policy",
                chain(&err)
            ),
            source: Some(Box::new(err)),
        },
        E::UnknownConfigurationKey { .. } => {
            Error::config(format!("{backend} at {uri}: {}", chain(&err)))
        }
        E::InvalidPath { .. } => Error::Backend {
            at: at(),
            reason: format!(
                "the store holds a key object_store cannot represent ({})",
                chain(&err)
            ),
            source: Some(Box::new(err)),
        },
        other => classify_generic(other, uri, op),
    }
}

/// `Generic`, `NotModified`, `JoinError` and future variants: transient, permission, not found
/// or backend by their cause chain.
fn classify_generic(err: object_store::Error, uri: &str, op: Op) -> Error {
    let reason = chain(&err);
    let at = || Box::new(Location::uri(uri));
    match cause_kind(&err) {
        Cause::Transient => Error::Transient {
            at: at(),
            reason,
            source: Some(Box::new(err)),
        },
        Cause::Permission => Error::PermissionDenied {
            at: at(),
            reason,
            source: Some(Box::new(err)),
        },
        Cause::Missing if matches!(op, Op::Read | Op::Delete) => Error::NotFound {
            at: at(),
            existing: None,
        },
        _ => Error::Backend {
            at: at(),
            reason,
            source: Some(Box::new(err)),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Transient,
    Permission,
    Missing,
    Other,
}

/// The first telling cause in the chain of `err`.
fn cause_kind(err: &(dyn StdError + 'static)) -> Cause {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(cause) = transport_cause(e) {
            return cause;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::TimedOut
                | K::Interrupted
                | K::WouldBlock
                | K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::BrokenPipe => return Cause::Transient,
                K::PermissionDenied | K::ReadOnlyFilesystem => return Cause::Permission,
                K::NotFound | K::NotADirectory | K::IsADirectory => return Cause::Missing,
                _ => {}
            }
        }
        let text = e.to_string();
        if let Some(status) = http_status(&text) {
            return if status >= 500 || status == 429 || status == 408 {
                Cause::Transient
            } else {
                Cause::Other
            };
        }
        if text.contains(RESPONSE_MARKER)
            && (text.contains("InternalError") || text.contains("SlowDown"))
        {
            return Cause::Transient;
        }
        next = e.source();
    }
    Cause::Other
}

/// A transient `object_store` HTTP transport error (connect, request, timeout, interrupted). The type exists
/// only when `object_store` has an HTTP client, which this crate's cloud features enable.
#[cfg(feature = "aws")]
fn transport_cause(e: &(dyn StdError + 'static)) -> Option<Cause> {
    use object_store::client::{HttpError, HttpErrorKind as K};
    let http = e.downcast_ref::<HttpError>()?;
    match http.kind() {
        K::Connect | K::Request | K::Timeout | K::Interrupted => Some(Cause::Transient),
        // `Decode` and `Unknown`: look further down the chain (an I/O error may say more).
        _ => None,
    }
}

/// Without an HTTP client in `object_store` there is no transport error to recognise.
#[cfg(not(feature = "aws"))]
fn transport_cause(_: &(dyn StdError + 'static)) -> Option<Cause> {
    None
}

/// How `object_store`'s HTTP client reports an error status (`RequestError::Status`).
const STATUS_MARKER: &str = "Server returned non-2xx status code: ";
/// How it reports an error inside a successful response (`RequestError::Response`).
const RESPONSE_MARKER: &str = "Server returned error response: ";

/// The HTTP status in an `object_store` request error's message, if it holds one.
fn http_status(text: &str) -> Option<u16> {
    let rest = &text[text.find(STATUS_MARKER)? + STATUS_MARKER.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.len() {
        3 => digits.parse().ok(),
        _ => None,
    }
}

/// True when any message in the chain of `err` contains `needle`.
fn mentions(err: &(dyn StdError + 'static), needle: &str) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if e.to_string().contains(needle) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The error and its causes on one line, without repeating a message its cause already says.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use iomanager_core::ErrorKind;

    fn boxed(text: &str) -> Box<dyn StdError + Send + Sync> {
        text.to_owned().into()
    }

    fn kind(err: object_store::Error, op: Op) -> ErrorKind {
        map_error(err, "memory:///a/b", "memory", op).kind()
    }

    #[test]
    fn variants_map_to_kinds() {
        use object_store::Error as E;
        let nf = || E::NotFound {
            path: "a/b".into(),
            source: boxed("gone"),
        };
        assert_eq!(kind(nf(), Op::Read), ErrorKind::NotFound);
        assert_eq!(kind(nf(), Op::Delete), ErrorKind::NotFound);
        assert_eq!(
            kind(nf(), Op::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        let err = map_error(nf(), "memory:///a/b", "memory", Op::Read);
        assert!(err.to_string().contains("memory:///a/b"), "{err}");

        let exists = E::AlreadyExists {
            path: "a".into(),
            source: boxed("there"),
        };
        assert_eq!(
            kind(exists, Op::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        let pre = E::Precondition {
            path: "a".into(),
            source: boxed("etag"),
        };
        assert_eq!(
            kind(pre, Op::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        let ni = E::NotImplemented {
            operation: "put_opts with PutMode::Update".into(),
            implementer: "LocalFileSystem".into(),
        };
        let err = map_error(ni, "file:///t/a", "file", Op::ConditionalWrite);
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("PutMode::Update"), "{err}");
        let ns = E::NotSupported {
            source: boxed("no"),
        };
        assert_eq!(kind(ns, Op::Write), ErrorKind::Unsupported);
        for e in [
            E::PermissionDenied {
                path: "a".into(),
                source: boxed("403"),
            },
            E::Unauthenticated {
                path: "a".into(),
                source: boxed("401"),
            },
        ] {
            assert_eq!(kind(e, Op::Read), ErrorKind::PermissionDenied);
        }
        let key = E::UnknownConfigurationKey {
            store: "S3",
            key: "nope".into(),
        };
        assert_eq!(kind(key, Op::Read), ErrorKind::Config);
        let nm = E::NotModified {
            path: "a".into(),
            source: boxed("same"),
        };
        assert_eq!(kind(nm, Op::Read), ErrorKind::Backend);
    }

    #[test]
    fn missing_bucket_is_not_a_missing_object() {
        let err = object_store::Error::NotFound {
            path: "a".into(),
            source: boxed(
                "Server returned non-2xx status code: 404 Not Found: \
                 <Error><Code>NoSuchBucket</Code></Error>",
            ),
        };
        let err = map_error(err, "s3://b/a", "s3", Op::Read);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.to_string().contains("bucket does not exist"), "{err}");
    }

    #[test]
    fn generic_errors_are_classified_by_cause() {
        use std::io;
        let generic = |source: Box<dyn StdError + Send + Sync>| object_store::Error::Generic {
            store: "S3",
            source,
        };
        for status in [
            "500 Internal Server Error",
            "503 Service Unavailable",
            "429 Too Many Requests",
            "408 Request Timeout",
        ] {
            let text =
                format!("Error performing GET http://h/b/k in 2ms - {STATUS_MARKER}{status}: ");
            assert_eq!(
                kind(generic(boxed(&text)), Op::Read),
                ErrorKind::Transient,
                "{status}"
            );
        }
        for status in ["400 Bad Request", "416 Range Not Satisfiable"] {
            let text = format!("{STATUS_MARKER}{status}: ");
            assert_eq!(
                kind(generic(boxed(&text)), Op::Read),
                ErrorKind::Backend,
                "{status}"
            );
        }
        let body = format!("{RESPONSE_MARKER}<Error><Code>SlowDown</Code></Error>");
        assert_eq!(kind(generic(boxed(&body)), Op::Write), ErrorKind::Transient);

        for k in [
            io::ErrorKind::TimedOut,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::Interrupted,
        ] {
            let e = generic(Box::new(io::Error::new(k, "x")));
            assert_eq!(kind(e, Op::Read), ErrorKind::Transient, "{k:?}");
        }
        let denied = generic(Box::new(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "x",
        )));
        assert_eq!(kind(denied, Op::Write), ErrorKind::PermissionDenied);
        let through_file = || generic(Box::new(io::Error::new(io::ErrorKind::NotADirectory, "x")));
        assert_eq!(kind(through_file(), Op::Read), ErrorKind::NotFound);
        assert_eq!(kind(through_file(), Op::Write), ErrorKind::Backend);
        assert_eq!(
            kind(generic(boxed("bad xml")), Op::Read),
            ErrorKind::Backend
        );
    }

    #[test]
    fn status_parsing() {
        assert_eq!(
            http_status(&format!("x - {STATUS_MARKER}503 Service Unavailable")),
            Some(503)
        );
        assert_eq!(http_status(&format!("{STATUS_MARKER}5")), None);
        assert_eq!(http_status("no status here"), None);
    }

    #[test]
    fn chain_skips_repeats() {
        let err = object_store::Error::Generic {
            store: "x",
            source: boxed("inner"),
        };
        assert_eq!(chain(&err), "Generic x error: inner");
    }
}
