//! Int8 2x2 max-pooling with stride 2, as TFLM's reference MAX_POOL_2D.
//!
//! TFLite's `MAX_POOL_2D` with a 2x2 window, stride 2 and `VALID` padding on an NHWC int8
//! tensor. The output has the input's scale and zero point (TFLite requires it), so no
//! requantization happens: each output is the plain maximum of its window, per channel:
//! `y[i][j][c] = max(x[2i][2j][c], x[2i][2j + 1][c], x[2i + 1][2j][c], x[2i + 1][2j + 1][c])`.
//! An odd last row or column has no complete window and is dropped.

use crate::error::expect_len;
use crate::Error;

/// Shape of a 2x2, stride-2 max-pool: an `[height][width][channels]` input and an
/// `[height / 2][width / 2][channels]` output (division rounding down: an odd last row or
/// column is dropped).
///
/// The size helpers use checked arithmetic and return [`Error::InvalidGeometry`] instead of
/// overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolGeometry {
    /// Input rows. Valid range: [2, `usize::MAX`] (at least one whole window).
    pub height: usize,
    /// Input columns. Valid range: [2, `usize::MAX`] (at least one whole window).
    pub width: usize,
    /// Channels of each pixel, in the input and the output. Valid range: [1, `usize::MAX`].
    pub channels: usize,
}

/// The side of the pooling window, which is also its stride.
const WINDOW: usize = 2;

impl MaxPoolGeometry {
    /// Checks that the input holds at least one whole 2x2 window, that there is at least one
    /// channel, and that the input size fits `usize`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] naming the first problem found.
    pub fn validate(&self) -> Result<(), Error> {
        if self.height < WINDOW || self.width < WINDOW {
            return Err(Error::InvalidGeometry {
                reason: "input is smaller than the 2x2 pooling window",
            });
        }
        if self.channels == 0 {
            return Err(Error::InvalidGeometry {
                reason: "channel count is 0",
            });
        }
        // The output is no larger than the input, so this covers both sizes.
        self.input_len()?;
        Ok(())
    }

    /// `height / 2`, rounded down.
    pub const fn output_height(&self) -> usize {
        self.height / WINDOW
    }

    /// `width / 2`, rounded down.
    pub const fn output_width(&self) -> usize {
        self.width / WINDOW
    }

    /// Length of the flat NHWC input: `height * width * channels`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the product overflows `usize`.
    pub fn input_len(&self) -> Result<usize, Error> {
        checked_product(&[self.height, self.width, self.channels])
    }

    /// Length of the flat NHWC output: `(height / 2) * (width / 2) * channels`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the product overflows `usize`.
    pub fn output_len(&self) -> Result<usize, Error> {
        checked_product(&[self.output_height(), self.output_width(), self.channels])
    }
}

/// The product of `dims`, or [`Error::InvalidGeometry`] if it overflows `usize`.
fn checked_product(dims: &[usize]) -> Result<usize, Error> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(Error::InvalidGeometry {
            reason: "a tensor size overflows usize",
        })
}

/// Int8 max-pool, 2x2 window, stride 2, `VALID` padding, for one sample.
///
/// Shapes (flat NHWC, see [`MaxPoolGeometry`]): `input [H][W][C]`, `output [H/2][W/2][C]`. The
/// output shares the input's scale and zero point, so the result is the plain maximum of each
/// window; every int8 value, -128 and 127 included, is handled alike.
///
/// # Example
/// ```
/// use autoencoder_core::{max_pool_s8, MaxPoolGeometry};
///
/// // A 3x4 one-channel image: the odd last row is dropped, two windows remain.
/// let geometry = MaxPoolGeometry { height: 3, width: 4, channels: 1 };
/// let input = [
///     1, -2, 3, 4, //
///     -5, 0, -128, 2, //
///     127, 127, 127, 127,
/// ];
/// let mut output = [0i8; 2];
/// max_pool_s8(&geometry, &input, &mut output)?;
/// assert_eq!(output, [1, 4]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
///
/// # Errors
/// Everything is checked before `output` is written, so on error `output` is untouched: the
/// errors of [`MaxPoolGeometry::validate`], then [`Error::ShapeMismatch`] when `input` or
/// `output` do not match the geometry.
pub fn max_pool_s8(geometry: &MaxPoolGeometry, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    geometry.validate()?;
    expect_len("input", geometry.input_len()?, input.len())?;
    expect_len("output", geometry.output_len()?, output.len())?;

    // Validated: height, width >= 2 and channels >= 1, and every product below divides the
    // input or output size, so none of these is 0 (`chunks_exact` needs that) or overflows.
    let channels = geometry.channels;
    let input_row_len = geometry.width * channels; // one input row: [W][C]
    let output_row_len = geometry.output_width() * channels; // one output row: [W/2][C]
    let window_len = WINDOW * channels; // two neighbouring pixels of one row: [2][C]

    // Each pair of input rows makes one output row; `chunks_exact` leaves out an odd last row.
    for (output_row, input_rows) in output
        .chunks_exact_mut(output_row_len)
        .zip(input.chunks_exact(WINDOW * input_row_len))
    {
        let (top, bottom) = input_rows.split_at(input_row_len);
        // Likewise each pair of pixels in a row makes one window; an odd last column is left out.
        let windows = top.chunks_exact(window_len).zip(bottom.chunks_exact(window_len));
        for (output_pixel, (top_pair, bottom_pair)) in output_row.chunks_exact_mut(channels).zip(windows) {
            let (top_left, top_right) = top_pair.split_at(channels);
            let (bottom_left, bottom_right) = bottom_pair.split_at(channels);
            let window = top_left.iter().zip(top_right).zip(bottom_left).zip(bottom_right);
            for (y, (((&a, &b), &c), &d)) in output_pixel.iter_mut().zip(window) {
                *y = a.max(b).max(c).max(d);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_outputs_equal, SplitMix64};
    use std::vec;
    use std::vec::Vec;

    /// The plainest possible max-pool, for comparison: index loops over the formula.
    fn naive_max_pool(g: &MaxPoolGeometry, input: &[i8]) -> Vec<i8> {
        let (oh, ow, c) = (g.height / 2, g.width / 2, g.channels);
        let mut output = vec![0i8; oh * ow * c];
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    let mut m = i8::MIN;
                    for p in 0..2 {
                        for q in 0..2 {
                            m = m.max(input[((2 * i + p) * g.width + 2 * j + q) * c + ch]);
                        }
                    }
                    output[(i * ow + j) * c + ch] = m;
                }
            }
        }
        output
    }

    fn run(g: &MaxPoolGeometry, input: &[i8]) -> Result<Vec<i8>, Error> {
        let mut output = vec![0i8; g.output_len()?];
        max_pool_s8(g, input, &mut output)?;
        Ok(output)
    }

    fn geometry(height: usize, width: usize, channels: usize) -> MaxPoolGeometry {
        MaxPoolGeometry {
            height,
            width,
            channels,
        }
    }

    #[test]
    fn one_channel_4x4_takes_the_max_of_each_window() {
        let input = [
            1, 2, -4, -1, //
            3, 0, -3, -2, //
            -128, -128, 127, 5, //
            -128, -127, 6, 7,
        ];
        let output = run(&geometry(4, 4, 1), &input).unwrap();
        // The max sits in each corner of its window once: bottom left, top right, bottom right,
        // top left; and both extremes of int8 survive.
        assert_outputs_equal("4x4x1", &output, &[3, -1, -127, 127]);
    }

    #[test]
    fn odd_trailing_row_and_column_are_dropped() {
        // 3x5x1: only rows 0-1 and columns 0-3 are pooled; the big values outside are ignored.
        let input = [
            0, 1, 2, 3, 100, //
            -1, -2, -3, -4, 100, //
            100, 100, 100, 100, 100,
        ];
        let output = run(&geometry(3, 5, 1), &input).unwrap();
        assert_outputs_equal("3x5x1", &output, &[1, 3]);
    }

    #[test]
    fn eight_channels_are_pooled_independently_in_nhwc_order() {
        // 2x4x8: two windows. Pixel (p, q) channel c holds a value whose max over each window
        // comes from a different corner per channel.
        let g = geometry(2, 4, 8);
        let mut input = vec![-128i8; 2 * 4 * 8];
        let mut expected = vec![0i8; 2 * 8];
        for j in 0..2 {
            for c in 0..8 {
                // Corner (c % 4) of window j gets the channel's max, 10 * c + j - 40.
                let (p, q) = (c % 4 / 2, c % 2);
                let max = (10 * c + j) as i8 - 40;
                input[(p * 4 + 2 * j + q) * 8 + c] = max;
                // The other corners hold smaller values (one of them -128).
                let (p2, q2) = (1 - p, q);
                input[(p2 * 4 + 2 * j + q2) * 8 + c] = max - 1;
                expected[j * 8 + c] = max;
            }
        }
        let output = run(&g, &input).unwrap();
        assert_outputs_equal("2x4x8", &output, &expected);
    }

    #[test]
    fn all_minus_128_and_all_127_stay_put() {
        let g = geometry(2, 2, 3);
        assert_outputs_equal("-128", &run(&g, &[-128; 12]).unwrap(), &[-128; 3]);
        assert_outputs_equal("127", &run(&g, &[127; 12]).unwrap(), &[127; 3]);
    }

    #[test]
    fn smallest_input_2x2_gives_one_pixel_and_2x3_drops_a_column() {
        assert_outputs_equal("2x2x1", &run(&geometry(2, 2, 1), &[-7, -9, -8, -10]).unwrap(), &[-7]);
        assert_outputs_equal(
            "2x3x1",
            &run(&geometry(2, 3, 1), &[-7, -9, 50, -8, -10, 60]).unwrap(),
            &[-7],
        );
    }

    #[test]
    fn geometry_helpers_compute_sizes_and_report_overflow() {
        let g = geometry(23, 23, 8);
        assert_eq!(g.validate(), Ok(()));
        assert_eq!((g.output_height(), g.output_width()), (11, 11));
        assert_eq!(g.input_len(), Ok(23 * 23 * 8));
        assert_eq!(g.output_len(), Ok(11 * 11 * 8));
        let overflow = Error::InvalidGeometry {
            reason: "a tensor size overflows usize",
        };
        let big = geometry(usize::MAX, 3, 1);
        assert_eq!(big.input_len(), Err(overflow));
        assert_eq!(big.output_len(), Ok(usize::MAX / 2));
        assert_eq!(big.validate(), Err(overflow));
        assert_eq!(geometry(usize::MAX, usize::MAX, 1).output_len(), Err(overflow));
    }

    #[test]
    fn invalid_geometry_is_an_error_and_leaves_output_untouched() {
        let small = Err(Error::InvalidGeometry {
            reason: "input is smaller than the 2x2 pooling window",
        });
        let cases = [
            ("height 1", geometry(1, 4, 1), small),
            ("width 1", geometry(4, 1, 1), small),
            ("height 0", geometry(0, 4, 1), small),
            ("width 0", geometry(4, 0, 1), small),
            (
                "channels 0",
                geometry(2, 2, 0),
                Err(Error::InvalidGeometry {
                    reason: "channel count is 0",
                }),
            ),
            (
                "input size overflows",
                geometry(usize::MAX / 2, 4, 1),
                Err(Error::InvalidGeometry {
                    reason: "a tensor size overflows usize",
                }),
            ),
        ];
        for (label, g, expected) in cases {
            assert_eq!(g.validate(), expected, "{label}: validate");
            let mut output = [42i8; 4];
            assert_eq!(max_pool_s8(&g, &[0; 4], &mut output), expected, "{label}: kernel");
            assert_eq!(output, [42; 4], "{label}: output was written before the error");
        }
    }

    #[test]
    fn bad_shapes_are_errors_and_leave_output_untouched() {
        // 4x5x2 → 2x2x2.
        let g = geometry(4, 5, 2);
        let shape = |operand, expected, actual| {
            Err(Error::ShapeMismatch {
                operand,
                expected,
                actual,
            })
        };
        let cases = [
            ("input too short", 39, 8, shape("input", 40, 39)),
            ("input too long", 41, 8, shape("input", 40, 41)),
            ("input of the pooled size", 32, 8, shape("input", 40, 32)),
            ("output too short", 40, 7, shape("output", 8, 7)),
            ("output too long", 40, 9, shape("output", 8, 9)),
            ("output of the rounded-up size", 40, 12, shape("output", 8, 12)),
        ];
        for (label, input_len, output_len, expected) in cases {
            let input = vec![1i8; input_len];
            let mut output = vec![42i8; output_len];
            assert_eq!(max_pool_s8(&g, &input, &mut output), expected, "{label}");
            assert!(
                output.iter().all(|&y| y == 42),
                "{label}: output was written before the error"
            );
        }
    }

    #[test]
    fn matches_naive_reference_on_random_shapes() {
        let mut rng = SplitMix64::new(0x5eed_9001);
        let mut outputs_checked = 0usize;
        let cases = 3_000;
        for case in 0..cases {
            let g = geometry(
                2 + rng.below(29) as usize,
                2 + rng.below(29) as usize,
                1 + rng.below(9) as usize,
            );
            // Sometimes a narrow value range, so that ties inside a window are common.
            let narrow = rng.below(3) == 0;
            let input: Vec<i8> = (0..g.input_len().unwrap())
                .map(|_| {
                    if narrow {
                        rng.range_i32(-128, -125) as i8
                    } else {
                        rng.range_i32(-128, 127) as i8
                    }
                })
                .collect();
            let actual = run(&g, &input).unwrap();
            let expected = naive_max_pool(&g, &input);
            assert_outputs_equal(&std::format!("case {case} ({g:?})"), &actual, &expected);
            outputs_checked += actual.len();
        }
        std::println!("{cases} random cases, {outputs_checked} outputs, 0 mismatches");
    }
}
