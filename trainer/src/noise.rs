//! Input corruption for denoising: the network sees the corrupted image, the loss compares
//! with the clean one.
//!
//! Every image's noise comes from its own ChaCha8 stream, keyed by a seed and the image's
//! position, so shards draw it in parallel and a resumed run draws exactly the same noise.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// A corruption of the input.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Noise {
    /// Add N(0, variance) to every pixel, then clip to [0, 1].
    Gaussian {
        /// Variance of the noise (0.1 in the tutorial).
        variance: f32,
    },
    /// Set exactly `round(fraction · pixels)` pixels, chosen afresh, to 0.
    Mask {
        /// Fraction of pixels masked (0.25 in the tutorial).
        fraction: f32,
    },
}

/// The stream key of the image at `position` of epoch `epoch`'s order, the same whoever draws
/// its noise (a CPU shard or the host for a device).
pub fn key(epoch: u64, position: usize) -> u64 {
    (epoch << 32) | position as u64
}

/// The generator for one image: `seed`, then stream `key` (e.g. [`key`]).
pub fn rng(seed: u64, key: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(key);
    r
}

impl Noise {
    /// Corrupts one image in place (pixels in [0, 1]).
    pub fn apply(&self, pixels: &mut [f32], rng: &mut ChaCha8Rng) {
        match *self {
            Noise::Gaussian { variance } => {
                let normal = Normal::new(0.0f32, variance.sqrt()).expect("finite, non-negative variance");
                for p in pixels.iter_mut() {
                    *p = (*p + normal.sample(rng)).clamp(0.0, 1.0);
                }
            }
            Noise::Mask { fraction } => {
                let n = pixels.len();
                let count = ((fraction as f64 * n as f64).round() as usize).min(n);
                for i in sample(rng, n, count) {
                    pixels[i] = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<f32> {
        (0..784)
            .map(|i| ((i * 37) % 256) as f32 / 255.0 + 0.001)
            .map(|v: f32| v.min(1.0))
            .collect()
    }

    #[test]
    fn mask_zeroes_exactly_a_quarter_and_nothing_else() {
        let clean = image();
        assert!(clean.iter().all(|&p| p > 0.0));
        for key in 0..20 {
            let mut x = clean.clone();
            Noise::Mask { fraction: 0.25 }.apply(&mut x, &mut rng(1, key));
            assert_eq!(x.iter().filter(|&&p| p == 0.0).count(), 196, "key {key}");
            for (a, b) in x.iter().zip(&clean) {
                assert!(*a == 0.0 || a == b);
            }
        }
    }

    #[test]
    fn gaussian_is_clipped_and_has_the_asked_variance() {
        let mut x = vec![0.5f32; 100_000];
        Noise::Gaussian { variance: 0.01 }.apply(&mut x, &mut rng(2, 0));
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(
            (mean - 0.5).abs() < 2e-3 && (var - 0.01).abs() < 5e-4,
            "mean {mean} var {var}"
        );
        let mut y = image();
        Noise::Gaussian { variance: 0.1 }.apply(&mut y, &mut rng(3, 0));
        assert!(y.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(y.contains(&0.0) && y.contains(&1.0), "clipping happens");
    }

    #[test]
    fn reproducible_with_the_same_seed_and_key_only() {
        for noise in [Noise::Gaussian { variance: 0.1 }, Noise::Mask { fraction: 0.25 }] {
            let draw = |seed, key| {
                let mut x = image();
                noise.apply(&mut x, &mut rng(seed, key));
                x
            };
            assert_eq!(draw(5, 9), draw(5, 9));
            assert_ne!(draw(5, 9), draw(5, 10));
            assert_ne!(draw(5, 9), draw(6, 9));
        }
    }
}
