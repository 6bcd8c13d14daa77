//! Principal component analysis: the linear baseline every autoencoder is held against.
//!
//! [`Pca::fit`] centres the data, forms the covariance `XcᵀXc/(N−1)` with [`matmul`] (f32
//! products over chunks of rows, summed in f64, chunks in parallel on rayon's global pool, in a
//! fixed order, so the result does not depend on the thread count), and eigen-decomposes it in
//! f64 with [`nalgebra::SymmetricEigen`]. Axes are sorted by
//! decreasing eigenvalue and each is signed so that its largest-magnitude entry (the lowest index
//! on ties) is positive, so fits are reproducible. [`Pca::fit_many`] shares one decomposition
//! between several `K`; [`Pca::truncated`] keeps the leading axes of a fit.
//!
//! On MNIST (60,000 × 784) the fit takes about a second on 2 cores; `examples/pca_mnist.rs`
//! measures it and the test-set errors.

use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::matmul::matmul;
use crate::mnist::{Split, PIXELS};

/// Rows per covariance chunk: each chunk's `XcᵀXc` is summed in f32 by `matmul`, chunks in f64.
const CHUNK_ROWS: usize = 2048;
/// Chunks computed in parallel before they are added, in order, to the f64 sum (bounds memory to
/// this many `(D, D)` f32 partial products).
const CHUNKS_PER_ROUND: usize = 8;

/// What is wrong with a PCA request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    /// Zero components were asked for.
    #[error("k = 0 components requested; PCA needs at least one")]
    ZeroComponents,
    /// More components than the data has features.
    #[error("k = {k} components requested, but the data has only D = {d} features")]
    TooManyComponents {
        /// Components requested.
        k: usize,
        /// Features (columns) of the data.
        d: usize,
    },
    /// More components than a fitted PCA holds.
    #[error("cannot truncate to k = {k} components: the fit holds only {available}")]
    TruncateBeyond {
        /// Components requested.
        k: usize,
        /// Components the fit holds.
        available: usize,
    },
    /// Fewer than two samples: no covariance can be estimated.
    #[error("PCA needs at least 2 samples (rows) to estimate a covariance, got N = {n}")]
    TooFewSamples {
        /// Samples (rows) given.
        n: usize,
    },
    /// A NaN or infinite input value.
    #[error("input value {value} at row {row}, column {col} is not finite")]
    NonFinite {
        /// Row of the first non-finite value (row-major order).
        row: usize,
        /// Its column.
        col: usize,
        /// The value.
        value: f32,
    },
}

/// A fitted PCA with `K` components over `D` features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Mean of the training data, `(D)`.
    pub mean: Array1<f32>,
    /// Principal axes as rows, `(K, D)`: orthonormal, by decreasing variance, each with its
    /// largest-magnitude entry positive.
    pub components: Array2<f32>,
    /// Variance of the training data along each axis (the covariance's eigenvalues, with the
    /// `N−1` denominator, negative rounding clamped to 0), `K` values, decreasing.
    pub explained_variance: Vec<f64>,
}

impl Pca {
    /// Fits `k` principal components to the rows of `x`.
    // x: (N, D) -> components: (K, D)
    pub fn fit(x: ArrayView2<f32>, k: usize) -> Result<Pca, PcaError> {
        let mut fits = Pca::fit_many(x, &[k])?;
        Ok(fits.pop().expect("one fit per requested k"))
    }

    /// Fits once and returns one PCA per entry of `ks` (in that order), all sharing one
    /// covariance and one eigen-decomposition. Every `k` is checked before any work is done.
    // x: (N, D) -> for each k: components (k, D)
    pub fn fit_many(x: ArrayView2<f32>, ks: &[usize]) -> Result<Vec<Pca>, PcaError> {
        let (n, d) = x.dim();
        for &k in ks {
            check_k(k, d)?;
        }
        if n < 2 {
            return Err(PcaError::TooFewSamples { n });
        }
        check_finite(x)?;
        let Some(&k_max) = ks.iter().max() else {
            return Ok(Vec::new());
        };
        let full = fit_full(x, k_max);
        ks.iter().map(|&k| full.truncated(k)).collect()
    }

    /// The same fit keeping only its first `k` components.
    pub fn truncated(&self, k: usize) -> Result<Pca, PcaError> {
        if k == 0 {
            return Err(PcaError::ZeroComponents);
        }
        if k > self.k() {
            return Err(PcaError::TruncateBeyond { k, available: self.k() });
        }
        Ok(Pca {
            mean: self.mean.clone(),
            components: self.components.slice(s![..k, ..]).to_owned(),
            explained_variance: self.explained_variance[..k].to_vec(),
        })
    }

    /// Number of components `K`.
    pub fn k(&self) -> usize {
        self.components.nrows()
    }

    /// Number of features `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Codes: coordinates of the centred rows along the axes.
    ///
    /// # Panics
    /// If `x` does not have `D` columns.
    // x: (N, D) -> codes: (N, K)
    pub fn transform(&self, x: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(
            x.ncols(),
            self.dim(),
            "Pca::transform: input has {} columns, the fit has D = {}",
            x.ncols(),
            self.dim()
        );
        let xc = &x - &self.mean; // (N, D)
        let mut codes = Array2::zeros((x.nrows(), self.k()));
        matmul(xc.view(), self.components.t(), codes.view_mut(), false);
        codes
    }

    /// Reconstruction from codes: `mean + codes · components`.
    ///
    /// # Panics
    /// If `codes` does not have `K` columns.
    // codes: (N, K) -> x̂: (N, D)
    pub fn reconstruct(&self, codes: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(
            codes.ncols(),
            self.k(),
            "Pca::reconstruct: codes have {} columns, the fit has K = {}",
            codes.ncols(),
            self.k()
        );
        let mut out = Array2::zeros((codes.nrows(), self.dim()));
        matmul(codes, self.components.view(), out.view_mut(), false);
        out += &self.mean;
        out
    }

    /// Mean squared reconstruction error per element, `Σ (x − x̂)² / (N·D)` (the trainer's
    /// `test_mse`).
    ///
    /// # Panics
    /// If `x` has no rows or not `D` columns.
    // x: (N, D) -> scalar
    pub fn mse(&self, x: ArrayView2<f32>) -> f64 {
        self.squared_error_sum(x) / (x.nrows() * self.dim()) as f64
    }

    /// Squared reconstruction error summed over an image's `D` pixels, averaged over the images:
    /// `Σ (x − x̂)² / N`, which is `mse · D`.
    ///
    /// # Panics
    /// If `x` has no rows or not `D` columns.
    // x: (N, D) -> scalar
    pub fn per_image_squared_error(&self, x: ArrayView2<f32>) -> f64 {
        self.squared_error_sum(x) / x.nrows() as f64
    }

    /// `Σ (x − x̂)²` in f64.
    // x: (N, D) -> scalar
    fn squared_error_sum(&self, x: ArrayView2<f32>) -> f64 {
        assert!(x.nrows() > 0, "Pca: reconstruction error of no rows");
        let recon = self.reconstruct(self.transform(x).view()); // (N, D)
        x.iter()
            .zip(recon.iter())
            .map(|(&a, &b)| {
                let e = (a - b) as f64;
                e * e
            })
            .sum()
    }
}

fn check_k(k: usize, d: usize) -> Result<(), PcaError> {
    if k == 0 {
        Err(PcaError::ZeroComponents)
    } else if k > d {
        Err(PcaError::TooManyComponents { k, d })
    } else {
        Ok(())
    }
}

/// The first non-finite value in row-major order, as an error.
fn check_finite(x: ArrayView2<f32>) -> Result<(), PcaError> {
    for (row, r) in x.outer_iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(PcaError::NonFinite {
                row,
                col,
                value: r[col],
            });
        }
    }
    Ok(())
}

/// Fits `k` components; the input is checked (N ≥ 2, 1 ≤ k ≤ D, finite).
// x: (N, D) -> components: (k, D)
fn fit_full(x: ArrayView2<f32>, k: usize) -> Pca {
    let d = x.ncols();
    let mean = column_mean(x); // (D)
    let cov = covariance(x, &mean); // (D, D)
    let eig = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_fn(d, d, |i, j| cov[[i, j]]));
    // Decreasing eigenvalue; equal ones keep nalgebra's order.
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut components = Array2::<f32>::zeros((k, d));
    let mut explained_variance = Vec::with_capacity(k);
    for (row, &idx) in order[..k].iter().enumerate() {
        let mut axis: Vec<f64> = eig.eigenvectors.column(idx).iter().copied().collect();
        fix_sign(&mut axis);
        for (c, &v) in components.row_mut(row).iter_mut().zip(&axis) {
            *c = v as f32;
        }
        explained_variance.push(eig.eigenvalues[idx].max(0.0));
    }
    Pca {
        mean: mean.mapv(|m| m as f32),
        components,
        explained_variance,
    }
}

/// Column means, summed in f64 row by row (no f64 copy of `x`).
// x: (N, D) -> mean: (D)
fn column_mean(x: ArrayView2<f32>) -> Array1<f64> {
    let mut sum = Array1::<f64>::zeros(x.ncols());
    for row in x.outer_iter() {
        sum.zip_mut_with(&row, |s, &v| *s += v as f64);
    }
    sum / x.nrows() as f64
}

/// Flips `axis` so that its largest-magnitude entry (the lowest index on ties) is positive.
fn fix_sign(axis: &mut [f64]) {
    let mut best = 0;
    for (i, v) in axis.iter().enumerate() {
        if v.abs() > axis[best].abs() {
            best = i;
        }
    }
    if axis.get(best).is_some_and(|&v| v < 0.0) {
        axis.iter_mut().for_each(|v| *v = -*v);
    }
}

/// Sample covariance `XcᵀXc/(N−1)`, symmetric, in f64.
// x: (N, D), mean: (D) -> cov: (D, D)
fn covariance(x: ArrayView2<f32>, mean: &Array1<f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let mean32 = mean.mapv(|m| m as f32); // (D)
    let starts: Vec<usize> = (0..n).step_by(CHUNK_ROWS).collect();
    let mut acc = Array2::<f64>::zeros((d, d));
    for round in starts.chunks(CHUNKS_PER_ROUND) {
        let parts: Vec<Array2<f32>> = round
            .par_iter()
            .map(|&start| {
                let rows = x.slice(s![start..(start + CHUNK_ROWS).min(n), ..]);
                let xc = &rows - &mean32; // (R, D)
                let mut part = Array2::<f32>::zeros((d, d));
                matmul(xc.t(), xc.view(), part.view_mut(), false);
                part
            })
            .collect();
        for part in &parts {
            acc.zip_mut_with(part, |a, &p| *a += p as f64);
        }
    }
    // The f32 products need not be exactly symmetric; average the two triangles.
    let scale = 1.0 / (n - 1) as f64;
    Array2::from_shape_fn((d, d), |(i, j)| 0.5 * (acc[[i, j]] + acc[[j, i]]) * scale)
}

/// The images of a split as rows of pixels in [0, 1].
// -> (N, D)
pub fn pixels(split: &Split) -> Array2<f32> {
    Array2::from_shape_fn((split.len(), PIXELS), |(i, j)| {
        split.images[i * PIXELS + j] as f32 / 255.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Axis};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal, Uniform};

    fn gaussian(rng: &mut ChaCha8Rng, n: usize, stds: &[f32]) -> Array2<f32> {
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        Array2::from_shape_fn((n, stds.len()), |(_, j)| stds[j] * normal.sample(rng))
    }

    fn uniform(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f32> {
        let u = Uniform::new(-1.0f32, 1.0).unwrap();
        Array2::from_shape_fn((n, d), |_| u.sample(rng))
    }

    fn max_abs_diff(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// Components are orthonormal rows: C·Cᵀ = I.
    fn assert_orthonormal(p: &Pca) {
        let c = p.components.mapv(|v| v as f64);
        let g = c.dot(&c.t());
        for ((i, j), &v) in g.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-5, "C·Cᵀ[{i},{j}] = {v}");
        }
    }

    #[test]
    fn plane_in_3d_is_reconstructed_exactly_by_two_components() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // An orthonormal basis of a tilted plane, its normal, and an offset.
        let u = array![1.0f32, 2.0, 2.0] / 3.0;
        let v = array![2.0f32, 1.0, -2.0] / 3.0;
        let normal = array![2.0f32, -2.0, 1.0] / 3.0;
        let offset = array![5.0f32, -3.0, 1.5];
        let ab = gaussian(&mut rng, 500, &[3.0, 1.0]); // (N, 2)
        let basis = ndarray::stack![Axis(0), u, v]; // (2, 3)
        let x = ab.dot(&basis) + &offset; // (N, 3)

        let [p2, p3]: [Pca; 2] = Pca::fit_many(x.view(), &[2, 3]).unwrap().try_into().unwrap();
        assert!(p2.mse(x.view()) < 1e-10, "mse {}", p2.mse(x.view()));
        assert!(max_abs_diff(p2.reconstruct(p2.transform(x.view()).view()).view(), x.view()) < 1e-4);
        // The two axes lie in the plane; the third is its normal, with ~zero variance.
        for r in 0..2 {
            let along_normal: f32 = p2.components.row(r).dot(&normal);
            assert!(along_normal.abs() < 1e-5, "axis {r} leaves the plane: {along_normal}");
        }
        assert!(
            p3.explained_variance[2] < 1e-6 * p3.explained_variance[0],
            "{:?}",
            p3.explained_variance
        );
        let third = p3.components.row(2);
        assert!(
            (third.dot(&normal).abs() - 1.0).abs() < 1e-5,
            "third axis {third} is not the normal"
        );
        // The first axis carries the larger spread (std 3 along u).
        assert!((p2.components.row(0).dot(&u).abs() - 1.0).abs() < 1e-3);
        assert!((p2.mean.to_owned() - &offset).iter().all(|e| e.abs() < 0.5));
        assert_orthonormal(&p3);
    }

    #[test]
    fn axis_aligned_gaussian_gives_the_axes_by_decreasing_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        // Variances 4, 1, 9 on axes 0, 1, 2: the axes must come out as 2, 0, 1.
        let x = gaussian(&mut rng, 20_000, &[2.0, 1.0, 3.0]) + &array![10.0f32, -4.0, 0.5];
        let p = Pca::fit(x.view(), 3).unwrap();
        let want_axes = [2, 0, 1];
        let want_var = [9.0, 4.0, 1.0];
        for r in 0..3 {
            let row = p.components.row(r);
            // Signed: the largest entry is positive, so the axis is +e_j, not −e_j.
            assert!(row[want_axes[r]] > 0.999, "axis {r}: {row}");
            // Sample variance of N draws has relative std sqrt(2/N) = 1 %; allow 4 %.
            let got = p.explained_variance[r];
            assert!(
                (got / want_var[r] - 1.0).abs() < 0.04,
                "variance {r}: {got} vs {}",
                want_var[r]
            );
        }
        assert_orthonormal(&p);
    }

    #[test]
    fn reconstruction_error_is_the_dropped_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 3000;
        let x = gaussian(&mut rng, n, &[3.0, 2.0, 1.0, 0.5]);
        let full = Pca::fit(x.view(), 4).unwrap();
        for k in 1..4 {
            let p = full.truncated(k).unwrap();
            // Σ over training rows of the residual² = (N−1) · Σ dropped eigenvalues.
            let dropped: f64 = full.explained_variance[k..].iter().sum();
            let want = (n - 1) as f64 / n as f64 * dropped;
            let got = p.per_image_squared_error(x.view());
            assert!((got / want - 1.0).abs() < 1e-4, "k = {k}: {got} vs {want}");
            assert!((p.mse(x.view()) * 4.0 / got - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn round_trip_with_all_components_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = uniform(&mut rng, 60, 7) + 0.3;
        let p = Pca::fit(x.view(), 7).unwrap();
        let codes = p.transform(x.view());
        assert_eq!(codes.dim(), (60, 7));
        let back = p.reconstruct(codes.view());
        assert!(max_abs_diff(back.view(), x.view()) < 1e-5);
        // A strided (transposed) input gives the same codes.
        let xt = x.t().to_owned();
        assert!(max_abs_diff(p.transform(xt.t()).view(), codes.view()) < 1e-6);
        assert_orthonormal(&p);
    }

    #[test]
    fn sign_convention_makes_the_largest_entry_positive() {
        let mut axis = vec![0.3, -0.9, 0.1];
        fix_sign(&mut axis);
        assert_eq!(axis, vec![-0.3, 0.9, -0.1]);
        // Ties go to the lowest index.
        let mut tie = vec![-0.5, 0.5, 0.0];
        fix_sign(&mut tie);
        assert_eq!(tie, vec![0.5, -0.5, -0.0]);
        let mut kept = vec![0.1, 0.8, -0.2];
        fix_sign(&mut kept);
        assert_eq!(kept, vec![0.1, 0.8, -0.2]);

        // A cloud stretched along (1, −2, 0)/√5 must give exactly (−1, 2, 0)/√5, on every fit.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let t = gaussian(&mut rng, 2000, &[4.0, 0.2, 0.2, 0.2]);
        let dir = array![1.0f32, -2.0, 0.0] / 5f32.sqrt();
        let x = Array2::from_shape_fn((2000, 3), |(i, j)| t[[i, 0]] * dir[j] + t[[i, j + 1]]);
        let p = Pca::fit(x.view(), 3).unwrap();
        let want = -dir;
        let first = p.components.row(0);
        assert!((&first - &want).iter().all(|e| e.abs() < 0.01), "first axis {first}");
        for row in p.components.outer_iter() {
            let big = row
                .iter()
                .copied()
                .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            assert!(big > 0.0, "axis {row} has a negative largest entry");
        }
        // Reversed row order and negated data describe the same cloud: same signed axes.
        let reversed = x.slice(s![..;-1, ..]);
        let negated = -&x;
        for other in [reversed.view(), negated.view()] {
            let q = Pca::fit(other, 3).unwrap();
            assert!(max_abs_diff(q.components.view(), p.components.view()) < 1e-4);
        }
        // And fitting twice is bit-identical.
        assert_eq!(Pca::fit(x.view(), 3).unwrap(), p);
    }

    #[test]
    fn every_error_is_reported() {
        let x = Array2::<f32>::zeros((5, 3));
        assert_eq!(Pca::fit(x.view(), 0), Err(PcaError::ZeroComponents));
        assert_eq!(Pca::fit(x.view(), 4), Err(PcaError::TooManyComponents { k: 4, d: 3 }));
        assert_eq!(
            Pca::fit(Array2::<f32>::zeros((1, 3)).view(), 2),
            Err(PcaError::TooFewSamples { n: 1 })
        );
        assert_eq!(
            Pca::fit(Array2::<f32>::zeros((0, 3)).view(), 2),
            Err(PcaError::TooFewSamples { n: 0 })
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut y = x.clone();
            y[[3, 1]] = bad;
            y[[4, 0]] = bad;
            match Pca::fit(y.view(), 2) {
                Err(PcaError::NonFinite { row: 3, col: 1, value }) => {
                    assert_eq!(value.to_bits(), bad.to_bits())
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // fit_many checks every k, even after a valid one.
        assert_eq!(
            Pca::fit_many(x.view(), &[2, 9, 1]),
            Err(PcaError::TooManyComponents { k: 9, d: 3 })
        );
        assert_eq!(Pca::fit_many(x.view(), &[1, 0]), Err(PcaError::ZeroComponents));
        assert_eq!(Pca::fit_many(x.view(), &[]), Ok(vec![]));
        let p = Pca::fit(x.view(), 2).unwrap();
        assert_eq!(p.truncated(3), Err(PcaError::TruncateBeyond { k: 3, available: 2 }));
        assert_eq!(p.truncated(0), Err(PcaError::ZeroComponents));
        // The messages name the numbers.
        let msg = PcaError::TooManyComponents { k: 9, d: 3 }.to_string();
        assert!(msg.contains("k = 9") && msg.contains("D = 3"), "{msg}");
        let msg = PcaError::NonFinite {
            row: 3,
            col: 1,
            value: f32::NAN,
        }
        .to_string();
        assert!(msg.contains("row 3") && msg.contains("column 1"), "{msg}");
    }

    #[test]
    #[should_panic(expected = "input has 4 columns, the fit has D = 3")]
    fn transform_rejects_the_wrong_width() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let p = Pca::fit(uniform(&mut rng, 10, 3).view(), 2).unwrap();
        p.transform(Array2::<f32>::zeros((2, 4)).view());
    }

    #[test]
    fn fit_many_equals_separate_fits() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = uniform(&mut rng, 300, 9) * &Array1::linspace(0.5f32, 3.0, 9);
        let ks = [3, 1, 9, 3];
        let many = Pca::fit_many(x.view(), &ks).unwrap();
        assert_eq!(many.len(), ks.len());
        for (p, &k) in many.iter().zip(&ks) {
            assert_eq!(p.k(), k);
            assert_eq!(*p, Pca::fit(x.view(), k).unwrap(), "k = {k}");
            // Truncation keeps the leading rows of the full fit.
            assert_eq!(p.components, many[2].components.slice(s![..k, ..]));
        }
        let ev = &many[2].explained_variance;
        assert!(ev.windows(2).all(|w| w[0] >= w[1]), "{ev:?}");
    }

    #[test]
    fn chunked_covariance_matches_the_f64_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        // Several chunks and rounds, with a ragged last chunk, on a strided view.
        let n = CHUNK_ROWS * (CHUNKS_PER_ROUND + 2) + 37;
        let store = uniform(&mut rng, 6, n) + 2.0;
        let x = store.t(); // (N, 6)
        let mean = column_mean(x);
        let want_mean = x.map(|&v| v as f64).mean_axis(Axis(0)).unwrap();
        assert!((&mean - &want_mean).iter().all(|e| e.abs() < 1e-12));
        let got = covariance(x, &mean);
        let xc = x.map(|&v| v as f64) - &mean;
        let want = xc.t().dot(&xc) / (n - 1) as f64;
        for ((i, j), &w) in want.indexed_iter() {
            assert!(
                (got[[i, j]] - w).abs() < 1e-5 * (1.0 + w.abs()),
                "({i},{j}): {} vs {w}",
                got[[i, j]]
            );
            assert_eq!(got[[i, j]], got[[j, i]]);
        }
    }

    #[test]
    fn serde_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let p = Pca::fit(uniform(&mut rng, 20, 4).view(), 2).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: Pca = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
