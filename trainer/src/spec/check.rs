//! The rules a spec follows: [`check_alone`] those of the file itself (when it is parsed),
//! [`check`] those that depend on the input shape (when the data is known). A broken rule is a
//! [`Rule`]: the key path it is about and what is wrong.

use super::{Activation, Architecture, Finetune, LayerSpec, Sparsity, Spec};

/// A broken rule: the key (`encoder.layers[1].dense`) and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The key path.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn broken(key: impl Into<String>, message: impl Into<String>) -> Result<(), Rule> {
    Err(Rule {
        key: key.into(),
        message: message.into(),
    })
}

/// What a layer of the list is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    /// `dense = units`.
    Dense(usize),
    /// `conv = channels, kernel = side`.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel side.
        kernel: usize,
    },
    /// `max_pool = 2`.
    MaxPool,
}

impl LayerSpec {
    /// What the layer is, or the rule it breaks (`key` is its key path).
    pub fn kind(&self, key: &str) -> Result<LayerKind, Rule> {
        let given = [self.dense.is_some(), self.conv.is_some(), self.max_pool.is_some()];
        if given.iter().filter(|&&g| g).count() != 1 {
            return Err(Rule {
                key: key.into(),
                message: "a layer is exactly one of `dense = UNITS`, `conv = CHANNELS` (with `kernel = SIDE`) or `max_pool = 2`".into(),
            });
        }
        if self.kernel.is_some() && self.conv.is_none() {
            return Err(Rule {
                key: format!("{key}.kernel"),
                message: "`kernel` belongs to a `conv` layer".into(),
            });
        }
        let at_least_one = |value: usize, name: &str, what: &str| {
            if value == 0 {
                Err(Rule {
                    key: format!("{key}.{name}"),
                    message: format!("{what} 0; it must be at least 1"),
                })
            } else {
                Ok(value)
            }
        };
        match (self.dense, self.conv, self.max_pool) {
            (Some(units), _, _) => Ok(LayerKind::Dense(at_least_one(units, "dense", "width")?)),
            (_, Some(channels), _) => {
                let channels = at_least_one(channels, "conv", "channels")?;
                if channels > autoencoder_core::model::CHANNEL_CHUNK {
                    return Err(Rule {
                        key: format!("{key}.conv"),
                        message: format!(
                            "{channels} channels; the int8 core runs convolutions of at most {} output channels",
                            autoencoder_core::model::CHANNEL_CHUNK
                        ),
                    });
                }
                let Some(kernel) = self.kernel else {
                    return Err(Rule {
                        key: key.into(),
                        message: "a `conv` layer needs `kernel = SIDE`".into(),
                    });
                };
                let kernel = at_least_one(kernel, "kernel", "kernel side")?;
                Ok(LayerKind::Conv { channels, kernel })
            }
            (_, _, Some(2)) => Ok(LayerKind::MaxPool),
            (_, _, Some(other)) => Err(Rule {
                key: format!("{key}.max_pool"),
                message: format!("max-pooling window {other}; only 2 (2x2, stride 2) is supported"),
            }),
            (None, None, None) => unreachable!("exactly one kind is given"),
        }
    }
}

fn activation(key: &str, a: Activation) -> Result<(), Rule> {
    if a == Activation::Tanh {
        return broken(
            key,
            "tanh is not offered: the int8 path has no TANH that matches TFLM's exactly; use sigmoid, relu, leaky_relu or linear",
        );
    }
    Ok(())
}

fn finite_at_least_zero(key: &str, value: f64, what: &str) -> Result<(), Rule> {
    if !(value >= 0.0 && value.is_finite()) {
        return broken(key, format!("{what} {value} must be finite and not negative"));
    }
    Ok(())
}

/// The encoder's layers, checked (convolutions and pooling before any dense layer).
pub fn encoder_layers(arch: &Architecture) -> Result<Vec<LayerKind>, Rule> {
    if arch.encoder.layers.is_empty() {
        return Err(Rule {
            key: "encoder.layers".into(),
            message: "the encoder needs at least one layer".into(),
        });
    }
    let mut kinds = Vec::new();
    let mut flat = false;
    for (i, layer) in arch.encoder.layers.iter().enumerate() {
        let key = format!("encoder.layers[{i}]");
        let kind = layer.kind(&key)?;
        match kind {
            LayerKind::Dense(_) => flat = true,
            _ if flat => {
                return Err(Rule {
                    key,
                    message:
                        "convolution and max-pooling come before the first dense layer (a dense layer's output is flat)"
                            .into(),
                })
            }
            _ => {}
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// The decoder's listed hidden widths, checked; `None` when it mirrors the encoder.
pub fn decoder_layers(arch: &Architecture) -> Result<Option<Vec<usize>>, Rule> {
    let Some(layers) = &arch.decoder.layers else {
        return Ok(None);
    };
    let mut widths = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let key = format!("decoder.layers[{i}]");
        match layer.kind(&key)? {
            LayerKind::Dense(units) => widths.push(units),
            _ => {
                return Err(Rule {
                    key,
                    message: "the decoder has dense layers only (no transposed convolution)".into(),
                })
            }
        }
    }
    Ok(Some(widths))
}

/// The rules of the file alone.
pub fn check_alone(spec: &Spec) -> Result<(), Rule> {
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || spec.name.starts_with('.')
    {
        return broken(
            "name",
            format!(
                "'{}' cannot name a run directory: use letters, digits, '-', '_' and '.'",
                spec.name
            ),
        );
    }
    if let Some(input) = &spec.input {
        if input.shape.is_empty() || input.shape.len() > 3 || input.shape.contains(&0) {
            return broken(
                "input.shape",
                format!(
                    "{:?}: a sample is [features], [height, width] or [height, width, channels], each at least 1",
                    input.shape
                ),
            );
        }
    }
    let arch = spec.architecture();
    let kinds = encoder_layers(&arch)?;
    let e = &spec.encoder;
    activation("encoder.activation", e.activation)?;
    if let Some(code) = e.code_activation {
        activation("encoder.code_activation", code)?;
    }
    if let Some(output) = spec.decoder.output_activation {
        activation("decoder.output_activation", output)?;
    }
    if let Some(alpha) = e.alpha {
        if e.activation != Activation::LeakyRelu {
            return broken(
                "encoder.alpha",
                "`alpha` is LeakyReLU's slope; the activation is not leaky_relu",
            );
        }
        if !(0.0..1.0).contains(&alpha) {
            return broken("encoder.alpha", format!("alpha {alpha} must be in [0, 1)"));
        }
    }
    match e.sparsity {
        Some(Sparsity::TopK(0)) => return broken("encoder.sparsity.top_k", "k 0; top-k keeps at least 1 code"),
        Some(Sparsity::Lifetime(f)) if !(f > 0.0 && f <= 1.0) => {
            return broken("encoder.sparsity.lifetime", format!("fraction {f} must be in (0, 1]"))
        }
        _ => {}
    }
    let decoder = decoder_layers(&arch)?;
    let dense_only = kinds.iter().all(|k| matches!(k, LayerKind::Dense(_)));
    if !dense_only && decoder.is_none() {
        return broken(
            "decoder.layers",
            "a convolutional encoder needs its decoder listed (dense layers, `layers = []` for one layer back to the input); mirroring it would need transposed convolutions",
        );
    }
    if spec.decoder.tied && (!dense_only || decoder.is_some()) {
        return broken(
            "decoder.tied",
            "a tied decoder mirrors a dense encoder: no convolution, no listed decoder layers",
        );
    }
    let t = &spec.training;
    if t.greedy {
        if !spec.decoder.tied {
            return broken(
                "training.greedy",
                "greedy stages grow tied pairs: set `decoder.tied = true`",
            );
        }
        if e.activation == Activation::Linear {
            return broken("encoder.activation", "greedy stages need a nonlinear activation");
        }
        if e.sparsity.is_some() && kinds.len() > 1 {
            return broken("encoder.sparsity", "sparsity with greedy stages is not supported");
        }
        if let Some(code) = e.code_activation {
            if code != e.activation && code != Activation::Linear {
                return broken(
                    "encoder.code_activation",
                    "a greedy model's code activation is the encoder's activation or linear",
                );
            }
        }
    }
    let tied_phases = spec.decoder.tied || t.greedy;
    if !tied_phases && spec.schedule.finetune_epochs > 0 {
        return broken(
            "schedule.finetune_epochs",
            "fine-tuning follows a tied or greedy phase; this model is untied",
        );
    }
    if !tied_phases && t.finetune == Finetune::Tied {
        return broken("training.finetune", "there is no tied decoder to keep tied");
    }
    if let Some(p) = t.penalty {
        match (p.l1, p.kl, p.rho) {
            (Some(l1), None, None) => finite_at_least_zero("training.penalty.l1", l1.into(), "lambda")?,
            (None, Some(kl), Some(rho)) => {
                finite_at_least_zero("training.penalty.kl", kl, "lambda")?;
                if !(rho > 0.0 && rho < 1.0) {
                    return broken("training.penalty.rho", format!("rho {rho} must be in (0, 1)"));
                }
            }
            (None, Some(_), None) => return broken("training.penalty", "a `kl` penalty needs `rho`"),
            _ => {
                return broken(
                    "training.penalty",
                    "a penalty is `{ l1 = LAMBDA }` or `{ kl = LAMBDA, rho = RHO }`",
                )
            }
        }
    }
    match t.noise {
        Some(super::NoiseSpec::Gaussian(v)) => finite_at_least_zero("training.noise.gaussian", v.into(), "variance")?,
        Some(super::NoiseSpec::Mask(f)) if !(0.0..=1.0).contains(&f) => {
            return broken("training.noise.mask", format!("fraction {f} must be in [0, 1]"))
        }
        _ => {}
    }
    let s = &spec.schedule;
    if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
        return broken(
            "schedule.learning_rate",
            format!("{} must be positive and finite", s.learning_rate),
        );
    }
    finite_at_least_zero("schedule.stop_learning_rate", s.stop_learning_rate, "stop rate")?;
    if s.batch == 0 {
        return broken("schedule.batch", "batch size 0; it must be at least 1");
    }
    finite_at_least_zero("schedule.weight_decay", s.weight_decay.into(), "weight decay")?;
    if !(s.plateau.factor > 0.0 && s.plateau.factor < 1.0) {
        return broken(
            "schedule.plateau.factor",
            format!("factor {} must be in (0, 1)", s.plateau.factor),
        );
    }
    finite_at_least_zero("schedule.plateau.threshold", s.plateau.threshold, "threshold")?;
    Ok(())
}

/// The rules that depend on the input: the shape a spec names matches the data's, convolutions
/// get 2-D images their kernels fit in, and top-k keeps at most the code width.
pub fn check(arch: &Architecture, named_shape: Option<&[usize]>, shape: &[usize]) -> Result<(), Rule> {
    if let Some(named) = named_shape {
        if named != shape {
            return broken(
                "input.shape",
                format!("{named:?}, but the data's samples are {shape:?}"),
            );
        }
    }
    let kinds = encoder_layers(arch)?;
    let (mut c, mut h, mut w) = match *shape {
        [h, w] => (1, h, w),
        [h, w, c] => (c, h, w),
        _ => (0, 0, 0),
    };
    let mut width = shape.iter().product::<usize>();
    for (i, kind) in kinds.iter().enumerate() {
        let key = format!("encoder.layers[{i}]");
        match *kind {
            LayerKind::Dense(units) => width = units,
            LayerKind::Conv { channels, kernel } => {
                if h == 0 {
                    return broken(
                        format!("{key}.conv"),
                        format!("a convolution needs 2-D images (input shape [height, width] or [height, width, channels]); the input is {shape:?}"),
                    );
                }
                if c > 1 && i == 0 {
                    return broken(
                        format!("{key}.conv"),
                        format!("convolution on {c}-channel images is not supported yet; the input is {shape:?}"),
                    );
                }
                if kernel > h || kernel > w {
                    return broken(
                        format!("{key}.kernel"),
                        format!("kernel {kernel} does not fit the {h}x{w} input of this layer"),
                    );
                }
                (c, h, w) = (channels, h - kernel + 1, w - kernel + 1);
                width = c * h * w;
            }
            LayerKind::MaxPool => {
                if h == 0 {
                    return broken(
                        format!("{key}.max_pool"),
                        format!("max-pooling needs 2-D images; the input is {shape:?}"),
                    );
                }
                if h < 2 || w < 2 {
                    return broken(
                        format!("{key}.max_pool"),
                        format!("a 2x2 window does not fit the {h}x{w} input of this layer"),
                    );
                }
                (h, w) = (h / 2, w / 2);
                width = c * h * w;
            }
        }
    }
    if let Some(Sparsity::TopK(k)) = arch.encoder.sparsity {
        if k > width {
            return broken(
                "encoder.sparsity.top_k",
                format!("k {k} is above the code width {width}"),
            );
        }
    }
    Ok(())
}
