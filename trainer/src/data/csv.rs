//! CSV tables of numbers: one sample per row, one feature per column, commas between fields,
//! spaces around fields ignored, quoted fields allowed.
//!
//! The header is optional: a first row with a field that is neither empty nor a number is the
//! header (so a header whose names are all numbers is read as data). One column may be set aside
//! as labels ([`LoadOptions::label_column`](super::LoadOptions::label_column)): by its header
//! name, or by its 0-based index (a name that matches wins). Values are parsed straight to f32
//! (correctly rounded, so a file written with Rust's or numpy's shortest f32 text reads back
//! bit for bit); labels must be integers (`3` or `3.0`).

use ::csv::{ByteRecord, ReaderBuilder, Trim};
use std::path::Path;

use super::error::{DataError, Origin};
use super::samples::{Element, Samples};

/// The table's samples, `[F]` values each, and the label column's labels when one is named.
pub(crate) fn read(path: &Path, bytes: &[u8], label_column: Option<&str>) -> Result<Samples, DataError> {
    let at = Origin::file(path);
    let csv_error = |source| DataError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let first = match records.next() {
        None => return Err(DataError::NoSamples { at }),
        Some(record) => record.map_err(csv_error)?,
    };
    let width = first.len();
    let first_line = line(&first);
    let is_header = first.iter().any(|f| !f.is_empty() && number(f).is_none());
    let header: Option<Vec<String>> =
        is_header.then(|| first.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
    let label = match label_column {
        None => None,
        Some(column) => Some(label_index(path, column, header.as_deref(), width)?),
    };
    let column = |j: usize| match &header {
        Some(names) => format!("column {} ({:?})", j + 1, names[j]),
        None => format!("column {} (index {j})", j + 1),
    };
    let text = |field: &[u8]| String::from_utf8_lossy(field).into_owned();

    let mut values = Vec::new();
    let mut labels = Vec::new();
    let data_first = (!is_header).then_some(Ok(first));
    for record in data_first.into_iter().chain(records) {
        let record = record.map_err(csv_error)?;
        let line = line(&record);
        if record.len() != width {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                line,
                found: record.len(),
                expected: width,
                first_line,
            });
        }
        for (j, field) in record.iter().enumerate() {
            if Some(j) == label {
                let label = integer(field).ok_or_else(|| DataError::BadLabel {
                    at: at.clone(),
                    place: format!("line {line}, {}", column(j)),
                    value: format!("{:?}", text(field)),
                })?;
                labels.push(label);
                continue;
            }
            let value = number(field).ok_or_else(|| DataError::NotNumeric {
                path: path.to_path_buf(),
                line,
                column: column(j),
                text: text(field),
            })?;
            if !value.is_finite() {
                return Err(DataError::NonFinite {
                    at: at.clone(),
                    place: format!("line {line}, {}", column(j)),
                    value: format!("{:?}", text(field)),
                });
            }
            values.push(value);
        }
    }
    let features = width - usize::from(label.is_some());
    if values.is_empty() && labels.is_empty() {
        return Err(DataError::NoSamples { at });
    }
    if features == 0 {
        return Err(DataError::NoFeatures { at, shape: vec![0] });
    }
    let samples = Samples::new(values, vec![features], Element::Text, at.clone())?;
    match label {
        Some(_) => samples.with_labels(labels, at),
        None => Ok(samples),
    }
}

/// The record's 1-based line.
fn line(record: &ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// A field as f32, if it is a number (`nan` and `inf` are numbers here, refused later).
fn number(field: &[u8]) -> Option<f32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// A field as an integer label: `3`, `-1`, or a whole float such as `3.0`.
fn integer(field: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(field).ok()?;
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let x: f64 = text.parse().ok()?;
    let in_range = (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&x);
    (in_range && x.fract() == 0.0).then_some(x as i64)
}

/// The label column's index: its name in the header, else a 0-based index below `width`.
fn label_index(path: &Path, column: &str, header: Option<&[String]>, width: usize) -> Result<usize, DataError> {
    if let Some(j) = header.and_then(|names| names.iter().position(|n| n == column)) {
        return Ok(j);
    }
    if let Ok(j) = column.parse::<usize>() {
        if j < width {
            return Ok(j);
        }
    }
    let available = match header {
        Some(names) => {
            let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
            let more = if names.len() > 20 { ", ..." } else { "" };
            format!(
                "the header names {} columns: {}{more} (or give a 0-based index below {width})",
                names.len(),
                shown.join(", ")
            )
        }
        None => format!("the file has no header: give a 0-based column index below {width}"),
    };
    Err(DataError::UnknownLabelColumn {
        path: path.to_path_buf(),
        column: column.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str, label: Option<&str>) -> Result<Samples, DataError> {
        read(Path::new("t.csv"), text.as_bytes(), label)
    }

    #[test]
    fn numbers_and_labels_parse() {
        assert_eq!(number(b"1e3"), Some(1000.0));
        assert_eq!(number(b"-.5"), Some(-0.5));
        assert!(number(b"nan").unwrap().is_nan());
        assert_eq!(number(b""), None);
        assert_eq!(number(b"1,5"), None);
        assert_eq!(integer(b"-7"), Some(-7));
        assert_eq!(integer(b"3.0"), Some(3));
        assert_eq!(integer(b"3.5"), None);
        assert_eq!(integer(b"inf"), None);
    }

    #[test]
    fn blank_lines_and_spaces_are_skipped_and_lines_counted() {
        let s = read_str("a, b\n\n 1 , 2\n3,4\n", None).unwrap();
        assert_eq!((s.len(), s.values()), (2, &[1.0, 2.0, 3.0, 4.0][..]));
        let e = read_str("a,b\n\n1,2\n3\n", None).unwrap_err().to_string();
        assert_eq!(e, "t.csv: line 4 has 1 fields, expected 2 (as on line 1)");
    }

    #[test]
    fn an_empty_first_field_is_data_not_a_header() {
        let e = read_str("1,,3\n", None).unwrap_err().to_string();
        assert_eq!(e, "t.csv: line 1, column 2 (index 1): \"\" is not a number");
    }
}
