//! Int8 2-D convolution (stride 1, no padding), as TFLM's reference CONV_2D.
//!
//! TFLite's `CONV_2D` with `VALID` padding, stride 1, dilation 1 and per-output-channel weight
//! scales, bit-exact to TFLM's reference kernel. For each output pixel `(i, j)` and output
//! channel `o`:
//! `acc = bias[o] + sum_{p, q, c} w[o][p][q][c] * (x[i + p][j + q][c] - input_zero_point)` in
//! i32, then, exactly as in the fully connected layer,
//! `y[i][j][o] = clamp(multiply_by_quantized_multiplier(acc, m[o], shift[o]) + output_zero_point,
//! activation_min, activation_max)`.

use crate::error::expect_len;
#[cfg(any(not(arm_dsp), test))]
use crate::fully_connected_s8::{dot, dot4};
use crate::requantize::{requantize_to_s8, PerChannelQuant};
use crate::{Error, FcParams};

/// Shape of a convolution: an `[height][width][in_channels]` input, `out_channels` square
/// `kernel` x `kernel` filters, and an `[output_height][output_width][out_channels]` output with
/// `output_height = height - kernel + 1` and `output_width = width - kernel + 1`.
///
/// Every field must be at least 1 and `kernel` at most `height` and `width`; the size helpers
/// use checked arithmetic and return [`Error::InvalidGeometry`] instead of overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Input rows. Valid range: [`kernel`, `usize::MAX`].
    ///
    /// [`kernel`]: Conv2dGeometry::kernel
    pub height: usize,
    /// Input columns. Valid range: [`kernel`, `usize::MAX`].
    ///
    /// [`kernel`]: Conv2dGeometry::kernel
    pub width: usize,
    /// Channels of each input pixel (the filters' innermost dimension). Valid range: [1,
    /// `usize::MAX`].
    pub in_channels: usize,
    /// Number of filters, i.e. channels of each output pixel. Valid range: [1, `usize::MAX`].
    pub out_channels: usize,
    /// Side of the square filter window. Valid range: [1, min(`height`, `width`)].
    pub kernel: usize,
}

/// The error for a tensor whose size does not fit `usize`.
const SIZE_OVERFLOW: Error = Error::InvalidGeometry {
    reason: "a tensor size overflows usize",
};

/// The product of `dims`, or [`SIZE_OVERFLOW`].
fn checked_product(dims: &[usize]) -> Result<usize, Error> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(SIZE_OVERFLOW)
}

impl Conv2dGeometry {
    /// Checks that every dimension is at least 1, that the kernel fits in the input, and that
    /// the input, filter and output sizes fit `usize`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] naming the first problem found.
    pub fn validate(&self) -> Result<(), Error> {
        let zero = |reason| Err(Error::InvalidGeometry { reason });
        if self.kernel == 0 {
            return zero("kernel size is 0");
        }
        if self.in_channels == 0 {
            return zero("input channel count is 0");
        }
        if self.out_channels == 0 {
            return zero("output channel count is 0");
        }
        self.input_len()?;
        self.filter_len()?;
        self.output_len()?;
        Ok(())
    }

    /// `height - kernel + 1`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if `kernel` is 0 or larger than `height`.
    pub fn output_height(&self) -> Result<usize, Error> {
        valid_extent(self.height, self.kernel)
    }

    /// `width - kernel + 1`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if `kernel` is 0 or larger than `width`.
    pub fn output_width(&self) -> Result<usize, Error> {
        valid_extent(self.width, self.kernel)
    }

    /// Length of the flat NHWC input: `height * width * in_channels`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the product overflows `usize`.
    pub fn input_len(&self) -> Result<usize, Error> {
        checked_product(&[self.height, self.width, self.in_channels])
    }

    /// Length of the flat OHWI filters: `out_channels * kernel * kernel * in_channels`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the product overflows `usize`.
    pub fn filter_len(&self) -> Result<usize, Error> {
        checked_product(&[self.out_channels, self.kernel, self.kernel, self.in_channels])
    }

    /// Length of the flat NHWC output: `output_height * output_width * out_channels`.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the kernel does not fit (see [`output_height`]) or the
    /// product overflows `usize`.
    ///
    /// [`output_height`]: Conv2dGeometry::output_height
    pub fn output_len(&self) -> Result<usize, Error> {
        checked_product(&[self.output_height()?, self.output_width()?, self.out_channels])
    }
}

/// Lengths of one row of a convolution's tensors, for the loops over a validated geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowLens {
    /// One input row: `[W][C]`.
    pub input: usize,
    /// One window (and filter) row: `[k][C]`.
    pub window: usize,
    /// One output row: `[OW][O]`.
    pub output: usize,
}

impl Conv2dGeometry {
    /// The row lengths of this geometry. For a validated geometry (every dimension at least 1,
    /// every size within `usize`) none is 0 (`chunks_exact` needs that) and none overflows.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the kernel does not fit the input.
    pub(crate) fn row_lens(&self) -> Result<RowLens, Error> {
        Ok(RowLens {
            input: self.width * self.in_channels,
            window: self.kernel * self.in_channels,
            output: self.output_width()? * self.out_channels,
        })
    }
}

/// Output extent of a VALID, stride-1 window: `input - kernel + 1`.
fn valid_extent(input: usize, kernel: usize) -> Result<usize, Error> {
    if kernel == 0 {
        return Err(Error::InvalidGeometry {
            reason: "kernel size is 0",
        });
    }
    // kernel >= 1, so the difference is at most input - 1 and adding 1 cannot overflow.
    input
        .checked_sub(kernel)
        .map(|margin| margin + 1)
        .ok_or(Error::InvalidGeometry {
            reason: "kernel is larger than the input",
        })
}

/// Quantization parameters of a convolution: exactly those of the fully connected layer (same
/// fields, ranges and errors; filters are symmetric, zero point 0, so they have no entry).
pub type Conv2dParams = FcParams;

/// Int8 2-D convolution for one sample: `VALID` padding, stride 1, per-output-channel scales.
///
/// Shapes (all flat, row-major as in TFLite; see [`Conv2dGeometry`]): `input [H][W][C]`,
/// `filters [O][k][k][C]`, `bias [O]`, `quant.multipliers [O]`, `quant.shifts [O]`,
/// `output [H - k + 1][W - k + 1][O]`.
///
/// Filters are expected in [-127, 127] (symmetric quantization) but any int8 value computes
/// correctly. Bias is in units of `s_in * s_w[o]`. i32 overflow of the accumulator (possible
/// only with extreme biases or huge windows) wraps, as TFLM's C++ does on Cortex-M.
///
/// # Example
/// ```
/// use autoencoder_core::{conv2d_s8, Conv2dGeometry, Conv2dParams, PerChannelQuant};
///
/// // A 2x3 one-channel image and one 2x2 filter give a 1x2 output.
/// let geometry = Conv2dGeometry { height: 2, width: 3, in_channels: 1, out_channels: 1, kernel: 2 };
/// let input = [1, 2, 3, 4, 5, 6];
/// let filters = [2, 0, 0, -1];
/// // Effective scale 1.0: multiplier 2^30 (0.5) with shift 1.
/// let quant = PerChannelQuant { multipliers: &[1 << 30], shifts: &[1] };
/// let mut output = [0i8; 2];
/// conv2d_s8(&geometry, &Conv2dParams::new(0, 0), &quant, &filters, &[10], &input, &mut output)?;
/// // 10 + 2*1 - 5 = 7 and 10 + 2*2 - 6 = 8.
/// assert_eq!(output, [7, 8]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
///
/// # Errors
/// Everything is checked before `output` is written, so on error `output` is untouched, in this
/// order: the errors of [`Conv2dParams::validate`] and [`Conv2dGeometry::validate`],
/// [`Error::ShapeMismatch`] when `input`, `filters` or `bias` do not match the geometry, the
/// errors of [`PerChannelQuant::validate`], and [`Error::ShapeMismatch`] for `output`.
pub fn conv2d_s8(
    geometry: &Conv2dGeometry,
    params: &Conv2dParams,
    quant: &PerChannelQuant<'_>,
    filters: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    params.validate()?;
    geometry.validate()?;
    expect_len("input", geometry.input_len()?, input.len())?;
    expect_len("filters", geometry.filter_len()?, filters.len())?;
    expect_len("bias", geometry.out_channels, bias.len())?;
    quant.validate(geometry.out_channels)?;
    expect_len("output", geometry.output_len()?, output.len())?;

    let channel = |o: usize| {
        let m = quant.multipliers.get(o).copied().unwrap_or_default();
        (m, quant.shifts.get(o).copied().unwrap_or_default())
    };
    for_each_accumulator(
        geometry,
        params.input_zero_point,
        filters,
        bias,
        input,
        output,
        &|acc, o| {
            let (m, s) = channel(o);
            requantize_to_s8(
                acc,
                m,
                s,
                params.output_zero_point,
                params.activation_min,
                params.activation_max,
            )
        },
    )
}

/// The convolution's loop: for every output pixel and channel `o`, the accumulator
/// `bias[o] + sum w * (x - zero_point)` goes through `requantize(acc, o)`. Shared by
/// [`conv2d_s8`] and the fused [`conv2d_leaky_s8`](crate::conv2d_leaky_s8()), as one copy of
/// the loop (the requantization is called through a reference, once per output); callers have
/// validated every length against `geometry`.
///
/// On a Cortex-M4 or M7 (`cfg(arm_dsp)`) the DSP path (`conv2d_s8_dsp`)
/// computes them; elsewhere [`for_each_accumulator_portable`], its reference.
pub(crate) fn for_each_accumulator(
    geometry: &Conv2dGeometry,
    input_zero_point: i32,
    filters: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
    requantize: &dyn Fn(i32, usize) -> i8,
) -> Result<(), Error> {
    #[cfg(arm_dsp)]
    return crate::conv2d_s8_dsp::for_each_accumulator(
        geometry,
        input_zero_point,
        filters,
        bias,
        input,
        output,
        requantize,
    );
    #[cfg(not(arm_dsp))]
    for_each_accumulator_portable(geometry, input_zero_point, filters, bias, input, output, requantize)
}

/// [`for_each_accumulator`]'s portable loop, the reference for the DSP path.
#[cfg(any(not(arm_dsp), test))]
pub(crate) fn for_each_accumulator_portable(
    geometry: &Conv2dGeometry,
    input_zero_point: i32,
    filters: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
    requantize: &dyn Fn(i32, usize) -> i8,
) -> Result<(), Error> {
    let Conv2dGeometry {
        in_channels,
        out_channels,
        kernel,
        ..
    } = *geometry;
    let rows = geometry.row_lens()?;
    let (input_row_len, filter_row_len, output_row_len) = (rows.input, rows.window, rows.output);
    let filter_len = kernel * filter_row_len; // one filter: [k][k][C]

    // Filter row p meets input row i + p. Within a row the window's k pixels of C channels,
    // x[i + p][j..j + k][..], are contiguous and laid out exactly like the filter row
    // w[o][p][..][..], so each row is one dot product of k * C elements; four output channels
    // at a time share each window row (as the fully connected kernel shares its input).
    let mut acc = [0i32; MAX_CHANNELS_AT_ONCE];
    for (i, output_row) in output.chunks_exact_mut(output_row_len).enumerate() {
        for (j, output_pixel) in output_row.chunks_exact_mut(out_channels).enumerate() {
            let window_rows = input.chunks_exact(input_row_len).skip(i).take(kernel);
            let start = j * in_channels;
            let mut filters_left = filters.chunks_exact(filter_len);
            let mut bias_left = bias.iter();
            for (g, y4) in output_pixel.chunks_mut(MAX_CHANNELS_AT_ONCE).enumerate() {
                let n = y4.len();
                let group: [&[i8]; MAX_CHANNELS_AT_ONCE] = core::array::from_fn(|_| filters_left.next().unwrap_or(&[]));
                for (a, b) in acc.iter_mut().zip(&mut bias_left).take(n) {
                    *a = *b;
                }
                for (p, input_row) in window_rows.clone().enumerate() {
                    let window = input_row.get(start..start + filter_row_len).unwrap_or(&[]);
                    if n == MAX_CHANNELS_AT_ONCE {
                        let sums = dot4(
                            group.map(|f| filter_row(f, p, filter_row_len)),
                            window,
                            input_zero_point,
                        );
                        for (a, s) in acc.iter_mut().zip(sums) {
                            *a = a.wrapping_add(s);
                        }
                    } else {
                        for (a, f) in acc.iter_mut().zip(group).take(n) {
                            *a = a.wrapping_add(dot(filter_row(f, p, filter_row_len), window, input_zero_point));
                        }
                    }
                }
                for (o, (y, &a)) in y4.iter_mut().zip(&acc).enumerate() {
                    *y = requantize(a, g * MAX_CHANNELS_AT_ONCE + o);
                }
            }
        }
    }
    Ok(())
}

/// Row `p` (of `len` elements) of one filter.
#[cfg(any(not(arm_dsp), test))]
fn filter_row(filter: &[i8], p: usize, len: usize) -> &[i8] {
    filter.get(p * len..(p + 1) * len).unwrap_or(&[])
}

/// Output channels computed together.
#[cfg(any(not(arm_dsp), test))]
const MAX_CHANNELS_AT_ONCE: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requantize::tests::reference_mbqm;
    use crate::requantize::{quantize_multiplier, MAX_SHIFT, MIN_SHIFT};
    use crate::testutil::{assert_outputs_equal, SplitMix64};
    use std::vec;
    use std::vec::Vec;

    /// The plainest possible convolution, for comparison: index loops over the formula, the sum
    /// in i64 (truncated to i32 at the end, which equals wrapping i32 arithmetic), and the
    /// independent reference requantization.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv2d(
        g: &Conv2dGeometry,
        params: &Conv2dParams,
        multipliers: &[i32],
        shifts: &[i32],
        filters: &[i8],
        bias: &[i32],
        input: &[i8],
    ) -> Vec<i8> {
        let (h, w, c, n_out, k) = (g.height, g.width, g.in_channels, g.out_channels, g.kernel);
        let (oh, ow) = (h - k + 1, w - k + 1);
        let mut output = vec![0i8; oh * ow * n_out];
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..n_out {
                    let mut acc = i64::from(bias[o]);
                    for p in 0..k {
                        for q in 0..k {
                            for ch in 0..c {
                                let wv = i64::from(filters[((o * k + p) * k + q) * c + ch]);
                                let xv = i64::from(input[((i + p) * w + (j + q)) * c + ch]);
                                acc += wv * (xv - i64::from(params.input_zero_point));
                            }
                        }
                    }
                    let scaled = reference_mbqm(acc as i32, multipliers[o], shifts[o]);
                    let y = (i64::from(scaled) + i64::from(params.output_zero_point))
                        .clamp(i64::from(params.activation_min), i64::from(params.activation_max));
                    output[(i * ow + j) * n_out + o] = y as i8;
                }
            }
        }
        output
    }

    /// Runs the kernel on a freshly zeroed output of the geometry's size and returns it.
    #[allow(clippy::too_many_arguments)]
    fn run(
        g: &Conv2dGeometry,
        params: &Conv2dParams,
        multipliers: &[i32],
        shifts: &[i32],
        filters: &[i8],
        bias: &[i32],
        input: &[i8],
    ) -> Result<Vec<i8>, Error> {
        let mut output = vec![0i8; g.output_len()?];
        let quant = PerChannelQuant { multipliers, shifts };
        conv2d_s8(g, params, &quant, filters, bias, input, &mut output)?;
        Ok(output)
    }

    fn geometry(height: usize, width: usize, in_channels: usize, out_channels: usize, kernel: usize) -> Conv2dGeometry {
        Conv2dGeometry {
            height,
            width,
            in_channels,
            out_channels,
            kernel,
        }
    }

    // Effective scales as (multiplier, shift).
    const M_1: (i32, i32) = (1 << 30, 1); // 0.5 * 2
    const M_QUARTER: (i32, i32) = (1 << 30, -1); // 0.5 * 2^-1
    const M_2_POW_MINUS_8: (i32, i32) = (1 << 30, -7); // 0.5 * 2^-7

    #[test]
    fn one_channel_negative_accumulators_and_nhwc_output_order() {
        // Input 3x3x1, kernel 2, two filters → output 2x2x2.
        //   1 2 3
        //   4 5 6
        //   7 8 9
        let g = geometry(3, 3, 1, 2, 2);
        let input = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        // Filter 0: [[1, -1], [-2, 0]], bias 2, M = 1.
        // Filter 1: [[0, 0], [0, 1]] (the window's bottom right), bias -20, M = 0.25.
        let filters = [1, -1, -2, 0, 0, 0, 0, 1];
        let bias = [2, -20];
        let multipliers = [M_1.0, M_QUARTER.0];
        let shifts = [M_1.1, M_QUARTER.1];
        let params = Conv2dParams::new(0, -3);
        let output = run(&g, &params, &multipliers, &shifts, &filters, &bias, &input).unwrap();
        // Filter 0: acc = 2 + x00 - x01 - 2 x10: 2 + 1 - 2 - 8 = -7, 2 + 2 - 3 - 10 = -9,
        //   2 + 4 - 5 - 14 = -13, 2 + 5 - 6 - 16 = -15; minus 3: -10, -12, -16, -18.
        // Filter 1: acc = x11 - 20 = -15, -14, -12, -11; times 0.25 in two roundings:
        //   -15 → -7.5 → -7 → -3.5 → -4; -14 → -7 → -3.5 → -4; -12 → -6 → -3;
        //   -11 → -5.5 → -5 → -2.5 → -3; minus 3: -7, -7, -6, -6.
        // NHWC: (pixel (0,0): o0, o1), (0,1), (1,0), (1,1).
        assert_outputs_equal("1 channel", &output, &[-10, -7, -12, -7, -16, -6, -18, -6]);
    }

    #[test]
    fn input_zero_point_minus_128_output_zero_point_127_saturate_both_clamps() {
        // Input 2x2x1 with kernel 2: one output pixel. x - zp_in = [255, 0, 128, 127].
        let g = geometry(2, 2, 1, 3, 2);
        let input = [127, -128, 0, -1];
        let filters = [1, 1, 1, 1, -1, 0, 0, 0, 0, 0, -1, 0];
        let bias = [0, 0, -100_000];
        let (m, s) = M_2_POW_MINUS_8;
        let params = Conv2dParams::new(-128, 127);
        let output = run(&g, &params, &[m; 3], &[s; 3], &filters, &bias, &input).unwrap();
        // o0: acc 510 → 255 → 255 / 128 = 1.99 → 2; 127 + 2 = 129 → clamp 127.
        // o1: acc -255 → -127.5 → -127 (tie up) → -0.99 → -1; 126.
        // o2: acc -128 - 100000 → -50064 → -391.1 → -391; 127 - 391 → clamp -128.
        assert_outputs_equal("zp -128 / 127", &output, &[127, 126, -128]);
    }

    #[test]
    fn eight_channels_input_zero_point_127_output_zero_point_minus_128_kernel_equals_input() {
        // Input 2x2x8 with kernel 2 (the whole image): one output pixel of 8 channels. zp_in 127.
        let g = geometry(2, 2, 8, 8, 2);
        // x - zp: -255, 0, -127, -126, -128, -27, -227, -77.
        let pixel_00: [i8; 8] = [-128, 127, 0, 1, -1, 100, -100, 50];
        let pixel_01 = [127i8; 8]; // x - zp = 0: any weight contributes nothing
        let pixel_10 = [126i8; 8]; // x - zp = -1
        let pixel_11 = [-128i8; 8]; // x - zp = -255
        let input: Vec<i8> = [pixel_00, pixel_01, pixel_10, pixel_11].concat();
        // Filter o: -1 at (0, 0, o) and 5 at every channel of (0, 1); filter 5 also 3 at
        // (1, 0, 2); filter 4 also -127 at (1, 1, 4).
        let mut filters = vec![0i8; 8 * 2 * 2 * 8];
        for o in 0..8 {
            let base = o * 32;
            filters[base + o] = -1;
            for ch in 0..8 {
                filters[base + 8 + ch] = 5;
            }
        }
        filters[5 * 32 + 16 + 2] = 3;
        filters[4 * 32 + 24 + 4] = -127;
        let mut bias = [0i32; 8];
        bias[0] = 1;
        bias[1] = -1;
        let (m, s) = M_1;
        let params = Conv2dParams::new(127, -128);
        let output = run(&g, &params, &[m; 8], &[s; 8], &filters, &bias, &input).unwrap();
        // acc[o] = bias[o] - (x00[o] - zp): [1 + 255, -1 - 0, 127, 126, 128, 27, 227, 77],
        // plus o5: 3 * -1 = -3 → 24, plus o4: -127 * -255 = 32385 → 32513. M = 1, then - 128:
        // [128 → 127, -129 → -128, -1, -2, 32385 → 127, -104, 99, -51].
        assert_outputs_equal("8 channels", &output, &[127, -128, -1, -2, 127, -104, 99, -51]);
    }

    #[test]
    fn one_by_one_kernel_is_a_per_pixel_fully_connected_layer() {
        // Kernel 1 on a 1x1 input: kernel = input size, 1x1 output.
        let g = geometry(1, 1, 3, 2, 1);
        let params = Conv2dParams::new(10, 0);
        // x - zp = [-10, 0, 20]; o0: [1, 2, 3] → -10 + 60 = 50; o1: [-1, 0, -1] → 10 - 20 = -10.
        let output = run(
            &g,
            &params,
            &[M_1.0; 2],
            &[M_1.1; 2],
            &[1, 2, 3, -1, 0, -1],
            &[0, 0],
            &[0, 10, 30],
        )
        .unwrap();
        assert_outputs_equal("1x1", &output, &[50, -10]);
    }

    #[test]
    fn fused_activation_clamps_to_activation_range() {
        let g = geometry(1, 3, 1, 1, 1);
        let params = Conv2dParams {
            input_zero_point: 0,
            output_zero_point: -5,
            activation_min: -5, // fused ReLU: real 0
            activation_max: 10,
        };
        let output = run(&g, &params, &[1 << 30], &[0], &[1], &[0], &[100, -100, 7]).unwrap();
        // M = 0.5: 50 - 5 → 10; -50 - 5 → -5; 3.5 → 4, 4 - 5 = -1.
        assert_outputs_equal("relu", &output, &[10, -5, -1]);
    }

    #[test]
    fn extreme_bias_and_weights_wrap_like_the_reference_without_panicking() {
        let g = geometry(3, 3, 2, 2, 3);
        let params = Conv2dParams::new(-128, 0);
        // Filter 0 all 127, filter 1 all -128, input all 127 (x - zp = 255): the window sums
        // are +-18 * 32385 (about +-583000), added to biases at the ends of i32.
        let filters = [[127i8; 18], [-128i8; 18]].concat();
        let input = [127i8; 18];
        let bias = [i32::MAX, i32::MIN];
        let (multipliers, shifts) = ([1 << 30, i32::MAX], [MAX_SHIFT, MIN_SHIFT]);
        let output = run(&g, &params, &multipliers, &shifts, &filters, &bias, &input).unwrap();
        let expected = naive_conv2d(&g, &params, &multipliers, &shifts, &filters, &bias, &input);
        assert_outputs_equal("wrapping", &output, &expected);
    }

    #[test]
    fn geometry_helpers_compute_sizes_and_report_overflow() {
        let g = geometry(28, 28, 1, 8, 6);
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(g.output_height(), Ok(23));
        assert_eq!(g.output_width(), Ok(23));
        assert_eq!(g.input_len(), Ok(784));
        assert_eq!(g.filter_len(), Ok(288));
        assert_eq!(g.output_len(), Ok(23 * 23 * 8));
        let big = usize::MAX / 2 + 1;
        let cases = [
            ("input overflows", geometry(big, 2, 1, 1, 1), SIZE_OVERFLOW),
            ("filters overflow", geometry(1, 1, 2, big, 1), SIZE_OVERFLOW),
            ("output overflows", geometry(usize::MAX, 1, 1, 2, 1), SIZE_OVERFLOW),
        ];
        for (label, g, expected) in cases {
            assert_eq!(g.validate(), Err(expected), "{label}");
        }
        assert_eq!(geometry(big, 2, 1, 1, 1).input_len(), Err(SIZE_OVERFLOW));
        assert_eq!(geometry(1, 1, 2, big, 1).filter_len(), Err(SIZE_OVERFLOW));
        assert_eq!(geometry(2, 1, 1, big, 1).output_len(), Err(SIZE_OVERFLOW));
        assert_eq!(geometry(usize::MAX, 1, 1, 1, 1).output_height(), Ok(usize::MAX));
    }

    #[test]
    fn invalid_geometry_is_an_error() {
        let invalid = |reason| Err(Error::InvalidGeometry { reason });
        let cases = [
            ("kernel 0", geometry(3, 3, 1, 1, 0), invalid("kernel size is 0")),
            (
                "in channels 0",
                geometry(3, 3, 0, 1, 1),
                invalid("input channel count is 0"),
            ),
            (
                "out channels 0",
                geometry(3, 3, 1, 0, 1),
                invalid("output channel count is 0"),
            ),
            (
                "kernel > height",
                geometry(2, 3, 1, 1, 3),
                invalid("kernel is larger than the input"),
            ),
            (
                "kernel > width",
                geometry(3, 2, 1, 1, 3),
                invalid("kernel is larger than the input"),
            ),
            (
                "height 0",
                geometry(0, 3, 1, 1, 1),
                invalid("kernel is larger than the input"),
            ),
        ];
        for (label, g, expected) in cases {
            assert_eq!(g.validate(), expected, "{label}: validate");
            let filters = vec![0i8; g.filter_len().unwrap_or(0).min(64)];
            let input = vec![0i8; g.input_len().unwrap_or(0).min(64)];
            let bias = vec![0i32; g.out_channels];
            let multipliers = vec![1 << 30; g.out_channels];
            let shifts = vec![0; g.out_channels];
            let quant = PerChannelQuant {
                multipliers: &multipliers,
                shifts: &shifts,
            };
            let mut output = [42i8; 4];
            let result = conv2d_s8(
                &g,
                &Conv2dParams::new(0, 0),
                &quant,
                &filters,
                &bias,
                &input,
                &mut output,
            );
            assert_eq!(result, expected, "{label}: kernel");
            assert_eq!(output, [42; 4], "{label}: output was written before the error");
        }
    }

    #[test]
    fn bad_shapes_and_params_are_errors_and_leave_output_untouched() {
        // A valid call: 3x3x2 input, 2 filters of 2x2x2, output 2x2x2.
        let g = geometry(3, 3, 2, 2, 2);
        let ok = Conv2dParams::new(0, 0);
        let m2 = [1 << 30; 2];
        let s2 = [0; 2];
        let f = [1i8; 16];
        let b2 = [0; 2];
        let x = [1i8; 18];
        let shape = |operand, expected, actual| Error::ShapeMismatch {
            operand,
            expected,
            actual,
        };
        let range = |activation_min, activation_max| Conv2dParams {
            activation_min,
            activation_max,
            ..ok
        };
        #[allow(clippy::type_complexity)]
        let cases: [(&str, Conv2dParams, &[i32], &[i32], &[i8], &[i32], &[i8], usize, Error); 16] = [
            (
                "input too short",
                ok,
                &m2,
                &s2,
                &f,
                &b2,
                &x[..17],
                8,
                shape("input", 18, 17),
            ),
            (
                "input too long",
                ok,
                &m2,
                &s2,
                &f,
                &b2,
                &[1; 19],
                8,
                shape("input", 18, 19),
            ),
            (
                "filters too short",
                ok,
                &m2,
                &s2,
                &f[..15],
                &b2,
                &x,
                8,
                shape("filters", 16, 15),
            ),
            (
                "filters too long",
                ok,
                &m2,
                &s2,
                &[1; 17],
                &b2,
                &x,
                8,
                shape("filters", 16, 17),
            ),
            ("bias too short", ok, &m2, &s2, &f, &b2[..1], &x, 8, shape("bias", 2, 1)),
            (
                "too few multipliers",
                ok,
                &m2[..1],
                &s2,
                &f,
                &b2,
                &x,
                8,
                shape("multipliers", 2, 1),
            ),
            (
                "too many shifts",
                ok,
                &m2,
                &[0; 3],
                &f,
                &b2,
                &x,
                8,
                shape("shifts", 2, 3),
            ),
            (
                "shift 31",
                ok,
                &m2,
                &[0, 31],
                &f,
                &b2,
                &x,
                8,
                Error::ShiftOutOfRange { channel: 1, shift: 31 },
            ),
            (
                "shift -32",
                ok,
                &m2,
                &[-32, 0],
                &f,
                &b2,
                &x,
                8,
                Error::ShiftOutOfRange { channel: 0, shift: -32 },
            ),
            (
                "negative multiplier",
                ok,
                &[1, -1],
                &s2,
                &f,
                &b2,
                &x,
                8,
                Error::NegativeMultiplier {
                    channel: 1,
                    multiplier: -1,
                },
            ),
            ("output too short", ok, &m2, &s2, &f, &b2, &x, 7, shape("output", 8, 7)),
            ("output too long", ok, &m2, &s2, &f, &b2, &x, 9, shape("output", 8, 9)),
            (
                "input zero point 128",
                Conv2dParams::new(128, 0),
                &m2,
                &s2,
                &f,
                &b2,
                &x,
                8,
                Error::InputZeroPointOutOfRange { zero_point: 128 },
            ),
            (
                "output zero point -129",
                Conv2dParams::new(0, -129),
                &m2,
                &s2,
                &f,
                &b2,
                &x,
                8,
                Error::OutputZeroPointOutOfRange { zero_point: -129 },
            ),
            (
                "activation min > max",
                range(5, 4),
                &m2,
                &s2,
                &f,
                &b2,
                &x,
                8,
                Error::InvalidActivationRange { min: 5, max: 4 },
            ),
            (
                "activation max 128",
                range(0, 128),
                &m2,
                &s2,
                &f,
                &b2,
                &x,
                8,
                Error::InvalidActivationRange { min: 0, max: 128 },
            ),
        ];
        for (label, params, multipliers, shifts, filters, bias, input, output_len, expected) in cases {
            let mut output = vec![42i8; output_len];
            let quant = PerChannelQuant { multipliers, shifts };
            let result = conv2d_s8(&g, &params, &quant, filters, bias, input, &mut output);
            assert_eq!(result, Err(expected), "{label}");
            assert!(
                output.iter().all(|&y| y == 42),
                "{label}: output was written before the error"
            );
        }
        let too_low = range(-129, 0);
        let quant = PerChannelQuant {
            multipliers: &m2,
            shifts: &s2,
        };
        let mut output = [42i8; 8];
        assert_eq!(
            conv2d_s8(&g, &too_low, &quant, &f, &b2, &x, &mut output),
            Err(Error::InvalidActivationRange { min: -129, max: 0 })
        );
        assert_eq!(
            output, [42; 8],
            "activation min -129: output was written before the error"
        );
    }

    /// Random operands for `g`, run through the kernel and the naive reference.
    fn check_random_case(rng: &mut SplitMix64, g: &Conv2dGeometry, label: &str) -> usize {
        let mut params = Conv2dParams::new(rng.range_i32(-128, 127), rng.range_i32(-128, 127));
        if rng.below(4) == 0 {
            params.activation_min = rng.range_i32(-128, 127);
            params.activation_max = rng.range_i32(params.activation_min, 127);
        }
        let weight_min = if rng.below(8) == 0 { -128 } else { -127 };
        let filters: Vec<i8> = (0..g.filter_len().unwrap())
            .map(|_| rng.range_i32(weight_min, 127) as i8)
            .collect();
        let input: Vec<i8> = (0..g.input_len().unwrap())
            .map(|_| rng.range_i32(-128, 127) as i8)
            .collect();
        let bias: Vec<i32> = (0..g.out_channels)
            .map(|_| match rng.below(8) {
                0 => rng.next_u64() as i32,
                _ => rng.range_i32(-(1 << 20), 1 << 20),
            })
            .collect();
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) = (0..g.out_channels)
            .map(|_| {
                if rng.below(4) == 0 {
                    (rng.below(1 << 31) as i32, rng.range_i32(MIN_SHIFT, MAX_SHIFT))
                } else {
                    quantize_multiplier(2f64.powf(rng.next_f64() * 18.0 - 16.0)).unwrap()
                }
            })
            .unzip();
        let actual = run(g, &params, &multipliers, &shifts, &filters, &bias, &input).unwrap();
        let expected = naive_conv2d(g, &params, &multipliers, &shifts, &filters, &bias, &input);
        assert_outputs_equal(&std::format!("{label} ({g:?}, {params:?})"), &actual, &expected);
        actual.len()
    }

    #[test]
    fn matches_naive_reference_on_random_shapes() {
        let mut rng = SplitMix64::new(0x5eed_c0f2);
        let mut outputs_checked = 0usize;
        let cases = 1_500;
        for case in 0..cases {
            let height = 1 + rng.below(14) as usize;
            let width = 1 + rng.below(14) as usize;
            let kernel = 1 + rng.below(height.min(width) as u64) as usize;
            let g = geometry(
                height,
                width,
                1 + rng.below(9) as usize,
                1 + rng.below(9) as usize,
                kernel,
            );
            outputs_checked += check_random_case(&mut rng, &g, &std::format!("case {case}"));
        }
        std::println!("{cases} random cases, {outputs_checked} outputs, 0 mismatches");
    }

    #[test]
    fn matches_naive_reference_on_the_seed_encoder_shapes() {
        // The seed's encoder: 28x28x1 → conv 6x6 → 23x23x8 → pool → 11x11x8 → conv 6x6 → 6x6x8.
        let mut rng = SplitMix64::new(0x5eed_c0f3);
        for (label, g) in [
            ("conv 1", geometry(28, 28, 1, 8, 6)),
            ("conv 2", geometry(11, 11, 8, 8, 6)),
        ] {
            for _ in 0..5 {
                check_random_case(&mut rng, &g, label);
            }
        }
    }
}
