//! Anomaly scores of many samples: the int8 model's, computed by the core exactly as the device
//! computes them, and the float model's, the per-sample MSE in f32.
//!
//! Shapes: `n` samples of `N` values.

use crate::infer::{per_sample, InferError};
use crate::model::Model as FloatModel;
use crate::workspace::{InputValue, Workspace};
use autoencoder_core::Model;

/// Rows the float model runs at a time.
const BATCH: usize = 500;

/// The int8 anomaly score of every sample: `samples (n, N) -> scores (n)`, each
/// [`Runner::anomaly_score_f32`](autoencoder_core::Runner::anomaly_score_f32) of the raw
/// sample (scaled and quantized by the core with the model's own input scaling), on `threads`
/// threads. The scores do not depend on the thread count.
///
/// # Errors
/// [`InferError::Run`] for the first sample the core refuses (a NaN, named by position).
pub fn int8_scores(model: &Model<'_>, samples: &crate::data::Samples, threads: usize) -> Result<Vec<u32>, InferError> {
    per_sample(model, samples, 1, threads, |runner, x, score: &mut [u32]| {
        let s = runner.anomaly_score_f32(x)?;
        if let Some(out) = score.first_mut() {
            *out = s;
        }
        Ok(())
    })
}

/// The float model's anomaly score of every sample: the mean over its `N` values of the squared
/// difference between the sample and its reconstruction, `Σ (y[i] - x[i])² / N` summed in f64
/// and rounded once to f32, in the scaled input space the model was trained in. `rows` holds
/// `n` rows of `N` scaled values (or u8 pixels, scaled as the trainer scales them), evaluation
/// mode (no noise, lifetime top-k the identity).
pub fn float_scores<T: InputValue>(model: &FloatModel, rows: &[T]) -> Vec<f32> {
    let width = model.input;
    let mut ws = Workspace::new(model, BATCH);
    let mut scores = Vec::with_capacity(rows.len() / width.max(1));
    for chunk in rows.chunks(BATCH * width) {
        ws.load(chunk.chunks_exact(width));
        ws.forward(model, false);
        for (y, x) in ws.output().rows().into_iter().zip(ws.input().rows()) {
            let sse: f64 = y
                .iter()
                .zip(x)
                .map(|(&y, &x)| f64::from(y - x) * f64::from(y - x))
                .sum();
            scores.push((sse / width as f64) as f32);
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model as FloatModel;
    use rand::SeedableRng;

    #[test]
    fn the_float_score_is_the_per_sample_mse() {
        // 4-2-4 tied model: check against the mean of the squared errors the workspace gives.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let model = FloatModel::fc_tied(4, 2, &mut rng);
        let rows: Vec<f32> = (0..4 * 7).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let scores = float_scores(&model, &rows);
        assert_eq!(scores.len(), 7);
        let mut ws = Workspace::new(&model, 7);
        ws.load(rows.chunks_exact(4));
        ws.forward(&model, false);
        for (i, (y, x)) in ws.output().rows().into_iter().zip(ws.input().rows()).enumerate() {
            let want = y
                .iter()
                .zip(x)
                .map(|(a, b)| (a - b) as f64 * (a - b) as f64)
                .sum::<f64>()
                / 4.0;
            assert_eq!(scores[i], want as f32, "row {i}");
            assert!(scores[i] > 0.0);
        }
    }
}
