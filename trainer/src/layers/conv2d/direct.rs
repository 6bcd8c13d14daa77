//! The direct kernels, for any kernel size, and the forward and backward passes built on them.
//!
//! Register tiles of [`CB`] channels × 3 pixels, each pixel one vector of [`LANES`] samples:
//! - forward: `CB` output channels × 3 output pixels, summed over `(c, p, q)`;
//! - `dW`: `CB` output channels × 3 kernel columns for one `(c, p)`, summed over every output
//!   pixel, kept per lane in the scratch buffer and reduced over lanes once per call;
//! - `dx`: the "full" correlation `dx[c, h, w] = Σ_{o, p, q} W[o, c, p, q]·dy[o, h − p, w − q]`,
//!   `CB` input channels × 3 pixels, visiting only taps that land inside `dy` (no zero padding is
//!   multiplied).

use super::pack::{pack, regions, unpack, Dims, CB};
use super::simd::{dispatch, Simd, LANES, NARROW_ROWS};
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

/// [`super::forward`] by direct convolution, any kernel size.
// x: (N, C·H·W), w: (O, C·k·k), b: (O) -> y: (N, O·OH·OW)
pub(super) fn forward_direct(
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
        forward_block(d, wf, bias, xb, yb);
        unpack(yb, y.view_mut(), n0, rows);
    }
}

/// [`super::backward`] by direct convolution, any kernel size.
// x: (N, C·H·W), w: (O, C·k·k), dy: (N, O·OH·OW) -> dw: (O, C·k·k), db: (O), dx: (N, C·H·W)
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_direct(
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
        weight_grad_block(d, xb, dyb, dwp);
        if let Some(dx) = dx.as_mut() {
            input_grad_block(d, wt, dyb, dxb);
            unpack(dxb, dx.view_mut(), n0, rows);
        }
    }
    for ((o, col), g) in dw.indexed_iter_mut() {
        let part = &dwp[(o * cols + col) * LANES..][..LANES];
        *g += part.iter().sum::<f32>();
    }
    reduce_bias_grad(dbp, db);
}

/// `dbp[o][l] += Σ_pixels dy[o][pixel][l]` for one block.
// dyb: (o8, OH, OW, L) -> dbp: (O, L)
fn add_bias_grad(d: &Dims, dyb: &[f32], dbp: &mut [f32]) {
    for (part, plane) in dbp.chunks_exact_mut(LANES).zip(dyb.chunks_exact(d.oh * d.ow * LANES)) {
        plane_sum(d, plane, part);
    }
}

/// `db[o] += Σ_l dbp[o][l]`.
pub(super) fn reduce_bias_grad(dbp: &[f32], mut db: ArrayViewMut1<f32>) {
    for (g, part) in db.iter_mut().zip(dbp.chunks_exact(LANES)) {
        *g += part.iter().sum::<f32>();
    }
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
            if !S::WIDE {
                // NARROW_ROWS channels of one pixel at a time (see Simd::WIDE).
                for o1 in (o0..o0 + CB).step_by(NARROW_ROWS) {
                    for j in 0..d.ow {
                        // SAFETY: as below, for channels o1..o1 + NARROW_ROWS ≤ o0 + CB.
                        unsafe { forward_tile::<S, NARROW_ROWS, 1>(d, wf.add(o1), bias.add(o1), xb, yb, o1, i, j) };
                    }
                }
                continue;
            }
            let mut j0 = 0;
            // SAFETY (all three): o0 + CB ≤ o8, i < OH and j0 + B ≤ OW, so every read is
            // inside xb's C planes and wf, every write inside yb's o8 planes.
            while j0 + 3 <= d.ow {
                unsafe { forward_tile::<S, CB, 3>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) };
                j0 += 3;
            }
            match d.ow - j0 {
                2 => unsafe { forward_tile::<S, CB, 2>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) },
                1 => unsafe { forward_tile::<S, CB, 1>(d, wf.add(o0), bias.add(o0), xb, yb, o0, i, j0) },
                _ => {}
            }
        }
    }
}

/// Output channels `o0..o0 + R` at pixels `(i, j0..j0 + B)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn forward_tile<S: Simd, const R: usize, const B: usize>(
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
        let mut acc = [[S::zero(); B]; R];
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
                // Channels of accumulators held at once: all CB, or two (see Simd::WIDE).
                let rows = if S::WIDE { CB } else { 2 };
                for o1 in (o0..o0 + CB).step_by(rows) {
                    let mut q0 = 0;
                    // SAFETY (all three): o1 + rows ≤ o8, c < C, p < k, q0 + QB ≤ k: reads stay
                    // in xb's C planes (i + p < H, j + q < W) and dyb's o8 planes, writes in dwp.
                    while q0 + 3 <= d.k {
                        unsafe { weight_grad_rows::<S, 3>(S::WIDE, d, xb, dyb, dwp, o1, c, p, q0) };
                        q0 += 3;
                    }
                    match d.k - q0 {
                        2 => unsafe { weight_grad_rows::<S, 2>(S::WIDE, d, xb, dyb, dwp, o1, c, p, q0) },
                        1 => unsafe { weight_grad_rows::<S, 1>(S::WIDE, d, xb, dyb, dwp, o1, c, p, q0) },
                        _ => {}
                    }
                }
            }
        }
    }
}

/// [`weight_grad_tile`] for `CB` channels from `o0` when `wide`, else 2.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn weight_grad_rows<S: Simd, const QB: usize>(
    wide: bool,
    d: &Dims,
    xb: *const f32,
    dyb: *const f32,
    dwp: *mut f32,
    o0: usize,
    c: usize,
    p: usize,
    q0: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if wide {
            weight_grad_tile::<S, CB, QB>(d, xb, dyb, dwp, o0, c, p, q0)
        } else {
            weight_grad_tile::<S, 2, QB>(d, xb, dyb, dwp, o0, c, p, q0)
        }
    }
}

/// `dW[o0..o0 + R, c, p, q0..q0 + QB]`, per lane, summed over every output pixel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn weight_grad_tile<S: Simd, const R: usize, const QB: usize>(
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
        let mut acc = [[S::zero(); QB]; R];
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
