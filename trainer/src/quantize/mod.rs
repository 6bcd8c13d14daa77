//! Post-training int8 quantization of a trained model, following `docs/int8-arithmetic.md`,
//! and the model file it becomes.
//!
//! - Weights: int8 in [-127, 127], symmetric, one scale per output channel
//!   (`max |w| / 127` over the channel's weights).
//! - Biases: int32 in units of `input scale × weight scale`.
//! - Activations: int8 with one scale and zero point per tensor, calibrated on images of the
//!   training set: of the ranges `[a·min, b·max]` (the extremes the tensor reaches, widened to
//!   include 0, each end shrunk by a factor from 1 down to 1/64), the one whose int8 round trip
//!   has the least squared error over the tensor's values, measured after the activation that
//!   follows the tensor (so a LeakyReLU's input spends its codes on the positive side, where the
//!   output differs, and a few outliers cannot take the resolution of all other values); with
//!   two exceptions fixed by what follows the tensor: the output image has scale 1/255 and
//!   zero point -128 (the byte `q + 128` is the pixel; everything outside [0, 1] is clamped, as a
//!   pixel must be), and the pre-activation feeding that last LeakyReLU uses the range
//!   [0, min(max, 1)], since any negative value there ends as a clamped 0 anyway. Logistic outputs
//!   have TFLM's fixed scale 1/256 and zero point -128.
//! - The input: what [`mnist_input`] says (28 x 28 pixels divided by 255, quantized with scale
//!   1/255 and zero point -128), written into the model file's input fields.
//! - Multipliers and shifts come from [`autoencoder_core::quantize_multiplier`], the same code
//!   the core is tested with; LeakyReLU and Sigmoid become TFLM-exact 256-entry tables, except
//!   where a LeakyReLU is fused into the Linear or Conv2d before it (TFLM's two-multiplier
//!   requantization of the accumulator), which is done only where it lowers the error by over
//!   [`FUSE_GAIN`].
//! - Cross-layer equalization of `Linear, LeakyReLU, Linear` chains is tried, and kept if it
//!   lowers the int8 reconstruction error.
//! - Hard top-k stays, on the int8 codes; lifetime top-k is training-only and disappears.
//! - Convolutions are NHWC with OHWI filters; the decoder's input columns are permuted from the
//!   trainer's NCHW flatten to NHWC.
//!
//! The layer kinds are the core's ([`autoencoder_core::model::Layer`]); [`Quantized`] is a model
//! file owned ([`Owned`] arrays): what `inspect --json` prints and what `crate::int8` runs as
//! the independent integer reference.
//!
//! Rooms: [`calibrate`] (activation ranges), [`search`] (the refinement, fusion and equalization
//! search, scored by the core), [`lower`] (the float layers as int8 layers: NHWC, weights,
//! requantization, tables).

pub mod calibrate;
pub mod lower;
pub mod search;

use crate::data::{Scaling, ScalingKind};
use autoencoder_core::model::{self as format, InputScaling, ModelBody, ModelKind, Owned, Quant};
use autoencoder_core::quantize_f32::{quantize_f32, quantize_u8, scale_value, UNIT_DIVISOR, UNIT_SCALE};
use autoencoder_core::storage::Words;
use autoencoder_core::{Model as CoreModel, ModelError};
use serde::{Deserialize, Serialize};
use std::ops::{Deref, DerefMut};

pub use calibrate::{float_mse, quant_for_range};
pub use search::{equalized, int8_mse, quantize, quantize_with, FUSE_GAIN, REFINE_IMAGES};

/// What a model's input is, as its file records it: one sample's shape, how raw samples are
/// scaled into input values, how those are quantized, and the provenance text.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// The shape of one sample, 1 to 3 dimensions, row major (`[28, 28]`).
    pub shape: Vec<u32>,
    /// How raw samples become input values.
    pub scaling: InputScaling<'static, Owned>,
    /// Quantization of the input values.
    pub quant: Quant,
    /// Quantization of a reconstruction that ends in a LeakyReLU or a linear layer: the range of
    /// the scaled data (MNIST's pixels: [`PIXEL_QUANT`]).
    pub output: Quant,
    /// The model file's `source` (compact JSON, or empty).
    pub source: String,
}

impl InputSpec {
    /// Values of one sample, N: the product of the shape.
    pub fn len(&self) -> usize {
        self.shape.iter().map(|&d| d as usize).product()
    }

    /// Whether a sample has no values (never, for a shape the model file accepts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The input of every MNIST model, in one place: 28 x 28 pixels (one channel), each divided by
/// 255 ([`InputScaling::Unit`]) and quantized with scale 1/255 and zero point -128, so that a
/// pixel `p` is the code `p - 128`; no source recorded.
pub fn mnist_input() -> InputSpec {
    InputSpec {
        shape: vec![28, 28],
        scaling: InputScaling::Unit,
        quant: Quant {
            scale: UNIT_SCALE,
            zero_point: -128,
        },
        output: PIXEL_QUANT,
        source: String::new(),
    }
}

impl InputSpec {
    /// The input of a model trained on samples of `shape` scaled by `scaling`: the scaling as
    /// the model file stores it, and one quantization for the input and the reconstruction. Data
    /// scaled to [0, 1] (`unit`, `minmax`: their training range) gets MNIST's scale 1/255 and
    /// zero point -128; other data the range of its scaled training values `scaled_train`
    /// (widened to include 0).
    pub fn for_data(shape: &[usize], scaling: &Scaling, scaled_train: &[f32], source: String) -> InputSpec {
        let arrays = || (Words(scaling.offset.clone()), Words(scaling.divisor.clone()));
        let (stored, unit_range) = match scaling.kind {
            ScalingKind::Unit => (InputScaling::Unit, true),
            ScalingKind::None => (InputScaling::None, false),
            ScalingKind::MinMax => {
                let (offset, divisor) = arrays();
                (InputScaling::MinMax { offset, divisor }, true)
            }
            ScalingKind::Standard => {
                let (offset, divisor) = arrays();
                (InputScaling::Standard { offset, divisor }, false)
            }
        };
        let quant = if unit_range {
            mnist_input().quant
        } else {
            let (lo, hi) = scaled_train
                .iter()
                .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            quant_for_range(lo, hi)
        };
        InputSpec {
            shape: shape.iter().map(|&d| d as u32).collect(),
            scaling: stored,
            quant,
            output: if unit_range { PIXEL_QUANT } else { quant },
            source,
        }
    }

    /// The input a model file records (its scaling, quantization, shape, output quantization
    /// and source): what `eval` scores a model file with.
    pub fn of_model(model: &CoreModel<'_>) -> InputSpec {
        let body = model.to_owned_body().expect("a loaded body copies");
        InputSpec {
            shape: body.input_shape.to_vec(),
            scaling: body.input_scaling,
            quant: body.input,
            output: model.output_quant(),
            source: body.source.to_string(),
        }
    }

    /// One raw sample value's scaled value, as the device computes it (f32, see
    /// [`autoencoder_core::quantize_f32::scale_value`]); `i` is its index in the sample.
    pub fn scale(&self, i: usize, x: f32) -> f32 {
        match &self.scaling {
            InputScaling::Unit => scale_value(x, 0.0, UNIT_DIVISOR),
            InputScaling::None => x,
            InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
                scale_value(x, offset[i], divisor[i])
            }
        }
    }

    /// The same, computed in f64: the exact target a reconstruction is scored against.
    pub fn scale_f64(&self, i: usize, x: f32) -> f64 {
        match &self.scaling {
            InputScaling::Unit => f64::from(x) / 255.0,
            InputScaling::None => f64::from(x),
            InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
                (f64::from(x) - f64::from(offset[i])) / f64::from(divisor[i])
            }
        }
    }

    /// Raw samples, row after row, scaled.
    pub fn scaled<T: RawValue>(&self, raw: &[T]) -> Vec<f32> {
        let n = self.len().max(1);
        raw.iter()
            .enumerate()
            .map(|(k, &x)| self.scale(k % n, x.to_f32()))
            .collect()
    }
}

/// A raw sample value as read: a u8 pixel or an f32. The core quantizes a row of them for the
/// int8 model exactly as the device does.
pub trait RawValue: Copy + Send + Sync {
    /// The value as f32 (exact for u8).
    fn to_f32(self) -> f32;
    /// The int8 input codes of `row` under `model`'s scaling and input quantization.
    fn quantize(row: &[Self], model: &CoreModel<'_>, codes: &mut [i8]) -> Result<(), autoencoder_core::Error>;
}

impl RawValue for u8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    fn quantize(row: &[u8], model: &CoreModel<'_>, codes: &mut [i8]) -> Result<(), autoencoder_core::Error> {
        quantize_u8(row, &model.input_scaling(), model.input_quant(), codes)
    }
}

impl RawValue for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn quantize(row: &[f32], model: &CoreModel<'_>, codes: &mut [i8]) -> Result<(), autoencoder_core::Error> {
        quantize_f32(row, &model.input_scaling(), model.input_quant(), codes)
    }
}

/// Quantization of an output image of pixels in [0, 1]: the byte `q + 128` is the pixel.
pub const PIXEL_QUANT: Quant = Quant {
    scale: 1.0 / 255.0,
    zero_point: -128,
};

/// TFLM's fixed quantization of a logistic output.
pub const LOGISTIC_QUANT: Quant = Quant {
    scale: 1.0 / 256.0,
    zero_point: -128,
};

/// Images of the training set used for calibration, by default.
pub const CALIBRATION_IMAGES: usize = 5000;

/// Why a model cannot be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// A requantization or table parameter is impossible (a non-finite or huge scale).
    #[error("layer {layer} ({what}): {source}")]
    Arithmetic {
        /// Index of the exported layer.
        layer: usize,
        /// Which parameter.
        what: &'static str,
        /// The core's error.
        source: autoencoder_core::Error,
    },
    /// The quantized model breaks a rule of the model format.
    #[error("the quantized model is not a valid model file: {0}")]
    Format(#[from] ModelError),
    /// A structure the format cannot express.
    #[error("{0}")]
    Unsupported(String),
}

/// One int8 layer, owned: the core's layer list with [`Owned`] arrays.
pub type QLayer = format::Layer<'static, Owned>;

/// A weighted layer's quantized parameters, owned.
pub type QWeights = format::Weights<'static, Owned>;

/// Scale and zero point (the core's [`Quant`]).
pub type QuantParams = Quant;

/// An int8 model, owned: everything a model file holds (the body dereferences to the core's
/// [`ModelBody`]), with its format version and kind for readers of `inspect --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantized {
    /// Format version of the file it came from or will become.
    pub format_version: u16,
    /// `fully-connected` or `convolutional`.
    pub kind: String,
    /// Name, source, float MSE, input shape, scaling and quantization, code split and layers.
    #[serde(flatten)]
    pub body: ModelBody<'static, Owned>,
}

impl Deref for Quantized {
    type Target = ModelBody<'static, Owned>;
    fn deref(&self) -> &Self::Target {
        &self.body
    }
}

impl DerefMut for Quantized {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.body
    }
}

impl Quantized {
    /// The model of `body`, in the current format version.
    pub fn new(body: ModelBody<'static, Owned>) -> Quantized {
        Quantized {
            format_version: format::FORMAT_VERSION,
            kind: body.kind().name().to_string(),
            body,
        }
    }

    /// The model kind.
    pub fn model_kind(&self) -> ModelKind {
        self.body.kind()
    }

    /// Width of the code.
    pub fn code_len(&self) -> usize {
        self.body.code_len()
    }

    /// The model file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, QuantizeError> {
        let mut out = vec![0u8; format::encoded_len_bound(&self.body)];
        let len = format::write(self.model_kind(), &self.body, &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// The owned form of a loaded model file.
    pub fn from_core(model: &CoreModel<'_>) -> Quantized {
        Quantized::new(model.to_owned_body().expect("a loaded body copies"))
    }
}

#[cfg(test)]
mod tests {
    use super::calibrate::calibrate;
    use super::lower::build;
    use super::*;
    use crate::mnist::PIXELS;
    use crate::model::{Layer, Model};
    use crate::workspace::Workspace;
    use rand::SeedableRng;

    fn images(n: usize, seed: u64) -> Vec<u8> {
        use rand::Rng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n * PIXELS)
            .map(|_| if rng.random::<f32>() < 0.2 { rng.random() } else { 0 })
            .collect()
    }

    #[test]
    fn fused_and_plain_layers_run_alike_in_the_core_and_the_reference() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let model = Model::fc_tied(PIXELS, 16, &mut rng);
        let calibration = images(64, 2);
        let ranges = calibrate(&model, &calibration, 64);
        let quants: Vec<Quant> = ranges.iter().map(|r| quant_for_range(r.min, r.max)).collect();
        for fuse in [vec![false; 4], vec![true, false, true, false]] {
            let q = build(&model, "t", &mnist_input(), &quants, &fuse, 0.01).unwrap();
            let fused = q
                .layers
                .iter()
                .filter(|l| matches!(l, QLayer::FullyConnectedLeakyRelu { .. }))
                .count();
            assert_eq!(fused, fuse.iter().filter(|&&f| f).count());
            assert_eq!(q.code_len(), 16);
            let bytes = q.to_bytes().unwrap();
            let core = CoreModel::from_bytes(&bytes).unwrap();
            assert_eq!(Quantized::from_core(&core), q);
            let mut scratch = vec![0i8; core.scratch_len()];
            let mut runner = autoencoder_core::Runner::new(core, &mut scratch).unwrap();
            let mut code = vec![0i8; 16];
            let mut out = [0u8; PIXELS];
            for img in images(8, 3).chunks_exact(PIXELS) {
                let img: &[u8; PIXELS] = img.try_into().unwrap();
                let want = crate::int8::run(&q, img);
                runner.encode_u8_into(img, &mut code).unwrap();
                runner.denoise_into(img, &mut out).unwrap();
                assert_eq!(code, want.code);
                assert_eq!(
                    out.to_vec(),
                    want.output.iter().map(|&c| (c as u8) ^ 0x80).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn equalization_keeps_the_float_function() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let model = Model::fc_tied(PIXELS, 16, &mut rng);
        let calibration = images(64, 5);
        let eq = equalized(&model, &calibration, 0.5).expect("fc has a chain");
        assert!(
            eq.params.iter().zip(&model.params).any(|(a, b)| a.value != b.value)
                || eq.params.len() != model.params.len()
        );
        let (mut a, mut b) = (Workspace::new(&model, 64), Workspace::new(&eq, 64));
        a.load(calibration.chunks_exact(PIXELS));
        b.load(calibration.chunks_exact(PIXELS));
        a.forward(&model, false);
        b.forward(&eq, false);
        let worst = a
            .output()
            .iter()
            .zip(b.output().iter())
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 1e-4, "outputs differ by {worst}");
        // Hard top-k decides between units, so a per-unit scale is not allowed there.
        let topk = Model::tied(
            PIXELS,
            16,
            Layer::LeakyRelu { slope: 0.01 },
            &[Layer::TopK { k: 4 }],
            &mut rng,
        );
        assert!(equalized(&topk, &calibration, 0.5).is_none());
    }

    #[test]
    fn ranges_include_zero_and_cover_the_values() {
        let q = quant_for_range(0.5, 2.0);
        assert_eq!(q.zero_point, -128);
        // -128 + 127.5 rounds half away from zero.
        let q = quant_for_range(-1.0, 1.0);
        assert!((q.scale - 2.0 / 255.0).abs() < 1e-7);
        assert_eq!(q.zero_point, -1);
        let q = quant_for_range(-3.0, -1.0);
        assert_eq!(q.zero_point, 127);
    }
}
