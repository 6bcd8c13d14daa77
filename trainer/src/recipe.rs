//! The built-in experiments and a run's configuration.
//!
//! Every built-in variant is a spec file (`trainer/specs/<name>.toml`, see [`crate::spec`]),
//! compiled in: it reads like the tutorial's experiment. A spec becomes a [`Config`], every knob
//! of a run, overridden from the command line and stored in the run's checkpoint.

use crate::data::DataRecord;
use crate::layers::whole_batch::CodePenalty;
use crate::layers::{kl, l1};
use crate::mnist::SIDE;
use crate::model::{Layer, Model};
use crate::noise::Noise;
use crate::optim::plateau::PlateauConfig;
use crate::spec::{Architecture, Spec};
use rand::SeedableRng;
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
    /// Greedy layer-wise growth: freeze everything there is, then insert a new tied pair of
    /// this width around the code ([`Model::grow`]).
    Grow {
        /// Width of the new code.
        width: usize,
    },
    /// Unfreeze everything and untie every tied pair (fine-tuning a greedily grown network).
    UnfreezeUntie,
    /// As [`PhaseStart::Grow`], but the new code is linear ([`Model::grow_linear`]): the last
    /// stage of a deep autoencoder with a linear code layer.
    GrowLinear {
        /// Width of the new code.
        width: usize,
    },
    /// Unfreeze everything and keep every tied pair tied (fine-tuning a greedily grown network
    /// whose decoder goes on sharing the encoder's weights).
    Unfreeze,
}

impl PhaseStart {
    /// Does this start to `model` as phase `phase` of a run seeded `seed` begins. A new greedy
    /// stage draws its parameters from ChaCha8 stream `2 + phase` of the seed and uses
    /// `activation` (the spec's hidden activation).
    pub fn apply(self, model: &mut Model, seed: u64, phase: usize, activation: &Layer) {
        match self {
            PhaseStart::Keep => {}
            PhaseStart::Untie => {
                model.untie();
            }
            PhaseStart::Grow { width } | PhaseStart::GrowLinear { width } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(2 + phase as u64);
                model.freeze_all();
                if matches!(self, PhaseStart::GrowLinear { .. }) {
                    model.grow_linear(width, activation.clone(), &mut rng);
                } else {
                    model.grow(width, activation.clone(), &mut rng);
                }
            }
            PhaseStart::UnfreezeUntie => {
                model.unfreeze_all();
                model.untie();
            }
            PhaseStart::Unfreeze => model.unfreeze_all(),
        }
    }
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

/// A sparsity penalty on the codes, added to the reconstruction loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Penalty {
    /// `λ · mean(|c|)` over every code of the batch.
    L1 {
        /// λ.
        lambda: f32,
    },
    /// `λ · mean_j KL(ρ ‖ ρ̂_j)`, `ρ̂_j` the batch mean of code `j` (sigmoid codes).
    Kl {
        /// λ.
        lambda: f64,
        /// Target mean activation ρ.
        rho: f64,
    },
}

impl Penalty {
    /// The penalty as the training step applies it.
    pub fn code_penalty(self) -> Box<dyn CodePenalty> {
        match self {
            Penalty::L1 { lambda } => Box::new(l1::L1 { lambda }),
            Penalty::Kl { lambda, rho } => Box::new(kl::Kl { lambda, rho }),
        }
    }
}

/// Every knob of a run, from its spec. `variant` names the spec; a composed model trained with
/// `State::with_model` (the training loop's) may use any name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Recipe name.
    pub variant: String,
    /// Seeds initialisation (stream 0) and shuffling (stream 1) of ChaCha8.
    pub seed: u64,
    /// Threads, each computing one shard of every batch; results are identical for the same
    /// seed and thread count.
    pub threads: usize,
    /// Batch size: the tutorial's 512; `deep30` uses 128.
    pub batch_size: usize,
    /// Adam's initial learning rate, 1e-3.
    pub lr: f64,
    /// A phase ends once the learning rate is below this, 1e-5.
    pub stop_lr: f64,
    /// ReduceLROnPlateau's knobs.
    pub plateau: PlateauConfig,
    /// The schedule.
    pub phases: Vec<Phase>,
    /// Sparsity penalty on the codes, if any (stays on while fine-tuning).
    pub penalty: Option<Penalty>,
    /// Coupled L2 weight decay λ, an optimiser setting (0: none): `λ·w` is added to the
    /// gradient of every trainable weight of the linear and convolution layers (not the
    /// biases) before Adam, and `λ/2 · Σ w²` to the training loss ([`Model::weight_decay`]).
    /// It combines with any sparsity penalty.
    pub weight_decay: f32,
    /// Corruption of the inputs (denoising), if any; the target stays clean.
    pub noise: Option<Noise>,
    /// Use only the first N training images (tests, quick looks).
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    pub test_limit: Option<usize>,
    /// The model, as its spec describes it: [`State::new`](crate::train::State::new) builds it.
    pub architecture: Architecture,
    /// One sample's shape (`[features]`, `[height, width]` or `[height, width, channels]`);
    /// empty until the data is known, when the spec names none.
    pub input_shape: Vec<usize>,
    /// The data the run trains on: files, hashes, scaling, validation samples (set when the run
    /// first meets its data).
    pub data: Option<DataRecord>,
}

/// A built-in experiment: a spec file of `trainer/specs/`, compiled in.
pub struct Recipe {
    /// CLI name (the spec's `name`).
    pub name: &'static str,
    /// The spec, as `trainer spec <name>` prints it.
    pub toml: &'static str,
}

impl Recipe {
    /// The recipe's spec.
    pub fn spec(&self) -> Spec {
        Spec::parse(self.toml, &format!("<built-in {}>", self.name))
            .expect("the built-in specs parse (a test checks each)")
    }

    /// One line for `trainer list`.
    pub fn about(&self) -> String {
        self.spec().about
    }

    /// The recipe's configuration, for MNIST's 28x28 images (set [`Config::input_shape`] for other
    /// data).
    pub fn config(&self, seed: u64, threads: usize) -> Config {
        let mut config = self.spec().config(threads);
        config.seed = seed;
        if config.input_shape.is_empty() {
            config.input_shape = vec![SIDE, SIDE];
        }
        config
    }
}

/// `deep30`'s L2 weight decay, on in every phase (its spec says why).
pub const DEEP30_WEIGHT_DECAY: f32 = 1e-6;

/// λ of the `l1` recipe (its spec says how it was chosen).
pub const L1_LAMBDA: f32 = 1e-1;

macro_rules! recipes {
    ($($name:literal),* $(,)?) => {
        /// Every known recipe, in `trainer list`'s order.
        pub const RECIPES: &[Recipe] = &[$(Recipe {
            name: $name,
            toml: include_str!(concat!("../specs/", $name, ".toml")),
        }),*];
    };
}

recipes!(
    "fc",
    "topk16",
    "topk5",
    "lifetime25",
    "lifetime5",
    "l1",
    "kl1e-2",
    "kl1e-1",
    "conv",
    "deep",
    "deep2d",
    "deep30",
    "denoise-gaussian",
    "denoise-mask",
);

/// The recipe called `name`.
pub fn find(name: &str) -> Result<&'static Recipe, String> {
    RECIPES.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<_> = RECIPES.iter().map(|r| r.name).collect();
        format!("unknown variant '{name}'; known: {}", known.join(", "))
    })
}

impl Config {
    /// Caps the epochs: `finetune` phases get `finetune`, every other phase `epochs`. Capping a
    /// fine-tuning phase the recipe does not have is an error, not a silent no-op.
    pub fn cap_epochs(&mut self, epochs: Option<usize>, finetune: Option<usize>) -> Result<(), String> {
        if finetune.is_some() && !self.phases.iter().any(|p| p.name == "finetune") {
            return Err(format!("variant '{}' has no fine-tuning phase to cap", self.variant));
        }
        for phase in &mut self.phases {
            let cap = if phase.name == "finetune" { finetune } else { epochs };
            if let Some(cap) = cap {
                phase.max_epochs = cap;
            }
        }
        Ok(())
    }

    /// Sets the penalty's λ: the sparsity penalty's, or, for a recipe without one, its weight
    /// decay; an error for a recipe with neither.
    pub fn set_lambda(&mut self, value: f64) -> Result<(), String> {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(format!("lambda {value} must be finite and not negative"));
        }
        match &mut self.penalty {
            Some(Penalty::L1 { lambda }) => *lambda = value as f32,
            Some(Penalty::Kl { lambda, .. }) => *lambda = value,
            None if self.weight_decay > 0.0
                || find(&self.variant).is_ok_and(|r| r.spec().schedule.weight_decay > 0.0) =>
            {
                self.weight_decay = value as f32
            }
            None => return Err(format!("variant '{}' has no sparsity penalty to weight", self.variant)),
        }
        Ok(())
    }

    /// Sets the weight decay λ (any recipe; 0 turns it off).
    pub fn set_weight_decay(&mut self, value: f64) -> Result<(), String> {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(format!("weight decay {value} must be finite and not negative"));
        }
        self.weight_decay = value as f32;
        Ok(())
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
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "weight decay {} must be finite and not negative",
                self.weight_decay
            ));
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return Err("--train-limit and --test-limit must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layer;

    const LEAKY: Layer = Layer::LeakyRelu {
        slope: crate::layers::leaky_relu::SLOPE,
    };

    #[test]
    fn phase_starts_keep_their_encoding() {
        // Checkpoints store the phases; a start added later must not renumber the older ones.
        let encoded = |start: PhaseStart| postcard::to_allocvec(&start).unwrap();
        assert_eq!(encoded(PhaseStart::Keep), [0]);
        assert_eq!(encoded(PhaseStart::Untie), [1]);
        assert_eq!(encoded(PhaseStart::Grow { width: 64 }), [2, 64]);
        assert_eq!(encoded(PhaseStart::UnfreezeUntie), [3]);
        assert_eq!(encoded(PhaseStart::GrowLinear { width: 2 }), [4, 2]);
        assert_eq!(encoded(PhaseStart::Unfreeze), [5]);
        let penalty = |p: Penalty| postcard::to_allocvec(&p).unwrap()[0];
        assert_eq!(penalty(Penalty::L1 { lambda: 0.1 }), 0);
        assert_eq!(penalty(Penalty::Kl { lambda: 0.1, rho: 0.05 }), 1);
    }

    #[test]
    fn unfreeze_keeps_the_pairs_tied_and_unfreeze_untie_unties_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut tied = Model::tied(12, 6, LEAKY, &[], &mut rng);
        PhaseStart::Grow { width: 3 }.apply(&mut tied, 0, 1, &LEAKY);
        assert!(tied.params[..3].iter().all(|p| p.frozen) && tied.params[3..].iter().all(|p| !p.frozen));
        let mut untied = tied.clone();
        PhaseStart::Unfreeze.apply(&mut tied, 0, 2, &LEAKY);
        PhaseStart::UnfreezeUntie.apply(&mut untied, 0, 2, &LEAKY);
        for m in [&tied, &untied] {
            assert!(m.params.iter().all(|p| !p.frozen));
        }
        let transposed = |m: &Model| {
            m.layers
                .iter()
                .filter(|l| matches!(l, Layer::Linear { transposed: true, .. }))
                .count()
        };
        assert_eq!((transposed(&tied), transposed(&untied)), (2, 0));
        assert_eq!(tied.num_params() + 12 * 6 + 6 * 3, untied.num_params());
    }

    #[test]
    fn a_grown_stage_draws_from_its_phase_stream() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let base = Model::tied(12, 6, LEAKY, &[], &mut rng);
        let grown = |phase| {
            let mut m = base.clone();
            PhaseStart::GrowLinear { width: 3 }.apply(&mut m, 7, phase, &LEAKY);
            m.params[3].value.clone()
        };
        assert_eq!(grown(1), grown(1));
        assert_ne!(grown(1), grown(2));
    }
}
