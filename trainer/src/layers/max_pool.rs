//! 2x2 max-pooling with stride 2, as PyTorch's `nn.MaxPool2d(2, 2)`: a trailing odd row or
//! column is dropped.
//!
//! Rows are one sample each, `(C, H, W)` flattened in PyTorch's order, in and out. Forward keeps
//! the argmax of every window in a caller-owned index buffer; backward sends each output
//! gradient to that input and zero to every other. As in PyTorch, the first maximum in
//! row-major window order wins a tie, and a NaN wins over any number (the last NaN if several).

use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Shape of the pooling of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPoolGeometry {
    /// Channels (C), unchanged by pooling.
    pub channels: usize,
    /// Input height (H).
    pub in_h: usize,
    /// Input width (W).
    pub in_w: usize,
}

impl MaxPoolGeometry {
    /// A geometry; panics unless the input holds at least one 2x2 window.
    pub fn new(channels: usize, in_h: usize, in_w: usize) -> MaxPoolGeometry {
        let g = MaxPoolGeometry { channels, in_h, in_w };
        assert!(g.is_valid(), "max_pool: invalid geometry {g:?}");
        g
    }

    /// Whether there is at least one channel and one window.
    pub fn is_valid(&self) -> bool {
        self.channels > 0 && self.in_h >= 2 && self.in_w >= 2
    }

    /// Output height, `⌊H / 2⌋`.
    pub fn out_h(&self) -> usize {
        self.in_h / 2
    }

    /// Output width, `⌊W / 2⌋`.
    pub fn out_w(&self) -> usize {
        self.in_w / 2
    }

    /// Width of an input row, `C·H·W`.
    pub fn in_len(&self) -> usize {
        self.channels * self.in_h * self.in_w
    }

    /// Width of an output row, `C·⌊H/2⌋·⌊W/2⌋`.
    pub fn out_len(&self) -> usize {
        self.channels * self.out_h() * self.out_w()
    }
}

/// `y` = the maximum of each window; `argmax` is resized to `N·C·⌊H/2⌋·⌊W/2⌋` and receives, in
/// `y`'s order, the position of each maximum within its input row (`(c·H + h)·W + w`).
// x: (N, C·H·W) -> y: (N, C·(H/2)·(W/2)), argmax: (N·C·(H/2)·(W/2))
pub fn forward(x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>, argmax: &mut Vec<u32>, geom: &MaxPoolGeometry) {
    let g = geom;
    assert!(g.is_valid(), "max_pool: invalid geometry {g:?}");
    let n = x.nrows();
    assert_eq!(x.ncols(), g.in_len(), "max_pool forward: input width");
    assert_eq!(y.dim(), (n, g.out_len()), "max_pool forward: output shape");
    assert!(
        g.in_len() <= u32::MAX as usize,
        "max_pool: rows too long for u32 positions"
    );
    argmax.resize(n * g.out_len(), 0);
    // Rows without unit stride go through a copy (the trainer's never do).
    let mut xrow = Vec::new();
    let mut yrow: Vec<f32> = Vec::new();
    for ((xr, mut yr), idx) in x
        .rows()
        .into_iter()
        .zip(y.rows_mut())
        .zip(argmax.chunks_exact_mut(g.out_len()))
    {
        let xs = match xr.to_slice() {
            Some(s) => s,
            None => {
                xrow.clear();
                xrow.extend(xr.iter());
                &xrow
            }
        };
        match yr.as_slice_mut() {
            Some(ys) => pool_row(xs, ys, idx, g),
            None => {
                yrow.resize(g.out_len(), 0.0);
                pool_row(xs, &mut yrow, idx, g);
                yr.iter_mut().zip(&yrow).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// One sample: every window's maximum and where it is.
// x: (C·H·W) -> y: (C·(H/2)·(W/2)), argmax: (C·(H/2)·(W/2))
fn pool_row(x: &[f32], y: &mut [f32], argmax: &mut [u32], g: &MaxPoolGeometry) {
    let (w, oh, ow) = (g.in_w, g.out_h(), g.out_w());
    let mut out = y.iter_mut().zip(argmax.iter_mut());
    for c in 0..g.channels {
        for i in 0..oh {
            let row = (c * g.in_h + 2 * i) * w;
            let (top, bottom) = (&x[row..row + w], &x[row + w..row + 2 * w]);
            for j in 0..ow {
                let at = row + 2 * j;
                let window = [
                    (top[2 * j], at),
                    (top[2 * j + 1], at + 1),
                    (bottom[2 * j], at + w),
                    (bottom[2 * j + 1], at + w + 1),
                ];
                let (yv, iv) = out.next().expect("output sized by the geometry");
                (*yv, *iv) = window_max(window);
            }
        }
    }
}

/// The maximum of a window and its position, as PyTorch: a strictly larger value takes over (the
/// first of equal maxima wins), and so does a NaN (the last NaN wins).
#[inline(always)]
fn window_max(window: [(f32, usize); 4]) -> (f32, u32) {
    let [(v0, p0), rest @ ..] = window;
    if window.iter().any(|(v, _)| v.is_nan()) {
        let last = window.iter().rev().find(|(v, _)| v.is_nan()).expect("a NaN");
        return (last.0, last.1 as u32);
    }
    // Without NaNs, in arithmetic rather than branches: the winner's position is data, and
    // mispredicting it made this about 4x slower.
    let (mut best, mut pos) = (v0, p0);
    for (v, p) in rest {
        let take = ((v > best) as usize).wrapping_neg();
        pos ^= (pos ^ p) & take;
        best = best.max(v);
    }
    (best, pos as u32)
}

/// `dx` = `dy` at each window's argmax, zero elsewhere (rows and columns dropped by the pooling
/// included). `argmax` is what [`forward`] recorded for the same rows.
// dy: (N, C·(H/2)·(W/2)), argmax: (N·C·(H/2)·(W/2)) -> dx: (N, C·H·W)
pub fn backward(dy: ArrayView2<f32>, argmax: &[u32], mut dx: ArrayViewMut2<f32>, geom: &MaxPoolGeometry) {
    let g = geom;
    let n = dy.nrows();
    assert_eq!(dy.ncols(), g.out_len(), "max_pool backward: output gradient width");
    assert_eq!(dx.dim(), (n, g.in_len()), "max_pool backward: input gradient shape");
    assert!(
        argmax.len() >= n * g.out_len(),
        "max_pool backward: argmax shorter than the batch"
    );
    dx.fill(0.0);
    for ((dyr, mut dxr), idx) in dy
        .rows()
        .into_iter()
        .zip(dx.rows_mut())
        .zip(argmax.chunks_exact(g.out_len()))
    {
        match dxr.as_slice_mut() {
            Some(d) => {
                for (&v, &at) in dyr.iter().zip(idx) {
                    d[at as usize] += v;
                }
            }
            None => {
                for (&v, &at) in dyr.iter().zip(idx) {
                    dxr[at as usize] += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::Array2;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn pool(x: &Array2<f32>, g: &MaxPoolGeometry) -> (Array2<f32>, Vec<u32>) {
        let mut y = Array2::from_elem((x.nrows(), g.out_len()), f32::NAN);
        let mut argmax = Vec::new();
        forward(x.view(), y.view_mut(), &mut argmax, g);
        (y, argmax)
    }

    #[test]
    fn forward_by_hand() {
        // One channel, 3x5: the last row and column are dropped.
        //  1  9  2  3 100
        //  4  5  8  0 100
        // 100 100 100 100 100
        let g = MaxPoolGeometry::new(1, 3, 5);
        let x = Array2::from_shape_vec(
            (1, 15),
            vec![
                1.0, 9.0, 2.0, 3.0, 100.0, 4.0, 5.0, 8.0, 0.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0,
            ],
        )
        .unwrap();
        let (y, argmax) = pool(&x, &g);
        assert_eq!(y.as_slice().unwrap(), &[9.0, 8.0]);
        assert_eq!(argmax, [1, 7]);

        // Two channels, 2x2 each: one window per channel.
        let g = MaxPoolGeometry::new(2, 2, 2);
        let x = Array2::from_shape_vec(
            (2, 8),
            vec![
                -1.0, -2.0, -3.0, -0.5, 0.0, 1.0, 2.0, 3.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 7.0,
            ],
        )
        .unwrap();
        let (y, argmax) = pool(&x, &g);
        assert_eq!(y.as_slice().unwrap(), &[-0.5, 3.0, 5.0, 7.0]);
        assert_eq!(argmax, [3, 7, 0, 7]);
    }

    #[test]
    fn ties_go_to_the_first_maximum_and_nan_wins() {
        // Windows (row-major): [2, 2, 2, 2], [0, 3, 3, 1], [-inf; 4], [1, NaN, 5, NaN].
        let g = MaxPoolGeometry::new(4, 2, 2);
        let ninf = f32::NEG_INFINITY;
        let x = Array2::from_shape_vec(
            (1, 16),
            vec![
                2.0,
                2.0,
                2.0,
                2.0,
                0.0,
                3.0,
                3.0,
                1.0,
                ninf,
                ninf,
                ninf,
                ninf,
                1.0,
                f32::NAN,
                5.0,
                f32::NAN,
            ],
        )
        .unwrap();
        let (y, argmax) = pool(&x, &g);
        assert_eq!(&y.as_slice().unwrap()[..3], &[2.0, 3.0, ninf]);
        assert!(y[[0, 3]].is_nan());
        assert_eq!(argmax, [0, 5, 8, 15]);
        // The gradient of a tie goes to the first maximum only.
        let dy = Array2::from_shape_vec((1, 4), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let mut dx = Array2::from_elem((1, 16), f32::NAN);
        backward(dy.view(), &argmax, dx.view_mut(), &g);
        let mut want = [0.0; 16];
        want[0] = 1.0;
        want[5] = 2.0;
        want[8] = 3.0;
        want[15] = 4.0;
        assert_eq!(dx.as_slice().unwrap(), &want);
    }

    /// Rows of distinct values, shuffled, at least 0.05 apart: a finite-difference step of 1e-3
    /// never changes a window's argmax.
    fn distinct(seed: u64, n: usize, width: usize) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values: Vec<f32> = (0..n * width).map(|v| 0.05 * v as f32 - 1.0).collect();
        values.shuffle(&mut rng);
        Array2::from_shape_vec((n, width), values).unwrap()
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (s, &(n, g)) in [
            (3, MaxPoolGeometry::new(1, 4, 4)),
            (2, MaxPoolGeometry::new(3, 5, 7)),
            (1, MaxPoolGeometry::new(2, 7, 2)),
            (4, MaxPoolGeometry::new(8, 8, 8)),
        ]
        .iter()
        .enumerate()
        {
            let x = distinct(s as u64, n, g.in_len());
            // Objective L = Σ y ⊙ r, so dL/dy = r.
            let r = random(10 + s as u64, (n, g.out_len()), 1.0);
            let loss = |x: &Array2<f32>| {
                let (y, _) = pool(x, &g);
                dot(&y, &r)
            };
            let (_, argmax) = pool(&x, &g);
            let mut dx = Array2::from_elem((n, g.in_len()), f32::NAN);
            backward(r.view(), &argmax, dx.view_mut(), &g);
            check(&format!("max_pool {n}x{g:?} dx"), &x, &dx, loss);
        }
    }

    #[test]
    fn matches_a_plain_window_scan() {
        // Every output is its window's maximum, every argmax points at it, and each input gets
        // the gradient of at most one window: dx sums to dy.
        let g = MaxPoolGeometry::new(3, 9, 6);
        let x = random(7, (5, g.in_len()), 1.0);
        let (y, argmax) = pool(&x, &g);
        for r in 0..5 {
            for c in 0..3 {
                for i in 0..4 {
                    for j in 0..3 {
                        let out = (c * 4 + i) * 3 + j;
                        let at = |h: usize, w: usize| (c * 9 + 2 * i + h) * 6 + 2 * j + w;
                        let m = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)]
                            .iter()
                            .map(|&p| x[[r, p]])
                            .fold(f32::NEG_INFINITY, f32::max);
                        assert_eq!(y[[r, out]], m);
                        assert_eq!(x[[r, argmax[r * g.out_len() + out] as usize]], m);
                    }
                }
            }
        }
        let dy = random(8, (5, g.out_len()), 1.0);
        let mut dx = Array2::zeros((5, g.in_len()));
        backward(dy.view(), &argmax, dx.view_mut(), &g);
        for r in 0..5 {
            let (a, b) = (dx.row(r).sum(), dy.row(r).sum());
            assert!((a - b).abs() < 1e-5, "row {r}: dx sums to {a}, dy to {b}");
            assert_eq!(dx.row(r).iter().filter(|&&v| v != 0.0).count(), g.out_len());
        }
    }

    #[test]
    fn strided_views_give_the_same_results() {
        // Columns of transposed arrays: rows of the views are not contiguous.
        let g = MaxPoolGeometry::new(2, 5, 4);
        let x = random(9, (3, g.in_len()), 1.0);
        let (y, argmax) = pool(&x, &g);
        let xt = x.t().to_owned();
        let mut yt = Array2::zeros((g.out_len(), 3));
        let mut argmax_t = Vec::new();
        forward(xt.t(), yt.view_mut().reversed_axes(), &mut argmax_t, &g);
        assert_eq!(y, yt.t());
        assert_eq!(argmax, argmax_t);
        let dy = random(10, (3, g.out_len()), 1.0);
        let mut dx = Array2::zeros((3, g.in_len()));
        backward(dy.view(), &argmax, dx.view_mut(), &g);
        let mut dxt = Array2::from_elem((g.in_len(), 3), f32::NAN);
        backward(dy.view(), &argmax, dxt.view_mut().reversed_axes(), &g);
        assert_eq!(dx, dxt.t());
    }

    #[test]
    fn geometry_of_the_autoencoder() {
        let g = MaxPoolGeometry::new(8, 8, 8);
        assert_eq!((g.out_h(), g.out_w(), g.in_len(), g.out_len()), (4, 4, 512, 128));
        let odd = MaxPoolGeometry::new(2, 5, 3);
        assert_eq!((odd.out_h(), odd.out_w(), odd.out_len()), (2, 1, 4));
        assert!(!MaxPoolGeometry { in_h: 1, ..g }.is_valid());
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<MaxPoolGeometry>(&json).unwrap(), g);
    }
}
