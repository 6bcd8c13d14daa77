//! One epoch's record: what the training loop reports and the history, the progress display and
//! the figures read. It sits below all of them, so none of them imports another for it.

use serde::{Deserialize, Serialize};

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Phase name.
    pub phase: String,
    /// Epoch within the phase, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Test-set MSE after the epoch.
    pub val_mse: f64,
    /// Learning rate the epoch trained with.
    pub lr: f64,
    /// Wall seconds of the epoch, validation included.
    pub seconds: f64,
}

/// What the training loop tells whoever watches it: a phase begins, an epoch ends, the run
/// stops. The loop knows nothing else of its watcher (a progress bar, a log, a test's counter),
/// and the watchers know nothing of the loop.
pub trait Observer {
    /// Phase `phase` of `variant` begins (or resumes with `done` of at most `max_epochs`
    /// epochs behind it).
    fn phase(&mut self, variant: &str, phase: &str, max_epochs: usize, done: usize);
    /// An epoch of a phase of at most `max_epochs` epochs ended with `record`.
    fn epoch(&mut self, variant: &str, record: &EpochRecord, max_epochs: usize);
    /// Training stopped: every phase is done.
    fn finish(&mut self);
}
