//! The core against TensorFlow Lite Micro itself, run in its Python interpreter (the pinned
//! `tflite-micro` in `.venv-tflm`, made by `./check.sh`; without it these tests fail, they never
//! skip). `cargo run -p host-tests --release --bin tflm-compare` runs the same comparison on all
//! 10,000 test images.

use host_tests::tflm::{compare_altered, compare_models};
use trainer::quantize::{QLayer, Quantized};

/// Test images per model here (the binary does all 10,000).
const IMAGES: usize = 1_000;

#[test]
fn every_shipped_model_equals_tflm_in_every_code_output_and_table() {
    let models = host_tests::shipped_models().unwrap();
    assert!(models.len() >= 14, "shipped models missing: {models:?}");
    let report = compare_models(&models, IMAGES).unwrap();
    println!("{}", report.render());
    assert_eq!(report.models.len(), models.len());
    for m in &report.models {
        assert_eq!(m.images, IMAGES, "{}", m.name);
        assert!(m.codes > 0 && m.outputs == IMAGES * 784, "{}: nothing compared", m.name);
    }
    assert!(
        report.models.iter().map(|m| m.tables).sum::<usize>() >= 35,
        "fewer table layers than the shipped models hold"
    );
    assert!(report.is_exact(), "the core and TFLM differ:\n{}", report.render());
}

/// The comparison finds a difference when there is one, and names where: TFLM runs `fc` with
/// one bias changed while the core runs the shipped file.
#[test]
fn a_changed_bias_is_found_and_reported() {
    let path = host_tests::repo_root().join("models/fc.aeq");
    let bytes = std::fs::read(&path).unwrap();
    let mut q = Quantized::from_core(&autoencoder_core::Model::from_bytes(&bytes).unwrap());
    let QLayer::FullyConnected { params, .. } = &mut q.layers[0] else {
        panic!("fc's first layer is not fully connected");
    };
    params.bias[3] += 50_000;
    let report = compare_altered(&path, &q, 20).unwrap();
    let m = &report.models[0];
    assert!(m.code_mismatches > 0, "{}", report.render());
    assert!(!report.is_exact());
    let text = report.render();
    assert!(
        text.contains("image ") && text.contains("code position 3/64: core"),
        "{text}"
    );
}
