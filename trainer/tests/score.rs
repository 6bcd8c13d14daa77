//! `trainer export --threshold-fpr` and `trainer score` from the command line: the threshold is
//! stored and shown, flags the fraction of normal samples asked for, and `score` reports what
//! the scores separate, with the float model from the run; bad input is named.

use std::path::{Path, PathBuf};

mod common;
use common::{text, trainer};

fn ok(args: &[&str]) -> String {
    let o = trainer(args);
    assert!(o.status.success(), "trainer {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small vibration set (normal training windows in a CSV, so validation is held out of them;
/// a labelled test split in an .npz), a model trained on it, exported with a threshold.
struct Fixture {
    dir: tempfile::TempDir,
    npz: PathBuf,
    run: PathBuf,
    model: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = trainer::data::vibration::VibrationConfig {
        window: 16,
        train: 600,
        test: 300,
        ..Default::default()
    };
    let data = trainer::data::vibration::generate(&config);
    let npz = dir.path().join("vib.npz");
    data.write_npz(&npz).unwrap();
    let csv = dir.path().join("train.csv");
    data.write_csv(&csv, false).unwrap();
    let spec = dir.path().join("vib.toml");
    std::fs::write(
        &spec,
        "name = \"vib\"\n[encoder]\nlayers = [{ dense = 8 }, { dense = 4 }]\nactivation = \"relu\"\n\
         code_activation = \"linear\"\n[decoder]\noutput_activation = \"linear\"\n[schedule]\nbatch = 64\nepochs = 6\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--spec",
        s(&spec),
        "--data",
        s(&csv),
        "--label-column",
        "label",
        "--scaling",
        "standard",
        "--out",
        s(&run),
        "--threads",
        "1",
    ]);
    let model = dir.path().join("vib.aeq");
    let out = ok(&["export", s(&run), "--out", s(&model), "--threshold-fpr", "0.05"]);
    // 100 held-out windows (a sixth of 600): at most 5 flagged.
    assert!(
        out.contains("anomaly threshold") && out.contains("of 100 held-out normal training samples"),
        "{out}"
    );
    Fixture { dir, npz, run, model }
}

#[test]
fn export_stores_the_threshold_and_score_reports_both_models() {
    let f = fixture();
    let bytes = std::fs::read(&f.model).unwrap();
    let model = autoencoder_core::Model::from_bytes(&bytes).unwrap();
    let stored = model.body().anomaly.threshold.expect("a threshold");
    assert_eq!(stored.false_positive_rate, 0.05);
    let inspect = ok(&["inspect", s(&f.model)]);
    assert!(
        inspect.contains(&format!("anomaly: threshold {}", stored.score)),
        "{inspect}"
    );

    // Scored on the held-out normal windows again (the same data, split and seed as the run's
    // validation): the threshold flags at most 5 % of them, and exactly those above it.
    let data = trainer::data::Dataset::reload(&{
        let state = trainer::export::load_run(&f.run).unwrap();
        state.config.data.unwrap()
    })
    .unwrap();
    let held_out: Vec<u32> = trainer::anomaly::int8_scores(&model, &data.test, 1).unwrap();
    let flagged = held_out.iter().filter(|&&x| x > stored.score).count();
    assert!(flagged <= 5, "{flagged} of 100 flagged");
    // It is the smallest such threshold: one step lower flags more than 5.
    assert!(held_out.iter().filter(|&&x| x >= stored.score).count() > 5);

    // `score` on the labelled test split: the float model comes from the run the model names.
    let csv = f.dir.path().join("scores.csv");
    let figures = f.dir.path().join("fig");
    let line = ok(&[
        "score",
        s(&f.model),
        "--data",
        s(&f.npz),
        "--scores",
        s(&csv),
        "--figures",
        s(&figures),
        "--threads",
        "2",
    ]);
    assert_eq!(line.lines().count(), 1, "{line}");
    let j: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(j["samples"], 300);
    assert_eq!(j["anomalies"], 90);
    assert_eq!(j["threshold"], stored.score);
    for key in [
        "auroc",
        "average_precision",
        "precision",
        "recall",
        "false_positive_rate",
        "float_auroc",
        "float_average_precision",
        "float_threshold",
        "float_precision",
        "float_recall",
        "float_false_positive_rate",
    ] {
        let v = j[key].as_f64().unwrap_or_else(|| panic!("{key} missing: {j}"));
        assert!(v.is_finite() && v >= 0.0, "{key}: {v}");
    }
    // The CSV holds every sample; its flags are score > threshold; recall and the false
    // positive rate recount from it.
    let rows: Vec<Vec<String>> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 300);
    let (mut tp, mut fp, mut anomalies) = (0, 0, 0);
    for r in &rows {
        let score: u32 = r[2].parse().unwrap();
        let flagged = r[3] == "1";
        assert_eq!(flagged, score > stored.score, "{r:?}");
        let anomaly = r[1] == "1";
        anomalies += usize::from(anomaly);
        tp += usize::from(anomaly && flagged);
        fp += usize::from(!anomaly && flagged);
        assert!(r[4].parse::<f32>().unwrap() >= 0.0);
    }
    assert_eq!(anomalies, 90);
    assert_eq!(j["recall"].as_f64().unwrap(), tp as f64 / 90.0);
    assert_eq!(j["false_positive_rate"].as_f64().unwrap(), fp as f64 / 210.0);
    for png in ["roc.png", "scores.png"] {
        let bytes = std::fs::read(figures.join(png)).unwrap();
        assert_eq!(&bytes[..4], b"\x89PNG", "{png}");
    }

    // Without labels (the training CSV read without its label column would fail the width, so
    // use the npz's training split): only the count.
    let line = ok(&["score", s(&f.model), "--data", s(&f.npz), "--split", "train"]);
    let j: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(j["samples"], 600);
    assert_eq!(j["anomalies"], 0);
    assert!(j.get("auroc").is_none(), "{j}");

    // A model exported without the flag holds no threshold, and still scores.
    let plain = f.dir.path().join("plain.aeq");
    ok(&["export", s(&f.run), "--out", s(&plain)]);
    let bytes = std::fs::read(&plain).unwrap();
    let m = autoencoder_core::Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.threshold(), None);
    assert!(ok(&["inspect", s(&plain)]).contains("anomaly: no threshold"));
    let line = ok(&["score", s(&plain), "--data", s(&f.npz), "--run", s(&f.run)]);
    let j: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(j["threshold"].is_null() && j.get("precision").is_none(), "{j}");
    assert!(
        j["auroc"].as_f64().is_some() && j["float_auroc"].as_f64().is_some(),
        "{j}"
    );
}

#[test]
fn bad_input_is_named() {
    let f = fixture();
    let dir = f.dir.path();
    // Another width: both widths named.
    let wide = trainer::data::vibration::generate(&trainer::data::vibration::VibrationConfig {
        window: 20,
        train: 50,
        test: 20,
        ..Default::default()
    });
    let wide_npz = dir.join("wide.npz");
    wide.write_npz(&wide_npz).unwrap();
    let o = trainer(&["score", s(&f.model), "--data", s(&wide_npz)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("(20 values)") && text(&o).contains("(16 values)"),
        "{}",
        text(&o)
    );
    // A label other than 0 and 1: the value and the row.
    let csv = dir.join("labels.csv");
    let mut table: String = (0..16).map(|i| format!("s{i},")).collect::<String>() + "label\n";
    for label in [0, 1, 3] {
        table += &"0.5,".repeat(16);
        table += &format!("{label}\n");
    }
    std::fs::write(&csv, table).unwrap();
    let o = trainer(&["score", s(&f.model), "--data", s(&csv), "--label-column", "label"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("label 3 in row 2"), "{}", text(&o));
    // An empty file.
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let o = trainer(&["score", s(&f.model), "--data", s(&empty)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("empty.csv"), "{}", text(&o));
    // A rate outside [0, 1).
    let o = trainer(&[
        "export",
        s(&f.run),
        "--out",
        s(&dir.join("x.aeq")),
        "--threshold-fpr",
        "1.5",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--threshold-fpr 1.5"), "{}", text(&o));
    assert!(!dir.join("x.aeq").exists());
    // --figures where the labels hold one class (the training split: all normal).
    let o = trainer(&[
        "score",
        s(&f.model),
        "--data",
        s(&f.npz),
        "--split",
        "train",
        "--figures",
        s(dir),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("only one class"), "{}", text(&o));
    // A --run that holds no run.
    let o = trainer(&["score", s(&f.model), "--data", s(&f.npz), "--run", s(dir)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no trained run there"), "{}", text(&o));
}
