//! What the sharded training step asks of the pieces that are more than one shard's business:
//! a layer whose mask is chosen over the whole batch ([`BatchMask`]: lifetime top-k) and a
//! penalty on the codes ([`CodePenalty`]: L1, and KL, whose ρ̂ needs the whole batch's codes).
//!
//! The step runs shards in parallel between the points where the batch must be seen whole, and
//! calls these traits there; it names no layer and no penalty.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// A layer whose training forward pass needs a mask chosen over every row of the batch.
pub trait BatchMask: Sync {
    /// Fills `masks` (one per shard, in batch order) from the layer's `inputs` (the same
    /// shards) of a batch of `rows` rows drawn with batches of `batch_size`.
    // inputs[s]: (N_s, F) -> masks[s]: (N_s, F)
    fn choose(&self, inputs: &[ArrayView2<f32>], masks: &mut [ArrayViewMut2<f32>], batch_size: usize, rows: usize);
}

/// A penalty on the codes, added to the reconstruction loss. A penalty that needs the whole
/// batch asks for the column sums of its codes ([`CodePenalty::needs_column_sums`]); the step
/// sums them over the shards in batch order and hands them back once
/// ([`CodePenalty::batch_value`]) before any shard's backward pass.
pub trait CodePenalty: Sync {
    /// Whether the penalty needs the column sums of the whole batch's codes.
    fn needs_column_sums(&self) -> bool {
        false
    }

    /// From the column sums of the whole batch of `rows` codes: the penalty's value for the
    /// batch and what [`CodePenalty::backward`] needs of it.
    // sums: (K)
    fn batch_value(&self, _sums: &[f64], _rows: usize) -> (f64, Vec<f64>) {
        (0.0, Vec::new())
    }

    /// Adds the penalty's gradient to one shard's code gradient `dc`, given its codes `c`, the
    /// whole batch's `rows` and what [`CodePenalty::batch_value`] returned. Returns this
    /// shard's part of the penalty (0 when the batch's value came whole from the column sums).
    // c: (N_s, K) -> dc: (N_s, K) (added to)
    fn backward(&self, batch: &[f64], c: ArrayView2<f32>, dc: ArrayViewMut2<f32>, rows: usize) -> f64;
}

/// Adds each column of `c` into `sums`: a shard's part of the column sums a penalty asks for.
// c: (N, K) -> sums: (K)
pub fn column_sums(c: ArrayView2<f32>, sums: &mut [f64]) {
    for row in c.axis_iter(Axis(0)) {
        for (s, &v) in sums.iter_mut().zip(row.iter()) {
            *s += v as f64;
        }
    }
}
