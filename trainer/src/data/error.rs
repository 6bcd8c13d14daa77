//! Everything that can be wrong with a data file, each case naming the file, the place in it
//! (array, line and column, sample and feature) and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Where samples or labels come from: a file, and the array inside it for `.npz` archives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file (or, for a directory of IDX files, the IDX file).
    pub path: PathBuf,
    /// The array's name inside an `.npz` archive (`x_train`, `y`, ...); `None` elsewhere.
    pub array: Option<Box<str>>,
}

impl Origin {
    /// A whole file.
    pub fn file(path: impl Into<PathBuf>) -> Origin {
        Origin {
            path: path.into(),
            array: None,
        }
    }

    /// One array of an archive.
    pub fn array(path: impl Into<PathBuf>, array: &str) -> Origin {
        Origin {
            path: path.into(),
            array: Some(array.into()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.array {
            None => write!(f, "{}", self.path.display()),
            Some(array) => write!(f, "{}, array `{array}`", self.path.display()),
        }
    }
}

/// What can be wrong with a data file or with how two of them fit together.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path names nothing.
    #[error("{}: no such file or directory", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A file a run recorded has changed since (another SHA-256).
    #[error("{}: changed since the run read it (SHA-256 {found}, the run recorded {recorded}); pass --data to use other data", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// The SHA-256 the run recorded.
        recorded: String,
        /// The SHA-256 now.
        found: String,
    },
    /// The file or directory exists but could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's extension names no format this reader knows.
    #[error(
        "{}: unknown data format: expected a directory of IDX files, or a file ending in .npy, .npz or .csv",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// An IDX file is corrupt, truncated, or not IDX (the error names the file).
    #[error(transparent)]
    Idx(#[from] idx::IdxError),
    /// A directory holds no IDX training images.
    #[error(
        "{}: no training images: a directory of IDX files needs a train-images-idxN-ubyte (or .gz) file",
        dir.display()
    )]
    NoIdxImages {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory holds more than one IDX file that could be the one wanted.
    #[error("{}: more than one candidate IDX file: {}", dir.display(), names.join(", "))]
    AmbiguousIdx {
        /// The directory.
        dir: PathBuf,
        /// The candidates' names.
        names: Vec<String>,
    },
    /// A `.npy` file (or an array inside a `.npz`) is corrupt or truncated.
    #[error("{at}: corrupt or truncated .npy data: {reason}")]
    CorruptNpy {
        /// The file and array.
        at: Origin,
        /// What is wrong.
        reason: String,
    },
    /// A `.npz` archive is corrupt or truncated (not a readable zip).
    #[error("{}: corrupt or truncated .npz archive: {reason}", path.display())]
    CorruptNpz {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `.npz` archive holds neither `x` nor `x_train`.
    #[error(
        "{}: no array `x` or `x_train` (the samples) in the archive; it holds: {}",
        path.display(),
        if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
    )]
    MissingArray {
        /// The file.
        path: PathBuf,
        /// The arrays it does hold.
        found: Vec<String>,
    },
    /// An array's element type is none of those read.
    #[error(
        "{at}: unsupported dtype {dtype}: expected one of u8, i8, u16, i16, u32, i32, i64, f32, f64 (numpy: |u1 |i1 <u2 <i2 <u4 <i4 <i8 <f4 <f8, or > big-endian)"
    )]
    UnsupportedDtype {
        /// The file and array.
        at: Origin,
        /// The dtype as the file writes it, with numpy's name where known (`'<u8' (uint64)`).
        dtype: String,
    },
    /// The samples array has fewer than two dimensions.
    #[error(
        "{at}: an array of shape {shape:?} is not samples × features: needs 2 dimensions (samples × features) or more (samples × H × W, samples × H × W × C)"
    )]
    OneDimensional {
        /// The file and array.
        at: Origin,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// The file holds no sample.
    #[error("{at}: zero samples")]
    NoSamples {
        /// The file and array.
        at: Origin,
    },
    /// Each sample holds no value.
    #[error("{at}: samples of shape {shape:?} hold zero features")]
    NoFeatures {
        /// The file and array.
        at: Origin,
        /// One sample's shape.
        shape: Vec<usize>,
    },
    /// A value is NaN or infinite (or, read as f32, beyond f32's range).
    #[error("{at}: {place}: value {value} is not finite (NaN and ±Inf are refused; f32 holds at most ±3.4e38)")]
    NonFinite {
        /// The file and array.
        at: Origin,
        /// Where in it: `sample 3, feature 17 (index [3, 0, 17])` or `line 5, column 3 ("s2")`.
        place: String,
        /// The value as read (the CSV text, or the number).
        value: String,
    },
    /// A CSV row has a different number of fields from the first.
    #[error("{}: line {line} has {found} fields, expected {expected} (as on line {first_line})", path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// The row's line, 1-based.
        line: u64,
        /// Fields on that line.
        found: usize,
        /// Fields on the first line.
        expected: usize,
        /// The first line's number, 1-based.
        first_line: u64,
    },
    /// A CSV field is not a number.
    #[error("{}: line {line}, {column}: {text:?} is not a number", path.display())]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// The line, 1-based.
        line: u64,
        /// The column: `column 3 ("s2")` with a header, `column 3 (index 2)` without.
        column: String,
        /// The field's text.
        text: String,
    },
    /// The CSV reader itself failed (e.g. a malformed quoted field).
    #[error("{}: malformed CSV: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        source: csv::Error,
    },
    /// The label column asked for is not in the CSV file.
    #[error("{}: no label column {column:?}: {available}", path.display())]
    UnknownLabelColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// What could have been asked for: the header's names, or the index range.
        available: String,
    },
    /// A label column was given for a format whose labels are arrays or files of their own.
    #[error(
        "{}: a label column applies to CSV files only (.npz labels are the arrays y / y_train / y_test, IDX labels the *-labels-idx1-ubyte files)",
        path.display()
    )]
    LabelColumnNotCsv {
        /// The file.
        path: PathBuf,
    },
    /// A label is not an integer.
    #[error("{at}: {place}: label {value} is not an integer")]
    BadLabel {
        /// The file and array.
        at: Origin,
        /// Where: `label 7` or `line 5, column 65 ("label")`.
        place: String,
        /// The label as read.
        value: String,
    },
    /// The labels array is not one value per sample.
    #[error("{at}: labels of shape {shape:?}: expected one label per sample, shape [n] or [n, 1]")]
    LabelsShape {
        /// The labels' file and array.
        at: Origin,
        /// Their shape.
        shape: Vec<usize>,
    },
    /// The labels array counts differently from the samples.
    #[error("{labels_at} holds {labels} labels but {samples_at} holds {samples} samples")]
    LabelCount {
        /// The samples' file and array.
        samples_at: Origin,
        /// Samples there.
        samples: usize,
        /// The labels' file and array.
        labels_at: Origin,
        /// Labels there.
        labels: usize,
    },
    /// Training and test samples differ in shape.
    #[error(
        "the test samples ({test_at}) have shape {test_shape:?} but the training samples ({train_at}) have shape {train_shape:?}: they must match"
    )]
    Incompatible {
        /// The training samples' origin.
        train_at: Origin,
        /// One training sample's shape.
        train_shape: Box<[usize]>,
        /// The test samples' origin.
        test_at: Origin,
        /// One test sample's shape.
        test_shape: Box<[usize]>,
    },
    /// A buffer handed to [`Samples::new`](super::Samples::new) is not a whole number of samples.
    #[error("{at}: {values} values are not a whole number of samples of shape {shape:?}")]
    Layout {
        /// The origin given.
        at: Origin,
        /// Number of values.
        values: usize,
        /// One sample's shape.
        shape: Vec<usize>,
    },
    /// A scaling and samples of another width.
    #[error("{at}: samples of {found} features, but the scaling was fit on {expected}")]
    ScalingWidth {
        /// The samples' origin.
        at: Origin,
        /// Features the scaling has.
        expected: usize,
        /// Features the samples have.
        found: usize,
    },
    /// A scaling name none of `unit`, `minmax`, `standard`, `none`.
    #[error("unknown scaling {name:?}: expected unit, minmax, standard or none")]
    UnknownScaling {
        /// The name given.
        name: String,
    },
    /// Too few samples to hold some out for validation.
    #[error("{at}: holding out a validation sixth needs at least 2 training samples, there are {n}")]
    TooFewToHoldOut {
        /// The samples' origin.
        at: Origin,
        /// Samples there.
        n: usize,
    },
    /// One-class training on labelled samples none of which has the normal label.
    #[error("{at}: none of the {n} training samples is labelled {normal}; one-class training (the anomaly recipe) trains on the samples labelled {normal}, the normal ones (labels found: {found})")]
    NoNormalSamples {
        /// The samples' origin.
        at: Origin,
        /// Samples there.
        n: usize,
        /// The normal samples' label.
        normal: i64,
        /// The distinct labels found, ascending, the first few.
        found: String,
    },
}
