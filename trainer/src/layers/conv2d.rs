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
//! compiler vectorises, about half as fast) and for the baseline target. [`forward_naive`] and
//! [`backward_naive`] are the direct loops every path is held to. Everything is single-threaded:
//! the trainer runs one batch shard per thread.

use ndarray::{s, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Samples per block: the lanes of one vector.
const LANES: usize = 16;

/// Channels held in registers per kernel call (output channels forward and for `dW`, input
/// channels for `dx`); channel counts are padded up to a multiple inside the scratch buffer.
const CB: usize = 8;

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

    /// Shape of the weight, `(O, C·k·k)`.
    pub fn weight_shape(&self) -> (usize, usize) {
        (self.out_channels, self.in_channels * self.kernel * self.kernel)
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
        forward_winograd(x, w, b, y, &d, scratch);
    } else {
        forward_direct(x, w, b, y, &d, scratch);
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
    d.k == kernels::WR && d.c >= 2
}

/// [`forward`] by direct convolution, any kernel size.
// x: (N, C·H·W), w: (O, C·k·k), b: (O) -> y: (N, O·OH·OW)
fn forward_direct(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    d: &Dims,
    scratch: &mut Vec<f32>,
) {
    let n = x.nrows();
    let [wf, bias, xb, yb] = regions(scratch, [d.c * d.k * d.k * d.o8, d.o8, d.in_block(d.c), d.out_block()]);
    // Weights as [c][p][q][o], output channels padded with zeros to a multiple of CB.
    wf.fill(0.0);
    for ((o, col), &v) in w.indexed_iter() {
        wf[col * d.o8 + o] = v;
    }
    bias.fill(0.0);
    for (o, &v) in b.iter().enumerate() {
        bias[o] = v;
    }
    for n0 in (0..n).step_by(LANES) {
        let rows = LANES.min(n - n0);
        pack(x, n0, rows, xb);
        kernels::forward_block(d, wf, bias, xb, yb);
        unpack(yb, y.view_mut(), n0, rows);
    }
}

/// [`forward`] by Winograd F(3, 6) along rows, 6 × 6 kernels only.
// x: (N, C·H·W), w: (O, C·6·6), b: (O) -> y: (N, O·OH·OW)
fn forward_winograd(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    d: &Dims,
    scratch: &mut Vec<f32>,
) {
    use kernels::{WA, WR};
    let n = x.nrows();
    let t = kernels::tiles(d);
    let (plane_in, plane_out) = (d.h * d.w, d.oh * d.ow);
    let [uf, xp, vb, mb, yp] = regions(
        scratch,
        [
            WA * d.c * WR * d.o8,
            plane_in * LANES,
            WA * d.c * d.h * t * LANES,
            WA * d.o8 * d.oh * t * LANES,
            plane_out * LANES,
        ],
    );
    // U = G·w for every kernel row, as [ξ][c][p][o], output channels padded with zeros.
    uf.fill(0.0);
    for o in 0..d.o {
        for c in 0..d.c {
            for p in 0..WR {
                for (xi, u) in transform_kernel_row(w, o, c, p).into_iter().enumerate() {
                    uf[((xi * d.c + c) * WR + p) * d.o8 + o] = u;
                }
            }
        }
    }
    // One channel plane at a time through a small buffer, between the rows and the transforms.
    for n0 in (0..n).step_by(LANES) {
        let rows = LANES.min(n - n0);
        for c in 0..d.c {
            pack(x.slice(s![.., c * plane_in..(c + 1) * plane_in]), n0, rows, xp);
            kernels::wino_input_transform(d, xp, c, vb);
        }
        kernels::wino_forward_products(d, uf, vb, mb);
        for (o, &bias) in b.iter().enumerate() {
            kernels::wino_output_transform(d, mb, o, bias, yp);
            unpack(yp, y.slice_mut(s![.., o * plane_out..(o + 1) * plane_out]), n0, rows);
        }
    }
}

/// `G·g` for kernel row `(o, c, p)` of a 6 × 6 weight, in f64 then rounded.
fn transform_kernel_row(w: ArrayView2<f32>, o: usize, c: usize, p: usize) -> [f32; kernels::WA] {
    use kernels::{WG, WR};
    let at = (c * WR + p) * WR;
    WG.map(|g| (0..WR).map(|q| g[q] * w[[o, at + q]] as f64).sum::<f64>() as f32)
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
        backward_winograd(x, w, dy, dw, db, dx, &d, scratch);
    } else {
        backward_direct(x, w, dy, dw, db, dx, &d, scratch);
    }
}

/// [`backward`] by direct convolution, any kernel size.
// x: (N, C·H·W), w: (O, C·k·k), dy: (N, O·OH·OW) -> dw: (O, C·k·k), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
fn backward_direct(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dw: ArrayViewMut2<f32>,
    db: ArrayViewMut1<f32>,
    mut dx: Option<ArrayViewMut2<f32>>,
    d: &Dims,
    scratch: &mut Vec<f32>,
) {
    let n = x.nrows();
    let want_dx = dx.is_some();
    let cols = d.c * d.k * d.k;
    let [wt, xb, dyb, dxb, dwp, dbp] = regions(
        scratch,
        [
            if want_dx { d.k * d.k * d.o * d.c8 } else { 0 },
            d.in_block(d.c),
            d.out_block(),
            if want_dx { d.in_block(d.c8) } else { 0 },
            d.o8 * cols * LANES,
            d.o * LANES,
        ],
    );
    if want_dx {
        // Weights as [p][q][o][c], input channels padded with zeros to a multiple of CB.
        wt.fill(0.0);
        for ((o, col), &v) in w.indexed_iter() {
            let (c, pq) = (col / (d.k * d.k), col % (d.k * d.k));
            wt[(pq * d.o + o) * d.c8 + c] = v;
        }
    }
    // Per-lane partial sums of dW and db, reduced over the lanes at the end.
    dwp.fill(0.0);
    dbp.fill(0.0);
    // Output channels past O (when O is not a multiple of CB) are read by the dW kernel, which
    // discards what they give: zero them once so nothing stale is multiplied.
    dyb[d.o * d.oh * d.ow * LANES..].fill(0.0);
    for n0 in (0..n).step_by(LANES) {
        let rows = LANES.min(n - n0);
        pack(x, n0, rows, xb);
        pack(dy, n0, rows, dyb);
        add_bias_grad(d, dyb, dbp);
        kernels::weight_grad_block(d, xb, dyb, dwp);
        if let Some(dx) = dx.as_mut() {
            kernels::input_grad_block(d, wt, dyb, dxb);
            unpack(dxb, dx.view_mut(), n0, rows);
        }
    }
    for ((o, col), g) in dw.indexed_iter_mut() {
        let part = &dwp[(o * cols + col) * LANES..][..LANES];
        *g += part.iter().sum::<f32>();
    }
    reduce_bias_grad(dbp, db);
}

/// [`backward`] by Winograd F(3, 6) along rows, 6 × 6 kernels only: the exact adjoint of
/// [`forward_winograd`].
// x: (N, C·H·W), w: (O, C·6·6), dy: (N, O·OH·OW) -> dw: (O, C·6·6), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
fn backward_winograd(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dw: ArrayViewMut2<f32>,
    db: ArrayViewMut1<f32>,
    mut dx: Option<ArrayViewMut2<f32>>,
    d: &Dims,
    scratch: &mut Vec<f32>,
) {
    use kernels::{WA, WG, WR};
    let n = x.nrows();
    let t = kernels::tiles(d);
    let want_dx = dx.is_some();
    let (plane_in, plane_out) = (d.h * d.w, d.oh * d.ow);
    let [ux, xp, dyp, vb, dmb, dvr, dxb, dup, dbp] = regions(
        scratch,
        [
            if want_dx { WA * d.o * WR * d.c8 } else { 0 },
            plane_in * LANES,
            plane_out * LANES,
            WA * d.c * d.h * t * LANES,
            WA * d.o8 * d.oh * t * LANES,
            if want_dx { WA * CB * t * LANES } else { 0 },
            if want_dx { d.in_block(d.c8) } else { 0 },
            d.o8 * d.c * WR * WA * LANES,
            d.o * LANES,
        ],
    );
    if want_dx {
        // U = G·w for every kernel row, as [ξ][o][p][c], input channels padded with zeros.
        ux.fill(0.0);
        for o in 0..d.o {
            for c in 0..d.c {
                for p in 0..WR {
                    for (xi, u) in transform_kernel_row(w, o, c, p).into_iter().enumerate() {
                        ux[((xi * d.o + o) * WR + p) * d.c8 + c] = u;
                    }
                }
            }
        }
    }
    // Per-lane partial sums of dU and db, reduced over the lanes at the end.
    dup.fill(0.0);
    dbp.fill(0.0);
    // dM of the output channels past O (up to a multiple of CB) feeds dU rows that are
    // discarded; nothing writes it, so zero it once.
    let dm_plane = d.oh * t * LANES;
    for xi in 0..WA {
        dmb[(xi * d.o8 + d.o) * dm_plane..(xi + 1) * d.o8 * dm_plane].fill(0.0);
    }
    for n0 in (0..n).step_by(LANES) {
        let rows = LANES.min(n - n0);
        for c in 0..d.c {
            pack(x.slice(s![.., c * plane_in..(c + 1) * plane_in]), n0, rows, xp);
            kernels::wino_input_transform(d, xp, c, vb);
        }
        for (o, part) in dbp.chunks_exact_mut(LANES).enumerate() {
            pack(dy.slice(s![.., o * plane_out..(o + 1) * plane_out]), n0, rows, dyp);
            kernels::wino_grad_transform(d, dyp, o, dmb, part);
        }
        kernels::wino_weight_grad(d, vb, dmb, dup);
        if let Some(dx) = dx.as_mut() {
            kernels::wino_input_grad(d, ux, dmb, dvr, dxb);
            unpack(dxb, dx.view_mut(), n0, rows);
        }
    }
    // dW = Gᵀ·dU per kernel row, in f64.
    for o in 0..d.o {
        for c in 0..d.c {
            for p in 0..WR {
                let at = ((o * d.c + c) * WR + p) * WA * LANES;
                let du: [f64; WA] =
                    std::array::from_fn(|xi| dup[at + xi * LANES..][..LANES].iter().map(|&v| v as f64).sum());
                for q in 0..WR {
                    let g: f64 = (0..WA).map(|xi| WG[xi][q] * du[xi]).sum();
                    dw[[o, (c * WR + p) * WR + q]] += g as f32;
                }
            }
        }
    }
    reduce_bias_grad(dbp, db);
}

/// `dbp[o][l] += Σ_pixels dy[o][pixel][l]` for one block.
// dyb: (o8, OH, OW, L) -> dbp: (O, L)
fn add_bias_grad(d: &Dims, dyb: &[f32], dbp: &mut [f32]) {
    for (part, plane) in dbp.chunks_exact_mut(LANES).zip(dyb.chunks_exact(d.oh * d.ow * LANES)) {
        kernels::plane_sum(d, plane, part);
    }
}

/// `db[o] += Σ_l dbp[o][l]`.
fn reduce_bias_grad(dbp: &[f32], mut db: ArrayViewMut1<f32>) {
    for (g, part) in db.iter_mut().zip(dbp.chunks_exact(LANES)) {
        *g += part.iter().sum::<f32>();
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

/// The geometry with the padded channel counts the kernels use.
#[derive(Clone, Copy, Debug)]
struct Dims {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    oh: usize,
    ow: usize,
    /// C rounded up to a multiple of CB.
    c8: usize,
    /// O rounded up to a multiple of CB.
    o8: usize,
}

impl Dims {
    fn new(g: &Conv2dGeometry) -> Dims {
        assert!(g.is_valid(), "conv2d: invalid geometry {g:?}");
        Dims {
            c: g.in_channels,
            h: g.in_h,
            w: g.in_w,
            o: g.out_channels,
            k: g.kernel,
            oh: g.out_h(),
            ow: g.out_w(),
            c8: g.in_channels.div_ceil(CB) * CB,
            o8: g.out_channels.div_ceil(CB) * CB,
        }
    }

    /// Floats of a block of `channels` input planes.
    fn in_block(&self, channels: usize) -> usize {
        channels * self.h * self.w * LANES
    }

    /// Floats of a block of output planes (padded channels included).
    fn out_block(&self) -> usize {
        self.o8 * self.oh * self.ow * LANES
    }
}

/// Splits `scratch` into regions of the given lengths, each starting on a 64-byte boundary,
/// growing it if it is too small (it never shrinks, so steady use allocates nothing).
fn regions<const R: usize>(scratch: &mut Vec<f32>, lens: [usize; R]) -> [&mut [f32]; R] {
    const ALIGN: usize = 64 / std::mem::size_of::<f32>();
    let total = lens.iter().map(|l| l.div_ceil(ALIGN) * ALIGN).sum::<usize>() + ALIGN;
    if scratch.len() < total {
        scratch.resize(total, 0.0);
    }
    let skew = scratch.as_ptr() as usize % 64 / std::mem::size_of::<f32>();
    let mut rest = &mut scratch[(ALIGN - skew) % ALIGN..];
    lens.map(|len| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len.div_ceil(ALIGN) * ALIGN);
        rest = tail;
        &mut head[..len]
    })
}

/// Copies rows `n0..n0 + rows` of `src` into `dst` as `(F, LANES)`: element `f` of row `n0 + l`
/// goes to `dst[f·LANES + l]`; lanes from `rows` on are zeroed.
// src: (N, F) -> dst: (F, LANES), F ≤ dst.len() / LANES
fn pack(src: ArrayView2<f32>, n0: usize, rows: usize, dst: &mut [f32]) {
    let f = src.ncols();
    let dst = &mut dst[..f * LANES];
    let mut slices: [&[f32]; LANES] = [&[]; LANES];
    let mut contiguous = true;
    for (l, s) in slices.iter_mut().enumerate().take(rows) {
        match src.row(n0 + l).to_slice() {
            Some(row) => *s = row,
            None => contiguous = false,
        }
    }
    if contiguous {
        kernels::pack_rows(&slices[..rows], dst);
        return;
    }
    dst.fill(0.0);
    for l in 0..rows {
        for (i, &v) in src.row(n0 + l).iter().enumerate() {
            dst[i * LANES + l] = v;
        }
    }
}

/// The inverse of [`pack`] for the first `F` elements: rows `n0..n0 + rows` of `dst`.
// src: (F', LANES) with F' ≥ F -> dst: (N, F)
fn unpack(src: &[f32], mut dst: ArrayViewMut2<f32>, n0: usize, rows: usize) {
    let mut block = dst.slice_mut(s![n0..n0 + rows, ..]);
    if block.strides()[1] == 1 || block.ncols() <= 1 {
        let mut slices: [&mut [f32]; LANES] = Default::default();
        for (s, row) in slices.iter_mut().zip(block.rows_mut()) {
            *s = row.into_slice().expect("rows with unit stride are contiguous");
        }
        kernels::unpack_rows(src, &mut slices[..rows]);
        return;
    }
    for (l, mut row) in block.rows_mut().into_iter().enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            *v = src[i * LANES + l];
        }
    }
}

/// The blocked kernels. Every buffer is one block of [`LANES`] samples, pixel-major and
/// sample-minor: element `(channel, row, column)` of lane `l` at `((channel·rows + row)·columns
/// + column)·LANES + l`.
mod kernels {
    use super::{Dims, CB, LANES};

    /// The few vector operations the kernels need, on [`LANES`] floats.
    trait Simd: Copy {
        /// # Safety
        /// `p` is valid for reading `LANES` floats.
        unsafe fn load(p: *const f32) -> Self;
        /// # Safety
        /// `p` is valid for writing `LANES` floats.
        unsafe fn store(self, p: *mut f32);
        fn splat(v: f32) -> Self;
        fn zero() -> Self;
        /// `self + a·b`.
        fn mul_add(self, a: Self, b: Self) -> Self;
        fn add(self, b: Self) -> Self;
        fn sub(self, b: Self) -> Self;
        /// `self + c·b` for a constant `c`.
        #[inline(always)]
        fn add_scaled(self, c: f32, b: Self) -> Self {
            self.mul_add(Self::splat(c), b)
        }
    }

    /// Plain arrays; the compiler vectorises them as the target allows.
    #[derive(Clone, Copy)]
    struct Portable([f32; LANES]);

    impl Simd for Portable {
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees LANES readable floats at p.
            Portable(unsafe { p.cast::<[f32; LANES]>().read_unaligned() })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees LANES writable floats at p.
            unsafe { p.cast::<[f32; LANES]>().write_unaligned(self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            Portable([v; LANES])
        }
        #[inline(always)]
        fn zero() -> Self {
            Portable([0.0; LANES])
        }
        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            Portable(std::array::from_fn(|l| self.0[l] + a.0[l] * b.0[l]))
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            Portable(std::array::from_fn(|l| self.0[l] + b.0[l]))
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            Portable(std::array::from_fn(|l| self.0[l] - b.0[l]))
        }
    }

    /// One AVX-512 register. Only ever used inside functions compiled with `avx512f`, called
    /// after the feature was detected at run time.
    #[cfg(target_arch = "x86_64")]
    #[derive(Clone, Copy)]
    struct Avx512(std::arch::x86_64::__m512);

    #[cfg(target_arch = "x86_64")]
    impl Simd for Avx512 {
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: LANES readable floats at p (caller); avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: LANES writable floats at p (caller); avx512f is enabled (type invariant).
            unsafe { std::arch::x86_64::_mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_set1_ps(v) })
        }
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_setzero_ps() })
        }
        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled (type invariant).
            Avx512(unsafe { std::arch::x86_64::_mm512_sub_ps(self.0, b.0) })
        }
    }

    /// `dst[f·LANES + l] = rows[l][f]` for every `f < dst.len() / LANES`, zero for the lanes
    /// past `rows.len()`.
    // rows: (≤ LANES, F) -> dst: (F, LANES)
    pub(super) fn pack_rows(rows: &[&[f32]], dst: &mut [f32]) {
        let f = dst.len() / LANES;
        assert!(rows.len() <= LANES && rows.iter().all(|r| r.len() >= f));
        #[cfg(target_arch = "x86_64")]
        if level() == Level::Avx512 {
            // SAFETY: avx512f was detected; lengths checked above.
            unsafe { transpose::pack_avx512(rows, dst) };
            return;
        }
        for (i, px) in dst.chunks_exact_mut(LANES).enumerate() {
            for (l, v) in px.iter_mut().enumerate() {
                *v = rows.get(l).map_or(0.0, |r| r[i]);
            }
        }
    }

    /// `rows[l][f] = src[f·LANES + l]` for every `f` of each row.
    // src: (F', LANES) -> rows: (≤ LANES, F), F ≤ F'
    pub(super) fn unpack_rows(src: &[f32], rows: &mut [&mut [f32]]) {
        let f = rows.first().map_or(0, |r| r.len());
        assert!(rows.len() <= LANES && rows.iter().all(|r| r.len() == f) && src.len() >= f * LANES);
        #[cfg(target_arch = "x86_64")]
        if level() == Level::Avx512 {
            // SAFETY: avx512f was detected; lengths checked above.
            unsafe { transpose::unpack_avx512(src, rows) };
            return;
        }
        for (l, row) in rows.iter_mut().enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = src[i * LANES + l];
            }
        }
    }

    /// 16 × 16 transposes in AVX-512 registers for [`pack_rows`] and [`unpack_rows`].
    #[cfg(target_arch = "x86_64")]
    mod transpose {
        use super::LANES;
        use std::arch::x86_64::*;

        /// Transposes the 16 × 16 matrix whose rows are `r`.
        #[inline(always)]
        unsafe fn transpose(r: &mut [__m512; LANES]) {
            // SAFETY: register shuffles only; the callers enable avx512f.
            unsafe {
                // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, per 128-bit lane.
                let mut t = [_mm512_setzero_ps(); LANES];
                for i in 0..8 {
                    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
                }
                // u[4g + m], lane L: rows 4g..4g + 4 of column 4L + m.
                let mut u = [_mm512_setzero_ps(); LANES];
                for g in 0..4 {
                    let (a0, a1, b0, b1) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
                    u[4 * g] = _mm512_shuffle_ps::<0x44>(a0, b0);
                    u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(a0, b0);
                    u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(a1, b1);
                    u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(a1, b1);
                }
                // Column 4L + m gathers lane L of u[m], u[4 + m], u[8 + m], u[12 + m].
                for m in 0..4 {
                    let v_even = _mm512_shuffle_f32x4::<0x88>(u[m], u[4 + m]);
                    let v_odd = _mm512_shuffle_f32x4::<0xDD>(u[m], u[4 + m]);
                    let w_even = _mm512_shuffle_f32x4::<0x88>(u[8 + m], u[12 + m]);
                    let w_odd = _mm512_shuffle_f32x4::<0xDD>(u[8 + m], u[12 + m]);
                    r[m] = _mm512_shuffle_f32x4::<0x88>(v_even, w_even);
                    r[4 + m] = _mm512_shuffle_f32x4::<0x88>(v_odd, w_odd);
                    r[8 + m] = _mm512_shuffle_f32x4::<0xDD>(v_even, w_even);
                    r[12 + m] = _mm512_shuffle_f32x4::<0xDD>(v_odd, w_odd);
                }
            }
        }

        /// [`super::pack_rows`] with AVX-512.
        ///
        /// # Safety
        /// avx512f is available; every row holds at least `dst.len() / LANES` floats and there
        /// are at most LANES rows.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn pack_avx512(rows: &[&[f32]], dst: &mut [f32]) {
            let f = dst.len() / LANES;
            let full = f / LANES * LANES;
            let mut r = [_mm512_setzero_ps(); LANES];
            for f0 in (0..full).step_by(LANES) {
                for (v, row) in r.iter_mut().zip(rows) {
                    // SAFETY: f0 + LANES ≤ f ≤ row.len().
                    *v = unsafe { _mm512_loadu_ps(row.as_ptr().add(f0)) };
                    // Sixteen rows stream at once, more than the hardware prefetchers follow well:
                    // ask for each row's line 8 chunks ahead (measured 4-5 % off a layer).
                    _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(f0 + 8 * LANES).cast());
                }
                for v in r.iter_mut().skip(rows.len()) {
                    *v = _mm512_setzero_ps();
                }
                // SAFETY: avx512f is enabled here.
                unsafe { transpose(&mut r) };
                for (i, v) in r.iter().enumerate() {
                    // SAFETY: (f0 + i + 1)·LANES ≤ f·LANES ≤ dst.len().
                    unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((f0 + i) * LANES), *v) };
                }
            }
            for (i, px) in dst.chunks_exact_mut(LANES).enumerate().skip(full) {
                for (l, v) in px.iter_mut().enumerate() {
                    *v = rows.get(l).map_or(0.0, |r| r[i]);
                }
            }
        }

        /// [`super::unpack_rows`] with AVX-512.
        ///
        /// # Safety
        /// avx512f is available; at most LANES rows, all of one length `F`, and
        /// `src.len() ≥ F·LANES`.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn unpack_avx512(src: &[f32], rows: &mut [&mut [f32]]) {
            let f = rows.first().map_or(0, |r| r.len());
            let full = f / LANES * LANES;
            let mut r = [_mm512_setzero_ps(); LANES];
            for f0 in (0..full).step_by(LANES) {
                for (i, v) in r.iter_mut().enumerate() {
                    // SAFETY: (f0 + i + 1)·LANES ≤ f·LANES ≤ src.len().
                    *v = unsafe { _mm512_loadu_ps(src.as_ptr().add((f0 + i) * LANES)) };
                }
                // SAFETY: avx512f is enabled here.
                unsafe { transpose(&mut r) };
                for (row, v) in rows.iter_mut().zip(&r) {
                    // SAFETY: f0 + LANES ≤ f = row.len().
                    unsafe { _mm512_storeu_ps(row.as_mut_ptr().add(f0), *v) };
                    // As in pack, for writing (measured 3-6 % off a layer).
                    _mm_prefetch::<_MM_HINT_ET0>(row.as_ptr().wrapping_add(f0 + 8 * LANES).cast());
                }
            }
            for (l, row) in rows.iter_mut().enumerate() {
                for (i, v) in row.iter_mut().enumerate().skip(full) {
                    *v = src[i * LANES + l];
                }
            }
        }
    }

    /// Which compiled variant of the kernels to run on this CPU.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) enum Level {
        /// AVX-512 registers ([`Avx512`]).
        Avx512,
        /// [`Portable`] compiled for AVX2 and FMA.
        Avx2,
        /// [`Portable`] for the build's baseline target.
        Baseline,
    }

    /// The best variant this CPU runs (a test may ask for a lesser one). Only x86-64 has more
    /// than one.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn level() -> Level {
        let best = best_level();
        #[cfg(test)]
        if let Some(cap) = super::tests::hooks::level() {
            // A lesser level only: Baseline < Avx2 < Avx512.
            let rank = |l: Level| {
                [Level::Baseline, Level::Avx2, Level::Avx512]
                    .iter()
                    .position(|&x| x == l)
            };
            return if rank(cap) < rank(best) { cap } else { best };
        }
        best
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn best_level() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Baseline
    }

    /// Defines `$name(d, args…)`: checks the buffers with `$check`, then runs
    /// `$generic::<Avx512>` where AVX-512 is available, `$generic::<Portable>` compiled for AVX2
    /// where that is, and plain `$generic::<Portable>` elsewhere.
    macro_rules! dispatch {
        ($(#[$doc:meta])* $name:ident, $generic:ident, ($d:ident, $($arg:ident: $ty:ty),*), $check:expr) => {
            $(#[$doc])*
            pub(super) fn $name($d: &Dims, $($arg: $ty),*) {
                $check;
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn avx512($d: &Dims, $($arg: $ty),*) {
                        // SAFETY: forwarded from the caller.
                        unsafe { $generic::<Avx512>($d, $($arg),*) }
                    }
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2($d: &Dims, $($arg: $ty),*) {
                        // SAFETY: forwarded from the caller.
                        unsafe { $generic::<Portable>($d, $($arg),*) }
                    }
                    match level() {
                        // SAFETY: the feature was detected; the buffer sizes were checked above.
                        Level::Avx512 => return unsafe { avx512($d, $($arg),*) },
                        // SAFETY: as above.
                        Level::Avx2 => return unsafe { avx2($d, $($arg),*) },
                        Level::Baseline => {}
                    }
                }
                // SAFETY: the buffer sizes were checked above.
                unsafe { $generic::<Portable>($d, $($arg),*) }
            }
        };
    }

    dispatch!(
        /// One block forward: `yb = conv(xb, wf) + bias`.
        // wf: [c][p][q][o8], bias: (o8), xb: (C, H, W, L) -> yb: (o8, OH, OW, L)
        forward_block,
        forward_generic,
        (d, wf: &[f32], bias: &[f32], xb: &[f32], yb: &mut [f32]),
        {
            assert!(wf.len() >= d.c * d.k * d.k * d.o8 && bias.len() >= d.o8);
            assert!(xb.len() >= d.in_block(d.c) && yb.len() >= d.out_block());
        }
    );

    dispatch!(
        /// One block's `dW` contribution, added per lane: `dwp[o][c][p][q][l] += Σ_{i, j} dy·x`.
        // xb: (C, H, W, L), dyb: (o8, OH, OW, L) -> dwp: (o8, C, k, k, L)
        weight_grad_block,
        weight_grad_generic,
        (d, xb: &[f32], dyb: &[f32], dwp: &mut [f32]),
        {
            assert!(xb.len() >= d.in_block(d.c) && dyb.len() >= d.out_block());
            assert!(dwp.len() >= d.o8 * d.c * d.k * d.k * LANES);
        }
    );

    dispatch!(
        /// One block's input gradient: `dxb[c, h, w] = Σ_{o, p, q} wt[p][q][o][c]·dy[o, h − p, w − q]`.
        // wt: [p][q][o][c8], dyb: (O, OH, OW, L) -> dxb: (c8, H, W, L)
        input_grad_block,
        input_grad_generic,
        (d, wt: &[f32], dyb: &[f32], dxb: &mut [f32]),
        {
            assert!(wt.len() >= d.k * d.k * d.o * d.c8);
            assert!(dyb.len() >= d.o * d.oh * d.ow * LANES && dxb.len() >= d.in_block(d.c8));
        }
    );

    /// # Safety
    /// Buffers at least as long as [`forward_block`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn forward_generic<S: Simd>(d: &Dims, wf: &[f32], bias: &[f32], xb: &[f32], yb: &mut [f32]) {
        let (wf, bias, xb, yb) = (wf.as_ptr(), bias.as_ptr(), xb.as_ptr(), yb.as_mut_ptr());
        for o0 in (0..d.o8).step_by(CB) {
            for i in 0..d.oh {
                let mut j0 = 0;
                // SAFETY (all three): o0 + CB ≤ o8, i < OH and j0 + B ≤ OW, so every read is
                // inside xb's C planes and wf, every write inside yb's o8 planes.
                while j0 + 3 <= d.ow {
                    unsafe { forward_tile::<S, 3>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) };
                    j0 += 3;
                }
                match d.ow - j0 {
                    2 => unsafe { forward_tile::<S, 2>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) },
                    1 => unsafe { forward_tile::<S, 1>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) },
                    _ => {}
                }
            }
        }
    }

    /// Output channels `o0..o0 + CB` at pixels `(i, j0..j0 + B)`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn forward_tile<S: Simd, const B: usize>(
        d: &Dims,
        wf: *const f32,
        bias: *const f32,
        xb: *const f32,
        yb: *mut f32,
        o0: usize,
        i: usize,
        j0: usize,
    ) {
        // SAFETY: see forward_generic; indices stay within the shapes in its comment.
        unsafe {
            let mut acc = [[S::zero(); B]; CB];
            for (o, row) in acc.iter_mut().enumerate() {
                *row = [S::splat(*bias.add(o)); B];
            }
            for c in 0..d.c {
                for p in 0..d.k {
                    let xr = xb.add(((c * d.h + i + p) * d.w + j0) * LANES);
                    let wr = wf.add((c * d.k + p) * d.k * d.o8);
                    for q in 0..d.k {
                        let mut xs = [S::zero(); B];
                        for (b, v) in xs.iter_mut().enumerate() {
                            *v = S::load(xr.add((b + q) * LANES));
                        }
                        let wq = wr.add(q * d.o8);
                        for (o, row) in acc.iter_mut().enumerate() {
                            let wv = S::splat(*wq.add(o));
                            for (a, &xv) in row.iter_mut().zip(&xs) {
                                *a = a.mul_add(wv, xv);
                            }
                        }
                    }
                }
            }
            let plane = d.oh * d.ow;
            for (o, row) in acc.iter().enumerate() {
                let yr = yb.add(((o0 + o) * plane + i * d.ow + j0) * LANES);
                for (b, a) in row.iter().enumerate() {
                    a.store(yr.add(b * LANES));
                }
            }
        }
    }

    /// # Safety
    /// Buffers at least as long as [`weight_grad_block`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn weight_grad_generic<S: Simd>(d: &Dims, xb: &[f32], dyb: &[f32], dwp: &mut [f32]) {
        let (xb, dyb, dwp) = (xb.as_ptr(), dyb.as_ptr(), dwp.as_mut_ptr());
        for o0 in (0..d.o8).step_by(CB) {
            for c in 0..d.c {
                for p in 0..d.k {
                    let mut q0 = 0;
                    // SAFETY (all three): o0 + CB ≤ o8, c < C, p < k, q0 + QB ≤ k: reads stay in
                    // xb's C planes (i + p < H, j + q < W) and dyb's o8 planes, writes in dwp.
                    while q0 + 3 <= d.k {
                        unsafe { weight_grad_tile::<S, 3>(d, xb, dyb, dwp, o0, c, p, q0) };
                        q0 += 3;
                    }
                    match d.k - q0 {
                        2 => unsafe { weight_grad_tile::<S, 2>(d, xb, dyb, dwp, o0, c, p, q0) },
                        1 => unsafe { weight_grad_tile::<S, 1>(d, xb, dyb, dwp, o0, c, p, q0) },
                        _ => {}
                    }
                }
            }
        }
    }

    /// `dW[o0..o0 + CB, c, p, q0..q0 + QB]`, per lane, summed over every output pixel.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn weight_grad_tile<S: Simd, const QB: usize>(
        d: &Dims,
        xb: *const f32,
        dyb: *const f32,
        dwp: *mut f32,
        o0: usize,
        c: usize,
        p: usize,
        q0: usize,
    ) {
        // SAFETY: see weight_grad_generic.
        unsafe {
            let plane = d.oh * d.ow;
            let o_stride = d.c * d.k * d.k * LANES;
            let base = dwp.add((((o0 * d.c + c) * d.k + p) * d.k + q0) * LANES);
            let mut acc = [[S::zero(); QB]; CB];
            for (o, row) in acc.iter_mut().enumerate() {
                for (q, a) in row.iter_mut().enumerate() {
                    *a = S::load(base.add(o * o_stride + q * LANES));
                }
            }
            let dy0 = dyb.add(o0 * plane * LANES);
            for i in 0..d.oh {
                let xr = xb.add(((c * d.h + i + p) * d.w + q0) * LANES);
                let dr = dy0.add(i * d.ow * LANES);
                for j in 0..d.ow {
                    let mut xs = [S::zero(); QB];
                    for (q, v) in xs.iter_mut().enumerate() {
                        *v = S::load(xr.add((j + q) * LANES));
                    }
                    for (o, row) in acc.iter_mut().enumerate() {
                        let g = S::load(dr.add((o * plane + j) * LANES));
                        for (a, &xv) in row.iter_mut().zip(&xs) {
                            *a = a.mul_add(g, xv);
                        }
                    }
                }
            }
            for (o, row) in acc.iter().enumerate() {
                for (q, a) in row.iter().enumerate() {
                    a.store(base.add(o * o_stride + q * LANES));
                }
            }
        }
    }

    /// # Safety
    /// Buffers at least as long as [`input_grad_block`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn input_grad_generic<S: Simd>(d: &Dims, wt: &[f32], dyb: &[f32], dxb: &mut [f32]) {
        let (wt, dyb, dxb) = (wt.as_ptr(), dyb.as_ptr(), dxb.as_mut_ptr());
        for c0 in (0..d.c8).step_by(CB) {
            for h in 0..d.h {
                let mut w0 = 0;
                // SAFETY (all three): c0 + CB ≤ c8, h < H, w0 + B ≤ W; the tile reads dy only
                // at rows and columns inside OH × OW.
                while w0 + 3 <= d.w {
                    unsafe { input_grad_tile::<S, 3>(d, wt.add(c0), dyb, dxb, c0, h, w0) };
                    w0 += 3;
                }
                match d.w - w0 {
                    2 => unsafe { input_grad_tile::<S, 2>(d, wt.add(c0), dyb, dxb, c0, h, w0) },
                    1 => unsafe { input_grad_tile::<S, 1>(d, wt.add(c0), dyb, dxb, c0, h, w0) },
                    _ => {}
                }
            }
        }
    }

    /// Input channels `c0..c0 + CB` at pixels `(h, w0..w0 + B)`.
    #[inline(always)]
    unsafe fn input_grad_tile<S: Simd, const B: usize>(
        d: &Dims,
        wt: *const f32,
        dyb: *const f32,
        dxb: *mut f32,
        c0: usize,
        h: usize,
        w0: usize,
    ) {
        // SAFETY: see input_grad_generic. Output pixel (h − p, w0 + b − q) is read only when
        // inside OH × OW: rows by the range of p, columns by the range of q and the per-column
        // check on the partly covered q.
        unsafe {
            let mut acc = [[S::zero(); B]; CB];
            let (k, ow) = (d.k as isize, d.ow as isize);
            let w0i = w0 as isize;
            // Kernel rows p with 0 ≤ h − p < OH.
            let (p_lo, p_hi) = ((h + 1).saturating_sub(d.oh), d.k.min(h + 1));
            // Kernel columns q reaching dy for some b (0 ≤ w0 + b − q < OW) and for every b.
            let q_lo = (w0i - ow + 1).max(0);
            let q_hi = (w0i + B as isize).min(k);
            let full_lo = (w0i + B as isize - ow).max(0);
            let full_hi = (w0i + 1).min(k);
            let q_stride = d.o * d.c8;
            for p in p_lo..p_hi {
                let wp = wt.add(p * d.k * q_stride);
                for o in 0..d.o {
                    let dr = dyb.add(((o * d.oh + h - p) * d.ow) * LANES);
                    let wo = wp.add(o * d.c8);
                    for q in q_lo..q_hi {
                        let mut gs = [S::zero(); B];
                        if q >= full_lo && q < full_hi {
                            for (b, g) in gs.iter_mut().enumerate() {
                                *g = S::load(dr.offset((w0i + b as isize - q) * LANES as isize));
                            }
                        } else {
                            for (b, g) in gs.iter_mut().enumerate() {
                                let j = w0i + b as isize - q;
                                if j >= 0 && j < ow {
                                    *g = S::load(dr.offset(j * LANES as isize));
                                }
                            }
                        }
                        let wq = wo.add(q as usize * q_stride);
                        for (c, row) in acc.iter_mut().enumerate() {
                            let wv = S::splat(*wq.add(c));
                            for (a, &g) in row.iter_mut().zip(&gs) {
                                *a = a.mul_add(wv, g);
                            }
                        }
                    }
                }
            }
            let plane = d.h * d.w;
            for (c, row) in acc.iter().enumerate() {
                let xr = dxb.add(((c0 + c) * plane + h * d.w + w0) * LANES);
                for (b, a) in row.iter().enumerate() {
                    a.store(xr.add(b * LANES));
                }
            }
        }
    }

    // ---- Winograd F(3, 6) along image rows, for 6 × 6 kernels ----
    //
    // Each kernel row is a 1-D correlation of width 6; F(3, 6) computes 3 adjacent outputs of it
    // from a tile of 8 inputs with 8 products instead of 18: y = Aᵀ[(G·g) ⊙ (Bᵀ·d)]. Output row
    // i is cut into T = ⌈OW/3⌉ tiles; tile t reads input columns 3t..3t + 8 (zero past W) and
    // writes output columns 3t..3t + 3 (dropped past OW). With the transforms done once per
    // input row, output row or weight, a 6 × 6 layer costs 8·6 products per 3 outputs and input
    // channel instead of 36·3. The interpolation points are 0, ±1, ±2, ±1/2 and ∞, the set whose
    // f32 rounding stays at the level of the direct sum.
    //
    // Buffers of a block (all LANES-wide vectors, indices in vectors):
    // - V  = Bᵀ·x per (c, r, t):      vb[((ξ·C + c)·H + r)·T + t]
    // - M  = Σ_{c,p} U ⊙ V:            mb[((ξ·O8 + o)·OH + i)·T + t]   (dM = A·dy likewise)
    // - U  = G·w, as scalars:          forward uf[((ξ·C + c)·6 + p)·O8 + o],
    //                                  dx      ux[((ξ·O + o)·6 + p)·C8 + c]
    // - dU, per lane:                  dup[(((o·C + c)·6 + p)·8 + ξ)]
    // - dV of one input row r:         dvr[(ξ·CB + c)·T + t]
    // The transforms read and write one channel plane (H·W or OH·OW vectors) at a time, which
    // the caller moves between the rows and a small buffer. Backward is the exact adjoint: dM = A·dy, dU = Σ dM ⊙ V, dW = Gᵀ·dU, dV = Σ U ⊙ dM,
    // dx = B·dV (tiles overlap by 5 columns and add).

    /// Kernel width the Winograd path handles.
    pub(super) const WR: usize = 6;
    /// Outputs per tile.
    pub(super) const WM: usize = 3;
    /// Points per tile (`WM + WR − 1`).
    pub(super) const WA: usize = 8;

    /// G (8 × 6): the kernel transform, applied in f64 once per call.
    pub(super) const WG: [[f64; WR]; WA] = [
        [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [-2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0],
        [-2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0, 2.0 / 9.0],
        [1.0 / 90.0, 1.0 / 45.0, 2.0 / 45.0, 4.0 / 45.0, 8.0 / 45.0, 16.0 / 45.0],
        [
            1.0 / 90.0,
            -1.0 / 45.0,
            2.0 / 45.0,
            -4.0 / 45.0,
            8.0 / 45.0,
            -16.0 / 45.0,
        ],
        [32.0 / 45.0, 16.0 / 45.0, 8.0 / 45.0, 4.0 / 45.0, 2.0 / 45.0, 1.0 / 45.0],
        [
            32.0 / 45.0,
            -16.0 / 45.0,
            8.0 / 45.0,
            -4.0 / 45.0,
            2.0 / 45.0,
            -1.0 / 45.0,
        ],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ];

    /// Bᵀ (8 × 8), for the tests; [`bt`] and [`b`] apply it and its transpose.
    #[cfg(test)]
    pub(super) const WBT: [[f64; WA]; WA] = [
        [-1.0, 0.0, 5.25, 0.0, -5.25, 0.0, 1.0, 0.0],
        [0.0, 1.0, 1.0, -4.25, -4.25, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 4.25, -4.25, -1.0, 1.0, 0.0],
        [0.0, 0.5, 0.25, -2.5, -1.25, 2.0, 1.0, 0.0],
        [0.0, -0.5, 0.25, 2.5, -1.25, -2.0, 1.0, 0.0],
        [0.0, 2.0, 4.0, -2.5, -5.0, 0.5, 1.0, 0.0],
        [0.0, -2.0, 4.0, 2.5, -5.0, -0.5, 1.0, 0.0],
        [0.0, -1.0, 0.0, 5.25, 0.0, -5.25, 0.0, 1.0],
    ];

    /// Aᵀ (3 × 8), for the tests; [`at`] and [`a`] apply it and its transpose.
    #[cfg(test)]
    pub(super) const WAT: [[f64; WA]; WM] = [
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.25, 0.25, 1.0],
    ];

    /// Tiles per output row.
    pub(super) fn tiles(d: &Dims) -> usize {
        d.ow.div_ceil(WM)
    }

    /// `Bᵀ·d`, with the even and odd columns paired (26 operations instead of 44).
    #[inline(always)]
    fn bt<S: Simd>(d: [S; WA]) -> [S; WA] {
        let x0 = d[6].sub(d[0]).add_scaled(5.25, d[2].sub(d[4]));
        let x7 = d[7].sub(d[1]).add_scaled(5.25, d[3].sub(d[5]));
        let e1 = d[2].add(d[6]).add_scaled(-4.25, d[4]);
        let o1 = d[1].add(d[5]).add_scaled(-4.25, d[3]);
        let e2 = d[6].add_scaled(0.25, d[2]).add_scaled(-1.25, d[4]);
        let o2 = S::zero()
            .add_scaled(0.5, d[1])
            .add_scaled(-2.5, d[3])
            .add_scaled(2.0, d[5]);
        let e3 = d[6].add_scaled(4.0, d[2]).add_scaled(-5.0, d[4]);
        let o3 = S::zero()
            .add_scaled(2.0, d[1])
            .add_scaled(-2.5, d[3])
            .add_scaled(0.5, d[5]);
        [
            x0,
            e1.add(o1),
            e1.sub(o1),
            e2.add(o2),
            e2.sub(o2),
            e3.add(o3),
            e3.sub(o3),
            x7,
        ]
    }

    /// `B·v`: the adjoint of [`bt`].
    #[inline(always)]
    fn b<S: Simd>(v: [S; WA]) -> [S; WA] {
        let (s1, t1) = (v[1].add(v[2]), v[1].sub(v[2]));
        let (s2, t2) = (v[3].add(v[4]), v[3].sub(v[4]));
        let (s3, t3) = (v[5].add(v[6]), v[5].sub(v[6]));
        [
            S::zero().sub(v[0]),
            t1.add_scaled(0.5, t2).add_scaled(2.0, t3).sub(v[7]),
            s1.add_scaled(5.25, v[0]).add_scaled(0.25, s2).add_scaled(4.0, s3),
            S::zero()
                .add_scaled(-4.25, t1)
                .add_scaled(-2.5, t2.add(t3))
                .add_scaled(5.25, v[7]),
            S::zero()
                .add_scaled(-5.25, v[0])
                .add_scaled(-4.25, s1)
                .add_scaled(-1.25, s2)
                .add_scaled(-5.0, s3),
            t1.add_scaled(2.0, t2).add_scaled(0.5, t3).add_scaled(-5.25, v[7]),
            v[0].add(s1).add(s2).add(s3),
            v[7],
        ]
    }

    /// `Aᵀ·m`, plus `bias`.
    #[inline(always)]
    fn at<S: Simd>(m: [S; WA], bias: S) -> [S; WM] {
        let (s1, t1) = (m[1].add(m[2]), m[1].sub(m[2]));
        let (s2, t2) = (m[3].add(m[4]), m[3].sub(m[4]));
        let (s3, t3) = (m[5].add(m[6]), m[5].sub(m[6]));
        [
            bias.add(m[0]).add(s1).add(s2).add(s3),
            bias.add(t1).add_scaled(2.0, t2).add_scaled(0.5, t3),
            bias.add(s1).add_scaled(4.0, s2).add_scaled(0.25, s3).add(m[7]),
        ]
    }

    /// `A·g`: the adjoint of [`at`].
    #[inline(always)]
    fn a<S: Simd>(g: [S; WM]) -> [S; WA] {
        let e1 = g[0].add(g[2]);
        let e2 = g[0].add_scaled(4.0, g[2]);
        let e3 = g[0].add_scaled(0.25, g[2]);
        let (h1, h2) = (g[1].add(g[1]), S::zero().add_scaled(0.5, g[1]));
        [
            g[0],
            e1.add(g[1]),
            e1.sub(g[1]),
            e2.add(h1),
            e2.sub(h1),
            e3.add(h2),
            e3.sub(h2),
            g[2],
        ]
    }

    /// The transforms on plain arrays, for the tests.
    #[cfg(test)]
    pub(super) mod plain {
        use super::{Portable, Simd, LANES, WA, WM};

        fn lift<const K: usize>(v: [f32; K]) -> [Portable; K] {
            v.map(|e| Portable([e; LANES]))
        }

        fn lower<const K: usize>(v: [Portable; K]) -> [f32; K] {
            v.map(|e| e.0[0])
        }

        pub fn bt(d: [f32; WA]) -> [f32; WA] {
            lower(super::bt(lift(d)))
        }

        pub fn b(v: [f32; WA]) -> [f32; WA] {
            lower(super::b(lift(v)))
        }

        pub fn at(m: [f32; WA]) -> [f32; WM] {
            lower(super::at(lift(m), Portable::zero()))
        }

        pub fn a(g: [f32; WM]) -> [f32; WA] {
            lower(super::a(lift(g)))
        }
    }

    dispatch!(
        /// `V = Bᵀ·x` for every row and tile of input channel `c`.
        // xp: (H, W, L) -> vb[:, c]: (8, ·, H, T, L)
        wino_input_transform,
        wino_input_transform_generic,
        (d, xp: &[f32], c: usize, vb: &mut [f32]),
        {
            assert!(d.k == WR && c < d.c && xp.len() >= d.h * d.w * LANES);
            assert!(vb.len() >= WA * d.c * d.h * tiles(d) * LANES);
        }
    );

    /// # Safety
    /// Buffers as [`wino_input_transform`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_input_transform_generic<S: Simd>(d: &Dims, xp: &[f32], c: usize, vb: &mut [f32]) {
        let t = tiles(d);
        let plane = d.c * d.h * t;
        let (xp, vb) = (xp.as_ptr(), vb.as_mut_ptr());
        // SAFETY: columns read are < W, rows < H; writes index < 8·plane.
        unsafe {
            for r in 0..d.h {
                let row = xp.add(r * d.w * LANES);
                for tt in 0..t {
                    let col0 = tt * WM;
                    let mut ds = [S::zero(); WA];
                    if col0 + WA <= d.w {
                        for (u, v) in ds.iter_mut().enumerate() {
                            *v = S::load(row.add((col0 + u) * LANES));
                        }
                    } else {
                        for (u, v) in ds.iter_mut().enumerate().take(d.w - col0) {
                            *v = S::load(row.add((col0 + u) * LANES));
                        }
                    }
                    let at = (c * d.h + r) * t + tt;
                    for (xi, v) in bt(ds).iter().enumerate() {
                        v.store(vb.add((xi * plane + at) * LANES));
                    }
                }
            }
        }
    }

    dispatch!(
        /// `M = Σ_{c, p} U ⊙ V` for every output row and tile.
        // uf: (8, C, 6, o8), vb: (8, C, H, T, L) -> mb: (8, o8, OH, T, L)
        wino_forward_products,
        wino_forward_products_generic,
        (d, uf: &[f32], vb: &[f32], mb: &mut [f32]),
        {
            assert!(d.k == WR && uf.len() >= WA * d.c * WR * d.o8);
            assert!(vb.len() >= WA * d.c * d.h * tiles(d) * LANES);
            assert!(mb.len() >= WA * d.o8 * d.oh * tiles(d) * LANES);
        }
    );

    /// # Safety
    /// Buffers as [`wino_forward_products`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_forward_products_generic<S: Simd>(d: &Dims, uf: &[f32], vb: &[f32], mb: &mut [f32]) {
        let t = tiles(d);
        let n = d.oh * t;
        let (uf, vb, mb) = (uf.as_ptr(), vb.as_ptr(), mb.as_mut_ptr());
        for xi in 0..WA {
            // SAFETY (all): offsets within the shapes checked by wino_forward_products; the tile
            // reads V at p·T + j + b < H·T within each channel's plane.
            let (u, v) = unsafe { (uf.add(xi * d.c * WR * d.o8), vb.add(xi * d.c * d.h * t * LANES)) };
            for o0 in (0..d.o8).step_by(CB) {
                let m = unsafe { mb.add((xi * d.o8 + o0) * n * LANES) };
                let mut j = 0;
                while j + 3 <= n {
                    unsafe { wino_forward_tile::<S, 3>(d, u.add(o0), v, m, j) };
                    j += 3;
                }
                match n - j {
                    2 => unsafe { wino_forward_tile::<S, 2>(d, u.add(o0), v, m, j) },
                    1 => unsafe { wino_forward_tile::<S, 1>(d, u.add(o0), v, m, j) },
                    _ => {}
                }
            }
        }
    }

    /// For one point ξ: `M[o0 + o][j + b] = Σ_{c, p} U[c][p][o0 + o]·V[c][p·T + j + b]`, where
    /// `j` runs over (output row, tile) pairs.
    #[inline(always)]
    unsafe fn wino_forward_tile<S: Simd, const B: usize>(
        d: &Dims,
        u: *const f32,
        v: *const f32,
        m: *mut f32,
        j: usize,
    ) {
        let t = tiles(d);
        let n = d.oh * t;
        // SAFETY: see wino_forward_products_generic.
        unsafe {
            let mut acc = [[S::zero(); B]; CB];
            for c in 0..d.c {
                for p in 0..WR {
                    let vp = v.add((c * d.h * t + p * t + j) * LANES);
                    let up = u.add((c * WR + p) * d.o8);
                    let mut xs = [S::zero(); B];
                    for (bb, x) in xs.iter_mut().enumerate() {
                        *x = S::load(vp.add(bb * LANES));
                    }
                    for (o, row) in acc.iter_mut().enumerate() {
                        let w = S::splat(*up.add(o));
                        for (a, &x) in row.iter_mut().zip(&xs) {
                            *a = a.mul_add(w, x);
                        }
                    }
                }
            }
            for (o, row) in acc.iter().enumerate() {
                for (bb, a) in row.iter().enumerate() {
                    a.store(m.add((o * n + j + bb) * LANES));
                }
            }
        }
    }

    dispatch!(
        /// `y = Aᵀ·M + bias` for every row and tile of output channel `o`.
        // mb[:, o]: (8, ·, OH, T, L) -> yp: (OH, OW, L)
        wino_output_transform,
        wino_output_transform_generic,
        (d, mb: &[f32], o: usize, bias: f32, yp: &mut [f32]),
        {
            assert!(d.k == WR && o < d.o8 && yp.len() >= d.oh * d.ow * LANES);
            assert!(mb.len() >= WA * d.o8 * d.oh * tiles(d) * LANES);
        }
    );

    /// # Safety
    /// Buffers as [`wino_output_transform`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_output_transform_generic<S: Simd>(d: &Dims, mb: &[f32], o: usize, bias: f32, yp: &mut [f32]) {
        let t = tiles(d);
        let n = d.oh * t;
        let (mb, yp) = (mb.as_ptr(), yp.as_mut_ptr());
        let bias = S::splat(bias);
        // SAFETY: reads within mb's 8·o8·n vectors; writes only columns < OW of the plane.
        unsafe {
            for i in 0..d.oh {
                for tt in 0..t {
                    let mut ms = [S::zero(); WA];
                    for (xi, m) in ms.iter_mut().enumerate() {
                        *m = S::load(mb.add(((xi * d.o8 + o) * n + i * t + tt) * LANES));
                    }
                    let out = yp.add((i * d.ow + tt * WM) * LANES);
                    for (v, y) in at(ms, bias).iter().enumerate().take(d.ow - tt * WM) {
                        y.store(out.add(v * LANES));
                    }
                }
            }
        }
    }

    dispatch!(
        /// `dM = A·dy` for every row and tile of output channel `o` (columns past OW count as
        /// zero), and `db[l] += Σ dy[·][l]` on the way.
        // dyp: (OH, OW, L) -> dmb[:, o]: (8, ·, OH, T, L), db: (L)
        wino_grad_transform,
        wino_grad_transform_generic,
        (d, dyp: &[f32], o: usize, dmb: &mut [f32], db: &mut [f32]),
        {
            assert!(d.k == WR && o < d.o8 && dyp.len() >= d.oh * d.ow * LANES);
            assert!(dmb.len() >= WA * d.o8 * d.oh * tiles(d) * LANES && db.len() >= LANES);
        }
    );

    /// # Safety
    /// Buffers as [`wino_grad_transform`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_grad_transform_generic<S: Simd>(d: &Dims, dyp: &[f32], o: usize, dmb: &mut [f32], db: &mut [f32]) {
        let t = tiles(d);
        let n = d.oh * t;
        let (dyp, dmb) = (dyp.as_ptr(), dmb.as_mut_ptr());
        // SAFETY: reads only columns < OW of the plane (each once); writes within dmb and db.
        unsafe {
            let mut sum = S::load(db.as_ptr());
            for i in 0..d.oh {
                for tt in 0..t {
                    let row = dyp.add((i * d.ow + tt * WM) * LANES);
                    let mut gs = [S::zero(); WM];
                    for (v, g) in gs.iter_mut().enumerate().take(d.ow - tt * WM) {
                        *g = S::load(row.add(v * LANES));
                        sum = sum.add(*g);
                    }
                    for (xi, m) in a(gs).iter().enumerate() {
                        m.store(dmb.add(((xi * d.o8 + o) * n + i * t + tt) * LANES));
                    }
                }
            }
            sum.store(db.as_mut_ptr());
        }
    }

    dispatch!(
        /// `part[l] += Σ_pixels plane[pixel][l]` over `count` pixels.
        // plane: (count, L) -> part: (L)
        plane_sum,
        plane_sum_generic,
        (d, plane: &[f32], part: &mut [f32]),
        {
            let _ = d;
            assert!(plane.len().is_multiple_of(LANES) && part.len() >= LANES);
        }
    );

    /// # Safety
    /// Buffers as [`plane_sum`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn plane_sum_generic<S: Simd>(_d: &Dims, plane: &[f32], part: &mut [f32]) {
        // SAFETY: every chunk holds LANES floats; part holds at least LANES.
        unsafe {
            // Four partial sums: one add chain would wait on its latency.
            let mut acc = [S::zero(); 4];
            let mut chunks = plane.chunks_exact(4 * LANES);
            for c in chunks.by_ref() {
                for (k, a) in acc.iter_mut().enumerate() {
                    *a = a.add(S::load(c.as_ptr().add(k * LANES)));
                }
            }
            let mut sum = S::load(part.as_ptr()).add(acc[0].add(acc[1])).add(acc[2].add(acc[3]));
            for c in chunks.remainder().chunks_exact(LANES) {
                sum = sum.add(S::load(c.as_ptr()));
            }
            sum.store(part.as_mut_ptr());
        }
    }

    dispatch!(
        /// One block's `dU` contribution, per lane: `dup[o][c][p][ξ] += Σ_j dM[ξ][o][j]·V[ξ][c][p·T + j]`.
        // vb: (8, C, H, T, L), dmb: (8, o8, OH, T, L) -> dup: (o8, C, 6, 8, L)
        wino_weight_grad,
        wino_weight_grad_generic,
        (d, vb: &[f32], dmb: &[f32], dup: &mut [f32]),
        {
            assert!(d.k == WR && vb.len() >= WA * d.c * d.h * tiles(d) * LANES);
            assert!(dmb.len() >= WA * d.o8 * d.oh * tiles(d) * LANES);
            assert!(dup.len() >= d.o8 * d.c * WR * WA * LANES);
        }
    );

    /// # Safety
    /// Buffers as [`wino_weight_grad`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_weight_grad_generic<S: Simd>(d: &Dims, vb: &[f32], dmb: &[f32], dup: &mut [f32]) {
        let t = tiles(d);
        let n = d.oh * t;
        let (vb, dmb, dup) = (vb.as_ptr(), dmb.as_ptr(), dup.as_mut_ptr());
        // SAFETY: V is read at p·T + j < H·T within channel c's plane, dM within its o8 planes,
        // dU within (o8, C, 6, 8).
        unsafe {
            for xi in 0..WA {
                for o0 in (0..d.o8).step_by(CB) {
                    let g = dmb.add((xi * d.o8 + o0) * n * LANES);
                    for c in 0..d.c {
                        let v = vb.add((xi * d.c + c) * d.h * t * LANES);
                        for p0 in (0..WR).step_by(3) {
                            let mut acc = [[S::zero(); 3]; CB];
                            let at = |o: usize, pp: usize| ((((o0 + o) * d.c + c) * WR + p0 + pp) * WA + xi) * LANES;
                            for (o, row) in acc.iter_mut().enumerate() {
                                for (pp, a) in row.iter_mut().enumerate() {
                                    *a = S::load(dup.add(at(o, pp)));
                                }
                            }
                            for j in 0..n {
                                let mut xs = [S::zero(); 3];
                                for (pp, x) in xs.iter_mut().enumerate() {
                                    *x = S::load(v.add(((p0 + pp) * t + j) * LANES));
                                }
                                for (o, row) in acc.iter_mut().enumerate() {
                                    let gv = S::load(g.add((o * n + j) * LANES));
                                    for (a, &x) in row.iter_mut().zip(&xs) {
                                        *a = a.mul_add(gv, x);
                                    }
                                }
                            }
                            for (o, row) in acc.iter().enumerate() {
                                for (pp, a) in row.iter().enumerate() {
                                    a.store(dup.add(at(o, pp)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    dispatch!(
        /// One block's input gradient: `dV[ξ][c][r][t] = Σ_{o, p} U[ξ][o][p][c]·dM[ξ][o][r − p][t]`
        /// over the rows inside the output, then `dx = B·dV`, overlapping tiles added.
        // ux: (8, O, 6, c8), dmb: (8, o8, OH, T, L) -> dvr: (8, CB, T, L) scratch, dxb: (c8, H, W, L)
        wino_input_grad,
        wino_input_grad_generic,
        (d, ux: &[f32], dmb: &[f32], dvr: &mut [f32], dxb: &mut [f32]),
        {
            assert!(d.k == WR && ux.len() >= WA * d.o * WR * d.c8);
            assert!(dmb.len() >= WA * d.o8 * d.oh * tiles(d) * LANES);
            assert!(dvr.len() >= WA * CB * tiles(d) * LANES && dxb.len() >= d.in_block(d.c8));
        }
    );

    /// # Safety
    /// Buffers as [`wino_input_grad`] checks; `S` usable on this CPU.
    #[inline(always)]
    unsafe fn wino_input_grad_generic<S: Simd>(d: &Dims, ux: &[f32], dmb: &[f32], dvr: &mut [f32], dxb: &mut [f32]) {
        let t = tiles(d);
        let n = d.oh * t;
        let (ux, dmb, dvr, dxb) = (ux.as_ptr(), dmb.as_ptr(), dvr.as_mut_ptr(), dxb.as_mut_ptr());
        for c0 in (0..d.c8).step_by(CB) {
            for r in 0..d.h {
                // Kernel rows p with 0 ≤ r − p < OH (never empty: H = OH + 5).
                let (p_lo, p_hi) = ((r + 1).saturating_sub(d.oh), WR.min(r + 1));
                for xi in 0..WA {
                    // SAFETY (all): dM rows r − p < OH, tiles < T; dV within (8, CB, T).
                    let (u, g, out) = unsafe {
                        (
                            ux.add(xi * d.o * WR * d.c8 + c0),
                            dmb.add(xi * d.o8 * n * LANES),
                            dvr.add(xi * CB * t * LANES),
                        )
                    };
                    let mut t0 = 0;
                    while t0 + 3 <= t {
                        unsafe { wino_input_grad_tile::<S, 3>(d, u, g, out, r, (p_lo, p_hi), t0) };
                        t0 += 3;
                    }
                    match t - t0 {
                        2 => unsafe { wino_input_grad_tile::<S, 2>(d, u, g, out, r, (p_lo, p_hi), t0) },
                        1 => unsafe { wino_input_grad_tile::<S, 1>(d, u, g, out, r, (p_lo, p_hi), t0) },
                        _ => {}
                    }
                }
                // dx = B·dV, tile by tile from the left: a tile's first 3 columns are final once
                // it is added (the next tile starts 3 columns on), so the overlap stays in
                // registers. 3T + 5 ≥ W, so every column is written; those past W are dropped.
                // SAFETY: dV within (8, CB, T); dx columns < W, rows < H, channels < c8.
                unsafe {
                    for c in 0..CB {
                        let dst = dxb.add(((c0 + c) * d.h + r) * d.w * LANES);
                        let mut win = [S::zero(); WA];
                        for tt in 0..t {
                            let mut vs = [S::zero(); WA];
                            for (xi, v) in vs.iter_mut().enumerate() {
                                *v = S::load(dvr.add(((xi * CB + c) * t + tt) * LANES));
                            }
                            for (w, u) in win.iter_mut().zip(b(vs)) {
                                *w = w.add(u);
                            }
                            for (v, w) in win.iter().enumerate().take(WM) {
                                w.store(dst.add((tt * WM + v) * LANES));
                            }
                            win = [win[3], win[4], win[5], win[6], win[7], S::zero(), S::zero(), S::zero()];
                        }
                        for (v, w) in win.iter().enumerate().take(d.w - t * WM) {
                            w.store(dst.add((t * WM + v) * LANES));
                        }
                    }
                }
            }
        }
    }

    /// For one point ξ and input row r: `dV[c][t0 + b] = Σ_o Σ_{p ∈ ps} U[o][p][c0 + c]·dM[o][r − p][t0 + b]`.
    #[inline(always)]
    unsafe fn wino_input_grad_tile<S: Simd, const B: usize>(
        d: &Dims,
        u: *const f32,
        g: *const f32,
        out: *mut f32,
        r: usize,
        ps: (usize, usize),
        t0: usize,
    ) {
        let t = tiles(d);
        // SAFETY: see wino_input_grad_generic.
        unsafe {
            let mut acc = [[S::zero(); B]; CB];
            for o in 0..d.o {
                for p in ps.0..ps.1 {
                    let gp = g.add(((o * d.oh + r - p) * t + t0) * LANES);
                    let up = u.add((o * WR + p) * d.c8);
                    let mut xs = [S::zero(); B];
                    for (bb, x) in xs.iter_mut().enumerate() {
                        *x = S::load(gp.add(bb * LANES));
                    }
                    for (c, row) in acc.iter_mut().enumerate() {
                        let w = S::splat(*up.add(c));
                        for (a, &x) in row.iter_mut().zip(&xs) {
                            *a = a.mul_add(w, x);
                        }
                    }
                }
            }
            for (c, row) in acc.iter().enumerate() {
                for (bb, a) in row.iter().enumerate() {
                    a.store(out.add((c * t + t0 + bb) * LANES));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};
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
                        y.iter().zip(r.iter()).map(|(&a, &c)| a as f64 * c as f64).sum::<f64>()
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
                y.iter().zip(r.iter()).map(|(&a, &c)| a as f64 * c as f64).sum::<f64>()
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
        use super::super::kernels::Level;
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
    const PATHS: [(Option<kernels::Level>, bool, &str); 6] = [
        (None, false, "best"),
        (Some(kernels::Level::Avx2), false, "avx2"),
        (Some(kernels::Level::Baseline), false, "baseline"),
        (None, true, "direct"),
        (Some(kernels::Level::Avx2), true, "avx2 direct"),
        (Some(kernels::Level::Baseline), true, "baseline direct"),
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
    fn winograd_matrices_compute_the_row_correlation() {
        use kernels::{WA, WAT, WBT, WG, WM, WR};
        let g = random(21, (1, WR), 1.0);
        let x = random(22, (1, WA), 1.0);
        let u: Vec<f64> = (0..WA)
            .map(|xi| (0..WR).map(|q| WG[xi][q] * g[[0, q]] as f64).sum())
            .collect();
        let v: Vec<f64> = (0..WA)
            .map(|xi| (0..WA).map(|c| WBT[xi][c] * x[[0, c]] as f64).sum())
            .collect();
        for j in 0..WM {
            let y: f64 = (0..WA).map(|xi| WAT[j][xi] * u[xi] * v[xi]).sum();
            let direct: f64 = (0..WR).map(|q| g[[0, q]] as f64 * x[[0, j + q]] as f64).sum();
            assert!((y - direct).abs() < 1e-12, "output {j}: winograd {y}, direct {direct}");
        }
    }

    #[test]
    fn hand_written_transforms_match_the_matrices() {
        use kernels::{plain, WA, WAT, WBT, WM};
        let x = random(23, (1, WA), 1.0);
        let x: [f32; WA] = std::array::from_fn(|i| x[[0, i]]);
        let close = |a: f32, b: f64, what: &str| assert!((a as f64 - b).abs() < 1e-5, "{what}: {a} vs {b}");
        for (xi, &v) in plain::bt(x).iter().enumerate() {
            close(
                v,
                (0..WA).map(|c| WBT[xi][c] * x[c] as f64).sum(),
                &format!("Bᵀ·x [{xi}]"),
            );
        }
        for (c, &v) in plain::b(x).iter().enumerate() {
            close(
                v,
                (0..WA).map(|xi| WBT[xi][c] * x[xi] as f64).sum(),
                &format!("B·x [{c}]"),
            );
        }
        for (j, &v) in plain::at(x).iter().enumerate() {
            close(
                v,
                (0..WA).map(|xi| WAT[j][xi] * x[xi] as f64).sum(),
                &format!("Aᵀ·x [{j}]"),
            );
        }
        let g: [f32; WM] = [x[0], x[1], x[2]];
        for (xi, &v) in plain::a(g).iter().enumerate() {
            close(
                v,
                (0..WM).map(|j| WAT[j][xi] * g[j] as f64).sum(),
                &format!("A·g [{xi}]"),
            );
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
