//! Holds the table generators of `table_s8` to TensorFlow Lite Micro: every case in
//! `testdata/tflm/leaky_relu.jsonl` and `testdata/tflm/logistic.jsonl` (the 256 outputs for the
//! inputs -128..127, computed by TFLM's reference interpreter on a one-op int8 model) must match
//! bit for bit, and so must the tables applied through the device kernel `apply`.
//!
//! Lines: leaky_relu: alpha, in_scale, in_zero_point, out_scale, out_zero_point, output [256];
//! logistic: in_scale, in_zero_point, out_scale (1/256), out_zero_point (-128), output [256].
//! Scales (and alpha) are f32 values written in decimal, parsed directly as f32.

use autoencoder_core::requantize::{multiply_by_quantized_multiplier, quantize_multiplier};
use autoencoder_core::table_s8::{apply, leaky_relu_table, logistic_table, Table};
use serde_json::Value;

mod common;
use common::{cases, field, single_scale};

const LEAKY_RELU: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/leaky_relu.jsonl");
const LEAKY_RELU_RULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/leaky_relu_rule.jsonl");
const LOGISTIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/logistic.jsonl");

fn int(case: &Value, name: &str, line: usize) -> i32 {
    let value = field(case, name, line);
    value
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or_else(|| panic!("line {line}: `{name}` holds {value}, not an i32"))
}

/// The 256 expected outputs, in input order -128..127.
fn outputs(case: &Value, line: usize) -> [i8; 256] {
    let values: Vec<i8> = field(case, "output", line)
        .as_array()
        .unwrap_or_else(|| panic!("line {line}: `output` is not an array"))
        .iter()
        .map(|v| {
            v.as_i64()
                .and_then(|v| i8::try_from(v).ok())
                .unwrap_or_else(|| panic!("line {line}: output value {v}"))
        })
        .collect();
    values
        .try_into()
        .unwrap_or_else(|v: Vec<i8>| panic!("line {line}: {} outputs, expected 256", v.len()))
}

/// Compares a table (both read directly and pushed through the device kernel `apply`) with
/// TFLM's 256 outputs; records every differing input.
fn compare(label: &str, table: &Table, expected: &[i8; 256], mismatches: &mut Vec<String>) {
    let inputs: Vec<i8> = (i8::MIN..=i8::MAX).collect();
    let mut applied = [0i8; 256];
    apply(table, &inputs, &mut applied).unwrap_or_else(|e| panic!("{label}: apply refused: {e}"));
    for (position, ((&entry, &y), &e)) in table.entries().iter().zip(&applied).zip(expected).enumerate() {
        let q = position as i32 - 128;
        if entry != e || y != e {
            mismatches.push(format!(
                "{label}, input {q} (position {position}): actual {entry} (applied {y}), expected {e}"
            ));
        }
    }
}

/// One LeakyReLU line: its parameters and TFLM's 256 outputs.
struct LeakyCase {
    alpha: f32,
    in_scale: f32,
    in_zero_point: i32,
    out_scale: f32,
    out_zero_point: i32,
    expected: [i8; 256],
}

impl LeakyCase {
    fn parse(raw: &str, case: &Value, line: usize) -> LeakyCase {
        LeakyCase {
            alpha: single_scale(raw, case, "alpha", line),
            in_scale: single_scale(raw, case, "in_scale", line),
            in_zero_point: int(case, "in_zero_point", line),
            out_scale: single_scale(raw, case, "out_scale", line),
            out_zero_point: int(case, "out_zero_point", line),
            expected: outputs(case, line),
        }
    }

    /// The generator's table for this case.
    fn table(&self, line: usize) -> Table {
        leaky_relu_table(
            self.alpha,
            self.in_scale,
            self.in_zero_point,
            self.out_scale,
            self.out_zero_point,
        )
        .unwrap_or_else(|e| panic!("line {line}: generator refused the case: {e}"))
    }
}

#[test]
fn leaky_relu_matches_tflm_golden_vectors() {
    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    for (line, raw, case) in cases(LEAKY_RELU) {
        let c = LeakyCase::parse(&raw, &case, line);
        let table = c.table(line);
        let label = format!(
            "line {line} (alpha {}, in {} / {}, out {} / {})",
            c.alpha, c.in_scale, c.in_zero_point, c.out_scale, c.out_zero_point
        );
        compare(&label, &table, &c.expected, &mut mismatches);
        checked += 256;
    }
    println!(
        "checked {} TFLM LeakyReLU cases, {checked} outputs, {} mismatches",
        checked / 256,
        mismatches.len()
    );
    assert!(checked > 0, "no cases in {LEAKY_RELU}");
    common::assert_no_mismatches(checked, &mismatches);
}

/// A table built with the effective scales formed another way: `f32` forms both quotients in
/// f32, `mixed` forms `in_scale * alpha` in f32 and divides in f64.
fn other_rule(form: &str, c: &LeakyCase) -> [i8; 256] {
    let (alpha, in_scale, out_scale) = (c.alpha, c.in_scale, c.out_scale);
    let (identity, negative) = match form {
        "f32" => (f64::from(in_scale / out_scale), f64::from(in_scale * alpha / out_scale)),
        _ => (
            f64::from(in_scale) / f64::from(out_scale),
            f64::from(in_scale * alpha) / f64::from(out_scale),
        ),
    };
    let (mi, si) = quantize_multiplier(identity).unwrap();
    let (ma, sa) = quantize_multiplier(negative).unwrap();
    let mut out = [0i8; 256];
    for (y, q) in out.iter_mut().zip(-128..=127) {
        let v = q - c.in_zero_point;
        let (m, s) = if v >= 0 { (mi, si) } else { (ma, sa) };
        *y = (c.out_zero_point + multiply_by_quantized_multiplier(v, m, s)).clamp(-128, 127) as i8;
    }
    out
}

/// The cases that settle how TFLM forms LeakyReLU's two scales: `fc`'s tie (input code 106 of
/// its first table, 126 in TFLM, 127 with the scales formed in f32) and cases where forming
/// `in_scale * alpha` in f32 gives another table. The generator must match TFLM on all of them,
/// and the file must tell the other forms apart (else it proves nothing).
#[test]
fn leaky_relu_forms_its_scales_in_f64_as_tflm_does() {
    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    let (mut f32_differs, mut mixed_differs) = (0usize, 0usize);
    for (line, raw, case) in cases(LEAKY_RELU_RULE) {
        let c = LeakyCase::parse(&raw, &case, line);
        compare(
            &format!("rule case, line {line}"),
            &c.table(line),
            &c.expected,
            &mut mismatches,
        );
        checked += 256;
        let count = |form| {
            other_rule(form, &c)
                .iter()
                .zip(&c.expected)
                .filter(|(a, b)| a != b)
                .count()
        };
        f32_differs += count("f32");
        mixed_differs += count("mixed");
    }
    println!("rule cases: {checked} outputs, f32 form differs in {f32_differs}, mixed form in {mixed_differs}");
    assert!(checked >= 5 * 256, "too few cases in {LEAKY_RELU_RULE}");
    assert!(
        f32_differs > 0 && mixed_differs > 0,
        "the cases do not tell the forms apart"
    );
    common::assert_no_mismatches(checked, &mismatches);
}

/// The tie that `models/fc.aeq` stored as 127 before format 2: `fc`'s first LeakyReLU table (input scale and zero point of the layer
/// before it, output of the table), input code 106, v = 228.
#[test]
fn fc_first_table_tie_is_126() {
    let table = leaky_relu_table(
        0.01,
        f32::from_bits(0x3bda_c558),
        -122,
        f32::from_bits(0x3bc3_fdbf),
        -128,
    )
    .unwrap();
    assert_eq!(table.lookup(106), 126);
}

#[test]
fn logistic_matches_tflm_golden_vectors() {
    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    // Where a float table round(256 / (1 + exp(-x))) - 128 disagrees with TFLM: our table must
    // get these right too (they are counted above); listed for the report.
    let mut float_differs = Vec::new();
    for (line, raw, case) in cases(LOGISTIC) {
        let in_scale = single_scale(&raw, &case, "in_scale", line);
        let out_scale = single_scale(&raw, &case, "out_scale", line);
        let in_zero_point = int(&case, "in_zero_point", line);
        let out_zero_point = int(&case, "out_zero_point", line);
        assert_eq!(
            (out_scale, out_zero_point),
            (1.0 / 256.0, -128),
            "line {line}: TFLM's int8 logistic needs output scale 1/256 and zero point -128"
        );
        let expected = outputs(&case, line);

        let table = logistic_table(in_scale, in_zero_point)
            .unwrap_or_else(|e| panic!("line {line}: generator refused the case: {e}"));
        let label = format!("line {line} (in {in_scale} / {in_zero_point})");
        compare(&label, &table, &expected, &mut mismatches);
        checked += 256;

        for (q, (&e, &actual)) in (-128..=127).zip(expected.iter().zip(table.entries())) {
            let x = f64::from(q - in_zero_point) * f64::from(in_scale);
            let float = ((256.0 / (1.0 + (-x).exp())).round() as i32 - 128).clamp(-128, 127);
            if float != i32::from(e) {
                float_differs.push(format!(
                    "line {line}: in_scale {in_scale}, zp {in_zero_point}, input {q}, x = {x:.4}: \
                     float {float}, TFLM {e}, ours {actual}"
                ));
            }
        }
    }
    println!(
        "checked {} TFLM logistic cases, {checked} outputs, {} mismatches; a float table differs \
         from TFLM in {} of them:\n{}",
        checked / 256,
        mismatches.len(),
        float_differs.len(),
        float_differs.join("\n")
    );
    assert!(checked > 0, "no cases in {LOGISTIC}");
    common::assert_no_mismatches(checked, &mismatches);
    // The data's README counts 28 such outputs; if the file changes, this says so.
    assert!(
        !float_differs.is_empty(),
        "expected some outputs where the float table is wrong"
    );
}
