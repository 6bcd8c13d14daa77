//! Holds `conv2d_s8` to TensorFlow Lite Micro: every case in `testdata/tflm/conv2d.jsonl`
//! (outputs computed by TFLM's reference interpreter on a one-op int8 CONV_2D model, VALID
//! padding, stride 1, per-output-channel filter scales) must match bit for bit.
//!
//! Each line: input_shape [H, W, C], kernel k, in_scale, in_zero_point, filters_ohwi
//! [O][k][k][C], filter_scales [O], bias [O] (i32), out_scale, out_zero_point, input [H][W][C],
//! output [H-k+1][W-k+1][O]. Scales are f32 values written in decimal.

use autoencoder_core::{conv2d_s8, quantize_multiplier, Conv2dGeometry, Conv2dParams, PerChannelQuant};

mod common;
use common::{field, int, ints, scales, single_scale, tensor, usizes};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/conv2d.jsonl");

#[test]
fn conv2d_matches_tflm_golden_vectors() {
    let mut cases = 0usize;
    let mut outputs = 0usize;
    let mut mismatches = Vec::new();

    for (line, raw, case) in common::cases(GOLDEN) {
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
        let in_scale = single_scale(&raw, &case, "in_scale", line);
        let out_scale = single_scale(&raw, &case, "out_scale", line);
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) = scales(&raw, &case, "filter_scales", line)
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

    common::report("conv2d", GOLDEN, cases, outputs, &mismatches);
}
