//! `torch.optim.lr_scheduler.ReduceLROnPlateau` in mode `min` with a relative threshold.
//!
//! Each epoch: the metric counts as an improvement if `metric < best·(1 - threshold)`;
//! otherwise the bad-epoch count grows, and once it exceeds `patience` the learning rate is
//! multiplied by `factor` (not below `min_lr`, and only if it changes by more than 1e-8), the
//! count resets and `cooldown` epochs pass before bad epochs count again.

use serde::{Deserialize, Serialize};

/// The scheduler's knobs, PyTorch's names.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlateauConfig {
    /// Multiplier applied to the learning rate on a plateau.
    pub factor: f64,
    /// Bad epochs tolerated before a reduction.
    pub patience: u32,
    /// Relative improvement needed to count as better.
    pub threshold: f64,
    /// Epochs after a reduction during which bad epochs are not counted.
    pub cooldown: u32,
    /// Lower bound on the learning rate.
    pub min_lr: f64,
}

impl Default for PlateauConfig {
    /// The tutorial's: factor 0.1, patience 10, threshold 1e-4, no cooldown, no floor.
    fn default() -> Self {
        PlateauConfig {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }
}

/// Scheduler state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plateau {
    /// Its configuration.
    pub config: PlateauConfig,
    /// Best metric so far (starts at +inf).
    pub best: f64,
    /// Epochs since the last improvement.
    pub num_bad_epochs: u32,
    /// Cooldown epochs left.
    pub cooldown_counter: u32,
}

impl Plateau {
    /// A fresh scheduler.
    pub fn new(config: PlateauConfig) -> Plateau {
        Plateau {
            config,
            best: f64::INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
        }
    }

    /// Feeds one epoch's metric; lowers `lr` in place on a plateau and returns whether it did.
    pub fn step(&mut self, metric: f64, lr: &mut f64) -> bool {
        if metric < self.best * (1.0 - self.config.threshold) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.config.patience {
            self.cooldown_counter = self.config.cooldown;
            self.num_bad_epochs = 0;
            let new_lr = (*lr * self.config.factor).max(self.config.min_lr);
            if *lr - new_lr > 1e-8 {
                *lr = new_lr;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: PlateauConfig, metrics: &[f64]) -> Vec<f64> {
        let mut s = Plateau::new(config);
        let mut lr = 1e-3;
        metrics
            .iter()
            .map(|&m| {
                s.step(m, &mut lr);
                lr
            })
            .collect()
    }

    #[test]
    fn reduces_after_patience_plus_one_bad_epochs() {
        let config = PlateauConfig {
            patience: 2,
            ..Default::default()
        };
        // best 1.0 at epoch 0; epochs 1-3 are bad (1 ≥ 1·(1 - 1e-4)); the third exceeds patience.
        let lrs = run(config, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(lrs[..3], [1e-3, 1e-3, 1e-3]);
        assert!((lrs[3] - 1e-4).abs() < 1e-18, "{lrs:?}");
        assert!((lrs[6] - 1e-5).abs() < 1e-18, "{lrs:?}");
    }

    #[test]
    fn improvements_below_the_relative_threshold_do_not_count() {
        let config = PlateauConfig {
            patience: 1,
            ..Default::default()
        };
        // 0.99995 is not < 1·(1 - 1e-4) = 0.9999: bad; 0.9 is better and resets the count.
        let lrs = run(config, &[1.0, 0.99995, 0.9, 0.89999, 0.89995]);
        assert_eq!(lrs[..4], [1e-3, 1e-3, 1e-3, 1e-3]);
        assert!((lrs[4] - 1e-4).abs() < 1e-18, "{lrs:?}");
    }

    #[test]
    fn cooldown_suspends_counting() {
        let config = PlateauConfig {
            patience: 0,
            cooldown: 2,
            ..Default::default()
        };
        // patience 0: the first bad epoch reduces, then two cooldown epochs, then reduce again.
        let lrs = run(config, &[1.0, 1.0, 1.0, 1.0, 1.0]);
        let expected = [1e-3, 1e-4, 1e-4, 1e-4, 1e-5];
        for (a, b) in lrs.iter().zip(expected) {
            assert!((a - b).abs() < 1e-18, "{lrs:?}");
        }
    }

    #[test]
    fn min_lr_floor_and_the_tutorials_stop_sequence() {
        // 1e-3 → 1e-4 → 1e-5 (as f64: 1.0000000000000002e-5, not below 1e-5) → 1e-6: the
        // tutorial's `lr < 1e-5` stop fires only after the third reduction, as in PyTorch.
        let mut lr = 1e-3f64;
        let mut reductions = 0;
        while lr >= 1e-5 {
            lr *= 0.1;
            reductions += 1;
        }
        assert_eq!(reductions, 3);
        let config = PlateauConfig {
            patience: 0,
            min_lr: 5e-4,
            ..Default::default()
        };
        let lrs = run(config, &[1.0, 1.0, 1.0]);
        assert_eq!(lrs, [1e-3, 5e-4, 5e-4]);
    }

    #[test]
    fn nan_metric_counts_as_bad() {
        let config = PlateauConfig {
            patience: 0,
            ..Default::default()
        };
        let lrs = run(config, &[1.0, f64::NAN]);
        assert!((lrs[1] - 1e-4).abs() < 1e-18);
    }
}
