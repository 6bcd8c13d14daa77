//! The runs that are not one autoencoder recipe: the PCA baseline and the semi-supervised
//! study. Each writes `metrics.json` and its figures into a run directory, like a recipe.

use crate::checkpoint::write_json;
use crate::figures;
use crate::mnist::{Mnist, Split, PIXELS};
use crate::model::Model;
use crate::pca::Pca;
use crate::semisup::{self, Score, SemisupConfig, Start};
use crate::train::{TestReport, FIGURES, METRICS};
use anyhow::{Context, Result};
use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Components of the PCA baselines.
pub const PCA_COMPONENTS: [usize; 3] = [2, 30, 64];

/// The images of a split as rows of pixels in [0, 1].
// -> (N, D)
pub fn pixels(split: &Split) -> Array2<f32> {
    Array2::from_shape_fn((split.len(), PIXELS), |(i, j)| {
        split.images[i * PIXELS + j] as f32 / 255.0
    })
}

/// Neighbours of [`knn_accuracy`] on the 2-D maps.
pub const MAP_NEIGHBOURS: usize = 5;

/// How well a map separates the classes: the fraction of points whose label is the majority
/// label of their `k` nearest other points (Euclidean; leave-one-out, ties in the vote to the
/// smaller label, ties in distance to the lower index). 1.0 for classes far apart, about the
/// largest class's share for a map that mixes them.
// points: (N, D)
pub fn knn_accuracy(points: ArrayView2<f32>, labels: &[u8], k: usize) -> f64 {
    use rayon::prelude::*;
    let n = points.nrows().min(labels.len());
    if n < 2 || k == 0 {
        return 0.0;
    }
    let correct: usize = (0..n)
        .into_par_iter()
        .filter(|&i| {
            // The k nearest so far, as (squared distance, index), sorted.
            let mut nearest: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
            let p = points.row(i);
            for j in (0..n).filter(|&j| j != i) {
                let d: f32 = p.iter().zip(points.row(j)).map(|(a, b)| (a - b) * (a - b)).sum();
                if nearest.len() == k && d >= nearest[k - 1].0 {
                    continue;
                }
                let at = nearest.partition_point(|&(e, _)| e <= d);
                nearest.insert(at, (d, j));
                nearest.truncate(k);
            }
            let mut votes = [0usize; 256];
            for &(_, j) in &nearest {
                votes[usize::from(labels[j])] += 1;
            }
            let best = (0..256).max_by_key(|&l| (votes[l], std::cmp::Reverse(l))).unwrap_or(0);
            best == usize::from(labels[i])
        })
        .count();
    correct as f64 / n as f64
}

/// Draws the 2-D `map` of the test images coloured by `labels` into `path`, its title `title`
/// followed by how well it separates the digits ([`knn_accuracy`] with [`MAP_NEIGHBOURS`]),
/// which it returns.
// map: (N, 2)
pub fn separation_map(
    path: &Path,
    title: &str,
    map: ArrayView2<f32>,
    labels: &[u8],
) -> Result<f64, figures::FigureError> {
    let separation = knn_accuracy(map, labels, MAP_NEIGHBOURS);
    let title = format!("{title} ({MAP_NEIGHBOURS}-NN accuracy {:.1} %)", 100.0 * separation);
    figures::latent_map(path, &title, map, labels)?;
    Ok(separation)
}

/// One PCA baseline on the test set.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PcaScore {
    /// Components.
    pub components: usize,
    /// Mean squared error per pixel.
    pub test_mse: f64,
    /// Squared error per image (sum over the 784 pixels).
    pub per_image_squared_error: f64,
}

#[derive(Serialize)]
struct PcaMetrics<'a> {
    variant: &'static str,
    train_samples: usize,
    test_samples: usize,
    wall_seconds: f64,
    baselines: &'a [PcaScore],
}

/// Fits PCA with 2, 30 and 64 components on the training images and scores them on the test
/// images; writes the 2-D map of the test set and reconstructions.
pub fn run_pca(data: &Mnist, dir: &Path) -> Result<Vec<PcaScore>> {
    let t0 = Instant::now();
    let train = pixels(&data.train);
    let test = pixels(&data.test);
    let fits = Pca::fit_many(train.view(), &PCA_COMPONENTS)?;
    let scores: Vec<PcaScore> = fits
        .iter()
        .map(|p| PcaScore {
            components: p.k(),
            test_mse: p.mse(test.view()),
            per_image_squared_error: p.per_image_squared_error(test.view()),
        })
        .collect();
    let figs = dir.join(FIGURES);
    std::fs::create_dir_all(&figs).with_context(|| format!("creating {}", figs.display()))?;
    let map = fits[0].transform(test.view());
    separation_map(
        &figs.join("map.png"),
        "pca: the test set's first two principal components",
        map.view(),
        &data.test.labels,
    )?;
    let shown = test.slice(s![..10, ..]);
    let recon: Vec<Array2<f32>> = fits.iter().map(|p| p.reconstruct(p.transform(shown).view())).collect();
    let labels: Vec<String> = fits.iter().map(|p| format!("PCA-{}", p.k())).collect();
    let mut rows = vec![("input", shown)];
    rows.extend(labels.iter().map(String::as_str).zip(recon.iter().map(|r| r.view())));
    figures::examples(&figs.join("examples.png"), &rows)?;
    let metrics = PcaMetrics {
        variant: "pca",
        train_samples: data.train.len(),
        test_samples: data.test.len(),
        wall_seconds: t0.elapsed().as_secs_f64(),
        baselines: &scores,
    };
    let path = dir.join(METRICS);
    write_json(&path, &metrics).with_context(|| format!("writing {}", path.display()))?;
    Ok(scores)
}

#[derive(Serialize)]
struct SemisupMetrics<'a> {
    variant: &'static str,
    config: &'a SemisupConfig,
    wall_seconds: f64,
    scores: &'a [Score],
}

/// The semi-supervised study from `autoencoder`'s encoder; writes the accuracy figure.
pub fn run_semisup(
    autoencoder: &Model,
    data: &Mnist,
    config: &SemisupConfig,
    dir: &Path,
    report: impl FnMut(&Score),
) -> Result<Vec<Score>> {
    let t0 = Instant::now();
    let scores = semisup::run(autoencoder, data, config, report);
    let figs = dir.join(FIGURES);
    std::fs::create_dir_all(&figs).with_context(|| format!("creating {}", figs.display()))?;
    let series: Vec<(&str, Vec<(usize, f64)>)> = Start::ALL
        .iter()
        .map(|&start| {
            let points = scores
                .iter()
                .filter(|s| s.start == start)
                .map(|s| (s.labels, s.test_accuracy))
                .collect();
            (start.label(), points)
        })
        .collect();
    figures::accuracy_vs_labels(
        &figs.join("accuracy.png"),
        "semisup: test accuracy of a 64-10 softmax head on the fc encoder",
        &series,
    )?;
    let metrics = SemisupMetrics {
        variant: "semisup",
        config,
        wall_seconds: t0.elapsed().as_secs_f64(),
        scores: &scores,
    };
    let path = dir.join(METRICS);
    write_json(&path, &metrics).with_context(|| format!("writing {}", path.display()))?;
    Ok(scores)
}

/// Code width of Hinton & Salakhutdinov's MNIST net, whose runs get [`paper_figure`].
pub const PAPER_CODE: usize = 30;

/// Hinton & Salakhutdinov's Fig. 2 layout: test images, the autoencoder's reconstructions and
/// PCA-30's, in one grid (`paper.png`), from a run's test report.
pub fn paper_figure(variant: &str, report: &TestReport, data: &Mnist, figures_dir: &Path) -> Result<(), PaperError> {
    let pca = Pca::fit(pixels(&data.train).view(), PAPER_CODE)?;
    let pca_recon = pca.reconstruct(pca.transform(report.target.view()).view());
    let name = format!("{variant} reconstruction");
    figures::examples(
        &figures_dir.join("paper.png"),
        &[
            ("test image", report.target.view()),
            (name.as_str(), report.output.view()),
            ("PCA-30", pca_recon.view()),
        ],
    )?;
    Ok(())
}

/// Why the paper figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    /// The PCA-30 fit failed.
    #[error(transparent)]
    Pca(#[from] crate::pca::PcaError),
    /// Drawing failed.
    #[error(transparent)]
    Figure(#[from] figures::FigureError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_accuracy_is_one_for_separate_clusters_and_counts_the_mixed_points() {
        // Two tight clusters far apart: every point's neighbours share its label.
        let mut points = Array2::zeros((40, 2));
        let mut labels = vec![0u8; 40];
        for i in 0..40 {
            let (cx, label) = if i < 20 { (0.0, 3) } else { (100.0, 7) };
            points[[i, 0]] = cx + (i % 5) as f32 * 0.1;
            points[[i, 1]] = (i % 4) as f32 * 0.1;
            labels[i] = label;
        }
        assert_eq!(knn_accuracy(points.view(), &labels, 5), 1.0);
        // One point of label 7 placed inside the label-3 cluster is the only one misclassified
        // (its neighbours are all 3s; the 3s around it still outvote it).
        points[[20, 0]] = 0.05;
        assert_eq!(knn_accuracy(points.view(), &labels, 5), 39.0 / 40.0);
        // Leave-one-out: with k = 1 a point is never its own neighbour. Alternating labels on
        // a line: each point's nearest other point has the other label.
        let line = Array2::from_shape_fn((10, 1), |(i, _)| i as f32);
        let alternating: Vec<u8> = (0..10).map(|i| (i % 2) as u8).collect();
        assert_eq!(knn_accuracy(line.view(), &alternating, 1), 0.0);
    }
}
