//! Training on data other than the bundled MNIST files: MNIST written as float `.npy` gives the
//! IDX run bit for bit; a 2-feature toy set trains; without a test set a seeded sixth is held out
//! and the run says so; a run records its data and its provenance.

mod common;

use common::{text, trainer};
use ndarray::Array2;
use ndarray_npy::write_npy;
use std::path::Path;
use trainer::mnist::{Mnist, PIXELS};
use trainer::train::State;

fn mnist() -> Mnist {
    Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap()
}

/// The first `n` images of `split` as f32 pixels / 255 (f32 division, as the IDX path scales).
fn as_float(split: &trainer::mnist::Split, n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, PIXELS), |(i, p)| split.image(i)[p] as f32 / 255.0)
}

fn state(dir: &Path) -> State {
    trainer::checkpoint::load(&dir.join("checkpoint.bin")).unwrap()
}

fn run(args: &[&str]) {
    let o = trainer(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
}

#[test]
fn mnist_as_float_npy_with_no_scaling_gives_the_idx_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let m = mnist();
    let (train, test) = (dir.path().join("train.npy"), dir.path().join("test.npy"));
    write_npy(&train, &as_float(&m.train, 300)).unwrap();
    write_npy(&test, &as_float(&m.test, 80)).unwrap();
    let tiny = [
        "--train-limit",
        "300",
        "--test-limit",
        "80",
        "--threads",
        "1",
        "--epochs",
        "2",
        "--finetune-epochs",
        "1",
    ];
    let (a, b) = (dir.path().join("idx"), dir.path().join("npy"));
    let mut idx = vec!["train", "fc", "--out", a.to_str().unwrap()];
    idx.extend(tiny);
    run(&idx);
    let mut npy = vec![
        "train",
        "fc",
        "--out",
        b.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--test-data",
        test.to_str().unwrap(),
        "--scaling",
        "none",
    ];
    npy.extend(tiny);
    run(&npy);
    let (a, b) = (state(&a), state(&b));
    assert_eq!(a.model, b.model);
    let epochs = |s: &State| -> Vec<_> {
        s.history
            .iter()
            .map(|e| (e.phase.clone(), e.epoch, e.train_loss, e.val_mse, e.lr))
            .collect()
    };
    assert_eq!(epochs(&a), epochs(&b));
    // The npy run records its own files, with their hashes, and the shape of a flat sample.
    let record = b.config.data.unwrap();
    assert_eq!(record.shape, [PIXELS]);
    assert_eq!(record.scaling.kind.name(), "none");
    assert_eq!(
        record.train_files[0].sha256,
        trainer::data::sha256_hex(&std::fs::read(&train).unwrap())
    );
    assert_eq!(record.test_files[0].path, test);
}

#[test]
fn a_two_feature_toy_set_trains_and_holds_out_a_sixth_without_a_test_set() {
    let dir = tempfile::tempdir().unwrap();
    // Points near the line y = 2x - 1 (one degree of freedom): a 1-unit code can hold them.
    let mut csv = String::from("x,y\n");
    for i in 0..600 {
        let x = (i as f32 * 0.618_034).fract();
        let wobble = ((i * 7919) % 101) as f32 / 101.0 - 0.5;
        csv += &format!("{x},{}\n", 2.0 * x - 1.0 + 0.01 * wobble);
    }
    let data = dir.path().join("toy.csv");
    std::fs::write(&data, csv).unwrap();
    let spec = dir.path().join("toy.toml");
    std::fs::write(
        &spec,
        "name = \"toy\"\n[encoder]\nlayers = [{ dense = 8 }, { dense = 1 }]\nactivation = \"leaky_relu\"\ncode_activation = \"linear\"\n[decoder]\noutput_activation = \"linear\"\n[schedule]\nbatch = 32\nepochs = 60\nlearning_rate = 0.01\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    run(&[
        "train",
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let s = state(&out);
    let first = s.history.first().unwrap().val_mse;
    let last = s.history.last().unwrap().val_mse;
    assert!(last < first / 20.0, "validation MSE {first} -> {last}");
    assert!(last < 2e-3, "validation MSE {last} (minmax-scaled values in [0, 1])");
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["train_samples"], 500);
    assert_eq!(metrics["test_samples"], 100);
    assert!(
        metrics["validation"].as_str().unwrap().contains("held out with seed 0"),
        "{metrics}"
    );
    assert_eq!(metrics["scaling"], "minmax");
    let provenance = &metrics["provenance"];
    assert_eq!(provenance["trainer"], format!("trainer {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(provenance["data"][0]["role"], "train");
    assert_eq!(
        provenance["data"][0]["sha256"],
        trainer::data::sha256_hex(&std::fs::read(&data).unwrap())
    );
}

#[test]
fn data_that_does_not_fit_the_spec_or_cannot_be_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("flat.npy");
    write_npy(&flat, &Array2::<f32>::from_shape_fn((12, 5), |(i, j)| (i * j) as f32)).unwrap();
    let o = trainer(&[
        "train",
        "conv",
        "--data",
        flat.to_str().unwrap(),
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("conv: encoder.layers[0].conv: a convolution needs 2-D images"),
        "{}",
        text(&o)
    );
    let o = trainer(&["train", "fc", "--data", dir.path().join("none.npy").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("none.npy: no such file or directory"), "{}", text(&o));
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "1,2,3\n4,5\n").unwrap();
    let o = trainer(&[
        "train",
        "fc",
        "--data",
        ragged.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("ragged.csv: line 2 has 2 fields, expected 3"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("r").exists(), "nothing is written for bad data");
}

/// The int8/float ratio `trainer export` prints.
fn exported_ratio(run: &Path, model: &Path) -> f64 {
    let o = trainer(&["export", run.to_str().unwrap(), "--out", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let ratio = t.split("int8/float ").nth(1).and_then(|r| r.split(')').next()).unwrap();
    ratio.parse().unwrap_or_else(|_| panic!("{t}"))
}

#[test]
fn dense_models_of_other_data_export_with_int8_within_5_percent_of_float() {
    let dir = tempfile::tempdir().unwrap();
    // The example vibration windows: 64 float samples each, minmax-scaled.
    let config = trainer::data::vibration::VibrationConfig {
        train: 600,
        test: 200,
        ..Default::default()
    };
    let data = trainer::data::vibration::generate(&config);
    let npz = dir.path().join("vibration.npz");
    data.write_npz(&npz).unwrap();
    let spec = dir.path().join("vib.toml");
    std::fs::write(
        &spec,
        "name = \"vib\"\n[encoder]\nlayers = [{ dense = 16 }]\n[decoder]\ntied = true\n[schedule]\nbatch = 64\nepochs = 8\nfinetune_epochs = 4\n",
    )
    .unwrap();
    let run_dir = dir.path().join("vib");
    run(&[
        "train",
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        npz.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    // Exported from the run's recorded data, without --data.
    let model = dir.path().join("vib.aeq");
    let ratio = exported_ratio(&run_dir, &model);
    eprintln!("vibration 64-16-64: int8/float {ratio}");
    assert!(ratio <= 1.05, "vibration: int8/float {ratio}");
    let bytes = std::fs::read(&model).unwrap();
    let m = autoencoder_core::Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.input_shape(), [config.window as u32]);
    assert!(matches!(
        m.input_scaling(),
        autoencoder_core::model::InputScaling::MinMax { .. }
    ));
    let source: serde_json::Value = serde_json::from_str(m.source()).unwrap();
    assert_eq!(
        source["data"][0]["sha256"],
        trainer::data::sha256_hex(&std::fs::read(&npz).unwrap())
    );
    // eval reads the data the model names, without --data, and refuses it once it has changed.
    let o = trainer(&["eval", model.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["images"], 200);
    assert!(
        (eval["ratio"].as_f64().unwrap() - ratio).abs() < 1e-4,
        "{eval} vs {ratio}"
    );
    let mut changed = data.clone();
    changed.x_test[0] += 1.0;
    changed.write_npz(&npz).unwrap();
    let o = trainer(&["eval", model.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("vibration.npz: changed since the model was exported"),
        "{}",
        text(&o)
    );
    let inspect = text(&trainer(&["inspect", model.to_str().unwrap()]));
    assert!(
        inspect.contains("shape [64]") && inspect.contains("min-max"),
        "{inspect}"
    );

    // MNIST as float .npy (flat samples, no scaling).
    let m = mnist();
    let (train, test) = (dir.path().join("train.npy"), dir.path().join("test.npy"));
    write_npy(&train, &as_float(&m.train, 1000)).unwrap();
    write_npy(&test, &as_float(&m.test, 200)).unwrap();
    let run_dir = dir.path().join("fc");
    run(&[
        "train",
        "fc",
        "--data",
        train.to_str().unwrap(),
        "--test-data",
        test.to_str().unwrap(),
        "--scaling",
        "none",
        "--out",
        run_dir.to_str().unwrap(),
        "--threads",
        "1",
        "--epochs",
        "3",
        "--finetune-epochs",
        "2",
    ]);
    let ratio = exported_ratio(&run_dir, &dir.path().join("fc.aeq"));
    eprintln!("fc on float MNIST: int8/float {ratio}");
    assert!(ratio <= 1.05, "float MNIST: int8/float {ratio}");
}
