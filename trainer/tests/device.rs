//! The device training step on the reference backend (`trainer::gpu::host`, plain Rust): every
//! layer, penalty and recipe against the CPU trainer, on any machine. `tests/cuda.rs` runs the
//! same checks on a GPU.

mod parity;

use trainer::gpu::host::Host;
use trainer::gpu::Session;

fn host() -> Session {
    Session::new(Box::new(Host::new()), "host".into())
}

#[test]
fn every_layer_matches_the_cpu() {
    parity::every_layer_matches_the_cpu(&host);
}

#[test]
fn one_epoch_of_each_recipe_matches_the_cpu() {
    // The reference backend's products are naive loops: a few hundred images an epoch.
    for variant in ["fc", "topk16", "lifetime5", "kl1e-2", "denoise-mask"] {
        parity::one_epoch_matches_the_cpu(&host, variant, Some(1200), 1e-4);
    }
    parity::one_epoch_matches_the_cpu(&host, "conv", Some(256), 1e-4);
}

#[test]
fn batch_coupled_layers_decide_over_the_whole_batch() {
    parity::batch_coupled_layers_decide_over_the_whole_batch(&host);
}

#[test]
fn semisup_matches_the_cpu() {
    parity::semisup_matches_the_cpu(&host);
}

#[test]
fn checkpoints_move_between_devices() {
    parity::checkpoints_move_between_devices(&host);
}

#[test]
fn divergence_is_reported() {
    parity::divergence_is_reported(&host);
}

#[test]
fn a_gpu_that_cannot_be_used_is_refused_with_the_reason() {
    let c = trainer::recipe::find("fc").unwrap().config(0, 1);
    let mut t = trainer::train::Trainer::new(trainer::train::State::new(c).unwrap(), parity::mnist()).unwrap();
    // No machine has a GPU 999: without the feature the build says so, with it the driver's
    // library is missing or the driver counts its GPUs.
    let err = t.set_device("cuda:999".parse().unwrap()).unwrap_err().to_string();
    assert!(err.starts_with("--device cuda:999: "), "{err}");
    if cfg!(feature = "cuda") {
        assert!(
            err.contains("could not be loaded") || err.contains("the CUDA driver sees"),
            "{err}"
        );
    } else {
        assert!(err.contains("without the `cuda` feature"), "{err}");
    }
    assert_eq!(t.device_name(), "cpu", "nothing changed");
}
