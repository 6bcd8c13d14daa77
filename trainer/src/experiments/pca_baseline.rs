//! The PCA baseline every autoencoder is held against: PCA with 2, 30 and 64 components, fit on
//! the training images, scored on the test images; `metrics.json` and figures in a run
//! directory, like a recipe's.

use super::run_figures::separation_map;
use crate::checkpoint::write_json;
use crate::figures;
use crate::mnist::Mnist;
use crate::pca::{pixels, Pca};
use crate::train::{FIGURES, METRICS};
use anyhow::{Context, Result};
use ndarray::{s, Array2};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Components of the PCA baselines.
pub const PCA_COMPONENTS: [usize; 3] = [2, 30, 64];

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
