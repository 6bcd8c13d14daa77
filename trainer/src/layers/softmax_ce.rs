//! Softmax cross-entropy over class logits, PyTorch's `nn.CrossEntropyLoss()` (mean over the
//! batch). A batch may be computed in shards: each passes the row count of the whole batch.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Returns this shard's sum of `-log softmax(z)[y]` and writes `dz = (softmax(z) - onehot(y)) /
/// total_rows`.
// z: (N, C), labels: (N) -> dz: (N, C)
pub fn forward_backward(z: ArrayView2<f32>, labels: &[u8], mut dz: ArrayViewMut2<f32>, total_rows: usize) -> f64 {
    assert_eq!(z.nrows(), labels.len(), "softmax_ce: one label per row");
    let scale = 1.0 / total_rows as f64;
    let mut loss = 0f64;
    for ((row, mut d), &y) in z.axis_iter(Axis(0)).zip(dz.axis_iter_mut(Axis(0))).zip(labels) {
        // Shift by the row's max so exp never overflows; work in f64 for the log-sum-exp.
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        let log_sum = sum.ln() + max;
        loss += log_sum - row[y as usize] as f64;
        for (c, (g, &v)) in d.iter_mut().zip(row.iter()).enumerate() {
            let p = (v as f64 - log_sum).exp();
            let target = if c == y as usize { 1.0 } else { 0.0 };
            *g = ((p - target) * scale) as f32;
        }
    }
    loss
}

/// The class with the largest logit (the lower index on a tie).
// z: (C) -> class
pub fn predict(z: ndarray::ArrayView1<f32>) -> u8 {
    let mut best = 0;
    for (c, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = c;
        }
    }
    best as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};
    use ndarray::{array, Array2};

    #[test]
    fn by_hand() {
        // Two equal logits: p = 1/2 each, loss ln 2, gradient (1/2 - 1, 1/2).
        let z = array![[0.0f32, 0.0]];
        let mut dz = Array2::zeros((1, 2));
        let loss = forward_backward(z.view(), &[0], dz.view_mut(), 1);
        assert!((loss - 2f64.ln()).abs() < 1e-12);
        assert_eq!(dz, array![[-0.5, 0.5]]);
        assert_eq!(predict(array![1.0f32, 3.0, 3.0].view()), 1);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let z = array![[1000.0f32, 0.0, -1000.0]];
        let mut dz = Array2::zeros((1, 3));
        let loss = forward_backward(z.view(), &[0], dz.view_mut(), 1);
        assert!(loss.abs() < 1e-12 && dz.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let z = random(81, (6, 10), 2.0);
        let labels = [3u8, 0, 9, 9, 5, 1];
        let loss = |z: &Array2<f32>| {
            let mut scratch = Array2::zeros(z.dim());
            forward_backward(z.view(), &labels, scratch.view_mut(), 6) / 6.0
        };
        let mut dz = Array2::zeros(z.dim());
        forward_backward(z.view(), &labels, dz.view_mut(), 6);
        check("softmax_ce dz", &z, &dz, loss);
    }
}
