//! The segmented log of one Kafka partition.
//!
//! **Owns:** the partition directory (`<data-dir>/<topic>-<partition>/`, chosen by the
//! caller): segment files named by base offset (`00000000000000000000.log`), their
//! sparse offset index (`.index`) and time index (`.timeindex`), the checkpoints
//! `log-start-offset`, `recovery-point` and `cleaner-offset` and the `.clean_shutdown`
//! marker, log compaction ([`cleaner`]: `<base>.log.cleaned` files, swapped in by
//! rename), recovery
//! after a crash, retention (which segments to delete, given the limits and the
//! time), and the fsync policy's mechanics (what must be synced for which offsets).
//!
//! **Must not know:** the network, Raft, Kafka APIs above the record batch, or what is
//! inside a batch beyond its fixed header (except [`cleaner`], which reads record keys
//! and values to compact, and rewrites batches off the read path). Batches arrive validated by the broker and
//! are stored byte for byte, so a fetch returns file bytes unchanged; only `baseOffset`
//! is rewritten on append (it is outside the CRC).
//!
//! **Invariants:**
//! - Segments are contiguous and ordered: each starts at the previous one's last
//!   offset + 1; the last segment is the only one written (the *active* segment).
//! - A segment file is a sequence of whole batches with strictly increasing offsets.
//!   After [`Log::open`] that holds on disk too: recovery cuts the active segment at
//!   the first torn or corrupt batch.
//! - Log end offset = last batch's `baseOffset + lastOffsetDelta + 1`.
//! - First segment's base offset <= log start offset <= log end offset; the log start
//!   only moves up, and is durable before the segments below it are removed.
//! - Every segment wholly below the recovery point was synced; after an unclean
//!   shutdown the segments from it on are checked batch by batch (CRC included).
//! - After a power loss the log is a prefix of what was appended (compaction aside)
//!   holding everything a successful sync covered. A failed sync fails every later
//!   one ([`SyncError::EarlierSyncFailed`]); the cleaner removes a record only because
//!   of a later one that is durable.
//! - Sealed segments' indexes are written once, then mapped read-only and never
//!   written again (`UNSAFE.md`); the active segment's indexes live in memory and are
//!   written when it is sealed and on [`Log::close`].
//! - Nothing read from disk is trusted: bad bytes become an error or a truncation,
//!   never a panic.
//! - One owner: a [`Log`] is used from its partition's shard only; the one piece that
//!   crosses threads is a [`SyncHandle`], so that `fdatasync` can run elsewhere.
//!
//! ```text
//!  append(batch) ──▶ set baseOffset = LEO ──▶ roll? ──▶ write at end of active .log
//!                                                       + in-memory .index/.timeindex
//!  read(offset)  ──▶ segment by base offset ──▶ .index: position at/before offset
//!                    ──▶ one pread ──▶ walk headers ──▶ whole batches ≤ max_bytes
//!
//!  dir/ 00000000000000000000.log  .index  .timeindex   sealed: indexes mmap'd
//!       00000000000000004711.log  (.index .timeindex)  active: indexes in a Vec
//!       log-start-offset  recovery-point  (.clean_shutdown, only while closed)
//! ```
//!
//! All I/O is synchronous and goes through the [`FileBackend`] trait ([`backend`]):
//! [`StdBackend`] (real files: `pread`/`pwrite`, `mmap` of sealed segments and indexes,
//! `fdatasync`) for [`Log::open`]; with the `testing` feature, an in-memory file system
//! that tracks what is durable and a fault-injecting one (`backend::Faulty`: failed
//! syncs, power cuts, torn writes), for [`Log::open_with`]. The `.log` file is reached
//! through `segment_file`, index files through `index`, and the cleaner, checkpoints and
//! recovery use the same backend.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod backend;
mod checkpoint;
pub mod cleaner;
mod config;
mod error;
mod index;
mod log;
mod recovery;
mod retention;
mod scan;
mod segment;
mod segment_file;

pub use backend::{BackendFile, FileBackend, StdBackend};
pub use cleaner::{CleanError, CleanPlan, CleanStats, CleanedSegments};
pub use config::{ConfigError, LogConfig};
pub use error::{
    AppendError, CorruptionKind, DeleteRecordsError, Error, IoOp, OpenError, ReadError, Result,
    RetentionError, SyncError, TruncateError,
};
pub use log::{
    AppendInfo, BatchAt, BatchLocation, InstallOutcome, Log, ReadSlice, RetentionOutcome,
    SyncHandle,
};
