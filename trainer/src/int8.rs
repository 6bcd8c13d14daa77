//! The integer reference: a [`Quantized`] model run with the plainest possible loops, written
//! apart from the core's kernels and model runner so that each checks the other.
//!
//! Only [`multiply_by_quantized_multiplier`] is shared with the core (the requantization rule
//! is written once, and has its own hand-worked and TFLM golden tests). Everything else (the
//! input's scaling and quantization, with `std`'s rounding, the layouts, the accumulation in
//! i64, the table lookups, top-k by sorting, the chaining of layers and zero points) is
//! independent. The golden vectors shipped with each model come from here.

use crate::quantize::{QLayer, QWeights, Quantized};
use autoencoder_core::model::{InputScaling, WeightShape, Weighted};
use autoencoder_core::multiply_by_quantized_multiplier;
use serde::{Deserialize, Serialize};

/// The int8 code and output image of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// The encoder's output codes.
    pub code: Vec<i8>,
    /// The decoder's output codes (pixel byte = code + 128).
    pub output: Vec<i8>,
}

/// Runs `model` on one sample of u8 values (784 pixels for the MNIST models), scaled and
/// quantized by [`quantize_input`].
pub fn run(model: &Quantized, sample: &[u8]) -> Outputs {
    let x: Vec<f32> = sample.iter().map(|&p| f32::from(p)).collect();
    run_codes(model, quantize_input(model, &x))
}

/// Each raw value's input code, by the steps of `docs/int8-arithmetic.md` ("Float input and
/// output"), written apart from the core's: the model's scaling, `v / scale` in f32, `std`'s
/// `f32::round` (half away from zero), the zero point, the int8 clamp. A NaN has no code.
///
/// # Panics
/// When `x` is not the model's input length, or holds a NaN.
pub fn quantize_input(model: &Quantized, x: &[f32]) -> Vec<i8> {
    let n = model.input_len();
    assert_eq!(x.len(), n, "the model takes {n} values");
    x.iter()
        .enumerate()
        .map(|(i, &x)| {
            assert!(!x.is_nan(), "input value {i} is NaN");
            let v = match &model.input_scaling {
                InputScaling::None => x,
                InputScaling::Unit => x / 255.0,
                InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
                    (x - offset[i]) / divisor[i]
                }
            };
            // `as i32` saturates, as the core's conversion does; so does the sum.
            let q = (v / model.input.scale).round() as i32;
            q.saturating_add(model.input.zero_point).clamp(-128, 127) as i8
        })
        .collect()
}

/// Runs `model` on one input already quantized.
///
/// # Panics
/// When `x` is not the model's input length.
pub fn run_codes(model: &Quantized, mut x: Vec<i8>) -> Outputs {
    assert_eq!(
        x.len(),
        model.input_len(),
        "the model takes {} values",
        model.input_len()
    );
    let mut zero_point = model.input.zero_point;
    let mut code = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        if i == usize::from(model.code_after) {
            code = x.clone();
        }
        (x, zero_point) = step(layer, &x, zero_point);
    }
    Outputs { code, output: x }
}

fn requantize(acc: i64, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    // The accumulator wraps to i32 as it does in C++ on the device.
    let scaled = multiply_by_quantized_multiplier(acc as i32, multiplier, i32::from(shift));
    (i64::from(scaled) + i64::from(zero_point)).clamp(-128, 127) as i8
}

/// `bias[o] + sum_i w[o][i] * (x[i] - zp)` for every output, in i64.
fn accumulators(inputs: usize, outputs: usize, p: &QWeights, x: &[i8], zp: i32) -> Vec<i64> {
    (0..outputs)
        .map(|o| {
            let row = &p.weights[o * inputs..(o + 1) * inputs];
            row.iter().zip(x).fold(i64::from(p.bias[o]), |acc, (&w, &v)| {
                acc + i64::from(w) * (i64::from(v) - i64::from(zp))
            })
        })
        .collect()
}

/// A fully connected or convolution layer, fused LeakyReLU or not: every accumulator (NHWC
/// order for a convolution), requantized per output channel, a negative one through the fused
/// negative side when there is one.
fn weighted(w: &Weighted<'_, 'static, autoencoder_core::model::Owned>, x: &[i8], zp: i32) -> (Vec<i8>, i32) {
    let p = w.params;
    let acc = match w.shape {
        WeightShape::Dense { inputs, outputs } => accumulators(inputs, outputs, p, x, zp),
        WeightShape::Conv(g) => {
            conv_accumulators([g.height, g.width, g.in_channels, g.out_channels, g.kernel], p, x, zp)
        }
    };
    let channels = w.shape.channels();
    let y = acc
        .iter()
        .enumerate()
        .map(|(n, &a)| {
            let o = n % channels;
            match &w.fused {
                // The sign is the i32 accumulator's, as the device sees it.
                Some(f) if (a as i32) < 0 => {
                    requantize(a, f.negative_multipliers[o], f.negative_shifts[o], p.output.zero_point)
                }
                _ => requantize(a, p.multipliers[o], p.shifts[o], p.output.zero_point),
            }
        })
        .collect();
    (y, p.output.zero_point)
}

fn step(layer: &QLayer, x: &[i8], zp: i32) -> (Vec<i8>, i32) {
    if let Some(w) = layer.weighted() {
        return weighted(&w, x, zp);
    }
    match layer {
        QLayer::MaxPool2d {
            height,
            width,
            channels,
        } => {
            let (oh, ow, channels) = (
                usize::from(*height) / 2,
                usize::from(*width) / 2,
                usize::from(*channels),
            );
            let width = usize::from(*width);
            let mut y = vec![0i8; oh * ow * channels];
            for r in 0..oh {
                for s in 0..ow {
                    for c in 0..channels {
                        let at = |dr: usize, ds: usize| x[((2 * r + dr) * width + 2 * s + ds) * channels + c];
                        y[(r * ow + s) * channels + c] = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    }
                }
            }
            (y, zp)
        }
        QLayer::Table { table, output, .. } => {
            let y = x.iter().map(|&q| table[(i32::from(q) + 128) as usize]).collect();
            (y, output.zero_point)
        }
        QLayer::TopK { k } => {
            let mut order: Vec<usize> = (0..x.len()).collect();
            order.sort_by(|&a, &b| x[b].cmp(&x[a]).then(a.cmp(&b)));
            let mut y = vec![zp as i8; x.len()];
            for &i in order.iter().take(*k as usize) {
                y[i] = x[i];
            }
            (y, zp)
        }
        _ => unreachable!("weighted layers are handled above"),
    }
}

/// Every accumulator of a convolution `[height, width, in_channels, out_channels, kernel]`, in
/// NHWC output order, in i64.
fn conv_accumulators(shape: [usize; 5], params: &QWeights, x: &[i8], zp: i32) -> Vec<i64> {
    let [height, width, c_in, c_out, k] = shape;
    let (oh, ow) = (height + 1 - k, width + 1 - k);
    let mut y = vec![0i64; oh * ow * c_out];
    for r in 0..oh {
        for s in 0..ow {
            for o in 0..c_out {
                let mut acc = i64::from(params.bias[o]);
                for p in 0..k {
                    for q in 0..k {
                        for c in 0..c_in {
                            let w = params.weights[((o * k + p) * k + q) * c_in + c];
                            let v = x[((r + p) * width + s + q) * c_in + c];
                            acc += i64::from(w) * (i64::from(v) - i64::from(zp));
                        }
                    }
                }
                y[(r * ow + s) * c_out + o] = acc;
            }
        }
    }
    y
}

/// Golden vectors of one model: inputs and the int8 outputs the reference computes for them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Golden {
    /// File name of the model in the same directory.
    pub model: String,
    /// The cases.
    pub cases: Vec<GoldenCase>,
}

/// One golden input and its outputs, as lowercase hex bytes (codes as two's complement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenCase {
    /// Where the input comes from.
    pub source: String,
    /// The input sample's u8 values (784 pixels).
    pub input: String,
    /// The encoder's int8 codes.
    pub code: String,
    /// The denoised image's bytes (`code + 128`).
    pub denoise: String,
}

/// Lowercase hex of bytes.
pub fn hex(bytes: impl IntoIterator<Item = u8>) -> String {
    bytes.into_iter().map(|b| format!("{b:02x}")).collect()
}

/// Golden vectors for `model` (file name `file`): the first `test_images` samples of `test`
/// (u8 rows of the model's input length: MNIST test images), an all-black sample, an all-white
/// one, and two of uniform random bytes.
pub fn golden(model: &Quantized, file: &str, test: &[u8], test_images: usize) -> Golden {
    use rand::{Rng, SeedableRng};
    let n = model.input_len();
    let mut inputs: Vec<(String, Vec<u8>)> = test
        .chunks_exact(n)
        .take(test_images)
        .enumerate()
        .map(|(i, img)| (format!("test image {i}"), img.to_vec()))
        .collect();
    inputs.push(("all 0".into(), vec![0; n]));
    inputs.push(("all 255".into(), vec![255; n]));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x601d);
    for r in 0..2 {
        inputs.push((
            format!("uniform random {r}"),
            (0..n).map(|_| rng.random::<u8>()).collect(),
        ));
    }
    let cases = inputs
        .into_iter()
        .map(|(source, input)| {
            let out = run(model, &input);
            GoldenCase {
                source,
                input: hex(input.iter().copied()),
                code: hex(out.code.iter().map(|&c| c as u8)),
                denoise: hex(out.output.iter().map(|&c| (c as u8) ^ 0x80)),
            }
        })
        .collect();
    Golden {
        model: file.to_string(),
        cases,
    }
}
