//! The validation split when there is no test set: a seeded sixth of the training samples.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::DataError;
use super::samples::Samples;

/// The indices held out of `n` samples for validation, ascending: `n / 6` of them (at least 1),
/// the first of a ChaCha8 shuffle of `0..n` seeded with `seed`. `None` when `n < 2`.
pub fn holdout_indices(n: usize, seed: u64) -> Option<Vec<usize>> {
    if n < 2 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut held = order[..(n / 6).max(1)].to_vec();
    held.sort_unstable();
    Some(held)
}

/// Splits `samples` into (training, validation) by [`holdout_indices`]; each part keeps the
/// original order (and its labels). Deterministic in `seed`. Fewer than 2 samples is
/// [`DataError::TooFewToHoldOut`].
pub fn holdout(samples: &Samples, seed: u64) -> Result<(Samples, Samples), DataError> {
    let n = samples.len();
    let held = holdout_indices(n, seed).ok_or_else(|| DataError::TooFewToHoldOut {
        at: samples.origin().clone(),
        n,
    })?;
    let mut is_held = vec![false; n];
    for &i in &held {
        is_held[i] = true;
    }
    let kept: Vec<usize> = (0..n).filter(|&i| !is_held[i]).collect();
    Ok((samples.select(&kept), samples.select(&held)))
}
