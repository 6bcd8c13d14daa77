//! What a checkpoint holds: everything a run needs to continue exactly where it stopped.

use super::{EpochRecord, TrainError};
use crate::model::{Layer, Model};
use crate::optim::adam::Adam;
use crate::optim::plateau::Plateau;
use crate::recipe::Config;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Everything a run needs to continue exactly where it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// The run's knobs.
    pub config: Config,
    /// Model weights.
    pub model: Model,
    /// Current phase.
    pub phase: usize,
    /// Whether the current phase's start (untie, fresh optimiser) has happened.
    pub phase_started: bool,
    /// Epochs done in the current phase.
    pub epoch_in_phase: usize,
    /// Optimiser state.
    pub adam: Adam,
    /// Scheduler state.
    pub plateau: Plateau,
    /// Shuffling generator (ChaCha8, stream 1 of the seed).
    pub rng: ChaCha8Rng,
    /// Every epoch so far.
    pub history: Vec<EpochRecord>,
    /// Epochs run per phase.
    pub epochs_per_phase: Vec<usize>,
    /// Wall seconds spent so far, over all sessions of the run.
    pub elapsed_s: f64,
    /// All phases done.
    pub finished: bool,
}

impl State {
    /// The name of the phase the run is in (`?` once every phase is done).
    pub fn phase_name(&self) -> &str {
        self.config.phases.get(self.phase).map_or("?", |p| p.name.as_str())
    }

    /// Applies phase `p`'s start to the model (untie, grow, unfreeze) as the phase begins; a
    /// new greedy stage uses the spec's hidden activation.
    pub fn apply_phase_start(&mut self, p: usize) {
        let activation = self.config.architecture.hidden_activation().unwrap_or(Layer::Sigmoid);
        self.config.phases[p]
            .start
            .apply(&mut self.model, self.config.seed, p, &activation);
    }

    /// A fresh run of `config`: its architecture's model for its input shape, from ChaCha8
    /// stream 0 of the seed.
    pub fn new(config: Config) -> Result<State, TrainError> {
        if config.input_shape.is_empty() {
            return Err(TrainError::Config(format!("{}: no input shape", config.variant)));
        }
        let model = config
            .architecture
            .build(&config.input_shape, &mut ChaCha8Rng::seed_from_u64(config.seed))
            .map_err(|rule| TrainError::Config(format!("{}: {}: {}", config.variant, rule.key, rule.message)))?;
        State::with_model(config, model)
    }

    /// A fresh run of `config` on a model built by the caller: recipes' pieces composed anew.
    pub fn with_model(config: Config, model: Model) -> Result<State, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        model.widths().map_err(|e| TrainError::Config(format!("model: {e}")))?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(1);
        let adam = Adam::new(config.lr, model.params.iter().map(|p| p.value.dim()));
        Ok(State {
            plateau: Plateau::new(config.plateau),
            epochs_per_phase: vec![0; config.phases.len()],
            config,
            model,
            phase: 0,
            phase_started: false,
            epoch_in_phase: 0,
            adam,
            rng,
            history: Vec::new(),
            elapsed_s: 0.0,
            finished: false,
        })
    }
}
