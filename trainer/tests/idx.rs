//! The IDX reader against good, corrupt, truncated and wrong-magic files, plain and gzipped.

use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use trainer::mnist::{read_images, read_labels, IdxError, Mnist, PIXELS};

fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

fn images_file(n: u32) -> Vec<u8> {
    let mut v = header(0x803, &[n, 28, 28]);
    v.extend((0..n as usize * PIXELS).map(|i| (i % 251) as u8));
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn reads_plain_and_gzip_alike() {
    let dir = tempfile::tempdir().unwrap();
    let raw = images_file(3);
    let plain = read_images(&write(dir.path(), "a", &raw)).unwrap();
    let gz = read_images(&write(dir.path(), "a.gz", &gzip(&raw))).unwrap();
    assert_eq!(plain.len(), 3 * PIXELS);
    assert_eq!(plain, gz);
    assert_eq!(plain[..], raw[16..]);
}

#[test]
fn wrong_magic_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // A labels file passed as images.
    let mut labels = header(0x801, &[2]);
    labels.extend([1, 2]);
    let p = write(dir.path(), "labels-as-images", &labels);
    let e = read_images(&p).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("labels-as-images") && msg.contains("0x00000801"), "{msg}");
    // Random bytes.
    let e = read_labels(&write(dir.path(), "junk", b"hello world")).unwrap_err();
    assert!(matches!(e, IdxError::BadMagic { .. }), "{e}");
}

#[test]
fn truncated_header_and_data_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let raw = images_file(2);
    let e = read_images(&write(dir.path(), "h", &raw[..2])).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::TruncatedHeader {
                found: 2,
                needed: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = read_images(&write(dir.path(), "h2", &raw[..10])).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::TruncatedHeader {
                found: 10,
                needed: 16,
                ..
            }
        ),
        "{e}"
    );
    let e = read_images(&write(dir.path(), "d", &raw[..raw.len() - 1])).unwrap_err();
    assert!(
        matches!(e, IdxError::TruncatedData { expected, found, .. } if expected == 2 * PIXELS && found == 2 * PIXELS - 1),
        "{e}"
    );
    let mut long = raw.clone();
    long.push(0);
    let e = read_images(&write(dir.path(), "t", &long)).unwrap_err();
    assert!(matches!(e, IdxError::TrailingBytes { extra: 1, .. }), "{e}");
}

#[test]
fn wrong_dimensions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = header(0x803, &[1, 32, 32]);
    raw.extend(vec![0u8; 32 * 32]);
    let e = read_images(&write(dir.path(), "big", &raw)).unwrap_err();
    assert!(
        matches!(&e, IdxError::BadShape { found, .. } if found == &[32, 32]),
        "{e}"
    );
}

#[test]
fn corrupt_and_truncated_gzip_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip(&images_file(2));
    let e = read_images(&write(dir.path(), "cut.gz", &gz[..gz.len() / 2])).unwrap_err();
    assert!(matches!(e, IdxError::Gzip { .. }), "{e}");
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0xa5;
    }
    let e = read_images(&write(dir.path(), "bad.gz", &bad)).unwrap_err();
    assert!(matches!(e, IdxError::Gzip { .. }), "{e}");
    assert!(e.to_string().contains("bad.gz"));
}

#[test]
fn labels_must_be_digits_and_counts_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut labels = header(0x801, &[3]);
    labels.extend([1, 12, 3]);
    let e = read_labels(&write(dir.path(), "l", &labels)).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::BadLabel {
                index: 1,
                label: 12,
                ..
            }
        ),
        "{e}"
    );

    // A directory whose train split has 2 images but 3 labels.
    let d = dir.path().join("mnist");
    std::fs::create_dir(&d).unwrap();
    let mut three = header(0x801, &[3]);
    three.extend([1, 2, 3]);
    let mut two = header(0x801, &[2]);
    two.extend([1, 2]);
    write(&d, "train-images-idx3-ubyte", &images_file(2));
    write(&d, "train-labels-idx1-ubyte.gz", &gzip(&three));
    write(&d, "t10k-images-idx3-ubyte", &images_file(2));
    write(&d, "t10k-labels-idx1-ubyte", &two);
    let e = Mnist::load(&d).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::CountMismatch {
                n_images: 2,
                n_labels: 3,
                ..
            }
        ),
        "{e}"
    );
    // With the counts fixed the directory loads, mixing plain and gzip files.
    write(&d, "train-labels-idx1-ubyte.gz", &gzip(&two));
    let m = Mnist::load(&d).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (2, 2));
    // A missing file is named.
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap();
    let e = Mnist::load(&d).unwrap_err();
    assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
}

#[test]
fn the_bundled_mnist_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let m = Mnist::load(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!(m.train.images.len(), 60_000 * PIXELS);
    // The published first labels of each split.
    assert_eq!(m.train.labels[..5], [5, 0, 4, 1, 9]);
    assert_eq!(m.test.labels[..5], [7, 2, 1, 0, 4]);
    for d in 0..10u8 {
        assert!(m.test.labels.contains(&d));
    }
}
