//! Holds `max_pool_s8` to TensorFlow Lite Micro: every case in `testdata/tflm/max_pool.jsonl`
//! (outputs computed by TFLM's reference interpreter on a one-op int8 MAX_POOL_2D model, 2x2
//! window, stride 2, VALID padding) must match bit for bit.
//!
//! Each line: input_shape [H, W, C], pool (2), stride (2), input [H][W][C],
//! output [H/2][W/2][C] (odd edges dropped).

use autoencoder_core::{max_pool_s8, MaxPoolGeometry};

mod common;
use common::{field, int, tensor, usizes};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tflm/max_pool.jsonl");

#[test]
fn max_pool_matches_tflm_golden_vectors() {
    let mut cases = 0usize;
    let mut outputs = 0usize;
    let mut mismatches = Vec::new();

    for (line, _raw, case) in common::cases(GOLDEN) {
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

    common::report("max-pool", GOLDEN, cases, outputs, &mismatches);
}
