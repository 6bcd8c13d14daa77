//! The GPU against the CPU trainer (feature `cuda`; README, "Training on a GPU"). Needs an
//! NVIDIA GPU with its driver, cuBLAS and NVRTC:
//!
//! ```text
//! cargo test -p trainer --release --features cuda --test cuda
//! ```
//!
//! `TRAINER_CUDA_DEVICE=N` picks GPU `N` (default 0). CI only builds these (`--no-run`);
//! `tests/device.rs` runs the same checks on the reference backend everywhere.

mod parity;

use trainer::gpu::Session;

fn gpu() -> Session {
    let ordinal =
        std::env::var("TRAINER_CUDA_DEVICE").map_or(0, |v| v.parse().expect("TRAINER_CUDA_DEVICE is a number"));
    trainer::gpu::cuda::open(ordinal).unwrap_or_else(|e| panic!("these tests need a GPU: {e}"))
}

#[test]
fn the_kernels_compile_with_nvrtc() {
    // Needs only the NVRTC library, not a GPU.
    let ptx = trainer::gpu::cuda::compile().unwrap_or_else(|e| panic!("{e}"));
    let text = ptx.to_src();
    for kernel in [
        "gather",
        "bias_act",
        "lifetime_topk",
        "row_sums",
        "col2im",
        "max_pool_backward",
        "adam",
    ] {
        assert!(text.contains(&format!(".entry {kernel}(")), "{kernel} is in the PTX");
    }
}

#[test]
fn every_layer_matches_the_cpu() {
    parity::every_layer_matches_the_cpu(&gpu);
}

#[test]
fn one_epoch_of_each_recipe_matches_the_cpu() {
    // The whole training set, as the CPU's epochs.
    for variant in ["fc", "topk16", "lifetime5", "kl1e-2", "conv"] {
        parity::one_epoch_matches_the_cpu(&gpu, variant, None, 1e-3);
    }
}

#[test]
fn batch_coupled_layers_decide_over_the_whole_batch() {
    parity::batch_coupled_layers_decide_over_the_whole_batch(&gpu);
}

#[test]
fn checkpoints_move_between_devices() {
    parity::checkpoints_move_between_devices(&gpu);
}

#[test]
fn divergence_is_reported() {
    parity::divergence_is_reported(&gpu);
}

#[test]
fn a_missing_gpu_is_named() {
    let err = trainer::gpu::cuda::open(999)
        .err()
        .expect("no machine has 1000 GPUs")
        .to_string();
    assert!(err.contains("--device cuda:999") && err.contains("sees"), "{err}");
}
