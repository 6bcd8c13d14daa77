//! Autoencoders described in a TOML file (`trainer train --spec FILE.toml`): the input shape,
//! the encoder and decoder, tying and greedy stages, sparsity, penalties, noise and the schedule.
//! Every built-in variant is such a file (`trainer/specs/`, printed by `trainer spec <variant>`).
//!
//! Rooms: this file holds the types (what a file may say, with its defaults) and parsing;
//! [`check`] the rules a spec must follow for its input, each broken rule an error with the key
//! path and the line; [`build`] the model and the run configuration a spec makes.
//!
//! ```toml
//! name = "fc"
//! [encoder]
//! layers = [{ dense = 64 }]
//! activation = "leaky_relu"
//! alpha = 0.01
//! [decoder]
//! tied = true
//! [schedule]
//! epochs = 100
//! finetune_epochs = 50
//! ```
//!
//! The page `docs/spec.md` lists every key.

pub mod build;
pub mod check;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An autoencoder and how to train it, as a spec file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Name: the run directory (`runs/<name>`) and the model file's name.
    pub name: String,
    /// One line for `trainer list`.
    #[serde(default)]
    pub about: String,
    /// The shape of one sample; without it, the data's.
    #[serde(default)]
    pub input: Option<InputSpec>,
    /// `[encoder]`.
    pub encoder: EncoderSpec,
    /// `[decoder]`.
    #[serde(default)]
    pub decoder: DecoderSpec,
    /// What training adds: greedy stages, fine-tuning, a penalty, noise.
    #[serde(default)]
    pub training: TrainingSpec,
    /// The optimiser's numbers.
    #[serde(default)]
    pub schedule: ScheduleSpec,
}

/// `[input]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// One sample's shape: `[features]`, `[height, width]` or `[height, width, channels]`.
    pub shape: Vec<usize>,
}

/// The model a spec describes: encoder, decoder, and whether it is grown in greedy stages.
/// Stored in a run's configuration, from which the model is built again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// The encoder.
    pub encoder: EncoderSpec,
    /// The decoder.
    pub decoder: DecoderSpec,
    /// Greedy layer-wise stages (`[training] greedy`): the model starts as its first encoder
    /// layer and grows one tied pair per stage.
    pub greedy: bool,
}

/// `[encoder]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// The layers, input first; the last one's output (after its activation and any sparsity)
    /// is the code.
    pub layers: Vec<LayerSpec>,
    /// The activation after every dense and convolution layer (not after max-pooling).
    #[serde(default = "leaky_relu")]
    pub activation: Activation,
    /// LeakyReLU's negative slope [default: 0.01]; only with `leaky_relu`.
    #[serde(default)]
    pub alpha: Option<f32>,
    /// The activation of the code layer [default: `activation`].
    #[serde(default)]
    pub code_activation: Option<Activation>,
    /// Sparsity on the code.
    #[serde(default)]
    pub sparsity: Option<Sparsity>,
}

/// One encoder (or listed decoder) layer: exactly one of `dense`, `conv` (with `kernel`) or
/// `max_pool`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// A fully connected layer of this many units.
    #[serde(default)]
    pub dense: Option<usize>,
    /// A 2-D convolution with this many output channels (`VALID`, stride 1).
    #[serde(default)]
    pub conv: Option<usize>,
    /// The convolution's square kernel side.
    #[serde(default)]
    pub kernel: Option<usize>,
    /// Max-pooling with this window and stride; only 2 is supported.
    #[serde(default)]
    pub max_pool: Option<usize>,
}

impl LayerSpec {
    /// A dense layer.
    pub fn dense(units: usize) -> LayerSpec {
        LayerSpec {
            dense: Some(units),
            ..LayerSpec::default()
        }
    }
}

/// `[decoder]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    /// Each decoder layer uses its mirror encoder layer's weight, transposed.
    #[serde(default)]
    pub tied: bool,
    /// The decoder's hidden dense layers, code side first; the layer back to the input width
    /// always follows them. Without it the decoder mirrors a dense encoder.
    #[serde(default)]
    pub layers: Option<Vec<LayerSpec>>,
    /// The activation of the output [default: the encoder's `activation`].
    #[serde(default)]
    pub output_activation: Option<Activation>,
}

/// An activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x >= 0`, else `alpha · x`.
    LeakyRelu,
    /// The logistic sigmoid.
    Sigmoid,
    /// None: the identity.
    Linear,
    /// Named so that a spec asking for it gets a reason, not "unknown variant": the int8 path
    /// has no TANH that matches TFLM's exactly.
    Tanh,
}

fn leaky_relu() -> Activation {
    Activation::LeakyRelu
}

/// `sparsity = { top_k = K }` or `{ lifetime = FRACTION }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sparsity {
    /// Each sample keeps its `k` largest codes.
    TopK(usize),
    /// Each code unit keeps its largest fraction of the batch (training only).
    Lifetime(f64),
}

/// `[training]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Greedy layer-wise stages: one stage per encoder layer, each a new tied pair trained with
    /// everything before it frozen, then fine-tuning. Needs a tied dense model.
    #[serde(default)]
    pub greedy: bool,
    /// What fine-tuning does to a tied decoder: `untied` (default) or `tied`.
    #[serde(default)]
    pub finetune: Finetune,
    /// A penalty on the codes.
    #[serde(default)]
    pub penalty: Option<PenaltySpec>,
    /// Corruption of the inputs (denoising); the target stays clean.
    #[serde(default)]
    pub noise: Option<NoiseSpec>,
    /// One-class training (anomaly detection): train on the normal samples only (those labelled
    /// 0 when the training samples carry labels, else all) and validate on a seeded sixth of
    /// them held out, never on a test set, which holds the anomalies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_class: bool,
}

/// What fine-tuning does to a tied decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finetune {
    /// Each decoder layer gets its own copy of the weight.
    #[default]
    Untied,
    /// The decoder goes on sharing the encoder's weights.
    Tied,
}

/// `penalty = { l1 = LAMBDA }` or `{ kl = LAMBDA, rho = RHO }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PenaltySpec {
    /// λ of `λ · mean(|c|)`.
    #[serde(default)]
    pub l1: Option<f32>,
    /// λ of `λ · mean_j KL(ρ ‖ ρ̂_j)` (sigmoid codes).
    #[serde(default)]
    pub kl: Option<f64>,
    /// KL's target mean activation ρ.
    #[serde(default)]
    pub rho: Option<f64>,
}

/// `noise = { gaussian = VARIANCE }` or `{ mask = FRACTION }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NoiseSpec {
    /// Add N(0, variance) to every input value, then clip to [0, 1].
    Gaussian(f32),
    /// Set this fraction of the input values, chosen afresh, to 0.
    Mask(f32),
}

/// `[schedule]`, with the tutorial's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSpec {
    /// Adam's initial learning rate.
    pub learning_rate: f64,
    /// A phase ends once the learning rate is below this.
    pub stop_learning_rate: f64,
    /// Batch size.
    pub batch: usize,
    /// Epoch cap of every phase but fine-tuning (each greedy stage, the tied phase, or the one
    /// phase of an untied model).
    pub epochs: usize,
    /// Epoch cap of the fine-tuning phase of a tied or greedy model (0: none).
    pub finetune_epochs: usize,
    /// Coupled L2 weight decay λ (0: none).
    pub weight_decay: f32,
    /// Seeds initialisation and shuffling.
    pub seed: u64,
    /// ReduceLROnPlateau's knobs.
    pub plateau: PlateauSpec,
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        ScheduleSpec {
            learning_rate: 1e-3,
            stop_learning_rate: 1e-5,
            batch: 512,
            epochs: 100,
            finetune_epochs: 0,
            weight_decay: 0.0,
            seed: 0,
            plateau: PlateauSpec::default(),
        }
    }
}

/// `[schedule.plateau]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateauSpec {
    /// Multiplier of the learning rate on a plateau.
    pub factor: f64,
    /// Epochs without improvement before it is lowered.
    pub patience: u32,
    /// Relative improvement that counts as one.
    pub threshold: f64,
}

impl Default for PlateauSpec {
    fn default() -> Self {
        PlateauSpec {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
        }
    }
}

/// A spec that cannot be read or used: where (file, key path, line) and what.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML, or a key is unknown, missing or of the wrong type; or a value
    /// breaks a rule of [`check`].
    #[error("{origin}{line}: {key}{message}", line = line.map_or(String::new(), |l| format!(":{l}")), key = if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Invalid {
        /// The file, or `<variant>` for a built-in spec.
        origin: String,
        /// The key path, e.g. `encoder.layers[0].dense` (empty for the whole file).
        key: String,
        /// The line, from 1, where the text has one.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

impl Spec {
    /// Parses a spec. `origin` names it in errors (its path, or the built-in variant). Checks
    /// everything that does not depend on the data ([`check::check`] checks the rest).
    pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let invalid = |key: String, span: Option<std::ops::Range<usize>>, message: String| SpecError::Invalid {
            origin: origin.to_string(),
            key,
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let de =
            toml::Deserializer::parse(text).map_err(|e| invalid(String::new(), e.span(), e.message().to_string()))?;
        let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            invalid(key, e.inner().span(), e.inner().message().to_string())
        })?;
        check::check_alone(&spec).map_err(|e| invalid(e.key.clone(), locate(text, &e.key), e.message))?;
        Ok(spec)
    }

    /// The model it describes.
    pub fn architecture(&self) -> Architecture {
        Architecture {
            encoder: self.encoder.clone(),
            decoder: self.decoder.clone(),
            greedy: self.training.greedy,
        }
    }

    /// Reads and parses the spec file at `path`.
    pub fn read(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(&text, &path.display().to_string())
    }

    /// The spec as TOML, which [`Spec::parse`] reads back as the same spec.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a spec is plain tables, numbers and strings")
    }
}

/// The line (from 1) of byte offset `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The span of the value at `key` (`a.b[2].c`) in `text`, or of the deepest part of it there is.
pub(crate) fn locate(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray> = None;
    for part in key_parts(key) {
        let value = match part {
            KeyPart::Name(name) => table.and_then(|t| t.get(name)),
            KeyPart::Index(i) => array.and_then(|a| a.get(i)),
        };
        let Some(value) = value else { break };
        span = Some(value.span());
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a)),
            _ => (None, None),
        };
    }
    span
}

enum KeyPart<'k> {
    Name(&'k str),
    Index(usize),
}

/// `a.b[2].c` as `a`, `b`, 2, `c`.
fn key_parts(key: &str) -> Vec<KeyPart<'_>> {
    let mut parts = Vec::new();
    for segment in key.split('.').filter(|s| !s.is_empty()) {
        let mut pieces = segment.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            parts.push(KeyPart::Name(name));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                parts.push(KeyPart::Index(i));
            }
        }
    }
    parts
}
