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
//! - Input pixels: scale 1/255, zero point -128.
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
//! [`Quantized`] is the owned, serde-friendly form of a model file: what `inspect --json` prints
//! and what [`crate::int8`] runs as the independent integer reference.

use crate::mnist::PIXELS;
use crate::model::{Layer, Model};
use crate::workspace::Workspace;
use autoencoder_core::model::{self as format, Activation, ModelBody, ModelKind, Quant, Weights};
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table};
use autoencoder_core::{effective_scale, fused_negative_scale, quantize_multiplier, Model as CoreModel, ModelError};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Quantization of the input pixels.
pub const INPUT_QUANT: Quant = Quant {
    scale: 1.0 / 255.0,
    zero_point: -128,
};

/// Quantization of an output image of pixels in [0, 1].
pub const PIXEL_QUANT: Quant = INPUT_QUANT;

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

/// A fully connected or convolution layer's quantized parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QWeights {
    /// Int8 weights: `[outputs][inputs]` or OHWI.
    pub weights: Vec<i8>,
    /// Per output channel weight scale.
    pub weight_scales: Vec<f32>,
    /// Per output channel int32 bias, in units of `input scale × weight scale`.
    pub bias: Vec<i32>,
    /// Per output channel Q0.31 multiplier.
    pub multipliers: Vec<i32>,
    /// Per output channel shift.
    pub shifts: Vec<i32>,
    /// Output quantization.
    pub output: QuantParams,
}

/// Scale and zero point (serde-friendly mirror of the core's `Quant`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// Real value of one step.
    pub scale: f32,
    /// Code of real 0.
    pub zero_point: i32,
}

impl From<Quant> for QuantParams {
    fn from(q: Quant) -> Self {
        QuantParams {
            scale: q.scale,
            zero_point: q.zero_point,
        }
    }
}

impl From<QuantParams> for Quant {
    fn from(q: QuantParams) -> Self {
        Quant {
            scale: q.scale,
            zero_point: q.zero_point,
        }
    }
}

/// One exported layer, owned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QLayer {
    /// Fully connected.
    FullyConnected {
        /// Input width.
        inputs: usize,
        /// Output width.
        outputs: usize,
        /// Parameters.
        #[serde(flatten)]
        params: QWeights,
    },
    /// Convolution, NHWC input, OHWI filters, VALID, stride 1.
    Conv2d {
        /// Input rows.
        height: usize,
        /// Input columns.
        width: usize,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Parameters.
        #[serde(flatten)]
        params: QWeights,
    },
    /// 2x2 stride-2 max-pool, NHWC.
    MaxPool2d {
        /// Input rows.
        height: usize,
        /// Input columns.
        width: usize,
        /// Channels.
        channels: usize,
    },
    /// LeakyReLU table.
    LeakyReluTable {
        /// Negative slope.
        slope: f32,
        /// Entry `i` is the output for input code `i - 128`.
        table: Vec<i8>,
        /// Output quantization.
        output: QuantParams,
    },
    /// Logistic table.
    LogisticTable {
        /// Entry `i` is the output for input code `i - 128`.
        table: Vec<i8>,
        /// Output quantization.
        output: QuantParams,
    },
    /// Hard top-k on the codes.
    TopK {
        /// Codes kept.
        k: usize,
    },
    /// Fully connected with a fused LeakyReLU: `params` requantize non-negative accumulators
    /// into the LeakyReLU's output, the `negative_*` pair negative ones.
    FullyConnectedLeakyRelu {
        /// Input width.
        inputs: usize,
        /// Output width.
        outputs: usize,
        /// Negative slope.
        slope: f32,
        /// Parameters (output: the LeakyReLU's).
        #[serde(flatten)]
        params: QWeights,
        /// Per output channel, the negative-side multiplier.
        negative_multipliers: Vec<i32>,
        /// Per output channel, the negative-side shift.
        negative_shifts: Vec<i32>,
    },
    /// Convolution with a fused LeakyReLU (NHWC, OHWI, VALID, stride 1).
    Conv2dLeakyRelu {
        /// Input rows.
        height: usize,
        /// Input columns.
        width: usize,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Negative slope.
        slope: f32,
        /// Parameters (output: the LeakyReLU's).
        #[serde(flatten)]
        params: QWeights,
        /// Per output channel, the negative-side multiplier.
        negative_multipliers: Vec<i32>,
        /// Per output channel, the negative-side shift.
        negative_shifts: Vec<i32>,
    },
}

/// An int8 model, owned: everything a model file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantized {
    /// Format version of the file it came from or will become.
    pub format_version: u16,
    /// `fully-connected` or `convolutional`.
    pub kind: String,
    /// Variant name.
    pub name: String,
    /// Test MSE of the float model, measured at export (NaN if unknown).
    pub float_test_mse: f32,
    /// Input quantization.
    pub input: QuantParams,
    /// Layers `..code_after` are the encoder.
    pub code_after: usize,
    /// The layers, input first.
    pub layers: Vec<QLayer>,
}

/// What calibration saw of one tensor: its extremes and an evenly strided sample of its values.
#[derive(Clone, Debug)]
struct Range {
    min: f32,
    max: f32,
    sample: Vec<f32>,
}

/// At most this many values of each tensor are kept for choosing its range.
const SAMPLE: usize = 1 << 18;

impl Range {
    fn new() -> Range {
        Range {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sample: Vec::new(),
        }
    }

    fn update(&mut self, x: ArrayView2<f32>, stride: usize) {
        for (i, &v) in x.iter().enumerate() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            if i % stride == 0 {
                self.sample.push(v);
            }
        }
    }

    /// The quantization of this tensor whose int8 round trip, seen through `then` (the
    /// activation that follows the tensor, or the identity), has the least squared error over the
    /// sample, among the ranges `[a·min, b·max]` for `a` and `b` from 1 down to 1/64: outliers are
    /// clipped when that costs less than the resolution they take from everything else, and a
    /// LeakyReLU's input spends its codes where the LeakyReLU's output differs.
    fn best_quant(&self, then: impl Fn(f32) -> f32) -> Quant {
        let factors: Vec<f32> = (0..=48).map(|step| 0.5f32.powf(step as f32 / 8.0)).collect();
        let error =
            |a: f32, b: f32| quantization_error(&self.sample, quant_for_range(a * self.min, b * self.max), &then);
        let (mut a, mut b) = (1.0f32, 1.0f32);
        let mut best = error(a, b);
        // Coordinate descent: the best upper factor for the current lower one, then the best
        // lower factor for that, twice.
        for _ in 0..2 {
            for &f in &factors {
                let e = error(a, f);
                if e < best {
                    (best, b) = (e, f);
                }
            }
            for &f in &factors {
                let e = error(f, b);
                if e < best {
                    (best, a) = (e, f);
                }
            }
        }
        quant_for_range(a * self.min, b * self.max)
    }
}

/// Sum of squared differences between `then(v)` and `then` of `v`'s int8 round trip through `q`.
fn quantization_error(values: &[f32], q: Quant, then: impl Fn(f32) -> f32) -> f64 {
    let (scale, zp) = (q.scale, q.zero_point as f32);
    values
        .iter()
        .map(|&v| {
            let code = (v / scale + zp).round().clamp(-128.0, 127.0);
            let back = (code - zp) * scale;
            f64::from(then(back) - then(v)).powi(2)
        })
        .sum()
}

/// The asymmetric int8 quantization covering `[min, max]` widened to include 0 (TFLite's rule:
/// 0 must be exactly representable).
pub fn quant_for_range(min: f32, max: f32) -> Quant {
    let min = min.min(0.0);
    let max = max.max(0.0);
    if !(max - min).is_finite() || max - min < 1e-12 {
        return PIXEL_QUANT;
    }
    let scale = (max - min) / 255.0;
    let zero_point = (-128.0 - f64::from(min) / f64::from(scale))
        .round()
        .clamp(-128.0, 127.0) as i32;
    Quant { scale, zero_point }
}

/// Per-layer output ranges of `model` over `images` (rows of 784 pixels), in evaluation mode.
fn calibrate(model: &Model, images: &[u8], batch: usize) -> Vec<Range> {
    let widths = model.widths().expect("a valid model");
    let n = images.len() / PIXELS;
    let strides: Vec<usize> = widths.iter().map(|&w| (n * w).div_ceil(SAMPLE).max(1)).collect();
    let mut ranges = vec![Range::new(); model.layers.len()];
    let mut ws = Workspace::new(model, batch);
    for chunk in images.chunks(batch * PIXELS) {
        ws.load(chunk.chunks_exact(PIXELS));
        ws.forward(model, false);
        for (i, r) in ranges.iter_mut().enumerate() {
            r.update(ws.act(i), strides[i]);
        }
    }
    ranges
}

/// Test MSE of the float model on `images`, clean input against itself (evaluation mode).
pub fn float_mse(model: &Model, images: &[u8]) -> f64 {
    let mut ws = Workspace::new(model, 500);
    let mut sse = 0.0;
    for chunk in images.chunks(500 * PIXELS) {
        ws.load(chunk.chunks_exact(PIXELS));
        ws.forward(model, false);
        sse += crate::layers::mse::sum_squared_error(ws.output(), ws.input());
    }
    sse / images.len() as f64
}

/// Layout of the activation between two layers, as the float model holds it.
#[derive(Clone, Copy)]
enum Layout {
    /// A flat vector.
    Flat(usize),
    /// Channels, height, width: the trainer's NCHW rows; the int8 model holds them NHWC.
    Chw(usize, usize, usize),
}

impl Layout {
    fn len(self) -> usize {
        match self {
            Layout::Flat(n) => n,
            Layout::Chw(c, h, w) => c * h * w,
        }
    }
}

/// The least relative gain in reconstruction MSE for which [`quantize`] fuses a LeakyReLU into
/// the fully connected layer before it.
pub const FUSE_GAIN: f64 = 0.05;

/// Training images on which [`quantize`] compares candidate activation ranges.
pub const REFINE_IMAGES: usize = 256;

/// Scale factors tried for each end of an activation range: 1 down to 1/64 in half octaves.
fn factors() -> impl Iterator<Item = f32> {
    (0..=12).map(|k| 0.5f32.powf(k as f32 / 2.0))
}

/// Quantizes `model`, calibrating activations on `calibration` (rows of 784 pixels).
///
/// Each activation's range starts as the one with the least round-trip error over its own
/// calibration values (seen through the activation that follows it); then, tensor by tensor
/// from input to output, each end of the range is shrunk by factors from 1 down to 1/64 in half octaves and a
/// change is kept when it lowers the int8 model's reconstruction MSE on the first
/// [`REFINE_IMAGES`] calibration images (run by the core itself). Error amplified by later
/// layers (large decoder weights behind small codes) is thus seen and paid for. Fusing a
/// LeakyReLU into the layer before it, and cross-layer equalization, are kept where they lower
/// that error.
pub fn quantize(
    model: &Model,
    name: &str,
    calibration: &[u8],
    float_test_mse: f64,
) -> Result<Quantized, QuantizeError> {
    quantize_with(model, name, calibration, REFINE_IMAGES, float_test_mse)
}

/// [`quantize`] comparing candidate ranges on the first `refine_images` calibration images
/// (0: keep each tensor's own best range, with neither fusion nor equalization).
pub fn quantize_with(
    model: &Model,
    name: &str,
    calibration: &[u8],
    refine_images: usize,
    float_test_mse: f64,
) -> Result<Quantized, QuantizeError> {
    if model.input != PIXELS {
        return Err(QuantizeError::Unsupported(format!(
            "the model's input is {} wide; only 784-pixel models export",
            model.input
        )));
    }
    let (plain, plain_mse) = quantize_as_is(model, name, calibration, refine_images, float_test_mse)?;
    if refine_images == 0 {
        return Ok(plain);
    }
    if let Some(eq) = equalized(model, calibration, EQUALIZATION_BALANCE) {
        let (q, mse) = quantize_as_is(&eq, name, calibration, refine_images, float_test_mse)?;
        if mse < plain_mse {
            return Ok(q);
        }
    }
    Ok(plain)
}

/// The balance [`equalized`] is tried with: Nagel et al.'s 1/2. (On `l1`, 3/4 and 1, which give
/// every unit more nearly the same activation range, did worse.)
const EQUALIZATION_BALANCE: f32 = 0.5;

/// Cross-layer equalization (Nagel et al., 2019) of each `Linear, LeakyReLU, Linear` chain
/// (lifetime top-k between them is the identity at inference; hard top-k or a sigmoid stops
/// it, since a per-unit scale would change which codes win or what they are): hidden unit `j`
/// is scaled by `s_j = r_j^(1 - balance) / a_j^balance` (`balance` 1/2: Nagel et al.'s
/// `sqrt(r_j / a_j)`), where `a_j` is the largest magnitude the unit reaches on the calibration
/// images and `r_j` the largest weight it feeds into the next layer. The
/// first layer's row `j` (weights and bias) is multiplied by `s_j` and the next layer's column
/// `j` divided by it; LeakyReLU is positively homogeneous, so the float model computes the same
/// function, but every unit's activations and outgoing weights now have the same product-
/// balanced range, so one per-tensor activation scale and per-row weight scales waste fewer
/// codes on the few units with the widest ranges. `None` when no chain qualifies.
pub fn equalized(model: &Model, calibration: &[u8], balance: f32) -> Option<Model> {
    let mut m = model.clone();
    m.untie();
    let mut chains = Vec::new();
    for i in 0..m.layers.len() {
        if let (Layer::Linear { .. }, Some(Layer::LeakyRelu { .. })) = (&m.layers[i], m.layers.get(i + 1)) {
            let mut j = i + 2;
            while matches!(m.layers.get(j), Some(Layer::LifetimeTopK { .. })) {
                j += 1;
            }
            if let Some(Layer::Linear { .. }) = m.layers.get(j) {
                chains.push((i, i + 1, j));
            }
        }
    }
    if chains.is_empty() {
        return None;
    }
    let n = (calibration.len() / PIXELS).min(1000);
    let mut ws = Workspace::new(&m, n.max(1));
    ws.load(calibration[..n * PIXELS].chunks_exact(PIXELS));
    ws.forward(&m, false);
    let mut scales = Vec::new();
    for &(_, act, _) in &chains {
        let a = ws.act(act);
        let peaks: Vec<f32> = a
            .columns()
            .into_iter()
            .map(|c| c.iter().fold(0f32, |p, &v| p.max(v.abs())))
            .collect();
        scales.push(peaks);
    }
    for (&(first, _, next), peaks) in chains.iter().zip(scales) {
        let (
            Layer::Linear {
                weight: w1, bias: b1, ..
            },
            Layer::Linear { weight: w2, .. },
        ) = (m.layers[first].clone(), m.layers[next].clone())
        else {
            continue;
        };
        for (j, &a) in peaks.iter().enumerate() {
            let r = m.params[w2].value.column(j).iter().fold(0f32, |p, &v| p.max(v.abs()));
            if !(a > 0.0 && r > 0.0) {
                continue;
            }
            let s = r.powf(1.0 - balance) / a.powf(balance);
            m.params[w1].value.row_mut(j).mapv_inplace(|v| v * s);
            m.params[b1].value[[0, j]] *= s;
            m.params[w2].value.column_mut(j).mapv_inplace(|v| v / s);
        }
    }
    Some(m)
}

/// [`quantize_with`] without equalization; also returns the reconstruction MSE on the
/// refinement images.
fn quantize_as_is(
    model: &Model,
    name: &str,
    calibration: &[u8],
    refine_images: usize,
    float_test_mse: f64,
) -> Result<(Quantized, f64), QuantizeError> {
    let ranges = calibrate(model, calibration, 500);
    let last = model.layers.len() - 1;
    let mut quants = Vec::with_capacity(model.layers.len());
    let mut tunable = Vec::with_capacity(model.layers.len());
    for (i, r) in ranges.iter().enumerate() {
        let next_is_final_leaky = i + 1 == last && matches!(model.layers[last], Layer::LeakyRelu { .. });
        let (quant, tune) = if i == last {
            (PIXEL_QUANT, false)
        } else if next_is_final_leaky {
            (quant_for_range(0.0, r.max.min(1.0)), false)
        } else {
            match (&model.layers[i], model.layers.get(i + 1)) {
                (Layer::Sigmoid, _) => (LOGISTIC_QUANT, false),
                (Layer::Linear { .. } | Layer::Conv2d { .. } | Layer::LeakyRelu { .. }, next) => {
                    let quant = match next {
                        Some(&Layer::LeakyRelu { slope }) => r.best_quant(|x| if x < 0.0 { slope * x } else { x }),
                        Some(Layer::Sigmoid) => r.best_quant(|x| 1.0 / (1.0 + (-x).exp())),
                        _ => r.best_quant(|x| x),
                    };
                    (quant, true)
                }
                // Pooling and sparsity keep their input's quantization.
                _ => (PIXEL_QUANT, false),
            }
        };
        quants.push(quant);
        tunable.push(tune);
    }
    let refine = &calibration[..calibration.len().min(refine_images * PIXELS)];
    let mut fuse = vec![false; quants.len()];
    let score = |quants: &[Quant], fuse: &[bool]| -> Result<f64, QuantizeError> {
        let bytes = build(model, name, quants, fuse, float_test_mse)?.to_bytes()?;
        let mse = int8_mse(&CoreModel::from_bytes(&bytes)?, refine);
        Ok(mse)
    };
    let mut best = if refine.is_empty() { 0.0 } else { score(&quants, &fuse)? };
    // A Linear or Conv2d + LeakyReLU pair is fused only where the int8 tensor between them costs more
    // than `FUSE_GAIN` of the reconstruction error: elsewhere the model stays op for op as
    // TFLM would run it.
    for i in 0..quants.len() {
        let pair = matches!(model.layers[i], Layer::Linear { .. } | Layer::Conv2d { .. })
            && matches!(model.layers.get(i + 1), Some(Layer::LeakyRelu { .. }));
        if !pair || refine.is_empty() {
            continue;
        }
        let mut trial = fuse.clone();
        trial[i] = true;
        let mse = score(&quants, &trial)?;
        if mse < best * (1.0 - FUSE_GAIN) {
            (best, fuse) = (mse, trial);
            tunable[i] = false;
        }
    }
    for i in (0..quants.len()).filter(|&i| tunable[i] && !refine.is_empty()) {
        let r = &ranges[i];
        let (mut a, mut b) = (1.0f32, 1.0f32);
        for end in 0..2 {
            for f in factors() {
                let (ta, tb) = if end == 0 { (f, b) } else { (a, f) };
                let mut trial = quants.clone();
                trial[i] = quant_for_range(ta * r.min, tb * r.max);
                let mse = score(&trial, &fuse)?;
                if mse < best {
                    (best, quants, a, b) = (mse, trial, ta, tb);
                }
            }
        }
    }
    Ok((build(model, name, &quants, &fuse, float_test_mse)?, best))
}

/// Reconstruction MSE of an int8 model run by the core on `images` (rows of 784 pixels, clean
/// in, compared with themselves; output codes read back through the output's quantization).
pub fn int8_mse(model: &CoreModel<'_>, images: &[u8]) -> f64 {
    let out = model.output_quant();
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = autoencoder_core::Runner::new(model.clone(), &mut scratch).expect("scratch sized by the model");
    let mut image = [0u8; PIXELS];
    let mut sse = 0.0f64;
    for input in images.chunks_exact(PIXELS) {
        let input: &[u8; PIXELS] = input.try_into().expect("chunks of 784");
        runner.denoise_into(input, &mut image).expect("a loaded model runs");
        for (&p, &x) in image.iter().zip(input) {
            let y = f64::from(out.scale) * f64::from(i32::from(p) - 128 - out.zero_point);
            let t = f64::from(x) / 255.0;
            sse += (y - t) * (y - t);
        }
    }
    sse / images.len().max(1) as f64
}

/// The int8 model of `model` with layer `i`'s output quantized by `quants[i]` (ignored for
/// layers that keep their input's quantization); a Linear layer `i` with `fuse[i]` takes the
/// LeakyReLU after it in (one fused layer, quantized as that LeakyReLU's output).
fn build(
    model: &Model,
    name: &str,
    quants: &[Quant],
    fuse: &[bool],
    float_test_mse: f64,
) -> Result<Quantized, QuantizeError> {
    let mut layers = Vec::new();
    let mut code_after = None;
    let mut input: Quant = INPUT_QUANT;
    let mut layout = Layout::Flat(PIXELS);
    let mut skip = false;
    for (i, layer) in model.layers.iter().enumerate() {
        if i == model.code_after {
            code_after = Some(layers.len());
        }
        if std::mem::take(&mut skip) {
            continue;
        }
        let at = layers.len();
        match *layer {
            Layer::Linear {
                weight,
                bias,
                transposed,
            } => {
                let w = &model.params[weight].value;
                let w = if transposed { w.t() } else { w.view() };
                let w = nhwc_columns(w, layout);
                let b = model.params[bias].value.row(0).to_vec();
                let (inputs, outputs) = (w.ncols(), w.nrows());
                match model.layers.get(i + 1) {
                    Some(&Layer::LeakyRelu { slope }) if fuse[i] => {
                        let output = quants[i + 1];
                        let params = quantize_weights(&w, &b, input, output, at)?;
                        let (negative_multipliers, negative_shifts) = negative_side(&params, input, output, slope, at)?;
                        layers.push(QLayer::FullyConnectedLeakyRelu {
                            inputs,
                            outputs,
                            slope,
                            params,
                            negative_multipliers,
                            negative_shifts,
                        });
                        skip = true;
                        input = output;
                    }
                    _ => {
                        let output = quants[i];
                        let params = quantize_weights(&w, &b, input, output, at)?;
                        layers.push(QLayer::FullyConnected {
                            inputs,
                            outputs,
                            params,
                        });
                        input = output;
                    }
                }
                layout = Layout::Flat(outputs);
            }
            Layer::Conv2d {
                weight,
                bias,
                geometry: g,
            } => {
                // (O, C·k·k) in C, kh, kw order → OHWI.
                let w = &model.params[weight].value;
                let k = g.kernel;
                let ohwi = Array2::from_shape_fn((g.out_channels, k * k * g.in_channels), |(o, j)| {
                    let (kh, rest) = (j / (k * g.in_channels), j % (k * g.in_channels));
                    let (kw, c) = (rest / g.in_channels, rest % g.in_channels);
                    w[[o, c * k * k + kh * k + kw]]
                });
                let b = model.params[bias].value.row(0).to_vec();
                match model.layers.get(i + 1) {
                    Some(&Layer::LeakyRelu { slope }) if fuse[i] => {
                        let output = quants[i + 1];
                        let params = quantize_weights(&ohwi, &b, input, output, at)?;
                        let (negative_multipliers, negative_shifts) = negative_side(&params, input, output, slope, at)?;
                        layers.push(QLayer::Conv2dLeakyRelu {
                            height: g.in_h,
                            width: g.in_w,
                            in_channels: g.in_channels,
                            out_channels: g.out_channels,
                            kernel: k,
                            slope,
                            params,
                            negative_multipliers,
                            negative_shifts,
                        });
                        skip = true;
                        input = output;
                    }
                    _ => {
                        let output = quants[i];
                        let params = quantize_weights(&ohwi, &b, input, output, at)?;
                        layers.push(QLayer::Conv2d {
                            height: g.in_h,
                            width: g.in_w,
                            in_channels: g.in_channels,
                            out_channels: g.out_channels,
                            kernel: k,
                            params,
                        });
                        input = output;
                    }
                }
                layout = Layout::Chw(g.out_channels, g.out_h(), g.out_w());
            }
            Layer::MaxPool2d { geometry: g } => {
                layers.push(QLayer::MaxPool2d {
                    height: g.in_h,
                    width: g.in_w,
                    channels: g.channels,
                });
                layout = Layout::Chw(g.channels, g.out_h(), g.out_w());
            }
            Layer::LeakyRelu { slope } => {
                let output = quants[i];
                let table = leaky_relu_table(slope, input.scale, input.zero_point, output.scale, output.zero_point)
                    .map_err(|source| QuantizeError::Arithmetic {
                        layer: at,
                        what: "LeakyReLU table",
                        source,
                    })?;
                layers.push(QLayer::LeakyReluTable {
                    slope,
                    table: table.entries().to_vec(),
                    output: output.into(),
                });
                input = output;
            }
            Layer::Sigmoid => {
                let table =
                    logistic_table(input.scale, input.zero_point).map_err(|source| QuantizeError::Arithmetic {
                        layer: at,
                        what: "logistic table",
                        source,
                    })?;
                layers.push(QLayer::LogisticTable {
                    table: table.entries().to_vec(),
                    output: LOGISTIC_QUANT.into(),
                });
                input = LOGISTIC_QUANT;
            }
            Layer::TopK { k } => layers.push(QLayer::TopK { k: k.min(layout.len()) }),
            Layer::LifetimeTopK { .. } => {}
        }
    }
    let kind = if layers
        .iter()
        .any(|l| matches!(l, QLayer::Conv2d { .. } | QLayer::Conv2dLeakyRelu { .. }))
    {
        ModelKind::Convolutional
    } else {
        ModelKind::FullyConnected
    };
    let quantized = Quantized {
        format_version: format::FORMAT_VERSION,
        kind: kind.name().to_string(),
        name: name.to_string(),
        float_test_mse: float_test_mse as f32,
        input: INPUT_QUANT.into(),
        code_after: code_after.unwrap_or(layers.len()),
        layers,
    };
    Ok(quantized)
}

/// `w` with its columns reordered from the float activation's layout to the int8 one (NHWC).
fn nhwc_columns(w: ArrayView2<f32>, layout: Layout) -> Array2<f32> {
    match layout {
        Layout::Flat(_) => w.to_owned(),
        Layout::Chw(c, h, wd) => Array2::from_shape_fn((w.nrows(), w.ncols()), |(o, j)| {
            // NHWC index j = (y·W + x)·C + ch holds NCHW element ch·H·W + y·W + x.
            let (pixel, ch) = (j / c, j % c);
            w[[o, ch * h * wd + pixel]]
        }),
    }
}

/// The negative-side requantization of a fused LeakyReLU: each channel's effective scale
/// against the output scale divided by the slope ([`fused_negative_scale`]), which is what TFLM
/// derives for the second of the two ops the layer converts to.
fn negative_side(
    params: &QWeights,
    input: Quant,
    output: Quant,
    slope: f32,
    layer: usize,
) -> Result<(Vec<i32>, Vec<i32>), QuantizeError> {
    params
        .weight_scales
        .iter()
        .map(|&scale| {
            let effective = effective_scale(input.scale, scale, fused_negative_scale(output.scale, slope));
            quantize_multiplier(effective).map_err(|source| QuantizeError::Arithmetic {
                layer,
                what: "negative-side multiplier",
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|pairs| pairs.into_iter().unzip())
}

/// Symmetric per-channel int8 weights, int32 biases and requantization for rows of `w`.
fn quantize_weights(
    w: &Array2<f32>,
    b: &[f32],
    input: Quant,
    output: Quant,
    layer: usize,
) -> Result<QWeights, QuantizeError> {
    let mut q = QWeights {
        weights: Vec::with_capacity(w.len()),
        weight_scales: Vec::new(),
        bias: Vec::new(),
        multipliers: Vec::new(),
        shifts: Vec::new(),
        output: output.into(),
    };
    for (row, &bias) in w.rows().into_iter().zip(b) {
        let max = row.iter().fold(0f32, |m, &x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.weights
            .extend(row.iter().map(|&x| (x / scale).round().clamp(-127.0, 127.0) as i8));
        q.weight_scales.push(scale);
        let bias_scale = f64::from(input.scale) * f64::from(scale);
        q.bias.push(
            (f64::from(bias) / bias_scale)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let effective = effective_scale(input.scale, scale, output.scale);
        let (m, s) = quantize_multiplier(effective).map_err(|source| QuantizeError::Arithmetic {
            layer,
            what: "requantization multiplier",
            source,
        })?;
        q.multipliers.push(m);
        q.shifts.push(s);
    }
    Ok(q)
}

impl Quantized {
    /// The model kind.
    pub fn model_kind(&self) -> ModelKind {
        if self
            .layers
            .iter()
            .any(|l| matches!(l, QLayer::Conv2d { .. } | QLayer::Conv2dLeakyRelu { .. }))
        {
            ModelKind::Convolutional
        } else {
            ModelKind::FullyConnected
        }
    }

    /// Width of the code.
    pub fn code_len(&self) -> usize {
        let mut len = PIXELS;
        for layer in &self.layers[..self.code_after] {
            len = match *layer {
                QLayer::FullyConnected { outputs, .. } | QLayer::FullyConnectedLeakyRelu { outputs, .. } => outputs,
                QLayer::Conv2d {
                    height,
                    width,
                    out_channels,
                    kernel,
                    ..
                }
                | QLayer::Conv2dLeakyRelu {
                    height,
                    width,
                    out_channels,
                    kernel,
                    ..
                } => (height + 1 - kernel) * (width + 1 - kernel) * out_channels,
                QLayer::MaxPool2d {
                    height,
                    width,
                    channels,
                } => (height / 2) * (width / 2) * channels,
                _ => len,
            };
        }
        len
    }

    /// The model file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, QuantizeError> {
        /// Byte images of one weighted layer's arrays, kept alive while the body borrows them.
        struct Bytes {
            weights: Vec<u8>,
            scales: Vec<u8>,
            bias: Vec<u8>,
            multipliers: Vec<u8>,
            shifts: Vec<u8>,
            table: Vec<u8>,
            negative_multipliers: Vec<u8>,
            negative_shifts: Vec<u8>,
        }
        let too_many = || QuantizeError::Unsupported(format!("more than {} layers", format::MAX_LAYERS));
        let narrow =
            |x: usize| u16::try_from(x).map_err(|_| QuantizeError::Unsupported(format!("size {x} exceeds 65535")));
        let bytes: Vec<Bytes> = self
            .layers
            .iter()
            .map(|layer| {
                let mut b = Bytes {
                    weights: vec![],
                    scales: vec![],
                    bias: vec![],
                    multipliers: vec![],
                    shifts: vec![],
                    table: vec![],
                    negative_multipliers: vec![],
                    negative_shifts: vec![],
                };
                if let QLayer::FullyConnectedLeakyRelu {
                    negative_multipliers,
                    negative_shifts,
                    ..
                }
                | QLayer::Conv2dLeakyRelu {
                    negative_multipliers,
                    negative_shifts,
                    ..
                } = layer
                {
                    b.negative_multipliers = negative_multipliers.iter().flat_map(|x| x.to_le_bytes()).collect();
                    b.negative_shifts = negative_shifts.iter().map(|&s| s as i8 as u8).collect();
                }
                match layer {
                    QLayer::FullyConnected { params: p, .. }
                    | QLayer::Conv2d { params: p, .. }
                    | QLayer::FullyConnectedLeakyRelu { params: p, .. }
                    | QLayer::Conv2dLeakyRelu { params: p, .. } => {
                        b.weights = p.weights.iter().map(|&w| w as u8).collect();
                        b.scales = p.weight_scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                        b.bias = p.bias.iter().flat_map(|x| x.to_le_bytes()).collect();
                        b.multipliers = p.multipliers.iter().flat_map(|x| x.to_le_bytes()).collect();
                        b.shifts = p.shifts.iter().map(|&s| s as i8 as u8).collect();
                    }
                    QLayer::LeakyReluTable { table, .. } | QLayer::LogisticTable { table, .. } => {
                        b.table = table.iter().map(|&t| t as u8).collect();
                    }
                    QLayer::MaxPool2d { .. } | QLayer::TopK { .. } => {}
                }
                b
            })
            .collect();
        let mut layers = heapless::Vec::new();
        for (layer, b) in self.layers.iter().zip(&bytes) {
            let weights = |p: &QWeights| Weights {
                weights: &b.weights,
                weight_scales: &b.scales,
                bias: &b.bias,
                multipliers: &b.multipliers,
                shifts: &b.shifts,
                output: p.output.into(),
            };
            let l = match *layer {
                QLayer::FullyConnected {
                    inputs,
                    outputs,
                    ref params,
                } => format::Layer::FullyConnected {
                    inputs: inputs as u32,
                    outputs: outputs as u32,
                    params: weights(params),
                },
                QLayer::Conv2d {
                    height,
                    width,
                    in_channels,
                    out_channels,
                    kernel,
                    ref params,
                } => format::Layer::Conv2d {
                    height: narrow(height)?,
                    width: narrow(width)?,
                    in_channels: narrow(in_channels)?,
                    out_channels: narrow(out_channels)?,
                    kernel: narrow(kernel)?,
                    params: weights(params),
                },
                QLayer::MaxPool2d {
                    height,
                    width,
                    channels,
                } => format::Layer::MaxPool2d {
                    height: narrow(height)?,
                    width: narrow(width)?,
                    channels: narrow(channels)?,
                },
                QLayer::LeakyReluTable { slope, output, .. } => format::Layer::Table {
                    activation: Activation::LeakyRelu { slope },
                    table: &b.table,
                    output: output.into(),
                },
                QLayer::LogisticTable { output, .. } => format::Layer::Table {
                    activation: Activation::Logistic,
                    table: &b.table,
                    output: output.into(),
                },
                QLayer::TopK { k } => format::Layer::TopK { k: k as u32 },
                QLayer::FullyConnectedLeakyRelu {
                    inputs,
                    outputs,
                    slope,
                    ref params,
                    ..
                } => format::Layer::FullyConnectedLeakyRelu {
                    inputs: inputs as u32,
                    outputs: outputs as u32,
                    slope,
                    params: weights(params),
                    negative_multipliers: &b.negative_multipliers,
                    negative_shifts: &b.negative_shifts,
                },
                QLayer::Conv2dLeakyRelu {
                    height,
                    width,
                    in_channels,
                    out_channels,
                    kernel,
                    slope,
                    ref params,
                    ..
                } => format::Layer::Conv2dLeakyRelu {
                    height: narrow(height)?,
                    width: narrow(width)?,
                    in_channels: narrow(in_channels)?,
                    out_channels: narrow(out_channels)?,
                    kernel: narrow(kernel)?,
                    slope,
                    params: weights(params),
                    negative_multipliers: &b.negative_multipliers,
                    negative_shifts: &b.negative_shifts,
                },
            };
            layers.push(l).map_err(|_| too_many())?;
        }
        let body = ModelBody {
            name: &self.name,
            float_test_mse: self.float_test_mse,
            input: self.input.into(),
            code_after: narrow(self.code_after)?,
            layers,
        };
        let mut out = vec![0u8; format::encoded_len_bound(&body)];
        let len = format::write(self.model_kind(), &body, &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// The owned form of a loaded model file.
    pub fn from_core(model: &CoreModel<'_>) -> Quantized {
        let words = |b: &[u8]| -> Vec<i32> {
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let weights = |p: &Weights<'_>| QWeights {
            weights: p.weights.iter().map(|&w| w as i8).collect(),
            weight_scales: p
                .weight_scales
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            bias: words(p.bias),
            multipliers: words(p.multipliers),
            shifts: p.shifts.iter().map(|&s| i32::from(s as i8)).collect(),
            output: p.output.into(),
        };
        let body = model.body();
        let layers = body
            .layers
            .iter()
            .map(|layer| match *layer {
                format::Layer::FullyConnected {
                    inputs,
                    outputs,
                    ref params,
                } => QLayer::FullyConnected {
                    inputs: inputs as usize,
                    outputs: outputs as usize,
                    params: weights(params),
                },
                format::Layer::Conv2d {
                    height,
                    width,
                    in_channels,
                    out_channels,
                    kernel,
                    ref params,
                } => QLayer::Conv2d {
                    height: height.into(),
                    width: width.into(),
                    in_channels: in_channels.into(),
                    out_channels: out_channels.into(),
                    kernel: kernel.into(),
                    params: weights(params),
                },
                format::Layer::MaxPool2d {
                    height,
                    width,
                    channels,
                } => QLayer::MaxPool2d {
                    height: height.into(),
                    width: width.into(),
                    channels: channels.into(),
                },
                format::Layer::Table {
                    activation,
                    table,
                    output,
                } => {
                    let table = table.iter().map(|&t| t as i8).collect();
                    match activation {
                        Activation::LeakyRelu { slope } => QLayer::LeakyReluTable {
                            slope,
                            table,
                            output: output.into(),
                        },
                        Activation::Logistic => QLayer::LogisticTable {
                            table,
                            output: output.into(),
                        },
                    }
                }
                format::Layer::TopK { k } => QLayer::TopK { k: k as usize },
                format::Layer::FullyConnectedLeakyRelu {
                    inputs,
                    outputs,
                    slope,
                    ref params,
                    negative_multipliers,
                    negative_shifts,
                } => QLayer::FullyConnectedLeakyRelu {
                    inputs: inputs as usize,
                    outputs: outputs as usize,
                    slope,
                    params: weights(params),
                    negative_multipliers: words(negative_multipliers),
                    negative_shifts: negative_shifts.iter().map(|&s| i32::from(s as i8)).collect(),
                },
                format::Layer::Conv2dLeakyRelu {
                    height,
                    width,
                    in_channels,
                    out_channels,
                    kernel,
                    slope,
                    ref params,
                    negative_multipliers,
                    negative_shifts,
                } => QLayer::Conv2dLeakyRelu {
                    height: height.into(),
                    width: width.into(),
                    in_channels: in_channels.into(),
                    out_channels: out_channels.into(),
                    kernel: kernel.into(),
                    slope,
                    params: weights(params),
                    negative_multipliers: words(negative_multipliers),
                    negative_shifts: negative_shifts.iter().map(|&s| i32::from(s as i8)).collect(),
                },
            })
            .collect();
        Quantized {
            format_version: format::FORMAT_VERSION,
            kind: model.kind().name().to_string(),
            name: body.name.to_string(),
            float_test_mse: body.float_test_mse,
            input: body.input.into(),
            code_after: body.code_after.into(),
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let q = build(&model, "t", &quants, &fuse, 0.01).unwrap();
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
                runner.encode_into(img, &mut code).unwrap();
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
