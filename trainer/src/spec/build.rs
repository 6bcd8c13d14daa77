//! What a spec makes: the float model ([`Architecture::build`]) and the run's configuration
//! ([`Spec::config`]).
//!
//! Parameters are drawn from the generator in a fixed order, PyTorch's initialisation for each
//! (uniform in ±1/√fan_in): the encoder's layers input first (weight, then bias), then the
//! decoder's (a tied layer draws only its bias). A greedy model starts as its first stage; each
//! later stage draws from its own stream when it begins ([`crate::recipe::PhaseStart`]).

use super::check::{self, LayerKind, Rule};
use super::{Activation, Architecture, Finetune, NoiseSpec, Sparsity, Spec};
use crate::layers::conv2d::Conv2dGeometry;
use crate::layers::max_pool::MaxPoolGeometry;
use crate::model::{init, Layer, Model, Param};
use crate::noise::Noise;
use crate::optim::plateau::PlateauConfig;
use crate::recipe::{Config, Penalty, Phase, PhaseStart};
use rand::Rng;

/// The default LeakyReLU slope, the tutorial's.
pub const ALPHA: f32 = crate::layers::leaky_relu::SLOPE;

impl Architecture {
    /// The float layer of activation `a` (none for linear).
    fn layer(&self, a: Activation) -> Option<Layer> {
        match a {
            Activation::Relu => Some(Layer::LeakyRelu { slope: 0.0 }),
            Activation::LeakyRelu => Some(Layer::LeakyRelu {
                slope: self.encoder.alpha.unwrap_or(ALPHA),
            }),
            Activation::Sigmoid => Some(Layer::Sigmoid),
            Activation::Linear | Activation::Tanh => None,
        }
    }

    /// The activation after hidden layers, and of each new greedy stage's decoder side.
    pub fn hidden_activation(&self) -> Option<Layer> {
        self.layer(self.encoder.activation)
    }

    fn code_activation(&self) -> Option<Layer> {
        self.layer(self.encoder.code_activation.unwrap_or(self.encoder.activation))
    }

    fn output_activation(&self) -> Option<Layer> {
        self.layer(self.decoder.output_activation.unwrap_or(self.encoder.activation))
    }

    fn sparsity(&self) -> Option<Layer> {
        self.encoder.sparsity.map(|s| match s {
            Sparsity::TopK(k) => Layer::TopK { k },
            Sparsity::Lifetime(fraction) => Layer::LifetimeTopK { fraction },
        })
    }

    /// Whether the code layer is linear (a greedy model's last stage then grows a linear code).
    pub fn linear_code(&self) -> bool {
        self.code_activation().is_none()
    }

    /// The widths of the greedy stages after the first.
    pub fn stage_widths(&self) -> Vec<usize> {
        self.encoder.layers.iter().skip(1).filter_map(|l| l.dense).collect()
    }

    /// The initial float model for samples of `shape`, its parameters drawn from `rng`: the whole
    /// model, or a greedy model's first stage.
    pub fn build(&self, shape: &[usize], rng: &mut impl Rng) -> Result<Model, Rule> {
        check::check(self, None, shape)?;
        let all = check::encoder_layers(self)?;
        let kinds = if self.greedy { &all[..1] } else { &all[..] };
        let input: usize = shape.iter().product();
        let (mut c, mut h, mut w) = match *shape {
            [h, w] => (1, h, w),
            [h, w, c] => (c, h, w),
            _ => (0, 0, 0),
        };
        let single = kinds.len() == 1;
        let name = |prefix: &str, l: usize| {
            if single {
                prefix.to_string()
            } else {
                format!("{prefix}{}", l + 1)
            }
        };
        let mut params = Vec::new();
        let mut layers = Vec::new();
        let mut width = input;
        // The dense encoder layers' weights and widths, for a mirrored decoder.
        let mut dense = Vec::new();
        let mut convs = 0;
        for (l, kind) in kinds.iter().enumerate() {
            // The code layer; a greedy model's first stage is not it unless it is the only one.
            let last = l + 1 == all.len();
            let activation = if last {
                self.code_activation()
            } else {
                self.hidden_activation()
            };
            match *kind {
                LayerKind::Dense(units) => {
                    params.push(Param::new(
                        format!("{}.weight", name("enc", l)),
                        init(rng, (units, width), width),
                    ));
                    params.push(Param::new(
                        format!("{}.bias", name("enc", l)),
                        init(rng, (1, units), width),
                    ));
                    layers.push(Layer::Linear {
                        weight: params.len() - 2,
                        bias: params.len() - 1,
                        transposed: false,
                    });
                    dense.push((params.len() - 2, width));
                    layers.extend(activation);
                    width = units;
                }
                LayerKind::Conv { channels, kernel } => {
                    convs += 1;
                    let g = Conv2dGeometry::new(c, h, w, channels, kernel);
                    let fan_in = g.weight_shape().1;
                    params.push(Param::new(
                        format!("conv{convs}.weight"),
                        init(rng, g.weight_shape(), fan_in),
                    ));
                    params.push(Param::new(
                        format!("conv{convs}.bias"),
                        init(rng, (1, channels), fan_in),
                    ));
                    layers.push(Layer::Conv2d {
                        weight: params.len() - 2,
                        bias: params.len() - 1,
                        geometry: g,
                    });
                    // A convolution's activation follows it even when a pooling layer ends the
                    // encoder: the code is the pooled activation.
                    layers.extend(self.hidden_activation());
                    (c, h, w) = (channels, g.out_h(), g.out_w());
                    width = g.out_len();
                }
                LayerKind::MaxPool => {
                    let g = MaxPoolGeometry::new(c, h, w);
                    layers.push(Layer::MaxPool2d { geometry: g });
                    (h, w) = (g.out_h(), g.out_w());
                    width = g.out_len();
                }
            }
        }
        layers.extend(self.sparsity());
        let code_after = layers.len();
        let listed = check::decoder_layers(self)?;
        match listed {
            None if self.decoder.tied => {
                // Each decoder layer is its mirror's weight transposed, with a bias of its own.
                for (l, &(weight, fan_out)) in dense.iter().enumerate().rev() {
                    let fan_in = params[weight].value.nrows();
                    params.push(Param::new(
                        format!("{}.bias", name("dec", l)),
                        init(rng, (1, fan_out), fan_in),
                    ));
                    layers.push(Layer::Linear {
                        weight,
                        bias: params.len() - 1,
                        transposed: true,
                    });
                    layers.extend(if l == 0 {
                        self.output_activation()
                    } else {
                        self.hidden_activation()
                    });
                }
            }
            _ => {
                let mut widths = listed.unwrap_or_else(|| dense.iter().skip(1).rev().map(|&(_, w)| w).collect());
                widths.push(input);
                let single = widths.len() == 1;
                for (l, &units) in widths.iter().enumerate() {
                    let name = if single {
                        "dec".to_string()
                    } else {
                        format!("dec{}", l + 1)
                    };
                    params.push(Param::new(format!("{name}.weight"), init(rng, (units, width), width)));
                    params.push(Param::new(format!("{name}.bias"), init(rng, (1, units), width)));
                    layers.push(Layer::Linear {
                        weight: params.len() - 2,
                        bias: params.len() - 1,
                        transposed: false,
                    });
                    layers.extend(if l + 1 == widths.len() {
                        self.output_activation()
                    } else {
                        self.hidden_activation()
                    });
                    width = units;
                }
            }
        }
        Ok(Model {
            input,
            layers,
            params,
            code_after,
        })
    }
}

impl Spec {
    /// The run configuration of this spec with `threads` threads: the schedule's phases (a
    /// greedy model's stages, a tied model's tied and fine-tuning phases, or an untied model's
    /// one phase), the penalty, the noise and the optimiser's numbers.
    pub fn config(&self, threads: usize) -> Config {
        let arch = self.architecture();
        let s = &self.schedule;
        let phase = |name: String, max_epochs: usize, start: PhaseStart| Phase {
            name,
            max_epochs,
            start,
        };
        let finetune_tied = self.training.finetune == Finetune::Tied;
        let phases = if self.training.greedy {
            let widths = arch.stage_widths();
            let mut phases = vec![phase("stage1".into(), s.epochs, PhaseStart::Keep)];
            for (i, &width) in widths.iter().enumerate() {
                let start = if i + 1 == widths.len() && arch.linear_code() {
                    PhaseStart::GrowLinear { width }
                } else {
                    PhaseStart::Grow { width }
                };
                phases.push(phase(format!("stage{}", i + 2), s.epochs, start));
            }
            let start = if finetune_tied {
                PhaseStart::Unfreeze
            } else {
                PhaseStart::UnfreezeUntie
            };
            phases.push(phase("finetune".into(), s.finetune_epochs, start));
            phases
        } else if self.decoder.tied {
            let start = if finetune_tied {
                PhaseStart::Keep
            } else {
                PhaseStart::Untie
            };
            vec![
                phase("tied".into(), s.epochs, PhaseStart::Keep),
                phase("finetune".into(), s.finetune_epochs, start),
            ]
        } else {
            vec![phase("train".into(), s.epochs, PhaseStart::Keep)]
        };
        let penalty = self.training.penalty.and_then(|p| match (p.l1, p.kl, p.rho) {
            (Some(lambda), _, _) => Some(Penalty::L1 { lambda }),
            (None, Some(lambda), Some(rho)) => Some(Penalty::Kl { lambda, rho }),
            _ => None,
        });
        Config {
            variant: self.name.clone(),
            seed: s.seed,
            threads,
            batch_size: s.batch,
            lr: s.learning_rate,
            stop_lr: s.stop_learning_rate,
            plateau: PlateauConfig {
                factor: s.plateau.factor,
                patience: s.plateau.patience,
                threshold: s.plateau.threshold,
                ..PlateauConfig::default()
            },
            phases,
            penalty,
            weight_decay: s.weight_decay,
            noise: self.training.noise.map(|n| match n {
                NoiseSpec::Gaussian(variance) => Noise::Gaussian { variance },
                NoiseSpec::Mask(fraction) => Noise::Mask { fraction },
            }),
            train_limit: None,
            test_limit: None,
            architecture: arch,
            data: None,
            input_shape: self.input.as_ref().map_or_else(Vec::new, |i| i.shape.clone()),
        }
    }
}
