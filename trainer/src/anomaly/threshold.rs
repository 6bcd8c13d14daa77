//! The anomaly threshold stored in a model file (`trainer export --threshold-fpr P`): the
//! integer score above which a fraction P of normal samples is flagged.
//!
//! Which normal samples: the run's validation samples when they were held out of the training
//! data (a seeded sixth, [`Validation::HeldOut`]: the model never trained on them, so their
//! scores are what unseen normal data scores); otherwise, when the run validated on a test set
//! (which may hold the anomalies and is never used for a decision), the training samples. Of
//! either set, samples labelled other than 0 are left out: a label of 1 marks an anomaly. A
//! one-class run ([`Validation::OneClass`]: the `anomaly` recipe, the one-class study) trained
//! and validated on the samples of its normal label alone, so its held-out samples are all
//! normal.

use super::metrics::threshold_at_fpr;
use super::scores::int8_scores;
use crate::data::{Dataset, Samples, Validation};
use crate::infer::InferError;
use autoencoder_core::model::Threshold;
use autoencoder_core::Model;
use serde::Serialize;

/// The default `--threshold-fpr` of the `anomaly` recipe's runs ([`super::recipe::NAME`]).
pub const DEFAULT_FPR: f64 = 0.01;

/// Which samples a threshold was fitted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FitOn {
    /// The validation samples held out of the training data.
    HeldOut,
    /// The training samples.
    Training,
}

impl FitOn {
    /// In words, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            FitOn::HeldOut => "held-out normal training samples",
            FitOn::Training => "normal training samples",
        }
    }
}

/// A fitted threshold and how it does on the samples it was fitted on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdFit {
    /// The threshold: a score above it is flagged.
    pub score: u32,
    /// The false positive rate asked for.
    pub target_fpr: f64,
    /// The fraction of the fitting samples flagged (at most the target).
    pub flagged: f64,
    /// How many normal samples it was fitted on.
    pub samples: usize,
    /// Which samples.
    pub fit_on: FitOn,
}

impl ThresholdFit {
    /// As stored in the model file.
    pub fn stored(&self) -> Threshold {
        Threshold {
            score: self.score,
            false_positive_rate: self.target_fpr as f32,
        }
    }
}

/// Why a threshold could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    /// P is not in [0, 1).
    #[error("--threshold-fpr {0}: a false positive rate must be at least 0 and below 1")]
    BadRate(f64),
    /// No normal sample to fit on.
    #[error("no normal samples to fit the threshold on ({0}: none labelled 0)")]
    NoNormalSamples(&'static str),
    /// The core refused a sample.
    #[error(transparent)]
    Infer(#[from] InferError),
}

/// The normal samples a threshold of `data` is fitted on, and which they are (see the module
/// docs).
pub fn normal_samples(data: &Dataset) -> (Samples, FitOn) {
    match data.record.validation {
        Validation::HeldOut { .. } => (normals(&data.test), FitOn::HeldOut),
        // Held out of the samples of the normal label alone: all normal, whatever their label.
        Validation::OneClass { .. } => (data.test.clone(), FitOn::HeldOut),
        Validation::TestSet => (normals(&data.train), FitOn::Training),
    }
}

/// The samples labelled 0, or all of them when there are no labels.
pub fn normals(samples: &Samples) -> Samples {
    match samples.labels() {
        None => samples.clone(),
        Some(labels) => {
            let keep: Vec<usize> = (0..samples.len()).filter(|&i| labels[i] == 0).collect();
            samples.select(&keep)
        }
    }
}

/// The int8 threshold of `model` at false positive rate `fpr` on the normal samples of `data`
/// ([`normal_samples`]): [`threshold_at_fpr`] of their core-computed scores.
///
/// # Errors
/// [`ThresholdError`] for a rate outside [0, 1), no normal samples, or a sample the core
/// refuses.
pub fn fit(model: &Model<'_>, data: &Dataset, fpr: f64, threads: usize) -> Result<ThresholdFit, ThresholdError> {
    if !(0.0..1.0).contains(&fpr) {
        return Err(ThresholdError::BadRate(fpr));
    }
    let (samples, fit_on) = normal_samples(data);
    if samples.is_empty() {
        return Err(ThresholdError::NoNormalSamples(fit_on.describe()));
    }
    let scores: Vec<f64> = int8_scores(model, &samples, threads)?
        .into_iter()
        .map(f64::from)
        .collect();
    let threshold = threshold_at_fpr(&scores, fpr).ok_or(ThresholdError::BadRate(fpr))?;
    let flagged = scores.iter().filter(|&&s| s > threshold).count() as f64 / scores.len() as f64;
    Ok(ThresholdFit {
        // A u32 score converts to f64 exactly, and the threshold is one of the scores.
        score: threshold as u32,
        target_fpr: fpr,
        flagged,
        samples: scores.len(),
        fit_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Element, Origin};

    fn samples(labels: Option<Vec<i64>>) -> Samples {
        let s = Samples::new(
            (0..10).map(|i| i as f32).collect(),
            vec![2],
            Element::F32,
            Origin::file("x.npy"),
        )
        .unwrap();
        match labels {
            Some(l) => s.with_labels(l, Origin::file("x.npy")).unwrap(),
            None => s,
        }
    }

    #[test]
    fn only_samples_labelled_0_are_normal() {
        assert_eq!(normals(&samples(None)).len(), 5);
        let n = normals(&samples(Some(vec![0, 1, 0, 1, 1])));
        assert_eq!(n.len(), 2);
        assert_eq!(n.values(), &[0.0, 1.0, 4.0, 5.0]);
    }
}
