//! Sigmoid: `y = 1 / (1 + e^-x)`; backward from the output, `dx = dy·y·(1 - y)`.
//!
//! `e^-x` is computed here, not by the C library's `expf` (one call per value, which took a
//! sixth of the time of the 784-wide logistic outputs' recipes): the usual range reduction
//! `e^z = 2^n · e^r` with `n` the integer nearest `z / ln 2` and `|r| ≤ ln 2 / 2`, then a
//! degree-6 polynomial for `e^r`, within 2 ulp of the true value. Plain multiplies and adds
//! (no fused ones) and a rounding by the 1.5·2²³ shift, so the compiler vectorises the loop at
//! every SIMD level and every level gives the same bits.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// `y = σ(x)`.
// x: (N, F) -> y: (N, F)
pub fn forward(x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
    if let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice_mut()) {
        crate::simd::vectorized(|| {
            for (y, &x) in ys.iter_mut().zip(xs) {
                *y = sigmoid(x);
            }
        });
        return;
    }
    Zip::from(y).and(x).for_each(|y, &x| *y = sigmoid(x));
}

/// `σ(x) = 1 / (1 + e^-x)` for one value; NaN stays NaN.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Past ±87, `e^z` is beyond what the sigmoid can tell from 0 or ∞ (`σ` is 1 or below 2e-38):
/// the argument is clamped there, which keeps `2^n` a normal float.
const LIMIT: f32 = 87.0;
/// 1.5·2²³: added to a float below 2²² in magnitude, it rounds it to the nearest integer,
/// which then sits in the sum's low mantissa bits.
const SHIFTER: f32 = 12_582_912.0;
/// ln 2 in two parts: the first has 9 significant bits, so `n · LN2_HI` is exact for |n| ≤ 2⁸.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
/// The polynomial's coefficients for `e^r − 1 − r` over `r²` on `|r| ≤ ln 2 / 2` (a minimax
/// fit: 1/720, 1/120, 1/24, 1/6 and 1/2, slightly moved; the last one rounds to 1/2).
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e^z` within 2 ulp for `|z| ≤ 87`; clamped beyond; NaN stays NaN (through the clamp and
/// every operation after).
#[inline(always)]
fn exp(z: f32) -> f32 {
    let z = z.clamp(-LIMIT, LIMIT);
    let shifted = z * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    // The integer n itself: the shifted sum's bits past SHIFTER's.
    let k = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let r = (z - n * LN2_HI) - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let e_r = p * (r * r) + r + 1.0;
    let two_n = f32::from_bits(((k + 127) as u32) << 23);
    e_r * two_n
}

/// `dx = dy·y·(1 - y)`.
// y: (N, F), dy: (N, F) -> dx: (N, F)
pub fn backward(y: ArrayView2<f32>, dy: ArrayView2<f32>, mut dx: ArrayViewMut2<f32>) {
    if let (Some(ys), Some(dys), Some(dxs)) = (y.as_slice(), dy.as_slice(), dx.as_slice_mut()) {
        crate::simd::vectorized(|| {
            for ((dx, &y), &dy) in dxs.iter_mut().zip(ys).zip(dys) {
                *dx = dy * y * (1.0 - y);
            }
        });
        return;
    }
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
    fn within_2_ulp_of_the_true_sigmoid() {
        // Every 97th float from -90 to 90, against the sigmoid in f64.
        let (lo, hi) = ((-90f32).to_bits(), 90f32.to_bits());
        let negatives = (0..=lo - 0x8000_0000)
            .step_by(97)
            .map(|b| f32::from_bits(0x8000_0000 | b));
        let positives = (0..=hi).step_by(97).map(f32::from_bits);
        let mut worst = 0f64;
        for x in negatives.chain(positives) {
            let got = sigmoid(x) as f64;
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            if x < -LIMIT {
                // Where the clamp holds e^-x: σ is below 2e-38 either way.
                assert!(got < 2e-38 && want < 2e-38, "{x}: {got}");
                continue;
            }
            let ulp = f32::EPSILON as f64 * (want as f32).abs() as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst <= 2.0, "{worst} ulp");
    }

    #[test]
    fn edge_values_and_every_level_alike() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), sigmoid(-LIMIT));
        assert!(sigmoid(f32::NEG_INFINITY) < 2e-38);
        assert!(sigmoid(f32::NAN).is_nan());
        // The vectorised loop (at the CPU's level) and the scalar function give the same bits.
        let x = random(23, (7, 301), 30.0);
        let mut y = Array2::zeros(x.dim());
        forward(x.view(), y.view_mut());
        for (&xv, &yv) in x.iter().zip(&y) {
            assert_eq!(yv.to_bits(), sigmoid(xv).to_bits(), "{xv}");
        }
        // A strided view takes the other path to the same values.
        let xt = x.t().to_owned();
        let mut yt = Array2::zeros(xt.dim());
        forward(xt.t(), yt.view_mut().reversed_axes());
        assert_eq!(yt.t(), y);
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
