//! The vector type the fast kernels are written against, and the choice of compiled variant.
//!
//! Every kernel is one generic function over [`Simd`], a vector of [`LANES`] floats. It is
//! compiled three times: with [`Avx512`] (one register) where the CPU has AVX-512, with
//! [`Portable`] (plain arrays the compiler vectorises) under AVX2 + FMA, and with [`Portable`] for
//! the build's baseline target. [`level`] says which one this CPU runs, and `dispatch!` defines
//! the safe entry point of a kernel that checks its buffers and calls the right variant.

/// Samples per block: the lanes of one vector.
pub(super) const LANES: usize = 16;

/// The few vector operations the kernels need, on [`LANES`] floats.
pub(super) trait Simd: Copy {
    /// Whether one vector is one register of a file of 32 (AVX-512): the kernels then hold
    /// [`CB`](super::pack::CB) channels × 3 pixels of accumulators in registers. Otherwise
    /// (AVX2's 16 registers of half a vector each) they hold fewer, [`NARROW_ROWS`] channels
    /// of one pixel, so that nothing spills.
    const WIDE: bool;
    /// # Safety
    /// `p` is valid for reading `LANES` floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing `LANES` floats.
    unsafe fn store(self, p: *mut f32);
    fn splat(v: f32) -> Self;
    fn zero() -> Self;
    /// `self + a·b`, fused (one rounding) at every level: the levels then agree bit for bit.
    fn mul_add(self, a: Self, b: Self) -> Self;
    fn add(self, b: Self) -> Self;
    fn sub(self, b: Self) -> Self;
    /// `self + c·b` for a constant `c`.
    #[inline(always)]
    fn add_scaled(self, c: f32, b: Self) -> Self {
        self.mul_add(Self::splat(c), b)
    }
}

/// Plain arrays; the compiler vectorises them as the target allows. Its `mul_add` is
/// `f32::mul_add`: one FMA instruction under AVX2 + FMA, the C library's `fmaf` on a baseline
/// target without FMA (slower, the same bits).
#[derive(Clone, Copy)]
pub(super) struct Portable(pub(super) [f32; LANES]);

/// Channels of accumulators a kernel holds in registers where vectors are not [`Simd::WIDE`]:
/// 4 channels × 1 pixel is 8 AVX2 registers of the 16, beside the loaded pixel and the weight.
pub(super) const NARROW_ROWS: usize = 4;

impl Simd for Portable {
    const WIDE: bool = false;
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
        Portable(std::array::from_fn(|l| a.0[l].mul_add(b.0[l], self.0[l])))
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
pub(super) struct Avx512(std::arch::x86_64::__m512);

#[cfg(target_arch = "x86_64")]
impl Simd for Avx512 {
    const WIDE: bool = true;
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

/// The best variant this CPU runs under `TRAINER_SIMD` ([`crate::simd::active`]; a test may
/// ask for a lesser one). Only x86-64 has more than one.
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
    match crate::simd::active() {
        crate::simd::Level::Avx512 => Level::Avx512,
        crate::simd::Level::Avx2 => Level::Avx2,
        crate::simd::Level::Scalar => Level::Baseline,
    }
}

/// Defines `$name(d, args…)`: checks the buffers with `$check`, then runs
/// `$generic::<Avx512>` where AVX-512 is available, `$generic::<Portable>` compiled for AVX2
/// where that is, and plain `$generic::<Portable>` elsewhere. The function is private to the file
/// that invokes the macro (next to its kernel), which has the packed layout's `Dims` in scope;
/// everything else is named by its full path, so this file needs nothing from the packing.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $generic:ident, ($d:ident, $($arg:ident: $ty:ty),*), $check:expr) => {
        $(#[$doc])*
        fn $name($d: &Dims, $($arg: $ty),*) {
            $check;
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($d: &Dims, $($arg: $ty),*) {
                    // SAFETY: forwarded from the caller.
                    unsafe { $generic::<$crate::layers::conv2d::simd::Avx512>($d, $($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($d: &Dims, $($arg: $ty),*) {
                    // SAFETY: forwarded from the caller.
                    unsafe { $generic::<$crate::layers::conv2d::simd::Portable>($d, $($arg),*) }
                }
                match $crate::layers::conv2d::simd::level() {
                    // SAFETY: the feature was detected; the buffer sizes were checked above.
                    $crate::layers::conv2d::simd::Level::Avx512 => return unsafe { avx512($d, $($arg),*) },
                    // SAFETY: as above.
                    $crate::layers::conv2d::simd::Level::Avx2 => return unsafe { avx2($d, $($arg),*) },
                    $crate::layers::conv2d::simd::Level::Baseline => {}
                }
            }
            // SAFETY: the buffer sizes were checked above.
            unsafe { $generic::<$crate::layers::conv2d::simd::Portable>($d, $($arg),*) }
        }
    };
}
pub(super) use dispatch;
