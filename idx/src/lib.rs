//! IDX files (the format of MNIST), gzip-compressed or plain, checked before use: one reader
//! for the trainer, the host tests and the firmware's build script.
//!
//! IDX: a big-endian u32 magic (`0x0000_TTDD`: two zero bytes, the element type `TT`, the
//! number of dimensions `DD`), one big-endian u32 per dimension, then the data, big-endian.
//! The element types: u8 `0x08`, i8 `0x09`, i16 `0x0B`, i32 `0x0C`, f32 `0x0D`, f64 `0x0E`.
//! Every error names the file and what is wrong with it.
//!
//! Two kinds of reader: MNIST's own ([`read_images`], [`read_labels`], [`read_first_images`]:
//! u8 only, 28x28 images, labels 0-9), and any IDX array ([`read_array`], [`parse_array`]:
//! every element type, any number of dimensions).

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
    /// The first two bytes of the magic are not zero: not an IDX file.
    #[error("{path}: not an IDX file: magic 0x{found:08x} does not start with two zero bytes (IDX: 0x0000TTDD, TT the element type, DD the number of dimensions)")]
    NotIdx {
        /// The file.
        path: PathBuf,
        /// Magic read from the file.
        found: u32,
    },
    /// The magic's type byte is none of IDX's element types.
    #[error("{path}: unknown IDX element type 0x{code:02x} (known: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)")]
    UnknownType {
        /// The file.
        path: PathBuf,
        /// The type byte.
        code: u8,
    },
    /// The magic declares zero dimensions.
    #[error("{path}: the IDX header declares zero dimensions")]
    NoDimensions {
        /// The file.
        path: PathBuf,
    },
    /// The dimensions multiply to more bytes than this machine can address.
    #[error("{path}: dimensions {dims:?} of {size}-byte elements overflow the address space")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Every dimension.
        dims: Vec<usize>,
        /// Bytes per element.
        size: usize,
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
    inflate(path, raw)
}

/// `raw` (the bytes of the file at `path`, read by the caller), gunzipped when it starts with
/// the gzip magic, else as it is. `path` only names the file in errors.
pub fn inflate(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, IdxError> {
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

/// The element type of an IDX file: the third byte of its magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// Unsigned byte, `0x08`.
    U8,
    /// Signed byte, `0x09`.
    I8,
    /// Signed 16-bit integer, `0x0B`.
    I16,
    /// Signed 32-bit integer, `0x0C`.
    I32,
    /// 32-bit float, `0x0D`.
    F32,
    /// 64-bit float, `0x0E`.
    F64,
}

impl ElementType {
    /// Every element type, in code order.
    pub const ALL: [ElementType; 6] = [
        ElementType::U8,
        ElementType::I8,
        ElementType::I16,
        ElementType::I32,
        ElementType::F32,
        ElementType::F64,
    ];

    /// The type for a magic's type byte, if it is one of IDX's.
    pub fn from_code(code: u8) -> Option<ElementType> {
        ElementType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The magic's type byte.
    pub fn code(self) -> u8 {
        match self {
            ElementType::U8 => 0x08,
            ElementType::I8 => 0x09,
            ElementType::I16 => 0x0B,
            ElementType::I32 => 0x0C,
            ElementType::F32 => 0x0D,
            ElementType::F64 => 0x0E,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::U8 | ElementType::I8 => 1,
            ElementType::I16 => 2,
            ElementType::I32 | ElementType::F32 => 4,
            ElementType::F64 => 8,
        }
    }

    /// The Rust name of the type (`u8`, `i16`, `f32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
            ElementType::I16 => "i16",
            ElementType::I32 => "i32",
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
        }
    }
}

/// The values of an IDX file, decoded from big-endian, in file (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Type `0x08`.
    U8(Vec<u8>),
    /// Type `0x09`.
    I8(Vec<i8>),
    /// Type `0x0B`.
    I16(Vec<i16>),
    /// Type `0x0C`.
    I32(Vec<i32>),
    /// Type `0x0D`.
    F32(Vec<f32>),
    /// Type `0x0E`.
    F64(Vec<f64>),
}

impl Values {
    /// The element type.
    pub fn element(&self) -> ElementType {
        match self {
            Values::U8(_) => ElementType::U8,
            Values::I8(_) => ElementType::I8,
            Values::I16(_) => ElementType::I16,
            Values::I32(_) => ElementType::I32,
            Values::F32(_) => ElementType::F32,
            Values::F64(_) => ElementType::F64,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::U8(v) => v.len(),
            Values::I8(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An IDX file of any element type and any number of dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Every dimension, the item count first (MNIST's images: `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// `dims`' product of values.
    pub values: Values,
}

impl Array {
    /// The element type.
    pub fn element(&self) -> ElementType {
        self.values.element()
    }

    /// Number of items: the first dimension.
    pub fn count(&self) -> usize {
        self.dims[0]
    }

    /// The shape of one item: every dimension after the first (empty for a 1-D file).
    pub fn item_shape(&self) -> &[usize] {
        &self.dims[1..]
    }
}

/// Reads an IDX file of any element type and shape (gzip or plain).
pub fn read_array(path: &Path) -> Result<Array, IdxError> {
    let bytes = read_file(path)?;
    parse_array(path, &bytes)
}

/// Checks and decodes an IDX byte string of any element type and shape; `path` only names the
/// file in errors.
pub fn parse_array(path: &Path, bytes: &[u8]) -> Result<Array, IdxError> {
    let path_buf = || path.to_path_buf();
    if bytes.len() < 4 {
        return Err(IdxError::TruncatedHeader {
            path: path_buf(),
            found: bytes.len(),
            needed: 4,
        });
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let magic = word(0);
    if magic >> 16 != 0 {
        return Err(IdxError::NotIdx {
            path: path_buf(),
            found: magic,
        });
    }
    let code = (magic >> 8) as u8;
    let element = ElementType::from_code(code).ok_or(IdxError::UnknownType { path: path_buf(), code })?;
    let ndims = (magic & 0xff) as usize;
    if ndims == 0 {
        return Err(IdxError::NoDimensions { path: path_buf() });
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(IdxError::TruncatedHeader {
            path: path_buf(),
            found: bytes.len(),
            needed: header,
        });
    }
    let dims: Vec<usize> = (0..ndims).map(|d| word(4 + 4 * d) as usize).collect();
    let expected = dims
        .iter()
        .try_fold(element.size(), |bytes, &d| bytes.checked_mul(d))
        .ok_or_else(|| IdxError::TooLarge {
            path: path_buf(),
            dims: dims.clone(),
            size: element.size(),
        })?;
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
    Ok(Array {
        dims,
        values: decode(element, data),
    })
}

/// `data` (a whole number of big-endian elements) decoded.
fn decode(element: ElementType, data: &[u8]) -> Values {
    fn be<const N: usize, T>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|c| from(c.try_into().expect("chunks of N")))
            .collect()
    }
    match element {
        ElementType::U8 => Values::U8(data.to_vec()),
        ElementType::I8 => Values::I8(data.iter().map(|&b| b as i8).collect()),
        ElementType::I16 => Values::I16(be(data, i16::from_be_bytes)),
        ElementType::I32 => Values::I32(be(data, i32::from_be_bytes)),
        ElementType::F32 => Values::F32(be(data, f32::from_be_bytes)),
        ElementType::F64 => Values::F64(be(data, f64::from_be_bytes)),
    }
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

    /// An IDX file: magic for `code` and `dims.len()` dimensions, the dimensions, then `data`.
    fn idx_file(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn every_element_type_decodes_big_endian() {
        let p = Path::new("t");
        let cases: [(u8, Vec<u8>, Values); 6] = [
            (0x08, vec![0, 7, 255, 1], Values::U8(vec![0, 7, 255, 1])),
            (0x09, vec![0, 7, 255, 128], Values::I8(vec![0, 7, -1, -128])),
            (
                0x0B,
                [1i16, -2, 300, -32768].iter().flat_map(|v| v.to_be_bytes()).collect(),
                Values::I16(vec![1, -2, 300, -32768]),
            ),
            (
                0x0C,
                [1i32, -2, 70000, i32::MIN]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                Values::I32(vec![1, -2, 70000, i32::MIN]),
            ),
            (
                0x0D,
                [0.5f32, -1.25, 3e38, 1e-40]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                Values::F32(vec![0.5, -1.25, 3e38, 1e-40]),
            ),
            (
                0x0E,
                [0.5f64, -1.25, 1e300, 0.1]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
                Values::F64(vec![0.5, -1.25, 1e300, 0.1]),
            ),
        ];
        for (code, data, values) in cases {
            let a = parse_array(p, &idx_file(code, &[2, 2], &data)).unwrap();
            assert_eq!(a.dims, [2, 2], "type 0x{code:02x}");
            assert_eq!(a.element().code(), code);
            assert_eq!(a.element().size() * 4, data.len());
            assert_eq!(a.values, values, "type 0x{code:02x}");
            assert_eq!((a.count(), a.item_shape()), (2, &[2][..]));
        }
    }

    #[test]
    fn any_number_of_dimensions() {
        let p = Path::new("t");
        let a = parse_array(p, &idx_file(0x08, &[2, 1, 2, 3], &[9; 12])).unwrap();
        assert_eq!((a.count(), a.item_shape()), (2, &[1, 2, 3][..]));
        let a = parse_array(p, &idx_file(0x08, &[3], &[1, 2, 3])).unwrap();
        assert_eq!((a.count(), a.item_shape()), (3, &[][..]));
        let a = parse_array(p, &idx_file(0x0D, &[0, 5], &[])).unwrap();
        assert!(a.values.is_empty());
    }

    #[test]
    fn a_bad_generic_header_is_named() {
        let p = Path::new("some/file");
        let e = parse_array(p, &[0, 0, 8]).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TruncatedHeader {
                    found: 3,
                    needed: 4,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_array(p, b"PK\x03\x04 not idx").unwrap_err();
        assert!(matches!(e, IdxError::NotIdx { .. }), "{e}");
        assert!(e.to_string().starts_with("some/file: not an IDX file"), "{e}");
        let e = parse_array(p, &idx_file(0x0A, &[1], &[0, 0])).unwrap_err();
        assert!(matches!(e, IdxError::UnknownType { code: 0x0A, .. }), "{e}");
        assert!(e.to_string().contains("0x0a"), "{e}");
        let e = parse_array(p, &idx_file(0x08, &[], &[])).unwrap_err();
        assert!(matches!(e, IdxError::NoDimensions { .. }), "{e}");
        let e = parse_array(p, &idx_file(0x08, &[2, 2], &[1, 2, 3])[..10]).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TruncatedHeader {
                    found: 10,
                    needed: 12,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_array(p, &idx_file(0x0B, &[2, 2], &[0; 7])).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TruncatedData {
                    expected: 8,
                    found: 7,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_array(p, &idx_file(0x0E, &[1], &[0; 9])).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TrailingBytes {
                    expected: 8,
                    extra: 1,
                    ..
                }
            ),
            "{e}"
        );
        let huge = u32::MAX;
        let e = parse_array(p, &idx_file(0x0E, &[huge, huge, huge, huge], &[])).unwrap_err();
        assert!(matches!(e, IdxError::TooLarge { size: 8, .. }), "{e}");
    }

    #[test]
    fn the_generic_reader_reads_gzip_and_agrees_with_the_mnist_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.gz");
        std::fs::write(&path, gzip(&images_file(3))).unwrap();
        let a = read_array(&path).unwrap();
        assert_eq!(a.dims, [3, 28, 28]);
        assert_eq!(a.values, Values::U8(read_images(&path).unwrap()));
    }
}
