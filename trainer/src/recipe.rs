//! The experiments, one recipe each: the model, the phases of its schedule, the defaults.
//!
//! A recipe reads like the tutorial's experiment; every knob lives in [`Config`], filled with
//! the tutorial's values and overridden from the command line.

use crate::mnist::PIXELS;
use crate::model::Model;
use crate::optim::plateau::PlateauConfig;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What happens to the model when a phase begins. Every phase starts a fresh Adam and a fresh
/// plateau scheduler, as the tutorial re-creates both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhaseStart {
    /// Train the model as it is.
    Keep,
    /// Untie every tied decoder weight first (fine-tuning).
    Untie,
}

/// One phase of a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Name, used in logs, history and metrics (`tied`, `finetune`).
    pub name: String,
    /// Epoch cap; the phase also ends once the learning rate falls below the stop rate.
    pub max_epochs: usize,
    /// What to do to the model first.
    pub start: PhaseStart,
}

/// Every knob of a run, with the tutorial's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Recipe name.
    pub variant: String,
    /// Seeds initialisation (stream 0) and shuffling (stream 1) of ChaCha8.
    pub seed: u64,
    /// Threads, each computing one shard of every batch; results are identical for the same
    /// seed and thread count.
    pub threads: usize,
    /// Batch size, 512.
    pub batch_size: usize,
    /// Adam's initial learning rate, 1e-3.
    pub lr: f64,
    /// A phase ends once the learning rate is below this, 1e-5.
    pub stop_lr: f64,
    /// ReduceLROnPlateau's knobs.
    pub plateau: PlateauConfig,
    /// The schedule.
    pub phases: Vec<Phase>,
    /// Use only the first N training images (tests, quick looks).
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    pub test_limit: Option<usize>,
}

/// An experiment.
pub struct Recipe {
    /// CLI name.
    pub name: &'static str,
    /// One line for `trainer list`.
    pub about: &'static str,
    /// Builds the initial model from the initialisation generator.
    pub build: fn(&mut ChaCha8Rng) -> Model,
    /// Phase names, caps and starts.
    pub phases: &'static [(&'static str, usize, PhaseStart)],
}

/// Every known recipe.
pub const RECIPES: &[Recipe] = &[Recipe {
    name: "fc",
    about: "784-64-784 LeakyReLU autoencoder: tied weights up to 100 epochs, then untied fine-tuning up to 50",
    build: |rng| Model::fc_tied(PIXELS, 64, rng),
    phases: &[("tied", 100, PhaseStart::Keep), ("finetune", 50, PhaseStart::Untie)],
}];

/// The recipe called `name`.
pub fn find(name: &str) -> Result<&'static Recipe, String> {
    RECIPES.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<_> = RECIPES.iter().map(|r| r.name).collect();
        format!("unknown variant '{name}'; known: {}", known.join(", "))
    })
}

impl Recipe {
    /// The tutorial's configuration of this recipe.
    pub fn config(&self, seed: u64, threads: usize) -> Config {
        Config {
            variant: self.name.to_string(),
            seed,
            threads,
            batch_size: 512,
            lr: 1e-3,
            stop_lr: 1e-5,
            plateau: PlateauConfig::default(),
            phases: self
                .phases
                .iter()
                .map(|&(name, max_epochs, start)| Phase {
                    name: name.to_string(),
                    max_epochs,
                    start,
                })
                .collect(),
            train_limit: None,
            test_limit: None,
        }
    }
}

impl Config {
    /// Caps the epochs: `finetune` phases get `finetune`, every other phase `epochs`.
    pub fn cap_epochs(&mut self, epochs: Option<usize>, finetune: Option<usize>) {
        for phase in &mut self.phases {
            let cap = if phase.name == "finetune" { finetune } else { epochs };
            if let Some(cap) = cap {
                phase.max_epochs = cap;
            }
        }
    }

    /// Checks the knobs make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("threads must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("batch size must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("learning rate {} must be positive and finite", self.lr));
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return Err("--train-limit and --test-limit must be at least 1".into());
        }
        Ok(())
    }
}
