//! The one matrix product every layer uses: `c = a·b` or `c += a·b` on ndarray views of any
//! strides, so transposes cost nothing.
//!
//! The default build multiplies with the pure-Rust `gemm` crate (AVX2/AVX-512/NEON kernels picked
//! at run time, no system package). The `openblas` feature calls a system OpenBLAS instead. Both
//! run single-threaded here: the trainer parallelises over batch shards, one per thread.
//! [`matmul_naive`] is the plain reference the fast paths are tested against.

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c = a·b` (or `c += a·b` when `accumulate`).
// a: (M, K), b: (K, N) -> c: (M, N)
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "matmul: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "matmul: output shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    backend::sgemm(a, b, c.view_mut(), accumulate);
}

/// The obviously correct triple loop, accumulating in f64.
// a: (M, K), b: (K, N) -> c: (M, N)
pub fn matmul_naive(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.ncols();
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for l in 0..k {
                s += a[[i, l]] as f64 * b[[l, j]] as f64;
            }
            let base = if accumulate { c[[i, j]] as f64 } else { 0.0 };
            c[[i, j]] = (base + s) as f32;
        }
    }
}

/// Name of the matrix-product backend compiled in.
pub fn backend_name() -> &'static str {
    backend::NAME
}

#[cfg(not(feature = "openblas"))]
mod backend {
    use ndarray::{ArrayView2, ArrayViewMut2};

    pub const NAME: &str = "gemm (pure Rust)";

    pub fn sgemm(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
        let (m, k) = a.dim();
        let n = b.ncols();
        let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
        let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
        let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
        // SAFETY: the shapes were checked by `matmul` (a: m×k, b: k×n, c: m×n, all non-empty), and
        // each pointer with its element strides addresses exactly its view's elements, which
        // ndarray guarantees are in bounds. `c` is borrowed mutably, so it aliases neither input.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                c_cs,
                c_rs,
                accumulate,
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
                b_cs,
                b_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

#[cfg(feature = "openblas")]
mod backend {
    use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
    use ndarray::{ArrayView2, ArrayViewMut2, CowArray, Ix2};

    pub const NAME: &str = "OpenBLAS (system)";

    extern "C" {
        fn openblas_set_num_threads(n: std::os::raw::c_int);
    }

    /// OpenBLAS's own threads would fight the trainer's shard threads (2.7x slower measured);
    /// each call runs on the calling thread.
    fn single_threaded() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: a plain setter of OpenBLAS's global thread count, called once before any sgemm.
        ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
    }

    /// How to hand a view to CBLAS in row-major terms: (transpose flag, leading dimension),
    /// or None when neither axis is contiguous.
    fn layout(v: &ArrayView2<f32>) -> Option<(CBLAS_TRANSPOSE, i32)> {
        let (r, c) = (v.strides()[0], v.strides()[1]);
        if c == 1 && r >= v.ncols().max(1) as isize {
            Some((CBLAS_TRANSPOSE::CblasNoTrans, r as i32))
        } else if r == 1 && c >= v.nrows().max(1) as isize {
            Some((CBLAS_TRANSPOSE::CblasTrans, c as i32))
        } else {
            None
        }
    }

    /// The view itself when CBLAS can read it, else a row-major copy (the trainer makes none).
    fn contiguous(v: ArrayView2<'_, f32>) -> CowArray<'_, f32, Ix2> {
        match layout(&v) {
            Some(_) => CowArray::from(v),
            None => CowArray::from(v.as_standard_layout().into_owned()),
        }
    }

    pub fn sgemm(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
        single_threaded();
        // CBLAS writes C row-major; a column-major C is computed as Cᵀ = bᵀ·aᵀ.
        if c.strides()[1] != 1 {
            let ct = c.view_mut().reversed_axes();
            return sgemm(b.reversed_axes(), a.reversed_axes(), ct, accumulate);
        }
        // Views with neither axis contiguous are copied; the trainer never makes any.
        let (a, b) = (contiguous(a), contiguous(b));
        let (ta, lda) = layout(&a.view()).expect("contiguous after the copy");
        let (tb, ldb) = layout(&b.view()).expect("contiguous after the copy");
        let (m, k) = a.dim();
        let n = b.ncols();
        let ldc = c.strides()[0].max(n as isize) as i32;
        // SAFETY: shapes checked by `matmul`; leading dimensions come from the views' strides,
        // so CBLAS reads and writes only the views' elements.
        unsafe {
            cblas_sgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                ta,
                tb,
                m as i32,
                n as i32,
                k as i32,
                1.0,
                a.as_ptr(),
                lda,
                b.as_ptr(),
                ldb,
                if accumulate { 1.0 } else { 0.0 },
                c.as_mut_ptr(),
                ldc,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Array2<f32> {
        Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0f32..1.0))
    }

    #[test]
    fn fast_matches_naive_on_random_shapes_and_layouts() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Odd tails on every axis, plus the fc step's real shapes.
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 784, 13),
            (129, 65, 31),
            (512, 64, 784),
        ];
        for &(m, k, n) in &shapes {
            for transpose_a in [false, true] {
                for transpose_b in [false, true] {
                    for accumulate in [false, true] {
                        let a_store = if transpose_a {
                            random(&mut rng, k, m)
                        } else {
                            random(&mut rng, m, k)
                        };
                        let b_store = if transpose_b {
                            random(&mut rng, n, k)
                        } else {
                            random(&mut rng, k, n)
                        };
                        let a = if transpose_a { a_store.t() } else { a_store.view() };
                        let b = if transpose_b { b_store.t() } else { b_store.view() };
                        let c0 = random(&mut rng, m, n);
                        let mut fast = c0.clone();
                        let mut slow = c0.clone();
                        matmul(a, b, fast.view_mut(), accumulate);
                        matmul_naive(a, b, slow.view_mut(), accumulate);
                        for ((i, j), &f) in fast.indexed_iter() {
                            let s = slow[[i, j]];
                            // f32 sums of k products of magnitude < 1: error well under 1e-5·k.
                            let tol = 1e-5 * (k as f32).max(1.0);
                            assert!(
                                (f - s).abs() <= tol,
                                "({m},{k},{n}) ta={transpose_a} tb={transpose_b} acc={accumulate} at ({i},{j}): fast {f} naive {s}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_output_view() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let a = random(&mut rng, 6, 4);
        let b = random(&mut rng, 4, 5);
        let mut ct = Array2::<f32>::zeros((5, 6));
        matmul(a.view(), b.view(), ct.view_mut().reversed_axes(), false);
        let mut c = Array2::<f32>::zeros((6, 5));
        matmul_naive(a.view(), b.view(), c.view_mut(), false);
        for ((i, j), &v) in c.indexed_iter() {
            assert!((ct[[j, i]] - v).abs() < 1e-5, "({i},{j}): {} vs {v}", ct[[j, i]]);
        }
    }

    #[test]
    fn empty_inner_dimension_zeroes_or_keeps() {
        let a = Array2::<f32>::zeros((2, 0));
        let b = Array2::<f32>::zeros((0, 3));
        let mut c = Array2::<f32>::from_elem((2, 3), 5.0);
        matmul(a.view(), b.view(), c.view_mut(), true);
        assert!(c.iter().all(|&v| v == 5.0));
        matmul(a.view(), b.view(), c.view_mut(), false);
        assert!(c.iter().all(|&v| v == 0.0));
    }
}
