//! Evaluation: the test images through the model, their MSE, code sparsity and the samples the
//! figures draw.

use super::Trainer;
use crate::workspace::Workspace;
use ndarray::{s, Array2, Axis};
use rayon::prelude::*;

/// Seed of the noise that corrupts the test images of denoising variants: the same for every
/// evaluation, run and seed, so figures and metrics are comparable.
pub const EVAL_NOISE_SEED: u64 = 0x7e57_0015e;
/// Rows of the codes figure.
pub const CODE_ROWS: usize = 512;
/// Test images in the examples figure.
pub const EXAMPLES: usize = 10;

/// The model on the test set.
pub struct TestReport {
    /// Mean squared error per element against the clean images.
    pub test_mse: f64,
    /// Fraction of codes that are zero (exactly; below 0.01 for sigmoid codes).
    pub zero_code_fraction: f64,
    /// Fraction of codes with magnitude below 0.01.
    pub near_zero_code_fraction: f64,
    /// Codes of the first [`CODE_ROWS`] test images.
    pub codes: Array2<f32>,
    /// The first [`EXAMPLES`] inputs as the network sees them.
    pub input: Array2<f32>,
    /// Their reconstructions.
    pub output: Array2<f32>,
    /// The clean images.
    pub target: Array2<f32>,
    /// Every test image's code when codes are 2-D (the latent map).
    pub map: Option<Array2<f32>>,
}

impl Trainer {
    /// Runs the test images through the model (lifetime sparsity off; denoising inputs
    /// corrupted with the fixed evaluation noise), calling `visit(first_index, workspace)` for
    /// every shard in order. Returns the mean squared error per element against the clean images.
    fn test_pass(&mut self, mut visit: impl FnMut(usize, &Workspace)) -> f64 {
        let n = self.test.len();
        let shard = self.workers[0].capacity();
        let chunk = shard * self.workers.len();
        let model = &self.state.model;
        let test = &self.test;
        let noise = self.state.config.noise;
        // A greedy stage's frozen bottom layers gave every test sample the same rows at every
        // epoch: start above them (a step decided it; before the phase's first step, run all).
        let frozen = self.frozen_test.as_ref();
        let mut sse = 0.0;
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let parts: Vec<f64> = self.pool.install(|| {
                self.workers
                    .par_iter_mut()
                    .enumerate()
                    .map(|(k, w)| {
                        let lo = (start + k * shard).min(end);
                        let hi = (lo + shard).min(end);
                        let idx: Vec<u32> = (lo as u32..hi as u32).collect();
                        Self::load(w, test, &idx, noise.as_ref().map(|n| (n, EVAL_NOISE_SEED, lo as u64)));
                        if hi == lo {
                            return 0.0;
                        }
                        match frozen {
                            Some(f) => {
                                w.set_act(f.layers - 1, (lo..hi).map(|i| f.row(i)));
                                w.forward_range(model, f.layers..model.layers.len(), false);
                            }
                            None => w.forward(model, false),
                        }
                        crate::layers::mse::sum_squared_error(w.output(), w.target())
                    })
                    .collect()
            });
            sse += parts.iter().sum::<f64>();
            for (k, w) in self.workers.iter().enumerate() {
                if w.rows > 0 {
                    visit(start + k * shard, w);
                }
            }
        }
        sse / (n * self.test.features()) as f64
    }

    /// Mean squared reconstruction error per element over the test images.
    pub fn evaluate(&mut self) -> f64 {
        self.test_pass(|_, _| {})
    }

    /// The test-set figures of the current model: MSE, code sparsity, and samples for figures.
    pub fn test_report(&mut self) -> TestReport {
        let code_layer = self.state.model.code_after - 1;
        let units = self.state.model.code_width();
        let zero_below = if self.state.model.sigmoid_codes() { 0.01 } else { 0.0 };
        let (mut zeros, mut near, mut total) = (0usize, 0usize, 0usize);
        let mut codes = Array2::zeros((0, units));
        let mut map = (units == 2).then(|| Array2::zeros((0, 2)));
        let width = self.test.features();
        let mut examples = [
            Array2::zeros((0, width)),
            Array2::zeros((0, width)),
            Array2::zeros((0, width)),
        ];
        let test_mse = self.test_pass(|first, w| {
            let c = w.act(code_layer);
            zeros += c.iter().filter(|&&v| v.abs() <= zero_below).count();
            near += c.iter().filter(|&&v| v.abs() < 0.01).count();
            total += c.len();
            if let Some(map) = &mut map {
                map.append(Axis(0), c).expect("same width");
            }
            let want = CODE_ROWS.saturating_sub(codes.nrows()).min(c.nrows());
            if want > 0 {
                codes.append(Axis(0), c.slice(s![..want, ..])).expect("same width");
            }
            let want = EXAMPLES.saturating_sub(examples[0].nrows()).min(w.rows);
            if want > 0 && first < EXAMPLES {
                for (dst, src) in examples.iter_mut().zip([w.input(), w.output(), w.target()]) {
                    dst.append(Axis(0), src.slice(s![..want, ..])).expect("same width");
                }
            }
        });
        let [input, output, target] = examples;
        TestReport {
            test_mse,
            zero_code_fraction: zeros as f64 / total as f64,
            near_zero_code_fraction: near as f64 / total as f64,
            codes,
            input,
            output,
            target,
            map,
        }
    }
}
