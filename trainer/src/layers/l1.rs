//! L1 sparsity penalty on the codes: `λ · mean(|c|)` over every code of the batch.
//!
//! A batch may be computed in shards: each passes the element count of the whole batch.

use super::whole_batch::CodePenalty;
use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// The L1 penalty as the training step sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct L1 {
    /// λ.
    pub lambda: f32,
}

impl CodePenalty for L1 {
    fn backward(&self, _batch: &[f64], c: ArrayView2<f32>, dc: ArrayViewMut2<f32>, rows: usize) -> f64 {
        let total = rows * c.ncols();
        forward_backward(c, dc, self.lambda, total)
    }
}

/// Adds `λ·sign(c) / total` to the code gradient and returns this shard's `λ·Σ|c| / total`.
/// `sign(0) = 0`, as PyTorch's `abs` backward.
// c: (N, K) -> dc: (N, K) (added to)
pub fn forward_backward(c: ArrayView2<f32>, dc: ArrayViewMut2<f32>, lambda: f32, total: usize) -> f64 {
    let g = lambda / total as f32;
    let mut sum = 0f64;
    Zip::from(dc).and(c).for_each(|dc, &c| {
        sum += c.abs() as f64;
        if c != 0.0 {
            *dc += g * c.signum();
        }
    });
    lambda as f64 * sum / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};
    use ndarray::{array, Array2};

    #[test]
    fn by_hand() {
        let c = array![[1.0, -2.0], [0.0, 1.0]];
        let mut dc = Array2::zeros((2, 2));
        let p = forward_backward(c.view(), dc.view_mut(), 0.5, 4);
        assert_eq!(p, 0.5 * 4.0 / 4.0);
        assert_eq!(dc, array![[0.125, -0.125], [0.0, 0.125]]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let c = random(61, (5, 7), 1.0).mapv(|v| if v.abs() < 0.05 { v + 0.1 } else { v });
        let loss = |c: &Array2<f32>| {
            let mut scratch = Array2::zeros(c.dim());
            forward_backward(c.view(), scratch.view_mut(), 0.3, c.len())
        };
        let mut dc = Array2::zeros(c.dim());
        forward_backward(c.view(), dc.view_mut(), 0.3, c.len());
        check("l1 dc", &c, &dc, loss);
    }
}
