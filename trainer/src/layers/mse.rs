//! Mean squared error over every element of a batch, PyTorch's `nn.MSELoss()`.
//!
//! A batch may be computed in shards: each shard passes the element count of the *whole*
//! batch, so the shards' gradients sum to the batch's.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};

/// Returns the sum of squared errors of this shard and writes `dy = 2·(y - t) / total`, where
/// `total` is the element count of the whole batch (the loss is `Σ (y - t)² / total`).
// y: (N, D), t: (N, D) -> dy: (N, D)
pub fn forward_backward(y: ArrayView2<f32>, t: ArrayView2<f32>, mut dy: ArrayViewMut2<f32>, total: usize) -> f64 {
    let g = 2.0 / total as f32;
    let mut sse = 0f64;
    for ((y, t), mut dy) in y
        .axis_iter(Axis(0))
        .zip(t.axis_iter(Axis(0)))
        .zip(dy.axis_iter_mut(Axis(0)))
    {
        let row = match (y.as_slice(), t.as_slice(), dy.as_slice_mut()) {
            // Contiguous rows (as in training): vectorised at the CPU's SIMD level.
            (Some(y), Some(t), Some(dy)) => row_at_simd_level(y, t, dy, g),
            _ => {
                let mut row = 0f32;
                Zip::from(dy).and(y).and(t).for_each(|dy, &y, &t| {
                    let e = y - t;
                    row += e * e;
                    *dy = g * e;
                });
                row
            }
        };
        sse += row as f64;
    }
    sse
}

/// One row: `dy = g·(y − t)`, and the row's squared error summed in [`PARTIAL`] interleaved
/// partial sums (element `i` into sum `i mod PARTIAL`), added in order at the end: the same bits
/// at every SIMD level, and no chain of dependent additions through the row.
#[inline(always)]
fn row_forward_backward(y: &[f32], t: &[f32], dy: &mut [f32], g: f32) -> f32 {
    let mut partial = [0f32; PARTIAL];
    let n = y.len().min(t.len()).min(dy.len());
    let (y, t, dy) = (&y[..n], &t[..n], &mut dy[..n]);
    let (y_chunks, t_chunks) = (y.chunks_exact(PARTIAL), t.chunks_exact(PARTIAL));
    let (y_tail, t_tail) = (y_chunks.remainder(), t_chunks.remainder());
    let mut dy_chunks = dy.chunks_exact_mut(PARTIAL);
    for ((y, t), dy) in y_chunks.zip(t_chunks).zip(&mut dy_chunks) {
        for k in 0..PARTIAL {
            let e = y[k] - t[k];
            partial[k] += e * e;
            dy[k] = g * e;
        }
    }
    for (k, ((&y, &t), dy)) in y_tail.iter().zip(t_tail).zip(dy_chunks.into_remainder()).enumerate() {
        let e = y - t;
        partial[k] += e * e;
        *dy = g * e;
    }
    partial.iter().sum()
}

/// [`row_forward_backward`], compiled for AVX2 where the CPU runs it ([`crate::simd::active`]).
fn row_at_simd_level(y: &[f32], t: &[f32], dy: &mut [f32], g: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::active() >= crate::simd::Level::Avx2 {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(y: &[f32], t: &[f32], dy: &mut [f32], g: f32) -> f32 {
            row_forward_backward(y, t, dy, g)
        }
        // SAFETY: the CPU has AVX2 and FMA (the active level is at least AVX2).
        return unsafe { avx2(y, t, dy, g) };
    }
    row_forward_backward(y, t, dy, g)
}

/// Partial sums of a row's squared error.
const PARTIAL: usize = 16;

/// Sum of squared errors, without gradient (evaluation).
// y: (N, D), t: (N, D) -> scalar
pub fn sum_squared_error(y: ArrayView2<f32>, t: ArrayView2<f32>) -> f64 {
    y.axis_iter(Axis(0))
        .zip(t.axis_iter(Axis(0)))
        .map(|(y, t)| y.iter().zip(t.iter()).map(|(&a, &b)| (a - b) * (a - b)).sum::<f32>() as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};
    use ndarray::Array2;

    #[test]
    fn loss_by_hand() {
        let y = Array2::from_shape_vec((1, 2), vec![1.0, 0.5]).unwrap();
        let t = Array2::from_shape_vec((1, 2), vec![0.0, 0.0]).unwrap();
        let mut dy = Array2::zeros((1, 2));
        let sse = forward_backward(y.view(), t.view(), dy.view_mut(), 2);
        assert_eq!(sse, 1.25);
        assert_eq!(dy.as_slice().unwrap(), &[1.0, 0.5]);
        assert_eq!(sum_squared_error(y.view(), t.view()), 1.25);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let y = random(31, (4, 6), 1.0);
        let t = random(32, (4, 6), 1.0);
        let total = y.len();
        let loss = |y: &Array2<f32>| {
            let mut scratch = Array2::zeros(y.dim());
            forward_backward(y.view(), t.view(), scratch.view_mut(), total) / total as f64
        };
        let mut dy = Array2::zeros(y.dim());
        forward_backward(y.view(), t.view(), dy.view_mut(), total);
        check("mse dy", &y, &dy, loss);
    }

    #[test]
    fn shards_sum_to_the_whole_batch() {
        let y = random(33, (6, 5), 1.0);
        let t = random(34, (6, 5), 1.0);
        let mut whole = Array2::zeros(y.dim());
        let sse = forward_backward(y.view(), t.view(), whole.view_mut(), y.len());
        let mut parts = Array2::zeros(y.dim());
        let (a, b) = parts.view_mut().split_at(Axis(0), 4);
        let s1 = forward_backward(y.slice(ndarray::s![..4, ..]), t.slice(ndarray::s![..4, ..]), a, y.len());
        let s2 = forward_backward(y.slice(ndarray::s![4.., ..]), t.slice(ndarray::s![4.., ..]), b, y.len());
        assert!((s1 + s2 - sse).abs() < 1e-9);
        assert_eq!(whole, parts);
    }
}
