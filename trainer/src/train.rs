//! The training loop: phases of epochs of shuffled batches, each batch split into one shard
//! per thread; validation on the test set after every epoch; the plateau scheduler; the
//! checkpoint, history and metrics of a run directory.

use crate::checkpoint::{self, CheckpointError};
pub use crate::epoch::EpochRecord;
use crate::figures;
use crate::layers::{kl, l1, lifetime_topk};
use crate::mnist::{Mnist, Split, PIXELS};
use crate::model::{Layer, Model};
use crate::noise::{self, Noise};
use crate::optim::adam::Adam;
use crate::optim::plateau::Plateau;
use crate::progress::Progress;
use crate::recipe::{self, Config, Penalty};
use crate::workspace::Workspace;
use ndarray::{s, Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File names inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.bin";
/// Per-epoch history, CSV.
pub const HISTORY: &str = "history.csv";
/// Final metrics, JSON.
pub const METRICS: &str = "metrics.json";
/// Directory of the PNG figures.
pub const FIGURES: &str = "figures";

/// Seed of the noise that corrupts the test images of denoising variants: the same for every
/// evaluation, run and seed, so figures and metrics are comparable.
pub const EVAL_NOISE_SEED: u64 = 0x7e57_0015e;
/// Rows of the codes figure.
pub const CODE_ROWS: usize = 512;
/// Test images in the examples figure.
pub const EXAMPLES: usize = 10;

/// The model on the test set.
pub struct TestReport {
    /// Mean squared error per element against the clean images.
    pub test_mse: f64,
    /// Fraction of codes that are zero (exactly; below 0.01 for sigmoid codes).
    pub zero_code_fraction: f64,
    /// Fraction of codes with magnitude below 0.01.
    pub near_zero_code_fraction: f64,
    /// Codes of the first [`CODE_ROWS`] test images.
    pub codes: Array2<f32>,
    /// The first [`EXAMPLES`] inputs as the network sees them.
    pub input: Array2<f32>,
    /// Their reconstructions.
    pub output: Array2<f32>,
    /// The clean images.
    pub target: Array2<f32>,
    /// Every test image's code when codes are 2-D (the latent map).
    pub map: Option<Array2<f32>>,
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A loss became NaN or infinite.
    #[error("training diverged: {what} is {value} in phase '{phase}', epoch {epoch}")]
    Diverged {
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
        /// Phase name.
        phase: String,
        /// Epoch within the phase, from 1.
        epoch: usize,
    },
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// Checkpoint trouble.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A figure could not be written.
    #[error(transparent)]
    Figure(#[from] figures::FigureError),
    /// The paper figure (PCA-30 beside the reconstructions) could not be made.
    #[error(transparent)]
    Paper(#[from] crate::studies::PaperError),
    /// Writing history or metrics failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Everything a run needs to continue exactly where it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// The run's knobs.
    pub config: Config,
    /// Model weights.
    pub model: Model,
    /// Current phase.
    pub phase: usize,
    /// Whether the current phase's start (untie, fresh optimiser) has happened.
    pub phase_started: bool,
    /// Epochs done in the current phase.
    pub epoch_in_phase: usize,
    /// Optimiser state.
    pub adam: Adam,
    /// Scheduler state.
    pub plateau: Plateau,
    /// Shuffling generator (ChaCha8, stream 1 of the seed).
    pub rng: ChaCha8Rng,
    /// Every epoch so far.
    pub history: Vec<EpochRecord>,
    /// Epochs run per phase.
    pub epochs_per_phase: Vec<usize>,
    /// Wall seconds spent so far, over all sessions of the run.
    pub elapsed_s: f64,
    /// All phases done.
    pub finished: bool,
}

impl State {
    /// A fresh run of `config`: the recipe's model from ChaCha8 stream 0 of the seed.
    pub fn new(config: Config) -> Result<State, TrainError> {
        let recipe = recipe::find(&config.variant).map_err(TrainError::Config)?;
        let model = (recipe.build)(&mut ChaCha8Rng::seed_from_u64(config.seed));
        State::with_model(config, model)
    }

    /// A fresh run of `config` on a model built by the caller: recipes' pieces composed anew.
    pub fn with_model(config: Config, model: Model) -> Result<State, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        model.widths().map_err(|e| TrainError::Config(format!("model: {e}")))?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(1);
        let adam = Adam::new(config.lr, model.params.iter().map(|p| p.value.dim()));
        Ok(State {
            plateau: Plateau::new(config.plateau),
            epochs_per_phase: vec![0; config.phases.len()],
            config,
            model,
            phase: 0,
            phase_started: false,
            epoch_in_phase: 0,
            adam,
            rng,
            history: Vec::new(),
            elapsed_s: 0.0,
            finished: false,
        })
    }
}

/// A run in memory: its state, its data and its threads' buffers.
pub struct Trainer {
    /// The state a checkpoint holds.
    pub state: State,
    data: Mnist,
    workers: Vec<Workspace>,
    pool: rayon::ThreadPool,
}

impl Trainer {
    /// Wraps `state` (fresh or loaded) with the data, cut to the configured limits.
    pub fn new(state: State, data: Mnist) -> Result<Trainer, TrainError> {
        state.config.validate().map_err(TrainError::Config)?;
        let mut data = data;
        if let Some(n) = state.config.train_limit {
            data.train = data.train.truncated(n);
        }
        if let Some(n) = state.config.test_limit {
            data.test = data.test.truncated(n);
        }
        if data.train.is_empty() || data.test.is_empty() {
            return Err(TrainError::Config("no training or test images".into()));
        }
        state
            .model
            .widths()
            .map_err(|e| TrainError::Config(format!("model: {e}")))?;
        if state.model.input != PIXELS {
            return Err(TrainError::Config(format!(
                "model takes {} inputs, images have {PIXELS}",
                state.model.input
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(state.config.threads)
            .build()
            .map_err(|e| TrainError::Config(format!("thread pool: {e}")))?;
        let mut t = Trainer {
            state,
            data,
            workers: Vec::new(),
            pool,
        };
        t.rebuild_workers();
        Ok(t)
    }

    fn rebuild_workers(&mut self) {
        let threads = self.state.config.threads;
        let shard = self.state.config.batch_size.div_ceil(threads);
        self.workers = (0..threads).map(|_| Workspace::new(&self.state.model, shard)).collect();
    }

    /// Training images in use.
    pub fn train_len(&self) -> usize {
        self.data.train.len()
    }

    /// Loads shard rows: image indices `idx`, which sit at positions `first..` of the epoch's
    /// order (their noise is keyed by epoch and position).
    fn load(w: &mut Workspace, data: &Split, idx: &[u32], noise: Option<(&Noise, u64, u64)>) {
        match noise {
            None => w.load(idx.iter().map(|&i| data.image(i as usize))),
            Some((noise, seed, first)) => w.load_noisy(
                idx.iter()
                    .enumerate()
                    .map(|(r, &i)| (data.image(i as usize), noise::rng(seed, first + r as u64))),
                noise,
            ),
        }
    }

    /// The loss (reconstruction MSE plus penalty) and, summed into the first workspace, the
    /// parameter gradients of the images `batch`, which start at position `position` of epoch
    /// `epoch` (the key of their noise).
    ///
    /// Shards run in parallel between the points where the batch must be seen whole: a
    /// lifetime top-k layer (its mask is chosen over all shards) and the KL penalty (ρ̂ is the
    /// mean over all shards).
    fn gradients(&mut self, batch: &[u32], epoch: u64, position: usize) -> f64 {
        let shard = batch.len().div_ceil(self.workers.len());
        let rows = batch.len();
        let active = batch.chunks(shard).len();
        let model = &self.state.model;
        let config = &self.state.config;
        let train = &self.data.train;
        let n_layers = model.layers.len();
        let coupled: Vec<usize> = (0..n_layers).filter(|&i| model.layers[i].couples_batch()).collect();
        let workers = &mut self.workers[..active];
        let pool = &self.pool;
        let key = |s: usize| (epoch << 32) | (position + s * shard) as u64;

        // Load and run up to the first layer that couples the batch.
        let stop = coupled.first().copied().unwrap_or(n_layers);
        pool.install(|| {
            workers
                .par_iter_mut()
                .zip(batch.par_chunks(shard))
                .enumerate()
                .for_each(|(s, (w, idx))| {
                    let noise = config.noise.as_ref().map(|n| (n, config.seed, key(s)));
                    Self::load(w, train, idx, noise);
                    w.zero_grads();
                    w.forward_range(model, 0..stop, true);
                })
        });
        for (c, &layer) in coupled.iter().enumerate() {
            let Layer::LifetimeTopK { fraction } = model.layers[layer] else {
                unreachable!("only lifetime top-k couples the batch")
            };
            let (inputs, mut masks): (Vec<_>, Vec<_>) = workers.iter_mut().map(|w| w.input_and_mask(layer)).unzip();
            lifetime_topk::select(
                &inputs,
                &mut masks,
                lifetime_topk::kept(fraction, config.batch_size, rows),
            );
            let next = coupled.get(c + 1).copied().unwrap_or(n_layers);
            pool.install(|| {
                workers
                    .par_iter_mut()
                    .for_each(|w| w.forward_range(model, layer..next, true))
            });
        }

        // Reconstruction loss; the KL penalty's column sums.
        let code_width = model.code_width();
        let kl = matches!(config.penalty, Some(Penalty::Kl { .. }));
        let parts: Vec<(f64, Vec<f64>)> = pool.install(|| {
            workers
                .par_iter_mut()
                .map(|w| {
                    let sse = w.reconstruction_loss(rows);
                    let mut sums = vec![0.0; if kl { code_width } else { 0 }];
                    if kl {
                        kl::column_sums(w.code_and_grad(model).0, &mut sums);
                    }
                    (sse, sums)
                })
                .collect()
        });
        let sse: f64 = parts.iter().map(|p| p.0).sum();
        let mut penalty = 0.0;
        let rho_hat = if let Some(Penalty::Kl { lambda, rho }) = config.penalty {
            let mut sums = vec![0.0; code_width];
            for (_, s) in &parts {
                for (a, b) in sums.iter_mut().zip(s) {
                    *a += b;
                }
            }
            let q = kl::rho_hat(&sums, rows);
            penalty = kl::penalty(&q, rho, lambda);
            q
        } else {
            Vec::new()
        };

        // Backward: decoder, the penalty's gradient on the codes, encoder.
        let code = model.code_after;
        let lowest = model.first_trainable_layer();
        let l1: Vec<f64> = pool.install(|| {
            workers
                .par_iter_mut()
                .map(|w| {
                    w.backward_range(model, code..n_layers);
                    let value = match config.penalty {
                        Some(Penalty::L1 { lambda }) => {
                            let (c, dc) = w.code_and_grad(model);
                            l1::forward_backward(c, dc, lambda, rows * code_width)
                        }
                        Some(Penalty::Kl { lambda, rho }) => {
                            kl::backward(w.code_and_grad(model).1, &rho_hat, rho, lambda, rows);
                            0.0
                        }
                        Some(Penalty::WeightDecay { .. }) | None => 0.0,
                    };
                    // Layers below the lowest trainable one need no backward pass at all.
                    w.backward_range(model, lowest.min(code)..code);
                    value
                })
                .collect()
        });
        penalty += l1.iter().sum::<f64>();

        // Sum the shards' gradients into the first, always in the same order.
        let (first, rest) = self.workers.split_at_mut(1);
        for w in &rest[..active - 1] {
            for (g, h) in first[0].grads.iter_mut().zip(&w.grads) {
                *g += h;
            }
        }
        if let Some(Penalty::WeightDecay { lambda }) = config.penalty {
            penalty += model.weight_decay(&mut first[0].grads, lambda);
        }
        sse / (rows * PIXELS) as f64 + penalty
    }

    /// One optimisation step: gradients of the batch, then Adam.
    fn step(&mut self, batch: &[u32], epoch: u64, position: usize) -> f64 {
        let loss = self.gradients(batch, epoch, position);
        let trainable: Vec<bool> = self.state.model.params.iter().map(|p| !p.frozen).collect();
        let mut params: Vec<&mut Array2<f32>> = self.state.model.params.iter_mut().map(|p| &mut p.value).collect();
        self.state.adam.step(&mut params, &self.workers[0].grads, &trainable);
        loss
    }

    /// The loss and parameter gradients of training images `batch` taken as the first batch of
    /// the first epoch, without updating anything: what a step would apply.
    pub fn batch_gradients(&mut self, batch: &[u32]) -> (f64, Vec<Array2<f32>>) {
        let loss = self.gradients(batch, 0, 0);
        (loss, self.workers[0].grads.clone())
    }

    /// One pass over the shuffled training set; returns the mean loss per sample.
    pub fn train_epoch(&mut self) -> Result<f64, TrainError> {
        let n = self.data.train.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut self.state.rng);
        let epoch = self.state.history.len() as u64;
        let bs = self.state.config.batch_size;
        let mut total = 0.0;
        for (b, batch) in order.chunks(bs).enumerate() {
            let loss = self.step(batch, epoch, b * bs);
            if !loss.is_finite() {
                return Err(self.diverged("training loss", loss));
            }
            total += loss * batch.len() as f64;
        }
        Ok(total / n as f64)
    }

    fn diverged(&self, what: &str, value: f64) -> TrainError {
        TrainError::Diverged {
            what: what.into(),
            value,
            phase: self
                .state
                .config
                .phases
                .get(self.state.phase)
                .map_or("?".into(), |p| p.name.clone()),
            epoch: self.state.epoch_in_phase + 1,
        }
    }

    /// Runs the test images through the model (lifetime sparsity off; denoising inputs
    /// corrupted with the fixed evaluation noise), calling `visit(first_index, workspace)` for
    /// every shard in order. Returns the mean squared error per element against the clean images.
    fn test_pass(&mut self, mut visit: impl FnMut(usize, &Workspace)) -> f64 {
        let n = self.data.test.len();
        let shard = self.workers[0].capacity();
        let chunk = shard * self.workers.len();
        let model = &self.state.model;
        let test = &self.data.test;
        let noise = self.state.config.noise;
        let mut sse = 0.0;
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let parts: Vec<f64> = self.pool.install(|| {
                self.workers
                    .par_iter_mut()
                    .enumerate()
                    .map(|(k, w)| {
                        let lo = (start + k * shard).min(end);
                        let hi = (lo + shard).min(end);
                        let idx: Vec<u32> = (lo as u32..hi as u32).collect();
                        Self::load(w, test, &idx, noise.as_ref().map(|n| (n, EVAL_NOISE_SEED, lo as u64)));
                        if hi == lo {
                            return 0.0;
                        }
                        w.forward(model, false);
                        crate::layers::mse::sum_squared_error(w.output(), w.target())
                    })
                    .collect()
            });
            sse += parts.iter().sum::<f64>();
            for (k, w) in self.workers.iter().enumerate() {
                if w.rows > 0 {
                    visit(start + k * shard, w);
                }
            }
        }
        sse / (n * PIXELS) as f64
    }

    /// Mean squared reconstruction error per element over the test images.
    pub fn evaluate(&mut self) -> f64 {
        self.test_pass(|_, _| {})
    }

    /// The test-set figures of the current model: MSE, code sparsity, and samples for figures.
    pub fn test_report(&mut self) -> TestReport {
        let code_layer = self.state.model.code_after - 1;
        let units = self.state.model.code_width();
        let zero_below = if self.state.model.sigmoid_codes() { 0.01 } else { 0.0 };
        let (mut zeros, mut near, mut total) = (0usize, 0usize, 0usize);
        let mut codes = Array2::zeros((0, units));
        let mut map = (units == 2).then(|| Array2::zeros((0, 2)));
        let mut examples = [
            Array2::zeros((0, PIXELS)),
            Array2::zeros((0, PIXELS)),
            Array2::zeros((0, PIXELS)),
        ];
        let test_mse = self.test_pass(|first, w| {
            let c = w.act(code_layer);
            zeros += c.iter().filter(|&&v| v.abs() <= zero_below).count();
            near += c.iter().filter(|&&v| v.abs() < 0.01).count();
            total += c.len();
            if let Some(map) = &mut map {
                map.append(Axis(0), c).expect("same width");
            }
            let want = CODE_ROWS.saturating_sub(codes.nrows()).min(c.nrows());
            if want > 0 {
                codes.append(Axis(0), c.slice(s![..want, ..])).expect("same width");
            }
            let want = EXAMPLES.saturating_sub(examples[0].nrows()).min(w.rows);
            if want > 0 && first < EXAMPLES {
                for (dst, src) in examples.iter_mut().zip([w.input(), w.output(), w.target()]) {
                    dst.append(Axis(0), src.slice(s![..want, ..])).expect("same width");
                }
            }
        });
        let [input, output, target] = examples;
        TestReport {
            test_mse,
            zero_code_fraction: zeros as f64 / total as f64,
            near_zero_code_fraction: near as f64 / total as f64,
            codes,
            input,
            output,
            target,
            map,
        }
    }

    /// Runs the next epoch, starting the next phase first when the current one is over.
    /// Returns `None` once every phase is done.
    pub fn next_epoch(&mut self, progress: &mut Progress) -> Result<Option<EpochRecord>, TrainError> {
        loop {
            let st = &mut self.state;
            let Some(spec) = st.config.phases.get(st.phase).cloned() else {
                st.finished = true;
                return Ok(None);
            };
            if !st.phase_started && spec.max_epochs == 0 {
                // A phase capped at 0 epochs is skipped whole: `--finetune-epochs 0` stays tied.
                st.phase += 1;
                continue;
            }
            if !st.phase_started {
                spec.start.apply(&mut st.model, st.config.seed, st.phase);
                st.adam = Adam::new(st.config.lr, st.model.params.iter().map(|p| p.value.dim()));
                st.plateau = Plateau::new(st.config.plateau);
                st.phase_started = true;
                st.epoch_in_phase = 0;
                self.rebuild_workers();
                progress.phase(&self.state.config.variant, &spec.name, spec.max_epochs, 0);
                continue;
            }
            if st.epoch_in_phase >= spec.max_epochs || st.adam.lr < st.config.stop_lr {
                st.phase += 1;
                st.phase_started = false;
                continue;
            }
            break;
        }
        let t0 = Instant::now();
        let lr = self.state.adam.lr;
        let train_loss = self.train_epoch()?;
        let val_mse = self.evaluate();
        if !val_mse.is_finite() {
            return Err(self.diverged("validation MSE", val_mse));
        }
        let st = &mut self.state;
        st.plateau.step(val_mse, &mut st.adam.lr);
        st.epoch_in_phase += 1;
        st.epochs_per_phase[st.phase] = st.epoch_in_phase;
        let record = EpochRecord {
            phase: st.config.phases[st.phase].name.clone(),
            epoch: st.epoch_in_phase,
            train_loss,
            val_mse,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        st.history.push(record.clone());
        Ok(Some(record))
    }

    /// Trains to the end, checkpointing after every epoch into `dir` when given, and writes the
    /// metrics. Returns the metrics.
    pub fn run(&mut self, dir: Option<&Path>, progress: &mut Progress) -> Result<Metrics, TrainError> {
        let mut since = Instant::now();
        if self.state.phase_started && !self.state.finished {
            let spec = &self.state.config.phases[self.state.phase];
            progress.phase(
                &self.state.config.variant,
                &spec.name,
                spec.max_epochs,
                self.state.epoch_in_phase,
            );
        }
        while let Some(record) = self.next_epoch(progress)? {
            let max = self.state.config.phases[self.state.phase].max_epochs;
            progress.epoch(&self.state.config.variant, &record, max);
            self.state.elapsed_s += since.elapsed().as_secs_f64();
            since = Instant::now();
            if let Some(dir) = dir {
                self.save(dir)?;
            }
        }
        progress.finish();
        self.state.elapsed_s += since.elapsed().as_secs_f64();
        let report = self.test_report();
        let metrics = self.metrics(&report);
        if let Some(dir) = dir {
            self.save(dir)?;
            self.write_figures(&dir.join(FIGURES), &report)?;
            let path = dir.join(METRICS);
            checkpoint::write_json(&path, &metrics).map_err(|source| TrainError::Io { path, source })?;
        }
        Ok(metrics)
    }

    /// The tutorial's figures of this run: examples, codes, dictionary, curves.
    pub fn write_figures(&self, dir: &Path, report: &TestReport) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let variant = &self.state.config.variant;
        let mut rows = vec![("input", report.input.view()), ("reconstruction", report.output.view())];
        if self.state.config.noise.is_some() {
            rows[0].0 = "noisy input";
            rows.push(("clean target", report.target.view()));
        }
        figures::examples(&dir.join("examples.png"), &rows)?;
        // Sigmoid codes are never exactly 0: draw those the metric counts as zero (below 0.01)
        // white, so the figure shows the sparsity the metric reports.
        let (codes, zero) = if self.state.model.sigmoid_codes() {
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
        if self.state.model.code_width() == crate::studies::PAPER_CODE {
            crate::studies::paper_figure(variant, report, &self.data, dir)?;
        }
        if let Some(map) = &report.map {
            crate::studies::separation_map(
                &dir.join("map.png"),
                &format!("{variant}: 2-D codes of the test set"),
                map.view(),
                &self.data.test.labels,
            )?;
        }
        figures::dictionary(
            &dir.join("dictionary.png"),
            &format!("{variant}: the image each code unit writes (decoder columns)"),
            self.state.model.dictionary().view(),
        )?;
        figures::curves(
            &dir.join("curves.png"),
            &format!("{variant}: loss and learning rate"),
            &self.state.history,
        )?;
        Ok(())
    }

    /// Writes the checkpoint and the history into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        checkpoint::save(&dir.join(CHECKPOINT), &self.state)?;
        let path = dir.join(HISTORY);
        checkpoint::write_atomic(&path, history_csv(&self.state.history).as_bytes())
            .map_err(|source| TrainError::Io { path, source })
    }

    /// The run's metrics as they stand, with the test figures of `report`.
    pub fn metrics(&self, report: &TestReport) -> Metrics {
        let st = &self.state;
        Metrics {
            variant: st.config.variant.clone(),
            finished: st.finished,
            seed: st.config.seed,
            threads: st.config.threads,
            batch_size: st.config.batch_size,
            train_samples: self.data.train.len(),
            test_samples: self.data.test.len(),
            epochs: st
                .config
                .phases
                .iter()
                .zip(&st.epochs_per_phase)
                .map(|(p, &n)| (p.name.clone(), n.into()))
                .collect(),
            wall_seconds: st.elapsed_s,
            test_mse: report.test_mse,
            code_units: report.codes.ncols(),
            zero_code_fraction: report.zero_code_fraction,
            near_zero_code_fraction: report.near_zero_code_fraction,
            backend: crate::matmul::backend_name().to_string(),
        }
    }
}

/// What `metrics.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Recipe name.
    pub variant: String,
    /// Whether every phase ran to its end.
    pub finished: bool,
    /// Seed.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Training images used.
    pub train_samples: usize,
    /// Test images used.
    pub test_samples: usize,
    /// Epochs run per phase, in phase order.
    pub epochs: serde_json::Map<String, serde_json::Value>,
    /// Wall seconds of the whole run, over all sessions.
    pub wall_seconds: f64,
    /// Final test-set MSE against the clean images (denoising: from the noisy inputs).
    pub test_mse: f64,
    /// Code units (K).
    pub code_units: usize,
    /// Fraction of test-set codes that are zero: exactly, or below 0.01 for sigmoid codes.
    pub zero_code_fraction: f64,
    /// Fraction of test-set codes with magnitude below 0.01.
    pub near_zero_code_fraction: f64,
    /// Matrix-product backend.
    pub backend: String,
}

/// `phase,epoch,train_loss,val_mse,lr,seconds`, one row per epoch.
pub fn history_csv(history: &[EpochRecord]) -> String {
    let mut s = String::from("phase,epoch,train_loss,val_mse,lr,seconds\n");
    for r in history {
        s += &format!(
            "{},{},{:e},{:e},{:e},{:.4}\n",
            r.phase, r.epoch, r.train_loss, r.val_mse, r.lr, r.seconds
        );
    }
    s
}
