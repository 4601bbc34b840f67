//! Small per-partition checkpoint files and the clean-shutdown marker.
//!
//! ```text
//! log-start-offset   [ magic "SLCKPT01" | value i64 BE | !value i64 BE ]  24 bytes
//! recovery-point     (same format)
//! .clean_shutdown    empty; present only between Log::close and the next Log::open
//! ```
//!
//! A checkpoint is replaced atomically: written to a temporary file, synced
//! (`fdatasync`), renamed over the old one, then the directory is synced (`fsync`). A file that is missing,
//! of the wrong size, with the wrong magic or whose complement does not match reads as
//! "no checkpoint" (with a warning when it exists), and the caller falls back to the
//! safe default (log start = first segment, recovery point = 0, i.e. a full scan).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{BackendFile, FileBackend, remove_if_exists};
use crate::error::{IoFailure, IoOp};

/// File name of the log start offset checkpoint.
pub(crate) const LOG_START_OFFSET: &str = "log-start-offset";
/// File name of the recovery point checkpoint.
pub(crate) const RECOVERY_POINT: &str = "recovery-point";
/// File name of the log cleaner's offset checkpoint (offsets below it are compacted).
pub(crate) const CLEANER_OFFSET: &str = "cleaner-offset";
/// File name of the clean-shutdown marker.
pub(crate) const CLEAN_SHUTDOWN: &str = ".clean_shutdown";
/// Suffix of a checkpoint's temporary file (`<name>.<n>.tmp`).
const TMP_SUFFIX: &str = ".tmp";

const MAGIC: &[u8; 8] = b"SLCKPT01";
/// Bytes of a checkpoint file.
pub(crate) const CHECKPOINT_LEN: usize = 24;

/// The bytes of a checkpoint holding `value`.
pub(crate) fn encode(value: i64) -> [u8; CHECKPOINT_LEN] {
    let mut out = [0u8; CHECKPOINT_LEN];
    let (magic, rest) = out.split_at_mut(MAGIC.len());
    magic.copy_from_slice(MAGIC);
    let (v, not_v) = rest.split_at_mut(8);
    v.copy_from_slice(&value.to_be_bytes());
    not_v.copy_from_slice(&(!value).to_be_bytes());
    out
}

/// The value of checkpoint bytes, `None` if they are not a whole, intact checkpoint.
pub(crate) fn decode(bytes: &[u8]) -> Option<i64> {
    let bytes: &[u8; CHECKPOINT_LEN] = bytes.try_into().ok()?;
    let (magic, rest) = bytes.split_at(MAGIC.len());
    if magic != MAGIC {
        return None;
    }
    let (v, not_v) = rest.split_at(8);
    let v = i64::from_be_bytes(v.try_into().ok()?);
    let not_v = i64::from_be_bytes(not_v.try_into().ok()?);
    (v == !not_v).then_some(v)
}

/// A tag for [`write`]'s temporary file that no other write in this process uses.
pub(crate) fn next_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Reads the checkpoint `name` in `dir`: `None` when missing or damaged (logged).
pub(crate) fn read(
    backend: &dyn FileBackend,
    dir: &Path,
    name: &str,
) -> Result<Option<i64>, IoFailure> {
    let path = dir.join(name);
    let file = match backend.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoFailure::new(IoOp::Open, &path, e)),
    };
    let len = file
        .len()
        .map_err(|e| IoFailure::new(IoOp::Metadata, &path, e))?;
    let value = if len == CHECKPOINT_LEN as u64 {
        let mut bytes = [0u8; CHECKPOINT_LEN];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| IoFailure::new(IoOp::Read, &path, e))?;
        decode(&bytes)
    } else {
        None
    };
    if value.is_none() {
        tracing::warn!(path = %path.display(), len, "ignoring damaged checkpoint file");
    }
    Ok(value)
}

/// Replaces the checkpoint `name` in `dir` with `value`, durably: temporary file
/// `<name>.<tag>.tmp` (distinct tags let two writers run at once), sync, rename,
/// sync of `dir_file`.
pub(crate) fn write(
    backend: &dyn FileBackend,
    dir: &Path,
    dir_file: &dyn BackendFile,
    name: &str,
    tag: u64,
    value: i64,
) -> Result<(), IoFailure> {
    let tmp = dir.join(format!("{name}.{tag}{TMP_SUFFIX}"));
    let path = dir.join(name);
    let file = backend
        .create(&tmp)
        .map_err(|e| IoFailure::new(IoOp::Create, &tmp, e))?;
    file.write_all_at(&encode(value), 0)
        .map_err(|e| IoFailure::new(IoOp::Write, &tmp, e))?;
    file.sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, &tmp, e))?;
    drop(file);
    backend
        .rename(&tmp, &path)
        .map_err(|e| IoFailure::new(IoOp::Rename, &tmp, e))?;
    dir_file
        .sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, dir, e))
}

/// Removes temporary checkpoint files left by a crash during [`write`].
pub(crate) fn remove_temporaries(backend: &dyn FileBackend, dir: &Path) -> Result<(), IoFailure> {
    let names = backend
        .list_dir(dir)
        .map_err(|e| IoFailure::new(IoOp::ReadDir, dir, e))?;
    for name in names {
        let Some(name) = name.to_str() else { continue };
        let ours = [LOG_START_OFFSET, RECOVERY_POINT, CLEANER_OFFSET]
            .iter()
            .any(|c| name.strip_prefix(c).is_some_and(|r| r.starts_with('.')));
        if ours && name.ends_with(TMP_SUFFIX) {
            let path = dir.join(name);
            remove_if_exists(backend, &path).map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
        }
    }
    Ok(())
}

/// Whether the clean-shutdown marker exists.
pub(crate) fn clean_marker_exists(
    backend: &dyn FileBackend,
    dir: &Path,
) -> Result<bool, IoFailure> {
    let path = dir.join(CLEAN_SHUTDOWN);
    backend
        .exists(&path)
        .map_err(|e| IoFailure::new(IoOp::Metadata, &path, e))
}

/// Creates the clean-shutdown marker durably (file, then directory sync).
pub(crate) fn write_clean_marker(
    backend: &dyn FileBackend,
    dir: &Path,
    dir_file: &dyn BackendFile,
) -> Result<(), IoFailure> {
    let path = dir.join(CLEAN_SHUTDOWN);
    let file = backend
        .create(&path)
        .map_err(|e| IoFailure::new(IoOp::Create, &path, e))?;
    file.sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, &path, e))?;
    dir_file
        .sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, dir, e))
}

/// Removes the clean-shutdown marker durably, so that a crash from now on is seen as
/// unclean by the next open.
pub(crate) fn remove_clean_marker(
    backend: &dyn FileBackend,
    dir: &Path,
    dir_file: &dyn BackendFile,
) -> Result<(), IoFailure> {
    let path = dir.join(CLEAN_SHUTDOWN);
    let removed =
        remove_if_exists(backend, &path).map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
    if !removed {
        return Ok(());
    }
    dir_file
        .sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, dir, e))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use super::*;
    use crate::backend::StdBackend;

    const B: &StdBackend = &StdBackend;

    fn dir() -> (tempfile::TempDir, Arc<dyn BackendFile>) {
        let tmp = tempfile::tempdir().unwrap();
        let f = B.open_dir(tmp.path()).unwrap();
        (tmp, f)
    }

    #[test]
    fn round_trips_values() {
        for v in [0, 1, -1, 42, i64::MAX, i64::MIN] {
            assert_eq!(decode(&encode(v)), Some(v));
        }
        let (tmp, f) = dir();
        write(B, tmp.path(), f.as_ref(), RECOVERY_POINT, 0, 4711).unwrap();
        assert_eq!(read(B, tmp.path(), RECOVERY_POINT).unwrap(), Some(4711));
        write(B, tmp.path(), f.as_ref(), RECOVERY_POINT, 1, 4712).unwrap();
        assert_eq!(read(B, tmp.path(), RECOVERY_POINT).unwrap(), Some(4712));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_reads_as_none() {
        let (tmp, _f) = dir();
        assert_eq!(read(B, tmp.path(), LOG_START_OFFSET).unwrap(), None);
    }

    #[test]
    fn torn_or_damaged_reads_as_none() {
        let (tmp, _f) = dir();
        let good = encode(1234);
        let path = tmp.path().join(LOG_START_OFFSET);
        for len in 0..CHECKPOINT_LEN {
            fs::write(&path, &good[..len]).unwrap();
            assert_eq!(
                read(B, tmp.path(), LOG_START_OFFSET).unwrap(),
                None,
                "{len}"
            );
        }
        for i in 0..CHECKPOINT_LEN {
            let mut bad = good;
            bad[i] ^= 0x10;
            fs::write(&path, bad).unwrap();
            assert_eq!(read(B, tmp.path(), LOG_START_OFFSET).unwrap(), None, "{i}");
        }
        let mut long = good.to_vec();
        long.push(0);
        fs::write(&path, &long).unwrap();
        assert_eq!(read(B, tmp.path(), LOG_START_OFFSET).unwrap(), None);
        fs::write(&path, [0xffu8; 4096]).unwrap();
        assert_eq!(read(B, tmp.path(), LOG_START_OFFSET).unwrap(), None);
    }

    #[test]
    fn temporaries_are_removed_and_others_kept() {
        let (tmp, _f) = dir();
        let d = tmp.path();
        for name in [
            "recovery-point.3.tmp",
            "log-start-offset.0.tmp",
            "recovery-point",
            "other.tmp",
            "00000000000000000000.log",
        ] {
            fs::write(d.join(name), b"x").unwrap();
        }
        remove_temporaries(B, d).unwrap();
        let mut left: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["00000000000000000000.log", "other.tmp", "recovery-point"]
        );
    }

    #[test]
    fn clean_marker_lifecycle() {
        let (tmp, f) = dir();
        assert!(!clean_marker_exists(B, tmp.path()).unwrap());
        write_clean_marker(B, tmp.path(), f.as_ref()).unwrap();
        assert!(clean_marker_exists(B, tmp.path()).unwrap());
        remove_clean_marker(B, tmp.path(), f.as_ref()).unwrap();
        assert!(!clean_marker_exists(B, tmp.path()).unwrap());
        remove_clean_marker(B, tmp.path(), f.as_ref()).unwrap();
    }
}
