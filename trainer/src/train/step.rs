//! One optimisation step: a batch's loss and gradients, computed in one shard per thread and
//! summed in a fixed order, then Adam; and an epoch of such steps over the shuffled images.

use super::{TrainError, Trainer};
use crate::layers::whole_batch::{column_sums, BatchMask, CodePenalty};
use crate::recipe::Penalty;
use crate::workspace::Workspace;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rayon::prelude::*;

impl Trainer {
    /// The loss (reconstruction MSE plus any code penalty and weight decay) and, summed into the
    /// first workspace, the parameter gradients of the images `batch`, which start at position
    /// `position` of epoch `epoch` (the key of their noise).
    ///
    /// Shards run in parallel between the points where the batch must be seen whole: a layer
    /// whose mask is chosen over all shards ([`BatchMask`]) and a code penalty that needs the
    /// column sums of the whole batch's codes ([`CodePenalty`]).
    fn gradients(&mut self, batch: &[u32], epoch: u64, position: usize) -> f64 {
        let shard = batch.len().div_ceil(self.workers.len());
        let rows = batch.len();
        let active = batch.chunks(shard).len();
        let model = &self.state.model;
        let config = &self.state.config;
        let train = &self.train;
        let n_layers = model.layers.len();
        let coupled: Vec<(usize, Box<dyn BatchMask>)> = (0..n_layers)
            .filter_map(|i| model.layers[i].batch_mask().map(|m| (i, m)))
            .collect();
        let penalty_term = config.penalty.map(Penalty::code_penalty);
        let penalty_term: Option<&dyn CodePenalty> = penalty_term.as_deref();
        let workers = &mut self.workers[..active];
        let pool = &self.pool;
        let frozen = self.frozen.as_ref().and_then(Option::as_ref);
        let key = |s: usize| crate::noise::key(epoch, position + s * shard);
        let written = model.gradients_written();
        // Shard `s`: load its images `idx`, clear its gradients, run layers `0..stop` (from
        // above the frozen bottom layers when their output is kept).
        let start = |s: usize, w: &mut Workspace, idx: &[u32], stop: usize| {
            let noise = config.noise.as_ref().map(|n| (n, config.seed, key(s)));
            Self::load(w, train, idx, noise);
            w.zero_written_grads(&written);
            let from = match frozen {
                Some(f) => {
                    w.set_act(f.layers - 1, idx.iter().map(|&i| f.row(i as usize)));
                    f.layers
                }
                None => 0,
            };
            w.forward_range(model, from..stop, true);
        };

        let code_width = model.code_width();
        let sums_needed = penalty_term.is_some_and(|p| p.needs_column_sums());
        let code = model.code_after;
        let lowest = model.first_trainable_layer();
        // Backward: decoder, the penalty's gradient on the codes (`whole_batch`: what the
        // penalty needs of the whole batch, if anything), encoder.
        let backward = |w: &mut Workspace, whole_batch: &[f64]| {
            w.backward_range(model, code..n_layers);
            let value = match penalty_term {
                Some(p) => {
                    let (c, dc) = w.code_and_grad(model);
                    p.backward(whole_batch, c, dc, rows)
                }
                None => 0.0,
            };
            // Layers below the lowest trainable one need no backward pass at all.
            w.backward_range(model, lowest.min(code)..code);
            value
        };

        // The end of a shard's step after its last layer: the reconstruction loss, then either
        // the column sums of the codes when the penalty needs the whole batch's (the backward
        // pass waits for them), or the backward pass itself and its share of the penalty.
        let after_last_layer = |w: &mut Workspace| {
            let sse = w.reconstruction_loss(rows);
            if sums_needed {
                let mut sums = vec![0.0; code_width];
                column_sums(w.code_and_grad(model).0, &mut sums);
                (sse, sums, 0.0)
            } else {
                let penalty = backward(w, &[]);
                (sse, Vec::new(), penalty)
            }
        };

        // Load and run up to the first layer that couples the batch, or to the end. With nothing
        // coupled and no column sums, this one parallel section is the whole step.
        let stop = coupled.first().map_or(n_layers, |c| c.0);
        // Each shard's part: `None` until its last layer has run.
        let mut parts: Vec<Option<(f64, Vec<f64>, f64)>> = pool.install(|| {
            workers
                .par_iter_mut()
                .zip(batch.par_chunks(shard))
                .enumerate()
                .map(|(s, (w, idx))| {
                    start(s, w, idx, stop);
                    coupled.is_empty().then(|| after_last_layer(w))
                })
                .collect()
        });
        // Each such layer chooses its masks over all shards, then the shards run on to the next.
        for (c, (layer, mask)) in coupled.iter().enumerate() {
            let (inputs, mut masks): (Vec<_>, Vec<_>) = workers.iter_mut().map(|w| w.input_and_mask(*layer)).unzip();
            mask.choose(&inputs, &mut masks, config.batch_size, rows);
            let next = coupled.get(c + 1).map_or(n_layers, |c| c.0);
            parts = pool.install(|| {
                workers
                    .par_iter_mut()
                    .map(|w| {
                        w.forward_range(model, *layer..next, true);
                        (c + 1 == coupled.len()).then(|| after_last_layer(w))
                    })
                    .collect()
            });
        }
        // The last section ran every shard's last layer.
        let parts: Vec<(f64, Vec<f64>, f64)> = parts.into_iter().flatten().collect();

        let sse: f64 = parts.iter().map(|p| p.0).sum();
        let penalty = match penalty_term {
            Some(p) if sums_needed => {
                let mut sums = vec![0.0; code_width];
                for (_, s, _) in &parts {
                    for (a, b) in sums.iter_mut().zip(s) {
                        *a += b;
                    }
                }
                let (value, whole_batch) = p.batch_value(&sums, rows);
                let shard_penalties: Vec<f64> =
                    pool.install(|| workers.par_iter_mut().map(|w| backward(w, &whole_batch)).collect());
                value + shard_penalties.iter().sum::<f64>()
            }
            _ => parts.iter().map(|p| p.2).sum(),
        };
        self.finish_gradients(active, &written, rows, sse, penalty)
    }

    /// Sums the `active` shards' gradients (those `written`) into the first workspace and adds
    /// weight decay; returns the loss of the batch of `rows` rows: the reconstruction term
    /// (`sse`, the summed squared error, over its values) plus `penalty` and the decay's term.
    fn finish_gradients(&mut self, active: usize, written: &[bool], rows: usize, sse: f64, mut penalty: f64) -> f64 {
        let config = &self.state.config;
        let model = &self.state.model;
        sum_shards(&self.pool, &mut self.workers[..active], written);
        // Weight decay, an optimiser setting: λ·w into the summed gradients, λ/2·Σw² into the loss.
        if config.weight_decay > 0.0 {
            let grads = &mut self.workers[0].grads;
            penalty += self.pool.install(|| model.weight_decay(grads, config.weight_decay));
        }
        sse / (rows * self.train.features()) as f64 + penalty
    }

    /// One optimisation step: gradients of the batch, then Adam. A loss or a gradient that is
    /// NaN or infinite stops it before Adam changes anything.
    fn step(&mut self, batch: &[u32], epoch: u64, position: usize) -> Result<f64, TrainError> {
        self.prepare_frozen();
        let loss = self.gradients(batch, epoch, position);
        if !loss.is_finite() {
            return Err(self.diverged("training loss", loss));
        }
        let model = &self.state.model;
        let grads = &self.workers[0].grads;
        // Only what Adam will apply: a frozen parameter's gradient is not used.
        let bad = self.pool.install(|| {
            model
                .params
                .iter()
                .zip(grads)
                .position(|(param, grad)| !param.frozen && !all_finite(grad))
        });
        if let Some(p) = bad {
            let bad = grads[p].iter().copied().find(|g| !g.is_finite()).unwrap_or(f32::NAN);
            return Err(self.diverged(&format!("a gradient of {}", model.params[p].name), f64::from(bad)));
        }
        let trainable: Vec<bool> = self.state.model.params.iter().map(|p| !p.frozen).collect();
        let mut params: Vec<&mut Array2<f32>> = self.state.model.params.iter_mut().map(|p| &mut p.value).collect();
        let (adam, grads) = (&mut self.state.adam, &self.workers[0].grads);
        self.pool.install(|| adam.step(&mut params, grads, &trainable));
        Ok(loss)
    }

    /// The loss and parameter gradients of training images `batch` taken as the first batch of
    /// the first epoch, without updating anything: what a step would apply.
    pub fn batch_gradients(&mut self, batch: &[u32]) -> (f64, Vec<Array2<f32>>) {
        if self.device.is_some() {
            return self
                .device_batch_gradients(batch)
                .expect("the device computes the gradients");
        }
        self.prepare_frozen();
        let loss = self.gradients(batch, 0, 0);
        (loss, self.workers[0].grads.clone())
    }

    /// One pass over the shuffled training set; returns the mean loss per sample.
    pub fn train_epoch(&mut self) -> Result<f64, TrainError> {
        if self.device.is_some() {
            return self.device_epoch();
        }
        let n = self.train.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut self.state.rng);
        let epoch = self.state.history.len() as u64;
        let bs = self.state.config.batch_size;
        // The epoch runs on one of the trainer's own threads: each parallel section of a step
        // then starts inside the pool, where the other thread steals its share, instead of being
        // handed to the pool from outside while this thread sleeps until it is done.
        let pool = std::sync::Arc::clone(&self.pool);
        pool.install(|| {
            let mut total = 0.0;
            for (b, batch) in order.chunks(bs).enumerate() {
                if crate::interrupt::requested() {
                    return Err(self.interrupted());
                }
                let loss = self.step(batch, epoch, b * bs)?;
                total += loss * batch.len() as f64;
            }
            Ok(total / n as f64)
        })
    }

    /// The run stopped by Ctrl-C, where it stands.
    pub(super) fn interrupted(&self) -> TrainError {
        TrainError::Interrupted {
            variant: self.state.config.variant.clone(),
            phase: self.state.phase_name().into(),
            epochs_done: self.state.epoch_in_phase,
        }
    }

    pub(super) fn diverged(&self, what: &str, value: f64) -> TrainError {
        TrainError::Diverged {
            variant: self.state.config.variant.clone(),
            what: what.into(),
            value,
            phase: self.state.phase_name().into(),
            epoch: self.state.epoch_in_phase + 1,
        }
    }
}

/// Elements per parallel task of [`sum_shards`] and [`all_finite`].
const CHUNK: usize = 16 * 1024;

/// Adds every other shard's gradients into the first shard's, for the parameters `written`
/// (the others are zero in every shard): each element sums the shards in their order, as one
/// sequential pass would, in parallel chunks on `pool`.
fn sum_shards(pool: &rayon::ThreadPool, workers: &mut [Workspace], written: &[bool]) {
    let Some((first, rest)) = workers.split_first_mut() else {
        return;
    };
    if rest.is_empty() {
        return;
    }
    let mut tasks: Vec<(&mut [f32], Vec<&[f32]>)> = Vec::new();
    for (p, g) in first.grads.iter_mut().enumerate().filter(|&(p, _)| written[p]) {
        let g = g.as_slice_mut().expect("gradients are standard arrays");
        for (c, chunk) in g.chunks_mut(CHUNK).enumerate() {
            let range = c * CHUNK..c * CHUNK + chunk.len();
            let others = rest
                .iter()
                .map(|w| &w.grads[p].as_slice().expect("gradients are standard arrays")[range.clone()])
                .collect();
            tasks.push((chunk, others));
        }
    }
    pool.install(|| {
        tasks.into_par_iter().for_each(|(g, others)| {
            for h in others {
                for (a, b) in g.iter_mut().zip(h) {
                    *a += b;
                }
            }
        })
    });
}

/// Whether every value of `grad` is finite, in parallel chunks: a fold without an early exit
/// in each, which the compiler vectorises.
fn all_finite(grad: &Array2<f32>) -> bool {
    let values = grad.as_slice().expect("gradients are standard arrays");
    values
        .par_chunks(CHUNK)
        .all(|c| !c.iter().fold(false, |bad, g| bad | !g.is_finite()))
}
