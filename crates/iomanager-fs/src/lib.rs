//! # iomanager-fs
//!
//! Crash-safe local storage: [`FsStorage`] keeps objects as files under a base directory, and
//! [`FsIoManager`] is [`StorageIoManager`] over it with the MessagePack codec — the counterpart of
//! Dagster's `FilesystemIOManager`, without its partial files.
//!
//! ## What a write does
//!
//! 1. The bytes go to a temporary file (`.iomanager-tmp-…`) in the destination directory.
//! 2. The file is flushed and fsynced.
//! 3. Under an exclusive lock on the directory (held only for the check and the rename), the
//!    put mode is checked and the file is renamed over the target.
//! 4. The directory is fsynced (after the lock is released, so concurrent writers share the
//!    journal commit), and only then does the put return: the rename survives a power cut.
//!
//! Readers never take a lock and see the old file or the new one, never a partial one, also
//! when the writer is killed mid-write. A crash leaves at most a temporary file, which `list` and
//! loads ignore and [`FsStorage::cleanup`] sweeps. For scratch data the fsyncs can be turned off
//! ([`FsStorage::non_durable`]); atomicity stays.
//!
//! ```
//! use iomanager_core::{InputContext, IoManager, OutputContext};
//! use iomanager_fs::FsIoManager;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> iomanager_core::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let manager = FsIoManager::new(dir.path())?; // e.g. "./iomanager-data"
//! let out = OutputContext::builder().asset_key(["sales", "daily"]).build()?;
//! let receipt = manager.handle_output(&out, vec![1.5f64, 2.5]).await?;
//! assert!(receipt.uri.ends_with("/sales/daily"));
//! let input = InputContext::builder().upstream_output(out).build()?;
//! let back: Vec<f64> = manager.load_input(&input).await?;
//! assert_eq!(back, [1.5, 2.5]);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use iomanager_core::storage::check_put;
use iomanager_core::{
    ByteStream, Capabilities, Error, Location, MessagePackCodec, ObjectMeta, ObjectPath,
    PathLayout, PutMode, PutOptions, PutResult, Result, Storage, StorageIoManager,
};

/// Names of temporary files start with this; they are never data.
pub const TMP_PREFIX: &str = ".iomanager-tmp-";

/// Size of the chunks a streamed read yields.
const READ_CHUNK: usize = 1024 * 1024;

/// What an operation was doing when the OS said no, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

/// Maps an OS error at `uri` into [`Error`]: the one place this backend does so.
fn map_io(op: Op, uri: &str, err: io::Error) -> Error {
    use io::ErrorKind as K;
    let reason = err.to_string();
    match (op, err.kind()) {
        // Nothing stored at exactly this path: a directory there, or a file where a parent
        // directory should be, is still "not found" for a read.
        (Op::Read, K::NotFound | K::IsADirectory | K::NotADirectory) => Error::not_found(uri),
        (Op::Write, K::NotADirectory | K::AlreadyExists) => Error::backend(
            uri,
            format!(
                "a parent of this path is a file, not a directory ({reason}); an asset stored \
                 unpartitioned is in the way, or a file was put there by hand"
            ),
            Some(Box::new(err)),
        ),
        (Op::Write, K::IsADirectory) => Error::backend(
            uri,
            format!("a directory is in the way of this object ({reason})"),
            Some(Box::new(err)),
        ),
        (_, K::StorageFull | K::QuotaExceeded) => Error::backend(
            uri,
            format!(
                "no space left on the device ({reason}); the object stored before is untouched"
            ),
            Some(Box::new(err)),
        ),
        (_, K::FileTooLarge) => Error::backend(
            uri,
            format!(
                "the file size limit was exceeded ({reason}); the object stored before is untouched"
            ),
            Some(Box::new(err)),
        ),
        (_, K::PermissionDenied | K::ReadOnlyFilesystem) => Error::PermissionDenied {
            at: Location::uri(uri).into(),
            reason: format!("{reason}; is the base directory writable by this process?"),
            source: Some(Box::new(err)),
        },
        _ => Error::from_io(uri, err),
    }
}

fn join_error(err: tokio::task::JoinError) -> Error {
    Error::Runtime {
        message: format!("a blocking filesystem task failed: {err}"),
    }
}

/// The version token of a file: inode and modification time. Every put renames a new file into
/// place, so the inode changes with every write.
fn version_of(meta: &fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{:x}-{:x}.{:09}",
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec()
        )
    }
    #[cfg(not(unix))]
    {
        let t = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        format!("{:x}-{}", meta.len(), t.map(|d| d.as_nanos()).unwrap_or(0))
    }
}

fn modified_of(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    meta.modified().ok().map(DateTime::<Utc>::from)
}

/// Removes a temporary file when dropped, unless disarmed: a failed or cancelled write leaves
/// nothing behind.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[derive(Debug)]
struct Inner {
    base: PathBuf,
    durable: bool,
    /// For [`FsStorage::temporary`]: removed when the last clone is dropped.
    _temp: Option<Arc<tempfile::TempDir>>,
}

/// Objects as files under a base directory. Cheap to clone (shared state).
///
/// Writes are atomic and, by default, durable (see the crate docs). Capabilities: create-only
/// and if-version puts are both honoured, checked under a directory lock, with version tokens
/// made of the file's inode and modification time.
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

/// What [`FsStorage::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// The temporary files removed.
    pub removed: Vec<PathBuf>,
    /// Their total size.
    pub bytes: u64,
}

impl FsStorage {
    /// A storage under `base`, created if missing. Fails with [`Error::Config`] when `base` is
    /// a file, and with a permission error when it cannot be created.
    pub fn new(base: impl AsRef<Path>) -> Result<Self> {
        let base = base.as_ref();
        let shown = base.display().to_string();
        match fs::metadata(base) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::config(format!(
                    "the base directory {shown} exists and is not a directory; choose another \
                     base_dir or remove the file"
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(base)
                    .map_err(|e| map_io(Op::Write, &format!("file://{shown}"), e))?;
            }
            Err(e) => return Err(map_io(Op::Read, &format!("file://{shown}"), e)),
        }
        let base =
            fs::canonicalize(base).map_err(|e| map_io(Op::Read, &format!("file://{shown}"), e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                durable: true,
                _temp: None,
            }),
        })
    }

    /// A storage in a new temporary directory, removed with everything in it when the last
    /// clone of this storage is dropped: for tests and throwaway runs.
    pub fn temporary() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("iomanager-")
            .tempdir()
            .map_err(|e| map_io(Op::Write, "file:///tmp", e))?;
        let base = fs::canonicalize(dir.path())
            .map_err(|e| map_io(Op::Read, &format!("file://{}", dir.path().display()), e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                durable: true,
                _temp: Some(Arc::new(dir)),
            }),
        })
    }

    /// This storage without fsyncs: writes stay atomic but may be lost on a power cut. For
    /// scratch data only.
    #[must_use]
    pub fn non_durable(self) -> Self {
        self.with_durability(false)
    }

    /// Sets whether writes are fsynced (default true).
    #[must_use]
    pub fn with_durability(self, durable: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                base: self.inner.base.clone(),
                durable,
                _temp: self.inner._temp.clone(),
            }),
        }
    }

    /// True when writes are fsynced.
    pub fn is_durable(&self) -> bool {
        self.inner.durable
    }

    /// The absolute base directory.
    pub fn base(&self) -> &Path {
        &self.inner.base
    }

    /// The local file of `path`. Every segment of an [`ObjectPath`] is a safe single name (never
    /// empty, `.`, `..`, and never holding a separator), so this never leaves the base.
    pub fn local_path(&self, path: &ObjectPath) -> PathBuf {
        let mut p = self.inner.base.clone();
        for seg in path.segments() {
            p.push(seg);
        }
        p
    }

    fn run_blocking<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let task = tokio::task::spawn_blocking(f);
        async move { task.await.map_err(join_error)? }
    }

    /// Runs a short filesystem call (metadata, or a small page-cached read or write). On a
    /// multi-threaded runtime it runs in place through `block_in_place` — a few microseconds,
    /// where a hop to the blocking pool costs 15–25 — and elsewhere on the blocking pool.
    async fn run_short<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        if multi_threaded_runtime() {
            tokio::task::block_in_place(f)
        } else {
            self.run_blocking(f).await
        }
    }

    /// Removes temporary files older than `older_than` (left by writers that crashed or were
    /// killed) anywhere under the base. A younger one may belong to a write in progress and is
    /// kept.
    pub async fn cleanup(&self, older_than: Duration) -> Result<CleanupReport> {
        let base = self.inner.base.clone();
        self.run_blocking(move || {
            let mut report = CleanupReport::default();
            let now = SystemTime::now();
            let mut stack = vec![base];
            while let Some(dir) = stack.pop() {
                let uri = format!("file://{}", dir.display());
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(map_io(Op::Read, &uri, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| map_io(Op::Read, &uri, e))?;
                    let ft = entry.file_type().map_err(|e| map_io(Op::Read, &uri, e))?;
                    let name = entry.file_name();
                    if ft.is_dir() {
                        stack.push(entry.path());
                    } else if name.to_string_lossy().starts_with(TMP_PREFIX) {
                        let meta = entry.metadata().map_err(|e| map_io(Op::Read, &uri, e))?;
                        let age = meta
                            .modified()
                            .ok()
                            .and_then(|m| now.duration_since(m).ok());
                        if age.is_some_and(|a| a >= older_than) {
                            match fs::remove_file(entry.path()) {
                                Ok(()) => {
                                    report.bytes += meta.len();
                                    report.removed.push(entry.path());
                                }
                                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                                Err(e) => return Err(map_io(Op::Write, &uri, e)),
                            }
                        }
                    }
                }
            }
            report.removed.sort();
            Ok(report)
        })
        .await
    }
}

/// Objects up to this size are read and (when not fsynced) written in place; larger ones on the
/// blocking pool, so that concurrent large transfers overlap.
pub const SMALL_OBJECT: u64 = 256 * 1024;

fn multi_threaded_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false)
}

/// Size of one `write` call. A single multi-megabyte `write` is several times slower than the
/// same bytes in 1 MiB calls on the kernels this was measured on (235 ms against 22 ms for
/// 100 MB), so large buffers are written in pieces.
const WRITE_PIECE: usize = 1024 * 1024;

fn write_in_pieces(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    for piece in bytes.chunks(WRITE_PIECE) {
        file.write_all(piece)?;
    }
    Ok(())
}

/// A fresh temporary file name in `dir`.
fn temp_path(dir: &Path) -> PathBuf {
    let n: u64 = rand::random();
    dir.join(format!("{TMP_PREFIX}{}-{n:016x}", std::process::id()))
}

fn create_dirs(dir: &Path, uri: &str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| map_io(Op::Write, uri, e))
}

/// Checks the put mode and renames `tmp` over `target` under an exclusive lock on the
/// directory, then fsyncs the directory when durable. `version` is the temporary file's
/// version token (a rename keeps the inode and the modification time). The caller removes
/// `tmp` on error.
fn commit(
    tmp: &Path,
    target: &Path,
    mode: &PutMode,
    durable: bool,
    uri: &str,
    version: String,
) -> Result<String> {
    let dir = target.parent().unwrap_or(Path::new("/"));
    let dir_file = File::open(dir).map_err(|e| map_io(Op::Write, uri, e))?;
    dir_file.lock().map_err(|e| map_io(Op::Write, uri, e))?;
    let result = (|| {
        match mode {
            PutMode::Overwrite => {}
            PutMode::CreateOnly => match fs::symlink_metadata(target) {
                Ok(_) => {
                    return Err(Error::PreconditionFailed {
                        at: Location::uri(uri).into(),
                        reason: "create-only put, but an object already exists".into(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(map_io(Op::Write, uri, e)),
            },
            PutMode::IfVersion(want) => {
                let found = match fs::metadata(target) {
                    Ok(m) if m.is_file() => Some(version_of(&m)),
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(map_io(Op::Write, uri, e)),
                };
                if found.as_deref() != Some(want.as_str()) {
                    return Err(Error::PreconditionFailed {
                        at: Location::uri(uri).into(),
                        reason: format!(
                            "expected version {want}, found {}",
                            found.unwrap_or_else(|| "nothing".into())
                        ),
                    });
                }
            }
        }
        fs::rename(tmp, target).map_err(|e| map_io(Op::Write, uri, e))?;
        Ok(version)
    })();
    let _ = dir_file.unlock();
    // The directory is fsynced after the lock is released, so concurrent writers in one
    // directory share the journal commit instead of queueing behind each other's fsync. The
    // put returns only once its rename is durable.
    if durable && result.is_ok() {
        dir_file.sync_all().map_err(|e| map_io(Op::Write, uri, e))?;
    }
    result
}

fn put_blocking(
    target: PathBuf,
    bytes: Bytes,
    mode: PutMode,
    durable: bool,
    uri: String,
) -> Result<PutResult> {
    let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    create_dirs(&dir, &uri)?;
    let tmp = temp_path(&dir);
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut file = File::create_new(&tmp).map_err(|e| map_io(Op::Write, &uri, e))?;
    write_in_pieces(&mut file, &bytes).map_err(|e| map_io(Op::Write, &uri, e))?;
    if durable {
        file.sync_all().map_err(|e| map_io(Op::Write, &uri, e))?;
    }
    let written = file.metadata().map_err(|e| map_io(Op::Write, &uri, e))?;
    drop(file);
    let version = commit(&tmp, &target, &mode, durable, &uri, version_of(&written))?;
    guard.disarm();
    Ok(PutResult {
        version: Some(version),
        bytes: bytes.len() as u64,
        retries: 0,
    })
}

fn meta_blocking(target: &Path, path: &ObjectPath, uri: &str) -> Result<ObjectMeta> {
    let meta = fs::metadata(target).map_err(|e| map_io(Op::Read, uri, e))?;
    if !meta.is_file() {
        return Err(Error::not_found(uri));
    }
    Ok(ObjectMeta {
        path: path.clone(),
        size: meta.len(),
        modified: modified_of(&meta),
        version: Some(version_of(&meta)),
    })
}

fn list_blocking(
    storage: &FsStorage,
    prefix: &ObjectPath,
    limit: Option<usize>,
) -> Result<Vec<ObjectMeta>> {
    let start = storage.local_path(prefix);
    let mut out = Vec::new();
    let mut stack = vec![(start, prefix.clone())];
    while let Some((dir, at)) = stack.pop() {
        let uri = storage.uri(&at);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(e) => return Err(map_io(Op::Read, &uri, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| map_io(Op::Read, &uri, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::debug!(path = %entry.path().display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let Ok(child) = ObjectPath::parse(&if at.is_root() {
                name.to_owned()
            } else {
                format!("{at}/{name}")
            }) else {
                tracing::debug!(path = %entry.path().display(), "skipping a file that is not an iomanager path");
                continue;
            };
            let ft = entry.file_type().map_err(|e| map_io(Op::Read, &uri, e))?;
            if ft.is_dir() {
                stack.push((entry.path(), child));
            } else if ft.is_file() {
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Replaced or deleted while listing.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(map_io(Op::Read, &uri, e)),
                };
                out.push(ObjectMeta {
                    path: child,
                    size: meta.len(),
                    modified: modified_of(&meta),
                    version: Some(version_of(&meta)),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(limit) = limit {
        out.truncate(limit);
    }
    Ok(out)
}

#[async_trait]
impl Storage for FsStorage {
    fn name(&self) -> &str {
        "fs"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create_only: true,
            if_version: true,
        }
    }

    fn uri(&self, path: &ObjectPath) -> String {
        if path.is_root() {
            format!("file://{}", self.inner.base.display())
        } else {
            format!("file://{}/{}", self.inner.base.display(), path)
        }
    }

    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        check_put(self.name(), self.capabilities(), path, &opts.mode)?;
        let target = self.local_path(path);
        let uri = self.uri(path);
        let mode = opts.mode.clone();
        let durable = self.inner.durable;
        self.run_blocking(move || put_blocking(target, bytes, mode, durable, uri))
            .await
    }

    async fn put_stream(
        &self,
        path: &ObjectPath,
        mut stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check_put(self.name(), self.capabilities(), path, &opts.mode)?;
        let target = self.local_path(path);
        let uri = self.uri(path);
        let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        {
            let (dir, uri) = (dir.clone(), uri.clone());
            self.run_blocking(move || create_dirs(&dir, &uri)).await?;
        }
        let tmp = temp_path(&dir);
        let mut guard = TempGuard(Some(tmp.clone()));
        // Each chunk is written by a blocking task that owns the file for that chunk: no copy
        // of the chunk, and no more than one chunk in memory beyond what the producer holds.
        let mut file = {
            let (tmp, uri) = (tmp.clone(), uri.clone());
            self.run_blocking(move || {
                File::create_new(&tmp).map_err(|e| map_io(Op::Write, &uri, e))
            })
            .await?
        };
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            let uri = uri.clone();
            file = self
                .run_blocking(move || {
                    write_in_pieces(&mut file, &chunk).map_err(|e| map_io(Op::Write, &uri, e))?;
                    Ok(file)
                })
                .await?;
        }
        let mode = opts.mode.clone();
        let durable = self.inner.durable;
        let version = {
            let (tmp, target, uri) = (tmp.clone(), target.clone(), uri.clone());
            self.run_blocking(move || {
                if durable {
                    file.sync_all().map_err(|e| map_io(Op::Write, &uri, e))?;
                }
                let written = file.metadata().map_err(|e| map_io(Op::Write, &uri, e))?;
                drop(file);
                commit(&tmp, &target, &mode, durable, &uri, version_of(&written))
            })
            .await?
        };
        guard.disarm();
        Ok(PutResult {
            version: Some(version),
            bytes: written,
            retries: 0,
        })
    }

    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        let target = self.local_path(path);
        let uri = self.uri(path);
        // Open and size the file in place; read a small one there too, a large one on the
        // blocking pool.
        let (file, small) = {
            let uri = uri.clone();
            self.run_short(move || {
                let mut file = File::open(&target).map_err(|e| map_io(Op::Read, &uri, e))?;
                let len = file
                    .metadata()
                    .map_err(|e| map_io(Op::Read, &uri, e))?
                    .len();
                if len > SMALL_OBJECT {
                    return Ok((Some((file, len)), None));
                }
                let mut buf = Vec::with_capacity(len as usize);
                file.read_to_end(&mut buf)
                    .map_err(|e| map_io(Op::Read, &uri, e))?;
                Ok((None, Some(Bytes::from(buf))))
            })
            .await?
        };
        if let Some(bytes) = small {
            return Ok(bytes);
        }
        let Some((mut file, len)) = file else {
            return Err(Error::not_found(uri));
        };
        self.run_blocking(move || {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)
                .map_err(|e| map_io(Op::Read, &uri, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        let target = self.local_path(path);
        let uri = self.uri(path);
        self.run_blocking(move || {
            let mut file = File::open(&target).map_err(|e| map_io(Op::Read, &uri, e))?;
            let len = file
                .metadata()
                .map_err(|e| map_io(Op::Read, &uri, e))?
                .len();
            let start = range.start.min(len);
            let end = range.end.clamp(start, len);
            file.seek(SeekFrom::Start(start))
                .map_err(|e| map_io(Op::Read, &uri, e))?;
            let mut buf = Vec::with_capacity((end - start) as usize);
            file.take(end - start)
                .read_to_end(&mut buf)
                .map_err(|e| map_io(Op::Read, &uri, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        let target = self.local_path(path);
        let uri = self.uri(path);
        let file = {
            let uri = uri.clone();
            self.run_short(move || {
                let file = File::open(&target).map_err(|e| map_io(Op::Read, &uri, e))?;
                let meta = file.metadata().map_err(|e| map_io(Op::Read, &uri, e))?;
                if meta.is_file() {
                    Ok(file)
                } else {
                    Err(Error::not_found(&uri))
                }
            })
            .await?
        };
        // Each chunk is read by a blocking task that owns the file for that read.
        let stream = futures::stream::try_unfold(Some((file, uri)), |state| async move {
            let Some((mut file, uri)) = state else {
                return Ok(None);
            };
            let task = tokio::task::spawn_blocking(move || {
                let mut buf = BytesMut::zeroed(READ_CHUNK);
                let mut filled = 0;
                while filled < READ_CHUNK {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(map_io(Op::Read, &uri, e)),
                    }
                }
                buf.truncate(filled);
                Ok((buf.freeze(), file, uri))
            });
            let (chunk, file, uri) = task.await.map_err(join_error)??;
            if chunk.is_empty() {
                Ok(None)
            } else {
                Ok(Some((chunk, Some((file, uri)))))
            }
        });
        Ok(stream.boxed())
    }

    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        let target = self.local_path(path);
        let uri = self.uri(path);
        let path = path.clone();
        self.run_blocking(move || meta_blocking(&target, &path, &uri))
            .await
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        let target = self.local_path(path);
        let uri = self.uri(path);
        self.run_short(move || match fs::remove_file(&target) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::IsADirectory
                        | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(map_io(Op::Write, &uri, e)),
        })
        .await
    }

    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.clone();
        self.run_blocking(move || list_blocking(&this, &prefix, limit))
            .await
    }
}

/// Dagster's `FilesystemIOManager`, crash-safe: [`StorageIoManager`] over [`FsStorage`] with the
/// MessagePack codec by default (any [`Codec`](iomanager_core::Codec) through [`FsIoManager::with_codec`]).
#[derive(Debug, Clone)]
pub struct FsIoManager<C = MessagePackCodec> {
    storage: FsStorage,
    inner: StorageIoManager<C>,
}

impl FsIoManager<MessagePackCodec> {
    /// A durable manager storing MessagePack under `base_dir` (created if missing).
    pub fn new(base_dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_storage(
            FsStorage::new(base_dir)?,
            MessagePackCodec::new(),
        ))
    }
}

impl<C> FsIoManager<C> {
    /// A manager over `storage` with `codec`.
    pub fn from_storage(storage: FsStorage, codec: C) -> Self {
        let inner = StorageIoManager::new(Arc::new(storage.clone()), codec);
        Self { storage, inner }
    }

    /// The same base directory and settings with another codec (Parquet, JSON Lines, …).
    pub fn with_codec<D>(self, codec: D) -> FsIoManager<D> {
        FsIoManager {
            storage: self.storage,
            inner: self.inner.with_codec(codec),
        }
    }

    /// Writes without fsyncs (atomic, not durable): for scratch data.
    #[must_use]
    pub fn non_durable(self) -> Self {
        self.with_storage(|s| s.non_durable())
    }

    fn with_storage(self, f: impl FnOnce(FsStorage) -> FsStorage) -> Self {
        let storage = f(self.storage);
        let inner = self.inner.with_storage(Arc::new(storage.clone()));
        Self { storage, inner }
    }

    /// Uses `layout` for paths, e.g. [`iomanager_core::LayoutPreset::DagsterFs`] to share a base
    /// directory with Dagster's `FilesystemIOManager`.
    #[must_use]
    pub fn with_layout(self, layout: PathLayout) -> Self {
        Self {
            storage: self.storage,
            inner: self.inner.with_layout(layout),
        }
    }

    /// Loads and stores at most `n` partitions at once.
    #[must_use]
    pub fn with_concurrency(self, n: usize) -> Self {
        Self {
            storage: self.storage,
            inner: self.inner.with_concurrency(n),
        }
    }

    /// The put mode of every write (e.g. create-only).
    #[must_use]
    pub fn with_put_mode(self, mode: PutMode) -> Self {
        Self {
            storage: self.storage,
            inner: self.inner.with_put_mode(mode),
        }
    }

    /// The storage (for [`FsStorage::cleanup`], listing, the base directory).
    pub fn storage(&self) -> &FsStorage {
        &self.storage
    }

    /// The underlying [`StorageIoManager`].
    pub fn inner(&self) -> &StorageIoManager<C> {
        &self.inner
    }
}

iomanager_core::forward_io_manager!(FsIoManager, inner);

#[cfg(test)]
mod tests {
    use super::*;
    use iomanager_core::IoManager;
    use iomanager_testkit::{Sample, manager_suite, storage_manager_suite, storage_suite};

    fn fresh() -> FsStorage {
        FsStorage::temporary().unwrap()
    }

    #[test]
    fn os_errors_map_to_clear_kinds() {
        use std::io::{Error as IoError, ErrorKind as K};
        let full = map_io(Op::Write, "file:///b/x", IoError::from(K::StorageFull));
        assert_eq!(full.kind(), iomanager_core::ErrorKind::Backend);
        assert!(
            full.to_string().contains("no space left") && full.to_string().contains("file:///b/x")
        );
        let big = map_io(Op::Write, "file:///b/x", IoError::from(K::FileTooLarge));
        assert!(big.to_string().contains("file size limit"));
        let ro = map_io(
            Op::Write,
            "file:///b/x",
            IoError::from(K::ReadOnlyFilesystem),
        );
        assert_eq!(ro.kind(), iomanager_core::ErrorKind::PermissionDenied);
        assert!(ro.to_string().contains("writable"));
        for k in [K::NotFound, K::IsADirectory, K::NotADirectory] {
            assert!(map_io(Op::Read, "u", IoError::from(k)).is_not_found());
        }
        let blocked = map_io(Op::Write, "u", IoError::from(K::NotADirectory));
        assert!(
            blocked
                .to_string()
                .contains("a parent of this path is a file")
        );
        assert!(map_io(Op::Read, "u", IoError::from(K::TimedOut)).is_retryable());
    }

    #[tokio::test]
    async fn cleanup_sweeps_only_old_temporary_files() {
        let s = fresh();
        let path = ObjectPath::parse("a/b").unwrap();
        s.put(&path, Bytes::from_static(b"data"), &PutOptions::default())
            .await
            .unwrap();
        let stale = s.base().join("a").join(format!("{TMP_PREFIX}123-dead"));
        std::fs::write(&stale, b"half a write").unwrap();
        // Invisible to list and to loads.
        let listed = s.list(&ObjectPath::root(), None).await.unwrap();
        assert_eq!(listed.len(), 1);
        // Too young for a one-hour threshold; swept with a zero threshold.
        assert!(
            s.cleanup(Duration::from_secs(3600))
                .await
                .unwrap()
                .removed
                .is_empty()
        );
        let report = s.cleanup(Duration::ZERO).await.unwrap();
        assert_eq!(report.removed, std::slice::from_ref(&stale));
        assert_eq!(report.bytes, 12);
        assert!(!stale.exists());
        assert_eq!(s.get(&path).await.unwrap(), Bytes::from_static(b"data"));
    }

    #[tokio::test]
    async fn versions_change_with_every_write() {
        let s = fresh();
        let path = ObjectPath::parse("v").unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..20u8 {
            let r = s
                .put(&path, Bytes::from(vec![i]), &PutOptions::default())
                .await
                .unwrap();
            assert!(seen.insert(r.version.unwrap()), "a version token repeated");
        }
    }

    storage_suite!(fs_storage, || async {
        Arc::new(fresh()) as Arc<dyn Storage>
    });
    storage_suite!(fs_storage_non_durable, || async {
        Arc::new(fresh().non_durable()) as Arc<dyn Storage>
    });
    storage_manager_suite!(storage_io_manager_over_fs, || async {
        Arc::new(fresh()) as Arc<dyn Storage>
    });
    manager_suite!(fs_io_manager, || async {
        Arc::new(FsIoManager::from_storage(fresh(), MessagePackCodec::new()))
            as Arc<dyn IoManager<Sample>>
    });
}
