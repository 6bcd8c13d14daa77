//! The block layout of the fast path, and the moves into and out of it.
//!
//! Every kernel works on one block of [`LANES`] samples, pixel-major and sample-minor: element
//! `(channel, row, column)` of lane `l` at `((channel·rows + row)·columns + column)·LANES + l`, so
//! that one vector holds one pixel of 16 samples whatever the image size. This file holds the
//! sizes of that layout ([`Dims`], [`CB`]), the carving of the caller's scratch buffer into
//! aligned regions, and the transposes between the layer's rows and a block ([`pack`],
//! [`unpack`]; AVX-512 register transposes where the CPU has them).

#[cfg(target_arch = "x86_64")]
use super::simd::{level, Level, LANES};
use super::Conv2dGeometry;
use ndarray::{s, ArrayView2, ArrayViewMut2};

/// Channels held in registers per kernel call (output channels forward and for `dW`, input
/// channels for `dx`); channel counts are padded up to a multiple inside the scratch buffer.
pub(super) const CB: usize = 8;

/// The geometry with the padded channel counts the kernels use.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) k: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    /// C rounded up to a multiple of CB.
    pub(super) c8: usize,
    /// O rounded up to a multiple of CB.
    pub(super) o8: usize,
}

impl Dims {
    pub(super) fn new(g: &Conv2dGeometry) -> Dims {
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
    pub(super) fn in_block(&self, channels: usize) -> usize {
        channels * self.h * self.w * LANES
    }

    /// Floats of a block of output planes (padded channels included).
    pub(super) fn out_block(&self) -> usize {
        self.o8 * self.oh * self.ow * LANES
    }
}

/// Splits `scratch` into regions of the given lengths, each starting on a 64-byte boundary,
/// growing it if it is too small (it never shrinks, so steady use allocates nothing).
pub(super) fn regions<const R: usize>(scratch: &mut Vec<f32>, lens: [usize; R]) -> [&mut [f32]; R] {
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
pub(super) fn pack(src: ArrayView2<f32>, n0: usize, rows: usize, dst: &mut [f32]) {
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
        pack_rows(&slices[..rows], dst);
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
pub(super) fn unpack(src: &[f32], mut dst: ArrayViewMut2<f32>, n0: usize, rows: usize) {
    let mut block = dst.slice_mut(s![n0..n0 + rows, ..]);
    if block.strides()[1] == 1 || block.ncols() <= 1 {
        let mut slices: [&mut [f32]; LANES] = Default::default();
        for (s, row) in slices.iter_mut().zip(block.rows_mut()) {
            *s = row.into_slice().expect("rows with unit stride are contiguous");
        }
        unpack_rows(src, &mut slices[..rows]);
        return;
    }
    for (l, mut row) in block.rows_mut().into_iter().enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            *v = src[i * LANES + l];
        }
    }
}

/// `dst[f·LANES + l] = rows[l][f]` for every `f < dst.len() / LANES`, zero for the lanes
/// past `rows.len()`.
// rows: (≤ LANES, F) -> dst: (F, LANES)
fn pack_rows(rows: &[&[f32]], dst: &mut [f32]) {
    let f = dst.len() / LANES;
    assert!(rows.len() <= LANES && rows.iter().all(|r| r.len() >= f));
    #[cfg(target_arch = "x86_64")]
    match level() {
        // SAFETY: avx512f was detected; lengths checked above.
        Level::Avx512 => return unsafe { transpose::pack_avx512(rows, dst) },
        // SAFETY: avx2 was detected; lengths checked above.
        Level::Avx2 => return unsafe { transpose::pack_avx2(rows, dst) },
        Level::Baseline => {}
    }
    for (i, px) in dst.chunks_exact_mut(LANES).enumerate() {
        for (l, v) in px.iter_mut().enumerate() {
            *v = rows.get(l).map_or(0.0, |r| r[i]);
        }
    }
}

/// `rows[l][f] = src[f·LANES + l]` for every `f` of each row.
// src: (F', LANES) -> rows: (≤ LANES, F), F ≤ F'
fn unpack_rows(src: &[f32], rows: &mut [&mut [f32]]) {
    let f = rows.first().map_or(0, |r| r.len());
    assert!(rows.len() <= LANES && rows.iter().all(|r| r.len() == f) && src.len() >= f * LANES);
    #[cfg(target_arch = "x86_64")]
    match level() {
        // SAFETY: avx512f was detected; lengths checked above.
        Level::Avx512 => return unsafe { transpose::unpack_avx512(src, rows) },
        // SAFETY: avx2 was detected; lengths checked above.
        Level::Avx2 => return unsafe { transpose::unpack_avx2(src, rows) },
        Level::Baseline => {}
    }
    for (l, row) in rows.iter_mut().enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            *v = src[i * LANES + l];
        }
    }
}

/// 16 × 16 transposes in AVX-512 registers, and 8 × 8 ones in AVX2 registers, for
/// [`pack_rows`] and [`unpack_rows`].
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

    /// Transposes the 8 × 8 matrix whose rows are `r` (AVX2).
    #[inline(always)]
    unsafe fn transpose8(r: &mut [__m256; 8]) {
        // SAFETY: register shuffles only; the callers enable avx2.
        unsafe {
            let mut t = [_mm256_setzero_ps(); 8];
            for i in 0..4 {
                t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            let mut u = [_mm256_setzero_ps(); 8];
            for g in 0..2 {
                let (a0, a1, b0, b1) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
                u[4 * g] = _mm256_shuffle_ps::<0x44>(a0, b0);
                u[4 * g + 1] = _mm256_shuffle_ps::<0xEE>(a0, b0);
                u[4 * g + 2] = _mm256_shuffle_ps::<0x44>(a1, b1);
                u[4 * g + 3] = _mm256_shuffle_ps::<0xEE>(a1, b1);
            }
            for m in 0..4 {
                r[m] = _mm256_permute2f128_ps::<0x20>(u[m], u[4 + m]);
                r[4 + m] = _mm256_permute2f128_ps::<0x31>(u[m], u[4 + m]);
            }
        }
    }

    /// [`super::pack_rows`] with AVX2: each 8-float chunk of 16 rows as two 8 × 8 transposes.
    ///
    /// # Safety
    /// avx2 is available; every row holds at least `dst.len() / LANES` floats and there are at
    /// most LANES rows.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pack_avx2(rows: &[&[f32]], dst: &mut [f32]) {
        let f = dst.len() / LANES;
        let full = f / 8 * 8;
        for f0 in (0..full).step_by(8) {
            for half in 0..2 {
                let mut r = [_mm256_setzero_ps(); 8];
                for (v, row) in r.iter_mut().zip(rows.iter().skip(8 * half)) {
                    // SAFETY: f0 + 8 ≤ f ≤ row.len().
                    *v = unsafe { _mm256_loadu_ps(row.as_ptr().add(f0)) };
                }
                // SAFETY: avx2 is enabled here.
                unsafe { transpose8(&mut r) };
                for (i, v) in r.iter().enumerate() {
                    // SAFETY: (f0 + i)·LANES + 8·half + 8 ≤ f·LANES ≤ dst.len().
                    unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add((f0 + i) * LANES + 8 * half), *v) };
                }
            }
        }
        for (i, px) in dst.chunks_exact_mut(LANES).enumerate().skip(full) {
            for (l, v) in px.iter_mut().enumerate() {
                *v = rows.get(l).map_or(0.0, |r| r[i]);
            }
        }
    }

    /// [`super::unpack_rows`] with AVX2.
    ///
    /// # Safety
    /// avx2 is available; at most LANES rows, all of one length `F`, and
    /// `src.len() ≥ F·LANES`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn unpack_avx2(src: &[f32], rows: &mut [&mut [f32]]) {
        let f = rows.first().map_or(0, |r| r.len());
        let full = f / 8 * 8;
        for f0 in (0..full).step_by(8) {
            for half in 0..2 {
                if rows.len() <= 8 * half {
                    break;
                }
                let mut r = [_mm256_setzero_ps(); 8];
                for (i, v) in r.iter_mut().enumerate() {
                    // SAFETY: (f0 + i)·LANES + 8·half + 8 ≤ f·LANES ≤ src.len().
                    *v = unsafe { _mm256_loadu_ps(src.as_ptr().add((f0 + i) * LANES + 8 * half)) };
                }
                // SAFETY: avx2 is enabled here.
                unsafe { transpose8(&mut r) };
                for (row, v) in rows.iter_mut().skip(8 * half).zip(&r) {
                    // SAFETY: f0 + 8 ≤ f = row.len().
                    unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(f0), *v) };
                }
            }
        }
        for (l, row) in rows.iter_mut().enumerate() {
            for (i, v) in row.iter_mut().enumerate().skip(full) {
                *v = src[i * LANES + l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::Level;
    use super::super::tests::hooks;
    use super::*;

    #[test]
    fn every_level_packs_and_unpacks_as_the_definition() {
        // Row lengths around the 8- and 16-float chunks of the transposes, partial batches.
        for f in [1, 7, 8, 9, 16, 23, 40] {
            for rows in [1, 5, 8, 9, 16] {
                let src: Vec<Vec<f32>> = (0..rows)
                    .map(|r| (0..f).map(|i| (r * 1000 + i) as f32).collect())
                    .collect();
                let refs: Vec<&[f32]> = src.iter().map(Vec::as_slice).collect();
                let mut want = vec![0f32; f * LANES];
                for (i, px) in want.chunks_exact_mut(LANES).enumerate() {
                    for (l, v) in px.iter_mut().enumerate() {
                        *v = src.get(l).map_or(0.0, |r| r[i]);
                    }
                }
                for level in [Level::Avx512, Level::Avx2, Level::Baseline] {
                    hooks::with(Some(level), false, || {
                        let mut packed = vec![f32::NAN; f * LANES];
                        pack_rows(&refs, &mut packed);
                        assert_eq!(packed, want, "pack, {level:?}, F {f}, {rows} rows");
                        let mut back = vec![vec![f32::NAN; f]; rows];
                        let mut slices: Vec<&mut [f32]> = back.iter_mut().map(Vec::as_mut_slice).collect();
                        unpack_rows(&packed, &mut slices);
                        assert_eq!(back, src, "unpack, {level:?}, F {f}, {rows} rows");
                    });
                }
            }
        }
    }
}
