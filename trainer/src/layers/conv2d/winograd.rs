//! Winograd F(3, 6) along image rows, for 6 × 6 kernels: the transforms, the kernels, and the
//! forward and backward passes built on them.
//!
//! Each kernel row is a 1-D correlation of width 6; F(3, 6) gives three adjacent outputs of it
//! from 8 products instead of 18, after transforms shared by all channels. That cuts the
//! multiply-adds of forward, `dW` and `dx` by 2.25x for the cost of the transforms; backward is
//! the exact adjoint of the Winograd forward. The tests at the bottom hold the hand-written
//! transforms to the matrices and the matrices to the direct correlation.

use super::direct::reduce_bias_grad;
use super::pack::{pack, regions, unpack, Dims, CB};
use super::simd::{dispatch, Simd, LANES, NARROW_ROWS};
use ndarray::{s, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

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
const WM: usize = 3;
/// Points per tile (`WM + WR − 1`).
const WA: usize = 8;

/// G (8 × 6): the kernel transform, applied in f64 once per call.
const WG: [[f64; WR]; WA] = [
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
const WBT: [[f64; WA]; WA] = [
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
const WAT: [[f64; WA]; WM] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.25, 0.25, 1.0],
];

/// [`super::forward`] by Winograd F(3, 6) along rows, 6 × 6 kernels only.
// x: (N, C·H·W), w: (O, C·6·6), b: (O) -> y: (N, O·OH·OW)
pub(super) fn forward_winograd(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    b: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    d: &Dims,
    scratch: &mut Vec<f32>,
) {
    let n = x.nrows();
    let t = tiles(d);
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
            wino_input_transform(d, xp, c, vb);
        }
        wino_forward_products(d, uf, vb, mb);
        for (o, &bias) in b.iter().enumerate() {
            wino_output_transform(d, mb, o, bias, yp);
            unpack(yp, y.slice_mut(s![.., o * plane_out..(o + 1) * plane_out]), n0, rows);
        }
    }
}

/// `G·g` for kernel row `(o, c, p)` of a 6 × 6 weight, in f64 then rounded.
fn transform_kernel_row(w: ArrayView2<f32>, o: usize, c: usize, p: usize) -> [f32; WA] {
    let at = (c * WR + p) * WR;
    WG.map(|g| (0..WR).map(|q| g[q] * w[[o, at + q]] as f64).sum::<f64>() as f32)
}

/// [`super::backward`] by Winograd F(3, 6) along rows, 6 × 6 kernels only: the exact adjoint of
/// [`forward_winograd`].
// x: (N, C·H·W), w: (O, C·6·6), dy: (N, O·OH·OW) -> dw: (O, C·6·6), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_winograd(
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
    let t = tiles(d);
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
            wino_input_transform(d, xp, c, vb);
        }
        for (o, part) in dbp.chunks_exact_mut(LANES).enumerate() {
            pack(dy.slice(s![.., o * plane_out..(o + 1) * plane_out]), n0, rows, dyp);
            wino_grad_transform(d, dyp, o, dmb, part);
        }
        wino_weight_grad(d, vb, dmb, dup);
        if let Some(dx) = dx.as_mut() {
            wino_input_grad(d, ux, dmb, dvr, dxb);
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

/// Tiles per output row.
fn tiles(d: &Dims) -> usize {
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
mod plain {
    use super::super::simd::Portable;
    use super::{Simd, LANES, WA, WM};

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
            if !S::WIDE {
                // NARROW_ROWS channels of one tile at a time (see Simd::WIDE).
                for r0 in (0..CB).step_by(NARROW_ROWS) {
                    let (u, m) = unsafe { (u.add(o0 + r0), m.add(r0 * n * LANES)) };
                    for j in 0..n {
                        unsafe { wino_forward_tile::<S, NARROW_ROWS, 1>(d, u, v, m, j) };
                    }
                }
                continue;
            }
            let mut j = 0;
            while j + 3 <= n {
                unsafe { wino_forward_tile::<S, CB, 3>(d, u.add(o0), v, m, j) };
                j += 3;
            }
            match n - j {
                2 => unsafe { wino_forward_tile::<S, CB, 2>(d, u.add(o0), v, m, j) },
                1 => unsafe { wino_forward_tile::<S, CB, 1>(d, u.add(o0), v, m, j) },
                _ => {}
            }
        }
    }
}

/// For one point ξ: `M[o][j + b] = Σ_{c, p} U[c][p][o]·V[c][p·T + j + b]` for the `R` output
/// channels `o` from `u` and `m`, where `j` runs over (output row, tile) pairs.
#[inline(always)]
unsafe fn wino_forward_tile<S: Simd, const R: usize, const B: usize>(
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
        let mut acc = [[S::zero(); B]; R];
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
                        if S::WIDE {
                            wino_weight_grad_tile::<S, CB>(d, v, g, dup, (o0, 0, c, p0, xi));
                        } else {
                            // Two channels of accumulators at a time (see Simd::WIDE).
                            for o1 in (0..CB).step_by(2) {
                                wino_weight_grad_tile::<S, 2>(d, v, g, dup, (o0, o1, c, p0, xi));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dU[o0 + o1 + o][c][p0 + pp][ξ] += Σ_j dM[ξ][o1 + o][j]·V[ξ][c][(p0 + pp)·T + j]` for `R`
/// channels `o` and 3 kernel rows `pp`, per lane; `g` points at dM of channel `o0`.
#[inline(always)]
unsafe fn wino_weight_grad_tile<S: Simd, const R: usize>(
    d: &Dims,
    v: *const f32,
    g: *const f32,
    dup: *mut f32,
    (o0, o1, c, p0, xi): (usize, usize, usize, usize, usize),
) {
    let t = tiles(d);
    let n = d.oh * t;
    // SAFETY: see wino_weight_grad_generic.
    unsafe {
        let g = g.add(o1 * n * LANES);
        let mut acc = [[S::zero(); 3]; R];
        let at = |o: usize, pp: usize| ((((o0 + o1 + o) * d.c + c) * WR + p0 + pp) * WA + xi) * LANES;
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
                if !S::WIDE {
                    // NARROW_ROWS channels of one tile at a time (see Simd::WIDE).
                    for r0 in (0..CB).step_by(NARROW_ROWS) {
                        let (u, out) = unsafe { (u.add(r0), out.add(r0 * t * LANES)) };
                        for t0 in 0..t {
                            unsafe { wino_input_grad_tile::<S, NARROW_ROWS, 1>(d, u, g, out, r, (p_lo, p_hi), t0) };
                        }
                    }
                } else {
                    let mut t0 = 0;
                    while t0 + 3 <= t {
                        unsafe { wino_input_grad_tile::<S, CB, 3>(d, u, g, out, r, (p_lo, p_hi), t0) };
                        t0 += 3;
                    }
                    match t - t0 {
                        2 => unsafe { wino_input_grad_tile::<S, CB, 2>(d, u, g, out, r, (p_lo, p_hi), t0) },
                        1 => unsafe { wino_input_grad_tile::<S, CB, 1>(d, u, g, out, r, (p_lo, p_hi), t0) },
                        _ => {}
                    }
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

/// For one point ξ and input row r: `dV[c][t0 + b] = Σ_o Σ_{p ∈ ps} U[o][p][c]·dM[o][r − p][t0 + b]`
/// for the `R` input channels `c` from `u` and `out`.
#[inline(always)]
unsafe fn wino_input_grad_tile<S: Simd, const R: usize, const B: usize>(
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
        let mut acc = [[S::zero(); B]; R];
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

#[cfg(test)]
mod tests {
    use super::{plain, WA, WAT, WBT, WG, WM, WR};
    use crate::layers::gradcheck::random;

    #[test]
    fn winograd_matrices_compute_the_row_correlation() {
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
}
