//! Central finite differences against an analytic gradient, for the layer tests.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `shape` array uniform in ±`scale`, from a fixed seed.
pub fn random(seed: u64, shape: (usize, usize), scale: f32) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn(shape, |_| rng.random_range(-scale..scale))
}

/// `Σ y ⊙ r` in f64: a test objective whose gradient with respect to `y` is `r`.
pub fn dot(y: &Array2<f32>, r: &Array2<f32>) -> f64 {
    y.iter().zip(r.iter()).map(|(&a, &c)| a as f64 * c as f64).sum()
}

/// Checks every element of `analytic` against `(f(x + h) - f(x - h)) / 2h` for perturbations of
/// `x` with h = 1e-3, to a relative tolerance of 1e-2 (the forward passes run in f32).
pub fn check(name: &str, x: &Array2<f32>, analytic: &Array2<f32>, mut f: impl FnMut(&Array2<f32>) -> f64) {
    assert_eq!(x.dim(), analytic.dim(), "{name}: gradient shape");
    let h = 1e-3f32;
    let mut probe = x.clone();
    for (idx, &a) in analytic.indexed_iter() {
        let orig = probe[idx];
        probe[idx] = orig + h;
        let up = f(&probe);
        probe[idx] = orig - h;
        let down = f(&probe);
        probe[idx] = orig;
        // The step actually taken in f32, not the nominal h.
        let step = ((orig + h) as f64) - ((orig - h) as f64);
        let numeric = (up - down) / step;
        let tol = 1e-2 * numeric.abs().max(a.abs() as f64).max(1e-2);
        assert!(
            (numeric - a as f64).abs() <= tol,
            "{name} at {idx:?}: analytic {a}, finite difference {numeric}"
        );
    }
}
