//! 2-D convolution as PyTorch's `nn.Conv2d` with stride 1 and no padding:
//! `y[o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[c, i + p, j + q]`.
//!
//! At the layer boundary every row is one sample in PyTorch's order: `x` rows are `(C, H, W)`
//! flattened, `y` rows `(O, OH, OW)`, so a flatten after the last convolution is PyTorch's. The
//! weight is `(O, C·k·k)`, PyTorch's `(O, C, kh, kw)` flattened; the bias `(O)`.
//!
//! How it is computed: direct convolution with the batch in the SIMD lanes. Each call walks
//! the rows in blocks of [`LANES`] samples, transposes a block into `(C·H·W, 16)` ("pixel-major,
//! sample-minor"), runs the kernels there and transposes the result back. With 16 samples in a
//! vector every lane does useful work whatever the image and kernel sizes (23, 18, 13 and 8
//! pixel rows do not tile a vector of pixels), no im2col matrix is built (the 36-fold copy of the
//! input would cost more memory traffic than the 8-output-channel products it feeds), and each
//! weight is one broadcast reused across a few output pixels. The kernels hold 8 channels × 3
//! pixels (or 8 output channels × 3 kernel columns for `dW`) of accumulators in registers:
//!
//! - forward: for each output pixel, `Σ_{c, p, q}` with the 8 output channels in registers;
//! - `dW`: per `(c, p)` and 3 kernel columns, the sum over every output pixel, kept per lane in
//!   the scratch buffer and reduced over lanes once per call;
//! - `dx`: the "full" correlation of `dy` with the kernel, `dx[c, h, w] = Σ_{o, p, q}
//!   W[o, c, p, q] · dy[o, h − p, w − q]`, visiting only taps that land inside `dy`, so no
//!   zero padding is multiplied.
//!
//! An AVX-512 build of the kernels is picked at run time; elsewhere the same code runs on plain
//! arrays. [`forward_naive`] and [`backward_naive`] are the direct loops the fast path is held to.
//! Everything is single-threaded: the trainer runs one batch shard per thread.

use ndarray::{s, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Samples per block: the lanes of one vector.
pub const LANES: usize = 16;

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
    mut y: ArrayViewMut2<f32>,
    geom: &Conv2dGeometry,
    scratch: &mut Vec<f32>,
) {
    let d = Dims::new(geom);
    let n = x.nrows();
    assert_eq!(x.ncols(), geom.in_len(), "conv2d forward: input width");
    assert_eq!(w.dim(), geom.weight_shape(), "conv2d forward: weight shape");
    assert_eq!(b.len(), d.o, "conv2d forward: bias length");
    assert_eq!(y.dim(), (n, geom.out_len()), "conv2d forward: output shape");
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
        kernels::forward_block(&d, wf, bias, xb, yb);
        unpack(yb, y.view_mut(), n0, rows);
    }
}

/// Adds `dW += Σ dy ⋆ x` and `db += Σ dy` over the batch and every output pixel; writes
/// `dx = dy ⋆ W` (the full correlation) when asked. `scratch` as for [`forward`].
// x: (N, C·H·W), w: (O, C·k·k), dy: (N, O·OH·OW) -> dw: (O, C·k·k), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut db: ArrayViewMut1<f32>,
    mut dx: Option<ArrayViewMut2<f32>>,
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
        for (o, part) in dbp.chunks_exact_mut(LANES).enumerate() {
            let plane = &dyb[o * d.oh * d.ow * LANES..(o + 1) * d.oh * d.ow * LANES];
            for px in plane.chunks_exact(LANES) {
                for (s, &v) in part.iter_mut().zip(px) {
                    *s += v;
                }
            }
        }
        kernels::weight_grad_block(&d, xb, dyb, dwp);
        if let Some(dx) = dx.as_mut() {
            kernels::input_grad_block(&d, wt, dyb, dxb);
            unpack(dxb, dx.view_mut(), n0, rows);
        }
    }
    for ((o, col), g) in dw.indexed_iter_mut() {
        let part = &dwp[(o * cols + col) * LANES..][..LANES];
        *g += part.iter().sum::<f32>();
    }
    for (o, g) in db.iter_mut().enumerate() {
        *g += dbp[o * LANES..][..LANES].iter().sum::<f32>();
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
            let mut r = self.0;
            for l in 0..LANES {
                r[l] += a.0[l] * b.0[l];
            }
            Portable(r)
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
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// `dst[f·LANES + l] = rows[l][f]` for every `f < dst.len() / LANES`, zero for the lanes
    /// past `rows.len()`.
    // rows: (≤ LANES, F) -> dst: (F, LANES)
    pub(super) fn pack_rows(rows: &[&[f32]], dst: &mut [f32]) {
        let f = dst.len() / LANES;
        assert!(rows.len() <= LANES && rows.iter().all(|r| r.len() >= f));
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
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
        if has_avx512() {
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
                }
            }
            for (l, row) in rows.iter_mut().enumerate() {
                for (i, v) in row.iter_mut().enumerate().skip(full) {
                    *v = src[i * LANES + l];
                }
            }
        }
    }

    /// Defines `$name(d, args…)` that checks the buffers with `$check`, then runs
    /// `$generic::<Avx512>` where AVX-512 is available and `$generic::<Portable>` elsewhere.
    macro_rules! dispatch {
        ($(#[$doc:meta])* $name:ident, $avx:ident, $generic:ident, ($d:ident, $($arg:ident: $ty:ty),*), $check:expr) => {
            $(#[$doc])*
            pub(super) fn $name($d: &Dims, $($arg: $ty),*) {
                $check;
                #[cfg(target_arch = "x86_64")]
                if has_avx512() {
                    // SAFETY: avx512f was detected; the buffer sizes were checked above.
                    unsafe { $avx($d, $($arg),*) };
                    return;
                }
                // SAFETY: the buffer sizes were checked above.
                unsafe { $generic::<Portable>($d, $($arg),*) }
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn $avx($d: &Dims, $($arg: $ty),*) {
                // SAFETY: forwarded from the caller.
                unsafe { $generic::<Avx512>($d, $($arg),*) }
            }
        };
    }

    dispatch!(
        /// One block forward: `yb = conv(xb, wf) + bias`.
        // wf: [c][p][q][o8], bias: (o8), xb: (C, H, W, L) -> yb: (o8, OH, OW, L)
        forward_block,
        forward_block_avx512,
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
        weight_grad_block_avx512,
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
        input_grad_block_avx512,
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

    /// Small odd shapes: channel counts below, at and above the register block, kernels from
    /// 1 to 6, square and non-square inputs, sample counts around a block.
    const SHAPES: [(usize, Conv2dGeometry); 7] = [
        (
            3,
            Conv2dGeometry {
                in_channels: 1,
                in_h: 5,
                in_w: 7,
                out_channels: 2,
                kernel: 3,
            },
        ),
        (
            5,
            Conv2dGeometry {
                in_channels: 2,
                in_h: 4,
                in_w: 3,
                out_channels: 3,
                kernel: 2,
            },
        ),
        (
            2,
            Conv2dGeometry {
                in_channels: 3,
                in_h: 6,
                in_w: 5,
                out_channels: 1,
                kernel: 1,
            },
        ),
        (
            1,
            Conv2dGeometry {
                in_channels: 1,
                in_h: 7,
                in_w: 9,
                out_channels: 9,
                kernel: 6,
            },
        ),
        (
            17,
            Conv2dGeometry {
                in_channels: 9,
                in_h: 5,
                in_w: 6,
                out_channels: 4,
                kernel: 4,
            },
        ),
        (
            2,
            Conv2dGeometry {
                in_channels: 2,
                in_h: 8,
                in_w: 8,
                out_channels: 8,
                kernel: 5,
            },
        ),
        (
            3,
            Conv2dGeometry {
                in_channels: 8,
                in_h: 11,
                in_w: 10,
                out_channels: 8,
                kernel: 6,
            },
        ),
    ];

    #[test]
    fn gradients_match_finite_differences() {
        for (s, &(n, g)) in SHAPES.iter().enumerate() {
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
            let loss = |x: &Array2<f32>, w: &Array2<f32>, b: &Array2<f32>| {
                let y = fast_forward(x, w, b, &g);
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
            let name = format!("conv2d {n}x{g:?}");
            check(&format!("{name} dx"), &x, &dx, |x| loss(x, &w, &b));
            check(&format!("{name} dW"), &w, &dw, |w| loss(&x, w, &b));
            check(&format!("{name} db"), &b, &db, |b| loss(&x, &w, b));
        }
    }

    #[test]
    fn naive_gradients_match_finite_differences() {
        // The reference itself, on two shapes, so it is not only held to the fast path.
        for &(n, g) in &SHAPES[..2] {
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

    #[test]
    fn fast_matches_naive_on_random_shapes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut scratch = Vec::new();
        // The autoencoder's four layers, then random shapes; the scratch is shared throughout,
        // as a trainer shares it between layers.
        let mut cases = vec![
            (37, Conv2dGeometry::new(1, 28, 28, 8, 6)),
            (20, Conv2dGeometry::new(8, 23, 23, 8, 6)),
            (16, Conv2dGeometry::new(8, 18, 18, 8, 6)),
            (33, Conv2dGeometry::new(8, 13, 13, 8, 6)),
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
            // f32 sums of K products of magnitude < 1 (K = C·k·k forward and for dx, N·OH·OW
            // for dW): rounding grows like √K·ε in practice and K·ε at worst.
            let k_fwd = (g.in_channels * g.kernel * g.kernel) as f32;
            let k_dw = (n * g.out_h() * g.out_w()) as f32;
            let k_dx = (g.out_channels * g.kernel * g.kernel) as f32;
            let tol = |k: f32| 4.0 * f32::EPSILON * k;

            let mut y_fast = Array2::from_elem((n, g.out_len()), f32::NAN);
            forward(x.view(), w.view(), b.row(0), y_fast.view_mut(), &g, &mut scratch);
            let mut y_naive = Array2::zeros((n, g.out_len()));
            forward_naive(x.view(), w.view(), b.row(0), y_naive.view_mut(), &g);
            assert_close(&format!("forward {n}x{g:?}"), &y_fast, &y_naive, tol(k_fwd));

            // Start the gradients from non-zero values: backward must add into them.
            let dw0 = random(seed + 4, g.weight_shape(), 1.0);
            let db0 = random(seed + 5, (1, g.out_channels), 1.0);
            let (mut dw_fast, mut db_fast) = (dw0.clone(), db0.clone());
            let (mut dw_naive, mut db_naive) = (dw0.clone(), db0.clone());
            let mut dx_fast = Array2::from_elem((n, g.in_len()), f32::NAN);
            let mut dx_naive = Array2::zeros((n, g.in_len()));
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
            backward_naive(
                x.view(),
                w.view(),
                dy.view(),
                dw_naive.view_mut(),
                db_naive.row_mut(0),
                Some(dx_naive.view_mut()),
                &g,
            );
            assert_close(&format!("dW {n}x{g:?}"), &dw_fast, &dw_naive, tol(k_dw));
            assert_close(&format!("db {n}x{g:?}"), &db_fast, &db_naive, tol(k_dw));
            assert_close(&format!("dx {n}x{g:?}"), &dx_fast, &dx_naive, tol(k_dx));

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
            assert_eq!(dw_only, dw_fast, "dW without dx {n}x{g:?}");
            assert_eq!(db_only, db_fast, "db without dx {n}x{g:?}");
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

#[cfg(test)]
mod devbench {
    use super::*;
    use ndarray::Array2;
    use std::time::Instant;

    fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    }

    #[test]
    #[ignore]
    fn kernels() {
        for g in [
            Conv2dGeometry::new(1, 28, 28, 8, 6),
            Conv2dGeometry::new(8, 23, 23, 8, 6),
            Conv2dGeometry::new(8, 18, 18, 8, 6),
            Conv2dGeometry::new(8, 13, 13, 8, 6),
        ] {
            let d = Dims::new(&g);
            let n = 16;
            let x = crate::layers::gradcheck::random(1, (n, g.in_len()), 1.0);
            let mut xb = vec![0.0; d.in_block(d.c8)];
            let mut yb = vec![0.0; d.out_block()];
            let mut dxb = vec![0.0; d.in_block(d.c8)];
            let wf = vec![0.01; d.c * d.k * d.k * d.o8];
            let wt = vec![0.01; d.k * d.k * d.o * d.c8];
            let bias = vec![0.0; d.o8];
            let mut dwp = vec![0.0; d.o8 * d.c * d.k * d.k * LANES];
            let mut y = Array2::zeros((n, g.out_len()));
            let reps = 50;
            let pack_t = min_time(reps, || pack(x.view(), 0, 16, &mut xb));
            let unpack_t = min_time(reps, || unpack(&yb, y.view_mut(), 0, 16));
            let fwd = min_time(reps, || kernels::forward_block(&d, &wf, &bias, &xb, &mut yb));
            let dw = min_time(reps, || kernels::weight_grad_block(&d, &xb, &yb, &mut dwp));
            let dx = min_time(reps, || kernels::input_grad_block(&d, &wt, &yb, &mut dxb));
            let gf = |t: f64| 2.0 * (g.macs() * 16) as f64 / t / 1e9;
            println!(
                "C={} H={}: pack {:.1}us unpack {:.1}us | fwd {:.1}us {:.1} GF/s | dW {:.1}us {:.1} GF/s | dx {:.1}us {:.1} GF/s",
                g.in_channels,
                g.in_h,
                pack_t * 1e6,
                unpack_t * 1e6,
                fwd * 1e6,
                gf(fwd),
                dw * 1e6,
                gf(dw),
                dx * 1e6,
                gf(dx)
            );
        }
    }
}
