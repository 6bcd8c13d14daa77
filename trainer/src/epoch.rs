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
