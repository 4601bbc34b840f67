//! Errors of the partition log, split per operation so that callers can match the
//! outcome they react to (fetch matches [`ReadError::OffsetOutOfRange`] without reading
//! an I/O variant).

use std::io;
use std::path::PathBuf;

use sluice_protocol::record::BatchHeaderError;

use crate::config::ConfigError;

/// The file-system operation that failed, for [`OpenError::Io`] and its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating the partition directory.
    CreateDir,
    /// Listing the partition directory.
    ReadDir,
    /// Opening an existing file or directory.
    Open,
    /// Creating a new file.
    Create,
    /// Reading a file's length or metadata.
    Metadata,
    /// Reading bytes.
    Read,
    /// Writing bytes.
    Write,
    /// `fdatasync`/`fsync` of a file or directory.
    Sync,
    /// Cutting a file to a length.
    Truncate,
    /// Removing a file or directory.
    Remove,
    /// Memory-mapping an index file.
    Map,
    /// Renaming a file (a checkpoint's temporary file into place).
    Rename,
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateDir => "create directory",
            Self::ReadDir => "list directory",
            Self::Open => "open",
            Self::Create => "create",
            Self::Metadata => "stat",
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Truncate => "truncate",
            Self::Remove => "remove",
            Self::Map => "map",
            Self::Rename => "rename",
        })
    }
}

/// An I/O failure with its subject (the path) and verb (the operation).
///
/// Internal currency: each public error enum turns it into its own `Io` variant.
#[derive(Debug)]
pub(crate) struct IoFailure {
    pub(crate) op: IoOp,
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl IoFailure {
    pub(crate) fn new(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Why bytes inside a segment file are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The fixed header does not parse (short, bad length or magic).
    #[error(transparent)]
    Header(#[from] BatchHeaderError),
    /// The batch runs past the end of the file.
    #[error("batch of {batch_len} bytes runs past the end of the file ({available} bytes left)")]
    PastEnd {
        /// Length the batch announces.
        batch_len: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// The stored CRC-32C does not match the covered bytes.
    #[error("CRC-32C mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// CRC stored in the batch.
        expected: u32,
        /// CRC computed over the bytes.
        actual: u32,
    },
    /// The base offset does not follow the previous batch (or the segment base).
    #[error("batch base offset {base_offset} does not follow expected offset {expected}")]
    OffsetNotIncreasing {
        /// Base offset found.
        base_offset: i64,
        /// Smallest base offset allowed here.
        expected: i64,
    },
    /// `lastOffsetDelta` is negative or the offset range leaves the segment's range.
    #[error("batch at base offset {base_offset} has an invalid offset range")]
    InvalidOffsetRange {
        /// Base offset found.
        base_offset: i64,
    },
}

/// Failure of [`Log::open`](crate::Log::open).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is unusable.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for OpenError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::append`](crate::Log::append) and [`Log::roll`](crate::Log::roll).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The buffer does not start with a RecordBatch v2 header.
    #[error("not a record batch: {0}")]
    InvalidBatch(#[from] BatchHeaderError),
    /// The buffer is not exactly one batch long.
    #[error("buffer of {buffer_len} bytes holds a batch of {batch_len} bytes")]
    LengthMismatch {
        /// Length the batch header announces (header included).
        batch_len: usize,
        /// Length of the buffer given.
        buffer_len: usize,
    },
    /// `lastOffsetDelta` is negative.
    #[error("negative lastOffsetDelta {last_offset_delta}")]
    InvalidLastOffsetDelta {
        /// The value found.
        last_offset_delta: i32,
    },
    /// Assigning offsets would overflow `i64`.
    #[error("offset overflow appending at {log_end_offset}")]
    OffsetOverflow {
        /// Log end offset at the time.
        log_end_offset: i64,
    },
    /// A file-system operation failed. The segment was cut back to its length before
    /// the write where possible; the log stays usable.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for AppendError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::read`](crate::Log::read) and the other read paths.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The offset is below the log start or above the log end (Kafka
    /// `OFFSET_OUT_OF_RANGE`). Reading at exactly the log end offset is not an error.
    #[error("offset {requested} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// Offset asked for.
        requested: i64,
        /// First offset in the log.
        log_start_offset: i64,
        /// Next offset to be assigned.
        log_end_offset: i64,
    },
    /// Segment bytes that passed recovery no longer parse (changed under us, or an
    /// index entry points at garbage). Fatal for the partition.
    #[error("corrupt segment {path} at position {position}: {kind}", path = .path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the bad batch.
        position: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for ReadError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::sync`](crate::Log::sync), [`SyncHandle::run`](crate::SyncHandle::run),
/// [`Log::close`](crate::Log::close) and [`Log::delete`](crate::Log::delete).
///
/// A failed `fsync` is fatal for the partition: the kernel may have dropped the dirty
/// pages, so retrying does not make the data durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An earlier sync of the log failed, so nothing written before it can be known
    /// durable any more; every sync of the log fails from then on.
    #[error("an earlier sync of the log in {dir} failed", dir = .dir.display())]
    EarlierSyncFailed {
        /// The partition directory.
        dir: PathBuf,
    },
}

impl From<IoFailure> for SyncError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::delete_records`](crate::Log::delete_records).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteRecordsError {
    /// The new log start offset is below the current log start or above the log end
    /// (Kafka `OFFSET_OUT_OF_RANGE`). Nothing changed.
    #[error("new log start offset {requested} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// Offset asked for.
        requested: i64,
        /// First offset in the log.
        log_start_offset: i64,
        /// Next offset to be assigned.
        log_end_offset: i64,
    },
    /// A file-system operation failed (rolling, writing the log start checkpoint or
    /// removing segment files). The log start offset in memory is only moved once its
    /// checkpoint is durable; segments already removed stay removed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for DeleteRecordsError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::enforce_retention`](crate::Log::enforce_retention).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// A file-system operation failed (rolling, writing the log start checkpoint or
    /// removing segment files). Segments already removed stay removed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for RetentionError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Failure of [`Log::truncate_to`](crate::Log::truncate_to).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TruncateError {
    /// The cut would fall below the log start offset: the batch holding `requested`
    /// starts below it, or `requested` itself does. Nothing changed.
    #[error("cannot truncate to {requested}: below the log start offset {log_start_offset}")]
    BelowLogStart {
        /// Offset asked for.
        requested: i64,
        /// First offset in the log.
        log_start_offset: i64,
    },
    /// Reading the segment to find the cut failed (I/O or a corrupt batch). Nothing
    /// changed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A file-system operation failed. Segments above the cut already removed stay
    /// removed (the log is then a longer prefix than asked for, still valid).
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<IoFailure> for TruncateError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Any storage error, for callers that do not distinguish operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`AppendError`].
    #[error(transparent)]
    Append(#[from] AppendError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// See [`SyncError`].
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// See [`DeleteRecordsError`].
    #[error(transparent)]
    DeleteRecords(#[from] DeleteRecordsError),
    /// See [`RetentionError`].
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// See [`TruncateError`].
    #[error(transparent)]
    Truncate(#[from] TruncateError),
    /// See [`CleanError`](crate::CleanError).
    #[error(transparent)]
    Clean(#[from] crate::cleaner::CleanError),
}

/// `Result` with the umbrella [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
