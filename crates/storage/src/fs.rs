//! Every mutating system call the store makes goes through [`Io`], for two reasons: each error is
//! tagged with the operation and path (so a failed store says what broke), and tests can inject
//! write and fsync failures through a [`FaultInjector`] without a fake file system.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Result, StorageError};

/// Makes writes or fsyncs fail on demand, to test that a store stops trusting itself after the
/// first failure. Production code passes none; the check then costs one branch.
///
/// "Writes" are every call that changes bytes or names on disk (write, truncate, create, rename,
/// remove); "syncs" are `fdatasync`/`fsync` of files and directories.
#[derive(Debug)]
pub struct FaultInjector {
    writes_left: AtomicU64,
    syncs_left: AtomicU64,
}

const NEVER: u64 = u64::MAX;

impl FaultInjector {
    /// An injector that fails nothing until told to.
    pub fn new() -> Arc<FaultInjector> {
        Arc::new(FaultInjector {
            writes_left: AtomicU64::new(NEVER),
            syncs_left: AtomicU64::new(NEVER),
        })
    }

    /// Lets `count` more writes succeed, then fails every later one.
    pub fn fail_writes_after(&self, count: u64) {
        self.writes_left.store(count, Ordering::SeqCst);
    }

    /// Lets `count` more syncs succeed, then fails every later one.
    pub fn fail_syncs_after(&self, count: u64) {
        self.syncs_left.store(count, Ordering::SeqCst);
    }

    /// Stops failing anything. A store that already failed stays failed: that is the point.
    pub fn heal(&self) {
        self.writes_left.store(NEVER, Ordering::SeqCst);
        self.syncs_left.store(NEVER, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU64, what: &str) -> io::Result<()> {
        let allowed = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                NEVER => Some(NEVER),
                0 => None,
                left => Some(left - 1),
            })
            .is_ok();
        if allowed {
            Ok(())
        } else {
            Err(io::Error::other(format!("injected {what} failure")))
        }
    }
}

/// The store's gateway to the OS for everything that mutates the disk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Io {
    faults: Option<Arc<FaultInjector>>,
}

impl Io {
    pub(crate) fn new(faults: Option<Arc<FaultInjector>>) -> Io {
        Io { faults }
    }

    pub(crate) fn check_write(&self) -> io::Result<()> {
        self.faults.as_ref().map_or(Ok(()), |f| FaultInjector::take(&f.writes_left, "write"))
    }

    pub(crate) fn check_sync(&self) -> io::Result<()> {
        self.faults.as_ref().map_or(Ok(()), |f| FaultInjector::take(&f.syncs_left, "fsync"))
    }

    /// Writes all of `bytes` at `offset` (pwrite), so no file cursor is shared between callers.
    pub(crate) fn write_at(
        &self,
        file: &File,
        path: &Path,
        bytes: &[u8],
        offset: u64,
    ) -> Result<()> {
        self.check_write()
            .and_then(|()| file.write_all_at(bytes, offset))
            .map_err(|e| StorageError::io("write", path, e))
    }

    /// `fdatasync`: the data and the metadata needed to read it back (the file size), not the
    /// timestamps, which is all a log needs and cheaper than a full fsync.
    pub(crate) fn sync_data(&self, file: &File, path: &Path) -> Result<()> {
        self.check_sync()
            .and_then(|()| file.sync_data())
            .map_err(|e| StorageError::io("fdatasync", path, e))
    }

    /// Full `fsync`, for newly created files whose every bit of metadata matters.
    pub(crate) fn sync_all(&self, file: &File, path: &Path) -> Result<()> {
        self.check_sync()
            .and_then(|()| file.sync_all())
            .map_err(|e| StorageError::io("fsync", path, e))
    }

    pub(crate) fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        self.check_write()
            .and_then(|()| file.set_len(len))
            .map_err(|e| StorageError::io("truncate", path, e))
    }

    /// Creates a file that must not exist yet (a new segment), for reading and writing.
    pub(crate) fn create_new(&self, path: &Path) -> Result<File> {
        self.check_write()
            .and_then(|()| OpenOptions::new().read(true).write(true).create_new(true).open(path))
            .map_err(|e| StorageError::io("create", path, e))
    }

    pub(crate) fn remove_file(&self, path: &Path) -> Result<()> {
        self.check_write()
            .and_then(|()| fs::remove_file(path))
            .map_err(|e| StorageError::io("remove", path, e))
    }

    /// Makes creations, renames and removals in `dir` durable. Without it a crash can bring back
    /// a deleted segment or lose a renamed hard state, even though every file was fsync'd.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.check_sync()
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|e| StorageError::io("fsync directory", dir, e))
    }

    /// Replaces `dir/name` with `bytes` so that a crash leaves either the old file or the new one,
    /// never a mix: write `name.tmp`, fsync it, rename it over `name`, fsync the directory.
    ///
    /// Why each step: an in-place overwrite can tear (half an old vote, half a new one). The
    /// fsync before the rename stops the rename from reaching the disk before the data does
    /// (otherwise a crash can leave an empty or partial file under the final name). The rename
    /// is atomic. The directory fsync makes the rename itself durable; without it a crash could
    /// bring back the old file, forgetting, say, a vote that was already sent.
    pub(crate) fn write_atomically(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
        let final_path = dir.join(name);
        let temp_path = temp_path_for(&final_path);
        let file = self
            .check_write()
            .and_then(|()| {
                OpenOptions::new().write(true).create(true).truncate(true).open(&temp_path)
            })
            .map_err(|e| StorageError::io("create", &temp_path, e))?;
        self.write_at(&file, &temp_path, bytes, 0)?;
        self.sync_all(&file, &temp_path)?;
        drop(file);
        self.check_write()
            .and_then(|()| fs::rename(&temp_path, &final_path))
            .map_err(|e| StorageError::io("rename", &temp_path, e))?;
        self.sync_dir(dir)
    }
}

/// The suffix of files being written atomically. A file with it is either being written right
/// now or left over from a crash, and is never read as data.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

fn temp_path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Reads a whole file, mapping errors to the path.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| StorageError::io("read", path, e))
}

/// The names of the regular files in `dir`, sorted, skipping names that are not UTF-8 (the store
/// never creates such names, so they are not its files).
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        let is_file = entry.file_type().map_err(|e| StorageError::io("stat", &entry.path(), e))?;
        if is_file.is_file() {
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}
