//! The one place S3 errors become [`Error`]s.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use iomanager_core::{Error, Location};

/// What a failed call was doing, for the few cases where that changes the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Reading, heading, listing or deleting.
    Other,
    /// A conditional write (create-only or if-version).
    ConditionalWrite,
}

impl Call {
    /// The kind of call a write with `mode` is.
    pub(crate) fn for_mode(mode: &iomanager_core::PutMode) -> Self {
        if matches!(mode, iomanager_core::PutMode::Overwrite) {
            Call::Other
        } else {
            Call::ConditionalWrite
        }
    }
}

/// Maps an SDK error for the object at `uri` (on `endpoint`) into [`Error`]:
/// 404/`NoSuchKey` → not found; 412/409 on a conditional write → precondition failed;
/// 403 → permission denied; 429/`SlowDown`/5xx/timeouts/connection failures → transient
/// (retried); everything else → a permanent backend error. Never includes credentials.
pub(crate) fn map_sdk_error<E>(err: SdkError<E>, uri: &str, endpoint: &str, call: Call) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("").to_owned();
            let message = service.err().message().unwrap_or("").to_owned();
            let detail = if message.is_empty() {
                format!("HTTP {status} {code}")
            } else {
                format!("HTTP {status} {code}: {message}")
            };
            map_status(status, &code, detail, uri, call, Box::new(err))
        }
        SdkError::TimeoutError(_) => Error::transient(
            uri,
            format!("the request to {endpoint} timed out"),
            Some(Box::new(err)),
        ),
        SdkError::DispatchFailure(failure) => {
            let cause = failure
                .as_connector_error()
                .map(|c| {
                    let kind = if c.is_timeout() {
                        "timed out"
                    } else if c.is_io() {
                        "connection failed"
                    } else {
                        "could not send"
                    };
                    format!("{kind}: {}", source_chain(c))
                })
                .unwrap_or_else(|| source_chain(&err));
            Error::transient(
                uri,
                format!("cannot reach the S3 endpoint {endpoint} ({cause})"),
                Some(Box::new(err)),
            )
        }
        SdkError::ResponseError(_) => Error::transient(
            uri,
            format!(
                "the response from {endpoint} was cut off or unreadable ({})",
                source_chain(&err)
            ),
            Some(Box::new(err)),
        ),
        _ => Error::backend(
            uri,
            format!("the S3 request could not be built: {}", source_chain(&err)),
            Some(Box::new(err)),
        ),
    }
}

/// Maps an HTTP status and S3 error code.
pub(crate) fn map_status(
    status: u16,
    code: &str,
    detail: String,
    uri: &str,
    call: Call,
    source: iomanager_core::BoxError,
) -> Error {
    let at = || Box::new(Location::uri(uri));
    match (status, code) {
        (404, "NoSuchBucket") => Error::Backend {
            at: at(),
            reason: format!("the bucket does not exist ({detail}); create it or fix `bucket`"),
            source: Some(source),
        },
        // If-Match on a missing key answers 404: the expected version is not there.
        (404, _) if call == Call::ConditionalWrite => Error::PreconditionFailed {
            at: at(),
            reason: format!("the object to replace does not exist ({detail})"),
        },
        (404, _) | (_, "NoSuchKey") => Error::NotFound {
            at: at(),
            existing: None,
        },
        (412, _) | (_, "PreconditionFailed") => Error::PreconditionFailed {
            at: at(),
            reason: format!("the object changed or exists ({detail})"),
        },
        (409, _) if call == Call::ConditionalWrite => Error::PreconditionFailed {
            at: at(),
            reason: format!("a concurrent conditional write won ({detail})"),
        },
        (403, _) | (_, "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            Error::PermissionDenied {
                at: at(),
                reason: format!("{detail}; check the access key, the secret and the bucket policy"),
                source: Some(source),
            }
        }
        (501, _) | (_, "NotImplemented") if call == Call::ConditionalWrite => Error::Unsupported {
            backend: "s3".into(),
            what: format!(
                "conditional writes on this store ({detail}); set conditional_writes = false"
            ),
        },
        (429 | 500..=599, _)
        | (
            _,
            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable" | "Throttling",
        ) => Error::Transient {
            at: at(),
            reason: detail,
            source: Some(source),
        },
        _ => Error::Backend {
            at: at(),
            reason: detail,
            source: Some(source),
        },
    }
}

/// The error and its causes on one line.
pub(crate) fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if parts.last() != Some(&text) {
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

    fn src() -> iomanager_core::BoxError {
        "x".into()
    }

    #[test]
    fn statuses_map_to_kinds() {
        let k = |status, code: &str, call| {
            map_status(status, code, "d".into(), "s3://b/k", call, src()).kind()
        };
        assert_eq!(k(404, "NoSuchKey", Call::Other), ErrorKind::NotFound);
        assert_eq!(k(404, "NotFound", Call::Other), ErrorKind::NotFound);
        assert_eq!(k(404, "NoSuchBucket", Call::Other), ErrorKind::Backend);
        assert_eq!(
            k(404, "NoSuchKey", Call::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            k(403, "AccessDenied", Call::Other),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            k(400, "InvalidAccessKeyId", Call::Other),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            k(412, "PreconditionFailed", Call::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            k(409, "ConditionalRequestConflict", Call::ConditionalWrite),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(k(409, "BucketNotEmpty", Call::Other), ErrorKind::Backend);
        assert_eq!(
            k(501, "NotImplemented", Call::ConditionalWrite),
            ErrorKind::Unsupported
        );
        for (s, c) in [
            (429, ""),
            (500, "InternalError"),
            (503, "SlowDown"),
            (400, "RequestTimeout"),
        ] {
            assert_eq!(k(s, c, Call::Other), ErrorKind::Transient, "{s} {c}");
        }
        assert_eq!(k(400, "InvalidArgument", Call::Other), ErrorKind::Backend);
    }

    #[test]
    fn missing_bucket_says_so() {
        let e = map_status(
            404,
            "NoSuchBucket",
            "HTTP 404".into(),
            "s3://nope/k",
            Call::Other,
            src(),
        );
        assert!(e.to_string().contains("bucket does not exist"), "{e}");
    }
}
