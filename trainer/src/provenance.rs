//! Where a run or a model file came from: the trainer's version, the git commit it was built
//! from, and every data file it read with its SHA-256. Written into `metrics.json` and, as
//! compact JSON, into every model file's `source` field.

use crate::data::DataRecord;
use serde::{Deserialize, Serialize};

/// The trainer's version (its package version).
pub const TRAINER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the trainer was built from ("unknown" outside a git checkout).
pub const GIT_COMMIT: &str = env!("TRAINER_GIT_COMMIT");

/// One data file a run read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// What it was read for: `train` or `test`.
    pub role: String,
    /// The path as given.
    pub path: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// Where something came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `trainer` and its version, e.g. `trainer 0.1.0`.
    pub trainer: String,
    /// The git commit the trainer was built from.
    pub commit: String,
    /// The data files, training first.
    pub data: Vec<DataFile>,
}

impl Provenance {
    /// This trainer's provenance for data `files`.
    pub fn new(data: Vec<DataFile>) -> Provenance {
        Provenance {
            trainer: format!("trainer {TRAINER_VERSION}"),
            commit: GIT_COMMIT.to_string(),
            data,
        }
    }

    /// This trainer's provenance for the data a run recorded (none recorded: no files).
    pub fn of(record: Option<&DataRecord>) -> Provenance {
        let files = |role: &str, files: &[crate::data::SourceFile]| {
            files
                .iter()
                .map(|f| DataFile {
                    role: role.to_string(),
                    path: f.path.display().to_string(),
                    sha256: f.sha256.clone(),
                })
                .collect::<Vec<_>>()
        };
        Provenance::new(record.map_or_else(Vec::new, |r| {
            let mut all = files("train", &r.train_files);
            all.extend(files("test", &r.test_files));
            all
        }))
    }

    /// As one line of JSON (the model file's `source`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_this_build_and_reads_back() {
        let p = Provenance::new(vec![DataFile {
            role: "train".into(),
            path: "data/x.npy".into(),
            sha256: "ab".repeat(32),
        }]);
        assert_eq!(p.trainer, format!("trainer {}", env!("CARGO_PKG_VERSION")));
        // A 40-digit hex commit in a git checkout; "unknown" only outside one.
        assert!(
            p.commit == "unknown" || (p.commit.len() == 40 && p.commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{}",
            p.commit
        );
        let back: Provenance = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(back, p);
    }
}
