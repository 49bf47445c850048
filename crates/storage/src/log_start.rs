//! The log-start file (`log-start`): the first index the log still holds after compaction.
//!
//! Compaction removes whole segments, so the first remaining segment usually starts below the
//! compaction point; this file is what keeps the entries below it hidden after a restart. It is
//! written (atomically) before any segment is removed, so a crash midway leaves segments that
//! recovery recognises as wholly below the start and removes.

use std::path::Path;

use conclave_core::Index;

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::fs::{self, Io};
use crate::sealed::{self, Reader};

/// The file's name in the store directory.
pub(crate) const LOG_START_FILE: &str = "log-start";
const MAGIC: &[u8; 4] = b"CVLS";

/// Decodes a log-start file's bytes.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Index, CorruptionError> {
    let corrupt = |reason| CorruptionError::new(path, 0, reason);
    let mut reader = Reader::new(sealed::unseal(MAGIC, bytes).map_err(corrupt)?);
    let first = reader.u64().map_err(corrupt)?;
    reader.finish().map_err(corrupt)?;
    if first == 0 {
        return Err(corrupt(Corruption::BadHeader("log start is index 0")));
    }
    Ok(Index(first))
}

/// Makes `first` the durable log start.
pub(crate) fn save(io: &Io, dir: &Path, first: Index) -> Result<()> {
    io.write_atomically(dir, LOG_START_FILE, &sealed::seal(MAGIC, &first.0.to_le_bytes()))
}

/// The durable log start; index 1 when the log was never compacted.
pub(crate) fn load(dir: &Path) -> Result<Index> {
    let path = dir.join(LOG_START_FILE);
    if !path.exists() {
        return Ok(Index(1));
    }
    decode(&fs::read_file(&path)?, &path).map_err(StorageError::Corrupt)
}
