//! Bad input gives a clear error and loses no stored object: keys that try to leave the base,
//! a base that is a file, a read-only base, a full disk.
//!
//! The read-only and full-disk tests mount a small tmpfs (the machines this project runs on
//! allow it, as root). Where mounting is not permitted they fail with that reason, unless
//! `IOMANAGER_SKIP_MOUNT_TESTS=1` is set; the error mapping they rely on is also covered by unit
//! tests in `src/lib.rs` that need no mount.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{
    ErrorKind, InputContext, IoManager, ObjectPath, OutputContext, PathLayout, PutOptions, Storage,
};
use iomanager_fs::{FsIoManager, FsStorage, TMP_PREFIX};

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn keys_cannot_leave_the_base_directory() {
    let outer = tempfile::tempdir().unwrap();
    let base = outer.path().join("base");
    let m = FsIoManager::new(&base).unwrap();
    let hostile_assets: Vec<Vec<&str>> = vec![
        vec!["..", "..", "escaped"],
        vec!["/etc", "passwd"],
        vec!["a", "..", "..", "x"],
        vec!["."],
        vec!["..\\..", "win"],
        vec!["a/../../b"],
        vec!["nul\0byte", "ctl\n"],
    ];
    let mut stored = Vec::new();
    for (i, key) in hostile_assets.iter().enumerate() {
        let out = OutputContext::builder()
            .asset_key(key.clone())
            .build()
            .unwrap();
        let r = m.handle_output(&out, i as u64).await.unwrap();
        let input = InputContext::builder()
            .upstream_output(out)
            .build()
            .unwrap();
        stored.push((input, i as u64, r.uri));
    }
    let partitioned = OutputContext::builder()
        .asset_key("p")
        .partition("../../../x")
        .build()
        .unwrap();
    m.handle_output(&partitioned, 100u64).await.unwrap();
    let input = InputContext::builder()
        .upstream_output(partitioned)
        .partition("../../../x")
        .build()
        .unwrap();
    stored.push((input, 100, String::new()));
    let op = OutputContext::builder()
        .run_id("../..")
        .step_key("../step")
        .name("..")
        .mapping_key("../../m")
        .build()
        .unwrap();
    m.handle_output(&op, 101u64).await.unwrap();
    stored.push((
        InputContext::builder().upstream_output(op).build().unwrap(),
        101,
        String::new(),
    ));
    let versioned = OutputContext::builder()
        .step_key("s")
        .name("o")
        .version("../../v")
        .build()
        .unwrap();
    m.handle_output(&versioned, 102u64).await.unwrap();
    let input = InputContext::builder()
        .upstream_output(versioned)
        .build()
        .unwrap();
    stored.push((input, 102, String::new()));
    let prefixed = FsIoManager::new(&base)
        .unwrap()
        .with_layout(PathLayout::default().with_prefix("../../prefix").unwrap());
    let out = OutputContext::builder()
        .asset_key("in_prefix")
        .build()
        .unwrap();
    prefixed.handle_output(&out, 103u64).await.unwrap();

    // Nothing was created beside the base, and every file is inside it.
    let beside: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["base"]);
    let files = all_files(&base);
    assert_eq!(files.len(), stored.len() + 1);
    let canonical_base = std::fs::canonicalize(&base).unwrap();
    for f in &files {
        let real = std::fs::canonicalize(f).unwrap();
        assert!(
            real.starts_with(&canonical_base),
            "{} escaped",
            real.display()
        );
    }
    // Each hostile key reads back its own value.
    for (input, v, _) in &stored {
        let back: u64 = m.load_input(input).await.unwrap();
        assert_eq!(back, *v);
    }
    // Empty segments are refused with the key and the reason.
    let err = OutputContext::builder()
        .asset_key(["a", ""])
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    assert!(err.to_string().contains("empty"), "{err}");
    let empty_partition = OutputContext::builder()
        .asset_key("a")
        .partition("")
        .build()
        .unwrap();
    let err = m.handle_output(&empty_partition, 1u64).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
}

#[test]
fn a_base_that_is_a_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = FsStorage::new(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains(&file.display().to_string()) && text.contains("not a directory"),
        "{text}"
    );
    assert_eq!(
        FsIoManager::new(&file).unwrap_err().kind(),
        ErrorKind::Config
    );
    // Below a file, the base cannot be created either.
    let err = FsStorage::new(file.join("below")).unwrap_err();
    assert!(err.to_string().contains("below"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[tokio::test]
async fn a_file_in_the_way_is_a_clear_error_and_loses_nothing() {
    let m = FsIoManager::from_storage(
        FsStorage::temporary().unwrap(),
        iomanager_core::MessagePackCodec::new(),
    );
    let a = OutputContext::builder().asset_key("a").build().unwrap();
    m.handle_output(&a, 1u64).await.unwrap();
    let nested = OutputContext::builder()
        .asset_key(["a", "b"])
        .build()
        .unwrap();
    let err = m.handle_output(&nested, 2u64).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(
        err.to_string().contains("a parent of this path is a file"),
        "{err}"
    );
    let back: u64 = m
        .load_input(&InputContext::builder().upstream_output(a).build().unwrap())
        .await
        .unwrap();
    assert_eq!(back, 1);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`2m`); `None` (with the reason printed) when mounting is not
    /// permitted and `IOMANAGER_SKIP_MOUNT_TESTS=1` is set.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match status {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                if std::env::var_os("IOMANAGER_SKIP_MOUNT_TESTS").is_some() {
                    eprintln!("skipped: cannot mount a tmpfs here ({why})");
                    None
                } else {
                    panic!(
                        "cannot mount a tmpfs ({why}); run as root, or set \
                         IOMANAGER_SKIP_MOUNT_TESTS=1 to rely on the unit tests of the error path"
                    );
                }
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_read_only_base_refuses_writes_and_keeps_what_is_stored() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let base = fs.path().join("data");
    let m = FsIoManager::new(&base).unwrap();
    let out = OutputContext::builder().asset_key("kept").build().unwrap();
    m.handle_output(&out, "old".to_string()).await.unwrap();
    fs.remount_read_only();

    let err = m.handle_output(&out, "new".to_string()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let text = err.to_string();
    assert!(text.contains("writable") && text.contains("kept"), "{text}");
    let other = OutputContext::builder()
        .asset_key(["new", "asset"])
        .build()
        .unwrap();
    assert_eq!(
        m.handle_output(&other, "x".to_string())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    let input = InputContext::builder()
        .upstream_output(out)
        .build()
        .unwrap();
    let back: String = m.load_input(&input).await.unwrap();
    assert_eq!(back, "old");
}

#[tokio::test]
async fn a_full_disk_fails_cleanly_and_keeps_what_is_stored() {
    let Some(fs) = Tmpfs::mount("2m") else { return };
    let storage = FsStorage::new(fs.path().join("data")).unwrap();
    let m = FsIoManager::from_storage(storage.clone(), iomanager_core::MessagePackCodec::new());
    let out = OutputContext::builder().asset_key("big").build().unwrap();
    m.handle_output(&out, vec![1u8; 1000]).await.unwrap();

    // 3 MiB cannot fit in a 2 MiB filesystem: whole-object put.
    let err = m
        .handle_output(&out, vec![2u8; 3 * 1024 * 1024])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no space left") && text.contains("untouched"),
        "{text}"
    );
    // Streamed put.
    let chunks: Vec<iomanager_core::Result<Bytes>> = (0..48)
        .map(|_| Ok(Bytes::from(vec![3u8; 64 * 1024])))
        .collect();
    let path = ObjectPath::parse("big").unwrap();
    let err = storage
        .put_stream(
            &path,
            futures::stream::iter(chunks).boxed(),
            &PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");

    let input = InputContext::builder()
        .upstream_output(out.clone())
        .build()
        .unwrap();
    let back: Vec<u8> = m.load_input(&input).await.unwrap();
    assert_eq!(back, vec![1u8; 1000]);
    // The failed writes removed their temporary files, so the space is free again.
    let leftovers: Vec<_> = all_files(storage.base())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(TMP_PREFIX)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    m.handle_output(&out, vec![4u8; 1024 * 1024]).await.unwrap();
}
