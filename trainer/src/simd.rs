//! The SIMD level the trainer's own kernels run at: the best this CPU has, or less where
//! `TRAINER_SIMD` caps it (`scalar`, `avx2` or `avx512`), so that the AVX2 path can be timed and
//! tested on an AVX-512 machine.
//!
//! What the cap reaches: the convolution kernels (`layers::conv2d`: direct, Winograd, packing)
//! and the elementwise kernels compiled per level. What it does not: the `gemm` crate's matrix
//! products, which pick their own kernels at run time (AVX2 and FMA at most on x86-64 in this
//! build: its AVX-512 kernels need a nightly toolchain, so an AVX-512 machine runs them as an
//! AVX2 one does), OpenBLAS's, and the compiler's vectorisation of plain loops for the build's
//! baseline target (SSE2 on x86-64).

use std::sync::OnceLock;

/// The environment variable that caps the level.
pub const ENV: &str = "TRAINER_SIMD";

/// A SIMD level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The build's baseline target (no runtime-selected vector code).
    Scalar,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

impl Level {
    /// `scalar`, `avx2` or `avx512`: the names `TRAINER_SIMD` takes and `metrics.json` records.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level named `name`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Level::Scalar),
            "avx2" => Ok(Level::Avx2),
            "avx512" => Ok(Level::Avx512),
            other => Err(format!("{ENV}={other:?}: expected scalar, avx2 or avx512")),
        }
    }
}

/// The best level this CPU runs.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// The cap `TRAINER_SIMD` sets, if it is set (and not empty).
///
/// # Errors
/// A value that names no level.
pub fn cap() -> Result<Option<Level>, String> {
    match std::env::var(ENV) {
        Ok(value) if !value.trim().is_empty() => Level::parse(&value).map(Some),
        _ => Ok(None),
    }
}

/// The level the kernels run at: [`detected`], capped by `TRAINER_SIMD`. Read once per process;
/// an invalid value counts as no cap here (the CLI refuses it first, see [`check_env`]).
pub fn active() -> Level {
    static ACTIVE: OnceLock<Level> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let best = detected();
        match cap() {
            Ok(Some(cap)) => cap.min(best),
            _ => best,
        }
    })
}

/// Refuses an invalid `TRAINER_SIMD` before anything runs.
///
/// # Errors
/// The message of [`cap`].
pub fn check_env() -> anyhow::Result<()> {
    cap().map(|_| ()).map_err(anyhow::Error::msg)
}

/// The active level in words for logs: `avx2`, or `avx2 (TRAINER_SIMD=avx2; the CPU has
/// avx512)` when capped.
pub fn describe() -> String {
    let (active, best) = (active(), detected());
    if active == best {
        active.name().to_string()
    } else {
        format!(
            "{} ({ENV}={}; the CPU has {})",
            active.name(),
            active.name(),
            best.name()
        )
    }
}

/// Runs `f` inside a function compiled for AVX2 and FMA when the active level has them, so that
/// `f`'s loops, inlined there, are vectorised for AVX2 (8 floats a vector instead of SSE2's 4).
/// No operation is reordered or fused (Rust never contracts `a * b + c` into an FMA), so the
/// results are the same bits at every level.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if active() >= Level::Avx2 {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2 and FMA (the active level is at least AVX2).
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_levels_order() {
        for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(level.name()), Ok(level));
        }
        assert_eq!(Level::parse(" AVX2 "), Ok(Level::Avx2));
        assert!(Level::parse("sse4").unwrap_err().contains("scalar, avx2 or avx512"));
        assert!(Level::Scalar < Level::Avx2 && Level::Avx2 < Level::Avx512);
        assert!(active() <= detected());
    }
}
