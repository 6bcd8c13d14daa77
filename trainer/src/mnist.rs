//! MNIST in IDX format (gzip-compressed or plain), checked before use.
//!
//! IDX: a big-endian u32 magic (`0x0000_08DD`: type u8, `DD` dimensions), one big-endian u32
//! per dimension, then the raw u8 data. Every error names the file and what is wrong with it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Pixels per image (D in the shape legend).
pub const PIXELS: usize = SIDE * SIDE;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// What can be wrong with an IDX file or the MNIST directory.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be read at all.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt or truncated gzip stream: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// Fewer bytes than the header needs.
    #[error("{path}: IDX header truncated: {found} bytes, the header needs {needed}")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Bytes present.
        found: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The magic number is not the one this kind of file must have.
    #[error("{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Magic read from the file.
        found: u32,
        /// Magic required.
        expected: u32,
        /// What the file should hold.
        what: &'static str,
    },
    /// A dimension other than the item count is not what MNIST has.
    #[error("{path}: item shape {found:?}, expected {expected:?}")]
    BadShape {
        /// The file.
        path: PathBuf,
        /// Item shape read from the header.
        found: Vec<usize>,
        /// Item shape required.
        expected: Vec<usize>,
    },
    /// The data is shorter than the header promises.
    #[error("{path}: data truncated: the header promises {expected} bytes of data, the file has {found}")]
    TruncatedData {
        /// The file.
        path: PathBuf,
        /// Data bytes promised by the header.
        expected: usize,
        /// Data bytes present.
        found: usize,
    },
    /// Bytes follow the data the header promises.
    #[error("{path}: {extra} unexpected bytes after the {expected} bytes of data the header promises")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Data bytes promised by the header.
        expected: usize,
        /// Bytes beyond them.
        extra: usize,
    },
    /// A label is not a digit.
    #[error("{path}: label {label} at index {index} is not a digit 0-9")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Index of the label.
        index: usize,
        /// The label's value.
        label: u8,
    },
    /// Images and labels files disagree on the count.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Images in it.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Labels in it.
        n_labels: usize,
    },
    /// Neither `name.gz` nor `name` exists in the directory.
    #[error("{dir}: neither {name}.gz nor {name} found (the bundled copy lives in data/mnist/)")]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// The IDX file's base name.
        name: &'static str,
    },
}

/// One split of MNIST: `n` images of [`PIXELS`] u8 pixels, row-major, and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// Pixels, `n * PIXELS` bytes.
    pub images: Vec<u8>,
    /// Labels 0-9, `n` bytes.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` images (all of them if `n` is larger).
    pub fn truncated(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.images.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }
}

/// MNIST's training and test splits.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: Split,
    /// 10,000 test images.
    pub test: Split,
}

impl Mnist {
    /// Loads the four standard files from `dir` (each as `name.gz` or plain `name`).
    pub fn load(dir: &Path) -> Result<Mnist, IdxError> {
        Ok(Mnist {
            train: load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?,
            test: load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?,
        })
    }
}

fn find(dir: &Path, name: &'static str) -> Result<PathBuf, IdxError> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    Err(IdxError::Missing {
        dir: dir.to_path_buf(),
        name,
    })
}

fn load_split(dir: &Path, images: &'static str, labels: &'static str) -> Result<Split, IdxError> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(IdxError::CountMismatch {
            images: images_path,
            n_images,
            labels: labels_path,
            n_labels: labels.len(),
        });
    }
    Ok(Split { images, labels })
}

/// Reads an IDX images file of 28x28 u8 images; returns the pixels, `count * 784` bytes.
pub fn read_images(path: &Path) -> Result<Vec<u8>, IdxError> {
    let bytes = read_file(path)?;
    parse_idx(path, &bytes, IMAGES_MAGIC, "u8 images, 3 dimensions", &[SIDE, SIDE])
}

/// Reads an IDX labels file; returns one byte per label, each checked to be 0-9.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    let bytes = read_file(path)?;
    let labels = parse_idx(path, &bytes, LABELS_MAGIC, "u8 labels, 1 dimension", &[])?;
    if let Some(index) = labels.iter().position(|&l| l > 9) {
        return Err(IdxError::BadLabel {
            path: path.to_path_buf(),
            index,
            label: labels[index],
        });
    }
    Ok(labels)
}

/// The file's bytes, gunzipped when it starts with the gzip magic.
fn read_file(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = fs::read(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 6);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|source| IdxError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Checks an IDX byte string and returns its data.
///
/// `item_shape` is every dimension after the first (the item count).
pub fn parse_idx(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
    item_shape: &[usize],
) -> Result<Vec<u8>, IdxError> {
    let path_buf = || path.to_path_buf();
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 4 {
        return Err(IdxError::TruncatedHeader {
            path: path_buf(),
            found: bytes.len(),
            needed: 4,
        });
    }
    let found = word(0);
    if found != magic {
        return Err(IdxError::BadMagic {
            path: path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(IdxError::TruncatedHeader {
            path: path_buf(),
            found: bytes.len(),
            needed: header,
        });
    }
    let dims: Vec<usize> = (0..ndims).map(|d| word(4 + 4 * d) as usize).collect();
    if dims[1..] != *item_shape {
        return Err(IdxError::BadShape {
            path: path_buf(),
            found: dims[1..].to_vec(),
            expected: item_shape.to_vec(),
        });
    }
    // Dimensions are u32 each; the product of at most three fits u64 and, on 64-bit hosts, usize.
    let expected = dims.iter().product::<usize>();
    let data = &bytes[header..];
    if data.len() < expected {
        return Err(IdxError::TruncatedData {
            path: path_buf(),
            expected,
            found: data.len(),
        });
    }
    if data.len() > expected {
        return Err(IdxError::TrailingBytes {
            path: path_buf(),
            expected,
            extra: data.len() - expected,
        });
    }
    Ok(data.to_vec())
}
