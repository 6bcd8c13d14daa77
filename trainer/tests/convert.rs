//! `trainer convert MODEL.aeq --tflite PREFIX` as a user runs it: two files and nothing else,
//! clear errors for what cannot be converted, no half-written output. (That the files compute
//! what the core computes is proven against TFLM itself in `host-tests/tests/tflm.rs`.)

use std::path::{Path, PathBuf};

mod common;
use common::{text, trainer, with_version};

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(format!("{name}.aeq"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn convert_writes_the_encoder_and_the_decoder_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("t16");
    let shipped = std::fs::read(model("topk16")).unwrap();
    let o = trainer(&[
        "convert",
        model("topk16").to_str().unwrap(),
        "--tflite",
        prefix.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(listing(dir.path()), ["t16.decoder.tflite", "t16.encoder.tflite"]);
    for part in ["encoder", "decoder"] {
        let bytes = std::fs::read(dir.path().join(format!("t16.{part}.tflite"))).unwrap();
        // A TFLite flatbuffer: the file identifier at bytes 4..8.
        assert_eq!(&bytes[4..8], b"TFL3", "{part}");
    }
    // The hard top-k is left to the caller, and the command says how to apply it.
    assert!(text(&o).contains("16 largest codes"), "{}", text(&o));
    assert_eq!(
        std::fs::read(model("topk16")).unwrap(),
        shipped,
        "the model file was touched"
    );
}

#[test]
fn convert_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A prefix in a directory that does not exist: an error naming the file, no file anywhere.
    let prefix = dir.path().join("missing/fc");
    let o = trainer(&[
        "convert",
        model("fc").to_str().unwrap(),
        "--tflite",
        prefix.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("fc.encoder.tflite"), "{}", text(&o));
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));

    // Not a model file.
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let prefix = dir.path().join("x");
    let o = trainer(&[
        "convert",
        readme.to_str().unwrap(),
        "--tflite",
        prefix.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("README.md"), "{}", text(&o));

    // A file of format version 1: the core's typed error, pointing at `trainer upgrade`.
    let mut old = std::fs::read(model("fc")).unwrap();
    with_version(&mut old, 1);
    let old_path = dir.path().join("old.aeq");
    std::fs::write(&old_path, &old).unwrap();
    let o = trainer(&[
        "convert",
        old_path.to_str().unwrap(),
        "--tflite",
        prefix.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("trainer upgrade"), "{}", text(&o));
    assert_eq!(listing(dir.path()), ["old.aeq"]);
}
