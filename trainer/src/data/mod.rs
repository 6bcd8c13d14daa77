//! Training data of any fixed-size input: one entry point, [`load`], reads a directory of IDX
//! files, a `.npy` array, a `.npz` archive or a `.csv` table into [`Samples`] (f32 values,
//! row-major, one shape per sample, the stored element type, integer labels when the file has
//! them), and records every file read with its SHA-256 ([`SourceFile`]).
//!
//! Then, for a run: [`holdout`] sets a seeded sixth of the training samples aside for
//! validation when there is no test set ([`one_class_split`] sets a sixth of the normal ones
//! aside, test set or not, for one-class training); [`Scaling::fit`] fits the input scaling on the
//! training samples ([`ScalingKind::default_for`] the element type unless one is asked for);
//! [`Scaling::apply`] scales each split with exactly the f32 arithmetic the microcontroller
//! uses. Every error ([`DataError`]) names the file, the place in it and what is wrong; no
//! input makes a reader panic. `docs/data.md` describes the formats, errors and arithmetic.
//!
//! ```no_run
//! use std::path::Path;
//! use trainer::data::{self, LoadOptions, Scaling, ScalingKind};
//!
//! let loaded = data::load(Path::new("data/vibration/vibration.npz"), &LoadOptions::default())?;
//! let (train, validation) = match loaded.test {
//!     Some(test) => (loaded.train, test),
//!     None => data::holdout(&loaded.train, 1)?,
//! };
//! let (scaling, constant) = Scaling::fit(ScalingKind::default_for(train.element()), &train)?;
//! for warning in &constant {
//!     eprintln!("warning: {warning}");
//! }
//! let mut train = train;
//! scaling.apply(&mut train)?;
//! # Ok::<_, data::DataError>(())
//! ```
//!
//! The example generator's data ([`vibration`]) lives here too, so tests can check it.

mod array;
mod csv;
mod dataset;
mod error;
mod holdout;
mod idx_dir;
mod npy;
mod npz;
mod one_class;
mod samples;
mod scaling;
mod source;
pub mod vibration;

use std::path::Path;

pub use dataset::{DataRecord, DataRequest, Dataset, Validation};
pub use error::{DataError, Origin};
pub use holdout::{holdout, holdout_indices};
pub use one_class::{one_class_split, OneClassSplit};
pub use samples::{check_compatible, Element, Samples};
pub use scaling::{ConstantFeature, Scaling, ScalingKind};
pub use source::{sha256_hex, SourceFile};

/// How to read a data file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// CSV only: the column set aside as the labels, by its header name or its 0-based index
    /// (a header name that matches wins). `None`: every column is a feature. Given for another
    /// format it is an error ([`DataError::LabelColumnNotCsv`]).
    pub label_column: Option<String>,
}

/// What [`load`] read.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The training samples.
    pub train: Samples,
    /// The test samples, when the source has them (`.npz` `x_test`, IDX `t10k-images-...`),
    /// of the training samples' shape.
    pub test: Option<Samples>,
    /// Every file read, in reading order, with its SHA-256.
    pub files: Vec<SourceFile>,
}

/// The formats [`load`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A directory of IDX files named as MNIST's are.
    IdxDir,
    /// A `.npy` array.
    Npy,
    /// A `.npz` archive.
    Npz,
    /// A `.csv` table.
    Csv,
}

impl Format {
    /// The format of `path`: a directory, or a file's extension (any case). A path that does not
    /// exist is [`DataError::Missing`]; an unknown extension [`DataError::UnknownFormat`].
    pub fn of(path: &Path) -> Result<Format, DataError> {
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing {
                path: path.to_path_buf(),
            },
            _ => DataError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        if meta.is_dir() {
            return Ok(Format::IdxDir);
        }
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("npz") => Ok(Format::Npz),
            Some("csv") => Ok(Format::Csv),
            _ => Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads the samples at `path`: a directory of IDX files, or a `.npy`, `.npz` or `.csv` file.
/// A source with a test split (`.npz` with `x_test`, IDX with `t10k-images-...`) returns it
/// too, checked to be of the training samples' shape.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, DataError> {
    let format = Format::of(path)?;
    if format != Format::Csv && options.label_column.is_some() {
        return Err(DataError::LabelColumnNotCsv {
            path: path.to_path_buf(),
        });
    }
    let (train, test, files) = match format {
        Format::IdxDir => idx_dir::read(path)?,
        Format::Npy => {
            let (bytes, file) = source::read(path)?;
            (parse_npy(path, &bytes)?, None, vec![file])
        }
        Format::Npz => {
            let (bytes, file) = source::read(path)?;
            let (train, test) = parse_npz(path, &bytes)?;
            (train, test, vec![file])
        }
        Format::Csv => {
            let (bytes, file) = source::read(path)?;
            let samples = parse_csv(path, &bytes, options.label_column.as_deref())?;
            (samples, None, vec![file])
        }
    };
    Ok(Loaded { train, test, files })
}

/// The samples of a `.npy` file's bytes, as [`load`] reads them; `path` only names the file in
/// errors.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Samples, DataError> {
    let at = Origin::file(path);
    array::into_samples(at.clone(), npy::parse(&at, bytes)?)
}

/// The training and (when it has `x_test`) test samples of a `.npz` archive's bytes, as [`load`]
/// reads them; `path` only names the file in errors.
pub fn parse_npz(path: &Path, bytes: &[u8]) -> Result<(Samples, Option<Samples>), DataError> {
    npz::read(path, bytes)
}

/// The samples of a `.csv` table's bytes, as [`load`] reads them, with `label_column` as
/// [`LoadOptions::label_column`]; `path` only names the file in errors.
pub fn parse_csv(path: &Path, bytes: &[u8], label_column: Option<&str>) -> Result<Samples, DataError> {
    csv::read(path, bytes, label_column)
}

/// Reads training samples from `train` and test samples from `test` (the CLI's `--data` and
/// `--test-data`): the test samples are `test`'s test split when it has one, else its only
/// split; they replace any test split `train` has. Both are read with `options`, and must be
/// of one shape ([`DataError::Incompatible`]).
pub fn load_with_test(train: &Path, test: &Path, options: &LoadOptions) -> Result<Loaded, DataError> {
    let mut loaded = load(train, options)?;
    let other = load(test, options)?;
    let test = other.test.unwrap_or(other.train);
    check_compatible(&loaded.train, &test)?;
    loaded.test = Some(test);
    loaded.files.extend(other.files);
    Ok(loaded)
}
