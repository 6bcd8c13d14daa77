//! The convolutions' sums on the Cortex-M4's DSP path (`cfg(arm_dsp)`, see build.rs): each
//! output pixel's window gathered into one contiguous column (im2col, one pixel at a time),
//! then every filter summed over that column as the rows of a fully connected layer, with the
//! fully connected layers' `SMLAD` loop ([`fully_connected_s8_dsp`](crate::fully_connected_s8_dsp)):
//! four filters per pass, four window values per step.
//!
//! The filters `[O][k][k][C]` are laid out exactly as a fully connected layer's weights
//! `[O][k * k * C]` over the column `x[i + p][j + q][c]` in `(p, q, c)` order, so each
//! accumulator is `bias[o] + sum w * (x - zero_point)` over the same products as the portable
//! loop's ([`for_each_accumulator`](crate::conv2d_s8)); wrapping addition is associative, so the
//! order of the additions cannot change a bit. A window wider than
//! [`CENTERED_MAX`](crate::fully_connected_s8) values (in no shipped model) takes the portable
//! loop.
//!
//! Per pixel of `conv`'s last three layers (6 x 6 windows of 8 channels, 8 filters): 288 bytes
//! gathered, 72 groups of four packed, two passes of the four-filter loop and eight
//! requantizations for 2,304 multiply-accumulates.

use crate::conv2d_s8::Conv2dGeometry;
use crate::fully_connected_s8::{CENTERED_MAX, SUM_CHUNK};
use crate::fully_connected_s8_dsp::{row_sum_chunks, Rows};
use crate::Error;

/// What [`for_each_window`] calls for each output pixel: its window and its outputs.
pub(crate) type PixelFn<'a> = dyn FnMut(Rows<'_>, &mut [i8]) -> Result<(), Error> + 'a;

/// The convolution's loop through windows: for every output pixel and channel `o`,
/// `requantize(bias[o] + sum w * (x - zero_point), o)`, the sums from the fully connected
/// layers' DSP path. Callers have validated every length against `geometry`.
pub(crate) fn for_each_accumulator(
    geometry: &Conv2dGeometry,
    input_zero_point: i32,
    filters: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
    requantize: &dyn Fn(i32, usize) -> i8,
) -> Result<(), Error> {
    let mut sums = [0; SUM_CHUNK];
    for_each_window(geometry, input, output, &mut |window, pixel| {
        let mut channels = pixel.iter_mut().zip(bias).enumerate();
        row_sum_chunks(filters, window, input_zero_point, &mut sums, &mut |sums| {
            for (&sum, (o, (y, &b))) in sums.iter().zip(&mut channels) {
                *y = requantize(b.wrapping_add(sum), o);
            }
        });
        Ok(())
    })
}

/// Calls `f(window, pixel)` for every output pixel, in order: `window` its inputs
/// `x[i + p][j + q][c]` in `(p, q, c)` order (`k * k * C` values, the layout of one filter),
/// `pixel` its `out_channels` outputs; stops at `f`'s first error. `input` and `output` have the
/// geometry's lengths (validated by the caller).
///
/// The window's `k` rows are each contiguous in the input: they go as they are, `k` rows one
/// input row apart, when each holds whole groups of four values (`k * C` a multiple of 4, as in
/// `conv`'s last three layers) or when the window holds more than [`CENTERED_MAX`] values (the
/// sums are then plain); otherwise they are first copied into one column, which the sums pack.
pub(crate) fn for_each_window(
    geometry: &Conv2dGeometry,
    input: &[i8],
    output: &mut [i8],
    f: &mut PixelFn<'_>,
) -> Result<(), Error> {
    let Conv2dGeometry {
        in_channels,
        out_channels,
        kernel,
        ..
    } = *geometry;
    let rows = geometry.row_lens()?;
    let (input_row_len, window_row_len, output_row_len) = (rows.input, rows.window, rows.output);
    let mut room = [0i8; CENTERED_MAX];
    let column = room
        .get_mut(..kernel * window_row_len)
        .filter(|_| !window_row_len.is_multiple_of(4));
    let mut column = column.filter(|_| kernel > 1);
    for (i, output_row) in output.chunks_exact_mut(output_row_len).enumerate() {
        for (j, pixel) in output_row.chunks_exact_mut(out_channels).enumerate() {
            let window = Rows {
                values: input.get(i * input_row_len + j * in_channels..).unwrap_or(&[]),
                len: window_row_len,
                stride: input_row_len,
                count: kernel,
            };
            match column.as_deref_mut() {
                Some(column) => {
                    for (to, from) in column.chunks_exact_mut(window_row_len).zip(window.iter()) {
                        for (t, x) in to.iter_mut().zip(from) {
                            *t = *x;
                        }
                    }
                    f(Rows::one(column), pixel)?;
                }
                None => f(window, pixel)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d_s8::for_each_accumulator_portable as portable;
    use crate::testutil::SplitMix64;
    use std::vec;
    use std::vec::Vec;

    /// A requantization that keeps every bit of the accumulator it can in the output and the
    /// channel too, so that a wrong sum or a wrong channel shows.
    fn mix(acc: i32, o: usize) -> i8 {
        (acc ^ (acc >> 8) ^ (acc >> 16) ^ (acc >> 24) ^ (o as i32 * 37)) as i8
    }

    /// Every accumulator of the im2col loop, with the DSP path's sums modelled in plain Rust,
    /// is the portable loop's, on random shapes: one channel and many, window rows of whole
    /// groups of four (straight from the input) and not (one column), 1 to 9 filters (a last pass of one to
    /// three), 1x1, whole-image and 20x20 kernels, a window of more values than are packed,
    /// weights of -128, zero points at both ends of int8, huge biases (wrapping).
    #[test]
    fn im2col_sums_are_the_portable_loops() {
        let mut rng = SplitMix64::new(0xc011);
        for case in 0..400 {
            let kernel = 1 + rng.below(6) as usize;
            let mut g = Conv2dGeometry {
                height: kernel + rng.below(5) as usize,
                width: kernel + rng.below(5) as usize,
                in_channels: 1 + rng.below(9) as usize,
                out_channels: 1 + rng.below(9) as usize,
                kernel,
            };
            if case % 50 == 13 {
                // A window of more values than are packed: plain sums.
                g = Conv2dGeometry {
                    height: 6,
                    width: 7,
                    in_channels: 29,
                    out_channels: 3,
                    kernel: 6,
                };
            }
            if case % 50 == 7 {
                // Rows of whole groups of four, one value wide.
                g = Conv2dGeometry {
                    height: 20,
                    width: 21,
                    in_channels: 1,
                    out_channels: 5,
                    kernel: 20,
                };
            }
            let zero_point = [-128, 127, 0, rng.below(256) as i32 - 128][case % 4];
            let extreme = case % 3 == 0;
            let filters: Vec<i8> = (0..g.filter_len().unwrap())
                .map(|_| if extreme { -128 } else { rng.next_u64() as i8 })
                .collect();
            let input: Vec<i8> = (0..g.input_len().unwrap())
                .map(|_| if extreme { 127 } else { rng.next_u64() as i8 })
                .collect();
            let bias: Vec<i32> = (0..g.out_channels)
                .map(|_| {
                    if case % 5 == 0 {
                        i32::MAX - rng.below(1000) as i32
                    } else {
                        rng.next_u64() as i32 >> 12
                    }
                })
                .collect();
            let n = g.output_len().unwrap();
            let mut expected = vec![0i8; n];
            portable(&g, zero_point, &filters, &bias, &input, &mut expected, &mix).unwrap();
            let mut got = vec![0i8; n];
            let done = for_each_accumulator(&g, zero_point, &filters, &bias, &input, &mut got, &mix);
            assert_eq!(done, Ok(()), "case {case}: {g:?}");
            assert_eq!(got, expected, "case {case}: {g:?}, zero point {zero_point}");
        }
    }
}
