//! The Cortex-M4's DSP path of the fully connected and convolutional layers against the host, bit for bit: the
//! default firmware (DSP) and the firmware's `portable` feature (the portable kernels on the same
//! chip) under QEMU's mps2-an386, both compared with the core on the host, on every shipped MNIST
//! model and on random stacks of fully connected layers at the kernels' edges
//! (`synthetic::random_dense`: 1-wide layers, widths below 4, not a multiple of 4, odd, over
//! 1024; weights of -128; zero points of -128 and 127; shifts of -31 and 30; fused LeakyReLU
//! and ReLU) and on random convolutional models (`synthetic::random_conv`: window rows of whole
//! groups of four and not, windows over 1024 values, 1x1 to 6x6 kernels, 1 to 9 filters, the
//! same extremes).
//!
//! Needs `qemu-system-arm`. `tests/firmware.rs` checks the default firmware on every test image;
//! here each firmware runs on fewer samples, to keep the suite's QEMU time small.

use autoencoder_core::model::Layer;
use autoencoder_core::Model;
use host_tests::check::{self, Samples};
use host_tests::firmware::{self, Kernels};
use host_tests::synthetic::{self, Shape};
use host_tests::{float_samples, mnist};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

/// MNIST test images each firmware of a shipped model runs; [`BIG_MODEL_IMAGES`] for a model
/// above `host_tests::ALL_IMAGES_MAX_MACS` (`conv`, `deep30`).
const SHIPPED_IMAGES: usize = 100;

/// MNIST test images each firmware of a big shipped model runs.
const BIG_MODEL_IMAGES: usize = 25;

/// Seeds of the random dense models: together they reach every edge (see
/// [`random_dense_models_reach_every_edge`]).
const DENSE_SEEDS: std::ops::Range<u64> = 0..16;

/// Random samples (and every edge sample) each firmware of a random dense model runs.
const DENSE_SAMPLES: usize = 30;

/// Seeds of the random convolutional models: together they reach every edge (see
/// [`random_conv_models_reach_every_edge`]).
const CONV_SEEDS: std::ops::Range<u64> = 0..14;

/// Random samples (and the first edge samples) each firmware of a random convolutional model
/// runs.
const CONV_SAMPLES: usize = 10;

/// The model file `target/firmware/synthetic/NAME.aeq` holding `blob`, written only when its
/// bytes change (the firmware's build script reruns when the file's modification time changes).
fn model_file_under_target(name: &str, blob: &[u8]) -> PathBuf {
    let dir = firmware::firmware_target_dir().join("synthetic");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.aeq"));
    if std::fs::read(&path).ok().as_deref() != Some(blob) {
        std::fs::write(&path, blob).unwrap();
    }
    path
}

/// Runs `samples` through both firmwares of the model at `path` and returns the failures
/// (mismatches with the host, or errors), one line each.
fn both_paths(path: &std::path::Path, samples: Samples<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    for kernels in Kernels::BOTH {
        match check::model_file_with(path, samples, kernels) {
            Ok(report) => {
                println!("{} ({}): {}", path.display(), kernels.name(), report.summary());
                if report.mismatches > 0 {
                    failures.push(format!(
                        "{} ({}):\n{}",
                        report.summary(),
                        kernels.name(),
                        report.details
                    ));
                }
            }
            Err(e) => failures.push(format!("{} ({}): {e:#}", path.display(), kernels.name())),
        }
    }
    failures
}

#[test]
fn shipped_mnist_models_match_the_host_on_both_paths() {
    let start = Instant::now();
    let images = mnist::test_images(SHIPPED_IMAGES).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in host_tests::shipped_models().unwrap() {
        let blob = std::fs::read(&path).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        if model.input_shape() != [28, 28] {
            continue;
        }
        let count = if host_tests::denoise_macs(&model) > host_tests::ALL_IMAGES_MAX_MACS {
            BIG_MODEL_IMAGES
        } else {
            SHIPPED_IMAGES
        };
        failures.extend(both_paths(&path, Samples::Pixels(images[..count].as_flattened())));
        checked += 1;
    }
    println!(
        "{checked} shipped MNIST models, both paths, in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_dense_models_match_the_host_on_both_paths() {
    let start = Instant::now();
    let mut failures = Vec::new();
    for seed in DENSE_SEEDS {
        let blob = synthetic::random_dense(seed);
        let path = model_file_under_target(&format!("synthetic-dense-{seed}"), &blob);
        let model = Model::from_bytes(&blob).unwrap();
        let edges = float_samples::edge_sample_count(&model);
        let samples = [
            float_samples::random_samples(&model, DENSE_SAMPLES, seed),
            float_samples::edge_samples(&model, 0..edges),
        ]
        .concat()
        .concat();
        failures.extend(both_paths(&path, Samples::Floats(&samples)));
    }
    println!(
        "{} random dense models, both paths, in {:.1} s",
        DENSE_SEEDS.end - DENSE_SEEDS.start,
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_conv_models_match_the_host_on_both_paths() {
    let start = Instant::now();
    let mut failures = Vec::new();
    for seed in CONV_SEEDS {
        let blob = synthetic::random_conv(seed);
        let path = model_file_under_target(&format!("synthetic-conv-{seed}"), &blob);
        let model = Model::from_bytes(&blob).unwrap();
        let edges = float_samples::edge_sample_count(&model).min(4);
        let samples = [
            float_samples::random_samples(&model, CONV_SAMPLES, seed),
            float_samples::edge_samples(&model, 0..edges),
        ]
        .concat()
        .concat();
        failures.extend(both_paths(&path, Samples::Floats(&samples)));
    }
    println!(
        "{} random convolutional models, both paths, in {:.1} s",
        CONV_SEEDS.end - CONV_SEEDS.start,
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the random convolutional models hold, over all [`CONV_SEEDS`]: every edge of the DSP
/// path's convolutions.
#[test]
fn random_conv_models_reach_every_edge() {
    let (mut pieces, mut column, mut too_wide) = (false, false, false);
    let (mut filters, mut kernels) = (BTreeSet::new(), BTreeSet::new());
    let (mut zero_points, mut shifts, mut weight_min) = (BTreeSet::new(), BTreeSet::new(), 0i8);
    let (mut plain, mut tables, mut slopes) = (false, false, BTreeSet::new());
    for seed in CONV_SEEDS {
        let blob = synthetic::random_conv(seed);
        let model = Model::from_bytes(&blob).unwrap();
        zero_points.insert(model.input_quant().zero_point);
        for layer in model.layers() {
            let (in_channels, out_channels, kernel, params) = match layer {
                Layer::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    params,
                    ..
                } => {
                    plain = true;
                    (*in_channels, *out_channels, *kernel, params)
                }
                Layer::Conv2dLeakyRelu {
                    in_channels,
                    out_channels,
                    kernel,
                    slope,
                    params,
                    ..
                } => {
                    slopes.insert(slope.to_bits());
                    (*in_channels, *out_channels, *kernel, params)
                }
                Layer::Table { output, .. } => {
                    tables = true;
                    zero_points.insert(output.zero_point);
                    continue;
                }
                _ => continue,
            };
            let row = usize::from(kernel) * usize::from(in_channels);
            if row * usize::from(kernel) > 1024 {
                too_wide = true;
            } else if row % 4 == 0 {
                pieces = true;
            } else {
                column = true;
            }
            filters.insert(out_channels % 4);
            kernels.insert(kernel);
            zero_points.insert(params.output.zero_point);
            shifts.extend(params.shifts.iter().map(|&s| s as i8));
            weight_min = weight_min.min(params.weights.iter().map(|&w| w as i8).min().unwrap());
        }
    }
    println!("kernels {kernels:?}, filters mod 4 {filters:?}, zero points {zero_points:?}, shifts {shifts:?}");
    assert!(
        pieces && column && too_wide,
        "window rows of whole groups, not, too wide"
    );
    assert_eq!(filters.len(), 4, "a last pass of 0 to 3 filters: {filters:?}");
    assert!(kernels.contains(&1) && kernels.contains(&6), "{kernels:?}");
    assert!(
        zero_points.contains(&-128) && zero_points.contains(&127),
        "{zero_points:?}"
    );
    assert!(shifts.contains(&-31) && shifts.contains(&30), "{shifts:?}");
    assert_eq!(weight_min, -128);
    assert!(plain && tables, "plain convolutions and LeakyReLU tables");
    assert!(!slopes.is_empty(), "fused LeakyReLU: {slopes:?}");
}

#[test]
fn the_mlperf_anomaly_shape_matches_the_host_on_both_paths() {
    let blob = synthetic::model(Shape::MlperfAnomaly, 1);
    let path = model_file_under_target(Shape::MlperfAnomaly.name(), &blob);
    let model = Model::from_bytes(&blob).unwrap();
    let mut rng = autoencoder_core::testutil::SplitMix64::new(3);
    let values: Vec<u8> = (0..20 * model.input_len()).map(|_| rng.next_u64() as u8).collect();
    let failures = both_paths(&path, Samples::Pixels(&values));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the random dense models hold, over all [`DENSE_SEEDS`]: every edge the DSP path has.
#[test]
fn random_dense_models_reach_every_edge() {
    let mut widths = BTreeSet::new();
    let (mut zero_points, mut shifts) = (BTreeSet::new(), BTreeSet::new());
    let (mut weight_min, mut full_rows_of_min) = (0i8, false);
    let (mut plain, mut tables, mut slopes) = (false, false, BTreeSet::new());
    for seed in DENSE_SEEDS {
        let blob = synthetic::random_dense(seed);
        let model = Model::from_bytes(&blob).unwrap();
        zero_points.insert(model.input_quant().zero_point);
        for layer in model.layers() {
            let (inputs, params) = match layer {
                Layer::FullyConnected { inputs, params, .. } => {
                    plain = true;
                    (*inputs, params)
                }
                Layer::FullyConnectedLeakyRelu {
                    inputs, slope, params, ..
                } => {
                    slopes.insert(slope.to_bits());
                    (*inputs, params)
                }
                Layer::Table { output, .. } => {
                    tables = true;
                    zero_points.insert(output.zero_point);
                    continue;
                }
                _ => continue,
            };
            let inputs = inputs as usize;
            widths.insert(inputs);
            zero_points.insert(params.output.zero_point);
            shifts.extend(params.shifts.iter().map(|&s| s as i8));
            let weights: Vec<i8> = params.weights.iter().map(|&w| w as i8).collect();
            weight_min = weight_min.min(*weights.iter().min().unwrap());
            full_rows_of_min |= weights.chunks_exact(inputs).any(|row| row.iter().all(|&w| w == -128));
        }
    }
    println!("input widths {widths:?}, zero points {zero_points:?}, shifts {shifts:?}");
    for width in [1, 2, 3] {
        assert!(widths.contains(&width), "no layer of {width} inputs: {widths:?}");
    }
    assert!(widths.iter().any(|w| w % 4 != 0 && w % 2 == 1 && *w > 4), "odd widths");
    assert!(
        widths.iter().any(|w| w % 4 == 2 && *w > 4),
        "even widths not a multiple of 4"
    );
    assert!(widths.iter().any(|w| w % 4 == 0), "multiples of 4");
    assert!(widths.iter().any(|w| *w > 1024), "wider than the packed inputs");
    assert!(
        zero_points.contains(&-128) && zero_points.contains(&127),
        "{zero_points:?}"
    );
    assert!(shifts.contains(&-31) && shifts.contains(&30), "{shifts:?}");
    assert_eq!(weight_min, -128);
    assert!(full_rows_of_min, "a row of -128");
    assert!(plain && tables, "plain layers and LeakyReLU tables");
    assert_eq!(slopes.len(), 3, "fused ReLU and LeakyReLU slopes: {slopes:?}");
    assert!(slopes.contains(&0f32.to_bits()));
}
