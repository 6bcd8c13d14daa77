//! The search that makes the int8 model: each activation's range refined, LeakyReLUs fused and
//! cross-layer equalization tried, every candidate scored by the core running it.

use super::calibrate::{calibrate, quant_for_range};
use super::lower::build;
use super::{InputSpec, QuantizeError, Quantized, RawValue, LOGISTIC_QUANT, PIXEL_QUANT};
use crate::model::{Layer, Model};
use crate::workspace::{InputValue, Workspace};
use autoencoder_core::model::Quant;
use autoencoder_core::Model as CoreModel;
use rayon::prelude::*;

/// The least relative gain in reconstruction MSE for which [`quantize`] fuses a LeakyReLU into
/// the fully connected layer before it.
pub const FUSE_GAIN: f64 = 0.05;

/// Training images on which [`quantize`] compares candidate activation ranges.
pub const REFINE_IMAGES: usize = 256;

/// Scale factors tried for each end of an activation range: 1 down to 1/64 in half octaves.
fn factors() -> impl Iterator<Item = f32> {
    (0..=12).map(|k| 0.5f32.powf(k as f32 / 2.0))
}

/// Quantizes `model`, whose input `input` describes (MNIST's: [`super::mnist_input`]),
/// calibrating activations on `calibration` (raw samples, rows of the model's input: u8 pixels or
/// f32 values, scaled by `input`'s scaling), scoring candidates on `threads` threads (the model
/// is the same for any count).
///
/// Each activation's range starts as the one with the least round-trip error over its own
/// calibration values (seen through the activation that follows it); then, tensor by tensor
/// from input to output, each end of the range is shrunk by factors from 1 down to 1/64 in half octaves and a
/// change is kept when it lowers the int8 model's reconstruction MSE on the first
/// [`REFINE_IMAGES`] calibration images (run by the core itself). Error amplified by later
/// layers (large decoder weights behind small codes) is thus seen and paid for. Fusing a
/// LeakyReLU into the layer before it, and cross-layer equalization, are kept where they lower
/// that error.
pub fn quantize<T: RawValue>(
    model: &Model,
    name: &str,
    input: &InputSpec,
    calibration: &[T],
    float_test_mse: f64,
    threads: usize,
) -> Result<Quantized, QuantizeError> {
    quantize_with(model, name, input, calibration, REFINE_IMAGES, float_test_mse, threads)
}

/// [`quantize`] comparing candidate ranges on the first `refine_images` calibration images
/// (0: keep each tensor's own best range, with neither fusion nor equalization).
pub fn quantize_with<T: RawValue>(
    model: &Model,
    name: &str,
    input: &InputSpec,
    calibration: &[T],
    refine_images: usize,
    float_test_mse: f64,
    threads: usize,
) -> Result<Quantized, QuantizeError> {
    if model.input != input.len() {
        return Err(QuantizeError::Unsupported(format!(
            "the model's input is {} wide, its input shape {:?} holds {}",
            model.input,
            input.shape,
            input.len()
        )));
    }
    let scaled = input.scaled(calibration);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| QuantizeError::Unsupported(format!("starting {threads} threads: {e}")))?;
    let search = Search {
        name,
        input,
        scaled: &scaled,
        refine: &calibration[..calibration.len().min(refine_images * input.len())],
        float_test_mse,
        pool: &pool,
    };
    let (plain, plain_mse) = search.as_is(model)?;
    if refine_images == 0 {
        return Ok(plain);
    }
    if let Some(eq) = equalized(model, &scaled, EQUALIZATION_BALANCE) {
        let (q, mse) = search.as_is(&eq)?;
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
pub fn equalized<T: InputValue>(model: &Model, calibration: &[T], balance: f32) -> Option<Model> {
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
    let n = (calibration.len() / m.input).min(1000);
    let mut ws = Workspace::new(&m, n.max(1));
    ws.load(calibration[..n * m.input].chunks_exact(m.input));
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

/// What [`quantize_with`] searches with, for one model or its equalized twin.
struct Search<'a, T> {
    name: &'a str,
    input: &'a InputSpec,
    /// The calibration samples, scaled: where each tensor's starting range comes from.
    scaled: &'a [f32],
    /// The raw samples every candidate is scored on (none: no refinement).
    refine: &'a [T],
    float_test_mse: f64,
    pool: &'a rayon::ThreadPool,
}

impl<T: RawValue> Search<'_, T> {
    /// The int8 model of `model` with `quants` and `fuse`, and its reconstruction MSE on the
    /// refinement samples, as the core computes it.
    fn score(&self, model: &Model, quants: &[Quant], fuse: &[bool]) -> Result<f64, QuantizeError> {
        let bytes = build(model, self.name, self.input, quants, fuse, self.float_test_mse)?.to_bytes()?;
        let core = CoreModel::from_bytes(&bytes)?;
        Ok(int8_mse(&core, self.input, self.refine, 1))
    }

    /// [`Search::score`] of each candidate, on the pool's threads, in the candidates' order.
    /// Each score depends on its candidate alone, so the search that reads them in order
    /// decides as if it had scored them one after another.
    fn scores(&self, model: &Model, candidates: &[Vec<Quant>], fuse: &[bool]) -> Result<Vec<f64>, QuantizeError> {
        self.pool.install(|| {
            candidates
                .par_iter()
                .map(|quants| self.score(model, quants, fuse))
                .collect()
        })
    }

    /// [`quantize_with`] without equalization; also returns the reconstruction MSE on the
    /// refinement images.
    fn as_is(&self, model: &Model) -> Result<(Quantized, f64), QuantizeError> {
        let (input, refine) = (self.input, self.refine);
        let ranges = calibrate(model, self.scaled, 500);
        // The top of the reconstruction's range: a pixel's 1 for MNIST.
        let top = if input.output == PIXEL_QUANT {
            1.0
        } else {
            input.output.scale * (127 - input.output.zero_point) as f32
        };
        let last = model.layers.len() - 1;
        let mut quants = Vec::with_capacity(model.layers.len());
        let mut tunable = Vec::with_capacity(model.layers.len());
        for (i, r) in ranges.iter().enumerate() {
            let next_is_final_leaky = i + 1 == last && matches!(model.layers[last], Layer::LeakyRelu { .. });
            let (quant, tune) = if i == last {
                (input.output, false)
            } else if next_is_final_leaky {
                (quant_for_range(0.0, r.max.min(top)), false)
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
        let mut fuse = vec![false; quants.len()];
        let mut best = if refine.is_empty() {
            0.0
        } else {
            self.score(model, &quants, &fuse)?
        };
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
            let mse = self.score(model, &quants, &trial)?;
            if mse < best * (1.0 - FUSE_GAIN) {
                (best, fuse) = (mse, trial);
                tunable[i] = false;
            }
        }
        for i in (0..quants.len()).filter(|&i| tunable[i] && !refine.is_empty()) {
            let r = &ranges[i];
            let (mut a, mut b) = (1.0f32, 1.0f32);
            for end in 0..2 {
                // One end's candidates differ from `quants` at `i` alone, whichever of them is
                // kept: they are scored together, then taken in order.
                let ends: Vec<(f32, f32)> = factors().map(|f| if end == 0 { (f, b) } else { (a, f) }).collect();
                let trials: Vec<Vec<Quant>> = ends
                    .iter()
                    .map(|&(ta, tb)| {
                        let mut trial = quants.clone();
                        trial[i] = quant_for_range(ta * r.min, tb * r.max);
                        trial
                    })
                    .collect();
                let mses = self.scores(model, &trials, &fuse)?;
                for ((trial, (ta, tb)), mse) in trials.into_iter().zip(ends).zip(mses) {
                    if mse < best {
                        (best, quants, a, b) = (mse, trial, ta, tb);
                    }
                }
            }
        }
        Ok((
            build(model, self.name, input, &quants, &fuse, self.float_test_mse)?,
            best,
        ))
    }
}

/// Reconstruction MSE of an int8 model run by the core on `images` (raw samples, rows of the
/// model's input length: quantized by the core as on the device, clean in), in scaled units: each
/// output code read back through the output's quantization, against the sample scaled in f64
/// ([`InputSpec::scale_f64`] of `input`, the model's input). The images run on `threads`
/// threads; the squared errors are summed in the images' order, so the figure is the same for
/// any count.
pub fn int8_mse<T: RawValue>(model: &CoreModel<'_>, input: &InputSpec, images: &[T], threads: usize) -> f64 {
    let out = model.output_quant();
    let n = model.input_len();
    let count = images.len() / n.max(1);
    let mut outputs = vec![0i8; count * n];
    let per_thread = count.div_ceil(threads.max(1)).max(1);
    let reconstruct = |rows: &[T], outputs: &mut [i8]| {
        let mut scratch = vec![0i8; model.scratch_len()];
        let mut runner =
            autoencoder_core::Runner::new(model.clone(), &mut scratch).expect("scratch sized by the model");
        let mut codes = vec![0i8; n];
        for (row, output) in rows.chunks_exact(n).zip(outputs.chunks_exact_mut(n)) {
            T::quantize(row, model, &mut codes).expect("finite samples of the model's width");
            runner.reconstruct_into(&codes, output).expect("a loaded model runs");
        }
    };
    if threads <= 1 || count <= 1 {
        reconstruct(images, &mut outputs);
    } else {
        std::thread::scope(|s| {
            for (rows, outputs) in images.chunks(per_thread * n).zip(outputs.chunks_mut(per_thread * n)) {
                s.spawn(move || reconstruct(rows, outputs));
            }
        });
    }
    let mut sse = 0.0f64;
    for (row, output) in images.chunks_exact(n).zip(outputs.chunks_exact(n)) {
        for (i, (&q, &x)) in output.iter().zip(row).enumerate() {
            let y = f64::from(out.scale) * f64::from(i32::from(q) - out.zero_point);
            let t = input.scale_f64(i, x.to_f32());
            sse += (y - t) * (y - t);
        }
    }
    sse / images.len().max(1) as f64
}
