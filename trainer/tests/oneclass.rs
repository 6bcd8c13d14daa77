//! `trainer oneclass` on two digits with tiny limits: the summary's structure, AUROCs in
//! [0, 1], the int8 model's close to the float model's, finished digits reported again.

use std::path::Path;

mod common;
use common::{text, trainer};

fn oneclass(out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "oneclass",
        "--digits",
        "1,7",
        "--train-limit",
        "300",
        "--test-limit",
        "600",
        "--epochs",
        "8",
        "--calibration",
        "64",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = trainer(&args);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[test]
fn the_study_scores_each_digit_with_int8_float_and_pca() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("oneclass");
    let log = oneclass(&out, &[]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["network"], "784-128-128-16-128-128-784");
    assert_eq!(summary["pca_components"], 16);
    let digits = summary["digits"].as_array().unwrap();
    assert_eq!(
        digits.iter().map(|d| d["digit"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 7]
    );
    let mut sums = [0.0; 3];
    for d in digits {
        assert_eq!(d["train_samples"], 300, "{d}");
        assert_eq!(d["epochs"], 8, "{d}");
        assert_eq!(d["test_samples"], 600, "{d}");
        // Most of the first 600 test images are other digits: the anomalies.
        let anomalies = d["anomalies"].as_u64().unwrap();
        assert!((500..600).contains(&anomalies), "{d}");
        let [int8, float, pca] = ["auroc_int8", "auroc_float", "auroc_pca"].map(|k| d[k].as_f64().unwrap());
        for (i, a) in [int8, float, pca].into_iter().enumerate() {
            assert!((0.0..=1.0).contains(&a), "{d}");
            // Even eight epochs on 300 images tell a digit from the others.
            assert!(a > 0.8, "{d}");
            sums[i] += a;
        }
        assert!((int8 - float).abs() < 0.02, "int8 {int8} against float {float}");
        let run = out.join(format!("digit-{}", d["digit"]));
        for f in ["roc.png", "result.json", "metrics.json", "checkpoint.bin"] {
            assert!(run.join(f).is_file(), "{f}");
        }
        assert!(run.join(format!("oneclass-{}.aeq", d["digit"])).is_file());
    }
    let mean = summary["mean"]["int8"].as_f64().unwrap();
    assert!((mean - sums[0] / 2.0).abs() < 1e-12);
    assert!((summary["mean"]["pca"].as_f64().unwrap() - sums[2] / 2.0).abs() < 1e-12);
    assert_eq!(summary["targets"]["mean_auroc"], mean >= 0.95);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| digit | train | epochs | val MSE | AUROC int8 | AUROC float | AUROC PCA-16 | int8 − float |")
    );
    assert!(md.contains(&format!("| **mean** | | | | **{mean:.4}**")), "{md}");
    assert!(md.contains("Deep SVDD") && md.contains("at most 8 epochs"), "{md}");
    assert!(log.contains("digit 7: AUROC int8"), "{log}");

    // Run again: both digits are reported from their results, nothing is trained.
    let again = oneclass(&out, &[]);
    assert!(
        again.contains("digit 1: finished in") && !again.contains("epoch 1/8"),
        "{again}"
    );
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(second["digits"], summary["digits"]);
}

#[test]
fn bad_study_arguments_get_clear_errors() {
    for (args, message) in [
        (&["--digits", "1,1"][..], "--digits names 1 twice"),
        (&["--digits", "12"][..], "12 is not in 0..=9"),
        (&["--threads", "0"][..], "--threads must be at least 1"),
        (
            &["--data", "/nonexistent/mnist"][..],
            "/nonexistent/mnist: no such file or directory",
        ),
    ] {
        let mut all = vec!["oneclass"];
        all.extend_from_slice(args);
        let o = trainer(&all);
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(message), "{args:?}: {}", text(&o));
    }
}
