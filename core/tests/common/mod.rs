//! Helpers shared by the TFLM golden-vector tests: reading a `testdata/tflm/*.jsonl` file,
//! reading integer fields and nested int8 tensors (with shape checks), parsing f32 scales
//! directly from their decimal text, and reporting mismatches.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use serde_json::Value;

/// Reads every non-empty line of a golden file as (line number, raw text, JSON).
pub fn cases(path: &str) -> Vec<(usize, String, Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, raw)| !raw.trim().is_empty())
        .map(|(index, raw)| {
            let line = index + 1;
            let case = serde_json::from_str(raw).unwrap_or_else(|e| panic!("line {line}: bad JSON: {e}"));
            (line, raw.to_owned(), case)
        })
        .collect()
}

pub fn field<'a>(case: &'a Value, name: &str, line: usize) -> &'a Value {
    case.get(name)
        .unwrap_or_else(|| panic!("line {line}: missing field `{name}`"))
}

pub fn int(value: &Value, name: &str, line: usize) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("line {line}: `{name}` holds a non-integer {value}"))
}

pub fn ints(case: &Value, name: &str, line: usize) -> Vec<i64> {
    field(case, name, line)
        .as_array()
        .unwrap_or_else(|| panic!("line {line}: `{name}` is not an array"))
        .iter()
        .map(|v| int(v, name, line))
        .collect()
}

pub fn i8s(case: &Value, name: &str, line: usize) -> Vec<i8> {
    ints(case, name, line)
        .into_iter()
        .map(|v| i8::try_from(v).unwrap_or_else(|_| panic!("line {line}: `{name}` value {v}")))
        .collect()
}

pub fn usizes(case: &Value, name: &str, line: usize) -> Vec<usize> {
    field(case, name, line)
        .as_array()
        .unwrap_or_else(|| panic!("line {line}: `{name}` is not an array"))
        .iter()
        .map(|v| {
            let v = int(v, name, line);
            usize::try_from(v).unwrap_or_else(|_| panic!("line {line}: `{name}` value {v}"))
        })
        .collect()
}

/// Flattens a nested array of int8 values in row-major order, checking that it has exactly the
/// nesting `shape` gives (so a ragged or mis-ordered tensor cannot pass silently).
fn flatten_i8(value: &Value, shape: &[usize], name: &str, line: usize, out: &mut Vec<i8>) {
    match shape.split_first() {
        None => {
            let v = int(value, name, line);
            out.push(i8::try_from(v).unwrap_or_else(|_| panic!("line {line}: `{name}` value {v}")));
        }
        Some((&len, rest)) => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("line {line}: `{name}` is not nested as {shape:?}"));
            assert_eq!(items.len(), len, "line {line}: `{name}` is not nested as {shape:?}");
            for item in items {
                flatten_i8(item, rest, name, line, out);
            }
        }
    }
}

/// The int8 tensor in field `name`, flattened row-major; its nesting must be exactly `shape`.
pub fn tensor(case: &Value, name: &str, shape: &[usize], line: usize) -> Vec<i8> {
    let mut out = Vec::new();
    flatten_i8(field(case, name, line), shape, name, line, &mut out);
    out
}

/// The decimal text of a numeric field (`"name": 0.123`) or of each element of a numeric array
/// field (`"name": [0.1, 0.2]`), straight from the JSON line.
fn raw_numbers<'a>(raw: &'a str, name: &str, line: usize) -> Vec<&'a str> {
    let key = format!("\"{name}\"");
    let start = raw
        .find(&key)
        .unwrap_or_else(|| panic!("line {line}: missing field `{name}`"))
        + key.len();
    let rest = raw[start..].trim_start().strip_prefix(':').map(str::trim_start);
    let rest = rest.unwrap_or_else(|| panic!("line {line}: no `:` after `{name}`"));
    let is_number_char = |c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
    if let Some(array) = rest.strip_prefix('[') {
        let end = array
            .find(']')
            .unwrap_or_else(|| panic!("line {line}: unterminated `{name}`"));
        array[..end].split(',').map(str::trim).collect()
    } else {
        let end = rest.find(|c| !is_number_char(c)).unwrap_or(rest.len());
        vec![&rest[..end]]
    }
}

/// f32 scales, parsed from their decimal text directly as f32 (as the data's README asks).
/// Going through serde_json's f64 first would round twice, and serde_json's default float
/// parser is not even correctly rounded. The parsed value is cross-checked against serde_json's
/// number so that a mis-extracted field cannot pass silently.
pub fn scales(raw: &str, case: &Value, name: &str, line: usize) -> Vec<f32> {
    let texts = raw_numbers(raw, name, line);
    let parsed: Vec<f32> = texts
        .iter()
        .map(|t| {
            t.parse::<f32>()
                .unwrap_or_else(|e| panic!("line {line}: `{name}` value {t:?}: {e}"))
        })
        .collect();
    let value = field(case, name, line);
    let from_json: Vec<f64> = match value.as_array() {
        Some(items) => items.iter().filter_map(Value::as_f64).collect(),
        None => value.as_f64().into_iter().collect(),
    };
    assert_eq!(
        parsed.len(),
        from_json.len(),
        "line {line}: `{name}`: {} values extracted, serde_json sees {}",
        parsed.len(),
        from_json.len()
    );
    for (position, (&p, &j)) in parsed.iter().zip(&from_json).enumerate() {
        let relative = (f64::from(p) - j).abs() / j.abs().max(f64::MIN_POSITIVE);
        assert!(
            relative < 1e-6,
            "line {line}: `{name}`[{position}]: extracted {p}, serde_json reads {j}"
        );
    }
    parsed
}

/// A scalar f32 field, parsed as [`scales`] does.
pub fn single_scale(raw: &str, case: &Value, name: &str, line: usize) -> f32 {
    let values = scales(raw, case, name, line);
    assert_eq!(values.len(), 1, "line {line}: `{name}` is not a single number");
    values[0]
}

/// Fails, listing every mismatch, unless `mismatches` is empty.
#[track_caller]
pub fn assert_no_mismatches(outputs: usize, mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{} of {outputs} outputs differ from TFLM:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Prints the summary line of a golden file's check, then fails if it held no cases or if any
/// output differed.
#[track_caller]
pub fn report(kind: &str, path: &str, cases: usize, outputs: usize, mismatches: &[String]) {
    println!(
        "checked {cases} TFLM {kind} cases, {outputs} outputs, {} mismatches",
        mismatches.len()
    );
    assert!(cases > 0, "no cases in {path}");
    assert_no_mismatches(outputs, mismatches);
}
