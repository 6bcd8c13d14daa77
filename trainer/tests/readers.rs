//! The data readers (`trainer::data`) on good files of every format, element type and shape,
//! and on every kind of bad file; the scaling's arithmetic; the validation holdout; the file
//! hashes; the example vibration generator.

use flate2::write::GzEncoder;
use ndarray::{Array1, Array2, Array3, Array4, ShapeBuilder};
use ndarray_npy::{NpzWriter, WritableElement, WriteNpyExt};
use std::io::Write;
use std::path::{Path, PathBuf};
use trainer::data::vibration::{self, VibrationConfig};
use trainer::data::{
    check_compatible, holdout, holdout_indices, load, load_with_test, sha256_hex, DataError, Element, Format,
    LoadOptions, Samples, Scaling, ScalingKind,
};

// ---------------------------------------------------------------------------------------------
// Helpers: files written in the test.

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn no_options() -> LoadOptions {
    LoadOptions::default()
}

fn label_column(column: &str) -> LoadOptions {
    LoadOptions {
        label_column: Some(column.to_string()),
    }
}

fn npy<A: WritableElement, S: ndarray::Data<Elem = A>, D: ndarray::Dimension>(a: &ndarray::ArrayBase<S, D>) -> Vec<u8> {
    let mut bytes = Vec::new();
    a.write_npy(&mut bytes).unwrap();
    bytes
}

/// A `.npy` file with a header written by hand (for dtypes and orders the writer does not make).
fn npy_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b
}

/// An IDX file: magic for `code` and `dims.len()` dimensions, the dimensions, then `data`.
fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn load_err(path: &Path, options: &LoadOptions) -> DataError {
    match load(path, options) {
        Ok(l) => panic!("{} loaded: {:?}", path.display(), l.train.shape()),
        Err(e) => e,
    }
}

/// `e`'s message contains every one of `parts`.
fn says(e: &DataError, parts: &[&str]) {
    let msg = e.to_string();
    for part in parts {
        assert!(msg.contains(part), "{msg:?} does not say {part:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// IDX directories.

#[test]
fn an_idx_directory_of_any_shape_and_element_type() {
    let dir = tempfile::tempdir().unwrap();
    // idx4 f32 images 2×3×1, gzipped, with i32 labels; the test split plain u8 idx1 labels.
    let d = dir.path();
    let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    write(d, "train-images-idx4-ubyte.gz", &gzip(&idx(0x0D, &[2, 2, 3, 1], &data)));
    let labels: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
    write(d, "train-labels-idx1-ubyte", &idx(0x0C, &[2], &labels));
    write(d, "t10k-images-idx4-ubyte", &idx(0x0D, &[1, 2, 3, 1], &data[..24]));
    let loaded = load(d, &no_options()).unwrap();
    assert_eq!(Format::of(d).unwrap(), Format::IdxDir);
    let train = &loaded.train;
    assert_eq!((train.len(), train.shape(), train.features()), (2, &[2, 3, 1][..], 6));
    assert_eq!((train.values(), train.element()), (&values[..], Element::F32));
    assert_eq!(train.labels(), Some(&[7, -1][..]));
    assert_eq!(train.row(1), &values[6..]);
    let test = loaded.test.as_ref().unwrap();
    assert_eq!((test.len(), test.labels()), (1, None));
    let names: Vec<_> = loaded
        .files
        .iter()
        .map(|f| f.path.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "train-images-idx4-ubyte.gz",
            "train-labels-idx1-ubyte",
            "t10k-images-idx4-ubyte"
        ]
    );
}

#[test]
fn every_idx_element_type_reads_as_f32() {
    let cases: [(u8, Vec<u8>, Vec<f32>, Element); 6] = [
        (0x08, vec![0, 255, 7, 128], vec![0.0, 255.0, 7.0, 128.0], Element::U8),
        (0x09, vec![0, 255, 7, 128], vec![0.0, -1.0, 7.0, -128.0], Element::I8),
        (
            0x0B,
            [-300i16, 2, 0, 32767].iter().flat_map(|v| v.to_be_bytes()).collect(),
            vec![-300.0, 2.0, 0.0, 32767.0],
            Element::I16,
        ),
        (
            0x0C,
            [-70000i32, 2, 0, 1 << 24]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
            vec![-70000.0, 2.0, 0.0, 16777216.0],
            Element::I32,
        ),
        (
            0x0D,
            [0.1f32, -2.5, 0.0, 1e30].iter().flat_map(|v| v.to_be_bytes()).collect(),
            vec![0.1, -2.5, 0.0, 1e30],
            Element::F32,
        ),
        (
            0x0E,
            [0.1f64, -2.5, 0.0, 1e30].iter().flat_map(|v| v.to_be_bytes()).collect(),
            vec![0.1, -2.5, 0.0, 1e30],
            Element::F64,
        ),
    ];
    for (code, data, expected, element) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train-images-idx2-ubyte", &idx(code, &[2, 2], &data));
        let loaded = load(dir.path(), &no_options()).unwrap();
        assert_eq!(loaded.train.values(), expected, "type 0x{code:02x}");
        assert_eq!(loaded.train.element(), element);
        assert_eq!((loaded.train.shape(), loaded.test.is_none()), (&[2][..], true));
    }
}

#[test]
fn the_bundled_mnist_through_the_generic_reader_is_the_mnist_reader_s_bytes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let mnist = trainer::mnist::Mnist::load(&dir).unwrap();
    let loaded = load(&dir, &no_options()).unwrap();
    let test = loaded.test.as_ref().unwrap();
    for (samples, split) in [(&loaded.train, &mnist.train), (test, &mnist.test)] {
        assert_eq!(samples.element(), Element::U8);
        assert_eq!(samples.shape(), [28, 28]);
        assert_eq!(samples.len(), split.len());
        assert!(samples.values().iter().zip(&split.images).all(|(&v, &p)| v == p as f32));
        assert_eq!(samples.values().len(), split.images.len());
        let labels: Vec<i64> = split.labels.iter().map(|&l| l.into()).collect();
        assert_eq!(samples.labels(), Some(&labels[..]));
    }
    assert_eq!(loaded.files.len(), 4);
    assert_eq!(ScalingKind::default_for(loaded.train.element()), ScalingKind::Unit);
}

#[test]
fn bad_idx_directories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No training images.
    write(d, "t10k-images-idx3-ubyte", &idx(0x08, &[1, 2, 2], &[0; 4]));
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::NoIdxImages { .. }), "{e}");
    says(&e, &["train-images-idxN-ubyte"]);
    // A truncated IDX file.
    write(d, "train-images-idx3-ubyte", &idx(0x08, &[2, 2, 2], &[0; 7]));
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::Idx(idx::IdxError::TruncatedData { .. })), "{e}");
    says(&e, &["train-images-idx3-ubyte", "8 bytes", "7"]);
    // A corrupt gzip file.
    std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    let gz = gzip(&idx(0x08, &[2, 2, 2], &[3; 8]));
    write(d, "train-images-idx3-ubyte.gz", &gz[..gz.len() - 12]);
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::Idx(idx::IdxError::Gzip { .. })), "{e}");
    says(&e, &["train-images-idx3-ubyte.gz", "gzip"]);
    // A 1-D file as images; then a NaN.
    write(d, "train-images-idx3-ubyte.gz", &gzip(&idx(0x08, &[4], &[1; 4])));
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::OneDimensional { .. }), "{e}");
    let nan: Vec<u8> = [1.0f32, 2.0, f32::NAN, 4.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    write(d, "train-images-idx3-ubyte.gz", &gzip(&idx(0x0D, &[2, 1, 2], &nan)));
    let e = load_err(d, &no_options());
    says(
        &e,
        &[
            "train-images-idx3-ubyte.gz",
            "sample 1, feature 0 (index [1, 0, 0])",
            "NaN",
        ],
    );
    // Labels that count differently; training and test of different shapes.
    write(d, "train-images-idx3-ubyte.gz", &gzip(&idx(0x08, &[2, 2, 2], &[0; 8])));
    write(d, "train-labels-idx1-ubyte", &idx(0x08, &[3], &[1, 2, 3]));
    let e = load_err(d, &no_options());
    assert!(
        matches!(
            e,
            DataError::LabelCount {
                samples: 2,
                labels: 3,
                ..
            }
        ),
        "{e}"
    );
    says(
        &e,
        &[
            "train-labels-idx1-ubyte holds 3 labels",
            "train-images-idx3-ubyte.gz holds 2 samples",
        ],
    );
    std::fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
    assert_eq!(load(d, &no_options()).unwrap().test.unwrap().shape(), [2, 2]);
    write(d, "t10k-images-idx3-ubyte", &idx(0x08, &[1, 3, 2], &[0; 6]));
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::Incompatible { .. }), "{e}");
    says(
        &e,
        &[
            "t10k-images-idx3-ubyte) have shape [3, 2]",
            "train-images-idx3-ubyte.gz) have shape [2, 2]",
        ],
    );
    // Two candidates.
    write(d, "train-images-idx2-ubyte", &idx(0x08, &[1, 4], &[0; 4]));
    let e = load_err(d, &no_options());
    assert!(matches!(e, DataError::AmbiguousIdx { .. }), "{e}");
    // A label column is for CSV only.
    let e = load_err(d, &label_column("label"));
    assert!(matches!(e, DataError::LabelColumnNotCsv { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// .npy

#[test]
fn npy_of_every_dtype_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = |name: &str, bytes: Vec<u8>, shape: &[usize], element: Element, values: &[f32]| {
        let s = load(&write(d, name, &bytes), &no_options()).unwrap().train;
        assert_eq!((s.shape(), s.element(), s.values()), (shape, element, values), "{name}");
        assert!(s.labels().is_none());
    };
    let v = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    fn a<T>(v: Vec<T>) -> Array2<T> {
        Array2::from_shape_vec((2, 3), v).unwrap()
    }
    check("u8.npy", npy(&a(vec![0u8, 1, 2, 3, 4, 5])), &[3], Element::U8, &v);
    check(
        "i8.npy",
        npy(&a(vec![0i8, 1, 2, 3, 4, -5])),
        &[3],
        Element::I8,
        &[0.0, 1.0, 2.0, 3.0, 4.0, -5.0],
    );
    check("u16.npy", npy(&a(vec![0u16, 1, 2, 3, 4, 5])), &[3], Element::U16, &v);
    check("i16.npy", npy(&a(vec![0i16, 1, 2, 3, 4, 5])), &[3], Element::I16, &v);
    check("u32.npy", npy(&a(vec![0u32, 1, 2, 3, 4, 5])), &[3], Element::U32, &v);
    check("i32.npy", npy(&a(vec![0i32, 1, 2, 3, 4, 5])), &[3], Element::I32, &v);
    check("i64.npy", npy(&a(vec![0i64, 1, 2, 3, 4, 5])), &[3], Element::I64, &v);
    check("f32.npy", npy(&a(v.to_vec())), &[3], Element::F32, &v);
    check(
        "f64.npy",
        npy(&a(vec![0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0])),
        &[3],
        Element::F64,
        &v,
    );
    // Images: samples × H × W and samples × H × W × C.
    let img = Array3::from_shape_vec((1, 2, 3), v.to_vec()).unwrap();
    check("hw.npy", npy(&img), &[2, 3], Element::F32, &v);
    let rgb = Array4::from_shape_vec((2, 1, 1, 3), v.to_vec()).unwrap();
    check("hwc.NPY", npy(&rgb), &[1, 1, 3], Element::F32, &v);
    // Fortran order: the values come out row-major all the same.
    let fortran = Array2::from_shape_vec((2, 3).f(), vec![0.0f32, 3.0, 1.0, 4.0, 2.0, 5.0]).unwrap();
    let bytes = npy(&fortran);
    assert!(String::from_utf8_lossy(&bytes[..80]).contains("'fortran_order': True"));
    check("fortran.npy", bytes, &[3], Element::F32, &v);
    // Big-endian.
    let be: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
    let header = "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }";
    check("be.npy", npy_raw(header, &be), &[2], Element::F32, &v);
    let be: Vec<u8> = [0i16, 1, 2, 3, 4, 5].iter().flat_map(|x| x.to_be_bytes()).collect();
    let header = "{'descr': '>i2', 'fortran_order': False, 'shape': (6, 1), }";
    check("be16.npy", npy_raw(header, &be), &[1], Element::I16, &v);
}

#[test]
fn bad_npy_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = npy(&Array2::from_shape_vec((2, 2), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap());
    // Truncated data, a truncated header, no magic, extra bytes.
    let e = load_err(&write(d, "cut.npy", &good[..good.len() - 1]), &no_options());
    assert!(matches!(e, DataError::CorruptNpy { .. }), "{e}");
    says(&e, &["cut.npy", "corrupt or truncated", "promises 16 bytes", "has 15"]);
    let e = load_err(&write(d, "head.npy", &good[..20]), &no_options());
    says(&e, &["head.npy", "header truncated"]);
    let e = load_err(&write(d, "magic.npy", b"hello, world"), &no_options());
    says(&e, &["magic.npy", "no .npy magic"]);
    let mut long = good.clone();
    long.push(0);
    let e = load_err(&write(d, "long.npy", &long), &no_options());
    says(&e, &["long.npy", "promises 16 bytes", "has 17"]);
    // A header promising far more than the file holds is refused before anything is allocated.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000), }";
    let e = load_err(&write(d, "huge.npy", &npy_raw(header, &[0; 16])), &no_options());
    assert!(matches!(e, DataError::CorruptNpy { .. }), "{e}");
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }";
    let e = load_err(&write(d, "overflow.npy", &npy_raw(header, &[])), &no_options());
    says(&e, &["overflow.npy", "overflows"]);
    // Unsupported dtypes: bool, uint64, complex, strings, records.
    let bools = npy(&Array2::from_elem((2, 2), true));
    let e = load_err(&write(d, "bool.npy", &bools), &no_options());
    assert!(matches!(e, DataError::UnsupportedDtype { .. }), "{e}");
    says(&e, &["bool.npy", "unsupported dtype '|b1' (bool)"]);
    let e = load_err(&write(d, "u64.npy", &npy(&Array2::<u64>::zeros((2, 2)))), &no_options());
    says(&e, &["u64.npy", "'<u8' (uint64)"]);
    for (descr, name) in [("<c8", "complex64"), ("<U3", "unicode string"), ("|O", "Python object")] {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1, 1), }}");
        let e = load_err(&write(d, "odd.npy", &npy_raw(&header, &[0; 8])), &no_options());
        says(&e, &["odd.npy", &format!("'{descr}' ({name})")]);
    }
    let header = "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let e = load_err(&write(d, "rec.npy", &npy_raw(header, &[0; 8])), &no_options());
    says(&e, &["rec.npy", "structured dtype"]);
    // 1-D, 0-D, zero samples, zero features.
    let e = load_err(
        &write(d, "flat.npy", &npy(&Array1::from(vec![1.0f32, 2.0]))),
        &no_options(),
    );
    assert!(matches!(e, DataError::OneDimensional { .. }), "{e}");
    says(&e, &["flat.npy", "shape [2]", "samples × features"]);
    let e = load_err(&write(d, "scalar.npy", &npy(&ndarray::arr0(1.0f32))), &no_options());
    assert!(matches!(e, DataError::OneDimensional { .. }), "{e}");
    let e = load_err(
        &write(d, "empty.npy", &npy(&Array2::<f32>::zeros((0, 5)))),
        &no_options(),
    );
    assert!(matches!(e, DataError::NoSamples { .. }), "{e}");
    says(&e, &["empty.npy: zero samples"]);
    let e = load_err(
        &write(d, "narrow.npy", &npy(&Array2::<f32>::zeros((5, 0)))),
        &no_options(),
    );
    assert!(matches!(e, DataError::NoFeatures { .. }), "{e}");
    // NaN and Inf, placed.
    let mut a = Array3::<f64>::zeros((2, 2, 3));
    a[[1, 0, 2]] = f64::INFINITY;
    let e = load_err(&write(d, "inf.npy", &npy(&a)), &no_options());
    assert!(matches!(e, DataError::NonFinite { .. }), "{e}");
    says(
        &e,
        &["inf.npy: sample 1, feature 2 (index [1, 0, 2]): value inf is not finite"],
    );
    let mut a = Array2::<f32>::zeros((3, 2));
    a[[0, 1]] = f32::NAN;
    let e = load_err(&write(d, "nan.npy", &npy(&a)), &no_options());
    says(&e, &["nan.npy: sample 0, feature 1 (index [0, 1]): value NaN"]);
    let big = Array2::from_elem((1, 1), 1e39f64);
    let e = load_err(&write(d, "big.npy", &npy(&big)), &no_options());
    says(&e, &["big.npy", "value 1e39 is not finite"]);
}

// ---------------------------------------------------------------------------------------------
// .npz

fn npz_file(path: &Path, compressed: bool, add: impl FnOnce(&mut NpzWriter<std::fs::File>)) -> PathBuf {
    let file = std::fs::File::create(path).unwrap();
    let mut w = if compressed {
        NpzWriter::new_compressed(file)
    } else {
        NpzWriter::new(file)
    };
    add(&mut w);
    w.finish().unwrap();
    path.to_path_buf()
}

#[test]
fn npz_with_x_and_y_or_train_and_test_splits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = Array2::from_shape_vec((3, 2), vec![1u8, 2, 3, 4, 5, 6]).unwrap();
    for compressed in [false, true] {
        let p = npz_file(&d.join("xy.npz"), compressed, |w| {
            w.add_array("x", &x).unwrap();
            w.add_array("y", &Array1::from(vec![0i64, 1, 9])).unwrap();
        });
        let loaded = load(&p, &no_options()).unwrap();
        assert_eq!(loaded.train.values(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            (loaded.train.element(), loaded.train.labels()),
            (Element::U8, Some(&[0, 1, 9][..]))
        );
        assert!(loaded.test.is_none());
        assert_eq!(loaded.files.len(), 1);
    }
    let p = npz_file(&d.join("split.npz"), true, |w| {
        w.add_array("x_train", &Array3::<f32>::zeros((4, 2, 2))).unwrap();
        w.add_array("y_train", &Array2::<f64>::from_elem((4, 1), 2.0)).unwrap();
        w.add_array("x_test", &Array3::<f32>::ones((2, 2, 2))).unwrap();
        w.add_array("unrelated", &Array1::<f32>::zeros(3)).unwrap();
    });
    let loaded = load(&p, &no_options()).unwrap();
    assert_eq!((loaded.train.len(), loaded.train.shape()), (4, &[2, 2][..]));
    assert_eq!(loaded.train.labels(), Some(&[2, 2, 2, 2][..]));
    let test = loaded.test.unwrap();
    assert_eq!((test.len(), test.labels(), test.values()[0]), (2, None, 1.0));
    assert_eq!(test.origin().to_string(), format!("{}, array `x_test`", p.display()));
}

#[test]
fn bad_npz_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No x or x_train.
    let p = npz_file(&d.join("nox.npz"), false, |w| {
        w.add_array("images", &Array2::<f32>::zeros((2, 2))).unwrap();
        w.add_array("labels", &Array1::<i64>::zeros(2)).unwrap();
    });
    let e = load_err(&p, &no_options());
    assert!(matches!(e, DataError::MissingArray { .. }), "{e}");
    says(&e, &["nox.npz", "no array `x` or `x_train`", "images, labels"]);
    // Labels that count differently.
    let p = npz_file(&d.join("count.npz"), false, |w| {
        w.add_array("x", &Array2::<f32>::zeros((3, 2))).unwrap();
        w.add_array("y", &Array1::<i64>::zeros(2)).unwrap();
    });
    let e = load_err(&p, &no_options());
    assert!(
        matches!(
            e,
            DataError::LabelCount {
                samples: 3,
                labels: 2,
                ..
            }
        ),
        "{e}"
    );
    says(
        &e,
        &[
            "count.npz, array `y` holds 2 labels",
            "count.npz, array `x` holds 3 samples",
        ],
    );
    // Labels that are no integers, or not one per sample.
    let p = npz_file(&d.join("frac.npz"), false, |w| {
        w.add_array("x", &Array2::<f32>::zeros((2, 2))).unwrap();
        w.add_array("y", &Array1::from(vec![1.0f32, 0.5])).unwrap();
    });
    let e = load_err(&p, &no_options());
    says(&e, &["frac.npz, array `y`: label 1: label 0.5 is not an integer"]);
    let p = npz_file(&d.join("wide.npz"), false, |w| {
        w.add_array("x", &Array2::<f32>::zeros((2, 2))).unwrap();
        w.add_array("y", &Array2::<i64>::zeros((2, 2))).unwrap();
    });
    let e = load_err(&p, &no_options());
    assert!(matches!(e, DataError::LabelsShape { .. }), "{e}");
    // Training and test of different widths.
    let p = npz_file(&d.join("widths.npz"), false, |w| {
        w.add_array("x_train", &Array2::<f32>::zeros((2, 3))).unwrap();
        w.add_array("x_test", &Array2::<f32>::zeros((2, 4))).unwrap();
    });
    let e = load_err(&p, &no_options());
    assert!(matches!(e, DataError::Incompatible { .. }), "{e}");
    says(
        &e,
        &[
            "widths.npz, array `x_test`",
            "[4]",
            "widths.npz, array `x_train`",
            "[3]",
        ],
    );
    // An unsupported dtype or a 1-D array inside the archive names the array.
    let p = npz_file(&d.join("dtype.npz"), false, |w| {
        w.add_array("x", &Array2::<bool>::from_elem((2, 2), false)).unwrap();
    });
    says(
        &load_err(&p, &no_options()),
        &["dtype.npz, array `x`: unsupported dtype '|b1'"],
    );
    let p = npz_file(&d.join("flat.npz"), false, |w| {
        w.add_array("x_train", &Array1::<f32>::zeros(4)).unwrap();
    });
    says(
        &load_err(&p, &no_options()),
        &["flat.npz, array `x_train`", "samples × features"],
    );
    // Truncated, corrupted, or not a zip at all.
    let good = std::fs::read(npz_file(&d.join("good.npz"), true, |w| {
        w.add_array("x", &Array2::<f32>::from_elem((20, 20), 0.25)).unwrap();
    }))
    .unwrap();
    let e = load_err(&write(d, "cut.npz", &good[..good.len() / 2]), &no_options());
    assert!(matches!(e, DataError::CorruptNpz { .. }), "{e}");
    says(&e, &["cut.npz", "corrupt or truncated .npz"]);
    let mut bad = good.clone();
    for b in &mut bad[40..60] {
        *b ^= 0x5a;
    }
    let e = load_err(&write(d, "bad.npz", &bad), &no_options());
    assert!(
        matches!(e, DataError::CorruptNpz { .. } | DataError::CorruptNpy { .. }),
        "{e}"
    );
    says(&e, &["bad.npz"]);
    let e = load_err(&write(d, "text.npz", b"not a zip"), &no_options());
    assert!(matches!(e, DataError::CorruptNpz { .. }), "{e}");
    let e = load_err(&good_npz_with_bad_npy(d), &no_options());
    assert!(matches!(e, DataError::CorruptNpy { .. }), "{e}");
    says(&e, &["inner.npz, array `x`", "no .npy magic"]);
}

/// An archive whose `x.npy` is not a `.npy`.
fn good_npz_with_bad_npy(d: &Path) -> PathBuf {
    let path = d.join("inner.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("x.npy", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"certainly not numpy").unwrap();
    zip.finish().unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// .csv

#[test]
fn csv_with_and_without_header_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_header = write(d, "h.csv", b"a,b,label\n1,2.5,3\n-4,5e-1,0\n");
    let s = load(&with_header, &no_options()).unwrap().train;
    assert_eq!(
        (s.shape(), s.values()),
        (&[3][..], &[1.0, 2.5, 3.0, -4.0, 0.5, 0.0][..])
    );
    assert_eq!((s.element(), s.labels()), (Element::Text, None));
    assert_eq!(ScalingKind::default_for(s.element()), ScalingKind::MinMax);
    let s = load(&with_header, &label_column("label")).unwrap().train;
    assert_eq!((s.shape(), s.values()), (&[2][..], &[1.0, 2.5, -4.0, 0.5][..]));
    assert_eq!(s.labels(), Some(&[3, 0][..]));
    let s = load(&with_header, &label_column("a")).unwrap().train;
    assert_eq!(
        (s.values(), s.labels()),
        (&[2.5, 3.0, 0.5, 0.0][..], Some(&[1, -4][..]))
    );
    // An index works with a header too (a matching name would win).
    assert_eq!(
        load(&with_header, &label_column("2")).unwrap().train,
        load(&with_header, &label_column("label")).unwrap().train
    );

    let no_header = write(d, "n.csv", b"1, 2, 7\r\n\"3\",4,8.0\r\n");
    let s = load(&no_header, &no_options()).unwrap().train;
    assert_eq!((s.len(), s.features()), (2, 3));
    let s = load(&no_header, &label_column("2")).unwrap().train;
    assert_eq!((s.values(), s.labels()), (&[1.0, 2.0, 3.0, 4.0][..], Some(&[7, 8][..])));
    let s = load(&no_header, &label_column("0")).unwrap().train;
    assert_eq!(s.labels(), Some(&[1, 3][..]));
    // Values read back bit for bit from their shortest text.
    let values = [
        0.1f32,
        1.0 / 3.0,
        -2.5e-38,
        3.402_823_5e38,
        16_777_217.0,
        f32::MIN_POSITIVE,
    ];
    let text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let p = write(d, "bits.csv", format!("{}\n", text.join(",")).as_bytes());
    let s = load(&p, &no_options()).unwrap().train;
    assert!(s.values().iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn bad_csv_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = load_err(&write(d, "ragged.csv", b"a,b,c\n1,2,3\n4,5\n"), &no_options());
    assert!(
        matches!(
            e,
            DataError::Ragged {
                line: 3,
                found: 2,
                expected: 3,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["ragged.csv: line 3 has 2 fields, expected 3 (as on line 1)"]);
    let e = load_err(&write(d, "long.csv", b"1,2\n3,4,5\n"), &no_options());
    says(&e, &["long.csv: line 2 has 3 fields, expected 2"]);
    let e = load_err(&write(d, "words.csv", b"a,b\n1,2\n3,x7\n"), &no_options());
    assert!(matches!(e, DataError::NotNumeric { line: 3, .. }), "{e}");
    says(&e, &["words.csv: line 3, column 2 (\"b\"): \"x7\" is not a number"]);
    let e = load_err(&write(d, "empty-field.csv", b"1,2\n3,\n"), &no_options());
    says(
        &e,
        &["empty-field.csv: line 2, column 2 (index 1): \"\" is not a number"],
    );
    let e = load_err(&write(d, "nan.csv", b"a,b\n1,2\n3,NaN\n"), &no_options());
    assert!(matches!(e, DataError::NonFinite { .. }), "{e}");
    says(&e, &["nan.csv: line 3, column 2 (\"b\"): value \"NaN\" is not finite"]);
    let e = load_err(&write(d, "inf.csv", b"1,-inf\n"), &no_options());
    says(&e, &["inf.csv: line 1, column 2 (index 1): value \"-inf\""]);
    let e = load_err(&write(d, "range.csv", b"1,1e39\n"), &no_options());
    says(
        &e,
        &["range.csv: line 1, column 2 (index 1): value \"1e39\" is not finite"],
    );
    // Zero samples: an empty file, a header alone; zero features: the label column alone.
    for (name, text) in [("empty.csv", ""), ("header.csv", "a,b\n")] {
        let e = load_err(&write(d, name, text.as_bytes()), &no_options());
        assert!(matches!(e, DataError::NoSamples { .. }), "{e}");
        says(&e, &[name, "zero samples"]);
    }
    let e = load_err(&write(d, "one.csv", b"label\n1\n"), &label_column("label"));
    assert!(matches!(e, DataError::NoFeatures { .. }), "{e}");
    // Unknown label columns, labels that are no integers.
    let p = write(d, "labels.csv", b"a,b,label\n1,2,3\n4,5,x\n");
    let e = load_err(&p, &label_column("class"));
    assert!(matches!(e, DataError::UnknownLabelColumn { .. }), "{e}");
    says(&e, &["labels.csv: no label column \"class\"", "3 columns: a, b, label"]);
    let e = load_err(&p, &label_column("label"));
    assert!(matches!(e, DataError::BadLabel { .. }), "{e}");
    says(
        &e,
        &["labels.csv: line 3, column 3 (\"label\"): label \"x\" is not an integer"],
    );
    let e = load_err(&write(d, "nohead.csv", b"1,2\n"), &label_column("2"));
    says(
        &e,
        &["nohead.csv: no label column \"2\": the file has no header: give a 0-based column index below 2"],
    );
    let e = load_err(&write(d, "nohead.csv", b"1,2\n"), &label_column("label"));
    assert!(matches!(e, DataError::UnknownLabelColumn { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Paths, formats, test files, hashes.

#[test]
fn missing_paths_and_unknown_formats_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(&dir.path().join("nothing.npz"), &no_options());
    assert!(matches!(e, DataError::Missing { .. }), "{e}");
    says(&e, &["nothing.npz: no such file or directory"]);
    let e = load_err(&write(dir.path(), "data.parquet", b"PAR1"), &no_options());
    assert!(matches!(e, DataError::UnknownFormat { .. }), "{e}");
    says(&e, &["data.parquet: unknown data format", ".npy, .npz or .csv"]);
    let e = load_err(&write(dir.path(), "noextension", b"1,2"), &no_options());
    assert!(matches!(e, DataError::UnknownFormat { .. }), "{e}");
    let e = load_with_test(
        &write(dir.path(), "ok.csv", b"1,2\n"),
        &dir.path().join("gone.csv"),
        &no_options(),
    );
    assert!(matches!(e, Err(DataError::Missing { .. })));
}

#[test]
fn a_separate_test_file_must_have_the_training_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = write(d, "train.csv", b"a,b,label\n1,2,0\n3,4,0\n");
    let test = write(d, "test.npy", &npy(&Array2::<f32>::ones((5, 2))));
    // Without a label column the CSV has 3 features, the test file 2.
    let e = load_with_test(&train, &test, &no_options()).unwrap_err();
    assert!(matches!(e, DataError::Incompatible { .. }), "{e}");
    says(&e, &["test.npy", "[2]", "train.csv", "[3]", "must match"]);
    let test = write(d, "test.csv", b"a,b,label\n5,6,1\n");
    let loaded = load_with_test(&train, &test, &label_column("label")).unwrap();
    let t = loaded.test.as_ref().unwrap();
    assert_eq!((t.values(), t.labels()), (&[5.0, 6.0][..], Some(&[1][..])));
    assert_eq!(loaded.files.len(), 2);
    // An archive with its own test split gives that split.
    let npz = npz_file(&d.join("both.npz"), false, |w| {
        w.add_array("x_train", &Array2::<f32>::zeros((3, 2))).unwrap();
        w.add_array("x_test", &Array2::<f32>::ones((1, 2))).unwrap();
    });
    let loaded = load_with_test(&train, &npz, &label_column("label"));
    assert!(matches!(loaded, Err(DataError::LabelColumnNotCsv { .. })));
    let plain = write(d, "plain.csv", b"1,2\n3,4\n");
    let loaded = load_with_test(&plain, &npz, &no_options()).unwrap();
    assert_eq!(loaded.test.unwrap().values(), [1.0, 1.0]);
    check_compatible(&loaded.train, &loaded.train).unwrap();
}

#[test]
fn every_file_read_is_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = [
        write(d, "a.csv", b"1,2\n"),
        write(d, "b.npy", &npy(&Array2::<u8>::zeros((1, 2)))),
        npz_file(&d.join("c.npz"), true, |w| {
            w.add_array("x", &Array2::<f32>::zeros((1, 2))).unwrap()
        }),
    ];
    for path in &files {
        let loaded = load(path, &no_options()).unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(loaded.files.len(), 1);
        let f = &loaded.files[0];
        assert_eq!(
            (&f.path, f.bytes, &f.sha256),
            (path, bytes.len() as u64, &sha256_hex(&bytes))
        );
        assert_eq!(f.sha256.len(), 64);
    }
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // The IDX files as stored, gzip and all.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let loaded = load(&dir, &no_options()).unwrap();
    for f in &loaded.files {
        assert!(f.path.to_string_lossy().ends_with(".gz"));
        assert_eq!(f.sha256, sha256_hex(&std::fs::read(&f.path).unwrap()));
    }
    let json = serde_json::to_string(&loaded.files[0]).unwrap();
    assert!(json.contains("\"sha256\""), "{json}");
}

/// Every prefix and many corruptions of good files of every format load or fail cleanly.
#[test]
fn no_input_makes_a_reader_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let npz_path = npz_file(&d.join("src.npz"), false, |w| {
        w.add_array("x_train", &Array2::<f32>::ones((2, 3))).unwrap();
        w.add_array("y_train", &Array1::<i64>::zeros(2)).unwrap();
    });
    let sources: [(&str, Vec<u8>); 4] = [
        ("f.npy", npy(&Array2::<i16>::ones((3, 2)))),
        ("f.npz", std::fs::read(npz_path).unwrap()),
        ("f.csv", b"a,b,label\n1,2,0\n\"3\",4,1\n".to_vec()),
        (
            "train-images-idx2-ubyte.gz",
            gzip(&idx(0x0B, &[2, 2], &[0, 1, 0, 2, 0, 3, 0, 4])),
        ),
    ];
    let mut outcomes = [0usize; 2];
    for (name, bytes) in &sources {
        let sub = d.join(format!("case-{name}"));
        std::fs::create_dir(&sub).unwrap();
        let target = if name.contains("idx") {
            sub.clone()
        } else {
            sub.join(name)
        };
        let options = if name.ends_with(".csv") {
            label_column("label")
        } else {
            no_options()
        };
        let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0xa5] {
                let mut v = bytes.clone();
                v[i] ^= flip;
                variants.push(v);
            }
        }
        for v in variants {
            write(&sub, name, &v);
            outcomes[usize::from(load(&target, &options).is_ok())] += 1;
        }
    }
    assert!(outcomes[0] > 1000 && outcomes[1] > 10, "{outcomes:?}");
}

// ---------------------------------------------------------------------------------------------
// Scaling.

fn samples(values: Vec<f32>, features: usize) -> Samples {
    Samples::new(values, vec![features], Element::F32, trainer::data::Origin::file("t")).unwrap()
}

#[test]
fn errors_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<DataError>();
    send_sync::<Samples>();
    send_sync::<Scaling>();
}

#[test]
fn scaling_kinds_parse_and_print() {
    for (name, kind) in [
        ("unit", ScalingKind::Unit),
        ("minmax", ScalingKind::MinMax),
        ("standard", ScalingKind::Standard),
        ("none", ScalingKind::None),
    ] {
        assert_eq!(name.parse::<ScalingKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), name);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
    }
    let e = "MinMax".parse::<ScalingKind>().unwrap_err();
    says(
        &e,
        &["unknown scaling \"MinMax\": expected unit, minmax, standard or none"],
    );
    assert_eq!(ScalingKind::default_for(Element::U8), ScalingKind::Unit);
    for e in [
        Element::I8,
        Element::U16,
        Element::I64,
        Element::F32,
        Element::F64,
        Element::Text,
    ] {
        assert_eq!(ScalingKind::default_for(e), ScalingKind::MinMax, "{e}");
    }
}

#[test]
fn each_scaling_kind_fits_what_it_says() {
    // Two features over three samples: (1, 10), (3, 10), (8, 10); the second is constant.
    let train = samples(vec![1.0, 10.0, 3.0, 10.0, 8.0, 10.0], 2);
    let (unit, warnings) = Scaling::fit(ScalingKind::Unit, &train).unwrap();
    assert_eq!(
        (unit.offset, unit.divisor, warnings.len()),
        (vec![0.0; 2], vec![255.0; 2], 0)
    );
    let (none, warnings) = Scaling::fit(ScalingKind::None, &train).unwrap();
    assert_eq!(
        (none.offset, none.divisor, warnings.len()),
        (vec![0.0; 2], vec![1.0; 2], 0)
    );
    let (minmax, warnings) = Scaling::fit(ScalingKind::MinMax, &train).unwrap();
    assert_eq!(
        (&minmax.offset[..], &minmax.divisor[..]),
        (&[1.0, 10.0][..], &[7.0, 1.0][..])
    );
    assert_eq!(warnings.len(), 1);
    assert_eq!((warnings[0].feature, warnings[0].value), (1, 10.0));
    assert_eq!(
        warnings[0].to_string(),
        "feature 1 holds 10 in every training sample: its divisor is set to 1 (it scales to 0)"
    );
    let (standard, warnings) = Scaling::fit(ScalingKind::Standard, &train).unwrap();
    // mean 4, population variance ((9 + 1 + 16) / 3).
    let std = (26.0f64 / 3.0).sqrt() as f32;
    assert_eq!(
        (&standard.offset[..], &standard.divisor[..]),
        (&[4.0, 10.0][..], &[std, 1.0][..])
    );
    assert_eq!(warnings.len(), 1);
    // Applied: minmax maps the training range onto [0, 1], the constant feature onto 0.
    let mut s = train.clone();
    minmax.apply(&mut s).unwrap();
    assert_eq!(s.values(), [0.0, 0.0, 2.0 / 7.0, 0.0, 1.0, 0.0]);
    // Fit on the training samples only: test values outside their range leave [0, 1].
    let mut test = samples(vec![15.0, 12.0], 2);
    minmax.apply(&mut test).unwrap();
    assert_eq!(test.values(), [2.0, 2.0]);
    // Of another width: refused.
    let mut wide = samples(vec![1.0; 3], 3);
    let e = minmax.apply(&mut wide).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::ScalingWidth {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    // Kept in a checkpoint.
    let json = serde_json::to_string(&standard).unwrap();
    assert!(
        json.starts_with("{\"kind\":\"standard\",\"offset\":[4.0,10.0],\"divisor\":["),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Scaling>(&json).unwrap(), standard);
    // minmax and standard need samples.
    let empty = samples(vec![], 2);
    assert!(matches!(
        Scaling::fit(ScalingKind::MinMax, &empty),
        Err(DataError::NoSamples { .. })
    ));
    assert!(Scaling::fit(ScalingKind::Unit, &empty).is_ok());
}

#[test]
fn standard_scaling_is_computed_in_f64() {
    // Large values with a small spread: f32 sums would lose it.
    let n = 1000;
    let values: Vec<f32> = (0..n).map(|i| 1.0e6 + (i % 2) as f32).collect();
    let (s, warnings) = Scaling::fit(ScalingKind::Standard, &samples(values, 1)).unwrap();
    assert!(warnings.is_empty());
    assert_eq!((s.offset[0], s.divisor[0]), (1_000_000.5, 0.5));
}

#[test]
fn scaling_is_one_f32_subtraction_then_one_f32_division() {
    // Unit over all 256 bytes: exactly MNIST's `p as f32 / 255.0`.
    let bytes: Vec<f32> = (0..=255u8).map(f32::from).collect();
    let mut s = samples(bytes.clone(), 256);
    let (unit, _) = Scaling::fit(ScalingKind::Unit, &s).unwrap();
    unit.apply(&mut s).unwrap();
    for (p, v) in (0..=255u8).zip(s.values()) {
        assert_eq!(v.to_bits(), (p as f32 / 255.0).to_bits(), "byte {p}");
        assert_eq!(unit.apply_value(p as usize, p as f32).to_bits(), v.to_bits());
    }
    // Every kind, awkward values: bit for bit `(x - offset) / divisor`, never a fused or
    // reordered form.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        f32::from_bits(((rng >> 40) as u32) | 0x3f80_0000) * 1000.0 - 1500.0
    };
    let f = 7;
    let train = samples((0..50 * f).map(|_| next()).collect(), f);
    let test = samples((0..20 * f).map(|_| next()).collect(), f);
    for kind in ScalingKind::ALL {
        let (scaling, _) = Scaling::fit(kind, &train).unwrap();
        let mut scaled = test.clone();
        scaling.apply(&mut scaled).unwrap();
        for (row, (raw, out)) in test.rows().zip(scaled.rows()).enumerate() {
            for i in 0..f {
                let diff = raw[i] - scaling.offset[i];
                let expected = diff / scaling.divisor[i];
                assert_eq!(
                    out[i].to_bits(),
                    expected.to_bits(),
                    "{kind}: sample {row}, feature {i}"
                );
                let restored = scaling.restore_value(i, out[i]);
                assert!((restored - raw[i]).abs() <= 1e-3 * raw[i].abs().max(1.0));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation holdout.

#[test]
fn holdout_sizes_order_and_determinism() {
    for n in 2..40 {
        let held = holdout_indices(n, 5).unwrap();
        assert_eq!(held.len(), (n / 6).max(1), "n = {n}");
        assert!(held.windows(2).all(|w| w[0] < w[1]) && held.iter().all(|&i| i < n));
        assert_eq!(holdout_indices(n, 5).unwrap(), held);
    }
    assert!(holdout_indices(1, 0).is_none() && holdout_indices(0, 0).is_none());
    // The seed picks the sixth; the stream is pinned (Cargo.lock pins rand and rand_chacha).
    let a = holdout_indices(600, 1).unwrap();
    assert_ne!(a, holdout_indices(600, 2).unwrap());
    assert_eq!(holdout_indices(12, 0).unwrap(), holdout_indices(12, 0).unwrap());

    let values: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let s = samples(values, 2)
        .with_labels((0..12).collect(), trainer::data::Origin::file("l"))
        .unwrap();
    let (train, validation) = holdout(&s, 9).unwrap();
    assert_eq!((train.len(), validation.len()), (10, 2));
    let held = holdout_indices(12, 9).unwrap();
    let labels: Vec<i64> = held.iter().map(|&i| i as i64).collect();
    assert_eq!(validation.labels(), Some(&labels[..]));
    assert_eq!(validation.row(0), s.row(held[0]));
    let kept: Vec<i64> = train.labels().unwrap().to_vec();
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
    assert!(kept.iter().all(|l| !labels.contains(l)));
    assert_eq!(holdout(&s, 9).unwrap(), (train, validation));
    let one = s.truncated(1);
    let e = holdout(&one, 9).unwrap_err();
    assert!(matches!(e, DataError::TooFewToHoldOut { n: 1, .. }), "{e}");
    says(&e, &["at least 2 training samples, there are 1"]);
}

// ---------------------------------------------------------------------------------------------
// Samples.

#[test]
fn samples_check_their_layout() {
    let at = || trainer::data::Origin::file("s");
    let e = Samples::new(vec![0.0; 5], vec![2], Element::F32, at()).unwrap_err();
    assert!(matches!(e, DataError::Layout { values: 5, .. }), "{e}");
    assert!(matches!(
        Samples::new(vec![], vec![0], Element::F32, at()),
        Err(DataError::NoFeatures { .. })
    ));
    assert!(matches!(
        Samples::new(vec![1.0], vec![], Element::F32, at()),
        Err(DataError::OneDimensional { .. })
    ));
    let huge = vec![usize::MAX, 3];
    assert!(matches!(
        Samples::new(vec![], huge, Element::F32, at()),
        Err(DataError::Layout { .. })
    ));
    let s = Samples::new((0..6).map(|i| i as f32).collect(), vec![1, 3], Element::I16, at()).unwrap();
    assert_eq!((s.len(), s.features(), s.rows().count()), (2, 3, 2));
    let e = s.clone().with_labels(vec![1], at()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelCount {
                samples: 2,
                labels: 1,
                ..
            }
        ),
        "{e}"
    );
    let t = s.clone().with_labels(vec![4, 5], at()).unwrap().truncated(1);
    assert_eq!(
        (t.len(), t.values(), t.labels()),
        (1, &[0.0, 1.0, 2.0][..], Some(&[4][..]))
    );
    assert_eq!(
        s.select(&[1, 1, 0]).values(),
        [3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
    );
    assert_eq!(s.clone().truncated(10), s);
}

// ---------------------------------------------------------------------------------------------
// The example vibration data.

fn small() -> VibrationConfig {
    VibrationConfig {
        train: 300,
        test: 600,
        ..VibrationConfig::default()
    }
}

#[test]
fn the_vibration_generator_is_deterministic() {
    let config = small();
    config.check().unwrap();
    let a = vibration::generate(&config);
    assert_eq!(a, vibration::generate(&config));
    assert_eq!((a.x_train.len(), a.x_test.len()), (300 * 64, 600 * 64));
    assert!(a.y_train.iter().all(|&y| y == vibration::HEALTHY));
    let b = vibration::generate(&VibrationConfig {
        seed: 2,
        ..config.clone()
    });
    assert_ne!(a.x_train, b.x_train);
    // Each split has its own stream: the test split does not move with the training size.
    let c = vibration::generate(&VibrationConfig {
        train: 17,
        ..config.clone()
    });
    assert_eq!((c.x_test, c.y_test), (a.x_test.clone(), a.y_test.clone()));
    // 30 % faulty, evenly over the three kinds.
    for label in vibration::FAULTS {
        assert_eq!(a.y_test.iter().filter(|&&y| y == label).count(), 60, "fault {label}");
    }
    assert!(a.x_test.iter().chain(&a.x_train).all(|v| v.is_finite()));
    // Bad configurations are refused.
    for bad in [
        VibrationConfig {
            rate: 400.0,
            ..config.clone()
        },
        VibrationConfig {
            window: 4,
            ..config.clone()
        },
        VibrationConfig {
            fault_fraction: 1.5,
            ..config.clone()
        },
        VibrationConfig {
            noise: 0.0,
            ..config.clone()
        },
        VibrationConfig {
            test: 0,
            ..config.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

#[test]
fn vibration_faults_carry_energy_comparable_to_the_noise() {
    let config = small();
    let data = vibration::generate(&config);
    let l = data.window;
    let noise_energy = config.noise * config.noise * l as f64;
    let mut per_kind = [(0.0f64, 0usize, 0.0f64); 4];
    let windows = data.x_test.chunks_exact(l).zip(data.x_test_healthy.chunks_exact(l));
    for ((faulty, healthy), &label) in windows.zip(&data.y_test) {
        let energy: f64 = faulty.iter().zip(healthy).map(|(a, b)| f64::from(a - b).powi(2)).sum();
        let k = &mut per_kind[label as usize];
        *k = (k.0 + energy, k.1 + 1, k.2.max(energy));
    }
    assert_eq!(per_kind[0].0, 0.0, "healthy windows are unchanged");
    for (label, &(sum, count, max)) in per_kind.iter().enumerate().skip(1) {
        let mean = sum / count as f64 / noise_energy;
        let max = max / noise_energy;
        // Comparable to the noise: drawn from 1 to 3 times its energy (a dropout's at most the
        // target, in whole samples), on average between 0.8 and 3 times it, never more than 3.5
        // times it; and never nothing.
        assert!(
            (0.8..=3.0).contains(&mean),
            "fault {label}: mean energy {mean:.3} of the noise's"
        );
        assert!(
            max <= 3.5,
            "fault {label}: a window with {max:.3} of the noise's energy"
        );
    }
    // The windows' own energy dwarfs both: the faults hide in the signal.
    let signal: f64 = data.x_train.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / data.train_len() as f64;
    assert!(
        signal > 5.0 * noise_energy,
        "signal {signal:.1}, noise {noise_energy:.1}"
    );
}

#[test]
fn vibration_files_load_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = VibrationConfig {
        train: 40,
        test: 30,
        ..VibrationConfig::default()
    };
    let data = vibration::generate(&config);
    let paths = data.write_all(&dir.path().join("vibration")).unwrap();
    let npz = load(&paths[0], &no_options()).unwrap();
    let test = npz.test.as_ref().unwrap();
    assert_eq!((npz.train.shape(), npz.train.element()), (&[64][..], Element::F32));
    assert_eq!(
        (npz.train.values(), test.values()),
        (&data.x_train[..], &data.x_test[..])
    );
    assert_eq!(
        (npz.train.labels(), test.labels()),
        (Some(&data.y_train[..]), Some(&data.anomaly_test()[..]))
    );
    // The files' test labels are the anomaly labels: 1 for every fault.
    assert!(data
        .anomaly_test()
        .iter()
        .zip(&data.y_test)
        .all(|(&a, &fault)| a == i64::from(fault != vibration::HEALTHY)));
    let csv = load_with_test(&paths[1], &paths[2], &label_column("label")).unwrap();
    assert_eq!(csv.train.values(), npz.train.values());
    assert_eq!(csv.test.as_ref().unwrap().values(), test.values());
    assert_eq!(csv.test.as_ref().unwrap().labels(), test.labels());
    assert_eq!(csv.files.len(), 2);
    let head = std::fs::read_to_string(&paths[1]).unwrap();
    assert!(head.starts_with("s0,s1,s2,"), "{}", &head[..20]);
    assert!(head.lines().next().unwrap().ends_with(",s63,label"));
}
