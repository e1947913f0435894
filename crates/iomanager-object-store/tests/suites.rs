//! `ObjectStoreStorage` runs the testkit's storage and storage-manager suites over
//! `object_store`'s `InMemory`, its `LocalFileSystem` on a temporary directory and (feature
//! `aws`) its `AmazonS3` client against moto, which `cargo xtask test` starts on 127.0.0.1 and
//! names in `IOMANAGER_TEST_S3_ENDPOINT`. Without that variable the S3 tests fail; they are
//! never skipped.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{
    ByteStream, Capabilities, ErrorKind, ObjectPath, PutMode, PutOptions, Result, Storage,
};
use iomanager_object_store::ObjectStoreStorage;
use iomanager_testkit::faults::Guarded;
use iomanager_testkit::{storage_manager_suite, storage_suite};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

const BOTH: Capabilities = Capabilities {
    create_only: true,
    if_version: true,
};

fn p(path: &str) -> ObjectPath {
    ObjectPath::parse(path).unwrap()
}

// ---------------------------------------------------------------------------------------------
// InMemory
// ---------------------------------------------------------------------------------------------

fn memory() -> ObjectStoreStorage {
    ObjectStoreStorage::new(Arc::new(InMemory::new()), "memory:///")
        .with_capabilities(BOTH)
        // Small parts so the suites' large object goes up as many parts.
        .with_multipart(1024 * 1024, 3)
}

storage_suite!(in_memory, || async {
    Arc::new(memory()) as Arc<dyn Storage>
});
storage_manager_suite!(manager_over_in_memory, || async {
    Arc::new(memory()) as Arc<dyn Storage>
});

// ---------------------------------------------------------------------------------------------
// LocalFileSystem
// ---------------------------------------------------------------------------------------------

/// An `ObjectStoreStorage` over a `LocalFileSystem` that owns its temporary directory, so the
/// directory lives exactly as long as the test's storage.
#[derive(Debug)]
struct TempFs {
    storage: ObjectStoreStorage,
    dir: tempfile::TempDir,
}

impl TempFs {
    fn new(capabilities: Capabilities) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let uri = format!("file://{}", dir.path().display());
        let storage = ObjectStoreStorage::new(Arc::new(store), uri)
            .with_capabilities(capabilities)
            .with_multipart(1024 * 1024, 2);
        Self { storage, dir }
    }

    /// Every file under the directory, relative to it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

impl std::ops::Deref for TempFs {
    type Target = ObjectStoreStorage;
    fn deref(&self) -> &ObjectStoreStorage {
        &self.storage
    }
}

impl TempFs {
    /// The storage for the suites, owning the directory.
    fn shared(capabilities: Capabilities) -> Arc<dyn Storage> {
        let TempFs { storage, dir } = TempFs::new(capabilities);
        Arc::new(Guarded::new(Arc::new(storage), dir))
    }
}

/// `LocalFileSystem` honours `PutMode::Create` (hard link) but not `PutMode::Update`.
const LOCAL_CAPS: Capabilities = Capabilities {
    create_only: true,
    if_version: false,
};

storage_suite!(local_file_system, || async { TempFs::shared(LOCAL_CAPS) });
storage_manager_suite!(manager_over_local_file_system, || async {
    TempFs::shared(LOCAL_CAPS)
});

/// A stream that yields `n` chunks of `size` bytes and then fails.
fn failing_stream(n: usize, size: usize) -> ByteStream {
    let mut chunks: Vec<Result<Bytes>> = (0..n)
        .map(|i| Ok(Bytes::from(vec![i as u8; size])))
        .collect();
    chunks.push(Err(iomanager_core::Error::backend(
        "producer",
        "the producer failed",
        None,
    )));
    futures::stream::iter(chunks).boxed()
}

#[tokio::test]
async fn local_file_system_refuses_if_version_even_when_declared() {
    // Declaring a mode the store cannot honour must never turn into an overwrite.
    let fs = TempFs::new(BOTH);
    let path = p("cas");
    let v1 = fs
        .put(&path, Bytes::from_static(b"old"), &PutOptions::default())
        .await
        .unwrap()
        .version
        .expect("LocalFileSystem reports an ETag");
    let opts = PutOptions::with_mode(PutMode::IfVersion(v1));
    let err = fs
        .put(&path, Bytes::from_static(b"new"), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("Update"), "{err}");
    let err = fs
        .put_stream(
            &path,
            futures::stream::iter([Ok(Bytes::from_static(b"new"))]).boxed(),
            &opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert_eq!(fs.get(&path).await.unwrap(), Bytes::from_static(b"old"));
    assert_eq!(fs.files(), ["cas"]);
}

#[tokio::test]
async fn local_file_system_failed_stream_leaves_nothing() {
    let fs = TempFs::new(LOCAL_CAPS);
    let path = p("dir/broken");
    // 3 MiB before the failure: past the 1 MiB part size, so a multipart upload was started.
    let err = fs
        .put_stream(
            &path,
            failing_stream(3, 1024 * 1024),
            &PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the producer failed"), "{err}");
    assert_eq!(
        fs.head(&path).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        fs.files().is_empty(),
        "a staging file was left: {:?}",
        fs.files()
    );
}

#[tokio::test]
async fn local_file_system_keys_are_file_names_verbatim() {
    let fs = TempFs::new(LOCAL_CAPS);
    let path = p("a%2Fb/%2E%2E/x y");
    fs.put(&path, Bytes::from_static(b"1"), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(fs.files(), ["a%2Fb/%2E%2E/x y"]);
    assert_eq!(
        fs.uri(&path),
        format!("file://{}/a%2Fb/%2E%2E/x y", fs.dir.path().display())
    );
}

#[tokio::test]
async fn in_memory_failed_stream_leaves_nothing_and_old_value_stays() {
    let s = memory();
    let path = p("broken");
    s.put(&path, Bytes::from_static(b"old"), &PutOptions::default())
        .await
        .unwrap();
    let err = s
        .put_stream(&path, failing_stream(4, 512 * 1024), &PutOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the producer failed"), "{err}");
    assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"old"));
}

#[tokio::test]
async fn in_memory_conditional_streamed_puts_are_honoured() {
    let s = memory();
    let path = p("big");
    let big = || {
        futures::stream::iter((0..5).map(|i| Ok(Bytes::from(vec![i as u8; 512 * 1024])))).boxed()
    };
    let create = PutOptions::with_mode(PutMode::CreateOnly);
    let first = s.put_stream(&path, big(), &create).await.unwrap();
    assert_eq!(first.bytes, 5 * 512 * 1024);
    let err = s.put_stream(&path, big(), &create).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    let cas = PutOptions::with_mode(PutMode::IfVersion(first.version.unwrap()));
    s.put_stream(&path, big(), &cas).await.unwrap();
    let err = s.put_stream(&path, big(), &cas).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
}

#[tokio::test]
async fn undeclared_modes_are_unsupported_before_any_write() {
    let s = ObjectStoreStorage::new(Arc::new(InMemory::new()), "memory:///");
    assert_eq!(s.capabilities(), Capabilities::default());
    let err = s
        .put(
            &p("x"),
            Bytes::from_static(b"1"),
            &PutOptions::with_mode(PutMode::CreateOnly),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(!s.exists(&p("x")).await.unwrap());
}

#[tokio::test]
async fn keys_that_are_not_iomanager_paths_are_skipped_in_listings() {
    let store = Arc::new(InMemory::new());
    let s = ObjectStoreStorage::new(store.clone(), "memory:///");
    // Written by another tool: a `\` and a bad escape are not valid iomanager segments.
    for key in ["d/ok", "d/back\\slash", "d/bad%zz"] {
        object_store::ObjectStore::put_opts(
            store.as_ref(),
            &object_store::path::Path::parse(key).unwrap(),
            Bytes::from_static(b"1").into(),
            Default::default(),
        )
        .await
        .unwrap();
    }
    let listed: Vec<String> = s
        .list(&p("d"), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    assert_eq!(listed, ["d/ok"]);
}

// ---------------------------------------------------------------------------------------------
// Amazon S3 (moto), and HTTP failures against a local fault server
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "aws")]
mod s3 {
    use std::io::{Read, Write};
    use std::time::Duration;

    use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
    use object_store::{BackoffConfig, RetryConfig};

    use super::*;

    fn endpoint() -> String {
        std::env::var("IOMANAGER_TEST_S3_ENDPOINT").expect(
            "IOMANAGER_TEST_S3_ENDPOINT is not set: run the tests with `cargo xtask test`, which \
             starts moto on 127.0.0.1 and sets it",
        )
    }

    fn unique(prefix: &str) -> String {
        let n: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let c = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("{prefix}-{:x}-{c}", n & 0xffff_ffff_ffff)
    }

    fn retry(max_retries: usize) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(200),
                base: 2.0,
            },
            max_retries,
            retry_timeout: Duration::from_secs(20),
        }
    }

    /// object_store's S3 client for `bucket` at `endpoint`: static keys (so no credential
    /// provider probes instance metadata), plain HTTP, path-style requests.
    fn builder(endpoint: &str, bucket: &str) -> AmazonS3Builder {
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_bucket_name(bucket)
            .with_retry(retry(2))
    }

    /// The iomanager S3 client, used only to make and inspect buckets (object_store cannot
    /// create buckets).
    async fn admin(bucket: &str) -> iomanager_s3::S3Storage {
        let config = iomanager_s3::S3Config::new(bucket)
            .endpoint_url(endpoint())
            .region("us-east-1")
            .path_style(true)
            .static_credentials("testing", "testing")
            .prefix("");
        iomanager_s3::S3Storage::new(config).await.unwrap()
    }

    /// A new, empty bucket and an `ObjectStoreStorage` over it.
    async fn fresh(conditional: S3ConditionalPut) -> (ObjectStoreStorage, iomanager_s3::S3Storage) {
        let bucket = unique("os");
        let admin = admin(&bucket).await;
        admin
            .client()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let store = builder(&endpoint(), &bucket)
            .with_conditional_put(conditional)
            .build()
            .unwrap();
        let storage = ObjectStoreStorage::new(Arc::new(store), format!("s3://{bucket}"))
            .with_capabilities(BOTH)
            // S3's smallest part, so the suites' 12 MiB object goes up as 3 parts.
            .with_multipart(5 * 1024 * 1024, 4);
        (storage, admin)
    }

    storage_suite!(amazon_s3, || async {
        Arc::new(fresh(S3ConditionalPut::ETagMatch).await.0) as Arc<dyn Storage>
    });
    storage_manager_suite!(manager_over_amazon_s3, || async {
        Arc::new(fresh(S3ConditionalPut::ETagMatch).await.0) as Arc<dyn Storage>
    });

    async fn open_uploads(admin: &iomanager_s3::S3Storage) -> usize {
        admin
            .client()
            .list_multipart_uploads()
            .bucket(admin.bucket())
            .send()
            .await
            .unwrap()
            .uploads()
            .len()
    }

    #[tokio::test]
    async fn large_streams_go_up_as_multipart_uploads() {
        let (s, admin) = fresh(S3ConditionalPut::ETagMatch).await;
        let path = p("big/object");
        let chunks = (0..12).map(|i| Ok(Bytes::from(vec![i as u8; 1024 * 1024])));
        let res = s
            .put_stream(
                &path,
                futures::stream::iter(chunks).boxed(),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(res.bytes, 12 * 1024 * 1024);
        // A multipart ETag ends in -<parts>: 5 + 5 + 2 MiB.
        let etag = res.version.unwrap();
        assert!(etag.trim_matches('"').ends_with("-3"), "{etag}");
        assert_eq!(
            s.head(&path).await.unwrap().version.as_deref(),
            Some(etag.as_str())
        );
        assert_eq!(open_uploads(&admin).await, 0);
    }

    #[tokio::test]
    async fn a_failing_stream_aborts_the_multipart_upload() {
        let (s, admin) = fresh(S3ConditionalPut::ETagMatch).await;
        let path = p("broken");
        let err = s
            .put_stream(
                &path,
                failing_stream(4, 4 * 1024 * 1024),
                &PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the producer failed"), "{err}");
        assert_eq!(open_uploads(&admin).await, 0, "an orphaned upload");
        assert_eq!(s.head(&path).await.unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn conditional_put_disabled_is_unsupported_never_an_overwrite() {
        // Declared capable, but the client is configured without conditional puts: object_store
        // answers NotImplemented, which must come back as Unsupported with the object intact.
        let (s, _admin) = fresh(S3ConditionalPut::Disabled).await;
        let path = p("kept");
        let v1 = s
            .put(&path, Bytes::from_static(b"old"), &PutOptions::default())
            .await
            .unwrap()
            .version
            .unwrap();
        for mode in [PutMode::CreateOnly, PutMode::IfVersion(v1)] {
            let opts = PutOptions::with_mode(mode);
            let err = s
                .put(&path, Bytes::from_static(b"new"), &opts)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        }
        assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"old"));
        let err = s
            .put(
                &p("fresh"),
                Bytes::from_static(b"x"),
                &PutOptions::with_mode(PutMode::CreateOnly),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(!s.exists(&p("fresh")).await.unwrap());
    }

    #[tokio::test]
    async fn a_missing_bucket_is_a_backend_error_not_a_missing_object() {
        let store = builder(&endpoint(), &unique("nobucket")).build().unwrap();
        let s = ObjectStoreStorage::new(Arc::new(store), "s3://nobucket");
        let err = s.get(&p("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        assert!(err.to_string().contains("bucket does not exist"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let store = AmazonS3Builder::new()
            .with_endpoint("http://127.0.0.1:1")
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key("s3cr3t-d41d8cd98f00")
            .with_bucket_name("b")
            .build()
            .unwrap();
        let s = ObjectStoreStorage::new(Arc::new(store), "s3://b");
        let text = format!("{s:?}");
        assert!(text.contains("AmazonS3(b)"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    /// A server on 127.0.0.1 that answers each of at most `answers` connections with `status`
    /// and `body`, then stops.
    fn fault_server(status: &'static str, body: &'static str, answers: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming().take(answers) {
                let Ok(mut conn) = conn else { break };
                conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
                // Read the whole request (head and body), so closing the connection cannot
                // reset it before the client reads the answer.
                let mut buf = [0u8; 64 * 1024];
                let mut got = Vec::new();
                let mut wanted = usize::MAX;
                while got.len() < wanted {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                        let body_len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        wanted = end + 4 + body_len;
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).ok();
            }
        });
        url
    }

    fn over(url: &str) -> ObjectStoreStorage {
        let store = builder(url, "bucket").with_retry(retry(0)).build().unwrap();
        ObjectStoreStorage::new(Arc::new(store), "s3://bucket")
    }

    #[tokio::test]
    async fn http_failures_map_to_kinds() {
        let cases = [
            ("503 Service Unavailable", "", ErrorKind::Transient),
            (
                "500 Internal Server Error",
                "<Error><Code>InternalError</Code></Error>",
                ErrorKind::Transient,
            ),
            ("429 Too Many Requests", "", ErrorKind::Transient),
            (
                "400 Bad Request",
                "<Error><Code>InvalidArgument</Code></Error>",
                ErrorKind::Backend,
            ),
            (
                "403 Forbidden",
                "<Error><Code>AccessDenied</Code></Error>",
                ErrorKind::PermissionDenied,
            ),
            (
                "404 Not Found",
                "<Error><Code>NoSuchKey</Code></Error>",
                ErrorKind::NotFound,
            ),
        ];
        for (status, body, kind) in cases {
            let s = over(&fault_server(status, body, 2));
            let err = s.get(&p("k")).await.unwrap_err();
            assert_eq!(err.kind(), kind, "GET answered {status}: {err}");
            assert!(err.to_string().contains("s3://bucket/k"), "{err}");
            let err = s
                .put(&p("k"), Bytes::from_static(b"x"), &PutOptions::default())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind, "PUT answered {status}: {err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_transient() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let err = over(&url).get(&p("k")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        assert!(err.is_retryable());
    }
}
