//! The core against TensorFlow Lite Micro itself, run in its Python interpreter (the pinned
//! `tflite-micro` in `.venv-tflm`, made by `./check.sh`; without it these tests fail, they never
//! skip). `cargo run -p host-tests --release --bin tflm-compare` runs the same comparison on all
//! 10,000 test images.

use autoencoder_core::model::Quant;
use host_tests::tflm::{compare_altered, compare_float_io, compare_models};
use trainer::quantize::{QLayer, Quantized};

/// Test images per model here (the binary does all 10,000).
const IMAGES: usize = 1_000;

#[test]
fn every_shipped_model_equals_tflm_in_every_code_output_and_table() {
    // The tutorial's models, on MNIST's test images (the example vibration data's anomaly model
    // takes 64 floats, not images).
    let models: Vec<_> = host_tests::shipped_models()
        .unwrap()
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap();
            let mnist = autoencoder_core::Model::from_bytes(&bytes).unwrap().input_shape() == [28, 28];
            mnist
        })
        .collect();
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

/// The f32 neighbours of `x`: one step down and one up.
fn neighbours(x: f32) -> [f32; 3] {
    let step = |x: f32, up: bool| {
        let bits = x.to_bits();
        match (x == 0.0, (x > 0.0) == up) {
            (true, _) if up => f32::from_bits(1),
            (true, _) => -f32::from_bits(1),
            (false, true) => f32::from_bits(bits + 1),
            (false, false) => f32::from_bits(bits - 1),
        }
    };
    [step(x, false), x, step(x, true)]
}

/// The core's float input and output are TFLM's `QUANTIZE` and `DEQUANTIZE`, value for value:
/// ties of `x / scale` (and the f32 values either side of them), zeros, subnormals, MNIST's
/// pixels divided by 255, values far out of the int8 range, and random ones, under scales and
/// zero points of every kind.
#[test]
fn float_input_and_output_equal_tflms_quantize_and_dequantize() {
    let quants = [
        Quant {
            scale: 1.0,
            zero_point: 0,
        },
        Quant {
            scale: 0.5,
            zero_point: -3,
        },
        Quant {
            scale: 1.0 / 255.0,
            zero_point: -128,
        },
        Quant {
            scale: 1.0 / 256.0,
            zero_point: -128,
        },
        Quant {
            scale: 0.037_1,
            zero_point: 17,
        },
        Quant {
            scale: 3.0e-3,
            zero_point: 127,
        },
        Quant {
            scale: 7.5,
            zero_point: -128,
        },
    ];
    let mut values = Vec::new();
    for k in -300..=300 {
        values.extend(neighbours(k as f32 + 0.5));
        values.extend(neighbours(k as f32 * 0.5 + 0.25));
    }
    // Near ties of every scale: (k + 1/2) * scale, formed in f64, and its neighbours.
    for q in &quants {
        for k in -200..=200 {
            values.extend(neighbours(((f64::from(k) + 0.5) * f64::from(q.scale)) as f32));
        }
    }
    values.extend((0..=255).map(|p| p as f32 / 255.0));
    values.extend([
        0.0,
        -0.0,
        f32::from_bits(1),
        -f32::from_bits(1),
        1e-40,
        -1e-40,
        1e-10,
        1e5,
        -1e5,
    ]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        values.push(((state >> 40) as f64 / (1u64 << 24) as f64 * 800.0 - 400.0) as f32);
    }
    let report = compare_float_io(&values, &quants).unwrap();
    println!(
        "checked {} values quantized and {} codes dequantized against TFLM, {} mismatches",
        report.quantized,
        report.dequantized,
        report.mismatches.len()
    );
    assert_eq!(report.quantized, values.len() * quants.len());
    assert_eq!(report.dequantized, 256 * quants.len());
    assert!(
        report.mismatches.is_empty(),
        "the core and TFLM differ:\n{}",
        report.mismatches.join("\n")
    );
}
