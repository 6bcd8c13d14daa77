//! Holds `max_pool_s8` to TensorFlow Lite Micro: every case in `testdata/tflm/max_pool.jsonl`
//! (outputs computed by TFLM's reference interpreter on a one-op int8 MAX_POOL_2D model, 2x2
//! window, stride 2, VALID padding) must match bit for bit.
//!
//! Each line: input_shape [H, W, C], pool (2), stride (2), input [H][W][C],
//! output [H/2][W/2][C] (odd edges dropped).

use autoencoder_core::{max_pool_s8, MaxPoolGeometry};
use serde_json::Value;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/max_pool.jsonl");

fn field<'a>(case: &'a Value, name: &str, line: usize) -> &'a Value {
    case.get(name)
        .unwrap_or_else(|| panic!("line {line}: missing field `{name}`"))
}

fn int(value: &Value, name: &str, line: usize) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("line {line}: `{name}` holds a non-integer {value}"))
}

fn usizes(case: &Value, name: &str, line: usize) -> Vec<usize> {
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

fn tensor(case: &Value, name: &str, shape: &[usize], line: usize) -> Vec<i8> {
    let mut out = Vec::new();
    flatten_i8(field(case, name, line), shape, name, line, &mut out);
    out
}

#[test]
fn max_pool_matches_tflm_golden_vectors() {
    let text = std::fs::read_to_string(GOLDEN).unwrap_or_else(|e| panic!("{GOLDEN}: {e}"));
    let mut cases = 0usize;
    let mut outputs = 0usize;
    let mut mismatches = Vec::new();

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let case: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("line {line}: bad JSON: {e}"));
        assert_eq!(int(field(&case, "pool", line), "pool", line), 2, "line {line}: pool");
        assert_eq!(
            int(field(&case, "stride", line), "stride", line),
            2,
            "line {line}: stride"
        );
        let shape = usizes(&case, "input_shape", line);
        let &[height, width, channels] = shape.as_slice() else {
            panic!("line {line}: input_shape {shape:?} is not [H, W, C]");
        };
        let geometry = MaxPoolGeometry {
            height,
            width,
            channels,
        };
        let input = tensor(&case, "input", &shape, line);
        let out_shape = [height / 2, width / 2, channels];
        let expected = tensor(&case, "output", &out_shape, line);

        let mut actual = vec![0i8; expected.len()];
        max_pool_s8(&geometry, &input, &mut actual)
            .unwrap_or_else(|e| panic!("line {line}: kernel refused the case: {e}"));

        for (position, (a, e)) in actual.iter().zip(&expected).enumerate() {
            if a != e {
                let (pixel, c) = (position / channels, position % channels);
                let (i, j) = (pixel / out_shape[1], pixel % out_shape[1]);
                mismatches.push(format!(
                    "line {line}, output[{i}][{j}][{c}] (flat {position}): actual {a}, expected {e}"
                ));
            }
        }
        cases += 1;
        outputs += expected.len();
    }

    println!(
        "checked {cases} TFLM max-pool cases, {outputs} outputs, {} mismatches",
        mismatches.len()
    );
    assert!(cases > 0, "no cases in {GOLDEN}");
    assert!(
        mismatches.is_empty(),
        "{} of {outputs} outputs differ from TFLM:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
