//! Anomaly detection: how well a model's scores separate anomalies from normal samples.
//!
//! A score is an `f64` where higher means more anomalous: an int8 model's `u32` score and a
//! float model's `f32` MSE both convert to `f64` exactly. Labels are `bool`, `true` for an
//! anomaly. [`metrics`] holds the threshold-free measures (AUROC, average precision, the ROC
//! curve), the threshold picked from normal scores at a false positive rate, and the counts
//! at a threshold. [`scores`] computes the scores: the int8 model's through the core, exactly
//! as the device does, and the float model's per-sample MSE. [`recipe`] is the built-in
//! `anomaly` recipe, whose spec follows from the data.

pub mod evaluate;
pub mod metrics;
pub mod recipe;
pub mod scores;
pub mod threshold;

pub use metrics::{auroc, average_precision, confusion, roc_curve, threshold_at_fpr, Confusion};
pub use scores::{float_scores, int8_scores};
