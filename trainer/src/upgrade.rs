//! `trainer upgrade`: rewrites a model file of an older format version in the current one.
//!
//! Shipped models are migrated, never retrained: retraining on another CPU changes every weight.
//! An upgrade keeps every weight, bias and scale and the stored float MSE, recomputes what the
//! rules of the current version derive from them (requantization multipliers and shifts, the
//! fused LeakyReLU's negative side, the LeakyReLU and Logistic tables), and regenerates the
//! golden vectors beside the file.
//!
//! Versions (`docs/model-format.md`): version 1 has the same byte layout as version 2; what
//! changed are two rules, which version 2 states and version 1 files may break: LeakyReLU tables
//! with their scales formed in f64 (as the pinned TFLM build computes them), and the negative side
//! of a fused LeakyReLU against [`fused_negative_scale`]. Version 3 added the input's shape and
//! scaling and a source text, and allows any input. So a version 1 or 2 file is read as a
//! [`LegacyBody`], given what every model of those versions was (MNIST's 28 x 28 pixels divided
//! by 255, [`legacy_input`]) and a source naming the version it came from, checked by the
//! current loader, and every derived value is recomputed. Version 4 added the anomaly score's
//! requantization (a derived value) and an optional threshold: a version 3 file is read as a
//! [`BodyV3`] and gets the requantization its scales give and no threshold.

use crate::export::{check_against_core, write_model_and_golden, GOLDEN_TEST_IMAGES};
use crate::int8;
use crate::quantize::{mnist_input, InputSpec, QLayer, QuantParams, QuantizeError, Quantized};
use autoencoder_core::model::{
    crc32, ModelBody, ModelKind, CHECKSUM_LEN, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_LAYERS,
};
use autoencoder_core::model::{Activation, Anomaly, InputScaling, Owned, Words};
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table};
use autoencoder_core::{effective_scale, fused_negative_scale, quantize_multiplier, Model, ModelError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The oldest format version `upgrade` reads.
pub const OLDEST_VERSION: u16 = 1;

/// Why a file could not be upgraded. Nothing is written when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a model file at all.
    #[error("{path} is not a model file: {reason}")]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A model file of a version this build does not know.
    #[error(
        "{path}: model format version {found} cannot be upgraded by this build, which reads versions \
         {OLDEST_VERSION} to {FORMAT_VERSION}{}",
        if *found > FORMAT_VERSION { " (the file is newer: use a newer build)" } else { "" }
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u16,
    },
    /// The file is a model file of a known version, but broken.
    #[error("{path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        source: ModelError,
    },
    /// A derived value cannot be computed from the stored scales.
    #[error("{path}: layer {layer} ({what}): {source}")]
    Derive {
        /// The file.
        path: PathBuf,
        /// The layer.
        layer: usize,
        /// Which value.
        what: &'static str,
        /// The core's error.
        source: autoencoder_core::Error,
    },
    /// The upgraded model failed a check (it does not load, or the core and the integer
    /// reference disagree on it).
    #[error("{path}: the upgraded model failed a check: {reason}")]
    Check {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Writing the output failed; the previous files are left as they were.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How many derived values an upgrade changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Requantization (multiplier, shift) pairs, positive and negative sides, that changed.
    pub multipliers: usize,
    /// Table entries that changed.
    pub table_entries: usize,
}

/// What `upgrade` did.
#[derive(Clone, Debug, Serialize)]
pub struct UpgradeReport {
    /// The file read.
    pub input: PathBuf,
    /// The model file written.
    pub model: PathBuf,
    /// The golden vectors written beside it.
    pub golden: PathBuf,
    /// The version of the file read.
    pub from_version: u16,
    /// The version written.
    pub to_version: u16,
    /// Derived values that changed.
    pub changes: Changes,
    /// Whether the model file's bytes changed.
    pub bytes_changed: bool,
}

/// The body of format versions 1 and 2, owned: no source, and no input shape or scaling, since
/// every model then took MNIST's 784 pixels divided by 255 and quantized as `p - 128`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyBody {
    /// The variant it was exported from.
    pub name: String,
    /// Test MSE of the float model, measured at export.
    pub float_test_mse: f32,
    /// Quantization of the input pixels (scale 1/255, zero point -128).
    pub input: QuantParams,
    /// How many of the layers form the encoder.
    pub code_after: u16,
    /// The layers, input first (the same layer list as today's).
    pub layers: heapless::Vec<QLayer, MAX_LAYERS>,
}

/// The body of format version 3, owned: the current body without the anomaly score's
/// requantization and threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodyV3 {
    /// The variant it was exported from.
    pub name: String,
    /// Where the model came from.
    pub source: String,
    /// Test MSE of the float model, measured at export.
    pub float_test_mse: f32,
    /// The shape of one input sample.
    pub input_shape: Words<u32>,
    /// How raw samples become input values.
    pub input_scaling: InputScaling<'static, Owned>,
    /// Quantization of the input values.
    pub input: QuantParams,
    /// How many of the layers form the encoder.
    pub code_after: u16,
    /// The layers, input first.
    pub layers: heapless::Vec<QLayer, MAX_LAYERS>,
}

impl BodyV3 {
    /// The body in the current version: no threshold, and an anomaly score requantization that
    /// [`rederive`] computes (set here to the identity's, which it always replaces).
    pub fn upgraded(self) -> Quantized {
        Quantized::new(ModelBody {
            name: self.name,
            source: self.source,
            float_test_mse: self.float_test_mse,
            input_shape: self.input_shape,
            input_scaling: self.input_scaling,
            input: self.input,
            code_after: self.code_after,
            layers: self.layers,
            anomaly: Anomaly {
                score_multiplier: 1 << 30,
                score_shift: 1,
                threshold: None,
            },
        })
    }

    /// The version 3 file of this body. For tests and tools that need one.
    pub fn file(&self, kind: ModelKind) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(3u16.to_le_bytes());
        bytes.extend([kind as u8, 0]);
        bytes.extend(postcard::to_allocvec(self).expect("an owned body serializes"));
        let crc = crc32(&bytes);
        bytes.extend(crc.to_le_bytes());
        bytes
    }
}

/// The input every model of format versions 1 and 2 took (convolutional ones too: one channel),
/// with its own input quantization and a source recording the upgrade (`{"upgraded_from":2}`).
pub fn legacy_input(version: u16, quant: QuantParams) -> InputSpec {
    InputSpec {
        quant,
        source: serde_json::json!({ "upgraded_from": version }).to_string(),
        ..mnist_input()
    }
}

impl LegacyBody {
    /// The body in the current version (see [`legacy_input`]).
    pub fn upgraded(self, version: u16) -> Quantized {
        let input = legacy_input(version, self.input);
        BodyV3 {
            name: self.name,
            source: input.source,
            float_test_mse: self.float_test_mse,
            input_shape: input.shape.into(),
            input_scaling: input.scaling,
            input: input.quant,
            code_after: self.code_after,
            layers: self.layers,
        }
        .upgraded()
    }

    /// The model file this body was in format version `version` (1 or 2): header, postcard
    /// body, CRC-32. For tests and tools that need a file of an older version.
    pub fn file(&self, kind: ModelKind, version: u16) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend([kind as u8, 0]);
        bytes.extend(postcard::to_allocvec(self).expect("an owned body serializes"));
        let crc = crc32(&bytes);
        bytes.extend(crc.to_le_bytes());
        bytes
    }
}

/// Reads `path`, accepting every version from [`OLDEST_VERSION`] to [`FORMAT_VERSION`], and
/// returns the model owned, in the current version, with the version it was read from.
pub fn read_any_version(path: &Path) -> Result<(Quantized, u16), UpgradeError> {
    parse_any_version(path, &read(path)?)
}

/// The file's bytes, with an error that names it.
fn read(path: &Path) -> Result<Vec<u8>, UpgradeError> {
    std::fs::read(path).map_err(|source| UpgradeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// [`read_any_version`] on bytes already read from `path`.
fn parse_any_version(path: &Path, bytes: &[u8]) -> Result<(Quantized, u16), UpgradeError> {
    let not_a_model = |reason: String| UpgradeError::NotAModel {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(not_a_model(format!(
            "{} bytes, shorter than any model file",
            bytes.len()
        )));
    }
    if bytes[..4] != MAGIC {
        return Err(not_a_model(format!(
            "it starts with {:02x?}, not the magic \"AEQ8\"",
            &bytes[..4]
        )));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(UpgradeError::UnknownVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let body_end = bytes.len() - CHECKSUM_LEN;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let computed = crc32(&bytes[..body_end]);
    if stored != computed {
        return Err(UpgradeError::Model {
            path: path.to_path_buf(),
            source: ModelError::ChecksumMismatch { stored, computed },
        });
    }
    let model_error = |source| UpgradeError::Model {
        path: path.to_path_buf(),
        source,
    };
    if version == FORMAT_VERSION {
        let model = Model::from_bytes(bytes).map_err(model_error)?;
        return Ok((Quantized::from_core(&model), version));
    }
    // Versions 1 to 3: the older body, given the fields it lacks, then the current loader
    // checks everything (through the file it makes).
    let kind = ModelKind::from_byte(bytes[6]).ok_or(model_error(ModelError::UnknownKind { kind: bytes[6] }))?;
    let body = &bytes[HEADER_LEN..body_end];
    let malformed = |_| {
        model_error(ModelError::Malformed {
            reason: if version == 3 {
                "the body does not decode as a version 3 body"
            } else {
                "the body does not decode as a version 1 or 2 body"
            },
        })
    };
    let (mut q, unread) = if version == 3 {
        let (v3, unread): (BodyV3, _) = postcard::take_from_bytes(body).map_err(malformed)?;
        (v3.upgraded(), unread)
    } else {
        let (legacy, unread): (LegacyBody, _) = postcard::take_from_bytes(body).map_err(malformed)?;
        (legacy.upgraded(version), unread)
    };
    if !unread.is_empty() {
        return Err(model_error(ModelError::TrailingBytes { count: unread.len() }));
    }
    q.anomaly = Anomaly::of(&q.body).map_err(|source| UpgradeError::Derive {
        path: path.to_path_buf(),
        layer: q.layers.len(),
        what: "anomaly score requantization",
        source,
    })?;
    if q.model_kind() != kind {
        return Err(model_error(ModelError::KindMismatch { header: kind }));
    }
    let current = q.to_bytes().map_err(|e| match e {
        QuantizeError::Format(source) => model_error(source),
        other => UpgradeError::Check {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let model = Model::from_bytes(&current).map_err(model_error)?;
    Ok((Quantized::from_core(&model), version))
}

/// Recomputes, from the stored scales, every value the rules of the current version derive:
/// each weighted layer's (multiplier, shift) per channel, a fused layer's negative side, and the
/// tables. Weights, biases, scales and zero points are kept.
pub fn rederive(q: &mut Quantized) -> Result<Changes, (usize, &'static str, autoencoder_core::Error)> {
    let mut changes = Changes::default();
    let mut input = q.input;
    for (i, layer) in q.layers.iter_mut().enumerate() {
        if let Some((params, fused)) = layer.weighted_mut() {
            let (scales, output) = (&params.weight_scales, params.output);
            changes.multipliers +=
                rederive_side(scales, input, output.scale, &mut params.multipliers, &mut params.shifts)
                    .map_err(|e| (i, "multiplier", e))?;
            if let Some(f) = fused {
                let negative = fused_negative_scale(output.scale, f.slope);
                changes.multipliers +=
                    rederive_side(scales, input, negative, f.negative_multipliers, f.negative_shifts)
                        .map_err(|e| (i, "negative-side multiplier", e))?;
            }
            input = output;
            continue;
        }
        if let QLayer::Table {
            activation,
            table,
            output,
        } = layer
        {
            let fresh = match *activation {
                Activation::LeakyRelu { slope } => {
                    leaky_relu_table(slope, input.scale, input.zero_point, output.scale, output.zero_point)
                        .map_err(|e| (i, "LeakyReLU table", e))?
                }
                Activation::Logistic => {
                    logistic_table(input.scale, input.zero_point).map_err(|e| (i, "Logistic table", e))?
                }
            };
            changes.table_entries += replace_table(table, fresh.entries());
            input = *output;
        }
    }
    let fresh = Anomaly::of(&q.body).map_err(|e| (q.layers.len(), "anomaly score requantization", e))?;
    let anomaly = &mut q.anomaly;
    changes.multipliers +=
        usize::from((fresh.score_multiplier, fresh.score_shift) != (anomaly.score_multiplier, anomaly.score_shift));
    (anomaly.score_multiplier, anomaly.score_shift) = (fresh.score_multiplier, fresh.score_shift);
    Ok(changes)
}

/// Recomputes one side of a weighted layer's requantization (against `output_scale`: the
/// output's, or a fused LeakyReLU's negative side's); returns how many channels changed.
fn rederive_side(
    weight_scales: &Words<f32>,
    input: QuantParams,
    output_scale: f32,
    multipliers: &mut Words<i32>,
    shifts: &mut [i8],
) -> Result<usize, autoencoder_core::Error> {
    let mut changed = 0;
    for ((&scale, m), s) in weight_scales.iter().zip(multipliers.iter_mut()).zip(shifts.iter_mut()) {
        let (fresh_m, fresh_s) = quantize_multiplier(effective_scale(input.scale, scale, output_scale))?;
        let fresh_s = fresh_s as i8;
        changed += usize::from((fresh_m, fresh_s) != (*m, *s));
        (*m, *s) = (fresh_m, fresh_s);
    }
    Ok(changed)
}

/// Overwrites a stored table with freshly computed entries; returns how many differed.
fn replace_table(table: &mut Vec<i8>, fresh: &[i8; 256]) -> usize {
    let changed = table.iter().zip(fresh).filter(|(a, b)| a != b).count() + 256usize.saturating_sub(table.len());
    *table = fresh.to_vec();
    changed
}

/// Upgrades the model file `input` into `out` (which may be the same path), with golden
/// vectors for the first [`GOLDEN_TEST_IMAGES`] images of `test_images` (MNIST's, used for
/// MNIST models only) beside it. Both files are
/// written to temporary files first and renamed into place only when both are complete.
pub fn upgrade(input: &Path, out: &Path, test_images: &[u8]) -> Result<UpgradeReport, UpgradeError> {
    let original = read(input)?;
    let (mut q, from_version) = parse_any_version(input, &original)?;
    let changes = rederive(&mut q).map_err(|(layer, what, source)| UpgradeError::Derive {
        path: input.to_path_buf(),
        layer,
        what,
        source,
    })?;
    q.format_version = FORMAT_VERSION;
    let check = |reason: String| UpgradeError::Check {
        path: input.to_path_buf(),
        reason,
    };
    let bytes = q.to_bytes().map_err(|e| check(e.to_string()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| check(e.to_string()))?;
    let file = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // MNIST's test images feed the golden vectors of MNIST models; another model's golden
    // vectors hold the synthetic cases alone, as its export wrote them.
    let mnist = q.input_shape.as_slice() == [28, 28] && q.input_scaling == InputScaling::Unit;
    let images = if mnist { test_images } else { &[] };
    let golden = int8::golden(&q, &file, images, GOLDEN_TEST_IMAGES);
    check_against_core(&model, &golden).map_err(|e| check(format!("{e:#}")))?;
    let golden_file = write_model_and_golden(out, &bytes, &golden).map_err(|source| UpgradeError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(UpgradeReport {
        input: input.to_path_buf(),
        model: out.to_path_buf(),
        golden: golden_file,
        from_version,
        to_version: FORMAT_VERSION,
        changes,
        bytes_changed: bytes != original,
    })
}
