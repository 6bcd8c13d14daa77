//! A run directory: the checkpoint, the history and the final metrics, each written
//! atomically. The figures' directory is named here too; what goes in it is drawn above the loop.

use super::{history_csv, TestReport, TrainError, Trainer};
use crate::checkpoint;
use crate::data::Validation;
use crate::provenance::Provenance;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File names inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.bin";
/// Per-epoch history, CSV.
pub const HISTORY: &str = "history.csv";
/// Final metrics, JSON.
pub const METRICS: &str = "metrics.json";
/// Directory of the PNG figures.
pub const FIGURES: &str = "figures";
/// The lock a trainer holds on its run directory while it uses it.
pub const LOCK: &str = "trainer.lock";

/// A run directory held by this process: an advisory lock (`flock` on Unix, `LockFileEx` on
/// Windows) on its [`LOCK`] file, which names this process. The system drops the lock when the
/// process ends, however it ends, so a crashed or killed run leaves nothing stuck; the file
/// itself may stay, unlocked.
///
/// A directory the lock created is removed again when the lock is dropped with nothing but the
/// lock file in it (a run refused for its data, say): a failed start leaves no trace.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
    /// The directory, when this lock created it.
    created: Option<std::path::PathBuf>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let Some(dir) = &self.created else { return };
        let only_the_lock = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
                .is_ok_and(|names| names == [std::ffi::OsString::from(LOCK)])
        });
        if only_the_lock {
            let _ = std::fs::remove_file(dir.join(LOCK));
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Why a run directory cannot be held.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{dir} is in use by another trainer ({holder}); wait for it to finish, or stop it, or pass --out DIR")]
    Busy {
        /// The run directory.
        dir: std::path::PathBuf,
        /// What the lock file says of the holder.
        holder: String,
    },
    /// The directory or its lock file cannot be created or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Creates `dir` if needed and holds it for this process, or says which process holds it.
pub fn lock(dir: &Path) -> Result<RunLock, LockError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let created = (!dir.exists()).then(|| dir.to_path_buf());
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Busy {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "a process that has not said which yet".into()
                } else {
                    holder.into()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // Who holds it, for a second trainer's message.
    let args: Vec<String> = std::env::args().collect();
    let note = format!("process {}: {}\n", std::process::id(), args.join(" "));
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()))
        .map_err(io)?;
    Ok(RunLock { _file: file, created })
}

impl Trainer {
    /// Writes the checkpoint and the history into `dir`, both or neither: after a failure (a full
    /// disk, say) both files are as they were.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        // The error names the file that failed.
        let io = |source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let state = checkpoint::encode(&self.state).map_err(io)?;
        let history = history_csv(&self.state.history);
        checkpoint::write_all_or_nothing(&[
            (&dir.join(CHECKPOINT), &state),
            (&dir.join(HISTORY), history.as_bytes()),
        ])
        .map_err(io)
    }

    /// The run's metrics as they stand, with the test figures of `report`.
    pub fn metrics(&self, report: &TestReport) -> Metrics {
        let st = &self.state;
        Metrics {
            variant: st.config.variant.clone(),
            finished: st.finished,
            seed: st.config.seed,
            threads: st.config.threads,
            batch_size: st.config.batch_size,
            train_samples: self.train.len(),
            test_samples: self.test.len(),
            epochs: st
                .config
                .phases
                .iter()
                .zip(&st.epochs_per_phase)
                .map(|(p, &n)| (p.name.clone(), n.into()))
                .collect(),
            wall_seconds: st.elapsed_s,
            test_mse: report.test_mse,
            code_units: report.codes.ncols(),
            zero_code_fraction: report.zero_code_fraction,
            near_zero_code_fraction: report.near_zero_code_fraction,
            backend: crate::matmul::backend_name().to_string(),
            device: self.device_name(),
            simd: crate::simd::active().name().to_string(),
            validation: match st.config.data.as_ref().map(|d| d.validation) {
                Some(Validation::HeldOut { seed }) => {
                    format!("a sixth of the training samples, held out with seed {seed} (no test set)")
                }
                Some(Validation::OneClass { seed, normal }) => format!(
                    "a sixth of the normal training samples (label {normal}, or all when unlabelled), held out with seed {seed}; the test set is not used for validation"
                ),
                _ => "the test set".into(),
            },
            scaling: st
                .config
                .data
                .as_ref()
                .map_or_else(String::new, |d| d.scaling.kind.name().to_string()),
            provenance: Some(Provenance::of(st.config.data.as_ref())),
        }
    }

    /// Writes `metrics` to `dir`'s `metrics.json`.
    pub fn write_metrics(&self, dir: &Path, metrics: &Metrics) -> Result<(), TrainError> {
        let path = dir.join(METRICS);
        checkpoint::write_json(&path, metrics).map_err(|source| TrainError::Io { path, source })
    }
}

fn cpu() -> String {
    "cpu".into()
}

/// What `metrics.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Recipe name.
    pub variant: String,
    /// Whether every phase ran to its end.
    pub finished: bool,
    /// Seed.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Training images used.
    pub train_samples: usize,
    /// Test images used.
    pub test_samples: usize,
    /// Epochs run per phase, in phase order.
    pub epochs: serde_json::Map<String, serde_json::Value>,
    /// Wall seconds of the whole run, over all sessions.
    pub wall_seconds: f64,
    /// Final test-set MSE against the clean images (denoising: from the noisy inputs).
    pub test_mse: f64,
    /// Code units (K).
    pub code_units: usize,
    /// Fraction of test-set codes that are zero: exactly, or below 0.01 for sigmoid codes.
    pub zero_code_fraction: f64,
    /// Fraction of test-set codes with magnitude below 0.01.
    pub near_zero_code_fraction: f64,
    /// Matrix-product backend of the CPU (validation and the figures run there on any device).
    pub backend: String,
    /// Where the training steps ran: `cpu`, or the GPU as `cuda:N (name)`. `cpu` in files
    /// written before it was recorded.
    #[serde(default = "cpu")]
    pub device: String,
    /// The SIMD level of the trainer's own kernels (`scalar`, `avx2`, `avx512`; see
    /// [`crate::simd`]). Empty in files written before it was recorded.
    #[serde(default)]
    pub simd: String,
    /// What the validation samples (`test_samples`, `test_mse`) are: the test set, or a seeded
    /// sixth of the training samples held out (of the normal ones, for one-class training).
    #[serde(default)]
    pub validation: String,
    /// The input scaling (`unit`, `minmax`, `standard`, `none`).
    #[serde(default)]
    pub scaling: String,
    /// The trainer's version and commit, and the data files with their SHA-256s.
    #[serde(default)]
    pub provenance: Option<Provenance>,
}
