//! How well a model's anomaly scores separate labelled samples (`trainer score`): AUROC,
//! average precision, and precision, recall and false positive rate at the stored threshold,
//! for the int8 model and, when its run is at hand, the float model.
//!
//! Labels come with the data (an `.npz`'s `y` or `y_test`, a CSV's `--label-column`, IDX
//! label files): 1 marks an anomaly, 0 a normal sample; any other value is an error naming it
//! and its row.

use super::metrics::{auroc, average_precision, confusion, threshold_at_fpr};
use crate::data::{Origin, Samples};
use serde::Serialize;

/// Why labels cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LabelError {
    /// A label that is neither 0 nor 1.
    #[error("{at}: label {value} in row {row}: anomaly labels must be 0 (normal) or 1 (anomaly)")]
    NotBinary {
        /// The samples.
        at: Origin,
        /// The row, from 0.
        row: usize,
        /// The label.
        value: i64,
    },
}

/// The samples' labels as anomaly flags (`true` = 1), if they have labels.
///
/// # Errors
/// [`LabelError::NotBinary`] for the first label other than 0 and 1.
pub fn anomaly_labels(samples: &Samples) -> Result<Option<Vec<bool>>, LabelError> {
    let Some(labels) = samples.labels() else {
        return Ok(None);
    };
    labels
        .iter()
        .enumerate()
        .map(|(row, &value)| match value {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(LabelError::NotBinary {
                at: samples.origin().clone(),
                row,
                value,
            }),
        })
        .collect::<Result<Vec<bool>, _>>()
        .map(Some)
}

/// The measures of one model's scores against the labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Separation {
    /// Area under the ROC curve (`None` without both classes).
    pub auroc: Option<f64>,
    /// Average precision (`None` without anomalies).
    pub average_precision: Option<f64>,
    /// The threshold: a score above it is flagged.
    pub threshold: Option<f64>,
    /// Of the flagged samples, the fraction that are anomalies.
    pub precision: Option<f64>,
    /// Of the anomalies, the fraction flagged.
    pub recall: Option<f64>,
    /// Of the normal samples, the fraction flagged.
    pub false_positive_rate: Option<f64>,
}

/// [`Separation`] of `scores` against `labels`, at `threshold` when there is one.
pub fn separation(scores: &[f64], labels: &[bool], threshold: Option<f64>) -> Separation {
    let at = threshold.and_then(|t| confusion(scores, labels, t));
    Separation {
        auroc: auroc(scores, labels),
        average_precision: average_precision(scores, labels),
        threshold,
        precision: at.and_then(|c| c.precision()),
        recall: at.and_then(|c| c.recall()),
        false_positive_rate: at.and_then(|c| c.false_positive_rate()),
    }
}

/// The float threshold fitted like the int8 one: on normal scores, at false positive rate
/// `fpr`.
pub fn float_threshold(normal_scores: &[f32], fpr: f64) -> Option<f64> {
    let scores: Vec<f64> = normal_scores.iter().map(|&s| f64::from(s)).collect();
    threshold_at_fpr(&scores, fpr)
}

/// What `trainer score` prints, as one JSON line. Fields that do not apply are left out: all
/// but `samples` need labels, the `float_` ones the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// Samples scored.
    pub samples: usize,
    /// Of them, labelled anomalies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<usize>,
    /// The int8 model's AUROC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
    /// Its average precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_precision: Option<f64>,
    /// The threshold stored in the model (JSON `null` when labels are given and it holds none).
    #[serde(skip_serializing_if = "skip_threshold")]
    pub threshold: Option<Option<u32>>,
    /// Precision at the stored threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// Recall at the stored threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// False positive rate at the stored threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positive_rate: Option<f64>,
    /// The float model's AUROC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_auroc: Option<f64>,
    /// Its average precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_average_precision: Option<f64>,
    /// Its threshold, fitted like the int8 one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_threshold: Option<f64>,
    /// Precision at the float threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_precision: Option<f64>,
    /// Recall at the float threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_recall: Option<f64>,
    /// False positive rate at the float threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_false_positive_rate: Option<f64>,
}

fn skip_threshold(t: &Option<Option<u32>>) -> bool {
    t.is_none()
}

impl ScoreSummary {
    /// The summary of int8 `scores` (and float ones, with their threshold) against `labels`
    /// (if any), at the model's stored `threshold`.
    pub fn new(
        int8: &[u32],
        threshold: Option<u32>,
        labels: Option<&[bool]>,
        float: Option<(&[f32], Option<f64>)>,
    ) -> ScoreSummary {
        let mut s = ScoreSummary {
            samples: int8.len(),
            ..ScoreSummary::default()
        };
        let Some(labels) = labels else {
            return s;
        };
        let scores: Vec<f64> = int8.iter().map(|&v| f64::from(v)).collect();
        let q = separation(&scores, labels, threshold.map(f64::from));
        s.anomalies = Some(labels.iter().filter(|&&a| a).count());
        s.auroc = q.auroc;
        s.average_precision = q.average_precision;
        s.threshold = Some(threshold);
        s.precision = q.precision;
        s.recall = q.recall;
        s.false_positive_rate = q.false_positive_rate;
        if let Some((float, float_threshold)) = float {
            let scores: Vec<f64> = float.iter().map(|&v| f64::from(v)).collect();
            let f = separation(&scores, labels, float_threshold);
            s.float_auroc = f.auroc;
            s.float_average_precision = f.average_precision;
            s.float_threshold = f.threshold;
            s.float_precision = f.precision;
            s.float_recall = f.recall;
            s.float_false_positive_rate = f.false_positive_rate;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Element;

    fn labelled(labels: Vec<i64>) -> Samples {
        let n = labels.len();
        Samples::new(vec![0.0; n], vec![1], Element::F32, Origin::file("s.npz"))
            .unwrap()
            .with_labels(labels, Origin::file("s.npz"))
            .unwrap()
    }

    #[test]
    fn labels_must_be_0_or_1_and_the_first_other_is_named() {
        assert_eq!(
            anomaly_labels(&labelled(vec![0, 1, 1, 0])).unwrap(),
            Some(vec![false, true, true, false])
        );
        let e = anomaly_labels(&labelled(vec![0, 1, 2, 7])).unwrap_err();
        assert!(matches!(e, LabelError::NotBinary { row: 2, value: 2, .. }));
        assert!(e.to_string().contains("label 2 in row 2"), "{e}");
    }

    #[test]
    fn the_summary_by_hand() {
        // Scores 1..=6; anomalies are the samples scoring 4, 6 and 2; threshold 3 flags 4, 5, 6.
        let int8 = [1u32, 2, 3, 4, 5, 6];
        let labels = [false, true, false, true, false, true];
        let s = ScoreSummary::new(&int8, Some(3), Some(&labels), None);
        assert_eq!(s.samples, 6);
        assert_eq!(s.anomalies, Some(3));
        // Pairs (anomaly, normal) ranked right: 2>1; 4>1,3; 6>1,3,5 → 6 of 9.
        assert_eq!(s.auroc, Some(6.0 / 9.0));
        assert_eq!(s.threshold, Some(Some(3)));
        assert_eq!(s.precision, Some(2.0 / 3.0));
        assert_eq!(s.recall, Some(2.0 / 3.0));
        assert_eq!(s.false_positive_rate, Some(1.0 / 3.0));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("float_"), "{json}");

        // Without a stored threshold: null, and nothing measured at it.
        let s = ScoreSummary::new(
            &int8,
            None,
            Some(&labels),
            Some((&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], Some(0.35))),
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"threshold\":null"), "{json}");
        assert!(!json.contains("\"precision\""), "{json}");
        assert_eq!(s.float_auroc, Some(6.0 / 9.0));
        assert_eq!(s.float_recall, Some(2.0 / 3.0));

        // Without labels: only the count.
        let s = ScoreSummary::new(&int8, Some(3), None, None);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"samples":6}"#);
    }
}
