//! A model file run over a data file on the host, by the core, exactly as the device runs it:
//! the codes (`trainer encode`: features for another model) and the reconstructions (`trainer
//! reconstruct`: denoised samples, or the reference an anomaly score compares with).
//!
//! Each sample is fed raw, as the data file stores it (f32 values, [`Samples::row`]): the core
//! scales and quantizes it with the model's own input scaling and quantization
//! ([`Runner::encode_f32_into`], [`Runner::reconstruct_f32_into`]: `docs/int8-arithmetic.md`,
//! "Float input and output"). u8 samples take the same f32 path: `p as f32` is exact, and the
//! core's `quantize_u8` is defined as (and tested to be) that path, so the u8 entry points would
//! give the same codes.
//!
//! Shapes: `n` samples of `F` values; `N` the model's input length (`F == N`); `K` its code
//! width. Codes come out `(n, K)`, reconstructions `(n, ...input shape)`, row-major.
//!
//! Samples run in parallel on a rayon pool of the threads asked for: each worker keeps one
//! scratch buffer and binds a [`Runner`] to it for each chunk of 32 samples. Every sample is
//! computed alone, so the results do not depend on the thread count, and of several failing
//! samples the first (lowest index) is reported.

use crate::checkpoint::write_atomic;
use crate::data::{self, DataError, LoadOptions, Origin, Samples};
use autoencoder_core::model::Quant;
use autoencoder_core::{Model, ModelError, Runner};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{WritableElement, WriteNpyExt};
use rayon::prelude::*;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Samples given to one [`Runner`] at a time.
const CHUNK: usize = 32;

/// Which samples of a data file to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Split {
    /// The training samples (a `.npy` or `.csv` file's only samples).
    #[default]
    Train,
    /// The test split: an `.npz`'s `x_test`, an IDX directory's `t10k-images-...`.
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Split, String> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(format!("unknown split {s:?}: expected train or test")),
        }
    }
}

/// What to compute for each sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// The code, `K` values.
    Codes,
    /// The reconstruction, `N` values in the input's shape.
    Reconstructions,
}

/// One run of a model over a data file, as the commands describe it.
#[derive(Clone, Debug)]
pub struct Job {
    /// The model file (`.aeq`).
    pub model: PathBuf,
    /// The data: any format [`data::load`] reads.
    pub data: PathBuf,
    /// Which of its samples.
    pub split: Split,
    /// CSV only: the column holding labels, set aside.
    pub label_column: Option<String>,
    /// Codes or reconstructions.
    pub product: Product,
    /// Keep the int8 values (i8 `.npy`) instead of dequantizing them.
    pub int8: bool,
    /// Where the `.npy` goes (written whole, or not at all).
    pub out: PathBuf,
    /// Worker threads (at least 1).
    pub threads: usize,
}

/// What a [`Job`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The model file.
    pub model: PathBuf,
    /// Codes or reconstructions.
    pub product: Product,
    /// Samples run, `n`.
    pub samples: usize,
    /// Where they came from.
    pub data: Origin,
    /// One sample's shape in the data file.
    pub sample_shape: Vec<usize>,
    /// The model's input shape.
    pub input_shape: Vec<usize>,
    /// The array written: `[n, K]` or `[n, ...input shape]`.
    pub out_shape: Vec<usize>,
    /// Its element type: `f32`, or `i8` with `--int8`.
    pub element: &'static str,
    /// The file written.
    pub out: PathBuf,
}

impl fmt::Display for Report {
    /// One line: `encoded 50 samples of shape [28, 28] from x.npy with fc.aeq: codes of shape
    /// [50, 64] (f32) written to codes.npy`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, what) = match self.product {
            Product::Codes => ("encoded", "codes"),
            Product::Reconstructions => ("reconstructed", "reconstructions"),
        };
        write!(
            f,
            "{verb} {} samples of shape {:?} from {} with {}",
            self.samples,
            self.sample_shape,
            self.data,
            self.model.display()
        )?;
        if self.sample_shape != self.input_shape {
            write!(f, " (input shape {:?})", self.input_shape)?;
        }
        write!(
            f,
            ": {what} of shape {:?} ({}) written to {}",
            self.out_shape,
            self.element,
            self.out.display()
        )
    }
}

/// Why a model could not be run over a data file; each names the file, and the sample where
/// one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model file cannot be read (missing, a directory, no permission).
    #[error("{}: cannot read the model file: {error}", path.display())]
    ReadModel {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The model file does not load: the core's reason (corrupt, another format version, ...).
    #[error("{}: {error}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What the core found wrong.
        error: ModelError,
    },
    /// The data cannot be read (the data module's error names the file and the place).
    #[error(transparent)]
    Data(#[from] DataError),
    /// `--split test` on a file without a test split.
    #[error(
        "{}: no test split (an .npz array `x_test`, or t10k-images-... IDX files): \
         leave out --split test to use its samples",
        path.display()
    )]
    NoTestSplit {
        /// The data file.
        path: PathBuf,
    },
    /// The samples do not fit the model's input ([`fits`]).
    #[error(
        "{at}: samples of shape {samples:?} ({} values) do not fit {}, whose input has shape {input:?} \
         ({} values): the shapes must be equal, or one of them flat with as many values",
        samples.iter().product::<usize>(),
        model.display(),
        input.iter().product::<usize>()
    )]
    Shape {
        /// The samples.
        at: Origin,
        /// One sample's shape.
        samples: Vec<usize>,
        /// The model file.
        model: PathBuf,
        /// Its input shape.
        input: Vec<usize>,
    },
    /// The core refused a sample: [`ModelError::NotANumber`] names the value within it.
    #[error("{at}: sample {sample}: {error}")]
    Run {
        /// The samples.
        at: Origin,
        /// The sample's index, from 0.
        sample: usize,
        /// The core's error.
        error: ModelError,
    },
    /// The worker threads could not start.
    #[error("cannot start {threads} worker threads: {error}")]
    Threads {
        /// How many were asked for.
        threads: usize,
        /// Rayon's reason.
        error: rayon::ThreadPoolBuildError,
    },
    /// The array could not be serialized as `.npy`.
    #[error("{}: cannot serialize the .npy array: {reason}", path.display())]
    Npy {
        /// The output file.
        path: PathBuf,
        /// ndarray's or ndarray-npy's reason.
        reason: String,
    },
    /// The output file cannot be written (nothing is left behind: see
    /// [`write_atomic`]).
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Reads a model file's bytes.
pub fn read_model(path: &Path) -> Result<Vec<u8>, InferError> {
    std::fs::read(path).map_err(|error| InferError::ReadModel {
        path: path.to_path_buf(),
        error,
    })
}

/// Loads the model in `bytes`, read from `path` (named in the error).
pub fn load_model<'a>(path: &Path, bytes: &'a [u8]) -> Result<Model<'a>, InferError> {
    Model::from_bytes(bytes).map_err(|error| InferError::Model {
        path: path.to_path_buf(),
        error,
    })
}

/// The samples of `split` in the data at `path`.
pub fn load_samples(path: &Path, split: Split, label_column: Option<String>) -> Result<Samples, InferError> {
    let loaded = data::load(path, &LoadOptions { label_column })?;
    match split {
        Split::Train => Ok(loaded.train),
        Split::Test => loaded.test.ok_or_else(|| InferError::NoTestSplit {
            path: path.to_path_buf(),
        }),
    }
}

/// Whether samples of shape `samples` fit a model input of shape `input`: the same shape, or
/// the same number of values when either is flat (a table row or a flat array holds a sample
/// row-major, as the model reads it). Two multi-dimensional shapes must be equal: `[28, 28]`
/// images do not fit a `[14, 56]` input.
///
/// ```
/// use trainer::infer::fits;
/// assert!(fits(&[28, 28], &[28, 28]));
/// assert!(fits(&[784], &[28, 28]));
/// assert!(fits(&[28, 28], &[784]));
/// assert!(!fits(&[14, 56], &[28, 28]));
/// assert!(!fits(&[785], &[28, 28]));
/// ```
pub fn fits(samples: &[usize], input: &[usize]) -> bool {
    samples == input
        || ((samples.len() == 1 || input.len() == 1)
            && samples.iter().product::<usize>() == input.iter().product::<usize>())
}

/// The model's input shape, as `usize`.
pub fn input_shape(model: &Model<'_>) -> Vec<usize> {
    model.input_shape().iter().map(|&d| d as usize).collect()
}

/// [`fits`], as an error naming both shapes, the data and the model file.
pub fn check_fit(model: &Model<'_>, model_path: &Path, samples: &Samples) -> Result<(), InferError> {
    let input = input_shape(model);
    if fits(samples.shape(), &input) {
        Ok(())
    } else {
        Err(InferError::Shape {
            at: samples.origin().clone(),
            samples: samples.shape().to_vec(),
            model: model_path.to_path_buf(),
            input,
        })
    }
}

/// The int8 codes of every sample: `samples (n, N) -> codes (n, K)`, each row
/// [`Runner::encode_f32_into`] of the sample, in the units of [`Model::code_quant`].
///
/// The samples must hold [`Model::input_len`] values each ([`check_fit`]); a sample with a NaN
/// is refused ([`InferError::Run`] with [`ModelError::NotANumber`]).
pub fn encode(model: &Model<'_>, samples: &Samples, threads: usize) -> Result<Vec<i8>, InferError> {
    per_sample(model, samples, model.code_len(), threads, |runner, x, code| {
        runner.encode_f32_into(x, code)
    })
}

/// The int8 reconstructions of every sample: `samples (n, N) -> outputs (n, N)`, each row the
/// decoder's output for [`Runner::encode_f32_into`]'s code ([`Runner::decode_into`]; the same
/// codes as [`Runner::reconstruct_into`] of the quantized sample), in the units of
/// [`Model::output_quant`].
pub fn reconstruct_int8(model: &Model<'_>, samples: &Samples, threads: usize) -> Result<Vec<i8>, InferError> {
    let mut code = vec![0i8; model.code_len()];
    let width = model.input_len();
    per_sample(model, samples, width, threads, move |runner, x, output| {
        runner.encode_f32_into(x, &mut code)?;
        runner.decode_into(&code, output)
    })
}

/// The reconstructions of every sample in raw units: `samples (n, N) -> outputs (n, N)`, each
/// row [`Runner::reconstruct_f32_into`] of the sample (the output dequantized and unscaled with
/// the inverse of the model's input scaling, as the device's `decode_f32`).
pub fn reconstruct(model: &Model<'_>, samples: &Samples, threads: usize) -> Result<Vec<f32>, InferError> {
    per_sample(model, samples, model.input_len(), threads, |runner, x, output| {
        runner.reconstruct_f32_into(x, output)
    })
}

/// Int8 codes as real values, TFLM's `DEQUANTIZE`: for each code `q`, with the code
/// quantization `quant` ([`Model::code_quant`]), `(q - zero_point) as f32 * scale`: the
/// difference in i32 (at most 9 bits, so exact as f32), then one f32 product, correctly
/// rounded. That is `scale * (q - zero_point)`, as `docs/int8-arithmetic.md` writes it.
///
/// ```
/// use autoencoder_core::model::Quant;
/// use trainer::infer::dequantize;
/// let quant = Quant { scale: 0.5, zero_point: -128 };
/// assert_eq!(dequantize(&[-128, -127, 127], quant), [0.0, 0.5, 127.5]);
/// ```
pub fn dequantize(codes: &[i8], quant: Quant) -> Vec<f32> {
    codes
        .iter()
        .map(|&q| (i32::from(q) - quant.zero_point) as f32 * quant.scale)
        .collect()
}

/// Runs `each` on every sample with `width` outputs each, on a pool of `threads` threads: one
/// [`Runner`] per chunk of [`CHUNK`] samples over a scratch buffer each worker keeps. The first
/// failing sample (lowest index) is reported, whatever the thread count.
pub(crate) fn per_sample<'m, T, F>(
    model: &Model<'m>,
    samples: &Samples,
    width: usize,
    threads: usize,
    each: F,
) -> Result<Vec<T>, InferError>
where
    T: Copy + Default + Send,
    F: FnMut(&mut Runner<'m, '_>, &[f32], &mut [T]) -> Result<(), ModelError> + Clone + Send + Sync,
{
    let features = samples.features();
    let at = samples.origin();
    let mut out = vec![T::default(); samples.len() * width];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|error| InferError::Threads { threads, error })?;
    let results: Vec<Result<(), InferError>> = pool.install(|| {
        out.par_chunks_mut(CHUNK * width)
            .zip(samples.values().par_chunks(CHUNK * features))
            .enumerate()
            .map_init(
                || (vec![0i8; model.scratch_len()], each.clone()),
                |(scratch, each), (chunk, (outputs, rows))| {
                    let first = chunk * CHUNK;
                    let fail = |sample, error| InferError::Run {
                        at: at.clone(),
                        sample,
                        error,
                    };
                    let mut runner = Runner::new(model.clone(), scratch).map_err(|e| fail(first, e))?;
                    for (i, (output, x)) in outputs.chunks_mut(width).zip(rows.chunks(features)).enumerate() {
                        each(&mut runner, x, output).map_err(|e| fail(first + i, e))?;
                    }
                    Ok(())
                },
            )
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(out)
}

/// `values` as a `.npy` file's bytes, of `shape` (row-major).
pub fn npy_bytes<T: WritableElement>(path: &Path, shape: &[usize], values: Vec<T>) -> Result<Vec<u8>, InferError> {
    let npy = |reason: String| InferError::Npy {
        path: path.to_path_buf(),
        reason,
    };
    let array = ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| npy(e.to_string()))?;
    let mut bytes = Vec::new();
    array.write_npy(&mut bytes).map_err(|e| npy(e.to_string()))?;
    Ok(bytes)
}

/// Runs a [`Job`]: loads the model and the samples, checks that they fit, computes the codes or
/// reconstructions, and writes them as one `.npy` (to a temporary file renamed into place, so
/// a failure leaves no partial file):
///
/// - codes `(n, K)`: f32 [`dequantize`]d with [`Model::code_quant`], or the int8 codes;
/// - reconstructions `(n, ...input shape)`: f32 in the raw input's units
///   ([`reconstruct`]), or the int8 outputs ([`reconstruct_int8`]).
pub fn run(job: &Job) -> Result<Report, InferError> {
    let bytes = read_model(&job.model)?;
    let model = load_model(&job.model, &bytes)?;
    let samples = load_samples(&job.data, job.split, job.label_column.clone())?;
    check_fit(&model, &job.model, &samples)?;
    let n = samples.len();
    let input = input_shape(&model);
    let out_shape: Vec<usize> = match job.product {
        Product::Codes => vec![n, model.code_len()],
        Product::Reconstructions => std::iter::once(n).chain(input.iter().copied()).collect(),
    };
    let (file, element) = match (job.product, job.int8) {
        (Product::Codes, false) => {
            let codes = encode(&model, &samples, job.threads)?;
            let values = dequantize(&codes, model.code_quant());
            (npy_bytes(&job.out, &out_shape, values)?, "f32")
        }
        (Product::Codes, true) => (
            npy_bytes(&job.out, &out_shape, encode(&model, &samples, job.threads)?)?,
            "i8",
        ),
        (Product::Reconstructions, false) => (
            npy_bytes(&job.out, &out_shape, reconstruct(&model, &samples, job.threads)?)?,
            "f32",
        ),
        (Product::Reconstructions, true) => (
            npy_bytes(&job.out, &out_shape, reconstruct_int8(&model, &samples, job.threads)?)?,
            "i8",
        ),
    };
    write_atomic(&job.out, &file).map_err(|error| InferError::Write {
        path: job.out.clone(),
        error,
    })?;
    Ok(Report {
        model: job.model.clone(),
        product: job.product,
        samples: n,
        data: samples.origin().clone(),
        sample_shape: samples.shape().to_vec(),
        input_shape: input,
        out_shape,
        element,
        out: job.out.clone(),
    })
}
