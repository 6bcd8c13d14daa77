//! LeakyReLU: `y = x` for `x > 0`, else `slope·x` (the tutorial's slope is 0.01).
//!
//! With a positive slope `y` has the sign of `x`, so backward needs only the output.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// PyTorch's default negative slope, the tutorial's.
pub const SLOPE: f32 = 0.01;

/// `y = leaky(x)`.
// x: (N, F) -> y: (N, F)
pub fn forward(x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>, slope: f32) {
    // Both sides computed, then one chosen: a select the compiler vectorises.
    let leaky = move |x: f32| {
        let scaled = slope * x;
        if x > 0.0 {
            x
        } else {
            scaled
        }
    };
    if let (Some(x), Some(y)) = (x.as_slice(), y.as_slice_mut()) {
        // Contiguous (as in training): one loop, vectorised at the CPU's SIMD level.
        return crate::simd::vectorized(move || y.iter_mut().zip(x).for_each(|(y, &x)| *y = leaky(x)));
    }
    Zip::from(y).and(x).for_each(|y, &x| *y = leaky(x));
}

/// `dx = dy` where the output is positive, else `slope·dy` (PyTorch: slope at exactly 0).
// y: (N, F), dy: (N, F) -> dx: (N, F)
pub fn backward(y: ArrayView2<f32>, dy: ArrayView2<f32>, mut dx: ArrayViewMut2<f32>, slope: f32) {
    let grad = move |y: f32, dy: f32| {
        let scaled = slope * dy;
        if y > 0.0 {
            dy
        } else {
            scaled
        }
    };
    if let (Some(y), Some(dy), Some(dx)) = (y.as_slice(), dy.as_slice(), dx.as_slice_mut()) {
        // Contiguous (as in training): one loop, vectorised at the CPU's SIMD level.
        return crate::simd::vectorized(move || {
            dx.iter_mut()
                .zip(y.iter().zip(dy))
                .for_each(|(dx, (&y, &dy))| *dx = grad(y, dy))
        });
    }
    Zip::from(dx).and(y).and(dy).for_each(|dx, &y, &dy| *dx = grad(y, dy));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::Array2;

    #[test]
    fn forward_by_hand() {
        let x = Array2::from_shape_vec((1, 4), vec![-2.0, 0.0, 0.5, 3.0]).unwrap();
        let mut y = Array2::zeros((1, 4));
        forward(x.view(), y.view_mut(), SLOPE);
        assert_eq!(y.as_slice().unwrap(), &[-0.02, 0.0, 0.5, 3.0]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Keep inputs away from the kink at 0, where the derivative jumps.
        let x = random(11, (6, 9), 1.0).mapv(|v| if v.abs() < 0.05 { v + 0.1 } else { v });
        let r = random(12, (6, 9), 1.0);
        let loss = |x: &Array2<f32>| {
            let mut y = Array2::zeros(x.dim());
            forward(x.view(), y.view_mut(), SLOPE);
            dot(&y, &r)
        };
        let mut y = Array2::zeros(x.dim());
        forward(x.view(), y.view_mut(), SLOPE);
        let mut dx = Array2::zeros(x.dim());
        backward(y.view(), r.view(), dx.view_mut(), SLOPE);
        check("leaky_relu dx", &x, &dx, loss);
    }
}
