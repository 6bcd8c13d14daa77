//! The experiments, one recipe each: the model, the phases of its schedule, the defaults.
//!
//! A recipe reads like the tutorial's experiment; every knob lives in [`Config`], filled with
//! the tutorial's values and overridden from the command line.

use crate::layers::whole_batch::CodePenalty;
use crate::layers::{kl, l1, leaky_relu};
use crate::mnist::PIXELS;
use crate::model::{Layer, Model};
use crate::noise::Noise;
use crate::optim::plateau::PlateauConfig;
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
    /// stage draws its parameters from ChaCha8 stream `2 + phase` of the seed and uses LeakyReLU.
    pub fn apply(self, model: &mut Model, seed: u64, phase: usize) {
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
                    model.grow_linear(width, LEAKY, &mut rng);
                } else {
                    model.grow(width, LEAKY, &mut rng);
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

/// Every knob of a run, with the tutorial's defaults. `variant` names the recipe; a composed
/// model trained with `State::with_model` (the training loop's) may use any name.
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
    /// Sparsity penalty on the codes.
    pub penalty: Option<Penalty>,
    /// Input corruption.
    pub noise: Option<Noise>,
    /// Batch size and scheduler patience.
    pub schedule: Schedule,
}

/// A recipe's batch size, plateau patience and weight decay; everything else of the optimiser is
/// the tutorial's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Batch size.
    pub batch_size: usize,
    /// Epochs without improvement before the plateau scheduler lowers the learning rate.
    pub patience: u32,
    /// Coupled L2 weight decay λ ([`Config::weight_decay`]); 0 for none.
    pub weight_decay: f32,
}

/// The tutorial's: batches of 512, patience 10, no weight decay.
pub const TUTORIAL: Schedule = Schedule {
    batch_size: 512,
    patience: 10,
    weight_decay: 0.0,
};

const TIED_FINETUNE_50: &[(&str, usize, PhaseStart)] =
    &[("tied", 100, PhaseStart::Keep), ("finetune", 50, PhaseStart::Untie)];
const TIED_FINETUNE_100: &[(&str, usize, PhaseStart)] =
    &[("tied", 100, PhaseStart::Keep), ("finetune", 100, PhaseStart::Untie)];

const LEAKY: Layer = Layer::LeakyRelu {
    slope: leaky_relu::SLOPE,
};

/// 784-64-784, tied, with `activation` and an optional sparsity layer after the encoder.
fn fc64(rng: &mut ChaCha8Rng, activation: Layer, sparsity: &[Layer]) -> Model {
    Model::tied(PIXELS, 64, activation, sparsity, rng)
}

/// Greedy stages then fine-tuning, as the tutorial's deep autoencoders: each stage trains one
/// new tied pair with everything before it frozen, up to 100 epochs.
const DEEP: &[(&str, usize, PhaseStart)] = &[
    ("stage1", 100, PhaseStart::Keep),
    ("stage2", 100, PhaseStart::Grow { width: 64 }),
    ("finetune", 100, PhaseStart::UnfreezeUntie),
];
const DEEP2D: &[(&str, usize, PhaseStart)] = &[
    ("stage1", 100, PhaseStart::Keep),
    ("stage2", 100, PhaseStart::Grow { width: 64 }),
    ("stage3", 100, PhaseStart::Grow { width: 32 }),
    ("stage4", 100, PhaseStart::GrowLinear { width: 2 }),
    ("finetune", 100, PhaseStart::UnfreezeUntie),
];

/// Hinton & Salakhutdinov's 784-1000-500-250-30 with their linear 30-unit code: four greedy
/// stages (their RBM pretraining ran 50 epochs a layer; 15 autoencoder epochs each here; 20 did
/// no better), then fine-tuning with the decoder still tied to the encoder (untied, it fits the
/// training images better and the test images worse).
const DEEP30: &[(&str, usize, PhaseStart)] = &[
    ("stage1", 15, PhaseStart::Keep),
    ("stage2", 15, PhaseStart::Grow { width: 500 }),
    ("stage3", 15, PhaseStart::Grow { width: 250 }),
    ("stage4", 15, PhaseStart::GrowLinear { width: 30 }),
    ("finetune", 50, PhaseStart::Unfreeze),
];

/// `deep30`'s batches and patience: batches of 128 (Hinton & Salakhutdinov used 100), four times
/// the tutorial's updates per epoch; patience 3, so that the rate drops to 1e-4 once fine-tuning
/// at 1e-3 stalls, well within the epoch cap. That drop is worth about 15 % of the test error.
const DEEP30_SCHEDULE: Schedule = Schedule {
    batch_size: 128,
    patience: 3,
    weight_decay: DEEP30_WEIGHT_DECAY,
};

/// `deep30`'s L2 weight decay, on in every phase. Without it fine-tuning stalls at a test error
/// of 3.01 per image, its training error far below; 1e-5 held the net back (test MSE 0.0052
/// after 18 fine-tuning epochs against 0.0047 without).
pub const DEEP30_WEIGHT_DECAY: f32 = 1e-6;

/// A tied `784-width-784` LeakyReLU autoencoder whose output unit is the logistic sigmoid, as the
/// pixels of Hinton & Salakhutdinov's deep autoencoders: the first stage of `deep2d` and `deep30`.
fn logistic_output(rng: &mut ChaCha8Rng, width: usize) -> Model {
    let mut model = Model::tied(PIXELS, width, LEAKY, &[], rng);
    *model.layers.last_mut().expect("a tied model has layers") = Layer::Sigmoid;
    model
}

/// λ of the `l1` recipe: of 1e-4, 3e-4, ..., 1e-1, 3e-1 (a 40 + 40 epoch sweep, see README) the
/// largest whose test MSE stays within 2x of `fc`'s (1.5x, with 30 % of codes below 0.01
/// against 0.4 % for `fc`); 3e-1 costs 2.8x.
pub const L1_LAMBDA: f32 = 1e-1;

/// Every known recipe.
pub const RECIPES: &[Recipe] = &[
    Recipe {
        name: "fc",
        about: "784-64-784 LeakyReLU autoencoder: tied weights up to 100 epochs, then untied fine-tuning up to 50",
        build: |rng| fc64(rng, LEAKY, &[]),
        phases: TIED_FINETUNE_50,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "topk16",
        about: "fc with a top-k layer after the encoder: each sample keeps its 16 largest codes",
        build: |rng| fc64(rng, LEAKY, &[Layer::TopK { k: 16 }]),
        phases: TIED_FINETUNE_100,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "topk5",
        about: "fc with a top-k layer after the encoder: each sample keeps its 5 largest codes",
        build: |rng| fc64(rng, LEAKY, &[Layer::TopK { k: 5 }]),
        phases: TIED_FINETUNE_100,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "lifetime25",
        about: "fc with lifetime sparsity: each code unit keeps its largest 25 % of the batch (training only)",
        build: |rng| fc64(rng, LEAKY, &[Layer::LifetimeTopK { fraction: 0.25 }]),
        phases: TIED_FINETUNE_100,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "lifetime5",
        about: "fc with lifetime sparsity: each code unit keeps its largest 5 % of the batch (training only)",
        build: |rng| fc64(rng, LEAKY, &[Layer::LifetimeTopK { fraction: 0.05 }]),
        phases: TIED_FINETUNE_100,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "l1",
        about: "fc plus an L1 penalty on the codes, lambda 0.1",
        build: |rng| fc64(rng, LEAKY, &[]),
        phases: TIED_FINETUNE_100,
        penalty: Some(Penalty::L1 { lambda: L1_LAMBDA }),
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "kl1e-2",
        about: "sigmoid autoencoder plus a KL sparsity penalty (rho 0.05, lambda 1e-2)",
        build: |rng| fc64(rng, Layer::Sigmoid, &[]),
        phases: TIED_FINETUNE_100,
        penalty: Some(Penalty::Kl {
            lambda: 1e-2,
            rho: 0.05,
        }),
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "kl1e-1",
        about: "sigmoid autoencoder plus a KL sparsity penalty (rho 0.05, lambda 1e-1)",
        build: |rng| fc64(rng, Layer::Sigmoid, &[]),
        phases: TIED_FINETUNE_100,
        penalty: Some(Penalty::Kl {
            lambda: 1e-1,
            rho: 0.05,
        }),
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "conv",
        about: "four 6x6 convolutions (8 channels, LeakyReLU), 2x2 max-pool to 128 codes, Linear 128-784 decoder",
        build: |rng| Model::conv(rng),
        phases: &[("train", 100, PhaseStart::Keep)],
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "deep",
        about: "784-128-64 LeakyReLU, trained greedily: 784-128-784 tied, then 128-64-128 tied with the outer pair frozen, then all unfrozen, untied, fine-tuned",
        build: |rng| Model::tied(PIXELS, 128, LEAKY, &[], rng),
        phases: DEEP,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "deep2d",
        about: "784-128-64-32-2 LeakyReLU with a linear 2-D code and a logistic output, greedily over four stages the same way, then fine-tuned",
        build: |rng| logistic_output(rng, 128),
        phases: DEEP2D,
        penalty: None,
        noise: None,
        schedule: TUTORIAL,
    },
    Recipe {
        name: "deep30",
        about: "784-1000-500-250-30 (Hinton & Salakhutdinov 2006's MNIST net): LeakyReLU, linear code, logistic output; greedy autoencoder stages, then fine-tuned tied; weight decay 1e-6",
        build: |rng| logistic_output(rng, 1000),
        phases: DEEP30,
        penalty: None,
        noise: None,
        schedule: DEEP30_SCHEDULE,
    },
    Recipe {
        name: "denoise-gaussian",
        about: "fc trained on inputs plus N(0, 0.1) noise clipped to [0, 1], clean target",
        build: |rng| fc64(rng, LEAKY, &[]),
        phases: TIED_FINETUNE_50,
        penalty: None,
        noise: Some(Noise::Gaussian { variance: 0.1 }),
        schedule: TUTORIAL,
    },
    Recipe {
        name: "denoise-mask",
        about: "fc trained on inputs with 25 % of pixels set to 0 (fresh per image and epoch), clean target",
        build: |rng| fc64(rng, LEAKY, &[]),
        phases: TIED_FINETUNE_50,
        penalty: None,
        noise: Some(Noise::Mask { fraction: 0.25 }),
        schedule: TUTORIAL,
    },
];

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
            batch_size: self.schedule.batch_size,
            lr: 1e-3,
            stop_lr: 1e-5,
            plateau: PlateauConfig {
                patience: self.schedule.patience,
                ..PlateauConfig::default()
            },
            phases: self
                .phases
                .iter()
                .map(|&(name, max_epochs, start)| Phase {
                    name: name.to_string(),
                    max_epochs,
                    start,
                })
                .collect(),
            penalty: self.penalty,
            weight_decay: self.schedule.weight_decay,
            noise: self.noise,
            train_limit: None,
            test_limit: None,
        }
    }
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
            None if self.weight_decay > 0.0 || find(&self.variant).is_ok_and(|r| r.schedule.weight_decay > 0.0) => {
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
        PhaseStart::Grow { width: 3 }.apply(&mut tied, 0, 1);
        assert!(tied.params[..3].iter().all(|p| p.frozen) && tied.params[3..].iter().all(|p| !p.frozen));
        let mut untied = tied.clone();
        PhaseStart::Unfreeze.apply(&mut tied, 0, 2);
        PhaseStart::UnfreezeUntie.apply(&mut untied, 0, 2);
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
            PhaseStart::GrowLinear { width: 3 }.apply(&mut m, 7, phase);
            m.params[3].value.clone()
        };
        assert_eq!(grown(1), grown(1));
        assert_ne!(grown(1), grown(2));
    }
}
