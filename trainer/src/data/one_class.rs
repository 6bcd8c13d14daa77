//! The split of one-class training (anomaly detection): the model learns what normal samples
//! look like, so it trains on normal samples only and validates on normal samples held out of
//! them. The test set holds the anomalies; nothing about training is decided on it.
//!
//! Normal means one label when the training samples carry labels (0 for `trainer train`: the
//! vibration data's healthy windows, an anomaly flag column; a digit in the one-class MNIST
//! study), every sample when they carry none.

use super::dataset::Read;
use super::{holdout, DataError, DataRequest, Dataset, Samples, SourceFile, Validation};

/// What [`one_class_split`] did, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneClassSplit {
    /// The normal samples' label.
    pub label: i64,
    /// Whether the training samples carried labels (then only those labelled [`Self::label`]
    /// were kept).
    pub labelled: bool,
    /// Training samples read.
    pub total: usize,
    /// Normal samples among them: those labelled [`Self::label`], or all when unlabelled.
    pub normal: usize,
    /// Normal samples held out for validation.
    pub held_out: usize,
}

impl std::fmt::Display for OneClassSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labelled {
            write!(
                f,
                "one-class: training on the {} of {} training samples labelled {} (normal), {} of them held out for validation",
                self.normal, self.total, self.label, self.held_out
            )
        } else {
            write!(
                f,
                "one-class: the {} training samples carry no labels, all taken as normal; {} of them held out for validation",
                self.total, self.held_out
            )
        }
    }
}

/// The normal samples of `samples` (labelled `normal`; all of them when unlabelled), split into
/// (training, validation) by [`holdout`] with `seed`: a sixth of the normal samples held out.
/// Both parts keep the original order and their labels.
///
/// Errors: labelled samples none of which is labelled `normal`
/// ([`DataError::NoNormalSamples`]); fewer than 2 normal samples
/// ([`DataError::TooFewToHoldOut`]).
pub fn one_class_split(
    samples: &Samples,
    normal: i64,
    seed: u64,
) -> Result<(Samples, Samples, OneClassSplit), DataError> {
    let (kept, labelled) = match samples.labels() {
        None => (samples.clone(), false),
        Some(labels) => {
            let kept: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == normal).collect();
            if kept.is_empty() {
                let mut found = labels.to_vec();
                found.sort_unstable();
                found.dedup();
                let mut shown: Vec<String> = found.iter().take(8).map(i64::to_string).collect();
                if found.len() > 8 {
                    shown.push("...".into());
                }
                return Err(DataError::NoNormalSamples {
                    at: samples.origin().clone(),
                    n: samples.len(),
                    normal,
                    found: shown.join(", "),
                });
            }
            (samples.select(&kept), true)
        }
    };
    let (train, validation) = holdout(&kept, seed)?;
    let split = OneClassSplit {
        label: normal,
        labelled,
        total: samples.len(),
        normal: kept.len(),
        held_out: validation.len(),
    };
    Ok((train, validation, split))
}

impl Dataset {
    /// Reads `request` for one-class training: the normal training samples (labelled `normal`,
    /// all when unlabelled), a sixth of them held out with `request.seed` for validation
    /// ([`one_class_split`]), the scaling fitted on the rest. A test set (the data's own split,
    /// or `--test-data`) is read and its files recorded, but it is not the validation set: the
    /// record says [`Validation::OneClass`].
    pub fn load_one_class(request: &DataRequest, normal: i64) -> Result<(Dataset, OneClassSplit), DataError> {
        let read = Read::from(request)?;
        Dataset::one_class_of(request, &read.train, read.files, normal)
    }

    /// [`Dataset::load_one_class`] of training samples `train` already read from `request`'s
    /// `files` (those of the training data, those of the test data): many one-class datasets
    /// of one file, each with its own normal label, without reading it again.
    pub fn one_class_of(
        request: &DataRequest,
        train: &Samples,
        files: (Vec<SourceFile>, Vec<SourceFile>),
        normal: i64,
    ) -> Result<(Dataset, OneClassSplit), DataError> {
        let (train, validation, split) = one_class_split(train, normal, request.seed)?;
        let kind = Validation::OneClass {
            seed: request.seed,
            normal,
        };
        let dataset = Dataset::assemble(request, train, validation, kind, files)?;
        Ok((dataset, split))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{holdout_indices, Element, Origin};

    fn labelled(labels: &[i64]) -> Samples {
        let values = (0..labels.len() * 2).map(|v| v as f32).collect();
        Samples::new(values, vec![2], Element::F32, Origin::file("t.npz"))
            .and_then(|s| s.with_labels(labels.to_vec(), Origin::file("t.npz")))
            .unwrap()
    }

    #[test]
    fn only_label_0_is_trained_on_and_a_sixth_of_it_held_out() {
        // Normal samples at 0, 2, 3, 5, 6, 8, 9 (7 of them), anomalies elsewhere.
        let samples = labelled(&[0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 1, 1]);
        let (train, validation, split) = one_class_split(&samples, 0, 4).unwrap();
        assert_eq!(
            split,
            OneClassSplit {
                label: 0,
                labelled: true,
                total: 12,
                normal: 7,
                held_out: 1
            }
        );
        assert_eq!((train.len(), validation.len()), (6, 1));
        for part in [&train, &validation] {
            assert!(part.labels().unwrap().iter().all(|&l| l == 0));
        }
        // The held-out one is the normal sample holdout_indices(7, 4) picks; nothing is lost.
        let normal = [0usize, 2, 3, 5, 6, 8, 9];
        let held = normal[holdout_indices(7, 4).unwrap()[0]];
        assert_eq!(validation.row(0), samples.row(held));
        let mut seen: Vec<f32> = train.rows().chain(validation.rows()).map(|r| r[0]).collect();
        seen.sort_by(f32::total_cmp);
        let want: Vec<f32> = normal.iter().map(|&i| samples.row(i)[0]).collect();
        assert_eq!(seen, want);
        assert!(split.to_string().contains("the 7 of 12 training samples labelled 0"));
        // Another normal label picks its own samples.
        let (train, validation, split) = one_class_split(&samples, 1, 4).unwrap();
        assert_eq!((split.normal, train.len() + validation.len()), (3, 3));
        assert!(train.labels().unwrap().iter().all(|&l| l == 1));
    }

    #[test]
    fn unlabelled_samples_are_all_normal_and_split_as_the_plain_holdout() {
        let samples = Samples::new(
            (0..40).map(|v| v as f32).collect(),
            vec![4],
            Element::F32,
            Origin::file("u.npy"),
        )
        .unwrap();
        let (train, validation, split) = one_class_split(&samples, 5, 9).unwrap();
        let (plain_train, plain_validation) = holdout(&samples, 9).unwrap();
        assert_eq!((train, validation), (plain_train, plain_validation));
        assert!(!split.labelled);
        assert_eq!((split.total, split.normal, split.held_out), (10, 10, 1));
    }

    #[test]
    fn labelled_samples_without_a_normal_one_are_refused_by_name() {
        let e = one_class_split(&labelled(&[3, 1, 1, 2]), 0, 0).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.npz: none of the 4 training samples is labelled 0; one-class training (the anomaly recipe) trains on the samples labelled 0, the normal ones (labels found: 1, 2, 3)"
        );
        let e = one_class_split(&labelled(&[0, 1, 1]), 0, 0).unwrap_err().to_string();
        assert!(e.contains("needs at least 2 training samples, there are 1"), "{e}");
    }
}
