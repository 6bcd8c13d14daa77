//! Detection metrics over anomaly scores: AUROC, average precision, the ROC curve, the
//! threshold at a false positive rate and the confusion counts at a threshold.
//!
//! `scores[i]` is sample i's score (higher is more anomalous) and `labels[i]` is `true` when
//! sample i is an anomaly. Samples with equal scores cannot be told apart by any threshold, so
//! every measure treats a run of tied scores as one step. Inputs that make a measure
//! meaningless (slices of different lengths, a NaN score, a class missing where it is needed)
//! give `None`.

use std::cmp::Ordering;

/// A run of equal scores: how many of its samples are anomalies and how many are normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tie {
    anomalies: usize,
    normals: usize,
}

/// The samples grouped by score, lowest score first, one [`Tie`] per distinct score; `None` if
/// the lengths differ or a score is NaN. `-0.0` and `0.0` are one score.
fn ties(scores: &[f64], labels: &[bool]) -> Option<Vec<Tie>> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Without NaN, `total_cmp` orders as `<` does, putting -0.0 just before 0.0, so equal
    // scores are always adjacent.
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut out: Vec<Tie> = Vec::new();
    let mut last = None;
    for i in order {
        let s = scores[i];
        if last != Some(s) {
            out.push(Tie {
                anomalies: 0,
                normals: 0,
            });
        }
        let tie = out.last_mut().expect("a run was opened for this score");
        if labels[i] {
            tie.anomalies += 1;
        } else {
            tie.normals += 1;
        }
        last = Some(s);
    }
    Some(out)
}

/// The number of anomalies and of normal samples.
fn class_sizes(ties: &[Tie]) -> (usize, usize) {
    ties.iter().fold((0, 0), |(a, n), t| (a + t.anomalies, n + t.normals))
}

/// Area under the ROC curve: the probability that a randomly drawn anomaly scores above a
/// randomly drawn normal sample, a tie counting one half. 1 is perfect separation, 0.5 is
/// chance, 0 is perfectly reversed.
///
/// Computed as the Mann–Whitney U statistic of the anomalies' scores: one sort, each sample
/// ranked 1..=n with tied scores sharing their average rank, U = (anomalies' rank sum) −
/// a(a + 1)/2 and AUROC = U / (a · m) for a anomalies and m normal samples; O(n log n), exact
/// in integers until the final division.
///
/// `None` if the lengths differ, a score is NaN, or there are no anomalies or no normal
/// samples.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let ties = ties(scores, labels)?;
    let (a, m) = class_sizes(&ties);
    if a == 0 || m == 0 {
        return None;
    }
    // Twice the anomalies' rank sum: a run of g tied scores after `below` lower ones holds
    // ranks below + 1 ..= below + g, averaging (2 · below + g + 1) / 2.
    let mut below = 0u128;
    let mut twice_rank_sum = 0u128;
    for t in &ties {
        let g = (t.anomalies + t.normals) as u128;
        twice_rank_sum += t.anomalies as u128 * (2 * below + g + 1);
        below += g;
    }
    let (a, m) = (a as u128, m as u128);
    let twice_u = twice_rank_sum - a * (a + 1);
    Some(twice_u as f64 / (2 * a * m) as f64)
}

/// Average precision as scikit-learn defines it: AP = Σₙ (Rₙ − Rₙ₋₁) Pₙ, over the distinct
/// scores taken as thresholds from the highest down, where Pₙ and Rₙ are the precision and
/// recall when every sample scoring at least the n-th threshold is flagged (R₀ = 0). Tied
/// scores are one threshold. It summarises the precision–recall curve without interpolation;
/// a random ranking scores about the share of anomalies.
///
/// With no normal samples every precision is 1, so AP is 1.0. `None` if the lengths differ, a
/// score is NaN, or there are no anomalies (recall is undefined).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let ties = ties(scores, labels)?;
    let (a, _) = class_sizes(&ties);
    if a == 0 {
        return None;
    }
    let (mut tp, mut flagged) = (0usize, 0usize);
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for t in ties.iter().rev() {
        tp += t.anomalies;
        flagged += t.anomalies + t.normals;
        let recall = tp as f64 / a as f64;
        let precision = tp as f64 / flagged as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Some(ap)
}

/// The ROC curve's points, (false positive rate, true positive rate), for drawing: (0, 0)
/// first (nothing flagged), then one point per distinct score taken as the threshold from the
/// highest down (every sample scoring at least it flagged), ending at (1, 1). Tied scores are
/// one point, so a tie between classes is a diagonal step. Joined by straight lines, the
/// points enclose an area equal to [`auroc`].
///
/// `None` as for [`auroc`]: lengths differ, a NaN score, or a class absent.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Option<Vec<(f64, f64)>> {
    let ties = ties(scores, labels)?;
    let (a, m) = class_sizes(&ties);
    if a == 0 || m == 0 {
        return None;
    }
    let mut points = Vec::with_capacity(ties.len() + 1);
    points.push((0.0, 0.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    for t in ties.iter().rev() {
        tp += t.anomalies;
        fp += t.normals;
        points.push((fp as f64 / m as f64, tp as f64 / a as f64));
    }
    Some(points)
}

/// The threshold that flags at most a share `fpr` of the normal samples: the smallest value
/// t among `normal_scores` such that at most ⌊fpr · n⌋ of the n normal scores are strictly
/// greater than t. A sample is flagged when its score is `> threshold`, so samples tied with
/// the threshold are never flagged, and ties can leave the false positive rate below `fpr`.
/// With `fpr` = 0 it is the largest normal score.
///
/// fpr · n is rounded down after allowing for rounding error in the product, so 0.29 · 100
/// counts as 29 (in f64 it is 28.999999999999996).
///
/// `None` for an empty slice, a NaN score, or `fpr` outside [0, 1) (or NaN).
pub fn threshold_at_fpr(normal_scores: &[f64], fpr: f64) -> Option<f64> {
    if normal_scores.is_empty() || normal_scores.iter().any(|s| s.is_nan()) || !(0.0..1.0).contains(&fpr) {
        return None;
    }
    let n = normal_scores.len();
    let allowed = ((fpr * n as f64) * (1.0 + 8.0 * f64::EPSILON)).floor() as usize;
    let allowed = allowed.min(n - 1);
    let mut sorted = normal_scores.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    // The `allowed` largest scores may lie above t; the next one down cannot.
    Some(sorted[n - 1 - allowed])
}

/// Counts of samples by class and by whether a threshold flags them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Anomalies flagged.
    pub true_positives: usize,
    /// Normal samples flagged.
    pub false_positives: usize,
    /// Normal samples not flagged.
    pub true_negatives: usize,
    /// Anomalies not flagged.
    pub false_negatives: usize,
}

/// `num / den`, `None` when `den` is 0.
fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    /// The share of flagged samples that are anomalies; `None` when nothing is flagged.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }

    /// The share of anomalies flagged (true positive rate); `None` without anomalies.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }

    /// The share of normal samples flagged; `None` without normal samples.
    pub fn false_positive_rate(&self) -> Option<f64> {
        ratio(self.false_positives, self.false_positives + self.true_negatives)
    }
}

/// The counts when every sample scoring `> threshold` is flagged. A NaN score is never flagged
/// (it compares false); `None` if the lengths differ.
pub fn confusion(scores: &[f64], labels: &[bool], threshold: f64) -> Option<Confusion> {
    if scores.len() != labels.len() {
        return None;
    }
    let mut c = Confusion::default();
    for (&s, &anomaly) in scores.iter().zip(labels) {
        let flagged = s.partial_cmp(&threshold) == Some(Ordering::Greater);
        match (anomaly, flagged) {
            (true, true) => c.true_positives += 1,
            (true, false) => c.false_negatives += 1,
            (false, true) => c.false_positives += 1,
            (false, false) => c.true_negatives += 1,
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auroc_and_ap_of_separated_reversed_and_tied_scores() {
        let labels = [F, F, T, T];
        // Anomalies above every normal sample.
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(average_precision(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        // Anomalies below every normal sample: AUROC 0; AP flags both normals first, then
        // reaches recall 1/2 at precision 1/3 and recall 1 at precision 2/4.
        assert_eq!(auroc(&[0.8, 0.9, 0.1, 0.2], &labels), Some(0.0));
        let ap = average_precision(&[0.8, 0.9, 0.1, 0.2], &labels).unwrap();
        assert!(close(ap, 0.5 / 3.0 + 0.5 * 0.5), "{ap}");
        // All tied: every pair is a tie (1/2); one threshold at recall 1, precision 2/4.
        assert_eq!(auroc(&[3.0; 4], &labels), Some(0.5));
        assert_eq!(average_precision(&[3.0; 4], &labels), Some(0.5));
        // -0.0 and 0.0 are one score.
        assert_eq!(auroc(&[0.0, -0.0], &[T, F]), Some(0.5));
    }

    #[test]
    fn auroc_and_ap_of_four_samples_by_hand() {
        // Anomalies score 0.8 and 0.4, normal samples 0.4 and 0.2. Pairs (anomaly, normal):
        // 0.8 > 0.4, 0.8 > 0.2, 0.4 = 0.4 (a half), 0.4 > 0.2: 3.5 of 4.
        let scores = [0.4, 0.8, 0.2, 0.4];
        let labels = [F, T, F, T];
        assert_eq!(auroc(&scores, &labels), Some(0.875));
        // Thresholds from the top: 0.8 flags one anomaly (R 1/2, P 1); 0.4 adds an anomaly and a
        // normal sample (R 1, P 2/3); 0.2 adds a normal sample, recall unchanged.
        let ap = average_precision(&scores, &labels).unwrap();
        assert!(close(ap, 0.5 * 1.0 + 0.5 * (2.0 / 3.0)), "{ap}");
        // Each distinct score one point; the tie at 0.4 a diagonal step.
        assert_eq!(
            roc_curve(&scores, &labels).unwrap(),
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );

        // No ties: anomalies 0.35 and 0.8, normal 0.1 and 0.4; 0.35 loses to 0.4 only: 3 of 4.
        // AP: 0.8 (R 1/2, P 1), 0.4 (R 1/2), 0.35 (R 1, P 2/3), 0.1 (R 1).
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [F, F, T, T];
        assert_eq!(auroc(&scores, &labels), Some(0.75));
        let ap = average_precision(&scores, &labels).unwrap();
        assert!(close(ap, 0.5 + 0.5 * (2.0 / 3.0)), "{ap}");
    }

    #[test]
    fn none_for_mismatched_nan_or_one_class() {
        assert_eq!(auroc(&[1.0, 2.0], &[T]), None);
        assert_eq!(auroc(&[1.0, f64::NAN], &[T, F]), None);
        assert_eq!(auroc(&[1.0, 2.0], &[T, T]), None);
        assert_eq!(auroc(&[1.0, 2.0], &[F, F]), None);
        assert_eq!(auroc(&[], &[]), None);
        assert_eq!(average_precision(&[1.0, 2.0], &[T]), None);
        assert_eq!(average_precision(&[f64::NAN, 2.0], &[T, F]), None);
        assert_eq!(average_precision(&[1.0, 2.0], &[F, F]), None);
        assert_eq!(average_precision(&[], &[]), None);
        // Only anomalies: every precision is 1.
        assert_eq!(average_precision(&[1.0, 2.0, 2.0], &[T, T, T]), Some(1.0));
        assert_eq!(roc_curve(&[1.0, 2.0], &[T, T]), None);
        assert_eq!(roc_curve(&[1.0, 2.0], &[T]), None);
        assert_eq!(roc_curve(&[1.0, f64::NAN], &[T, F]), None);
        assert_eq!(confusion(&[1.0, 2.0], &[T], 1.5), None);
        // Infinite scores are ordinary extremes.
        assert_eq!(auroc(&[f64::INFINITY, f64::NEG_INFINITY], &[T, F]), Some(1.0));
    }

    #[test]
    fn threshold_at_fpr_on_one_to_a_hundred() {
        let scores: Vec<f64> = (1..=100).map(f64::from).collect();
        // 1 % of 100: one score (100) may lie above.
        assert_eq!(threshold_at_fpr(&scores, 0.01), Some(99.0));
        assert_eq!(threshold_at_fpr(&scores, 0.0), Some(100.0));
        // 0.29 · 100 is 28.999999999999996 in f64 and still allows 29 above 71.
        assert_eq!(threshold_at_fpr(&scores, 0.29), Some(71.0));
        // 0.995 · 100 = 99.5 allows 99 above 1.
        assert_eq!(threshold_at_fpr(&scores, 0.995), Some(1.0));
        // Order does not matter.
        let reversed: Vec<f64> = scores.iter().rev().copied().collect();
        assert_eq!(threshold_at_fpr(&reversed, 0.05), Some(95.0));
        let c = confusion(&scores, &[F; 100], 95.0).unwrap();
        assert_eq!(c.false_positive_rate(), Some(0.05));
    }

    #[test]
    fn threshold_at_fpr_with_ties() {
        let scores = [2.0, 1.0, 3.0, 2.0, 2.0];
        // n = 5. fpr 0.2 allows 1 above: t = 2 (only 3 above it).
        assert_eq!(threshold_at_fpr(&scores, 0.2), Some(2.0));
        // 0.4 allows 2, but below 2 the three 2s and the 3 would lie above: still 2.
        assert_eq!(threshold_at_fpr(&scores, 0.4), Some(2.0));
        assert_eq!(threshold_at_fpr(&scores, 0.6), Some(2.0));
        // 0.8 allows 4: t = 1, the minimum.
        assert_eq!(threshold_at_fpr(&scores, 0.8), Some(1.0));
        assert_eq!(threshold_at_fpr(&scores, 0.0), Some(3.0));
        assert_eq!(threshold_at_fpr(&[7.0; 10], 0.5), Some(7.0));
    }

    #[test]
    fn threshold_at_fpr_refuses_bad_input() {
        assert_eq!(threshold_at_fpr(&[], 0.1), None);
        assert_eq!(threshold_at_fpr(&[1.0, f64::NAN], 0.1), None);
        assert_eq!(threshold_at_fpr(&[1.0, 2.0], 1.0), None);
        assert_eq!(threshold_at_fpr(&[1.0, 2.0], -0.01), None);
        assert_eq!(threshold_at_fpr(&[1.0, 2.0], f64::NAN), None);
    }

    #[test]
    fn confusion_counts_and_rates() {
        let scores = [0.9, 0.7, 0.5, 0.3, 0.1, f64::NAN];
        let labels = [T, F, T, F, F, T];
        // Flagged: 0.9 (anomaly), 0.7 (normal). 0.5 equals the threshold: not flagged. NaN: not
        // flagged.
        let c = confusion(&scores, &labels, 0.5).unwrap();
        assert_eq!(
            c,
            Confusion {
                true_positives: 1,
                false_positives: 1,
                true_negatives: 2,
                false_negatives: 2,
            }
        );
        assert_eq!(c.precision(), Some(0.5));
        assert_eq!(c.recall(), Some(1.0 / 3.0));
        assert_eq!(c.false_positive_rate(), Some(1.0 / 3.0));
        let none = confusion(&scores, &labels, 1.0).unwrap();
        assert_eq!((none.true_positives, none.false_positives), (0, 0));
        assert_eq!(none.precision(), None);
        assert_eq!(Confusion::default().recall(), None);
        assert_eq!(Confusion::default().false_positive_rate(), None);
    }

    /// Scores in 0..20 (many ties) and labels, from a linear congruential generator.
    fn pseudo_random(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        (0..n)
            .map(|_| {
                let anomaly = next() % 4 == 0;
                // Anomalies lean high, so the AUROC is neither 0.5 nor 1.
                let score = (next() % 16 + if anomaly { 4 } else { 0 }) as f64;
                (score, anomaly)
            })
            .unzip()
    }

    #[test]
    fn metrics_match_their_definitions_on_random_ties() {
        for (n, seed) in [(300, 1), (257, 42), (500, 7)] {
            let (scores, labels) = pseudo_random(n, seed);
            let anomalies: Vec<f64> = (0..n).filter(|&i| labels[i]).map(|i| scores[i]).collect();
            let normals: Vec<f64> = (0..n).filter(|&i| !labels[i]).map(|i| scores[i]).collect();
            assert!(anomalies.len() > 20 && normals.len() > 20);

            // AUROC: every (anomaly, normal) pair, wins 2 and ties 1, in halves.
            let mut halves = 0usize;
            for a in &anomalies {
                for m in &normals {
                    halves += match a.partial_cmp(m).unwrap() {
                        Ordering::Greater => 2,
                        Ordering::Equal => 1,
                        Ordering::Less => 0,
                    };
                }
            }
            let brute = halves as f64 / (2 * anomalies.len() * normals.len()) as f64;
            let fast = auroc(&scores, &labels).unwrap();
            assert!(close(fast, brute), "n {n}: {fast} vs {brute}");
            assert!(fast > 0.6 && fast < 0.99, "{fast}");

            // The ROC curve's trapezoids enclose the same area.
            let curve = roc_curve(&scores, &labels).unwrap();
            let area: f64 = curve
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
                .sum();
            assert!(close(area, brute), "{area} vs {brute}");
            let mut distinct = scores.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            assert_eq!(curve.len(), distinct.len() + 1);

            // AP: precision and recall at each distinct threshold, counted afresh.
            let mut ap = 0.0;
            let mut prev_recall = 0.0;
            for &t in distinct.iter().rev() {
                let c = confusion(&scores, &labels, t).unwrap();
                // `>= t` flags what `> t` does plus the samples scoring exactly t.
                let at: Vec<bool> = (0..n).filter(|&i| scores[i] == t).map(|i| labels[i]).collect();
                let tp = c.true_positives + at.iter().filter(|&&l| l).count();
                let flagged = c.true_positives + c.false_positives + at.len();
                let recall = tp as f64 / anomalies.len() as f64;
                ap += (recall - prev_recall) * tp as f64 / flagged as f64;
                prev_recall = recall;
            }
            let fast = average_precision(&scores, &labels).unwrap();
            assert!(close(fast, ap), "{fast} vs {ap}");
        }
    }
}
