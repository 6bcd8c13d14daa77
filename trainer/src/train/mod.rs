//! The training loop: phases of epochs of shuffled batches, each batch split into one shard
//! per thread; validation on the test set after every epoch; the plateau scheduler; the
//! checkpoint, history and metrics of a run directory. One concern a room:
//!
//! - [`state`]: what a checkpoint holds ([`State`]);
//! - [`step`]: one batch's loss and gradients over the shards, then Adam; an epoch of batches;
//! - [`device`]: epochs on a GPU ([`crate::gpu`]) instead of the shards;
//! - [`frozen`]: a greedy stage's frozen bottom layers, run once per phase ([`FrozenPrefix`]);
//! - [`eval`]: the test-set pass, its MSE and the samples the figures draw ([`TestReport`]);
//! - [`phases`]: the phase machine (phase starts, epoch caps, the stop rate) and the loop to the
//!   end, which reports to an [`Observer`];
//! - [`run_dir`]: the files of a run directory: checkpoint, history and `metrics.json`
//!   ([`Metrics`]);
//! - [`history`]: the history as CSV.
//!
//! The loop draws no figure and knows no experiment: those sit above it and read its
//! [`TestReport`].

pub mod device;
pub mod eval;
pub mod frozen;
pub mod history;
pub mod phases;
pub mod run_dir;
pub mod state;
pub mod step;

pub use crate::epoch::{EpochRecord, Observer};
pub use eval::{TestReport, CODE_ROWS, EVAL_NOISE_SEED, EXAMPLES};
pub use frozen::FrozenPrefix;
pub use history::history_csv;
pub use run_dir::{lock, LockError, Metrics, RunLock, CHECKPOINT, FIGURES, HISTORY, LOCK, METRICS};
pub use state::State;

use crate::checkpoint::CheckpointError;
use crate::data::{Dataset, Samples};
use crate::noise::{self, Noise};
use crate::workspace::Workspace;
use std::path::PathBuf;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A loss or a gradient became NaN or infinite.
    #[error("{variant}: training diverged: {what} is {value} in phase '{phase}', epoch {epoch}")]
    Diverged {
        /// The run's variant (or spec) name.
        variant: String,
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
        /// Phase name.
        phase: String,
        /// Epoch within the phase, from 1.
        epoch: usize,
    },
    /// Ctrl-C stopped the run (see [`crate::interrupt`]).
    #[error("{variant}: interrupted in phase '{phase}' after {epochs_done} finished epochs")]
    Interrupted {
        /// The run's variant (or spec) name.
        variant: String,
        /// Phase name.
        phase: String,
        /// Epochs finished in the phase.
        epochs_done: usize,
    },
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The device cannot train (see [`crate::gpu::DeviceError`]).
    #[error(transparent)]
    Device(#[from] crate::gpu::DeviceError),
    /// Checkpoint trouble.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing history or metrics failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A run in memory: its state, its data and its threads' buffers.
pub struct Trainer {
    /// The state a checkpoint holds.
    pub state: State,
    data: Dataset,
    /// The training samples, scaled: what the network sees.
    train: Samples,
    /// The validation samples, scaled.
    test: Samples,
    workers: Vec<Workspace>,
    /// The trainer's threads, one per shard; shared with an epoch that runs on one of them.
    pool: std::sync::Arc<rayon::ThreadPool>,
    /// The device the steps run on, when not the CPU.
    device: Option<crate::gpu::Session>,
    /// The frozen bottom layers' output for every training sample (see [`frozen`]): `None`
    /// until the phase's first step decides, then `Some(None)` when there is nothing to keep.
    frozen: Option<Option<FrozenPrefix>>,
    /// The same layers' output for every validation sample, made with the training samples'
    /// rows: each epoch's validation starts above them too.
    frozen_test: Option<FrozenPrefix>,
    /// Whether steps may start above the frozen bottom layers.
    skip_frozen: bool,
}

impl Trainer {
    /// Wraps `state` (fresh or loaded) with the data, cut to the configured limits and scaled
    /// by its scaling. A state that records no data yet records this data's.
    pub fn new(state: State, data: impl Into<Dataset>) -> Result<Trainer, TrainError> {
        let mut state = state;
        state.config.validate().map_err(TrainError::Config)?;
        let mut data = data.into();
        if let Some(n) = state.config.train_limit {
            data.train = data.train.truncated(n);
        }
        if let Some(n) = state.config.test_limit {
            data.test = data.test.truncated(n);
        }
        if data.train.is_empty() || data.test.is_empty() {
            return Err(TrainError::Config("no training or test samples".into()));
        }
        state
            .model
            .widths()
            .map_err(|e| TrainError::Config(format!("model: {e}")))?;
        if state.model.input != data.train.features() {
            return Err(TrainError::Config(format!(
                "model takes {} inputs, the samples have {} (shape {:?})",
                state.model.input,
                data.train.features(),
                data.train.shape()
            )));
        }
        if state.config.input_shape != data.train.shape() {
            return Err(TrainError::Config(format!(
                "the run's input shape is {:?}, the samples' {:?}",
                state.config.input_shape,
                data.train.shape()
            )));
        }
        if state.config.data.is_none() {
            state.config.data = Some(data.record.clone());
        }
        let (train, test) = data
            .scaled()
            .map_err(|e| TrainError::Config(format!("scaling the data: {e}")))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(state.config.threads)
            .build()
            .map_err(|e| TrainError::Config(format!("thread pool: {e}")))?;
        let pool = std::sync::Arc::new(pool);
        let mut t = Trainer {
            state,
            data,
            train,
            test,
            workers: Vec::new(),
            pool,
            device: None,
            frozen: None,
            frozen_test: None,
            skip_frozen: true,
        };
        t.rebuild_workers();
        Ok(t)
    }

    fn rebuild_workers(&mut self) {
        let threads = self.state.config.threads;
        let shard = self.state.config.batch_size.div_ceil(threads);
        self.workers = (0..threads).map(|_| Workspace::new(&self.state.model, shard)).collect();
        self.frozen = None;
        self.frozen_test = None;
        // A new phase changed the model: the device takes it anew at the next epoch.
        if let Some(device) = &mut self.device {
            device.invalidate();
        }
    }

    /// Whether a step may start above the frozen layers at the bottom of a greedy stage, from
    /// their output kept for every training sample (on unless turned off; see [`frozen`]). The
    /// weights come out the same either way; off, every step runs those layers again.
    pub fn skip_frozen_layers(&mut self, on: bool) {
        self.skip_frozen = on;
        self.frozen = None;
        self.frozen_test = None;
    }

    /// How many layers from the bottom this phase's steps start above (0: they run them all).
    pub fn skipped_layers(&self) -> usize {
        self.frozen.as_ref().and_then(Option::as_ref).map_or(0, |f| f.layers)
    }

    /// Decides, once a phase, whether its steps start above kept rows of the frozen layers, and
    /// makes them if so.
    fn prepare_frozen(&mut self) {
        if self.frozen.is_some() {
            return;
        }
        let layers = frozen::skippable_layers(&self.state.model, &self.state.config).filter(|_| self.skip_frozen);
        let (model, workers, pool) = (&self.state.model, &mut self.workers, &self.pool);
        self.frozen = Some(layers.and_then(|layers| FrozenPrefix::compute(model, &self.train, layers, workers, pool)));
        self.frozen_test = self
            .frozen
            .as_ref()
            .and_then(Option::as_ref)
            .and_then(|f| FrozenPrefix::compute(model, &self.test, f.layers, workers, pool));
    }

    /// Training samples in use.
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// The data the run trains and validates on, as read (not scaled), cut to its limits.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The training samples as the network sees them (scaled), cut to the run's limit.
    pub fn train_samples(&self) -> &Samples {
        &self.train
    }

    /// The validation samples as the network sees them (scaled), cut to the run's limit.
    pub fn test_samples(&self) -> &Samples {
        &self.test
    }

    /// Loads shard rows: sample indices `idx`, which sit at positions `first..` of the epoch's
    /// order (their noise is keyed by epoch and position).
    fn load(w: &mut Workspace, data: &Samples, idx: &[u32], noise: Option<(&Noise, u64, u64)>) {
        match noise {
            None => w.load(idx.iter().map(|&i| data.row(i as usize))),
            Some((noise, seed, first)) => w.load_noisy(
                idx.iter()
                    .enumerate()
                    .map(|(r, &i)| (data.row(i as usize), noise::rng(seed, first + r as u64))),
                noise,
            ),
        }
    }
}
