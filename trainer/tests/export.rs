//! Int8 export: every architecture the recipes build quantizes into a model file that the core
//! runs exactly as the trainer's independent integer reference does, and the `export`, `eval`
//! and `inspect` commands as a user runs them.

use std::path::Path;
use std::sync::OnceLock;
use trainer::int8;
use trainer::mnist::{Mnist, PIXELS};
use trainer::progress::Progress;
use trainer::quantize::{self, QLayer, Quantized};
use trainer::recipe;
use trainer::train::{State, Trainer};

mod common;
use common::{text, trainer};

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap())
        .clone()
}

/// A variant trained one epoch per phase on 512 images: every greedy stage is grown, every
/// phase's structure (untied decoder, frozen layers released) is there.
fn tiny_run(variant: &str) -> State {
    let mut c = recipe::find(variant).unwrap().config(3, 2);
    let finetune = r_has_finetune(variant).then_some(1);
    c.cap_epochs(Some(1), finetune).unwrap();
    c.train_limit = Some(512);
    c.test_limit = Some(64);
    let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
    t.run(None, &mut Progress::Silent).unwrap();
    t.state
}

/// Whether the recipe has a fine-tuning phase (the conv recipe has one phase only).
fn r_has_finetune(variant: &str) -> bool {
    recipe::find(variant).unwrap().config(0, 1).phases.len() > 1
}

/// Inputs: test images, black, white and uniform noise.
fn inputs() -> Vec<[u8; PIXELS]> {
    let data = mnist();
    let mut v: Vec<[u8; PIXELS]> = (0..6).map(|i| data.test.image(i).try_into().unwrap()).collect();
    v.push([0; PIXELS]);
    v.push([255; PIXELS]);
    let mut s = 0x9e37u32;
    v.push(std::array::from_fn(|_| {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (s >> 16) as u8
    }));
    v
}

/// The core and the integer reference agree on every output of `q`, and the file round-trips.
fn check_core_equals_reference(q: &Quantized) {
    let bytes = q.to_bytes().unwrap();
    let model = autoencoder_core::Model::from_bytes(&bytes).unwrap();
    assert_eq!(
        &Quantized::from_core(&model),
        q,
        "{}: the file does not round-trip",
        q.name
    );
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = autoencoder_core::Runner::new(model.clone(), &mut scratch).unwrap();
    let mut code = vec![0i8; model.code_len()];
    let mut image = [0u8; PIXELS];
    for (n, input) in inputs().iter().enumerate() {
        let want = int8::run(q, input);
        runner.encode_u8_into(input, &mut code).unwrap();
        runner.denoise_into(input, &mut image).unwrap();
        assert_eq!(code, want.code, "{}: codes of input {n}", q.name);
        let want_image: Vec<u8> = want.output.iter().map(|&c| (c as u8) ^ 0x80).collect();
        assert_eq!(image.to_vec(), want_image, "{}: image of input {n}", q.name);
    }
}

#[test]
fn every_variant_exports_and_the_core_matches_the_reference() {
    for r in recipe::RECIPES.iter().filter(|r| r.name != "deep30") {
        exports_and_the_core_matches_the_reference(r.name);
    }
}

/// `deep30` alone, the slowest to quantize by far, beside the others' test.
#[test]
fn deep30_exports_and_the_core_matches_the_reference() {
    exports_and_the_core_matches_the_reference("deep30");
}

fn exports_and_the_core_matches_the_reference(name: &str) {
    let data = mnist();
    let calibration = &data.train.images[..128 * PIXELS];
    let state = tiny_run(name);
    let float = quantize::float_mse(&state.model, &data.test.images[..64 * PIXELS]);
    // Few refinement images: this checks structure and arithmetic, not the best ranges.
    let q = quantize::quantize_with(&state.model, name, &quantize::mnist_input(), calibration, 16, float, 1).unwrap();
    // The structure the recipe promises: sparsity and pooling survive, lifetime top-k does not.
    let has = |f: fn(&QLayer) -> bool| q.layers.iter().any(f);
    assert_eq!(
        has(|l| matches!(l, QLayer::TopK { .. })),
        name.starts_with("topk"),
        "{name}"
    );
    assert_eq!(
        has(|l| matches!(l, QLayer::Conv2d { .. } | QLayer::Conv2dLeakyRelu { .. })),
        name == "conv",
        "{name}"
    );
    assert_eq!(q.code_len(), state.model.code_width(), "{name}");
    check_core_equals_reference(&q);
}

/// The search scores each end's candidate ranges on several threads and takes them in order:
/// the model file is the same byte for byte on 1 and on 3 threads, for `fc` (LeakyReLU fusion
/// and equalization tried), `deep` (greedy stages) and `conv`, and so is the int8 MSE, whose
/// images run on the threads too.
#[test]
fn the_search_gives_the_same_model_on_any_number_of_threads() {
    let data = mnist();
    let calibration = &data.train.images[..128 * PIXELS];
    let test = &data.test.images[..100 * PIXELS];
    let input = quantize::mnist_input();
    for name in ["fc", "deep", "conv"] {
        let state = tiny_run(name);
        let on = |threads| {
            quantize::quantize_with(&state.model, name, &input, calibration, 24, f64::NAN, threads)
                .unwrap()
                .to_bytes()
                .unwrap()
        };
        let one = on(1);
        assert_eq!(one, on(3), "{name}: the model file depends on the thread count");
        let model = autoencoder_core::Model::from_bytes(&one).unwrap();
        let mse = |threads| quantize::int8_mse(&model, &input, test, threads).to_bits();
        assert_eq!(mse(1), mse(3), "{name}: the int8 MSE depends on the thread count");
        assert_eq!(mse(1), mse(7), "{name}: the int8 MSE depends on the thread count");
    }
}

#[test]
fn int8_reconstruction_is_close_to_the_float_models() {
    let data = mnist();
    let state = tiny_run("fc");
    let test = &data.test.images[..256 * PIXELS];
    let float = quantize::float_mse(&state.model, test);
    let q = quantize::quantize(
        &state.model,
        "fc",
        &quantize::mnist_input(),
        &data.train.images[..512 * PIXELS],
        float,
        2,
    )
    .unwrap();
    let bytes = q.to_bytes().unwrap();
    let int8 = quantize::int8_mse(
        &autoencoder_core::Model::from_bytes(&bytes).unwrap(),
        &quantize::mnist_input(),
        test,
        2,
    );
    assert!(int8 <= 1.05 * float, "int8 {int8} vs float {float}");
}

#[test]
fn the_output_range_is_pixels_and_weights_are_symmetric() {
    let data = mnist();
    let state = tiny_run("topk16");
    let q = quantize::quantize(
        &state.model,
        "topk16",
        &quantize::mnist_input(),
        &data.train.images[..128 * PIXELS],
        f64::NAN,
        1,
    )
    .unwrap();
    match q.layers.last().unwrap() {
        QLayer::Table { output, .. } => {
            assert_eq!((output.scale, output.zero_point), (1.0 / 255.0, -128));
        }
        other => panic!("last layer {other:?}"),
    }
    for layer in &q.layers {
        if let QLayer::FullyConnected { params, .. } = layer {
            assert!(params.weights.iter().all(|&w| w != -128), "weights are in [-127, 127]");
            // Each channel's largest weight uses the whole range.
            let n_in = params.weights.len() / params.bias.len();
            for row in params.weights.chunks(n_in) {
                assert_eq!(row.iter().map(|w| w.unsigned_abs()).max(), Some(127));
            }
        }
    }
}

#[test]
fn export_eval_and_inspect_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = trainer(&[
        "train",
        "fc",
        "--out",
        run_s,
        "--epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--train-limit",
        "512",
        "--test-limit",
        "128",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let model = dir.path().join("models").join("fc.aeq");
    let model_s = model.to_str().unwrap();
    let o = trainer(&["export", run_s, "--out", model_s, "--calibration", "256"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("int8/float"), "{}", text(&o));
    assert!(model.is_file());
    assert!(dir.path().join("models").join("fc.golden.json").is_file());

    let o = trainer(&["eval", model_s, "--test-limit", "200", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["images"], 200);
    assert!(report["int8_test_mse"].as_f64().unwrap() > 0.0);

    let o = trainer(&["inspect", model_s]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("layer 0: fully_connected 784 -> 64"), "{t}");
    assert!(t.contains("multiplier"), "{t}");

    let o = trainer(&["inspect", model_s, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let q: Quantized = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q.layers.len(), 4);
    assert_eq!(
        q.to_bytes().unwrap(),
        std::fs::read(&model).unwrap(),
        "the JSON rebuilds the file"
    );

    // A corrupt file is named as such by both commands, and nothing else is touched.
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[1000] ^= 0x40;
    let bad = dir.path().join("bad.aeq");
    std::fs::write(&bad, &bytes).unwrap();
    for cmd in ["eval", "inspect"] {
        let o = trainer(&[cmd, bad.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(text(&o).contains("corrupt"), "{cmd}: {}", text(&o));
    }
    let o = trainer(&["eval", dir.path().join("missing.aeq").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("reading model file"), "{}", text(&o));

    // Exporting something that is not a run fails before writing anything.
    let before = std::fs::read(&model).unwrap();
    let o = trainer(&["export", dir.path().join("nothing").to_str().unwrap(), "--out", model_s]);
    assert!(!o.status.success());
    assert!(text(&o).contains("neither a run directory"), "{}", text(&o));
    assert_eq!(std::fs::read(&model).unwrap(), before);
}
