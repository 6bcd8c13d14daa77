//! `trainer encode` and `trainer reconstruct` run as a user runs them, held to the core: the
//! shipped `fc` model on the first 50 MNIST test images (u8 and f32 `.npy`, a CSV with labels)
//! gives exactly `Runner`'s codes and reconstructions, whatever the thread count; a model with
//! per-feature min-max input scaling gives exactly `encode_f32_into` and `reconstruct_f32_into`
//! on raw values; and every failure names its cause and leaves no file behind.

mod common;

use autoencoder_core::model::{encoded_len_bound, write, InputScaling, Quant};
use autoencoder_core::{pixel_to_code, Model, ModelError, Runner};
use common::{text, trainer};
use ndarray::{Array2, Array3, ArrayD};
use ndarray_npy::{read_npy, write_npy, NpzWriter};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tempfile::TempDir;
use trainer::data::{Element, Origin, Samples};
use trainer::infer::{self, InferError};

/// Samples in the tests: the first 50 MNIST test images.
const N: usize = 50;
const PIXELS: usize = 784;
/// `fc`'s code width.
const K: usize = 64;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fc() -> PathBuf {
    root().join("models/fc.aeq")
}

fn fc_bytes() -> Vec<u8> {
    std::fs::read(fc()).unwrap()
}

/// The first `N` MNIST test images, `N × 784` pixels.
fn images() -> &'static [u8] {
    static IMAGES: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let all = trainer::mnist::read_images(&root().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap();
        all[..N * PIXELS].to_vec()
    })
}

fn labels() -> Vec<u8> {
    let all = trainer::mnist::read_labels(&root().join("data/mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    all[..N].to_vec()
}

/// The images as a u8 `.npy` `(N, 28, 28)` and as f32 pixel values, flat, `(N, 784)`.
fn image_files(dir: &Path) -> (PathBuf, PathBuf) {
    let u8_path = dir.join("images_u8.npy");
    let f32_path = dir.join("images_f32.npy");
    write_npy(
        &u8_path,
        &Array3::from_shape_vec((N, 28, 28), images().to_vec()).unwrap(),
    )
    .unwrap();
    let floats = Array2::from_shape_fn((N, PIXELS), |(i, p)| f32::from(images()[i * PIXELS + p]));
    write_npy(&f32_path, &floats).unwrap();
    (u8_path, f32_path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the binary and expects success; returns what it printed.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let o = trainer(args);
    let t = text(&o);
    assert!(o.status.success(), "{args:?} failed: {t}");
    t
}

/// Runs the binary and expects failure; returns what it printed.
#[track_caller]
fn fails(args: &[&str]) -> String {
    let o = trainer(args);
    let t = text(&o);
    assert!(!o.status.success(), "{args:?} succeeded: {t}");
    t
}

#[track_caller]
fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: value {i}: got {g}, expected {w}");
    }
}

/// `scale * (q - zero_point)` in f32, as the command documents it.
fn dequantized(codes: &[i8], quant: Quant) -> Vec<f32> {
    codes
        .iter()
        .map(|&q| quant.scale * (i32::from(q) - quant.zero_point) as f32)
        .collect()
}

fn read_f32(path: &Path) -> ArrayD<f32> {
    read_npy(path).unwrap()
}

fn read_i8(path: &Path) -> ArrayD<i8> {
    read_npy(path).unwrap()
}

#[test]
fn codes_are_the_cores_u8_codes_dequantized_whatever_the_input_type_and_threads() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, f32_npy) = image_files(dir.path());
    let bytes = fc_bytes();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
    let mut want = vec![0i8; N * K];
    for (image, code) in images().chunks(PIXELS).zip(want.chunks_mut(K)) {
        runner.encode_u8_into(image, code).unwrap();
    }

    let codes = dir.path().join("codes.npy");
    let line = ok(&["encode", s(&fc()), "--data", s(&u8_npy), "--out", s(&codes)]);
    assert!(
        line.contains("encoded 50 samples of shape [28, 28]")
            && line.contains("[50, 64]")
            && line.contains("codes.npy"),
        "{line}"
    );
    let got = read_f32(&codes);
    assert_eq!(got.shape(), [N, K]);
    assert_bits(
        got.as_slice().unwrap(),
        &dequantized(&want, model.code_quant()),
        "codes",
    );

    // f32 pixel values (flat rows), one thread or three: the same file, byte for byte.
    for threads in ["1", "3"] {
        let other = dir.path().join(format!("codes_f32_{threads}.npy"));
        ok(&[
            "encode",
            s(&fc()),
            "--data",
            s(&f32_npy),
            "--out",
            s(&other),
            "--threads",
            threads,
        ]);
        assert_eq!(
            std::fs::read(&other).unwrap(),
            std::fs::read(&codes).unwrap(),
            "{threads} threads"
        );
    }

    // --int8: the codes themselves.
    for data in [&u8_npy, &f32_npy] {
        let raw = dir.path().join("codes_i8.npy");
        ok(&["encode", s(&fc()), "--data", s(data), "--out", s(&raw), "--int8"]);
        let got = read_i8(&raw);
        assert_eq!(got.shape(), [N, K]);
        assert_eq!(got.as_slice().unwrap(), want.as_slice(), "{}", data.display());
    }
}

#[test]
fn reconstructions_are_the_cores_in_raw_units_or_int8() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, f32_npy) = image_files(dir.path());
    let bytes = fc_bytes();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
    let mut want = vec![0f32; N * PIXELS];
    let mut want_int8 = vec![0i8; N * PIXELS];
    for ((image, out), out_int8) in images()
        .chunks(PIXELS)
        .zip(want.chunks_mut(PIXELS))
        .zip(want_int8.chunks_mut(PIXELS))
    {
        let pixels: Vec<f32> = image.iter().map(|&p| f32::from(p)).collect();
        runner.reconstruct_f32_into(&pixels, out).unwrap();
        let codes: Vec<i8> = image.iter().map(|&p| pixel_to_code(p)).collect();
        runner.reconstruct_into(&codes, out_int8).unwrap();
    }

    let out = dir.path().join("reconstructed.npy");
    let line = ok(&["reconstruct", s(&fc()), "--data", s(&u8_npy), "--out", s(&out)]);
    assert!(
        line.contains("reconstructed 50 samples") && line.contains("[50, 28, 28]"),
        "{line}"
    );
    let got = read_f32(&out);
    assert_eq!(got.shape(), [N, 28, 28]);
    assert_bits(got.as_slice().unwrap(), &want, "reconstructions");
    // In pixel units: the output codes are the pixels' (scale 1/255, zero point -128).
    let mean_error = got
        .iter()
        .zip(images())
        .map(|(&y, &p)| (y - f32::from(p)).abs())
        .sum::<f32>()
        / (N * PIXELS) as f32;
    assert!(mean_error < 40.0, "mean absolute error {mean_error} pixels");

    for threads in ["1", "2"] {
        let other = dir.path().join(format!("reconstructed_f32_{threads}.npy"));
        ok(&[
            "reconstruct",
            s(&fc()),
            "--data",
            s(&f32_npy),
            "--out",
            s(&other),
            "--threads",
            threads,
        ]);
        assert_eq!(
            std::fs::read(&other).unwrap(),
            std::fs::read(&out).unwrap(),
            "{threads} threads"
        );
    }

    for data in [&u8_npy, &f32_npy] {
        let raw = dir.path().join("reconstructed_i8.npy");
        ok(&["reconstruct", s(&fc()), "--data", s(data), "--out", s(&raw), "--int8"]);
        let got = read_i8(&raw);
        assert_eq!(got.shape(), [N, 28, 28]);
        assert_eq!(got.as_slice().unwrap(), want_int8.as_slice(), "{}", data.display());
    }
}

#[test]
fn a_model_with_min_max_input_scaling_runs_raw_values_through_it() {
    let dir = TempDir::new().unwrap();
    let bytes = fc_bytes();
    let fc_model = Model::from_bytes(&bytes).unwrap();
    let mut body = fc_model.to_owned_body().unwrap();
    // Raw values x = 0.5 p + 10 (p a pixel); offsets near 10 and divisors near 127.5, different
    // per feature, so that (x - offset) / divisor is close to p / 255 but not the same.
    let offset: Vec<f32> = (0..PIXELS).map(|i| 10.0 - (i % 5) as f32 * 0.25).collect();
    let divisor: Vec<f32> = (0..PIXELS).map(|i| 127.5 + (i % 3) as f32).collect();
    body.input_scaling = InputScaling::MinMax {
        offset: offset.clone().into(),
        divisor: divisor.clone().into(),
    };
    let mut file = vec![0u8; encoded_len_bound(&body)];
    let len = write(fc_model.kind(), &body, &mut file).unwrap();
    file.truncate(len);
    let model_path = dir.path().join("minmax.aeq");
    std::fs::write(&model_path, &file).unwrap();
    let model = Model::from_bytes(&file).unwrap();
    assert_eq!(model.input_scaling().name(), "min-max");

    let raw: Vec<f32> = images().iter().map(|&p| f32::from(p) * 0.5 + 10.0).collect();
    let data = dir.path().join("raw.npy");
    write_npy(&data, &Array3::from_shape_vec((N, 28, 28), raw.clone()).unwrap()).unwrap();

    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
    let mut codes = vec![0i8; N * K];
    let mut outputs = vec![0f32; N * PIXELS];
    for ((x, code), out) in raw
        .chunks(PIXELS)
        .zip(codes.chunks_mut(K))
        .zip(outputs.chunks_mut(PIXELS))
    {
        runner.encode_f32_into(x, code).unwrap();
        runner.reconstruct_f32_into(x, out).unwrap();
    }
    // The scaling is used: the unit-scaled model codes these raw values otherwise.
    let mut fc_scratch = vec![0i8; fc_model.scratch_len()];
    let mut fc_runner = Runner::new(fc_model.clone(), &mut fc_scratch).unwrap();
    let mut unit_code = vec![0i8; K];
    fc_runner.encode_f32_into(&raw[..PIXELS], &mut unit_code).unwrap();
    assert_ne!(unit_code, codes[..K]);

    let out = dir.path().join("codes.npy");
    ok(&["encode", s(&model_path), "--data", s(&data), "--out", s(&out)]);
    assert_bits(
        read_f32(&out).as_slice().unwrap(),
        &dequantized(&codes, model.code_quant()),
        "min-max codes",
    );
    let out = dir.path().join("reconstructed.npy");
    ok(&["reconstruct", s(&model_path), "--data", s(&data), "--out", s(&out)]);
    let got = read_f32(&out);
    assert_eq!(got.shape(), [N, 28, 28]);
    assert_bits(got.as_slice().unwrap(), &outputs, "min-max reconstructions");
    // The unscaling is used: the outputs are in raw units, 10 to 137.5.
    let mean = got.iter().sum::<f32>() / got.len() as f32;
    assert!((10.0..40.0).contains(&mean), "mean raw output {mean}");
}

#[test]
fn a_csv_with_a_label_column_runs_once_the_labels_are_set_aside() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, _) = image_files(dir.path());
    let rows = 3;
    let mut csv: String = (0..PIXELS).map(|i| format!("p{i},")).collect();
    csv.push_str("label\n");
    for (image, label) in images().chunks(PIXELS).zip(labels()).take(rows) {
        for p in image {
            csv.push_str(&format!("{p},"));
        }
        csv.push_str(&format!("{label}\n"));
    }
    let table = dir.path().join("digits.csv");
    std::fs::write(&table, csv).unwrap();
    let out = dir.path().join("codes.npy");

    // The label is one value too many: the shapes are named.
    let t = fails(&["encode", s(&fc()), "--data", s(&table), "--out", s(&out)]);
    assert!(
        t.contains("digits.csv") && t.contains("[785]") && t.contains("[28, 28]") && t.contains("fc.aeq"),
        "{t}"
    );
    assert!(!out.exists());

    ok(&[
        "encode",
        s(&fc()),
        "--data",
        s(&table),
        "--label-column",
        "label",
        "--out",
        s(&out),
    ]);
    let whole = dir.path().join("codes_npy.npy");
    ok(&["encode", s(&fc()), "--data", s(&u8_npy), "--out", s(&whole)]);
    let got = read_f32(&out);
    assert_eq!(got.shape(), [rows, K]);
    assert_bits(
        got.as_slice().unwrap(),
        &read_f32(&whole).as_slice().unwrap()[..rows * K],
        "CSV codes",
    );

    // A label column belongs to CSV files only.
    let t = fails(&[
        "encode",
        s(&fc()),
        "--data",
        s(&u8_npy),
        "--label-column",
        "label",
        "--out",
        s(&out),
    ]);
    assert!(t.contains("images_u8.npy") && t.contains("CSV files only"), "{t}");
}

#[test]
fn the_test_split_is_the_files_test_split_and_its_absence_is_named() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, _) = image_files(dir.path());
    let npz = dir.path().join("split.npz");
    let all = Array3::from_shape_vec((N, 28, 28), images().to_vec()).unwrap();
    let mut writer = NpzWriter::new(std::fs::File::create(&npz).unwrap());
    writer
        .add_array("x_train", &all.slice(ndarray::s![..10, .., ..]))
        .unwrap();
    writer
        .add_array("x_test", &all.slice(ndarray::s![10.., .., ..]))
        .unwrap();
    writer.finish().unwrap();

    let whole = dir.path().join("whole.npy");
    ok(&["encode", s(&fc()), "--data", s(&u8_npy), "--out", s(&whole), "--int8"]);
    let whole = read_i8(&whole);
    for (split, range) in [("train", 0..10), ("test", 10..N)] {
        let out = dir.path().join(format!("{split}.npy"));
        let line = ok(&[
            "encode",
            s(&fc()),
            "--data",
            s(&npz),
            "--split",
            split,
            "--out",
            s(&out),
            "--int8",
        ]);
        assert!(line.contains(&format!("x_{split}")), "{line}");
        assert_eq!(
            read_i8(&out).as_slice().unwrap(),
            &whole.as_slice().unwrap()[range.start * K..range.end * K],
            "{split}"
        );
    }

    let out = dir.path().join("none.npy");
    let t = fails(&[
        "reconstruct",
        s(&fc()),
        "--data",
        s(&u8_npy),
        "--split",
        "test",
        "--out",
        s(&out),
    ]);
    assert!(t.contains("images_u8.npy: no test split"), "{t}");
    let t = fails(&[
        "encode",
        s(&fc()),
        "--data",
        s(&u8_npy),
        "--split",
        "validation",
        "--out",
        s(&out),
    ]);
    assert!(t.contains("validation") && t.contains("train or test"), "{t}");
    assert!(!out.exists());
}

#[test]
fn samples_of_another_feature_count_are_refused_with_both_shapes() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("short.npy");
    write_npy(&data, &Array2::<f32>::zeros((5, 783))).unwrap();
    let out = dir.path().join("out.npy");
    for command in ["encode", "reconstruct"] {
        let t = fails(&[command, s(&fc()), "--data", s(&data), "--out", s(&out)]);
        assert!(
            t.contains("short.npy: samples of shape [783] (783 values) do not fit")
                && t.contains("fc.aeq, whose input has shape [28, 28] (784 values)"),
            "{t}"
        );
    }
    // Two image shapes must be equal, even with as many values.
    write_npy(&data, &Array3::<f32>::zeros((5, 14, 56))).unwrap();
    let t = fails(&["encode", s(&fc()), "--data", s(&data), "--out", s(&out)]);
    assert!(t.contains("[14, 56]") && t.contains("[28, 28]"), "{t}");
    assert!(!out.exists());
}

#[test]
fn a_nan_is_named_by_sample_and_feature() {
    let dir = TempDir::new().unwrap();
    let mut values: Vec<f32> = images().iter().map(|&p| f32::from(p)).collect();
    values[3 * PIXELS + 17] = f32::NAN;
    values[40 * PIXELS + 2] = f32::NAN;

    // From a file, the data reader refuses it first, by sample and feature.
    let data = dir.path().join("nan.npy");
    write_npy(&data, &Array2::from_shape_vec((N, PIXELS), values.clone()).unwrap()).unwrap();
    let out = dir.path().join("out.npy");
    let t = fails(&["encode", s(&fc()), "--data", s(&data), "--out", s(&out)]);
    assert!(t.contains("nan.npy: sample 3, feature 17"), "{t}");
    assert!(!out.exists());

    // Samples that were never checked: the core's NotANumber, with the sample, the first one
    // whatever the thread count.
    let samples = Samples::new(values, vec![28, 28], Element::F32, Origin::file("memory")).unwrap();
    let bytes = fc_bytes();
    let model = Model::from_bytes(&bytes).unwrap();
    for threads in [1, 2, 4] {
        let errors = [
            infer::encode(&model, &samples, threads).map(|_| ()),
            infer::reconstruct_int8(&model, &samples, threads).map(|_| ()),
            infer::reconstruct(&model, &samples, threads).map(|_| ()),
        ];
        for error in errors {
            let error = error.unwrap_err();
            assert!(
                matches!(
                    error,
                    InferError::Run {
                        sample: 3,
                        error: ModelError::NotANumber { index: 17 },
                        ..
                    }
                ),
                "{threads} threads: {error:?}"
            );
            assert_eq!(error.to_string(), "memory: sample 3: input value 17 is NaN");
        }
    }
}

#[test]
fn a_missing_or_corrupt_model_is_named_and_nothing_is_written() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, _) = image_files(dir.path());
    let out = dir.path().join("out.npy");
    let missing = dir.path().join("nope.aeq");
    let t = fails(&["encode", s(&missing), "--data", s(&u8_npy), "--out", s(&out)]);
    assert!(t.contains("nope.aeq: cannot read the model file"), "{t}");

    // An earlier output stays as it was.
    std::fs::write(&out, b"earlier").unwrap();
    let mut bytes = fc_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let corrupt = dir.path().join("corrupt.aeq");
    std::fs::write(&corrupt, &bytes).unwrap();
    let t = fails(&["reconstruct", s(&corrupt), "--data", s(&u8_npy), "--out", s(&out)]);
    assert!(t.contains("corrupt.aeq: model file is corrupt: stored CRC-32"), "{t}");

    let mut old = fc_bytes();
    common::with_version(&mut old, 2);
    let old_path = dir.path().join("old.aeq");
    std::fs::write(&old_path, &old).unwrap();
    let t = fails(&["encode", s(&old_path), "--data", s(&u8_npy), "--out", s(&out)]);
    assert!(
        t.contains("old.aeq: model format version 2") && t.contains("trainer upgrade"),
        "{t}"
    );

    let t = fails(&[
        "encode",
        s(&fc()),
        "--data",
        s(&dir.path().join("absent.npy")),
        "--out",
        s(&out),
    ]);
    assert!(t.contains("absent.npy: no such file or directory"), "{t}");
    assert_eq!(std::fs::read(&out).unwrap(), b"earlier");
}

#[test]
fn an_output_that_cannot_be_written_is_named() {
    let dir = TempDir::new().unwrap();
    let (u8_npy, _) = image_files(dir.path());
    let out = dir.path().join("no-such-dir").join("codes.npy");
    let t = fails(&["encode", s(&fc()), "--data", s(&u8_npy), "--out", s(&out)]);
    assert!(t.contains("no-such-dir/codes.npy: cannot write"), "{t}");
    assert!(!dir.path().join("no-such-dir").exists());
}
