//! Calibration: the range each activation reaches on training images, and the int8
//! quantization that covers it best.

use super::PIXEL_QUANT;
use crate::model::Model;
use crate::workspace::{InputValue, Workspace};
use autoencoder_core::model::Quant;
use ndarray::ArrayView2;

/// What calibration saw of one tensor: its extremes and an evenly strided sample of its values.
#[derive(Clone, Debug)]
pub(super) struct Range {
    pub(super) min: f32,
    pub(super) max: f32,
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
    pub(super) fn best_quant(&self, then: impl Fn(f32) -> f32) -> Quant {
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

/// Per-layer output ranges of `model` over `images` (rows of the model's input: u8 pixels, or
/// scaled f32 values), in evaluation mode.
pub(super) fn calibrate<T: InputValue>(model: &Model, images: &[T], batch: usize) -> Vec<Range> {
    let widths = model.widths().expect("a valid model");
    let width = model.input;
    let n = images.len() / width;
    let strides: Vec<usize> = widths.iter().map(|&w| (n * w).div_ceil(SAMPLE).max(1)).collect();
    let mut ranges = vec![Range::new(); model.layers.len()];
    let mut ws = Workspace::new(model, batch);
    for chunk in images.chunks(batch * width) {
        ws.load(chunk.chunks_exact(width));
        ws.forward(model, false);
        for (i, r) in ranges.iter_mut().enumerate() {
            r.update(ws.act(i), strides[i]);
        }
    }
    ranges
}

/// Test MSE of the float model on `images` (rows of u8 pixels or scaled f32 values), clean
/// input against itself (evaluation mode).
pub fn float_mse<T: InputValue>(model: &Model, images: &[T]) -> f64 {
    let width = model.input;
    let mut ws = Workspace::new(model, 500);
    let mut sse = 0.0;
    for chunk in images.chunks(500 * width) {
        ws.load(chunk.chunks_exact(width));
        ws.forward(model, false);
        sse += crate::layers::mse::sum_squared_error(ws.output(), ws.input());
    }
    sse / images.len() as f64
}
