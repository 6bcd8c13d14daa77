//! Checkpoint files and atomic writes.
//!
//! A checkpoint is `MAGIC` (8 bytes), a little-endian u32 format version, the postcard-encoded
//! training state, and a little-endian CRC-32 of everything before it. Files are written to a
//! temporary name, flushed to disk and renamed over the old one, so a kill at any moment leaves
//! either the old file or the new one, never a mix.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"AE-CKPT\n";
/// Bumped whenever the encoded state changes shape; older checkpoints are refused. Version 4:
/// weight decay left the code penalties for an optimiser setting of its own
/// (`Config::weight_decay`), so a version-3 run cannot be read as it was written. Version 5: the
/// configuration holds the model's architecture and input shape (spec files).
pub const VERSION: u32 = 5;

/// What can be wrong with a checkpoint file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the checkpoint magic.
    #[error("{path}: not a trainer checkpoint (bad magic)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// Written by another format version.
    #[error("{path}: checkpoint format version {found}, this trainer reads version {VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
    },
    /// The checksum does not match: the file is damaged or truncated.
    #[error("{path}: checkpoint is corrupt or truncated (checksum mismatch)")]
    Checksum {
        /// The file.
        path: PathBuf,
    },
    /// The payload does not decode.
    #[error("{path}: checkpoint does not decode: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// postcard's error.
        source: postcard::Error,
    },
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// On failure `path` is as it was and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_all_or_nothing(&[(path, bytes)])
}

/// Writes several files so that none is replaced unless all were written completely: each goes
/// to a temporary file beside it first, written and flushed to disk (all of them removed again
/// on any failure), then all are renamed into place and their directories synced. A failure
/// before the renames (a full disk, an unwritable directory) leaves every file as it was.
pub fn write_all_or_nothing(files: &[(&Path, &[u8])]) -> std::io::Result<()> {
    let tmp = |p: &Path| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        p.with_file_name(name)
    };
    let temps: Vec<PathBuf> = files.iter().map(|(p, _)| tmp(p)).collect();
    let clean = || {
        for t in &temps {
            let _ = fs::remove_file(t);
        }
    };
    let named = |path: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    for ((path, bytes), t) in files.iter().zip(&temps) {
        if let Err(e) = write_synced(t, bytes) {
            clean();
            return Err(named(path, e));
        }
    }
    for ((path, _), t) in files.iter().zip(&temps) {
        if let Err(e) = fs::rename(t, path) {
            clean();
            return Err(named(path, e));
        }
    }
    // Make the renames themselves durable, each directory once; not every platform lets a
    // directory be opened.
    let mut dirs: Vec<&Path> = files
        .iter()
        .map(|(path, _)| {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Creates `path` with `bytes`, flushed to disk, through [`fault`]'s budget.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    let allowed = fault::take(bytes.len());
    file.write_all(&bytes[..allowed])?;
    if allowed < bytes.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device (injected fault)",
        ));
    }
    file.sync_all()
}

/// Fault injection for tests: every file the trainer writes goes through [`write_all_or_nothing`],
/// which [`disk_full_after`](fault::disk_full_after) can make fail as a full disk does.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Bytes the writes may still write before the disk is "full"; `u64::MAX`: no fault.
    static BUDGET: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Ends the injected fault when dropped.
    #[must_use = "the fault lasts until the guard drops"]
    pub struct DiskFull(());

    impl Drop for DiskFull {
        fn drop(&mut self) {
            BUDGET.store(u64::MAX, Ordering::SeqCst);
        }
    }

    /// From now until the guard drops, the trainer's writes fail with `StorageFull` once `bytes`
    /// more bytes have been written, in all files together: the file being written then holds
    /// what fitted. Process-wide: tests that use it run one at a time.
    pub fn disk_full_after(bytes: u64) -> DiskFull {
        BUDGET.store(bytes, Ordering::SeqCst);
        DiskFull(())
    }

    /// Takes up to `wanted` bytes from the budget; returns how many may be written.
    pub(super) fn take(wanted: usize) -> usize {
        let mut granted = wanted;
        let _ = BUDGET.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            if left == u64::MAX {
                return None;
            }
            granted = usize::try_from(left).unwrap_or(usize::MAX).min(wanted);
            Some(left - granted as u64)
        });
        granted
    }
}

/// `value` as the trainer writes JSON files: pretty, with a final newline.
pub fn json_text<T: Serialize>(value: &T) -> std::io::Result<String> {
    Ok(serde_json::to_string_pretty(value).map_err(std::io::Error::other)? + "\n")
}

/// Writes `value` as pretty JSON, with a final newline, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let json = json_text(value)?;
    write_atomic(path, json.as_bytes())
}

/// Encodes `state` with header and checksum and writes it atomically.
pub fn save<T: Serialize>(path: &Path, state: &T) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = encode(state).map_err(io)?;
    write_atomic(path, &bytes).map_err(io)
}

/// The bytes of a checkpoint of `state`: magic, version, postcard, CRC-32.
pub fn encode<T: Serialize>(state: &T) -> std::io::Result<Vec<u8>> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    let mut bytes = postcard::to_extend(state, bytes).map_err(std::io::Error::other)?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// Reads and checks a checkpoint written by [`save`].
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let p = || path.to_path_buf();
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io { path: p(), source })?;
    decode(path, &bytes)
}

/// Checks and decodes checkpoint bytes; `path` names them in errors.
pub fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, CheckpointError> {
    let p = || path.to_path_buf();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::BadMagic { path: p() });
    }
    if bytes.len() < MAGIC.len() + 8 {
        return Err(CheckpointError::Checksum { path: p() });
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(CheckpointError::Checksum { path: p() });
    }
    let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(CheckpointError::Version {
            path: p(),
            found: version,
        });
    }
    postcard::from_bytes(&body[12..]).map_err(|source| CheckpointError::Decode { path: p(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let state = (42u64, vec![1.5f32, -2.0], "fc".to_string());
        save(&path, &state).unwrap();
        let back: (u64, Vec<f32>, String) = load(&path).unwrap();
        assert_eq!(back, state);
        assert!(
            !dir.path().join("c.bin.tmp").exists(),
            "the temporary file is renamed away"
        );

        let good = fs::read(&path).unwrap();
        let decode_err = |bytes: &[u8]| decode::<(u64, Vec<f32>, String)>(&path, bytes).unwrap_err();
        // Every single-byte flip after the magic is caught by the checksum.
        for i in MAGIC.len()..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(
                matches!(decode_err(&bad), CheckpointError::Checksum { .. }),
                "flip at {i}"
            );
        }
        // Every truncation is caught.
        for n in 0..good.len() {
            let e = decode_err(&good[..n]);
            assert!(
                matches!(e, CheckpointError::Checksum { .. } | CheckpointError::BadMagic { .. }),
                "len {n}"
            );
        }
        let mut other = good.clone();
        other[0] = b'X';
        assert!(matches!(decode_err(&other), CheckpointError::BadMagic { .. }));
        // A future version with a valid checksum is refused by version.
        let mut future = good[..good.len() - 4].to_vec();
        future[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        let crc = crc32fast::hash(&future);
        future.extend_from_slice(&crc.to_le_bytes());
        let e = decode_err(&future);
        assert!(matches!(e, CheckpointError::Version { found, .. } if found == VERSION + 1));
        assert!(e.to_string().contains("c.bin"), "errors name the file: {e}");
    }
}
