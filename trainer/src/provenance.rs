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
    /// The seed the validation samples were held out with, when the data had no test set (or
    /// the run trained one-class, on normal samples with some held out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_seed: Option<u64>,
    /// The CSV label column the data was read with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// The run directory a model file was exported from (model files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Provenance {
    /// This trainer's provenance for data `files`.
    pub fn new(data: Vec<DataFile>) -> Provenance {
        Provenance {
            trainer: format!("trainer {TRAINER_VERSION}"),
            commit: GIT_COMMIT.to_string(),
            data,
            holdout_seed: None,
            label_column: None,
            run: None,
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
        let mut p = Provenance::new(record.map_or_else(Vec::new, |r| {
            let mut all = files("train", &r.train_files);
            all.extend(files("test", &r.test_files));
            all
        }));
        if let Some(r) = record {
            p.holdout_seed = match r.validation {
                crate::data::Validation::HeldOut { seed } | crate::data::Validation::OneClass { seed, .. } => {
                    Some(seed)
                }
                crate::data::Validation::TestSet => None,
            };
            p.label_column = r.label_column.clone();
        }
        p
    }

    /// The data this provenance names, as `trainer` reads it: the training file (the directory
    /// of an IDX file), the test file, the holdout seed and the label column; `None` when it
    /// names no training file.
    pub fn data_request(&self) -> Option<crate::data::DataRequest> {
        let path = |role: &str| {
            self.data.iter().find(|f| f.role == role).map(|f| {
                let p = std::path::PathBuf::from(&f.path);
                // An IDX directory's files are recorded one by one; the data is their directory.
                let idx = p.file_name().is_some_and(|n| n.to_string_lossy().contains("-idx"));
                if idx {
                    p.parent().map(|d| d.to_path_buf()).unwrap_or(p)
                } else {
                    p
                }
            })
        };
        Some(crate::data::DataRequest {
            data: path("train")?,
            test_data: path("test"),
            scaling: None,
            label_column: self.label_column.clone(),
            seed: self.holdout_seed.unwrap_or(0),
        })
    }

    /// Whether the files `data` read are the ones this provenance names (same SHA-256s); the
    /// first that differs otherwise.
    pub fn check_files(&self, data: &crate::data::DataRecord) -> Result<(), String> {
        let read = data.train_files.iter().chain(&data.test_files);
        for (named, file) in self.data.iter().zip(read) {
            if named.sha256 != file.sha256 {
                return Err(format!(
                    "{}: changed since the model was exported from it (SHA-256 {}, the model recorded {}); pass --data",
                    file.path.display(),
                    file.sha256,
                    named.sha256
                ));
            }
        }
        Ok(())
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
