//! A recipe's run into its directory: the training loop to the end (checkpoint and history
//! after every epoch), then the figures of the final model, then `metrics.json`, the mark of a
//! finished run.

use super::run_figures::{self, FiguresError};
use crate::train::{Metrics, Observer, TrainError, Trainer, FIGURES};
use std::path::Path;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Training failed (divergence, bad configuration, checkpoint trouble).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The figures could not be drawn.
    #[error(transparent)]
    Figures(#[from] FiguresError),
}

/// Trains `trainer` to the end into `dir`, telling `observer` as it goes; draws the figures into
/// `dir/figures` and writes `metrics.json`. Returns the metrics.
pub fn run(trainer: &mut Trainer, dir: &Path, observer: &mut dyn Observer) -> Result<Metrics, RunError> {
    trainer.train(Some(dir), observer)?;
    let report = trainer.test_report();
    let metrics = trainer.metrics(&report);
    run_figures::write(trainer, &dir.join(FIGURES), &report)?;
    trainer.write_metrics(dir, &metrics)?;
    Ok(metrics)
}
