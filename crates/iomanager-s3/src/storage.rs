//! [`S3Storage`]: bytes in a bucket.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use iomanager_core::storage::check_put;
use iomanager_core::{
    ByteStream, Capabilities, Error, ErrorKind, ObjectMeta, ObjectPath, PutMode, PutOptions,
    PutResult, Result, Storage,
};

use crate::config::{S3Config, S3Credentials};
use crate::error::{Call, map_sdk_error, source_chain};

/// Adds the headers of a put mode to a request that writes an object (`PutObject` or
/// `CompleteMultipartUpload`, which have the same conditional-write methods but no common
/// trait): `If-None-Match: *` for create-only, `If-Match: <ETag>` for if-version.
macro_rules! with_conditions {
    ($req:expr, $mode:expr) => {
        match $mode {
            PutMode::Overwrite => $req,
            PutMode::CreateOnly => $req.if_none_match("*"),
            PutMode::IfVersion(etag) => $req.if_match(etag),
        }
    };
}

struct Inner {
    client: Client,
    config: S3Config,
    endpoint: String,
}

/// Bytes in an S3 bucket, on `aws-sdk-s3`. Cheap to clone.
///
/// Paths map to keys as they are (`a/b` → `s3://bucket/a/b`); the manager adds the prefix.
/// Capabilities: create-only (`If-None-Match: *`) and if-version (`If-Match: <ETag>`) when
/// [`S3Config::conditional_writes`] is on; version tokens are ETags.
///
/// Retries: whole calls are retried by [`iomanager_core::RetryStorage`], which
/// [`crate::S3IoManager`] puts around this storage. A streamed put cannot be replayed from
/// outside, so `put_stream` retries its own steps with [`S3Config::retry`]: the single PUT of an
/// object under the threshold, and the create, every part, the completion and the abort of a
/// multipart upload. An upload that a create whose answer was lost may have started is found and
/// aborted.
#[derive(Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.inner.config.bucket)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Builds the client and checks the connection once — a list of at most one key under the
    /// prefix, as Dagster does — failing with an error that names the bucket, the endpoint and
    /// the cause: unreachable endpoint, rejected credentials, or missing bucket.
    pub async fn connect(config: S3Config) -> Result<Self> {
        let storage = Self::new(config).await?;
        storage.check().await?;
        Ok(storage)
    }

    /// Builds the client without checking the connection.
    pub async fn new(config: S3Config) -> Result<Self> {
        config.validate()?;
        let endpoint = config.endpoint_for_messages();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(
                config.region.clone().unwrap_or_else(|| "us-east-1".into()),
            ))
            .force_path_style(config.path_style)
            // iomanager retries (counting them into receipts); the SDK's own retries are off.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                    .operation_attempt_timeout(Duration::from_millis(config.attempt_timeout_ms))
                    .build(),
            );
        if let Some(url) = &config.endpoint_url {
            // Third-party stores reject the SDK's default request checksums; send them only
            // when an operation requires them.
            b = b
                .endpoint_url(url)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        b = match &config.credentials {
            S3Credentials::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => b.credentials_provider(aws_credential_types::Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "iomanager-static",
            )),
            S3Credentials::Anonymous => b.allow_no_auth(),
            S3Credentials::DefaultChain => default_chain(b).await?,
        };
        let client = Client::from_conf(b.build());
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                endpoint,
            }),
        })
    }

    /// The configuration (secrets stay hidden in its `Debug`).
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.config.bucket
    }

    /// The SDK client, for what this crate does not wrap.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn key(path: &ObjectPath) -> &str {
        path.as_str()
    }

    fn err<E>(&self, e: aws_sdk_s3::error::SdkError<E>, path: &ObjectPath, call: Call) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        map_sdk_error(e, &self.uri(path), &self.inner.endpoint, call)
    }

    /// The connection check: a list of at most one key under the prefix, retried like any other
    /// call, so a throttled or dropped first request does not fail the connection.
    async fn check(&self) -> Result<()> {
        let c = &self.inner.config;
        match c.retry.run(|| self.list_one()).await {
            Ok(_) => Ok(()),
            Err(base) => {
                let what = match base.kind() {
                    ErrorKind::Transient => "the endpoint is unreachable",
                    ErrorKind::PermissionDenied => "the credentials were rejected",
                    ErrorKind::NotFound => "the bucket does not exist",
                    _ if base.to_string().contains("bucket does not exist") => {
                        "the bucket does not exist"
                    }
                    _ => "the connection check failed",
                };
                Err(Error::config(format!(
                    "cannot use S3 bucket `{}` at {}: {what}: {base}",
                    c.bucket, self.inner.endpoint
                )))
            }
        }
    }

    async fn list_one(&self) -> Result<()> {
        let c = &self.inner.config;
        self.inner
            .client
            .list_objects_v2()
            .bucket(&c.bucket)
            .prefix(&c.prefix)
            .max_keys(1)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err(e, &ObjectPath::root(), Call::Other))
    }

    async fn put_single(
        &self,
        path: &ObjectPath,
        body: Bytes,
        mode: &PutMode,
    ) -> Result<PutResult> {
        let len = body.len() as u64;
        let req = self
            .inner
            .client
            .put_object()
            .bucket(self.bucket())
            .key(Self::key(path))
            .content_length(len as i64)
            .body(SdkStream::from(body));
        let out = with_conditions!(req, mode)
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::for_mode(mode)))?;
        Ok(PutResult {
            version: out.e_tag().map(str::to_owned),
            bytes: len,
            retries: 0,
        })
    }

    /// Uploads `first` (already over the threshold) and the rest of `stream` as a multipart
    /// upload with at most `upload_concurrency` parts in flight.
    ///
    /// A streamed put cannot be replayed by [`iomanager_core::RetryStorage`], so its steps are
    /// retried here, each on its own, with [`S3Config::retry`]: the create, every part (its bytes
    /// are kept until it is stored, so a retry never needs the stream again) and the completion;
    /// those retries are counted in [`PutResult::retries`]. A failure that remains aborts the
    /// upload (the abort is retried too), so no incomplete upload is left behind.
    async fn put_multipart(
        &self,
        path: &ObjectPath,
        first: Pending,
        stream: ByteStream,
        mode: &PutMode,
    ) -> Result<PutResult> {
        let policy = &self.inner.config.retry;
        // The uploads of this key already in progress, so that an upload started by a create
        // whose answer was lost can be told apart from them (see `abort_lost_uploads`).
        let before = policy.run(|| self.list_uploads(path)).await;
        let lost = AtomicU32::new(0);
        let created = policy.run(|| self.create_upload(path, &lost)).await;
        let lost = lost.into_inner();
        if lost > 0 {
            let before = before.as_ref().ok().map(|(ids, _)| ids.as_slice());
            let ours = created.as_ref().ok().map(|(id, _)| id.as_str());
            self.abort_lost_uploads(path, before, ours, lost).await;
        }
        let (upload_id, create_retries) = created?;
        let list_retries = before.map_or(0, |(_, r)| r);
        match self
            .upload_parts(path, &upload_id, first, stream, mode)
            .await
        {
            Ok(mut res) => {
                res.retries += list_retries + create_retries;
                Ok(res)
            }
            Err(e) => {
                if let Err(abort_err) = policy.run(|| self.abort_upload(path, &upload_id)).await {
                    tracing::warn!(
                        uri = %self.uri(path),
                        upload_id,
                        error = %abort_err,
                        "could not abort a failed multipart upload; a lifecycle rule \
                         (AbortIncompleteMultipartUpload) removes it"
                    );
                }
                Err(e)
            }
        }
    }

    /// Starts a multipart upload and returns its id. Failed attempts whose answer may have been
    /// lost after the store acted on them (see [`answer_may_be_lost`]) are counted in `lost`.
    async fn create_upload(&self, path: &ObjectPath, lost: &AtomicU32) -> Result<String> {
        let created = self
            .inner
            .client
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(Self::key(path))
            .send()
            .await
            .map_err(|e| {
                if answer_may_be_lost(&e) {
                    lost.fetch_add(1, Ordering::SeqCst);
                }
                self.err(e, path, Call::Other)
            })?;
        created.upload_id().map(str::to_owned).ok_or_else(|| {
            Error::backend(
                self.uri(path),
                "the store returned no multipart upload id",
                None,
            )
        })
    }

    /// The ids of the multipart uploads of exactly `path` in progress (the first 1000).
    async fn list_uploads(&self, path: &ObjectPath) -> Result<Vec<String>> {
        let key = Self::key(path);
        let listed = self
            .inner
            .client
            .list_multipart_uploads()
            .bucket(self.bucket())
            .prefix(key)
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::Other))?;
        Ok(listed
            .uploads()
            .iter()
            .filter(|u| u.key() == Some(key))
            .filter_map(|u| u.upload_id().map(str::to_owned))
            .collect())
    }

    /// Aborts the uploads that `lost` create attempts whose answer was lost may have started:
    /// those of this key that are neither in `before` nor `ours`. More new uploads than lost
    /// answers mean another writer is uploading the same key right now; then nothing is aborted
    /// (its upload must not break), and a warning names the key.
    async fn abort_lost_uploads(
        &self,
        path: &ObjectPath,
        before: Option<&[String]>,
        ours: Option<&str>,
        lost: u32,
    ) {
        const LEFT: &str = "a lifecycle rule (AbortIncompleteMultipartUpload) removes it";
        let uri = self.uri(path);
        let policy = &self.inner.config.retry;
        let listed = match before {
            Some(before) => policy
                .run(|| self.list_uploads(path))
                .await
                .map(|(now, _)| {
                    now.into_iter()
                        .filter(|id| Some(id.as_str()) != ours && !before.contains(id))
                        .collect::<Vec<_>>()
                }),
            None => Err(Error::backend(
                uri.clone(),
                "the uploads in progress before the create could not be listed",
                None,
            )),
        };
        let strays = match listed {
            Ok(strays) if strays.len() <= lost as usize => strays,
            Ok(strays) => {
                tracing::warn!(
                    %uri,
                    new_uploads = strays.len(),
                    lost,
                    "another writer is uploading this key too, so the multipart upload a lost \
                     create answer started cannot be told apart and is left; {LEFT}"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(
                    %uri,
                    error = %e,
                    "a create whose answer was lost may have started a multipart upload that \
                     cannot be found; {LEFT}"
                );
                return;
            }
        };
        for id in strays {
            if let Err(e) = policy.run(|| self.abort_upload(path, &id)).await {
                tracing::warn!(
                    %uri,
                    upload_id = %id,
                    error = %e,
                    "could not abort a multipart upload started by a create whose answer was \
                     lost; {LEFT}"
                );
            }
        }
    }

    /// Aborts a multipart upload. One that is already gone (an earlier attempt whose answer was
    /// lost aborted it) counts as aborted.
    async fn abort_upload(&self, path: &ObjectPath, upload_id: &str) -> Result<()> {
        let aborted = self
            .inner
            .client
            .abort_multipart_upload()
            .bucket(self.bucket())
            .key(Self::key(path))
            .upload_id(upload_id)
            .send()
            .await;
        match aborted {
            Ok(_) => Ok(()),
            Err(e) => match self.err(e, path, Call::Other) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Uploads the parts (each retried on its own) and completes the upload (retried too).
    async fn upload_parts(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        mut buf: Pending,
        mut stream: ByteStream,
        mode: &PutMode,
    ) -> Result<PutResult> {
        let c = &self.inner.config;
        let policy = &c.retry;
        let part_size = c.part_size as usize;
        let mut in_flight = FuturesOrdered::new();
        let mut parts: Vec<CompletedPart> = Vec::new();
        let mut number = 0i32;
        let mut total = 0u64;
        let mut retries = 0u32;
        let mut done = false;
        loop {
            // Fill the buffer to a part, or to the end of the stream.
            while !done && buf.len() < part_size {
                match stream.next().await {
                    Some(chunk) => buf.push(chunk?),
                    None => done = true,
                }
            }
            if !buf.is_empty() {
                let body = buf.take(part_size);
                number += 1;
                total += body.len() as u64;
                in_flight.push_back(
                    policy.run(move || self.upload_part(path, upload_id, number, body.clone())),
                );
            }
            // Keep at most `upload_concurrency` parts in flight.
            while in_flight.len() >= c.upload_concurrency
                || (done && buf.is_empty() && !in_flight.is_empty())
            {
                if let Some(part) = in_flight.next().await {
                    let (part, part_retries) = part?;
                    retries += part_retries;
                    parts.push(part);
                }
            }
            if done && buf.is_empty() {
                break;
            }
        }
        let (version, complete_retries) = policy
            .run(|| self.complete_upload(path, upload_id, &parts, mode))
            .await?;
        Ok(PutResult {
            version,
            bytes: total,
            retries: retries + complete_retries,
        })
    }

    /// Completes a multipart upload with `parts`, honouring `mode`; the new object's ETag.
    /// Retrying a completion whose answer was lost completes the same upload again, which moto
    /// answers with success (the object is the completed upload); a store that answers
    /// `NoSuchUpload` instead fails the put although the object was written in full.
    async fn complete_upload(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        parts: &[CompletedPart],
        mode: &PutMode,
    ) -> Result<Option<String>> {
        let req = self
            .inner
            .client
            .complete_multipart_upload()
            .bucket(self.bucket())
            .key(Self::key(path))
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.to_vec()))
                    .build(),
            );
        let out = with_conditions!(req, mode)
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::for_mode(mode)))?;
        Ok(out.e_tag().map(str::to_owned))
    }

    async fn upload_part(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<CompletedPart> {
        let len = body.len() as i64;
        let out = self
            .inner
            .client
            .upload_part()
            .bucket(self.bucket())
            .key(Self::key(path))
            .upload_id(upload_id)
            .part_number(number)
            .content_length(len)
            .body(SdkStream::from(body))
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::Other))?;
        Ok(CompletedPart::builder()
            .set_e_tag(out.e_tag().map(str::to_owned))
            .part_number(number)
            .build())
    }

    /// A whole-object GET, its body not read yet.
    async fn get_object(
        &self,
        path: &ObjectPath,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.inner
            .client
            .get_object()
            .bucket(self.bucket())
            .key(Self::key(path))
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::Other))
    }

    /// Reads a response body into one buffer of `size_hint` bytes.
    async fn read_body(
        &self,
        path: &ObjectPath,
        body: SdkStream,
        size_hint: usize,
    ) -> Result<Bytes> {
        let mut stream = self.stream_body(path, body);
        let mut buf = BytesMut::with_capacity(size_hint);
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    fn stream_body(&self, path: &ObjectPath, body: SdkStream) -> ByteStream {
        let uri = self.uri(path);
        let endpoint = self.inner.endpoint.clone();
        futures::stream::try_unfold(body, move |mut body| {
            let (uri, endpoint) = (uri.clone(), endpoint.clone());
            async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, body))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(Error::transient(
                        uri,
                        format!(
                            "the download from {endpoint} broke off: {}",
                            source_chain(&e)
                        ),
                        Some(Box::new(e)),
                    )),
                }
            }
        })
        .boxed()
    }
}

/// Chunks of a streamed put waiting to become request bodies. A part is cut out of a large
/// chunk without copying; only a part that spans several small chunks is copied together.
#[derive(Debug, Default)]
struct Pending {
    chunks: std::collections::VecDeque<Bytes>,
    len: usize,
}

impl Pending {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next `n` bytes (fewer at the end).
    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len);
        self.len -= n;
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= n
        {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let need = n - out.len();
            if front.len() <= need {
                out.extend_from_slice(front);
                self.chunks.pop_front();
            } else {
                out.extend_from_slice(&front.split_to(need));
            }
        }
        out.freeze()
    }
}

#[cfg(feature = "default-credentials")]
async fn default_chain(b: aws_sdk_s3::config::Builder) -> Result<aws_sdk_s3::config::Builder> {
    let loaded = aws_config::defaults(BehaviorVersion::latest()).load().await;
    match loaded.credentials_provider() {
        Some(p) => Ok(b.credentials_provider(p)),
        None => Err(Error::config(
            "S3: the default credential chain found no credentials provider",
        )),
    }
}

#[cfg(not(feature = "default-credentials"))]
async fn default_chain(_: aws_sdk_s3::config::Builder) -> Result<aws_sdk_s3::config::Builder> {
    Err(Error::config(
        "S3: credentials = default_chain needs the iomanager-s3 feature `default-credentials`; \
         or set static credentials (S3Config::static_credentials, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY with S3Config::from_env)",
    ))
}

#[async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &str {
        "s3"
    }

    fn capabilities(&self) -> Capabilities {
        let on = self.inner.config.conditional_writes;
        Capabilities {
            create_only: on,
            if_version: on,
        }
    }

    fn uri(&self, path: &ObjectPath) -> String {
        if path.is_root() {
            format!("s3://{}", self.bucket())
        } else {
            format!("s3://{}/{}", self.bucket(), path)
        }
    }

    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        check_put(self.name(), self.capabilities(), path, &opts.mode)?;
        if bytes.len() as u64 > self.inner.config.multipart_threshold {
            let chunk: ByteStream = futures::stream::once(async move { Ok(bytes) }).boxed();
            return self.put_stream(path, chunk, opts).await;
        }
        self.put_single(path, bytes, &opts.mode).await
    }

    async fn put_stream(
        &self,
        path: &ObjectPath,
        mut stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check_put(self.name(), self.capabilities(), path, &opts.mode)?;
        // Buffer up to the threshold: a small object is one PUT, a large one goes multipart.
        let threshold = self.inner.config.multipart_threshold as usize;
        let mut buf = Pending::default();
        while buf.len() <= threshold {
            match stream.next().await {
                Some(chunk) => buf.push(chunk?),
                None => {
                    // The whole object is in memory, so a failed PUT can be sent again; a
                    // streamed put is not replayed by RetryStorage, so it is retried here.
                    let body = buf.take(buf.len());
                    let (mut res, retries) = self
                        .inner
                        .config
                        .retry
                        .run(|| self.put_single(path, body.clone(), &opts.mode))
                        .await?;
                    res.retries += retries;
                    return Ok(res);
                }
            }
        }
        self.put_multipart(path, buf, stream, &opts.mode).await
    }

    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        let out = self.get_object(path).await?;
        let size = out.content_length.unwrap_or(0).max(0) as usize;
        self.read_body(path, out.body, size).await
    }

    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        if range.end <= range.start {
            self.head(path).await?;
            return Ok(Bytes::new());
        }
        let res = self
            .inner
            .client
            .get_object()
            .bucket(self.bucket())
            .key(Self::key(path))
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                // A range past the end is "416 InvalidRange": an empty read, as on every storage.
                let invalid_range = e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
                if invalid_range {
                    return Ok(Bytes::new());
                }
                return Err(self.err(e, path, Call::Other));
            }
        };
        // The answer's length, not the request's: a range past the end comes back clamped.
        let size = out.content_length.unwrap_or(0).max(0) as usize;
        self.read_body(path, out.body, size).await
    }

    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        let out = self.get_object(path).await?;
        Ok(self.stream_body(path, out.body))
    }

    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        let out = self
            .inner
            .client
            .head_object()
            .bucket(self.bucket())
            .key(Self::key(path))
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::Other))?;
        Ok(ObjectMeta {
            path: path.clone(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            modified: out.last_modified().and_then(to_chrono),
            version: out.e_tag().map(str::to_owned),
        })
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.inner
            .client
            .delete_object()
            .bucket(self.bucket())
            .key(Self::key(path))
            .send()
            .await
            .map_err(|e| self.err(e, path, Call::Other))?;
        Ok(())
    }

    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        let key_prefix = if prefix.is_root() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_size = (limit - out.len()).min(1000) as i32;
            let page = self
                .inner
                .client
                .list_objects_v2()
                .bucket(self.bucket())
                .prefix(&key_prefix)
                .max_keys(page_size.max(1))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.err(e, prefix, Call::Other))?;
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                let Ok(path) = ObjectPath::parse(key) else {
                    tracing::debug!(key, "skipping a key that is not an iomanager path");
                    continue;
                };
                out.push(ObjectMeta {
                    path,
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    modified: obj.last_modified().and_then(to_chrono),
                    version: obj.e_tag().map(str::to_owned),
                });
                if out.len() >= limit {
                    break;
                }
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || out.len() >= limit {
                break;
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Whether a failed call may still have taken effect on the store: anything but an error answer
/// from the store itself (a cut-off answer, a timeout, a connection lost after sending) leaves
/// that open.
fn answer_may_be_lost<E, R>(err: &SdkError<E, R>) -> bool {
    !matches!(
        err,
        SdkError::ServiceError(_) | SdkError::ConstructionFailure(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_without_copying_large_chunks() {
        let big = Bytes::from(vec![1u8; 100]);
        let mut p = Pending::default();
        p.push(big.clone());
        let part = p.take(40);
        assert_eq!(part.len(), 40);
        assert_eq!(
            part.as_ptr(),
            big.as_ptr(),
            "a slice of the chunk, not a copy"
        );
        assert_eq!(p.len(), 60);
    }

    #[test]
    fn small_chunks_are_joined_in_order() {
        let mut p = Pending::default();
        for i in 0..10u8 {
            p.push(Bytes::from(vec![i; 3]));
        }
        assert_eq!(&p.take(7)[..], &[0, 0, 0, 1, 1, 1, 2]);
        let rest: Vec<u8> = (2..10u8).flat_map(|i| vec![i; 3]).skip(1).collect();
        assert_eq!(&p.take(100)[..], &rest[..]);
        assert!(p.is_empty());
        assert!(p.take(5).is_empty());
    }
}
