//! Sigmoid: `y = 1 / (1 + e^-x)`; backward from the output, `dx = dy·y·(1 - y)`.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// `y = σ(x)`.
// x: (N, F) -> y: (N, F)
pub fn forward(x: ArrayView2<f32>, y: ArrayViewMut2<f32>) {
    Zip::from(y).and(x).for_each(|y, &x| *y = 1.0 / (1.0 + (-x).exp()));
}

/// `dx = dy·y·(1 - y)`.
// y: (N, F), dy: (N, F) -> dx: (N, F)
pub fn backward(y: ArrayView2<f32>, dy: ArrayView2<f32>, dx: ArrayViewMut2<f32>) {
    Zip::from(dx)
        .and(y)
        .and(dy)
        .for_each(|dx, &y, &dy| *dx = dy * y * (1.0 - y));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::Array2;

    #[test]
    fn forward_by_hand() {
        let x = Array2::from_shape_vec((1, 3), vec![0.0, 30.0, -30.0]).unwrap();
        let mut y = Array2::zeros((1, 3));
        forward(x.view(), y.view_mut());
        assert_eq!(y[[0, 0]], 0.5);
        assert!(y[[0, 1]] > 0.999_999 && y[[0, 2]] < 1e-12);
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
