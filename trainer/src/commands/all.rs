//! `trainer` with no command: every experiment into `runs/<name>` (finished runs are kept and
//! reported, interrupted ones continue), then one summary table, also written to
//! `runs/summary.md`.

use super::train::{self, TrainArgs};
use super::{load_data, DataArgs};
use crate::experiments::Experiment;
use crate::gpu::Device;
use crate::recipe::RECIPES;
use crate::summary;
use anyhow::{Context, Result};
use std::path::Path;

/// Trains every recipe, fits the PCA baseline, runs the semi-supervised study, and prints and
/// writes the summary.
/// Training steps run on `device`.
pub fn run(device: Device) -> Result<()> {
    let t0 = std::time::Instant::now();
    let mut rows = Vec::new();
    for r in RECIPES {
        let args = TrainArgs {
            device,
            ..TrainArgs::plain(r.name)
        };
        let metrics = train::run(args)?.with_context(|| format!("{}: no metrics", r.name))?;
        rows.push(summary::Row::from_metrics(&metrics));
    }
    let data = load_data(&DataArgs::default())?;
    let pca = train::pca(&data, &Path::new("runs").join(Experiment::Pca.name()))?;
    let semisup = train::semisup(&data, &Path::new("runs").join(Experiment::Semisup.name()), 0, device)?;
    let table = summary::markdown(&rows, &pca, &semisup, t0.elapsed().as_secs_f64());
    println!("\n{table}");
    let path = Path::new("runs/summary.md");
    crate::checkpoint::write_atomic(path, table.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
