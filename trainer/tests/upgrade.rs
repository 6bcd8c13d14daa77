//! `trainer upgrade`: shipped models hold exactly what the current rules derive, an older file
//! is migrated without retraining, and bad input is refused without touching anything.

use autoencoder_core::model::FORMAT_VERSION;
use std::path::{Path, PathBuf};
use trainer::quantize::{QLayer, Quantized};
use trainer::upgrade::{read_any_version, rederive, upgrade, BodyV3, Changes, LegacyBody, UpgradeError};

mod common;
use common::{text, trainer, with_version};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "aeq"))
        .collect();
    v.sort();
    assert!(v.len() >= 14, "shipped models missing: {v:?}");
    v
}

fn test_images() -> Vec<u8> {
    trainer::mnist::Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist"))
        .unwrap()
        .test
        .images
}

#[test]
fn every_shipped_model_holds_what_the_rules_derive() {
    for path in shipped() {
        let (mut q, version) = read_any_version(&path).unwrap();
        assert_eq!(version, autoencoder_core::model::FORMAT_VERSION, "{}", path.display());
        let changes = rederive(&mut q).unwrap();
        assert_eq!(changes, Changes::default(), "{} is stale", path.display());
    }
}

/// A model as format versions 1 and 2 held it: the same layers, no source, shape or scaling.
fn legacy(q: &Quantized) -> LegacyBody {
    LegacyBody {
        name: q.name.clone(),
        float_test_mse: q.float_test_mse,
        input: q.input,
        code_after: q.code_after,
        layers: q.layers.clone(),
    }
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `fc` as it was shipped in format 1: entry 106 of its first LeakyReLU table was 127 (the f32
/// rule); the upgrade restores TFLM's 126 and reproduces the shipped model (but for the source,
/// which names version 1) and golden vectors.
#[test]
fn a_version_1_file_upgrades_to_the_shipped_one() {
    let (q, _) = read_any_version(&models_dir().join("fc.aeq")).unwrap();
    let QLayer::Table { table, .. } = &q.layers[1] else {
        panic!("fc's layer 1 is not a LeakyReLU table: {:?}", q.layers[1]);
    };
    assert_eq!(table[106 + 128], 126);
    let mut old_q = legacy(&q);
    if let QLayer::Table { table, .. } = &mut old_q.layers[1] {
        table[106 + 128] = 127;
    }
    let old = old_q.file(q.model_kind(), 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("fc.aeq");
    std::fs::write(&input, &old).unwrap();
    // The core refuses it, naming both versions and the command.
    let refused = autoencoder_core::Model::from_bytes(&old).unwrap_err().to_string();
    assert!(
        refused.contains("version 1") && refused.contains("trainer upgrade"),
        "{refused}"
    );

    let r = upgrade(&input, &input, &test_images()).unwrap();
    assert_eq!((r.from_version, r.to_version), (1, FORMAT_VERSION));
    assert_eq!(
        r.changes,
        Changes {
            multipliers: 0,
            table_entries: 1
        }
    );
    assert!(r.bytes_changed);
    let (upgraded, version) = read_any_version(&input).unwrap();
    assert_eq!(version, FORMAT_VERSION);
    assert_eq!(upgraded.source, r#"{"upgraded_from":1}"#);
    let mut want = q.clone();
    want.source = upgraded.source.clone();
    assert_eq!(upgraded, want);
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fc.golden.json")).unwrap()).unwrap();
    let shipped_golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models_dir().join("fc.golden.json")).unwrap()).unwrap();
    assert_eq!(golden, shipped_golden);
    // Nothing else is left in the directory.
    assert_eq!(names(dir.path()), ["fc.aeq", "fc.golden.json"]);
}

/// Every shipped model as a version 2 file (as it was shipped before version 3) and as a
/// version 3 file (before version 4) upgrades to exactly the shipped file and golden vectors:
/// MNIST's shape and scaling, the model's own input quantization, every weight and derived value
/// unchanged, so the same codes and outputs; the anomaly score's requantization derived from the
/// scales, and no threshold.
#[test]
fn version_2_and_3_files_upgrade_to_the_shipped_files() {
    let images = test_images();
    let dir = tempfile::tempdir().unwrap();
    for path in shipped() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let shipped_bytes = std::fs::read(&path).unwrap();
        let (q, _) = read_any_version(&path).unwrap();
        // The tutorial's models were shipped in version 2; the anomaly model of the example
        // vibration data came later, with a threshold.
        let mnist = q.input_shape.as_slice() == [28, 28];
        if mnist {
            assert_eq!(q.source, r#"{"upgraded_from":2}"#, "{name}");
            assert_eq!(q.anomaly.threshold, None, "{name}");
        } else {
            assert!(q.anomaly.threshold.is_some(), "{name}");
        }
        // (Version 3 had no threshold, so the anomaly model has no older file to come from.)
        let versions: &[u16] = if mnist { &[2, 3] } else { &[] };
        // A file of the current version upgrades to itself, golden vectors included.
        let file = dir.path().join(&name);
        std::fs::write(&file, &shipped_bytes).unwrap();
        let r = upgrade(&file, &file, &images).unwrap();
        assert!(!r.bytes_changed, "{name}");
        assert!(
            std::fs::read(&file).unwrap() == shipped_bytes,
            "{name}: upgraded in place"
        );
        assert_eq!(
            std::fs::read_to_string(trainer::export::golden_path(&file)).unwrap(),
            std::fs::read_to_string(trainer::export::golden_path(&path)).unwrap(),
            "{name}: the golden vectors"
        );
        for &version in versions {
            let old = if version == 2 {
                legacy(&q).file(q.model_kind(), 2)
            } else {
                v3(&q).file(q.model_kind())
            };
            let refused = autoencoder_core::Model::from_bytes(&old).unwrap_err();
            assert_eq!(
                refused,
                autoencoder_core::ModelError::UnsupportedVersion {
                    found: version,
                    supported: FORMAT_VERSION
                },
                "{name}"
            );
            assert!(refused.to_string().contains("trainer upgrade"), "{name}: {refused}");
            let file = dir.path().join(&name);
            std::fs::write(&file, &old).unwrap();
            let r = upgrade(&file, &file, &images).unwrap();
            assert_eq!((r.from_version, r.to_version), (version, FORMAT_VERSION), "{name}");
            assert_eq!(r.changes, Changes::default(), "{name}");
            assert!(
                std::fs::read(&file).unwrap() == shipped_bytes,
                "{name}: the file upgraded from version {version} differs from the shipped one"
            );
            let golden = std::fs::read_to_string(trainer::export::golden_path(&file)).unwrap();
            let shipped_golden = std::fs::read_to_string(trainer::export::golden_path(&path)).unwrap();
            assert_eq!(golden, shipped_golden, "{name}: the golden vectors");
            // Read back: the input as it was (MNIST's for the tutorial's models), the file's own
            // quantization.
            let (upgraded, _) = read_any_version(&file).unwrap();
            assert_eq!(upgraded.input_shape, q.input_shape, "{name}");
            assert_eq!(upgraded.input_scaling, q.input_scaling, "{name}");
            if mnist {
                assert_eq!(
                    upgraded.input_scaling,
                    autoencoder_core::model::InputScaling::Unit,
                    "{name}"
                );
            }
            assert_eq!(upgraded.input, q.input, "{name}");
            let output = upgraded.quant_after(upgraded.layers.len());
            assert_eq!(
                upgraded.anomaly,
                autoencoder_core::model::Anomaly::derive(upgraded.input, output).unwrap(),
                "{name}"
            );
        }
    }
}

/// The version 3 body of a model: everything but the anomaly field.
fn v3(q: &Quantized) -> BodyV3 {
    BodyV3 {
        name: q.name.clone(),
        source: q.source.clone(),
        float_test_mse: q.float_test_mse,
        input_shape: q.input_shape.clone(),
        input_scaling: q.input_scaling.clone(),
        input: q.input,
        code_after: q.code_after,
        layers: q.layers.clone(),
    }
}

/// A fused model's negative side is recomputed; weights, biases, scales and the float MSE stay.
#[test]
fn upgrade_keeps_weights_and_recomputes_the_negative_side() {
    let path = models_dir().join("l1.aeq");
    let (q, _) = read_any_version(&path).unwrap();
    let mut stale = q.clone();
    let mut fused = 0;
    for layer in &mut stale.layers {
        if let QLayer::FullyConnectedLeakyRelu {
            negative_multipliers, ..
        }
        | QLayer::Conv2dLeakyRelu {
            negative_multipliers, ..
        } = layer
        {
            negative_multipliers[0] += 1000;
            fused += 1;
        }
    }
    assert!(fused > 0, "l1 has no fused layer");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.aeq");
    let out = dir.path().join("out.aeq");
    std::fs::write(&input, stale.to_bytes().unwrap()).unwrap();
    let r = upgrade(&input, &out, &test_images()).unwrap();
    assert_eq!(r.changes.multipliers, fused);
    let (upgraded, _) = read_any_version(&out).unwrap();
    assert_eq!(upgraded, q);
    // The input was not touched, and the golden vectors went beside the output.
    assert_eq!(read_any_version(&input).unwrap().0, stale);
    assert!(dir.path().join("out.golden.json").is_file());
}

#[test]
fn bad_files_get_typed_errors_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let images = test_images();
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let out = dir.path().join("out.aeq");
    assert!(matches!(
        upgrade(&readme, &out, &images),
        Err(UpgradeError::NotAModel { .. })
    ));
    let mut fc = std::fs::read(models_dir().join("fc.aeq")).unwrap();
    with_version(&mut fc, 9);
    let future = dir.path().join("future.aeq");
    std::fs::write(&future, &fc).unwrap();
    let e = upgrade(&future, &out, &images).unwrap_err();
    assert!(matches!(e, UpgradeError::UnknownVersion { found: 9, .. }), "{e}");
    assert!(e.to_string().contains("newer"), "{e}");
    let mut corrupt = std::fs::read(models_dir().join("fc.aeq")).unwrap();
    corrupt[100] ^= 1;
    let corrupt_path = dir.path().join("corrupt.aeq");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let e = upgrade(&corrupt_path, &out, &images).unwrap_err();
    assert!(e.to_string().contains("CRC-32"), "{e}");
    let missing = dir.path().join("missing.aeq");
    assert!(matches!(
        upgrade(&missing, &out, &images),
        Err(UpgradeError::Read { .. })
    ));
    // An output directory that does not exist: an error, and no file anywhere.
    let nowhere = dir.path().join("no/such/dir/fc.aeq");
    let e = upgrade(&models_dir().join("fc.aeq"), &nowhere, &images).unwrap_err();
    assert!(matches!(e, UpgradeError::Write { .. }), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!out.exists());

    // From the command line: the error names the file and the problem, exit status non-zero.
    let o = trainer(&["upgrade", readme.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("is not a model file"), "{}", text(&o));
    let o = trainer(&["upgrade", future.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("version 9"), "{}", text(&o));
    assert!(!out.exists());
}
