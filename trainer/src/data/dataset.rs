//! A run's data: the training and validation samples as read, the input scaling fitted on the
//! training samples, and the [`DataRecord`] a run keeps of it (paths, SHA-256s, scaling, how
//! the validation samples were chosen), from which `export`, `eval` and `score` read the same
//! data again without `--data` ([`Dataset::reload`]).

use super::{holdout, load, DataError, Element, LoadOptions, Samples, Scaling, ScalingKind, SourceFile};
use crate::mnist::{Mnist, SIDE};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to read.
#[derive(Clone, Debug, PartialEq)]
pub struct DataRequest {
    /// The training data (`--data`): an IDX directory, `.npy`, `.npz` or `.csv`.
    pub data: PathBuf,
    /// The test data (`--test-data`), read the same way.
    pub test_data: Option<PathBuf>,
    /// The scaling (`--scaling`) [default: unit for u8 data, minmax otherwise].
    pub scaling: Option<ScalingKind>,
    /// CSV: the label column (`--label-column`).
    pub label_column: Option<String>,
    /// Seeds the validation holdout when there is no test set.
    pub seed: u64,
}

/// Where the validation samples came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Validation {
    /// The data's own test split, or `--test-data`.
    TestSet,
    /// A sixth of the training samples, chosen with this seed ([`holdout`]).
    HeldOut {
        /// The seed.
        seed: u64,
    },
    /// One-class training (anomaly detection, [`Dataset::load_one_class`]): the training
    /// samples labelled `normal` (all of them when unlabelled), a sixth of them held out with
    /// this seed, whether or not the data has a test set. A test set holds the anomalies: it is
    /// read and recorded, never used for validation.
    OneClass {
        /// The seed.
        seed: u64,
        /// The normal samples' label: 0 for `trainer train`, the digit in the one-class study.
        normal: i64,
    },
}

/// What a run records of its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// `--data` as given.
    pub data: PathBuf,
    /// `--test-data` as given.
    pub test_data: Option<PathBuf>,
    /// `--label-column`.
    pub label_column: Option<String>,
    /// The files of `data`, with their SHA-256s.
    pub train_files: Vec<SourceFile>,
    /// The files of `test_data`.
    pub test_files: Vec<SourceFile>,
    /// How the validation samples were chosen.
    pub validation: Validation,
    /// The scaling, fitted on the training samples.
    pub scaling: Scaling,
    /// One sample's shape.
    pub shape: Vec<usize>,
    /// The element type stored in the files.
    pub element: Element,
}

/// A run's data.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Training samples, as read.
    pub train: Samples,
    /// Validation samples, as read.
    pub test: Samples,
    /// Where they came from, and their scaling.
    pub record: DataRecord,
    /// Warnings to show (constant features).
    pub warnings: Vec<String>,
}

impl Dataset {
    /// Reads `request`: the training data, the test data (its own split, `--test-data`, or a
    /// seeded sixth held out), and the scaling fitted on the training samples.
    pub fn load(request: &DataRequest) -> Result<Dataset, DataError> {
        let read = Read::from(request)?;
        match read.test {
            Some(test) => Dataset::assemble(request, read.train, test, Validation::TestSet, read.files),
            None => {
                let (train, test) = holdout(&read.train, request.seed)?;
                let validation = Validation::HeldOut { seed: request.seed };
                Dataset::assemble(request, train, test, validation, read.files)
            }
        }
    }

    /// The dataset of training samples `train` and validation samples `test`, read from
    /// `files` (those of the training data, those of the test data) as `request` asks: the
    /// scaling fitted on `train`, and the record.
    pub fn assemble(
        request: &DataRequest,
        train: Samples,
        test: Samples,
        validation: Validation,
        files: (Vec<SourceFile>, Vec<SourceFile>),
    ) -> Result<Dataset, DataError> {
        let kind = request
            .scaling
            .unwrap_or_else(|| ScalingKind::default_for(train.element()));
        let (scaling, constant) = Scaling::fit(kind, &train)?;
        let record = DataRecord {
            data: request.data.clone(),
            test_data: request.test_data.clone(),
            label_column: request.label_column.clone(),
            train_files: files.0,
            test_files: files.1,
            validation,
            shape: train.shape().to_vec(),
            element: train.element(),
            scaling,
        };
        Ok(Dataset {
            train,
            test,
            record,
            warnings: constant.iter().map(|c| c.to_string()).collect(),
        })
    }

    /// Reads the data a run recorded again: the same files (an error if one changed since, by
    /// its SHA-256), the same validation samples and the recorded scaling (not fitted again).
    pub fn reload(record: &DataRecord) -> Result<Dataset, DataError> {
        let request = DataRequest {
            data: record.data.clone(),
            test_data: record.test_data.clone(),
            scaling: Some(record.scaling.kind),
            label_column: record.label_column.clone(),
            seed: match record.validation {
                Validation::HeldOut { seed } | Validation::OneClass { seed, .. } => seed,
                Validation::TestSet => 0,
            },
        };
        let mut data = match record.validation {
            Validation::OneClass { normal, .. } => Dataset::load_one_class(&request, normal)?.0,
            Validation::TestSet | Validation::HeldOut { .. } => Dataset::load(&request)?,
        };
        for (was, now) in record
            .train_files
            .iter()
            .chain(&record.test_files)
            .zip(data.record.train_files.iter().chain(&data.record.test_files))
        {
            if was.sha256 != now.sha256 {
                return Err(DataError::Changed {
                    path: now.path.clone(),
                    recorded: was.sha256.clone(),
                    found: now.sha256.clone(),
                });
            }
        }
        data.record.scaling = record.scaling.clone();
        data.warnings.clear();
        Ok(data)
    }

    /// MNIST as read by [`Mnist::load`]: u8 pixels, unit scaling, the test split.
    pub fn from_mnist(mnist: Mnist, dir: &Path) -> Dataset {
        let samples = |split: crate::mnist::Split| {
            let values = split.images.iter().map(|&p| f32::from(p)).collect();
            let labels = split.labels.iter().map(|&l| i64::from(l)).collect();
            Samples::new(values, vec![SIDE, SIDE], Element::U8, super::Origin::file(dir))
                .and_then(|s| s.with_labels(labels, super::Origin::file(dir)))
                .expect("MNIST's splits are whole images with one label each")
        };
        let train = samples(mnist.train);
        let test = samples(mnist.test);
        let (scaling, _) = Scaling::fit(ScalingKind::Unit, &train).expect("unit scaling fits any data");
        Dataset {
            record: DataRecord {
                data: dir.to_path_buf(),
                test_data: None,
                label_column: None,
                train_files: Vec::new(),
                test_files: Vec::new(),
                validation: Validation::TestSet,
                shape: vec![SIDE, SIDE],
                element: Element::U8,
                scaling,
            },
            train,
            test,
            warnings: Vec::new(),
        }
    }

    /// The training and validation samples, scaled.
    pub fn scaled(&self) -> Result<(Samples, Samples), DataError> {
        let (mut train, mut test) = (self.train.clone(), self.test.clone());
        self.record.scaling.apply(&mut train)?;
        self.record.scaling.apply(&mut test)?;
        Ok((train, test))
    }
}

/// What a request's files hold: the training samples, the test samples when there are any
/// (the training data's own split, or `--test-data`), and the files read (training, test).
pub(super) struct Read {
    /// The training samples.
    pub train: Samples,
    /// The test samples.
    pub test: Option<Samples>,
    /// The files read for the training and for the test samples.
    pub files: (Vec<SourceFile>, Vec<SourceFile>),
}

impl Read {
    /// Reads `request`'s files (`--data`, and `--test-data` in place of the data's own test
    /// split), checking that the test samples have the training samples' shape.
    pub fn from(request: &DataRequest) -> Result<Read, DataError> {
        let options = LoadOptions {
            label_column: request.label_column.clone(),
        };
        let loaded = load(&request.data, &options)?;
        let (test, test_files) = match &request.test_data {
            Some(path) => {
                let other = load(path, &options)?;
                let test = other.test.unwrap_or(other.train);
                super::check_compatible(&loaded.train, &test)?;
                (Some(test), other.files)
            }
            None => (loaded.test, Vec::new()),
        };
        Ok(Read {
            train: loaded.train,
            test,
            files: (loaded.files, test_files),
        })
    }
}

impl From<Mnist> for Dataset {
    /// MNIST read elsewhere (tests, examples), recorded as `data/mnist`.
    fn from(mnist: Mnist) -> Dataset {
        Dataset::from_mnist(mnist, Path::new("data/mnist"))
    }
}
