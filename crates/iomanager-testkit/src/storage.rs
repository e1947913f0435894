//! The storage suite: what every [`Storage`] must do. Each function takes a fresh, empty
//! storage and panics with a message on a violation.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{ErrorKind, ObjectPath, PutMode, PutOptions, Storage};

/// Parses an encoded path (panics on an invalid one: suite paths are constants).
pub fn p(path: &str) -> ObjectPath {
    ObjectPath::parse(path).expect("a valid suite path")
}

fn put_opts() -> PutOptions {
    PutOptions::default()
}

/// Deterministic bytes of length `n` (not all equal, so misplaced chunks are caught).
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(seed as u64) as u8)
        .collect()
}

/// A put followed by a get returns the same bytes.
pub async fn put_get_round_trip(s: Arc<dyn Storage>) {
    let path = p("dir/object");
    let res = s
        .put(&path, Bytes::from_static(b"hello"), &put_opts())
        .await
        .unwrap();
    assert_eq!(res.bytes, 5);
    assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"hello"));
    assert!(
        s.uri(&path).contains("dir/object"),
        "uri {} names the path",
        s.uri(&path)
    );
}

/// An empty object can be stored, read, listed and sized.
pub async fn empty_object(s: Arc<dyn Storage>) {
    let path = p("empty");
    s.put(&path, Bytes::new(), &put_opts()).await.unwrap();
    assert_eq!(s.get(&path).await.unwrap().len(), 0);
    assert_eq!(s.head(&path).await.unwrap().size, 0);
    let mut stream = s.get_stream(&path).await.unwrap();
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 0);
}

/// A missing object is `NotFound` for get, ranged get, stream and head, naming the uri.
pub async fn get_missing_is_not_found(s: Arc<dyn Storage>) {
    let path = p("no/such/object");
    let err = s.get(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&s.uri(&path)),
        "error names the uri: {err}"
    );
    assert_eq!(
        s.get_range(&path, 0..1).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(s.head(&path).await.unwrap_err().kind(), ErrorKind::NotFound);
    match s.get_stream(&path).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
        Ok(mut st) => {
            let first = st
                .next()
                .await
                .expect("a stream of a missing object yields an error");
            assert_eq!(first.unwrap_err().kind(), ErrorKind::NotFound);
        }
    }
}

/// `head` reports the size, and the version changes when the object is rewritten.
pub async fn head_reports_size_and_version(s: Arc<dyn Storage>) {
    let path = p("h");
    let first = s
        .put(&path, Bytes::from(vec![1u8; 10]), &put_opts())
        .await
        .unwrap();
    let meta = s.head(&path).await.unwrap();
    assert_eq!(meta.size, 10);
    assert_eq!(meta.path, path);
    assert_eq!(meta.version, first.version);
    let second = s
        .put(&path, Bytes::from(vec![2u8; 3]), &put_opts())
        .await
        .unwrap();
    assert_eq!(s.head(&path).await.unwrap().size, 3);
    if first.version.is_some() {
        assert_ne!(
            first.version, second.version,
            "a rewrite changes the version token"
        );
    }
}

/// `exists` matches the exact path: `asset` does not match `asset_2` nor `asset/x`.
pub async fn exists_is_exact_not_prefix(s: Arc<dyn Storage>) {
    s.put(&p("asset_2"), Bytes::from_static(b"x"), &put_opts())
        .await
        .unwrap();
    s.put(&p("dir/inner"), Bytes::from_static(b"x"), &put_opts())
        .await
        .unwrap();
    assert!(!s.exists(&p("asset")).await.unwrap());
    assert!(!s.exists(&p("dir")).await.unwrap());
    assert!(s.exists(&p("asset_2")).await.unwrap());
}

/// Delete removes the object; deleting a missing object is not an error.
pub async fn delete_removes_and_missing_is_ok(s: Arc<dyn Storage>) {
    let path = p("d/x");
    s.put(&path, Bytes::from_static(b"x"), &put_opts())
        .await
        .unwrap();
    s.delete(&path).await.unwrap();
    assert_eq!(s.get(&path).await.unwrap_err().kind(), ErrorKind::NotFound);
    s.delete(&path).await.unwrap();
    s.delete(&p("never/was")).await.unwrap();
}

/// `list` is scoped to a directory (`a` lists `a/x`, never `ab`), sorted, and honours a limit.
pub async fn list_is_directory_scoped_sorted_and_limited(s: Arc<dyn Storage>) {
    for path in ["a/2", "a/1", "a/sub/3", "ab/4", "b"] {
        s.put(&p(path), Bytes::from_static(b"x"), &put_opts())
            .await
            .unwrap();
    }
    let names = |v: Vec<iomanager_core::ObjectMeta>| {
        v.into_iter()
            .map(|m| m.path.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.list(&p("a"), None).await.unwrap()),
        ["a/1", "a/2", "a/sub/3"]
    );
    assert_eq!(
        names(s.list(&ObjectPath::root(), None).await.unwrap()),
        ["a/1", "a/2", "a/sub/3", "ab/4", "b"]
    );
    assert_eq!(s.list(&p("a"), Some(2)).await.unwrap().len(), 2);
    assert!(s.list(&p("nothing"), None).await.unwrap().is_empty());
    let sized = s.list(&p("ab"), None).await.unwrap();
    assert_eq!(sized[0].size, 1);
}

/// Ranged reads return exactly the range, clamped at the end.
pub async fn ranged_reads(s: Arc<dyn Storage>) {
    let path = p("r");
    let data = pattern(1000, 7);
    s.put(&path, Bytes::from(data.clone()), &put_opts())
        .await
        .unwrap();
    assert_eq!(s.get_range(&path, 10..20).await.unwrap(), &data[10..20]);
    assert_eq!(s.get_range(&path, 990..2000).await.unwrap(), &data[990..]);
    assert_eq!(s.get_range(&path, 0..1000).await.unwrap(), &data[..]);
    assert!(s.get_range(&path, 1000..1010).await.unwrap().is_empty());
}

/// The size of the large-object test, overridable with `IOMANAGER_TEST_LARGE_MB`.
pub fn large_object_size() -> usize {
    std::env::var("IOMANAGER_TEST_LARGE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(12)
        * 1024
        * 1024
}

/// A large object goes up as a stream of chunks and comes back intact, streamed and ranged.
pub async fn large_object_streams(s: Arc<dyn Storage>) {
    let path = p("large/object.bin");
    let size = large_object_size();
    let data = Bytes::from(pattern(size, 3));
    let chunks: Vec<iomanager_core::Result<Bytes>> = data
        .chunks(256 * 1024 + 17)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let res = s
        .put_stream(&path, futures::stream::iter(chunks).boxed(), &put_opts())
        .await
        .unwrap();
    assert_eq!(res.bytes, size as u64);
    assert_eq!(s.head(&path).await.unwrap().size, size as u64);
    let mut stream = s.get_stream(&path).await.unwrap();
    let mut offset = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(
            &chunk[..],
            &data[offset..offset + chunk.len()],
            "chunk at {offset}"
        );
        offset += chunk.len();
    }
    assert_eq!(offset, size);
    let mid = size as u64 / 2;
    assert_eq!(
        s.get_range(&path, mid..mid + 100).await.unwrap(),
        &data[mid as usize..mid as usize + 100]
    );
}

/// Keys with spaces, unicode, escapes and brackets round-trip and list as themselves.
pub async fn special_characters_round_trip(s: Arc<dyn Storage>) {
    let raw = [
        vec!["with space", "données", "日本"],
        vec!["pct%25", "a%2Fb", "%2E%2E"],
        vec!["brackets[x]", "pipe|colon:semi;", "plus+eq=amp&"],
        vec!["%2Ehidden", "tab%09nul%00"],
    ];
    for (i, segs) in raw.iter().enumerate() {
        let path = ObjectPath::parse(&segs.join("/")).unwrap();
        let body = Bytes::from(format!("value {i}"));
        s.put(&path, body.clone(), &put_opts()).await.unwrap();
        assert_eq!(s.get(&path).await.unwrap(), body, "{path}");
        let parent = path.parent().unwrap();
        let listed = s.list(&parent, None).await.unwrap();
        assert!(
            listed.iter().any(|m| m.path == path),
            "{path} is listed under {parent}"
        );
    }
}

/// Readers racing an overwrite see the complete old value or the complete new one.
pub async fn overwrite_is_atomic_for_readers(s: Arc<dyn Storage>) {
    let path = p("race");
    let size = 256 * 1024;
    let values: Vec<Bytes> = (0..4u8).map(|i| Bytes::from(vec![i; size])).collect();
    s.put(&path, values[0].clone(), &put_opts()).await.unwrap();
    let writer = {
        let s = s.clone();
        let path = path.clone();
        let values = values.clone();
        tokio::spawn(async move {
            for round in 0..12 {
                let v = values[round % values.len()].clone();
                s.put(&path, v, &PutOptions::default()).await.unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..3 {
        let s = s.clone();
        let path = path.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..12 {
                let got = s.get(&path).await.unwrap();
                assert_eq!(got.len(), size, "a read saw a partial object");
                assert!(
                    got.iter().all(|b| *b == got[0]),
                    "a read saw a mixed object"
                );
            }
        }));
    }
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}

/// Create-only creates a missing object and refuses an existing one, leaving it intact; a
/// storage that cannot honour it answers `Unsupported` and writes nothing.
pub async fn create_only_mode(s: Arc<dyn Storage>) {
    let path = p("once");
    let opts = PutOptions::with_mode(PutMode::CreateOnly);
    if !s.capabilities().create_only {
        let err = s
            .put(&path, Bytes::from_static(b"x"), &opts)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            !s.exists(&path).await.unwrap(),
            "an unsupported mode wrote nothing"
        );
        return;
    }
    s.put(&path, Bytes::from_static(b"first"), &opts)
        .await
        .unwrap();
    let err = s
        .put(&path, Bytes::from_static(b"second"), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"first"));
}

/// If-version replaces only when the version matches; a mismatch or a missing object fails and
/// leaves what is stored.
pub async fn if_version_mode(s: Arc<dyn Storage>) {
    let path = p("cas");
    if !s.capabilities().if_version {
        s.put(&path, Bytes::from_static(b"old"), &put_opts())
            .await
            .unwrap();
        let opts = PutOptions::with_mode(PutMode::IfVersion("anything".into()));
        let err = s
            .put(&path, Bytes::from_static(b"new"), &opts)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"old"));
        return;
    }
    let v1 = s
        .put(&path, Bytes::from_static(b"v1"), &put_opts())
        .await
        .unwrap()
        .version
        .unwrap();
    let ok = PutOptions::with_mode(PutMode::IfVersion(v1.clone()));
    let v2 = s
        .put(&path, Bytes::from_static(b"v2"), &ok)
        .await
        .unwrap()
        .version
        .unwrap();
    assert_ne!(v1, v2);
    // The old token no longer matches.
    let err = s
        .put(&path, Bytes::from_static(b"v3"), &ok)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"v2"));
    let missing = PutOptions::with_mode(PutMode::IfVersion(v2));
    let err = s
        .put(&p("cas-missing"), Bytes::from_static(b"x"), &missing)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
}
