//! IDX files (the format of MNIST), gzip-compressed or plain, checked before use: one reader
//! for the trainer, the host tests and the firmware's build script.
//!
//! IDX: a big-endian u32 magic (`0x0000_08DD`: type u8, `DD` dimensions), one big-endian u32
//! per dimension, then the raw u8 data. Every error names the file and what is wrong with it.

use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Pixels per MNIST image.
pub const PIXELS: usize = SIDE * SIDE;

/// Magic of an IDX file of u8 items with 3 dimensions (MNIST images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 items with 1 dimension (MNIST labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

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

/// `dir/name.gz` if it exists, else `dir/name`.
pub fn find(dir: &Path, name: &'static str) -> Result<PathBuf, IdxError> {
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
pub fn read_file(path: &Path) -> Result<Vec<u8>, IdxError> {
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

/// Checks an IDX header in `bytes` (the magic, and every dimension after the first against
/// `item_shape`); returns the item count and the header's length.
fn parse_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
    item_shape: &[usize],
) -> Result<(usize, usize), IdxError> {
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
    Ok((dims[0], header))
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
    let (count, header) = parse_header(path, bytes, magic, what, item_shape)?;
    // Dimensions are u32 each; the product of at most three fits u64 and, on 64-bit hosts, usize.
    let expected = count * item_shape.iter().product::<usize>();
    let data = &bytes[header..];
    if data.len() < expected {
        return Err(IdxError::TruncatedData {
            path: path.to_path_buf(),
            expected,
            found: data.len(),
        });
    }
    if data.len() > expected {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: data.len() - expected,
        });
    }
    Ok(data.to_vec())
}

/// The first `count` images of an IDX file of 28x28 u8 images (gzip or plain), inflating only
/// the bytes they need: the firmware's build script embeds a few test images.
pub fn read_first_images(path: &Path, count: usize) -> Result<Vec<[u8; PIXELS]>, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let gzip = raw.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let raw = fs::File::open(path).map_err(io)?;
    let wanted = (16 + count * PIXELS) as u64;
    let mut bytes = Vec::new();
    let read = if gzip {
        GzDecoder::new(raw).take(wanted).read_to_end(&mut bytes)
    } else {
        raw.take(wanted).read_to_end(&mut bytes)
    };
    read.map_err(|source| IdxError::Gzip {
        path: path.to_path_buf(),
        source,
    })?;
    let (in_file, header) = parse_header(path, &bytes, IMAGES_MAGIC, "u8 images, 3 dimensions", &[SIDE, SIDE])?;
    let data = &bytes[header..];
    if in_file < count || data.len() < count * PIXELS {
        return Err(IdxError::TruncatedData {
            path: path.to_path_buf(),
            expected: count * PIXELS,
            found: data.len().min(in_file * PIXELS),
        });
    }
    Ok(data
        .chunks_exact(PIXELS)
        .map(|image| image.try_into().expect("chunks of PIXELS"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// An IDX images file of `n` images, image `i` filled with the byte `i`.
    fn images_file(n: u32) -> Vec<u8> {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, 28, 28] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        for i in 0..n {
            b.extend(std::iter::repeat_n(i as u8, PIXELS));
        }
        b
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_first_images_of_a_gzip_or_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("plain", images_file(5)), ("gz", gzip(&images_file(5)))] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let images = read_first_images(&path, 3).unwrap();
            assert_eq!(images.len(), 3, "{name}");
            for (i, image) in images.iter().enumerate() {
                assert!(image.iter().all(|&p| p == i as u8), "{name}: image {i}");
            }
            assert_eq!(read_first_images(&path, 5).unwrap().len(), 5);
            let e = read_first_images(&path, 6).unwrap_err();
            assert!(matches!(e, IdxError::TruncatedData { .. }), "{name}: {e}");
        }
    }

    #[test]
    fn the_first_images_check_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels");
        let mut labels = LABELS_MAGIC.to_be_bytes().to_vec();
        labels.extend_from_slice(&3u32.to_be_bytes());
        labels.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, gzip(&labels)).unwrap();
        let e = read_first_images(&path, 1).unwrap_err();
        assert!(matches!(e, IdxError::BadMagic { .. }), "{e}");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2]).unwrap();
        let e = read_first_images(&path, 1).unwrap_err();
        assert!(matches!(e, IdxError::Gzip { .. }), "{e}");
        let e = read_first_images(&dir.path().join("missing"), 1).unwrap_err();
        assert!(matches!(e, IdxError::Io { .. }), "{e}");
    }
}
