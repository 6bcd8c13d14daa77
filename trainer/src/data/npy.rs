//! numpy's `.npy` arrays: the header is read and checked here first (its dtype chosen, its
//! shape held to the bytes present, so no corrupt header can make us allocate what is not
//! there), then `ndarray-npy` reads the data (byte order, C or Fortran order).
//!
//! The format: `\x93NUMPY`, a major and a minor version byte, the header's length
//! (little-endian u16 in version 1, u32 in versions 2 and 3), the header (a Python dict literal:
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }`), then the data.

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, ReadableElement};

use super::array::{RawArray, Typed};
use super::error::{DataError, Origin};

/// The element types read, each with the descriptors `ndarray-npy` reads for it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    I64,
    F32,
    F64,
}

impl Dtype {
    /// The type for a descriptor (`'<f4'`, `'|u1'`, `'>i2'`, ...), if it is one of those read.
    fn from_descr(descr: &str) -> Option<Dtype> {
        let (order, code) = match descr.as_bytes().first() {
            Some(b'<' | b'>') => (&descr[..1], &descr[1..]),
            Some(b'|') => ("|", &descr[1..]),
            _ => ("", descr),
        };
        let one_byte = matches!(order, "|" | "");
        let multi_byte = matches!(order, "<" | ">");
        match code {
            "u1" | "B" if one_byte => Some(Dtype::U8),
            "i1" | "b" if one_byte => Some(Dtype::I8),
            "u2" if multi_byte => Some(Dtype::U16),
            "i2" if multi_byte => Some(Dtype::I16),
            "u4" if multi_byte => Some(Dtype::U32),
            "i4" if multi_byte => Some(Dtype::I32),
            "i8" if multi_byte => Some(Dtype::I64),
            "f4" if multi_byte => Some(Dtype::F32),
            "f8" if multi_byte => Some(Dtype::F64),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

/// numpy's name for a descriptor it does not read, to make the error plain: `'<u8'` →
/// `'<u8' (uint64)`.
fn describe(descr: &str) -> String {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = code.chars();
    let kind = chars.next();
    let bytes: Option<usize> = chars.as_str().parse().ok();
    let name = match (kind, bytes) {
        (Some('b'), Some(1)) | (Some('?'), _) => Some("bool".to_string()),
        (Some('i'), Some(n)) => Some(format!("int{}", 8 * n)),
        (Some('u'), Some(n)) => Some(format!("uint{}", 8 * n)),
        (Some('f'), Some(n)) => Some(format!("float{}", 8 * n)),
        (Some('c'), Some(n)) => Some(format!("complex{}", 8 * n)),
        (Some('U'), _) => Some("unicode string".to_string()),
        (Some('S'), _) => Some("byte string".to_string()),
        (Some('O'), _) => Some("Python object".to_string()),
        (Some('M'), _) => Some("datetime".to_string()),
        (Some('m'), _) => Some("timedelta".to_string()),
        (Some('V'), _) => Some("raw bytes".to_string()),
        _ => None,
    };
    match name {
        Some(name) => format!("'{descr}' ({name})"),
        None => format!("'{descr}'"),
    }
}

/// Reads one `.npy` array from its bytes: samples or labels, as stored.
pub(crate) fn parse(at: &Origin, bytes: &[u8]) -> Result<RawArray, DataError> {
    let corrupt = |reason: String| DataError::CorruptNpy { at: at.clone(), reason };
    let header = header(bytes).map_err(corrupt)?;
    let dtype = match header.dtype {
        Descr::Simple(ref d) => Dtype::from_descr(d).ok_or_else(|| DataError::UnsupportedDtype {
            at: at.clone(),
            dtype: describe(d),
        })?,
        Descr::Structured(ref text) => {
            return Err(DataError::UnsupportedDtype {
                at: at.clone(),
                dtype: format!("{text} (a structured dtype)"),
            })
        }
    };
    let expected = header
        .shape
        .iter()
        .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| corrupt(format!("shape {:?} overflows the address space", header.shape)))?;
    let found = bytes.len() - header.data_start;
    if found != expected {
        return Err(corrupt(format!(
            "the header promises {expected} bytes of data (shape {:?}, {} bytes each), the file has {found}",
            header.shape,
            dtype.size()
        )));
    }
    let values = match dtype {
        Dtype::U8 => Typed::U8(read(bytes).map_err(corrupt)?),
        Dtype::I8 => Typed::I8(read(bytes).map_err(corrupt)?),
        Dtype::U16 => Typed::U16(read(bytes).map_err(corrupt)?),
        Dtype::I16 => Typed::I16(read(bytes).map_err(corrupt)?),
        Dtype::U32 => Typed::U32(read(bytes).map_err(corrupt)?),
        Dtype::I32 => Typed::I32(read(bytes).map_err(corrupt)?),
        Dtype::I64 => Typed::I64(read(bytes).map_err(corrupt)?),
        Dtype::F32 => Typed::F32(read(bytes).map_err(corrupt)?),
        Dtype::F64 => Typed::F64(read(bytes).map_err(corrupt)?),
    };
    Ok(RawArray {
        shape: header.shape,
        values,
    })
}

/// The array's values in logical (C, row-major) order, whatever its stored order.
fn read<T: ReadableElement + Copy>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let array = ArrayD::<T>::read_npy(bytes).map_err(|e| e.to_string())?;
    if array.is_standard_layout() {
        // An owned array read whole: its buffer is its values, from the start, in C order.
        return Ok(array.into_raw_vec_and_offset().0);
    }
    Ok(array.iter().copied().collect())
}

/// The dtype as the header writes it.
#[derive(Debug, PartialEq)]
enum Descr {
    /// A plain descriptor string: `'<f4'`.
    Simple(String),
    /// A record dtype (a list of fields), as its text.
    Structured(String),
}

/// A header as written: the dtype, the shape, and where the data starts.
#[derive(Debug, PartialEq)]
struct Header {
    dtype: Descr,
    shape: Vec<usize>,
    data_start: usize,
}

/// Reads the magic, version, length and dict of a `.npy` header.
fn header(bytes: &[u8]) -> Result<Header, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if !bytes.starts_with(MAGIC) {
        return Err("no .npy magic (\\x93NUMPY) at the start".to_string());
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err("header truncated before the version".to_string()),
    };
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => return Err(format!("unknown .npy format version {major}.{minor}")),
    };
    let len = match bytes.get(8..8 + len_bytes) {
        Some(b) => b.iter().rev().fold(0usize, |n, &byte| (n << 8) | byte as usize),
        None => return Err("header truncated before its length".to_string()),
    };
    let text = bytes.get(start..start + len).ok_or_else(|| {
        format!(
            "header truncated: it should be {len} bytes, the file has {}",
            bytes.len() - start
        )
    })?;
    let text = std::str::from_utf8(text).map_err(|_| "the header is not text".to_string())?;
    let (dtype, shape) = dict(text)?;
    Ok(Header {
        dtype,
        shape,
        data_start: start + len,
    })
}

/// The dtype and shape of a header dict; `fortran_order` must be a boolean (its value is
/// `ndarray-npy`'s to use).
fn dict(text: &str) -> Result<(Descr, Vec<usize>), String> {
    let mut p = Parser { text, at: 0 };
    let (mut descr, mut shape, mut order) = (None, None, None);
    p.expect('{')?;
    while !p.eat('}') {
        let key = p.string()?;
        p.expect(':')?;
        match key.as_str() {
            "descr" => {
                descr = Some(if p.peek() == Some('[') {
                    let from = p.at;
                    p.skip_value(0)?;
                    Descr::Structured(text[from..p.at].trim().to_string())
                } else {
                    Descr::Simple(p.string()?)
                })
            }
            "shape" => shape = Some(p.shape()?),
            "fortran_order" => order = Some(p.boolean()?),
            _ => p.skip_value(0)?,
        }
        if !p.eat(',') {
            p.expect('}')?;
            break;
        }
    }
    let missing = |key: &str| format!("the header has no '{key}'");
    order.ok_or_else(|| missing("fortran_order"))?;
    Ok((
        descr.ok_or_else(|| missing("descr"))?,
        shape.ok_or_else(|| missing("shape"))?,
    ))
}

/// A reader of the few Python literals a `.npy` header holds: strings, booleans, tuples of
/// integers, and (to skip them) lists and tuples nested a few deep.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.at += c.len_utf8();
        }
        found
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected '{c}' at byte {} of {:?}",
                self.at,
                self.text.trim_end()
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("malformed header: expected a string at byte {}", self.at)),
        };
        let rest = &self.text[self.at + 1..];
        let end = rest
            .find(quote)
            .ok_or_else(|| "malformed header: a string is not closed".to_string())?;
        self.at += end + 2;
        Ok(rest[..end].to_string())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        self.skip_space();
        for (word, value) in [("True", true), ("False", false)] {
            if self.text[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(format!("malformed header: expected True or False at byte {}", self.at))
    }

    fn integer(&mut self) -> Result<usize, String> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n = rest[..digits]
            .parse()
            .map_err(|_| format!("malformed header: expected a dimension at byte {}", self.at))?;
        self.at += digits;
        Ok(n)
    }

    /// `()`, `(n,)`, `(n, m)`, ...
    fn shape(&mut self) -> Result<Vec<usize>, String> {
        self.expect('(')?;
        let mut dims = Vec::new();
        while !self.eat(')') {
            dims.push(self.integer()?);
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(dims)
    }

    /// Skips a string, word, number, or list or tuple of them (at most 8 deep).
    fn skip_value(&mut self, depth: usize) -> Result<(), String> {
        match self.peek() {
            Some('\'' | '"') => self.string().map(drop),
            Some(open @ ('[' | '(')) => {
                if depth == 8 {
                    return Err("malformed header: values nested too deep".to_string());
                }
                let close = if open == '[' { ']' } else { ')' };
                self.at += 1;
                while !self.eat(close) {
                    self.skip_value(depth + 1)?;
                    if !self.eat(',') {
                        self.expect(close)?;
                        break;
                    }
                }
                Ok(())
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '-' => {
                let rest = &self.text[self.at..];
                let len = rest.len()
                    - rest
                        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                        .len();
                self.at += len;
                Ok(())
            }
            _ => Err(format!("malformed header: unexpected text at byte {}", self.at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn headers_as_numpy_writes_them() {
        let text = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  \n";
        let h = header(&npy(text, &[0; 24])).unwrap();
        let expected = Header {
            dtype: Descr::Simple("<f4".into()),
            shape: vec![2, 3],
            data_start: 10 + text.len(),
        };
        assert_eq!(h, expected);
        let h = header(&npy(
            "{\"descr\":\"|u1\",\"fortran_order\":True,\"shape\":(5,)}",
            &[0; 5],
        ))
        .unwrap();
        assert_eq!((h.dtype, h.shape), (Descr::Simple("|u1".into()), vec![5]));
        let h = header(&npy("{'descr': '>i2', 'fortran_order': False, 'shape': (), }", &[0; 2])).unwrap();
        assert_eq!((h.dtype, h.shape), (Descr::Simple(">i2".into()), vec![]));
    }

    #[test]
    fn descriptors_read_and_refused() {
        for (d, t) in [
            ("|u1", Dtype::U8),
            ("<i1", Dtype::I8),
            ("<u2", Dtype::U16),
            (">f8", Dtype::F64),
        ] {
            assert_eq!(Dtype::from_descr(d), if d == "<i1" { None } else { Some(t) }, "{d}");
        }
        assert_eq!(describe("<u8"), "'<u8' (uint64)");
        assert_eq!(describe("|b1"), "'|b1' (bool)");
        assert_eq!(describe("<c16"), "'<c16' (complex128)");
        assert_eq!(describe("<U5"), "'<U5' (unicode string)");
        let b = npy(
            "{'descr': [('a', '<f4'), ('b', '<i4', (2,))], 'fortran_order': False, 'shape': (1,), }",
            &[],
        );
        let structured = Descr::Structured("[('a', '<f4'), ('b', '<i4', (2,))]".into());
        assert_eq!(header(&b).unwrap().dtype, structured);
    }

    #[test]
    fn malformed_headers_are_errors() {
        for text in [
            "",
            "{",
            "{'descr': '<f4'",
            "{'descr': '<f4', 'shape': (2, 3), }",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': [[[[[[[[[[1]]]]]]]]]]}",
            "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        ] {
            assert!(header(&npy(text, &[])).is_err(), "{text:?}");
        }
        assert!(header(b"\x93NUMPY\x01").is_err());
        assert!(header(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        assert!(header(b"\x93NUMPY\x01\x00\xff\x00{}").is_err());
        assert!(header(b"PK\x03\x04").is_err());
    }
}
