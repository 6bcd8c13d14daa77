//! Holds `fully_connected_s8` to TensorFlow Lite Micro: every case in
//! `testdata/tflm/fully_connected.jsonl` (outputs computed by TFLM's reference interpreter on a
//! one-op int8 model) must match bit for bit.
//!
//! Each line: in_scale, in_zero_point, weights [out][in], weight_scales [out], bias [out],
//! out_scale, out_zero_point, input [in], output [out]. Scales are f32 values written in decimal.

use autoencoder_core::{fully_connected_s8, quantize_multiplier, FcParams, PerChannelQuant};

mod common;
use common::{field, i8s, int, ints, scales, single_scale};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/fully_connected.jsonl");

#[test]
fn fully_connected_matches_tflm_golden_vectors() {
    let mut cases = 0usize;
    let mut outputs = 0usize;
    let mut mismatches = Vec::new();

    for (line, raw, case) in common::cases(GOLDEN) {
        let weight_rows = field(&case, "weights", line)
            .as_array()
            .unwrap_or_else(|| panic!("line {line}: `weights` is not an array"));
        let weights: Vec<i8> = weight_rows
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap_or_else(|| panic!("line {line}: a weights row is not an array"))
                    .iter()
                    .map(move |v| {
                        let v = int(v, "weights", line);
                        i8::try_from(v).unwrap_or_else(|_| panic!("line {line}: weight {v}"))
                    })
            })
            .collect();
        let input = i8s(&case, "input", line);
        let expected = i8s(&case, "output", line);
        let bias: Vec<i32> = ints(&case, "bias", line)
            .into_iter()
            .map(|v| i32::try_from(v).unwrap_or_else(|_| panic!("line {line}: bias {v}")))
            .collect();

        // Per-channel effective scale exactly as TFLM forms it: each f32 widened to f64, the
        // product divided in f64.
        let in_scale = single_scale(&raw, &case, "in_scale", line);
        let out_scale = single_scale(&raw, &case, "out_scale", line);
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) = scales(&raw, &case, "weight_scales", line)
            .into_iter()
            .map(|weight_scale| {
                let effective = f64::from(in_scale) * f64::from(weight_scale) / f64::from(out_scale);
                quantize_multiplier(effective).unwrap_or_else(|e| panic!("line {line}: scale {effective}: {e}"))
            })
            .unzip();

        let in_zero_point = int(field(&case, "in_zero_point", line), "in_zero_point", line);
        let out_zero_point = int(field(&case, "out_zero_point", line), "out_zero_point", line);
        let params = FcParams::new(in_zero_point as i32, out_zero_point as i32);
        let quant = PerChannelQuant {
            multipliers: &multipliers,
            shifts: &shifts,
        };

        let mut actual = vec![0i8; expected.len()];
        fully_connected_s8(&params, &quant, &weights, &bias, &input, &mut actual)
            .unwrap_or_else(|e| panic!("line {line}: kernel refused the case: {e}"));

        for (position, (a, e)) in actual.iter().zip(&expected).enumerate() {
            if a != e {
                mismatches.push(format!(
                    "line {line}, output[{position}]: actual {a}, expected {e} \
                     (multiplier {}, shift {})",
                    multipliers[position], shifts[position]
                ));
            }
        }
        cases += 1;
        outputs += expected.len();
    }

    common::report("fully connected", GOLDEN, cases, outputs, &mismatches);
}
