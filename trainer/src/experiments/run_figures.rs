//! The figures of a recipe's run, drawn from its [`TestReport`] above the training loop: the
//! examples, the codes, the 2-D map with how well it separates the digits, the paper's grid
//! beside PCA-30, the dictionary and the curves. The PCA baseline draws its map here too.

use crate::figures;
use crate::mnist::SIDE;
use crate::pca::Pca;
use crate::train::{TestReport, Trainer};
use ndarray::ArrayView2;
use std::path::Path;

/// Why a run's figures could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    /// The figures' directory could not be made.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A figure could not be written.
    #[error(transparent)]
    Figure(#[from] figures::FigureError),
    /// The paper figure (PCA-30 beside the reconstructions) could not be made.
    #[error(transparent)]
    Paper(#[from] PaperError),
}

/// The tutorial's figures of `trainer`'s run into `dir`: examples, codes, dictionary, curves,
/// and the map of 2-D codes or the paper's grid for 30-unit codes. The figures that draw samples
/// as images (examples, dictionary, the paper's grid) need 28x28 samples; other data gets the
/// codes, the curves and the map.
pub fn write(trainer: &Trainer, dir: &Path, report: &TestReport) -> Result<(), FiguresError> {
    std::fs::create_dir_all(dir).map_err(|source| FiguresError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let state = &trainer.state;
    let variant = &state.config.variant;
    let images = trainer.data().train.shape() == [SIDE, SIDE];
    if images {
        let mut rows = vec![("input", report.input.view()), ("reconstruction", report.output.view())];
        if state.config.noise.is_some() {
            rows[0].0 = "noisy input";
            rows.push(("clean target", report.target.view()));
        }
        figures::examples(&dir.join("examples.png"), &rows)?;
    }
    // Sigmoid codes are never exactly 0: draw those the metric counts as zero (below 0.01)
    // white, so the figure shows the sparsity the metric reports.
    let (codes, zero) = if state.model.sigmoid_codes() {
        (
            report.codes.mapv(|v| if v.abs() < 0.01 { 0.0 } else { v }),
            "below 0.01, drawn as 0",
        )
    } else {
        (report.codes.clone(), "zero")
    };
    figures::codes(
        &dir.join("codes.png"),
        &format!(
            "{variant}: codes of {} test images, {:.1} % {zero}",
            codes.nrows(),
            100.0 * report.zero_code_fraction
        ),
        codes.view(),
    )?;
    if images && state.model.code_width() == PAPER_CODE {
        let train = trainer.train_samples();
        let train = ArrayView2::from_shape((train.len(), train.features()), train.values())
            .expect("samples are rows of their features");
        paper_figure(variant, report, train, dir)?;
    }
    if let Some(map) = &report.map {
        // Labels colour the map (small non-negative integers, as digits); without them, one colour.
        let labels: Vec<u8> = match trainer.test_samples().labels() {
            Some(labels) => labels.iter().map(|&l| l.clamp(0, 255) as u8).collect(),
            None => vec![0; map.nrows()],
        };
        separation_map(
            &dir.join("map.png"),
            &format!("{variant}: 2-D codes of the test set"),
            map.view(),
            &labels,
        )?;
    }
    if images {
        figures::dictionary(
            &dir.join("dictionary.png"),
            &format!("{variant}: the image each code unit writes (decoder columns)"),
            state.model.dictionary().view(),
        )?;
    }
    figures::curves(
        &dir.join("curves.png"),
        &format!("{variant}: loss and learning rate"),
        &state.history,
    )?;
    Ok(())
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

/// Code width of Hinton & Salakhutdinov's MNIST net, whose runs get [`paper_figure`].
pub const PAPER_CODE: usize = 30;

/// Hinton & Salakhutdinov's Fig. 2 layout: test images, the autoencoder's reconstructions and
/// PCA-30's, in one grid (`paper.png`), from a run's test report.
// train: (N, 784), scaled
pub fn paper_figure(
    variant: &str,
    report: &TestReport,
    train: ArrayView2<f32>,
    figures_dir: &Path,
) -> Result<(), PaperError> {
    let pca = Pca::fit(train, PAPER_CODE)?;
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
    use ndarray::Array2;

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
