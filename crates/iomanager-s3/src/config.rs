//! Configuration: a serde struct and a builder.

use std::fmt;
use std::time::Duration;

use iomanager_core::{Error, LayoutPreset, Result, RetryPolicy};
use serde::{Deserialize, Serialize};

/// A secret string: shown as `***` by `Debug` and `Display`, so it never reaches a log line or
/// an error message. Serializes as the plain string (for configuration files).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the SDK.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum S3Credentials {
    /// An access key pair (and session token).
    Static {
        /// The access key id (not secret, shown in errors as the principal).
        access_key_id: String,
        /// The secret access key.
        secret_access_key: Secret,
        /// A session token for temporary credentials.
        #[serde(default)]
        session_token: Option<Secret>,
    },
    /// The AWS default chain (environment, profile, SSO, container and instance metadata);
    /// needs the crate feature `default-credentials`.
    #[default]
    DefaultChain,
    /// No credentials: unsigned requests, for public buckets.
    Anonymous,
}

/// Everything `S3Storage` and `S3IoManager` need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The key prefix the manager stores under (Dagster's `s3_prefix`, default `dagster`); empty
    /// for none.
    pub prefix: String,
    /// The path layout preset (Dagster's S3 op-output layout is [`LayoutPreset::DagsterS3`]).
    pub layout: LayoutPreset,
    /// The region (default `us-east-1`).
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store; `None` for AWS.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    pub path_style: bool,
    /// Credentials.
    pub credentials: S3Credentials,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Timeout of one attempt of one request, in milliseconds.
    pub attempt_timeout_ms: u64,
    /// Objects larger than this go up as multipart uploads.
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload (at least 5 MiB, S3's minimum).
    pub part_size: u64,
    /// Parts uploaded at once.
    pub upload_concurrency: usize,
    /// Partitions loaded at once by the manager.
    pub load_concurrency: usize,
    /// Whether the store honours `If-None-Match: *` and `If-Match` on writes (AWS does since
    /// 2024). When false, create-only and if-version puts answer `Unsupported` instead of
    /// overwriting.
    pub conditional_writes: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: "dagster".into(),
            layout: LayoutPreset::Iomanager,
            region: None,
            endpoint_url: None,
            path_style: false,
            credentials: S3Credentials::DefaultChain,
            retry: RetryPolicy::default(),
            connect_timeout_ms: 3_000,
            attempt_timeout_ms: 60_000,
            multipart_threshold: 16 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            upload_concurrency: 4,
            load_concurrency: iomanager_core::DEFAULT_CONCURRENCY,
            conditional_writes: true,
        }
    }
}

/// S3's smallest part (but the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

impl S3Config {
    /// A configuration for `bucket` with every default.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            ..Self::default()
        }
    }

    /// A configuration for `bucket` from the environment: `AWS_ENDPOINT_URL` (and then
    /// path-style addressing), `AWS_REGION` (or `AWS_DEFAULT_REGION`), and
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` as static credentials
    /// when set (else the default chain).
    pub fn from_env(bucket: impl Into<String>) -> Self {
        Self::from_vars(bucket, |k| std::env::var(k).ok())
    }

    /// [`S3Config::from_env`] over any source of variables (a map in tests, the environment
    /// in `from_env`).
    pub fn from_vars(bucket: impl Into<String>, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let mut c = Self::new(bucket);
        if let Some(endpoint) = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")) {
            c.endpoint_url = Some(endpoint);
            c.path_style = true;
        }
        c.region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
        if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            c.credentials = S3Credentials::Static {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            };
        }
        c
    }

    /// Sets the prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the layout preset.
    #[must_use]
    pub fn layout(mut self, layout: LayoutPreset) -> Self {
        self.layout = layout;
        self
    }

    /// Sets the region.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the endpoint of an S3-compatible store.
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Sets path-style addressing.
    #[must_use]
    pub fn path_style(mut self, on: bool) -> Self {
        self.path_style = on;
        self
    }

    /// Uses a static key pair.
    #[must_use]
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Self {
        self.credentials = S3Credentials::Static {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        };
        self
    }

    /// Sets the credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: S3Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the connect and per-attempt timeouts.
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, attempt: Duration) -> Self {
        self.connect_timeout_ms = connect.as_millis() as u64;
        self.attempt_timeout_ms = attempt.as_millis() as u64;
        self
    }

    /// Sets the multipart threshold and part size.
    #[must_use]
    pub fn multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size;
        self
    }

    /// Sets how many parts upload at once.
    #[must_use]
    pub fn upload_concurrency(mut self, n: usize) -> Self {
        self.upload_concurrency = n;
        self
    }

    /// Declares whether the store honours conditional writes.
    #[must_use]
    pub fn conditional_writes(mut self, on: bool) -> Self {
        self.conditional_writes = on;
        self
    }

    /// Checks the values, with a message that says which one is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.bucket.is_empty() {
            return Err(Error::config("S3: the bucket is empty; set `bucket`"));
        }
        if self.part_size < MIN_PART_SIZE {
            return Err(Error::config(format!(
                "S3: part_size {} is below S3's minimum of {MIN_PART_SIZE} bytes (5 MiB)",
                self.part_size
            )));
        }
        if self.multipart_threshold < self.part_size {
            return Err(Error::config(format!(
                "S3: multipart_threshold {} is below part_size {}",
                self.multipart_threshold, self.part_size
            )));
        }
        if self.upload_concurrency == 0 || self.load_concurrency == 0 {
            return Err(Error::config(
                "S3: upload_concurrency and load_concurrency must be at least 1",
            ));
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::config(format!(
                "S3: endpoint_url {url:?} must start with http:// or https://"
            )));
        }
        Ok(())
    }

    /// The endpoint for messages: the configured one, or AWS's for the region.
    pub fn endpoint_for_messages(&self) -> String {
        match &self.endpoint_url {
            Some(url) => url.clone(),
            None => format!(
                "https://s3.{}.amazonaws.com",
                self.region.as_deref().unwrap_or("us-east-1")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let c = S3Config::new("b").static_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-super-secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("super-secret"), "{debug}");
        assert!(debug.contains("***"));
        // The config file form keeps the value.
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("super-secret"));
        let back: S3Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn environment_variables_are_honoured() {
        let vars = std::collections::HashMap::from([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
            ("AWS_SESSION_TOKEN", ""),
        ]);
        let c = S3Config::from_vars("b", |k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(c.path_style, "a custom endpoint uses path-style addressing");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } = &c.credentials
        else {
            panic!("static credentials expected");
        };
        assert_eq!(
            (access_key_id.as_str(), secret_access_key.expose()),
            ("AKID", "s3cr3t-value")
        );
        assert!(session_token.is_none(), "an empty variable counts as unset");
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        // Nothing set: AWS endpoint, default chain.
        let empty = S3Config::from_vars("b", |_| None);
        assert_eq!(empty.endpoint_url, None);
        assert_eq!(empty.credentials, S3Credentials::DefaultChain);
        // AWS_DEFAULT_REGION and the S3-specific endpoint variable.
        let alt = S3Config::from_vars("b", |k| match k {
            "AWS_DEFAULT_REGION" => Some("us-west-2".into()),
            "AWS_ENDPOINT_URL_S3" => Some("http://s3.local".into()),
            "AWS_ENDPOINT_URL" => Some("http://other".into()),
            _ => None,
        });
        assert_eq!(alt.region.as_deref(), Some("us-west-2"));
        assert_eq!(alt.endpoint_url.as_deref(), Some("http://s3.local"));
    }

    #[test]
    fn validation_names_the_field() {
        assert!(
            S3Config::new("")
                .validate()
                .unwrap_err()
                .to_string()
                .contains("bucket")
        );
        let small = S3Config::new("b").multipart(16 << 20, 1 << 20);
        assert!(
            small
                .validate()
                .unwrap_err()
                .to_string()
                .contains("part_size")
        );
        let bad = S3Config::new("b").endpoint_url("localhost:9000");
        assert!(bad.validate().unwrap_err().to_string().contains("http://"));
        assert!(S3Config::new("b").validate().is_ok());
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let c: S3Config =
            serde_json::from_str(r#"{"bucket": "b", "endpoint_url": "http://x"}"#).unwrap();
        assert_eq!(c.prefix, "dagster");
        assert!(serde_json::from_str::<S3Config>(r#"{"bucket": "b", "bukket": 1}"#).is_err());
    }
}
