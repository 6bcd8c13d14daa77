//! Sigmoid: `y = 1 / (1 + e^-x)`; backward from the output, `dx = dy·y·(1 - y)`.
//!
//! `e^-x` is the C library's `expf`, one call per value, the rest vectorised. A vectorised
//! polynomial `exp` (within 2 ulp) took a sixth off the 784-wide logistic outputs' recipes, but
//! its other rounding sent `deep30`'s fine-tuning along another path whose plateau schedule
//! never lowered the rate (test MSE 0.004133 against 0.003408), so the results table keeps
//! `expf`. The backward pass is plain multiplies in the same order at every SIMD level,
//! vectorised by the compiler.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// `y = σ(x)`.
// x: (N, F) -> y: (N, F)
pub fn forward(x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
    if let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice_mut()) {
        // The calls first, then the rest vectorised: the same operations on every value.
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = (-x).exp();
        }
        crate::simd::vectorized(|| {
            for y in ys.iter_mut() {
                *y = from_exp(*y);
            }
        });
        return;
    }
    Zip::from(y).and(x).for_each(|y, &x| *y = from_exp((-x).exp()));
}

/// `σ` from `e^-x`, the same expression on both paths.
#[inline(always)]
fn from_exp(e: f32) -> f32 {
    1.0 / (1.0 + e)
}

/// `dx = dy·y·(1 - y)`.
// y: (N, F), dy: (N, F) -> dx: (N, F)
pub fn backward(y: ArrayView2<f32>, dy: ArrayView2<f32>, mut dx: ArrayViewMut2<f32>) {
    if let (Some(ys), Some(dys), Some(dxs)) = (y.as_slice(), dy.as_slice(), dx.as_slice_mut()) {
        crate::simd::vectorized(|| {
            for ((dx, &y), &dy) in dxs.iter_mut().zip(ys).zip(dys) {
                *dx = grad(y, dy);
            }
        });
        return;
    }
    Zip::from(dx).and(y).and(dy).for_each(|dx, &y, &dy| *dx = grad(y, dy));
}

/// One value of the backward pass, the same expression on both paths.
#[inline(always)]
fn grad(y: f32, dy: f32) -> f32 {
    dy * y * (1.0 - y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::Array2;

    #[test]
    fn both_forward_paths_give_the_same_bits() {
        let x = random(3, (37, 29), 20.0);
        let mut fast = Array2::zeros((37, 29));
        forward(x.view(), fast.view_mut());
        // A transposed view is not a standard slice: the per-value path.
        let mut plain = Array2::zeros((29, 37));
        forward(x.t(), plain.view_mut());
        assert_eq!(fast.t(), plain);
        for (&x, &y) in x.iter().zip(fast.iter()) {
            assert_eq!(y.to_bits(), (1.0 / (1.0 + (-x).exp())).to_bits());
        }
    }

    #[test]
    fn forward_by_hand() {
        let x = Array2::from_shape_vec((1, 3), vec![0.0, 30.0, -30.0]).unwrap();
        let mut y = Array2::zeros((1, 3));
        forward(x.view(), y.view_mut());
        assert_eq!(y[[0, 0]], 0.5);
        assert!(y[[0, 1]] > 0.999_999 && y[[0, 2]] < 1e-12);
    }

    #[test]
    fn backward_paths_give_the_same_bits() {
        // The vectorised loop over contiguous rows and the strided path, value by value.
        let y = random(23, (7, 301), 1.0).mapv(|v| v.abs());
        let dy = random(24, (7, 301), 1.0);
        let mut dx = Array2::zeros(y.dim());
        backward(y.view(), dy.view(), dx.view_mut());
        let (yt, dyt) = (y.t().to_owned(), dy.t().to_owned());
        let mut dxt = Array2::zeros(yt.dim());
        backward(yt.t(), dyt.t(), dxt.view_mut().reversed_axes());
        for ((&a, &b), (&yv, &g)) in dx.iter().zip(dxt.t()).zip(y.iter().zip(&dy)) {
            assert_eq!(a.to_bits(), b.to_bits());
            assert_eq!(a.to_bits(), (g * yv * (1.0 - yv)).to_bits());
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = random(21, (5, 8), 3.0);
        let r = random(22, (5, 8), 1.0);
        let loss = |x: &Array2<f32>| {
            let mut y = Array2::zeros(x.dim());
            forward(x.view(), y.view_mut());
            dot(&y, &r)
        };
        let mut y = Array2::zeros(x.dim());
        forward(x.view(), y.view_mut());
        let mut dx = Array2::zeros(x.dim());
        backward(y.view(), r.view(), dx.view_mut());
        check("sigmoid dx", &x, &dx, loss);
    }
}
