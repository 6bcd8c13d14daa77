//! The semi-supervised study: a softmax head on an autoencoder's encoder trained with few
//! labels ([`crate::semisup`]); `metrics.json` and the accuracy figure in a run directory.

use crate::checkpoint::write_json;
use crate::figures;
use crate::gpu::Session;
use crate::mnist::Mnist;
use crate::model::Model;
use crate::semisup::{self, Score, SemisupConfig, Start};
use crate::train::{FIGURES, METRICS};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Serialize)]
struct SemisupMetrics<'a> {
    variant: &'static str,
    config: &'a SemisupConfig,
    wall_seconds: f64,
    scores: &'a [Score],
}

/// The semi-supervised study from `autoencoder`'s encoder, its classifiers trained on `device`
/// when given; writes the accuracy figure.
pub fn run_semisup(
    autoencoder: &Model,
    data: &Mnist,
    config: &SemisupConfig,
    dir: &Path,
    device: Option<&mut Session>,
    report: impl FnMut(&Score),
) -> Result<Vec<Score>> {
    let t0 = Instant::now();
    let scores = semisup::run(autoencoder, data, config, device, report)?;
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
