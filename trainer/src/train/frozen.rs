//! The frozen layers at the bottom of a greedy stage, run once per phase instead of once per
//! step.
//!
//! A greedily grown network trains a new pair of layers around the code while every layer
//! below them stays frozen, so each epoch would take the training samples through those frozen
//! layers again, to the same values. When nothing in them changes from step to step — no input
//! noise, no layer that chooses over the whole batch — the trainer runs them once when the phase
//! starts, keeps the output of the last one for every training sample, and starts each step's
//! forward pass above them ([`FrozenPrefix`]). `deep30`'s second to fourth stages skip 16 %,
//! 29 % and 33 % of their products this way. The validation samples' rows are kept too, and
//! each epoch's validation pass starts above them as well.
//!
//! The rows are computed by the same layers on shards of the step's size, so a step sees the
//! values it would have computed itself, bit for bit (test
//! `a_stage_over_its_frozen_layers_run_once_trains_bit_for_bit_as_before`).

use crate::data::Samples;
use crate::model::Model;
use crate::recipe::Config;
use crate::workspace::Workspace;
use rayon::prelude::*;

/// The most memory the kept rows may take. A larger training set runs the frozen layers in
/// every step, as it would without this.
pub const MAX_BYTES: usize = 1 << 30;

/// The output of the frozen layers `0..layers` for every training sample.
pub struct FrozenPrefix {
    /// How many layers, from the first, the rows stand for.
    pub layers: usize,
    /// The output of layer `layers - 1`, one row of `width` values per training sample.
    values: Vec<f32>,
    width: usize,
}

/// How many layers, from the first, a step on `model` under `config` may skip by starting from
/// kept rows: the frozen layers below the lowest trainable one, when there are some and they
/// give every sample the same output in every step. `None` when there is nothing to skip.
pub fn skippable_layers(model: &Model, config: &Config) -> Option<usize> {
    let lowest = model.first_trainable_layer();
    let fixed = config.noise.is_none()
        && model.layers[..lowest].iter().all(|l| l.batch_mask().is_none())
        // The code, which a penalty reads, is computed by the step.
        && model.code_after >= lowest;
    (lowest > 0 && lowest < model.layers.len() && fixed).then_some(lowest)
}

impl FrozenPrefix {
    /// Runs layers `0..layers` of `model` over every sample of `samples`, `workers` (one per
    /// thread of `pool`) taking whole shards of their own size as a step does. `None` when the
    /// rows would take more than [`MAX_BYTES`].
    pub fn compute(
        model: &Model,
        samples: &Samples,
        layers: usize,
        workers: &mut [Workspace],
        pool: &rayon::ThreadPool,
    ) -> Option<FrozenPrefix> {
        let width = model.widths().expect("a valid model")[layers - 1];
        let n = samples.len();
        if n.checked_mul(width)?.checked_mul(std::mem::size_of::<f32>())? > MAX_BYTES {
            return None;
        }
        let shard = workers[0].capacity();
        let mut values = vec![0.0; n * width];
        // Each worker takes a run of whole shards; the last shard of all may be short.
        let per_worker = n.div_ceil(workers.len()).div_ceil(shard) * shard;
        pool.install(|| {
            workers
                .par_iter_mut()
                .zip(values.par_chunks_mut(per_worker * width))
                .enumerate()
                .for_each(|(t, (w, part))| {
                    for (c, dst) in part.chunks_mut(shard * width).enumerate() {
                        let first = t * per_worker + c * shard;
                        w.load((first..first + dst.len() / width).map(|i| samples.row(i)));
                        w.forward_range(model, 0..layers, true);
                        let act = w.act(layers - 1);
                        dst.copy_from_slice(act.as_slice().expect("a layer's leading rows are contiguous"));
                    }
                })
        });
        Some(FrozenPrefix { layers, values, width })
    }

    /// Sample `i`'s row.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}
