//! `trainer bench`: times training epochs of a recipe on the full data.

use crate::gpu::Device;
use crate::mnist::Mnist;
use crate::progress::Progress;
use crate::recipe;
use crate::train::{State, Trainer};
use serde::Serialize;
use std::time::Instant;

/// One benchmark's figures, printed as one JSON line.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// Recipe.
    pub variant: String,
    /// Matrix-product backend of the CPU.
    pub backend: String,
    /// Where the training steps ran: `cpu`, or the GPU as `cuda:N (name)`.
    pub device: String,
    /// The SIMD level of the trainer's own kernels ([`crate::simd`]), with the cap when
    /// `TRAINER_SIMD` set one.
    pub simd: String,
    /// Threads.
    pub threads: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Training images per epoch.
    pub train_samples: usize,
    /// Timed epochs (after one warm-up).
    pub epochs: usize,
    /// Median seconds of one training epoch (no validation).
    pub median_epoch_s: f64,
    /// Fastest epoch.
    pub min_epoch_s: f64,
    /// Training images per second at the median.
    pub samples_per_s: f64,
    /// Useful GFLOP/s at the median (multiply-adds of forward and backward ×2).
    pub gflops: f64,
    /// Median seconds of one pass over the test set (forward only).
    pub eval_s: f64,
}

/// Times `epochs` training epochs of `variant` on `device` after one warm-up. An epoch on a
/// GPU ends when its weights are back on the host, as every epoch of a run does.
pub fn run(variant: &str, epochs: usize, threads: usize, device: Device, data: Mnist) -> anyhow::Result<BenchResult> {
    let recipe = recipe::find(variant).map_err(anyhow::Error::msg)?;
    let state = State::new(recipe.config(0, threads))?;
    let mut trainer = Trainer::new(state, data)?;
    trainer.set_device(device)?;
    let mut progress = Progress::Silent;
    // Start the first phase (builds buffers), then warm up.
    trainer.state.config.phases.truncate(1);
    trainer.state.config.phases[0].max_epochs = usize::MAX;
    trainer.next_epoch(&mut progress)?;
    let mut times = Vec::with_capacity(epochs);
    let mut evals = Vec::with_capacity(epochs);
    for _ in 0..epochs.max(1) {
        let t = Instant::now();
        trainer.train_epoch()?;
        times.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        trainer.evaluate();
        evals.push(t.elapsed().as_secs_f64());
    }
    let median = median(&mut times);
    let n = trainer.train_len();
    let flops = trainer.state.model.train_flops_per_sample() as f64 * n as f64;
    Ok(BenchResult {
        variant: variant.to_string(),
        backend: crate::matmul::backend_name().to_string(),
        device: trainer.device_name(),
        simd: crate::simd::describe(),
        threads,
        batch_size: trainer.state.config.batch_size,
        train_samples: n,
        epochs: times.len(),
        median_epoch_s: median,
        min_epoch_s: times.iter().cloned().fold(f64::INFINITY, f64::min),
        samples_per_s: n as f64 / median,
        gflops: flops / median / 1e9,
        eval_s: crate::bench::median(&mut evals),
    })
}

/// Median of a non-empty list (mean of the middle two for even lengths).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
