//! KL-divergence sparsity penalty on sigmoid codes:
//! `λ · mean_j [ρ log(ρ/ρ̂_j) + (1-ρ) log((1-ρ)/(1-ρ̂_j))]`, where `ρ̂_j` is the batch mean of
//! code `j` and `ρ` the target activation (0.05).
//!
//! `ρ̂` couples the rows of a batch: shards sum their columns ([`column_sums`]), the sums are
//! combined once, and each shard then adds the gradient to its own rows ([`backward`]).
//! `ρ̂` is clamped to [1e-6, 1 - 1e-6] so that a saturated unit gives a large, finite penalty.

pub use super::whole_batch::column_sums;
use super::whole_batch::CodePenalty;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

const CLAMP: f64 = 1e-6;

/// The KL penalty as the training step sees it: ρ̂ from the whole batch's column sums.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kl {
    /// λ.
    pub lambda: f64,
    /// Target mean activation ρ.
    pub rho: f64,
}

impl CodePenalty for Kl {
    fn needs_column_sums(&self) -> bool {
        true
    }

    /// The penalty of the batch, and ρ̂.
    fn batch_value(&self, sums: &[f64], rows: usize) -> (f64, Vec<f64>) {
        let q = rho_hat(sums, rows);
        (penalty(&q, self.rho, self.lambda), q)
    }

    /// `batch` is ρ̂; the whole penalty came from the column sums, so a shard adds nothing.
    fn backward(&self, batch: &[f64], _c: ArrayView2<f32>, dc: ArrayViewMut2<f32>, rows: usize) -> f64 {
        backward(dc, batch, self.rho, self.lambda, rows);
        0.0
    }
}

/// `ρ̂` from the column sums of a batch of `rows` rows, clamped.
pub fn rho_hat(sums: &[f64], rows: usize) -> Vec<f64> {
    sums.iter()
        .map(|s| (s / rows as f64).clamp(CLAMP, 1.0 - CLAMP))
        .collect()
}

/// The penalty `λ · mean_j KL(ρ ‖ ρ̂_j)`.
pub fn penalty(rho_hat: &[f64], rho: f64, lambda: f64) -> f64 {
    let kl: f64 = rho_hat
        .iter()
        .map(|&q| rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln())
        .sum();
    lambda * kl / rho_hat.len() as f64
}

/// Adds `∂penalty/∂c_ij = λ/K · (-ρ/ρ̂_j + (1-ρ)/(1-ρ̂_j)) / rows` to every row of `dc`, where
/// `rows` is the whole batch's row count.
// dc: (N, K) (added to)
pub fn backward(mut dc: ArrayViewMut2<f32>, rho_hat: &[f64], rho: f64, lambda: f64, rows: usize) {
    let k = rho_hat.len() as f64;
    let g: Vec<f32> = rho_hat
        .iter()
        .map(|&q| (lambda / k * (-rho / q + (1.0 - rho) / (1.0 - q)) / rows as f64) as f32)
        .collect();
    for mut row in dc.axis_iter_mut(Axis(0)) {
        for (d, &g) in row.iter_mut().zip(&g) {
            *d += g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};
    use ndarray::Array2;

    #[test]
    fn zero_when_every_unit_hits_the_target() {
        assert!(penalty(&[0.05, 0.05], 0.05, 0.1).abs() < 1e-15);
        // KL(0.05 ‖ 0.5) = 0.05 ln 0.1 + 0.95 ln 1.9, by hand 0.49463...
        let by_hand = 0.05 * (0.1f64).ln() + 0.95 * (1.9f64).ln();
        assert!((penalty(&[0.5], 0.05, 1.0) - by_hand).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Codes in (0.1, 0.9), as sigmoid outputs.
        let c = random(71, (6, 4), 0.4).mapv(|v| v + 0.5);
        let (rho, lambda) = (0.05, 0.1);
        let loss = |c: &Array2<f32>| {
            let mut sums = vec![0.0; 4];
            column_sums(c.view(), &mut sums);
            penalty(&rho_hat(&sums, 6), rho, lambda)
        };
        let mut sums = vec![0.0; 4];
        column_sums(c.view(), &mut sums);
        let mut dc = Array2::zeros(c.dim());
        backward(dc.view_mut(), &rho_hat(&sums, 6), rho, lambda, 6);
        check("kl dc", &c, &dc, loss);
    }
}
