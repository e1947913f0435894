//! `S3Storage` and `S3IoManager` against a real S3-compatible server: moto, started on
//! 127.0.0.1 by `cargo xtask test`, which passes its endpoint in `IOMANAGER_TEST_S3_ENDPOINT`.
//! Without it these tests fail (they are never skipped silently).

use std::sync::Arc;
use std::time::{Duration, Instant};

use iomanager_core::{
    ErrorKind, InputContext, IoManager, LayoutPreset, ObjectPath, OutputContext, PutOptions,
    RetryPolicy, Storage,
};
use iomanager_s3::{S3Config, S3IoManager, S3Storage};
use iomanager_testkit::{Sample, manager_suite, storage_manager_suite, storage_suite};

/// The secret used in tests; it must never appear in any message.
const SECRET: &str = "moto-test-secret-d41d8cd98f00";

fn endpoint() -> String {
    std::env::var("IOMANAGER_TEST_S3_ENDPOINT").expect(
        "IOMANAGER_TEST_S3_ENDPOINT is not set: run the tests with `cargo xtask test`, which \
         starts moto on 127.0.0.1 and sets it",
    )
}

fn config(bucket: &str) -> S3Config {
    S3Config::new(bucket)
        .endpoint_url(endpoint())
        .region("us-east-1")
        .path_style(true)
        .static_credentials("testing", SECRET)
        // Small parts so the suites' large objects go up as several parts.
        .multipart(5 * 1024 * 1024, 5 * 1024 * 1024)
        .retry(RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        })
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

/// A storage over a new, empty bucket.
async fn fresh_storage() -> S3Storage {
    let bucket = unique("it");
    let storage = S3Storage::new(config(&bucket).prefix("")).await.unwrap();
    storage
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    storage
}

storage_suite!(s3_storage, || async {
    Arc::new(fresh_storage().await) as Arc<dyn Storage>
});
storage_manager_suite!(storage_io_manager_over_s3, || async {
    Arc::new(fresh_storage().await) as Arc<dyn Storage>
});
manager_suite!(s3_io_manager, || async {
    let storage = fresh_storage().await;
    let m = S3IoManager::from_storage(storage, iomanager_core::MessagePackCodec::new()).unwrap();
    Arc::new(m) as Arc<dyn IoManager<Sample>>
});

async fn keys(storage: &S3Storage) -> Vec<String> {
    storage
        .list(&ObjectPath::root(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect()
}

#[tokio::test]
async fn prefixes_none_empty_default_and_nested() {
    let storage = fresh_storage().await;
    let bucket = storage.bucket().to_owned();
    let out = OutputContext::builder()
        .asset_key(["a", "b"])
        .build()
        .unwrap();
    for prefix in ["", "dagster", "team/x/y"] {
        let c = config(&bucket).prefix(prefix);
        let m = S3IoManager::connect(c).await.unwrap();
        let r = m.handle_output(&out, 1u8).await.unwrap();
        let key = if prefix.is_empty() {
            "a/b".to_owned()
        } else {
            format!("{prefix}/a/b")
        };
        assert_eq!(r.uri, format!("s3://{bucket}/{key}"));
    }
    assert_eq!(keys(&storage).await, ["a/b", "dagster/a/b", "team/x/y/a/b"]);
}

#[tokio::test]
async fn receipt_uri_includes_the_partition_and_etag() {
    let storage = fresh_storage().await;
    let bucket = storage.bucket().to_owned();
    let m = S3IoManager::connect(config(&bucket)).await.unwrap();
    let out = OutputContext::builder()
        .asset_key("daily")
        .partitions_def(iomanager_core::PartitionsDefinition::daily("2024-01-01").unwrap())
        .partition("2024-01-02")
        .build()
        .unwrap();
    let r = m.handle_output(&out, vec![1u32, 2, 3]).await.unwrap();
    assert_eq!(r.uri, format!("s3://{bucket}/dagster/daily/2024-01-02"));
    let etag = r.version.clone().expect("an ETag");
    let head = storage
        .head(&ObjectPath::parse("dagster/daily/2024-01-02").unwrap())
        .await
        .unwrap();
    assert_eq!(head.version.as_deref(), Some(etag.as_str()));
    assert_eq!(head.size, r.bytes);
}

#[tokio::test]
async fn dagster_s3_layout_preset() {
    let storage = fresh_storage().await;
    let bucket = storage.bucket().to_owned();
    let m = S3IoManager::connect(config(&bucket).layout(LayoutPreset::DagsterS3))
        .await
        .unwrap();
    let out = OutputContext::builder()
        .run_id("RUN")
        .step_key("echo[foo]")
        .name("result")
        .mapping_key("mk")
        .build()
        .unwrap();
    m.handle_output(&out, "x".to_string()).await.unwrap();
    assert_eq!(
        keys(&storage).await,
        ["dagster/storage/RUN/echo--foo/result/mk"]
    );
    let back: String = m
        .load_input(
            &InputContext::builder()
                .upstream_output(out)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(back, "x");
}

#[tokio::test]
async fn missing_objects_are_not_found_and_partitions_can_be_skipped() {
    let storage = fresh_storage().await;
    let m = S3IoManager::connect(config(storage.bucket()))
        .await
        .unwrap();
    let input = InputContext::builder().asset_key("nope").build().unwrap();
    let err = IoManager::<u8>::load_input(&m, &input).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("s3://{}/dagster/nope", storage.bucket())),
        "{err}"
    );
    let err = storage
        .head(&ObjectPath::parse("nope").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn multipart_uploads_leave_no_incomplete_upload() {
    let storage = fresh_storage().await;
    let path = ObjectPath::parse("big/object").unwrap();
    let data: Vec<u8> = (0..23 * 1024 * 1024).map(|i| (i % 241) as u8).collect();
    let r = storage
        .put(
            &path,
            bytes::Bytes::from(data.clone()),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.bytes, data.len() as u64);
    // A multipart ETag ends in -<parts>.
    let etag = r.version.unwrap();
    assert!(etag.trim_matches('"').ends_with("-5"), "{etag}");
    assert_eq!(storage.get(&path).await.unwrap(), data);
    let uploads = storage
        .client()
        .list_multipart_uploads()
        .bucket(storage.bucket())
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

#[tokio::test]
async fn a_failing_stream_aborts_the_multipart_upload() {
    let storage = fresh_storage().await;
    let path = ObjectPath::parse("broken").unwrap();
    let mut chunks: Vec<iomanager_core::Result<bytes::Bytes>> = (0..4)
        .map(|_| Ok(bytes::Bytes::from(vec![1u8; 4 * 1024 * 1024])))
        .collect();
    chunks.push(Err(iomanager_core::Error::backend(
        "producer",
        "the producer failed",
        None,
    )));
    let stream = futures::StreamExt::boxed(futures::stream::iter(chunks));
    let err = storage
        .put_stream(&path, stream, &PutOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the producer failed"), "{err}");
    let uploads = storage
        .client()
        .list_multipart_uploads()
        .bucket(storage.bucket())
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "an orphaned upload: {:?}",
        uploads.uploads()
    );
    assert_eq!(
        storage.head(&path).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn connect_names_bucket_endpoint_and_cause() {
    // Missing bucket.
    let err = S3Storage::connect(config("no-such-bucket-here"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no-such-bucket-here") && text.contains(&endpoint()),
        "{text}"
    );
    assert!(text.contains("bucket does not exist"), "{text}");
    assert!(!text.contains(SECRET));

    // Unreachable endpoint: a port nothing listens on, on loopback.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    let c = config("any")
        .endpoint_url(&url)
        .timeouts(Duration::from_millis(500), Duration::from_secs(2));
    let started = Instant::now();
    let err = S3Storage::connect(c).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("unreachable"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!text.contains(SECRET) && !format!("{err:?}").contains(SECRET));
}

#[tokio::test]
async fn a_stopped_server_fails_within_the_timeout_naming_the_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    let c = config("b")
        .endpoint_url(&url)
        .timeouts(Duration::from_millis(300), Duration::from_secs(1))
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        });
    let storage = S3Storage::new(c).await.unwrap();
    let m = S3IoManager::from_storage(storage, iomanager_core::MessagePackCodec::new()).unwrap();
    let out = OutputContext::builder().asset_key("a").build().unwrap();
    let started = Instant::now();
    let err = m.handle_output(&out, 1u8).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
