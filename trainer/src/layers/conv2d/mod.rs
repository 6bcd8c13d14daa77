//! 2-D convolution as PyTorch's `nn.Conv2d` with stride 1 and no padding:
//! `y[o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[c, i + p, j + q]`.
//!
//! At the layer boundary every row is one sample in PyTorch's order: `x` rows are `(C, H, W)`
//! flattened, `y` rows `(O, OH, OW)`, so a flatten after the last convolution is PyTorch's. The
//! weight is `(O, C·k·k)`, PyTorch's `(O, C, kh, kw)` flattened; the bias `(O)`.
//!
//! # How it is computed
//!
//! **Batch in the SIMD lanes.** Each call walks the rows in blocks of 16 samples and transposes a
//! block into "pixel-major, sample-minor" order, `(C·H·W, 16)`, so that one 16-float vector holds
//! one pixel of 16 samples. Every lane then does useful work whatever the image and kernel sizes
//! (output rows of 23, 18, 13 and 8 pixels do not tile a vector of pixels), no im2col matrix is
//! built (a 36-fold copy of the input, more memory traffic than the 8-output-channel products it
//! would feed: im2col + `gemm` forward measured 16–39 GFLOP/s here in either GEMM orientation,
//! these kernels 113–117), and each weight is one broadcast reused across several vectors.
//! Results are transposed back to rows.
//!
//! **Direct kernels** (any kernel size). Register tiles of 8 channels × 3 pixels:
//! - forward: 8 output channels × 3 output pixels, summed over `(c, p, q)`;
//! - `dW`: 8 output channels × 3 kernel columns for one `(c, p)`, summed over every output
//!   pixel, kept per lane in the scratch buffer and reduced over lanes once per call;
//! - `dx`: the "full" correlation `dx[c, h, w] = Σ_{o, p, q} W[o, c, p, q]·dy[o, h − p, w − q]`,
//!   8 input channels × 3 pixels, visiting only taps that land inside `dy` (no zero padding is
//!   multiplied).
//!
//! **Winograd F(3, 6) along rows** (6 × 6 kernels with two or more input channels, i.e. the
//! autoencoder's layers 2–4). Each kernel row is a 1-D correlation of width 6; F(3, 6) gives
//! three adjacent outputs of it from 8 products instead of 18, after transforms shared by all
//! channels (see the kernels' comments). That cuts the multiply-adds of forward, `dW` and `dx`
//! by 2.25x for the cost of the transforms; backward is the exact adjoint of the Winograd
//! forward. The points (0, ±1, ±2, ±1/2, ∞) keep the rounding at the level of the direct sum
//! (max error / max value ~1e-6 on the autoencoder's layers, as for the direct kernels).
//!
//! The kernels are compiled for AVX-512 (picked at run time), for AVX2 + FMA (plain arrays the
//! compiler vectorises) and for the baseline target. Every multiply-add is fused, at every level:
//! each value is summed in the same order with the same roundings, so the levels give the same
//! bits (a run capped at AVX2 trains as on AVX-512). [`forward_naive`] and
//! [`backward_naive`] are the direct loops every path is held to. Everything is single-threaded:
//! the trainer runs one batch shard per thread.
//!
//! # Files
//!
//! This file holds the layer's interface and the plain reference; the fast path lives next to it:
//! - `pack.rs`: the block layout (16 samples in the lanes), the scratch regions, and the
//!   transposes between rows and blocks;
//! - `simd.rs`: the vector type the kernels are generic over (AVX-512, portable) and the run-time
//!   choice between the compiled variants;
//! - `direct.rs`: the direct kernels and the forward and backward passes built on them;
//! - `winograd.rs`: the Winograd F(3, 6) transforms, kernels and passes.

mod direct;
mod pack;
mod simd;
mod winograd;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use pack::Dims;
use serde::{Deserialize, Serialize};

/// Shape of a stride-1, unpadded convolution of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dGeometry {
    /// Input channels (C).
    pub in_channels: usize,
    /// Input height (H).
    pub in_h: usize,
    /// Input width (W).
    pub in_w: usize,
    /// Output channels (O).
    pub out_channels: usize,
    /// Kernel side (k); the kernel is k × k.
    pub kernel: usize,
}

impl Conv2dGeometry {
    /// A geometry; panics unless the kernel fits the input.
    pub fn new(in_channels: usize, in_h: usize, in_w: usize, out_channels: usize, kernel: usize) -> Conv2dGeometry {
        let g = Conv2dGeometry {
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel,
        };
        assert!(g.is_valid(), "conv2d: invalid geometry {g:?}");
        g
    }

    /// Whether every size is positive and the kernel fits the input.
    pub fn is_valid(&self) -> bool {
        self.in_channels > 0
            && self.out_channels > 0
            && self.kernel > 0
            && self.kernel <= self.in_h
            && self.kernel <= self.in_w
    }

    /// Output height, `H − k + 1`.
    pub fn out_h(&self) -> usize {
        self.in_h + 1 - self.kernel
    }

    /// Output width, `W − k + 1`.
    pub fn out_w(&self) -> usize {
        self.in_w + 1 - self.kernel
    }

    /// Width of an input row, `C·H·W`.
    pub fn in_len(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }

    /// Width of an output row, `O·OH·OW`.
    pub fn out_len(&self) -> usize {
        self.out_channels * self.out_h() * self.out_w()
    }

    /// Output positions of one channel, `OH·OW`.
    pub fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Values under one output position, `C·k·k`: a patch.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Shape of the weight, `(O, C·k·k)`.
    pub fn weight_shape(&self) -> (usize, usize) {
        (self.out_channels, self.patch_len())
    }

    /// Multiply-adds of one sample's forward pass (also of its `dW`, and of its `dx`).
    pub fn macs(&self) -> usize {
        self.out_len() * self.in_channels * self.kernel * self.kernel
    }
}

/// `y = conv(x, W) + b`. `scratch` is any reusable buffer; it grows on first use and is then
/// reused, so a training step allocates nothing.
// x: (N, C·H·W), w: (O, C·k·k), b: (O) -> y: (N, O·OH·OW)
pub fn forward(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: ArrayView1<f32>,
    y: ArrayViewMut2<f32>,
    geom: &Conv2dGeometry,
    scratch: &mut Vec<f32>,
) {
    let d = Dims::new(geom);
    let n = x.nrows();
    assert_eq!(x.ncols(), geom.in_len(), "conv2d forward: input width");
    assert_eq!(w.dim(), geom.weight_shape(), "conv2d forward: weight shape");
    assert_eq!(b.len(), d.o, "conv2d forward: bias length");
    assert_eq!(y.dim(), (n, geom.out_len()), "conv2d forward: output shape");
    if use_winograd(&d) {
        winograd::forward_winograd(x, w, b, y, &d, scratch);
    } else {
        direct::forward_direct(x, w, b, y, &d, scratch);
    }
}

/// Whether to take the Winograd path: 6 × 6 kernels and at least two input channels (with one,
/// the transforms cost about what they save: measured equal forward and 25 % slower for `dW` on
/// the 28 × 28 first layer). A test may ask for the direct path.
fn use_winograd(d: &Dims) -> bool {
    #[cfg(test)]
    if tests::hooks::direct() {
        return false;
    }
    d.k == winograd::WR && d.c >= 2
}

/// Adds `dW += Σ dy ⋆ x` and `db += Σ dy` over the batch and every output pixel; writes
/// `dx = dy ⋆ W` (the full correlation) when asked. `scratch` as for [`forward`].
// x: (N, C·H·W), w: (O, C·k·k), dy: (N, O·OH·OW) -> dw: (O, C·k·k), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    dw: ArrayViewMut2<f32>,
    db: ArrayViewMut1<f32>,
    dx: Option<ArrayViewMut2<f32>>,
    geom: &Conv2dGeometry,
    scratch: &mut Vec<f32>,
) {
    let d = Dims::new(geom);
    let n = x.nrows();
    assert_eq!(x.ncols(), geom.in_len(), "conv2d backward: input width");
    assert_eq!(w.dim(), geom.weight_shape(), "conv2d backward: weight shape");
    assert_eq!(dy.dim(), (n, geom.out_len()), "conv2d backward: output gradient shape");
    assert_eq!(dw.dim(), geom.weight_shape(), "conv2d backward: weight gradient shape");
    assert_eq!(db.len(), d.o, "conv2d backward: bias gradient length");
    if let Some(dx) = &dx {
        assert_eq!(dx.dim(), (n, geom.in_len()), "conv2d backward: input gradient shape");
    }
    if use_winograd(&d) {
        winograd::backward_winograd(x, w, dy, dw, db, dx, &d, scratch);
    } else {
        direct::backward_direct(x, w, dy, dw, db, dx, &d, scratch);
    }
}

/// The direct six-fold loop, accumulating in f64: the reference for [`forward`].
// x: (N, C·H·W), w: (O, C·k·k), b: (O) -> y: (N, O·OH·OW)
pub fn forward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    geom: &Conv2dGeometry,
) {
    let g = geom;
    let (k, oh, ow) = (g.kernel, g.out_h(), g.out_w());
    for n in 0..x.nrows() {
        for o in 0..g.out_channels {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b[o] as f64;
                    for c in 0..g.in_channels {
                        for p in 0..k {
                            for q in 0..k {
                                let xv = x[[n, (c * g.in_h + i + p) * g.in_w + j + q]];
                                s += w[[o, (c * k + p) * k + q]] as f64 * xv as f64;
                            }
                        }
                    }
                    y[[n, (o * oh + i) * ow + j]] = s as f32;
                }
            }
        }
    }
}

/// The direct loops of the backward pass, accumulating in f64: the reference for [`backward`].
/// Adds into `dw` and `db`, writes `dx`.
// x: (N, C·H·W), w: (O, C·k·k), dy: (N, O·OH·OW) -> dw: (O, C·k·k), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
pub fn backward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut db: ArrayViewMut1<f32>,
    mut dx: Option<ArrayViewMut2<f32>>,
    geom: &Conv2dGeometry,
) {
    let g = geom;
    let (k, oh, ow) = (g.kernel, g.out_h(), g.out_w());
    let n = x.nrows();
    for o in 0..g.out_channels {
        let mut s = 0f64;
        for r in 0..n {
            for px in 0..oh * ow {
                s += dy[[r, o * oh * ow + px]] as f64;
            }
        }
        db[o] += s as f32;
        for c in 0..g.in_channels {
            for p in 0..k {
                for q in 0..k {
                    let mut s = 0f64;
                    for r in 0..n {
                        for i in 0..oh {
                            for j in 0..ow {
                                let xv = x[[r, (c * g.in_h + i + p) * g.in_w + j + q]];
                                s += dy[[r, (o * oh + i) * ow + j]] as f64 * xv as f64;
                            }
                        }
                    }
                    dw[[o, (c * k + p) * k + q]] += s as f32;
                }
            }
        }
    }
    if let Some(dx) = dx.as_mut() {
        for r in 0..n {
            for c in 0..g.in_channels {
                for h in 0..g.in_h {
                    for v in 0..g.in_w {
                        let mut s = 0f64;
                        for o in 0..g.out_channels {
                            for p in 0..k {
                                for q in 0..k {
                                    // dy[o, h − p, v − q] when inside the output.
                                    if h >= p && h - p < oh && v >= q && v - q < ow {
                                        let dyv = dy[[r, (o * oh + h - p) * ow + v - q]];
                                        s += w[[o, (c * k + p) * k + q]] as f64 * dyv as f64;
                                    }
                                }
                            }
                        }
                        dx[[r, (c * g.in_h + h) * g.in_w + v]] = s as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::{Array1, Array2};

    /// Forward through [`forward`], backward through [`backward`], on fresh scratch.
    fn fast_forward(x: &Array2<f32>, w: &Array2<f32>, b: &Array2<f32>, g: &Conv2dGeometry) -> Array2<f32> {
        let mut y = Array2::from_elem((x.nrows(), g.out_len()), f32::NAN);
        forward(x.view(), w.view(), b.row(0), y.view_mut(), g, &mut Vec::new());
        y
    }

    #[test]
    fn forward_by_hand() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], W = [[1, 0], [0, -1]], b = 0.5:
        // y[i, j] = x[i, j] − x[i + 1, j + 1] + 0.5 = −4 + 0.5 everywhere.
        let g = Conv2dGeometry::new(1, 3, 3, 1, 2);
        let x = Array2::from_shape_vec((1, 9), (1..=9).map(|v| v as f32).collect()).unwrap();
        let w = Array2::from_shape_vec((1, 4), vec![1.0, 0.0, 0.0, -1.0]).unwrap();
        let b = Array2::from_elem((1, 1), 0.5);
        assert_eq!(fast_forward(&x, &w, &b, &g).as_slice().unwrap(), &[-3.5; 4]);

        // Two input channels, two output channels, a 2x3 image and a 2x2 kernel:
        // channel 0 = [[1, 2, 3], [4, 5, 6]], channel 1 = all 10.
        // o = 0 sums the top-left 2x2 window of channel 0: [1+2+4+5, 2+3+5+6] = [12, 16].
        // o = 1 takes channel 1's top-left value plus the bias 1: [11, 11].
        let g = Conv2dGeometry::new(2, 2, 3, 2, 2);
        let x = Array2::from_shape_vec(
            (1, 12),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        )
        .unwrap();
        let mut w = Array2::zeros((2, 8));
        w.row_mut(0).slice_mut(ndarray::s![..4]).fill(1.0);
        w[[1, 4]] = 1.0;
        let b = Array2::from_shape_vec((1, 2), vec![0.0, 1.0]).unwrap();
        assert_eq!(
            fast_forward(&x, &w, &b, &g).as_slice().unwrap(),
            &[12.0, 16.0, 11.0, 11.0]
        );
    }

    #[test]
    fn winograd_forward_by_hand() {
        // A 6 × 6 kernel over two 6x7 channels (the Winograd path, one partial tile):
        // channel 0 = 7r + c weighted by ones sums to 720 over the window at column 0 and
        // 720 + 36 at column 1; channel 1 = all ones weighted 0.5 at its top-left only; bias 0.25.
        let g = Conv2dGeometry::new(2, 6, 7, 1, 6);
        let mut x = Array2::ones((1, 84));
        for (i, v) in x.row_mut(0).iter_mut().take(42).enumerate() {
            *v = i as f32;
        }
        let mut w = Array2::zeros((1, 72));
        w.row_mut(0).slice_mut(ndarray::s![..36]).fill(1.0);
        w[[0, 36]] = 0.5;
        let b = Array2::from_elem((1, 1), 0.25);
        for (level, direct, path) in PATHS {
            let y = hooks::with(level, direct, || fast_forward(&x, &w, &b, &g));
            for (&got, want) in y.iter().zip([720.75, 756.75]) {
                // The transforms' fractions (2/9, 1/90, ...) are not exact in f32.
                assert!((got - want).abs() < 1e-3, "{path}: {got} for {want}");
            }
        }
    }

    #[test]
    fn backward_by_hand() {
        // 1x3x3 input, 2x2 kernel, dy = 1 at output (0, 1) only: dW is the window at (0, 1),
        // dx is the kernel placed at (0, 1), db = 1.
        let g = Conv2dGeometry::new(1, 3, 3, 1, 2);
        let x = Array2::from_shape_vec((1, 9), (1..=9).map(|v| v as f32).collect()).unwrap();
        let w = Array2::from_shape_vec((1, 4), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let dy = Array2::from_shape_vec((1, 4), vec![0.0, 1.0, 0.0, 0.0]).unwrap();
        let mut dw = Array2::zeros((1, 4));
        let mut db = Array1::zeros(1);
        let mut dx = Array2::from_elem((1, 9), f32::NAN);
        backward(
            x.view(),
            w.view(),
            dy.view(),
            dw.view_mut(),
            db.view_mut(),
            Some(dx.view_mut()),
            &g,
            &mut Vec::new(),
        );
        assert_eq!(dw.as_slice().unwrap(), &[2.0, 3.0, 5.0, 6.0]);
        assert_eq!(db.as_slice().unwrap(), &[1.0]);
        assert_eq!(dx.as_slice().unwrap(), &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0]);
    }

    /// Small odd shapes as (N, [C, H, W, O, k]): channel counts below, at and above the
    /// register block, kernels from 1 to 6 (6 × 6 with one input channel runs direct, with more
    /// through Winograd, here with partial last tiles), square and non-square inputs, sample
    /// counts around a block.
    const SHAPES: [(usize, [usize; 5]); 8] = [
        (3, [1, 5, 7, 2, 3]),
        (5, [2, 4, 3, 3, 2]),
        (2, [3, 6, 5, 1, 1]),
        (1, [1, 7, 9, 9, 6]),
        (17, [9, 5, 6, 4, 4]),
        (2, [2, 8, 8, 8, 5]),
        (2, [3, 7, 11, 2, 6]),
        (3, [8, 11, 10, 8, 6]),
    ];

    fn shape(s: [usize; 5]) -> Conv2dGeometry {
        Conv2dGeometry::new(s[0], s[1], s[2], s[3], s[4])
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (s, &(n, dims)) in SHAPES.iter().enumerate() {
            let g = shape(dims);
            let seed = 10 * s as u64;
            // The finite differences see y's f32 rounding, which grows with |y| and with the
            // number of outputs an element touches; a gradient that cancels to near zero would
            // drown in it. Non-negative x, W, b and r make every gradient a sum of positive
            // terms, and small x keeps |y| small (dx does not depend on x). Signs are the
            // naive comparison's job.
            let x = random(seed + 1, (n, g.in_len()), 0.25).mapv(f32::abs);
            let w = random(seed + 2, g.weight_shape(), 0.5).mapv(f32::abs);
            let b = random(seed + 3, (1, g.out_channels), 0.1).mapv(f32::abs);
            // Objective L = Σ y ⊙ r, so dL/dy = r.
            let r = random(seed + 4, (n, g.out_len()), 1.0).mapv(f32::abs);
            // The best level on every shape; the direct path too where Winograd is the default
            // (fast_matches_naive covers every path against the reference).
            let paths: &[_] = if g.kernel == 6 && g.in_channels > 1 {
                &[PATHS[0], PATHS[3]]
            } else {
                &PATHS[..1]
            };
            for &(level, direct, path) in paths {
                hooks::with(level, direct, || {
                    // One scratch and output for every probe: thousands of forward passes.
                    let (mut scratch, mut y) = (Vec::new(), Array2::zeros((n, g.out_len())));
                    let mut loss = |x: &Array2<f32>, w: &Array2<f32>, b: &Array2<f32>| {
                        forward(x.view(), w.view(), b.row(0), y.view_mut(), &g, &mut scratch);
                        dot(&y, &r)
                    };
                    let mut dw = Array2::zeros(g.weight_shape());
                    let mut db = Array2::zeros((1, g.out_channels));
                    let mut dx = Array2::from_elem((n, g.in_len()), f32::NAN);
                    backward(
                        x.view(),
                        w.view(),
                        r.view(),
                        dw.view_mut(),
                        db.row_mut(0),
                        Some(dx.view_mut()),
                        &g,
                        &mut Vec::new(),
                    );
                    let name = format!("conv2d {path} {n}x{dims:?}");
                    check(&format!("{name} dx"), &x, &dx, |x| loss(x, &w, &b));
                    check(&format!("{name} dW"), &w, &dw, |w| loss(&x, w, &b));
                    check(&format!("{name} db"), &b, &db, |b| loss(&x, &w, b));
                });
            }
        }
    }

    #[test]
    fn naive_gradients_match_finite_differences() {
        // The reference itself, on two shapes, so it is not only held to the fast path.
        for &(n, dims) in &SHAPES[..2] {
            let g = shape(dims);
            let x = random(91, (n, g.in_len()), 1.0);
            let w = random(92, g.weight_shape(), 0.5);
            let b = random(93, (1, g.out_channels), 0.5);
            let r = random(94, (n, g.out_len()), 1.0);
            let loss = |x: &Array2<f32>, w: &Array2<f32>| {
                let mut y = Array2::zeros((n, g.out_len()));
                forward_naive(x.view(), w.view(), b.row(0), y.view_mut(), &g);
                dot(&y, &r)
            };
            let mut dw = Array2::zeros(g.weight_shape());
            let mut db = Array1::zeros(g.out_channels);
            let mut dx = Array2::zeros((n, g.in_len()));
            backward_naive(
                x.view(),
                w.view(),
                r.view(),
                dw.view_mut(),
                db.view_mut(),
                Some(dx.view_mut()),
                &g,
            );
            check("naive dx", &x, &dx, |x| loss(x, &w));
            check("naive dW", &w, &dw, |w| loss(&x, w));
        }
    }

    /// `|fast − naive| ≤ tol·(1 + |naive|)` elementwise.
    fn assert_close(what: &str, fast: &Array2<f32>, naive: &Array2<f32>, tol: f32) {
        assert_eq!(fast.dim(), naive.dim(), "{what}: shape");
        for ((idx, &f), &s) in fast.indexed_iter().zip(naive.iter()) {
            assert!(
                (f - s).abs() <= tol * (1.0 + s.abs()),
                "{what} at {idx:?}: fast {f}, naive {s}"
            );
        }
    }

    /// Switches for the tests, per thread: a lesser kernel level than the CPU's best, the
    /// direct path instead of Winograd.
    pub(super) mod hooks {
        use super::super::simd::Level;
        use std::cell::Cell;

        thread_local! {
            static LEVEL: Cell<Option<Level>> = const { Cell::new(None) };
            static DIRECT: Cell<bool> = const { Cell::new(false) };
        }

        pub fn level() -> Option<Level> {
            LEVEL.with(Cell::get)
        }

        pub fn direct() -> bool {
            DIRECT.with(Cell::get)
        }

        /// Runs `f` with the switches set, then restores them.
        pub fn with<R>(level: Option<Level>, direct: bool, f: impl FnOnce() -> R) -> R {
            let old = (LEVEL.replace(level), DIRECT.replace(direct));
            let r = f();
            LEVEL.set(old.0);
            DIRECT.set(old.1);
            r
        }
    }

    /// Every code path this CPU can run: (kernel level cap, direct path) and a name. Levels the
    /// CPU lacks fall back to its best, so some paths repeat on older machines.
    const PATHS: [(Option<simd::Level>, bool, &str); 6] = [
        (None, false, "best"),
        (Some(simd::Level::Avx2), false, "avx2"),
        (Some(simd::Level::Baseline), false, "baseline"),
        (None, true, "direct"),
        (Some(simd::Level::Avx2), true, "avx2 direct"),
        (Some(simd::Level::Baseline), true, "baseline direct"),
    ];

    #[test]
    fn fast_matches_naive_on_random_shapes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut scratch = Vec::new();
        // The autoencoder's four layers, 6 × 6 kernels on odd small shapes (partial last tiles,
        // a single tile, several channel blocks), then random shapes; the scratch is shared
        // throughout, as a trainer shares it between layers.
        let mut cases = vec![
            (17, Conv2dGeometry::new(1, 28, 28, 8, 6)),
            (5, Conv2dGeometry::new(8, 23, 23, 8, 6)),
            (18, Conv2dGeometry::new(8, 18, 18, 8, 6)),
            (33, Conv2dGeometry::new(8, 13, 13, 8, 6)),
            (3, Conv2dGeometry::new(3, 6, 6, 2, 6)),
            (5, Conv2dGeometry::new(2, 7, 11, 5, 6)),
            (17, Conv2dGeometry::new(11, 12, 8, 17, 6)),
            (2, Conv2dGeometry::new(9, 9, 14, 3, 6)),
        ];
        for _ in 0..24 {
            let kernel = rng.random_range(1..=7);
            let g = Conv2dGeometry::new(
                rng.random_range(1..=12),
                kernel + rng.random_range(0..12),
                kernel + rng.random_range(0..12),
                rng.random_range(1..=12),
                kernel,
            );
            cases.push((rng.random_range(1..=40), g));
        }
        for (case, &(n, g)) in cases.iter().enumerate() {
            let seed = 1000 + 10 * case as u64;
            let x = random(seed, (n, g.in_len()), 1.0);
            let w = random(seed + 1, g.weight_shape(), 1.0);
            let b = random(seed + 2, (1, g.out_channels), 1.0);
            let dy = random(seed + 3, (n, g.out_len()), 1.0);
            // f32 sums of K products of magnitude < 1 (K = C·k·k forward, O·k·k for dx, N·OH·OW
            // for dW): rounding grows like √K·ε in practice and K·ε at worst; the Winograd
            // transforms' constants (up to 5.25) stay within the same bound.
            let k_fwd = (g.in_channels * g.kernel * g.kernel) as f32;
            let k_dw = (n * g.out_h() * g.out_w()) as f32;
            let k_dx = (g.out_channels * g.kernel * g.kernel) as f32;
            let tol = |k: f32| 4.0 * f32::EPSILON * k;

            let mut y_naive = Array2::zeros((n, g.out_len()));
            forward_naive(x.view(), w.view(), b.row(0), y_naive.view_mut(), &g);
            // Start the gradients from non-zero values: backward must add into them.
            let dw0 = random(seed + 4, g.weight_shape(), 1.0);
            let db0 = random(seed + 5, (1, g.out_channels), 1.0);
            let (mut dw_naive, mut db_naive) = (dw0.clone(), db0.clone());
            let mut dx_naive = Array2::zeros((n, g.in_len()));
            backward_naive(
                x.view(),
                w.view(),
                dy.view(),
                dw_naive.view_mut(),
                db_naive.row_mut(0),
                Some(dx_naive.view_mut()),
                &g,
            );

            for (level, direct, path) in PATHS {
                hooks::with(level, direct, || {
                    let what = |v: &str| format!("{path} {v} {n}x{g:?}");
                    let mut y_fast = Array2::from_elem((n, g.out_len()), f32::NAN);
                    forward(x.view(), w.view(), b.row(0), y_fast.view_mut(), &g, &mut scratch);
                    assert_close(&what("forward"), &y_fast, &y_naive, tol(k_fwd));

                    let (mut dw_fast, mut db_fast) = (dw0.clone(), db0.clone());
                    let mut dx_fast = Array2::from_elem((n, g.in_len()), f32::NAN);
                    backward(
                        x.view(),
                        w.view(),
                        dy.view(),
                        dw_fast.view_mut(),
                        db_fast.row_mut(0),
                        Some(dx_fast.view_mut()),
                        &g,
                        &mut scratch,
                    );
                    assert_close(&what("dW"), &dw_fast, &dw_naive, tol(k_dw));
                    assert_close(&what("db"), &db_fast, &db_naive, tol(k_dw));
                    assert_close(&what("dx"), &dx_fast, &dx_naive, tol(k_dx));

                    // Without dx the parameter gradients are the same.
                    let (mut dw_only, mut db_only) = (dw0.clone(), db0.clone());
                    backward(
                        x.view(),
                        w.view(),
                        dy.view(),
                        dw_only.view_mut(),
                        db_only.row_mut(0),
                        None,
                        &g,
                        &mut scratch,
                    );
                    assert_eq!(dw_only, dw_fast, "{}", what("dW without dx"));
                    assert_eq!(db_only, db_fast, "{}", what("db without dx"));
                });
            }
        }
    }

    #[test]
    fn every_kernel_level_gives_the_same_bits() {
        // Every level sums each value in the same order with fused multiply-adds: AVX-512 and
        // AVX2 (the second only wider tiles) and the baseline's scalar `mul_add`. So a run capped
        // at AVX2 trains as on AVX-512, bit for bit, and either can be tested on the other.
        let mut scratch = Vec::new();
        for (n, g) in [
            (17, Conv2dGeometry::new(1, 28, 28, 8, 6)),
            (21, Conv2dGeometry::new(8, 13, 13, 8, 6)),
            (5, Conv2dGeometry::new(3, 9, 10, 5, 3)),
        ] {
            let x = random(81, (n, g.in_len()), 1.0);
            let w = random(82, g.weight_shape(), 1.0);
            let b = random(83, (1, g.out_channels), 1.0);
            let dy = random(84, (n, g.out_len()), 1.0);
            for direct in [false, true] {
                let mut results = Vec::new();
                for level in [None, Some(simd::Level::Avx2), Some(simd::Level::Baseline)] {
                    results.push(hooks::with(level, direct, || {
                        let mut y = Array2::zeros((n, g.out_len()));
                        forward(x.view(), w.view(), b.row(0), y.view_mut(), &g, &mut scratch);
                        let (mut dw, mut db) = (Array2::zeros(g.weight_shape()), Array1::zeros(g.out_channels));
                        let mut dx = Array2::zeros((n, g.in_len()));
                        backward(
                            x.view(),
                            w.view(),
                            dy.view(),
                            dw.view_mut(),
                            db.view_mut(),
                            Some(dx.view_mut()),
                            &g,
                            &mut scratch,
                        );
                        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        let db_bits: Vec<u32> = db.iter().map(|v| v.to_bits()).collect();
                        (bits(&y), bits(&dw), db_bits, bits(&dx))
                    }));
                }
                for (r, name) in results[1..].iter().zip(["avx2", "baseline"]) {
                    let what = format!("{name} against the best level, direct {direct}, {g:?}");
                    assert!(r.0 == results[0].0, "{what}: y");
                    assert!(r.1 == results[0].1, "{what}: dW");
                    assert!(r.2 == results[0].2, "{what}: db");
                    assert!(r.3 == results[0].3, "{what}: dx");
                }
            }
        }
    }

    #[test]
    fn error_stays_at_rounding_level_on_the_autoencoder_layers() {
        // Realistic data (non-negative activations, PyTorch's weight scale, small gradients):
        // the largest error, relative to the largest value, of every path on layers 1 and 4.
        for (n, g) in [
            (17, Conv2dGeometry::new(1, 28, 28, 8, 6)),
            (19, Conv2dGeometry::new(8, 13, 13, 8, 6)),
        ] {
            let x = random(61, (n, g.in_len()), 1.0).mapv(f32::abs);
            let scale = 1.0 / (g.weight_shape().1 as f32).sqrt();
            let w = random(62, g.weight_shape(), scale);
            let b = random(63, (1, g.out_channels), scale);
            let dy = random(64, (n, g.out_len()), 1e-3);
            let mut y_ref = Array2::zeros((n, g.out_len()));
            forward_naive(x.view(), w.view(), b.row(0), y_ref.view_mut(), &g);
            let (mut dw_ref, mut db_ref) = (Array2::zeros(g.weight_shape()), Array1::zeros(g.out_channels));
            let mut dx_ref = Array2::zeros((n, g.in_len()));
            backward_naive(
                x.view(),
                w.view(),
                dy.view(),
                dw_ref.view_mut(),
                db_ref.view_mut(),
                Some(dx_ref.view_mut()),
                &g,
            );
            let relative = |a: &Array2<f32>, b: &Array2<f32>| {
                let max = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                a.iter().zip(b).fold(0f32, |e, (u, v)| e.max((u - v).abs())) / max
            };
            for (level, direct, path) in PATHS {
                hooks::with(level, direct, || {
                    let mut scratch = Vec::new();
                    let mut y = Array2::zeros((n, g.out_len()));
                    forward(x.view(), w.view(), b.row(0), y.view_mut(), &g, &mut scratch);
                    let (mut dw, mut db) = (Array2::zeros(g.weight_shape()), Array1::zeros(g.out_channels));
                    let mut dx = Array2::zeros((n, g.in_len()));
                    backward(
                        x.view(),
                        w.view(),
                        dy.view(),
                        dw.view_mut(),
                        db.view_mut(),
                        Some(dx.view_mut()),
                        &g,
                        &mut scratch,
                    );
                    for (what, fast, reference) in [("y", &y, &y_ref), ("dW", &dw, &dw_ref), ("dx", &dx, &dx_ref)] {
                        let e = relative(fast, reference);
                        assert!(e < 1e-5, "{path} {what} {g:?}: relative error {e:e}");
                    }
                });
            }
        }
    }

    #[test]
    fn strided_views_give_the_same_results() {
        // Columns of a transposed array: rows of the views are not contiguous.
        let (n, g) = (5, Conv2dGeometry::new(2, 6, 5, 3, 3));
        let x = random(71, (n, g.in_len()), 1.0);
        let w = random(72, g.weight_shape(), 1.0);
        let b = random(73, (1, g.out_channels), 1.0);
        let dy = random(74, (n, g.out_len()), 1.0);
        let xt = x.t().to_owned();
        let dyt = dy.t().to_owned();
        let mut scratch = Vec::new();
        let y = fast_forward(&x, &w, &b, &g);
        let mut yt = Array2::zeros((g.out_len(), n));
        forward(
            xt.t(),
            w.view(),
            b.row(0),
            yt.view_mut().reversed_axes(),
            &g,
            &mut scratch,
        );
        assert_eq!(y, yt.t());
        let mut grads = |x: ArrayView2<f32>, dy: ArrayView2<f32>, mut dx: ArrayViewMut2<f32>| {
            let mut dw = Array2::zeros(g.weight_shape());
            let mut db = Array1::zeros(g.out_channels);
            backward(
                x,
                w.view(),
                dy,
                dw.view_mut(),
                db.view_mut(),
                Some(dx.view_mut()),
                &g,
                &mut scratch,
            );
            (dw, db)
        };
        let mut dx = Array2::zeros((n, g.in_len()));
        let mut dxt = Array2::zeros((g.in_len(), n));
        let plain = grads(x.view(), dy.view(), dx.view_mut());
        let strided = grads(xt.t(), dyt.t(), dxt.view_mut().reversed_axes());
        assert_eq!(plain, strided);
        assert_eq!(dx, dxt.t());
    }

    #[test]
    fn backward_accumulates_into_parameter_gradients() {
        let g = Conv2dGeometry::new(2, 6, 7, 3, 3);
        let x = random(81, (4, g.in_len()), 1.0);
        let w = random(82, g.weight_shape(), 1.0);
        let dy = random(83, (4, g.out_len()), 1.0);
        let mut once = Array2::zeros(g.weight_shape());
        let mut db = Array1::zeros(3);
        let mut scratch = Vec::new();
        backward(
            x.view(),
            w.view(),
            dy.view(),
            once.view_mut(),
            db.view_mut(),
            None,
            &g,
            &mut scratch,
        );
        let db_once = db.clone();
        let mut twice = once.clone();
        backward(
            x.view(),
            w.view(),
            dy.view(),
            twice.view_mut(),
            db.view_mut(),
            None,
            &g,
            &mut scratch,
        );
        for (a, b) in once.iter().zip(twice.iter()) {
            assert!((2.0 * a - b).abs() < 1e-5, "second backward must add: {a} then {b}");
        }
        for (a, b) in db_once.iter().zip(db.iter()) {
            assert!(
                (2.0 * a - b).abs() < 1e-5,
                "second backward must add to db: {a} then {b}"
            );
        }
    }

    #[test]
    fn geometry_of_the_autoencoder() {
        let sizes: Vec<_> = [28, 23, 18, 13]
            .iter()
            .map(|&s| Conv2dGeometry::new(8, s, s, 8, 6))
            .map(|g| (g.out_h(), g.out_w()))
            .collect();
        assert_eq!(sizes, [(23, 23), (18, 18), (13, 13), (8, 8)]);
        let g = Conv2dGeometry::new(1, 28, 28, 8, 6);
        assert_eq!((g.in_len(), g.out_len(), g.weight_shape()), (784, 8 * 23 * 23, (8, 36)));
        assert!(!Conv2dGeometry { kernel: 29, ..g }.is_valid());
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Conv2dGeometry>(&json).unwrap(), g);
    }
}
