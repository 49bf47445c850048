//! One segment file of the log: a run of records whose first index is in the file name.
//!
//! The active (last) segment keeps appended records in a write buffer until they are flushed, so
//! many small appends cost one `pwrite` and one `fdatasync` instead of one each. Records are
//! always buffered and flushed whole, so every record lies entirely in the file or entirely in
//! the buffer.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use conclave_core::{Entry, Index};

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::fs::Io;
use crate::record::{self, TornTail};

const NAME_PREFIX: &str = "log-";
const NAME_SUFFIX: &str = ".seg";

/// The file name of the segment whose first record holds `first`: zero-padded so that names sort
/// in index order.
pub(crate) fn segment_name(first: Index) -> String {
    format!("{NAME_PREFIX}{:020}{NAME_SUFFIX}", first.0)
}

/// `Some(Ok(first))` for a segment file name, `Some(Err)` for a name that looks like a segment but
/// does not parse, `None` for files that are not segments.
pub(crate) fn parse_segment_name(name: &str) -> Option<Result<Index, Corruption>> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    let parsed = if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok().filter(|first| *first > 0).map(Index)
    } else {
        None
    };
    Some(parsed.ok_or(Corruption::BadFileName))
}

/// How large a segment may grow and how far ahead its file is zero-filled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentSizes {
    pub(crate) size_max: u64,
    pub(crate) preallocate: u64,
}

/// One open segment.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    /// Shared so that a group-commit leader can `fdatasync` it without holding the store's lock.
    pub(crate) file: Arc<File>,
    /// The index of the first record (also in the file name).
    pub(crate) first_index: Index,
    /// The byte offset of each record. Invariant: strictly increasing, `offsets[i]` holds
    /// `first_index + i`.
    offsets: Vec<u32>,
    /// Bytes handed to the OS with `pwrite`. Invariant: the buffer's bytes follow these.
    written_len: u64,
    /// The file's size: the records plus preallocated zeros. Invariant: `>= written_len`.
    allocated_len: u64,
    /// Preallocation stops here (the log's segment size bound).
    size_max: u64,
    /// Zeros are written this far ahead of the records (0: never).
    preallocate: u64,
    /// Records appended but not yet written.
    buffer: Vec<u8>,
}

impl Segment {
    /// Creates an empty segment file starting at `first`. The caller fsyncs the directory.
    pub(crate) fn create(
        io: &Io,
        dir: &Path,
        first: Index,
        sizes: SegmentSizes,
    ) -> Result<Segment> {
        let path = dir.join(segment_name(first));
        let file = io.create_new(&path)?;
        Ok(Segment {
            path,
            file: Arc::new(file),
            first_index: first,
            offsets: Vec::new(),
            written_len: 0,
            allocated_len: 0,
            size_max: sizes.size_max,
            preallocate: sizes.preallocate,
            buffer: Vec::new(),
        })
    }

    /// Opens and scans an existing segment. In the last segment a torn tail is cut off (and the
    /// cut made durable) with a warning; anything else wrong is an error naming the file and
    /// offset.
    pub(crate) fn open(
        io: &Io,
        path: PathBuf,
        first: Index,
        is_last: bool,
        sizes: SegmentSizes,
        scratch: &mut Vec<u8>,
    ) -> Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        // One buffer for every segment of an open: allocating (and page-faulting in) a fresh
        // 64 MiB buffer per segment doubled the time to open a 1 GiB log.
        scratch.clear();
        (&file).read_to_end(scratch).map_err(|e| StorageError::io("read", &path, e))?;
        let scan = record::scan_segment(scratch, first, is_last, &path)?;
        if let Some(TornTail { offset, bytes: dropped, zeroed: true, .. }) = &scan.torn {
            // Preallocated space (or zeros a file system left): the normal state after a crash.
            tracing::info!(
                file = %path.display(),
                offset,
                bytes_dropped = dropped,
                "cutting a zero-filled tail of {dropped} bytes off the last log segment at byte offset {offset}"
            );
        } else if let Some(TornTail { offset, bytes: dropped, reason, .. }) = &scan.torn {
            tracing::warn!(
                file = %path.display(),
                offset,
                bytes_dropped = dropped,
                %reason,
                "cutting a torn tail of {dropped} bytes off the last log segment at byte offset {offset}"
            );
        }
        if scan.torn.is_some() {
            io.set_len(&file, &path, scan.valid_len)?;
            io.sync_data(&file, &path)?;
        }
        Ok(Segment {
            path,
            file: Arc::new(file),
            first_index: first,
            offsets: scan.offsets,
            written_len: scan.valid_len,
            allocated_len: scan.valid_len,
            size_max: sizes.size_max,
            preallocate: sizes.preallocate,
            buffer: Vec::new(),
        })
    }

    /// Bytes in the segment, written or buffered.
    pub(crate) fn len(&self) -> u64 {
        self.written_len + self.buffer.len() as u64
    }

    /// Records in the segment.
    pub(crate) fn count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The index the next record appended here will hold.
    pub(crate) fn next_index(&self) -> Index {
        Index(self.first_index.0 + self.count())
    }

    /// Bytes buffered and not yet handed to the OS.
    pub(crate) fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Buffers `entry`, which must hold [`Segment::next_index`].
    pub(crate) fn push(&mut self, entry: &Entry) -> Result<()> {
        debug_assert_eq!(entry.index, self.next_index());
        let offset = u32::try_from(self.len())
            .map_err(|_| StorageError::InvalidOptions("segment grew past 4 GiB"))?;
        record::encode(entry, &mut self.buffer)?;
        self.offsets.push(offset);
        Ok(())
    }

    /// Hands the buffered records to the OS (not yet durable: see [`Segment::sync`]), extending
    /// the preallocated zeros past them when they run out.
    pub(crate) fn flush(&mut self, io: &Io) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        io.write_at(&self.file, &self.path, &self.buffer, self.written_len)?;
        self.written_len += self.buffer.len() as u64;
        self.buffer.clear();
        if self.written_len > self.allocated_len {
            self.allocated_len = self.written_len;
        }
        // Keep at least a quarter chunk of zeros ahead, so the data write never extends the file.
        let target = (self.written_len + self.preallocate).min(self.size_max);
        if self.allocated_len - self.written_len < self.preallocate / 4
            && self.allocated_len < target
        {
            let zeros = vec![0; (target - self.allocated_len) as usize];
            io.write_at(&self.file, &self.path, &zeros, self.allocated_len)?;
            self.allocated_len = target;
        }
        Ok(())
    }

    /// Cuts the preallocated zeros off, so that only a live segment ever has a zero tail.
    pub(crate) fn trim(&mut self, io: &Io) -> Result<()> {
        if self.allocated_len > self.written_len {
            io.set_len(&self.file, &self.path, self.written_len)?;
            self.allocated_len = self.written_len;
        }
        Ok(())
    }

    /// Flushes, trims and fdatasyncs a segment that will take no more records: from now on any
    /// bad byte in it is corruption, never a torn write.
    pub(crate) fn seal(&mut self, io: &Io) -> Result<()> {
        self.flush(io)?;
        self.trim(io)?;
        io.sync_data(&self.file, &self.path)
    }

    /// Flushes and `fdatasync`s.
    pub(crate) fn sync(&mut self, io: &Io) -> Result<()> {
        self.flush(io)?;
        io.sync_data(&self.file, &self.path)
    }

    /// Keeps the first `keep` records. Cutting into written bytes is made durable at once, so a
    /// crash can never bring back the old records behind newer ones written after the cut (which
    /// recovery would rightly call corruption).
    pub(crate) fn truncate(&mut self, io: &Io, keep: u64) -> Result<()> {
        let Some(&cut) = self.offsets.get(keep as usize) else { return Ok(()) };
        let cut = u64::from(cut);
        self.offsets.truncate(keep as usize);
        if cut >= self.written_len {
            self.buffer.truncate((cut - self.written_len) as usize);
        } else {
            self.buffer.clear();
            io.set_len(&self.file, &self.path, cut)?;
            self.written_len = cut;
            self.allocated_len = cut;
            io.sync_data(&self.file, &self.path)?;
        }
        Ok(())
    }

    /// The entries `lo..hi`, which must lie in this segment. Each record's checksum is verified
    /// again: bytes can rot after recovery checked them.
    pub(crate) fn read(&self, lo: Index, hi: Index) -> Result<Vec<Entry>> {
        let position = |index: Index| -> u64 {
            self.offsets
                .get((index.0 - self.first_index.0) as usize)
                .map_or(self.len(), |o| u64::from(*o))
        };
        let (start, end) = (position(lo), position(hi));
        let mut bytes = Vec::with_capacity((end - start) as usize);
        if start < self.written_len {
            let file_end = end.min(self.written_len);
            bytes.resize((file_end - start) as usize, 0);
            self.file
                .read_exact_at(&mut bytes, start)
                .map_err(|e| StorageError::io("read", &self.path, e))?;
        }
        if end > self.written_len {
            let from = start.saturating_sub(self.written_len) as usize;
            bytes.extend_from_slice(&self.buffer[from..(end - self.written_len) as usize]);
        }
        let mut bytes = Bytes::from(bytes);
        let mut entries = Vec::with_capacity((hi.0 - lo.0) as usize);
        let mut index = lo;
        while index < hi {
            let (entry, len) = record::decode_checked(&bytes, index).map_err(|reason| {
                let at = position(index);
                StorageError::Corrupt(CorruptionError::new(&self.path, at, reason))
            })?;
            entries.push(entry);
            bytes = bytes.slice(len..);
            index = index.next();
        }
        Ok(entries)
    }
}
