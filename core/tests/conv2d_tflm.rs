//! Holds `conv2d_s8` to TensorFlow Lite Micro: every case in `testdata/tflm/conv2d.jsonl`
//! (outputs computed by TFLM's reference interpreter on a one-op int8 CONV_2D model, VALID
//! padding, stride 1, per-output-channel filter scales) must match bit for bit.
//!
//! Each line: input_shape [H, W, C], kernel k, in_scale, in_zero_point, filters_ohwi
//! [O][k][k][C], filter_scales [O], bias [O] (i32), out_scale, out_zero_point, input [H][W][C],
//! output [H-k+1][W-k+1][O]. Scales are f32 values written in decimal.

use autoencoder_core::{conv2d_s8, quantize_multiplier, Conv2dGeometry, Conv2dParams, PerChannelQuant};
use serde_json::Value;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/conv2d.jsonl");

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

fn ints(case: &Value, name: &str, line: usize) -> Vec<i64> {
    field(case, name, line)
        .as_array()
        .unwrap_or_else(|| panic!("line {line}: `{name}` is not an array"))
        .iter()
        .map(|v| int(v, name, line))
        .collect()
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
fn scales(raw: &str, case: &Value, name: &str, line: usize) -> Vec<f32> {
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

fn single_scale(raw: &str, case: &Value, name: &str, line: usize) -> f32 {
    let values = scales(raw, case, name, line);
    assert_eq!(values.len(), 1, "line {line}: `{name}` is not a single number");
    values[0]
}

#[test]
fn conv2d_matches_tflm_golden_vectors() {
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

        let shape = usizes(&case, "input_shape", line);
        let &[height, width, in_channels] = shape.as_slice() else {
            panic!("line {line}: input_shape {shape:?} is not [H, W, C]");
        };
        let kernel = int(field(&case, "kernel", line), "kernel", line);
        let kernel = usize::try_from(kernel).unwrap_or_else(|_| panic!("line {line}: kernel {kernel}"));
        let bias: Vec<i32> = ints(&case, "bias", line)
            .into_iter()
            .map(|v| i32::try_from(v).unwrap_or_else(|_| panic!("line {line}: bias {v}")))
            .collect();
        let out_channels = bias.len();
        let geometry = Conv2dGeometry {
            height,
            width,
            in_channels,
            out_channels,
            kernel,
        };
        let filters = tensor(
            &case,
            "filters_ohwi",
            &[out_channels, kernel, kernel, in_channels],
            line,
        );
        let input = tensor(&case, "input", &shape, line);
        let (out_height, out_width) = (height + 1 - kernel, width + 1 - kernel);
        let expected = tensor(&case, "output", &[out_height, out_width, out_channels], line);

        // Per-channel effective scale exactly as TFLM forms it: each f32 widened to f64, the
        // product divided in f64.
        let in_scale = single_scale(raw, &case, "in_scale", line);
        let out_scale = single_scale(raw, &case, "out_scale", line);
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) = scales(raw, &case, "filter_scales", line)
            .into_iter()
            .map(|filter_scale| {
                let effective = f64::from(in_scale) * f64::from(filter_scale) / f64::from(out_scale);
                quantize_multiplier(effective).unwrap_or_else(|e| panic!("line {line}: scale {effective}: {e}"))
            })
            .unzip();
        assert_eq!(multipliers.len(), out_channels, "line {line}: filter_scales vs bias");

        let in_zero_point = int(field(&case, "in_zero_point", line), "in_zero_point", line);
        let out_zero_point = int(field(&case, "out_zero_point", line), "out_zero_point", line);
        let params = Conv2dParams::new(in_zero_point as i32, out_zero_point as i32);
        let quant = PerChannelQuant {
            multipliers: &multipliers,
            shifts: &shifts,
        };

        let mut actual = vec![0i8; expected.len()];
        conv2d_s8(&geometry, &params, &quant, &filters, &bias, &input, &mut actual)
            .unwrap_or_else(|e| panic!("line {line}: kernel refused the case: {e}"));

        for (position, (a, e)) in actual.iter().zip(&expected).enumerate() {
            if a != e {
                let (pixel, o) = (position / out_channels, position % out_channels);
                let (i, j) = (pixel / out_width, pixel % out_width);
                mismatches.push(format!(
                    "line {line}, output[{i}][{j}][{o}] (flat {position}): actual {a}, expected {e} \
                     (multiplier {}, shift {})",
                    multipliers[o], shifts[o]
                ));
            }
        }
        cases += 1;
        outputs += expected.len();
    }

    println!(
        "checked {cases} TFLM conv2d cases, {outputs} outputs, {} mismatches",
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
