//! The application: one module per `trainer` command, each an argument struct (parsed by the
//! binary with clap) and one function the binary calls. Run caching, the resume policy and the
//! experiments' dispatch live here, where tests reach them; `main.rs` only parses and calls.

// The argument structs' doc comments are `--help` text, placeholders such as `<variant>` included.
#![allow(rustdoc::invalid_html_tags)]

pub mod all;
pub mod bench;
pub mod convert;
pub mod encode;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod list;
pub mod oneclass;
pub mod reconstruct;
pub mod score;
pub mod spec;
pub mod train;
pub mod upgrade;

use crate::data::{DataRecord, DataRequest, Dataset, OneClassSplit, ScalingKind, Validation};
use crate::mnist::Mnist;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// The data: which files, and how they are scaled.
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// Training data: a directory of IDX files named as MNIST's (any item shape and element
    /// type; labels and t10k test files optional), a .npy array (samples × features, or
    /// samples × H × W (× C)), a .npz (arrays `x` and optionally `y`, or `x_train`, `x_test` and optionally `y_train`, `y_test`) or a
    /// .csv of numbers [default: data/mnist].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Test data, read the same way [default: the data's own test split, else a seeded sixth
    /// of the training samples held out].
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// Input scaling, fitted on the training samples and stored in the model: unit (x / 255),
    /// minmax (each feature to [0, 1]), standard (zero mean, unit deviation) or none
    /// [default: unit for u8 data, minmax otherwise].
    #[arg(long)]
    pub scaling: Option<ScalingKind>,
    /// CSV: the column that holds labels (its header name, or its 0-based index), set aside.
    #[arg(long)]
    pub label_column: Option<String>,
}

impl DataArgs {
    /// Whether any data flag was given.
    pub fn given(&self) -> bool {
        self.data.is_some() || self.test_data.is_some() || self.scaling.is_some() || self.label_column.is_some()
    }
}

/// `--data`, else `data/mnist` relative to the working directory, else the copy bundled with the
/// sources.
fn data_path(args: &DataArgs) -> PathBuf {
    match &args.data {
        Some(d) => d.clone(),
        None => {
            let local = PathBuf::from("data/mnist");
            if local.is_dir() {
                local
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
            }
        }
    }
}

/// MNIST's four files from `--data` (the MNIST studies: pca, semisup, and the commands that
/// work on the shipped MNIST models).
pub fn load_data(args: &DataArgs) -> Result<Mnist> {
    let dir = data_path(args);
    Mnist::load(&dir).with_context(|| format!("loading MNIST from {}", dir.display()))
}

/// What `args` ask to read, the holdout seeded by `seed`.
fn request(args: &DataArgs, seed: u64) -> DataRequest {
    DataRequest {
        data: data_path(args),
        test_data: args.test_data.clone(),
        scaling: args.scaling,
        label_column: args.label_column.clone(),
        seed,
    }
}

/// The data `args` name, any format, with the validation holdout seeded by `seed`; warnings
/// (constant features) go to stderr.
pub fn load_dataset(args: &DataArgs, seed: u64) -> Result<Dataset> {
    let data = Dataset::load(&request(args, seed))?;
    for w in &data.warnings {
        eprintln!("warning: {w}");
    }
    Ok(data)
}

/// The data `args` name for one-class training ([`Dataset::load_one_class`]): the normal
/// training samples (label 0, or all when unlabelled), a sixth of them held out with `seed`;
/// warnings go to stderr.
pub fn load_one_class(args: &DataArgs, seed: u64) -> Result<(Dataset, OneClassSplit)> {
    let (data, split) = Dataset::load_one_class(&request(args, seed), 0)?;
    for w in &data.warnings {
        eprintln!("warning: {w}");
    }
    Ok((data, split))
}

/// The data a run recorded, read again (without `--data`), or the data `args` name.
pub fn recorded_or_given(record: Option<&DataRecord>, args: &DataArgs, seed: u64) -> Result<Dataset> {
    match record {
        Some(record) if !args.given() => Ok(Dataset::reload(record)?),
        _ => load_dataset(args, seed),
    }
}

/// One line on the data: where, how many samples of what shape, the scaling, the validation.
pub fn describe(data: &Dataset) -> String {
    let r = &data.record;
    let validation = match r.validation {
        Validation::TestSet => format!("{} test samples", data.test.len()),
        Validation::HeldOut { seed } => format!(
            "{} training samples held out for validation (a sixth, seed {seed}; no test set)",
            data.test.len()
        ),
        Validation::OneClass { seed, normal } => format!(
            "{} normal training samples (label {normal}) held out for validation (a sixth, seed {seed}; the test set is not used for validation)",
            data.test.len()
        ),
    };
    format!(
        "{}: {} training samples of shape {:?} ({}), scaling {}; {validation}",
        r.data.display(),
        data.train.len(),
        r.shape,
        r.element.name(),
        r.scaling.kind.name()
    )
}

/// Every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints `text` to stdout; a reader that stops early (`| head`) is not an error.
pub fn print_all(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
