//! The built-in `anomaly` recipe: a dense autoencoder for sensor and tabular anomaly
//! detection, trained one-class (normal samples only, validated on normal samples held out of
//! them). Unlike the tutorial's recipes it is not one fixed spec file: its widths follow from
//! the input width `N` and its epoch cap from the number of training samples, by the rules
//! below, so that it trains without tuning on 8 to 1,000 features and a few hundred to tens of
//! thousands of samples.
//!
//! - Hidden width `h = clamp(next power of two ≥ N/2, 32, 128)`, two hidden layers on each
//!   side, LeakyReLU (slope 0.01), as MLPerf Tiny's anomaly detection model
//!   (640-128-128-128-128-8-...) but narrower for narrow inputs.
//! - Code width `c = clamp(round(N/8), 2, 16)`, linear: a bottleneck well below the input
//!   (the tutorial's 64-unit code is wider than many sensor inputs and would learn the identity).
//! - Output: sigmoid for data scaled to [0, 1] (`unit`, `minmax`), linear otherwise.
//! - Untied, one phase; batches of [`BATCH`]; Adam 1e-3 with the plateau scheduler on the
//!   held-out normal samples; epoch cap `clamp(ceil(TARGET_STEPS · BATCH / n), MIN_EPOCHS,
//!   MAX_EPOCHS)` for `n` training samples, so a small set still gets enough optimiser steps
//!   and a large one is not run for hundreds of epochs.
//!
//! `docs/anomaly.md` has the table of widths and epochs.

use crate::data::ScalingKind;
use crate::spec::{Activation, DecoderSpec, EncoderSpec, LayerSpec, ScheduleSpec, Spec, TrainingSpec};

/// The recipe's name (`trainer train anomaly`).
pub const NAME: &str = "anomaly";

/// The narrowest input the recipe takes: its code is at least [`CODE_MIN`] wide and must be
/// narrower than the input.
pub const MIN_INPUT: usize = 4;
/// The narrowest hidden layer.
pub const HIDDEN_MIN: usize = 32;
/// The widest hidden layer (MLPerf Tiny's anomaly detection model's).
pub const HIDDEN_MAX: usize = 128;
/// The narrowest code.
pub const CODE_MIN: usize = 2;
/// The widest code.
pub const CODE_MAX: usize = 16;
/// Batch size.
pub const BATCH: usize = 128;
/// Optimiser steps the epoch cap aims at.
pub const TARGET_STEPS: usize = 8_000;
/// The least epoch cap (large sets).
pub const MIN_EPOCHS: usize = 20;
/// The greatest epoch cap (small sets).
pub const MAX_EPOCHS: usize = 500;
/// LeakyReLU's negative slope in the hidden layers.
pub const ALPHA: f32 = 0.01;

/// The hidden width for `input` features: the next power of two at or above `input / 4`,
/// clamped to [[`HIDDEN_MIN`], [`HIDDEN_MAX`]].
pub fn hidden_width(input: usize) -> usize {
    input.div_ceil(2).next_power_of_two().clamp(HIDDEN_MIN, HIDDEN_MAX)
}

/// The code width for `input` features: `input / 8` rounded to nearest (halves up), clamped
/// to [[`CODE_MIN`], [`CODE_MAX`]].
pub fn code_width(input: usize) -> usize {
    ((input + 4) / 8).clamp(CODE_MIN, CODE_MAX)
}

/// The epoch cap for `train_samples` training samples: enough epochs of [`BATCH`]-sample
/// batches for [`TARGET_STEPS`] optimiser steps, clamped to [[`MIN_EPOCHS`], [`MAX_EPOCHS`]].
pub fn epochs(train_samples: usize) -> usize {
    let per_epoch = train_samples.max(1);
    (TARGET_STEPS * BATCH).div_ceil(per_epoch).clamp(MIN_EPOCHS, MAX_EPOCHS)
}

/// The output activation for data scaled by `scaling`: sigmoid where the scaled training data
/// lies in [0, 1], linear where it does not.
pub fn output_activation(scaling: ScalingKind) -> Activation {
    match scaling {
        ScalingKind::Unit | ScalingKind::MinMax => Activation::Sigmoid,
        ScalingKind::Standard | ScalingKind::None => Activation::Linear,
    }
}

/// Why the recipe cannot make a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    /// Too few features for a bottleneck.
    #[error("the anomaly recipe needs at least {MIN_INPUT} features per sample (its code is {CODE_MIN} wide and must be narrower than the input); the samples have {0}")]
    TooNarrow(usize),
}

/// `trainer list`'s line.
pub fn about() -> String {
    format!(
        "one-class dense autoencoder for anomaly detection: N-h-h-c-h-h-N, h = clamp(pow2 >= N/2, {HIDDEN_MIN}, {HIDDEN_MAX}), c = clamp(N/8, {CODE_MIN}, {CODE_MAX}); trains on normal (label 0) samples, validates on a sixth of them"
    )
}

/// The recipe's spec for samples of `input` features, `train_samples` of them trained on
/// (after the validation holdout and any limit), scaled by `scaling`.
pub fn spec(input: usize, train_samples: usize, scaling: ScalingKind) -> Result<Spec, RecipeError> {
    if input < MIN_INPUT {
        return Err(RecipeError::TooNarrow(input));
    }
    let (h, c) = (hidden_width(input), code_width(input));
    Ok(Spec {
        name: NAME.into(),
        about: about(),
        input: None,
        encoder: EncoderSpec {
            layers: vec![LayerSpec::dense(h), LayerSpec::dense(h), LayerSpec::dense(c)],
            activation: Activation::LeakyRelu,
            alpha: Some(ALPHA),
            code_activation: Some(Activation::Linear),
            sparsity: None,
        },
        decoder: DecoderSpec {
            tied: false,
            layers: None,
            output_activation: Some(output_activation(scaling)),
        },
        training: TrainingSpec {
            one_class: true,
            ..TrainingSpec::default()
        },
        schedule: ScheduleSpec {
            batch: BATCH,
            epochs: epochs(train_samples),
            ..ScheduleSpec::default()
        },
    })
}

/// The spec as a file: a comment with the rule's numbers for this input, then the TOML, which
/// `trainer train --spec` trains as `trainer train anomaly` would on such data. Without
/// `train_samples` the epoch cap is the largest, [`MAX_EPOCHS`].
pub fn spec_file(input: usize, train_samples: Option<usize>, scaling: ScalingKind) -> Result<String, RecipeError> {
    let spec = spec(input, train_samples.unwrap_or(1), scaling)?;
    let (h, c) = (hidden_width(input), code_width(input));
    let epochs = match train_samples {
        Some(n) => format!(
            "epochs = clamp(ceil({TARGET_STEPS} steps x {BATCH} / {n} samples), {MIN_EPOCHS}, {MAX_EPOCHS}) = {}",
            spec.schedule.epochs
        ),
        None => format!("epochs = {MAX_EPOCHS}, the largest cap (--train-samples n sets it for n samples)"),
    };
    Ok(format!(
        "# The anomaly recipe for N = {input} features, {} scaling:\n\
         # hidden h = clamp(pow2 >= N/2, {HIDDEN_MIN}, {HIDDEN_MAX}) = {h}, code c = clamp(round(N/8), {CODE_MIN}, {CODE_MAX}) = {c};\n\
         # {epochs}.\n\
         # One-class: trains on the samples labelled 0 (all when unlabelled), validates on a sixth of them.\n{}",
        scaling.name(),
        spec.to_toml()
    ))
}

/// The rule in words, as `trainer spec anomaly` prints it without an input width.
pub fn rule() -> String {
    format!(
        "# The anomaly recipe: a one-class dense autoencoder whose spec follows from the data.\n\
         # For N features per sample and n training samples (after the validation holdout):\n\
         #   hidden h = clamp(next power of two >= N/2, {HIDDEN_MIN}, {HIDDEN_MAX}); code c = clamp(round(N/8), {CODE_MIN}, {CODE_MAX}); N >= {MIN_INPUT}\n\
         #   N-h-h-c-h-h-N, LeakyReLU (slope {ALPHA}) hidden, linear code,\n\
         #   sigmoid output for unit/minmax scaling, linear for standard/none\n\
         #   untied, one phase, batch {BATCH}, Adam 1e-3, plateau scheduler (factor 0.1, patience 10)\n\
         #   epochs = clamp(ceil({TARGET_STEPS} x {BATCH} / n), {MIN_EPOCHS}, {MAX_EPOCHS})\n\
         #   trains on the samples labelled 0 (all when unlabelled); validates on a seeded sixth of\n\
         #   them, never on the test set\n\
         # `trainer spec anomaly --input-width N [--train-samples n] [--scaling KIND]` prints the spec.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_input_width() {
        // (N, h, c): the documented table, and the edges of each clamp.
        let table = [
            (4, 32, 2),
            (8, 32, 2),
            (16, 32, 2),
            (40, 32, 5),
            (64, 32, 8),
            (100, 64, 13),
            (128, 64, 16),
            (129, 128, 16),
            (256, 128, 16),
            (257, 128, 16),
            (640, 128, 16),
            (784, 128, 16),
            (1000, 128, 16),
            (10_000, 128, 16),
        ];
        for (n, h, c) in table {
            assert_eq!((hidden_width(n), code_width(n)), (h, c), "N = {n}");
            assert!(code_width(n) < n, "N = {n}: the code must be a bottleneck");
        }
        // round(N/8): 20/8 = 2.5 rounds up, 19/8 down; 36/8 = 4.5 up, 35/8 down.
        assert_eq!(
            (code_width(19), code_width(20), code_width(35), code_width(36)),
            (2, 3, 4, 5)
        );
    }

    #[test]
    fn epochs_aim_at_the_step_target_within_the_bounds() {
        assert_eq!(epochs(1), MAX_EPOCHS);
        assert_eq!(epochs(250), MAX_EPOCHS);
        // 8,000 steps of 128: 1,024,000 samples; 5,000 samples: 204.8 -> 205 epochs.
        assert_eq!(epochs(5_000), 205);
        assert_eq!(epochs(1_024_000 / 300), 300 + 1);
        assert_eq!(epochs(1_024_000 / 40), 40);
        assert_eq!(epochs(60_000), MIN_EPOCHS);
        // Steps actually taken stay near the target in between.
        for n in [3_000, 10_000, 30_000] {
            let steps = epochs(n) * n.div_ceil(BATCH);
            assert!(
                (TARGET_STEPS..TARGET_STEPS * 11 / 10).contains(&steps),
                "n = {n}: {steps} steps"
            );
        }
    }

    #[test]
    fn the_spec_is_a_one_class_bottleneck_with_the_scalings_output() {
        let s = spec(64, 1_000, ScalingKind::MinMax).unwrap();
        let dense: Vec<_> = s.encoder.layers.iter().map(|l| l.dense.unwrap()).collect();
        assert_eq!(dense, [32, 32, 8]);
        assert!(s.training.one_class && !s.decoder.tied && !s.training.greedy);
        assert_eq!(s.encoder.code_activation, Some(Activation::Linear));
        assert_eq!(s.decoder.output_activation, Some(Activation::Sigmoid));
        assert_eq!((s.schedule.batch, s.schedule.epochs), (BATCH, epochs(1_000)));
        let standard = spec(64, 1_000, ScalingKind::Standard).unwrap();
        assert_eq!(standard.decoder.output_activation, Some(Activation::Linear));
        assert_eq!(spec(3, 100, ScalingKind::MinMax), Err(RecipeError::TooNarrow(3)));
        assert_eq!(
            RecipeError::TooNarrow(3).to_string(),
            "the anomaly recipe needs at least 4 features per sample (its code is 2 wide and must be narrower than the input); the samples have 3"
        );
    }

    #[test]
    fn the_spec_file_parses_back_to_the_spec() {
        for (n, samples, scaling) in [
            (8, 300, ScalingKind::MinMax),
            (784, 4_936, ScalingKind::Unit),
            (1000, 20_000, ScalingKind::Standard),
        ] {
            let text = spec_file(n, Some(samples), scaling).unwrap();
            let parsed = Spec::parse(&text, "<anomaly>").unwrap();
            assert_eq!(parsed, spec(n, samples, scaling).unwrap(), "N = {n}");
            assert!(text.contains("one_class = true"), "{text}");
        }
        let text = spec_file(64, None, ScalingKind::MinMax).unwrap();
        assert_eq!(Spec::parse(&text, "<anomaly>").unwrap().schedule.epochs, MAX_EPOCHS);
        // The model it builds: 784-128-128-16-128-128-784.
        let arch = spec(784, 100, ScalingKind::Unit).unwrap().architecture();
        let model = arch
            .build(
                &[28, 28],
                &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0),
            )
            .unwrap();
        let weights: Vec<_> = model
            .params
            .iter()
            .filter(|p| p.name.ends_with(".weight"))
            .map(|p| p.value.dim())
            .collect();
        assert_eq!(
            weights,
            [(128, 784), (128, 128), (16, 128), (128, 16), (128, 128), (784, 128)]
        );
        assert_eq!(model.code_width(), 16);
    }
}
