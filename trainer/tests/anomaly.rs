//! The `anomaly` recipe as a user runs it: one-class training on a small labelled set with a
//! test split, the validation held out of the normal training samples, the spec it prints.

use std::path::Path;
use std::time::Instant;
use trainer::data::vibration::{generate, Vibration, VibrationConfig};
use trainer::train::{State, CHECKPOINT, HISTORY, METRICS};

mod common;
use common::{text, trainer};

/// 16-sample vibration windows: 300 healthy training windows plus the first 30 faulty test
/// windows, labelled, mixed into the training split (one-class training must drop them); 200
/// test windows, 30 % faulty.
fn data() -> Vibration {
    let mut v = generate(&VibrationConfig {
        window: 16,
        train: 300,
        test: 200,
        ..VibrationConfig::default()
    });
    let faulty: Vec<usize> = (0..v.test_len()).filter(|&i| v.y_test[i] != 0).take(30).collect();
    for &i in &faulty {
        v.x_train.extend_from_slice(&v.x_test[i * 16..(i + 1) * 16]);
        v.y_train.push(v.y_test[i]);
    }
    v
}

fn run(args: &[&str]) -> String {
    let o = trainer(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(METRICS)).unwrap()).unwrap()
}

/// The validation MSE of every epoch, from the history.
fn val_mses(dir: &Path) -> Vec<String> {
    let history = std::fs::read_to_string(dir.join(HISTORY)).unwrap();
    history
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().to_string())
        .collect()
}

#[test]
fn anomaly_trains_on_normal_samples_and_validates_on_a_holdout_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let npz = dir.path().join("vib.npz");
    data.write_npz(&npz).unwrap();
    let run_dir = dir.path().join("anomaly");
    let t0 = Instant::now();
    let log = run(&[
        "train",
        "anomaly",
        "--data",
        npz.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let seconds = t0.elapsed().as_secs_f64();
    eprintln!("anomaly on 250 windows of 16: {seconds:.1} s");
    assert!(seconds < 60.0, "{seconds} s");
    // 300 of the 330 are labelled 0; a sixth of those, 50, validate; the test split does not.
    assert!(
        log.contains("anomaly: one-class: training on the 300 of 330 training samples labelled 0 (normal), 50 of them held out for validation"),
        "{log}"
    );
    let m = metrics(&run_dir);
    assert_eq!(
        (m["train_samples"].as_u64(), m["test_samples"].as_u64()),
        (Some(250), Some(50))
    );
    assert_eq!(
        m["validation"],
        "a sixth of the normal training samples (label 0, or all when unlabelled), held out with seed 0; the test set is not used for validation"
    );
    assert_eq!(m["code_units"], 2);
    let epochs = m["epochs"]["train"].as_u64().unwrap();
    assert!((20..=500).contains(&epochs), "{m}");
    let vals = val_mses(&run_dir);
    let (first, last): (f64, f64) = (vals[0].parse().unwrap(), vals[vals.len() - 1].parse().unwrap());
    assert!(last < first / 2.0, "validation MSE {first} -> {last}");

    // The float model scores a healthy test window with a spike above the same window without:
    // the bottleneck does not pass what it has not seen. (The example's faults are too subtle
    // for the reconstruction error of such a small model: a clipped window, smoother than a
    // healthy one, reconstructs better.)
    let state: State = trainer::checkpoint::load(&run_dir.join(CHECKPOINT)).unwrap();
    let scaling = &state.config.data.as_ref().unwrap().scaling;
    let healthy: Vec<usize> = (0..data.test_len()).filter(|&i| data.y_test[i] == 0).collect();
    let mut x = Vec::new();
    for spike in [0.0, 3.0] {
        for (k, &i) in healthy.iter().enumerate() {
            let mut row = data.x_test[i * 16..(i + 1) * 16].to_vec();
            row[k % 16] += spike;
            scaling.apply_row(&mut row);
            x.extend(row);
        }
    }
    let scores: Vec<f64> = trainer::anomaly::float_scores(&state.model, &x)
        .into_iter()
        .map(f64::from)
        .collect();
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= healthy.len()).collect();
    let auroc = trainer::anomaly::auroc(&scores, &labels).unwrap();
    eprintln!("AUROC of spiked windows against the same windows: {auroc:.3}");
    assert!(auroc > 0.9, "AUROC {auroc}");

    // Another test set changes nothing about training: the same epochs, bit for bit.
    let mut other: Vibration = data.clone();
    other.x_test.iter_mut().for_each(|v| *v = -*v * 3.0);
    let other_npz = dir.path().join("other.npz");
    other.write_npz(&other_npz).unwrap();
    let again = dir.path().join("again");
    run(&[
        "train",
        "anomaly",
        "--data",
        npz.to_str().unwrap(),
        "--test-data",
        other_npz.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert_eq!(val_mses(&again), vals);
    assert_eq!(metrics(&again)["test_mse"], m["test_mse"]);

    // The spec `trainer spec anomaly` prints for this data trains the same run.
    let printed = run(&[
        "spec",
        "anomaly",
        "--input-width",
        "16",
        "--train-samples",
        "250",
        "--scaling",
        "minmax",
    ]);
    assert!(printed.contains("code c = clamp(round(N/8), 2, 16) = 2"), "{printed}");
    let spec = dir.path().join("anomaly.toml");
    std::fs::write(&spec, &printed).unwrap();
    let from_spec = dir.path().join("from-spec");
    run(&[
        "train",
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        npz.to_str().unwrap(),
        "--out",
        from_spec.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert_eq!(val_mses(&from_spec), vals);
    assert_eq!(metrics(&from_spec)["validation"], m["validation"]);
}

#[test]
fn anomaly_is_listed_its_rule_printed_and_bad_input_refused() {
    let list = run(&["list"]);
    assert!(list.lines().any(|l| l.starts_with("anomaly ")), "{list}");
    let rule = run(&["spec", "anomaly"]);
    assert!(
        rule.contains("hidden h = clamp(next power of two >= N/2, 32, 128)"),
        "{rule}"
    );
    assert!(rule.contains("epochs = clamp(ceil(8000 x 128 / n), 20, 500)"), "{rule}");
    // --input-width is the anomaly recipe's.
    let o = trainer(&["spec", "fc", "--input-width", "16"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--input-width applies to the anomaly recipe only"),
        "{}",
        text(&o)
    );
    let o = trainer(&["spec", "anomaly", "--input-width", "3"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("the anomaly recipe needs at least 4 features"),
        "{}",
        text(&o)
    );

    // Labelled training data without a normal sample is refused by name, before any training.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("all-faulty.csv");
    std::fs::write(&csv, "a,b,c,d,e,label\n1,2,3,4,5,1\n2,3,4,5,6,2\n3,4,5,6,7,1\n").unwrap();
    let o = trainer(&[
        "train",
        "anomaly",
        "--data",
        csv.to_str().unwrap(),
        "--label-column",
        "label",
        "--out",
        dir.path().join("run").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("all-faulty.csv: none of the 3 training samples is labelled 0"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("run").join(CHECKPOINT).exists());
    // Too few features for a bottleneck.
    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "1,2,3\n2,3,4\n3,4,5\n4,5,6\n").unwrap();
    let o = trainer(&[
        "train",
        "anomaly",
        "--data",
        narrow.to_str().unwrap(),
        "--out",
        dir.path().join("n").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("the anomaly recipe needs at least 4 features per sample"),
        "{}",
        text(&o)
    );
}
