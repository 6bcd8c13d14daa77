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
    /// The timed phase (from 1) and its name.
    pub phase: String,
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

/// Times `epochs` training epochs of phase `phase` (from 1) of `variant` on `device` after one
/// warm-up. The phases before it are started (a greedy stage grows the net, fine-tuning unties
/// or unfreezes it) but not trained: the timed phase multiplies the shapes a run's does, from
/// weights that are not the run's. An epoch on a GPU ends when its weights are back on the
/// host, as every epoch of a run does.
pub fn run(
    variant: &str,
    phase: usize,
    epochs: usize,
    threads: usize,
    device: Device,
    data: Mnist,
) -> anyhow::Result<BenchResult> {
    let recipe = recipe::find(variant).map_err(anyhow::Error::msg)?;
    let state = State::new(recipe.config(0, threads))?;
    let phases = state.config.phases.len();
    if phase == 0 || phase > phases {
        anyhow::bail!("{variant} has phases 1 to {phases}, not {phase}");
    }
    let mut trainer = Trainer::new(state, data)?;
    trainer.set_device(device)?;
    trainer.skip_to_phase(phase - 1);
    let st = &mut trainer.state;
    let phase_name = format!("{phase} ({})", st.config.phases[phase - 1].name);
    // Start the phase (builds buffers), then warm up.
    st.config.phases.truncate(phase);
    st.config.phases[phase - 1].max_epochs = usize::MAX;
    let mut progress = Progress::Silent;
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
        phase: phase_name,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mnist::{Split, PIXELS};

    fn split(n: usize) -> Split {
        Split {
            images: (0..n * PIXELS).map(|i| (i * 37 % 251) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn a_later_phase_is_timed_on_the_net_the_earlier_phases_grew() {
        let data = Mnist {
            train: split(256),
            test: split(64),
        };
        let r = run("deep30", 5, 1, 1, Device::Cpu, data.clone()).unwrap();
        assert_eq!(r.phase, "5 (finetune)");
        // All of 784-1000-500-250-30 and its tied mirror, unfrozen: the first layer's
        // products twice a sample (no input gradient), every other one's three times.
        let encoder: u64 = 1000 * 500 + 500 * 250 + 250 * 30;
        let decoder = 30 * 250 + 250 * 500 + 500 * 1000 + 1000 * 784;
        let per_sample = 2 * (2 * 784 * 1000 + 3 * (encoder + decoder));
        let flops = r.gflops * r.median_epoch_s * 1e9;
        assert!((flops - (per_sample * 256) as f64).abs() < 1e3, "{flops}");
        // The first phase is the first stage alone: 784-1000-784.
        let r = run("deep30", 1, 1, 1, Device::Cpu, data.clone()).unwrap();
        assert_eq!(r.phase, "1 (stage1)");
        let flops = r.gflops * r.median_epoch_s * 1e9;
        assert!(
            (flops - (2 * (2 + 3) * 784 * 1000 * 256u64) as f64).abs() < 1e3,
            "{flops}"
        );
        let e = run("deep30", 6, 1, 1, Device::Cpu, data).unwrap_err().to_string();
        assert_eq!(e, "deep30 has phases 1 to 5, not 6");
    }
}
