//! Int8 fully connected layer: TFLite's `FULLY_CONNECTED` with per-output-channel weight scales,
//! bit-exact to TFLM's reference kernel.
//!
//! For each output channel `c`:
//! `acc = bias[c] + sum_i w[c][i] * (x[i] - input_zero_point)` in i32, then
//! `y[c] = clamp(multiply_by_quantized_multiplier(acc, m[c], shift[c]) + output_zero_point,
//! activation_min, activation_max)`.

use crate::error::expect_len;
use crate::requantize::{requantize_to_s8, PerChannelQuant};
use crate::Error;

/// Quantization parameters of a fully connected call, in the style of CMSIS-NN's
/// `cmsis_nn_fc_params` (which stores the negated zero points as "offsets"; here they are the
/// zero points themselves, as in the TFLite model).
///
/// Weights are symmetric (zero point 0), so they have no entry here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcParams {
    /// Zero point of the input tensor. Valid range: [-128, 127].
    pub input_zero_point: i32,
    /// Zero point of the output tensor. Valid range: [-128, 127].
    pub output_zero_point: i32,
    /// Lower clamp of the output, in output codes. Valid range: [-128, `activation_max`];
    /// -128 for no fused activation, `output_zero_point` for a fused ReLU.
    pub activation_min: i32,
    /// Upper clamp of the output, in output codes. Valid range: [`activation_min`, 127];
    /// 127 for no fused activation.
    ///
    /// [`activation_min`]: FcParams::activation_min
    pub activation_max: i32,
}

impl FcParams {
    /// Parameters without a fused activation: the output clamp is the whole int8 range.
    pub const fn new(input_zero_point: i32, output_zero_point: i32) -> Self {
        Self {
            input_zero_point,
            output_zero_point,
            activation_min: i8::MIN as i32,
            activation_max: i8::MAX as i32,
        }
    }

    /// Checks every field against its documented range.
    ///
    /// # Errors
    /// [`Error::InputZeroPointOutOfRange`], [`Error::OutputZeroPointOutOfRange`] or
    /// [`Error::InvalidActivationRange`].
    pub fn validate(&self) -> Result<(), Error> {
        const INT8: core::ops::RangeInclusive<i32> = i8::MIN as i32..=i8::MAX as i32;
        if !INT8.contains(&self.input_zero_point) {
            return Err(Error::InputZeroPointOutOfRange {
                zero_point: self.input_zero_point,
            });
        }
        if !INT8.contains(&self.output_zero_point) {
            return Err(Error::OutputZeroPointOutOfRange {
                zero_point: self.output_zero_point,
            });
        }
        if !INT8.contains(&self.activation_min)
            || !INT8.contains(&self.activation_max)
            || self.activation_min > self.activation_max
        {
            return Err(Error::InvalidActivationRange {
                min: self.activation_min,
                max: self.activation_max,
            });
        }
        Ok(())
    }
}

/// Int8 fully connected layer for one sample.
///
/// Shapes (all flat, row-major as in TFLite): `input [n_in]`, `output [n_out]`,
/// `weights [n_out][n_in]` (row `c` holds the weights of output `c`), `bias [n_out]`,
/// `quant.multipliers [n_out]`, `quant.shifts [n_out]`. `n_in` and `n_out` are taken from
/// `input.len()` and `output.len()`; either may be 0.
///
/// Weights are expected in [-127, 127] (symmetric quantization) but any int8 value computes
/// correctly. Bias is in units of `s_in * s_w[c]`. i32 overflow of the accumulator (possible
/// only with extreme biases or tens of thousands of inputs) wraps, as TFLM's C++ does on
/// Cortex-M.
///
/// # Errors
/// Everything is checked before `output` is written, so on error `output` is untouched:
/// the errors of [`FcParams::validate`] and [`PerChannelQuant::validate`], and
/// [`Error::ShapeMismatch`] when `weights` or `bias` do not match `n_in` and `n_out`.
pub fn fully_connected_s8(
    params: &FcParams,
    quant: &PerChannelQuant<'_>,
    weights: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let n_in = input.len();
    let n_out = output.len();
    params.validate()?;
    // If n_out * n_in overflows, no slice can be that long (slice lengths are at most
    // isize::MAX), so the saturated product still reports a mismatch.
    let expected_weights = n_out.saturating_mul(n_in);
    expect_len("weights", expected_weights, weights.len())?;
    expect_len("bias", n_out, bias.len())?;
    quant.validate(n_out)?;

    let requantize = |acc: i32, multiplier: i32, shift: i32| {
        requantize_to_s8(
            acc,
            multiplier,
            shift,
            params.output_zero_point,
            params.activation_min,
            params.activation_max,
        )
    };
    let per_channel = bias.iter().zip(quant.multipliers).zip(quant.shifts);

    if n_in == 0 {
        // No inputs: each output is its requantized bias. Kept apart because `chunks_exact`
        // does not accept a chunk size of 0.
        for (y, ((&b, &multiplier), &shift)) in output.iter_mut().zip(per_channel) {
            *y = requantize(b, multiplier, shift);
        }
        return Ok(());
    }

    let mut channels = output.iter_mut().zip(per_channel);
    row_sums(weights, input, params.input_zero_point, &mut |sum| {
        if let Some((y, ((&b, &multiplier), &shift))) = channels.next() {
            // Adding the bias first or last gives the same i32 value: wrapping addition is
            // associative, so the order cannot change a bit of the result.
            *y = requantize(b.wrapping_add(sum), multiplier, shift);
        }
    });
    Ok(())
}

/// Inputs up to this many are centered once per call on Arm, into a stack buffer of 2 KiB.
pub(crate) const CENTERED_MAX: usize = 1024;

/// Calls `f` with `sum_i w[r][i] * (x[i] - zero_point)` (wrapping i32) for every row `r` of
/// `weights` (`[rows][input.len()]`), in order. `input` is not empty.
///
/// Two loop shapes compute the same sums (wrapping addition is associative, so the order cannot
/// change a bit), each where the compiler does best with it:
/// - on a Cortex-M3, M4 or M7 (without the DSP path), [`row_sums_centered`]: the centered inputs formed once per call,
///   two to a word, four rows per pass: 2.88 instructions per multiply-accumulate for `fc`'s
///   encoder on a Cortex-M4 with the `portable` feature, everything included (2.98 before the
///   model runner ran a layer in one pass; then 3.20 with i16 inputs and two rows, 3.76 with
///   the other shape);
/// - elsewhere, [`row_sums_direct`]: four rows per pass with the zero point inside the loop,
///   which the host's vectorizer handles well (2.4 times the other shape's throughput on x86-64),
///   and which a Cortex-M0 (`cfg(armv6m)`, eight low registers, no `SMLABB`) runs in 15 % fewer
///   instructions than the centered shape, whose loop spills to the stack there.
///
/// On a Cortex-M4 or M7 without the `portable` feature (`cfg(arm_dsp)`), the DSP path
/// computes them instead ([`fully_connected_s8_dsp`](crate::fully_connected_s8_dsp)): the same
/// sums with `SMLAD`, 1.4 instructions per multiply-accumulate in its loop.
///
/// `f` is called through a reference, once per row, so that the plain and the fused kernels
/// share one copy of the loops (firmware flash).
pub(crate) fn row_sums(weights: &[i8], input: &[i8], zero_point: i32, f: &mut dyn FnMut(i32)) {
    if cfg!(arm_dsp) {
        row_sum_chunks(weights, input, zero_point, &mut |sums| sums.iter().for_each(|&s| f(s)));
    } else if cfg!(all(target_arch = "arm", not(armv6m))) {
        row_sums_centered(weights, input, zero_point, f);
    } else {
        row_sums_direct(weights, input, zero_point, f);
    }
}

/// Rows whose sums [`row_sum_chunks`] hands over at a time.
pub(crate) const SUM_CHUNK: usize = 64;

/// The sums of [`row_sums`], handed to `f` [`SUM_CHUNK`] rows at a time (fewer in the last
/// call), in order: each caller's loop over its outputs then runs apart from the loop over the
/// weights, with its own registers. `input` is not empty.
pub(crate) fn row_sum_chunks(weights: &[i8], input: &[i8], zero_point: i32, f: &mut dyn FnMut(&[i32])) {
    #[cfg(arm_dsp)]
    crate::fully_connected_s8_dsp::row_sum_chunks(
        weights,
        crate::fully_connected_s8_dsp::Rows::one(input),
        zero_point,
        &mut [0; SUM_CHUNK],
        f,
    );
    #[cfg(not(arm_dsp))]
    {
        let mut sums = [0i32; SUM_CHUNK];
        let mut n = 0;
        row_sums(weights, input, zero_point, &mut |sum| {
            if let Some(slot) = sums.get_mut(n) {
                *slot = sum;
                n += 1;
            }
            if n == SUM_CHUNK {
                f(&sums);
                n = 0;
            }
        });
        if n > 0 {
            f(sums.get(..n).unwrap_or(&[]));
        }
    }
}

/// [`row_sums`], four rows per pass, the zero point subtracted inside the loop.
pub(crate) fn row_sums_direct(weights: &[i8], input: &[i8], zero_point: i32, f: &mut dyn FnMut(i32)) {
    let n_in = input.len();
    let mut rows = weights.chunks_exact(4 * n_in);
    for w4 in &mut rows {
        let (w01, w23) = w4.split_at(2 * n_in);
        let (w0, w1) = w01.split_at(n_in);
        let (w2, w3) = w23.split_at(n_in);
        dot4([w0, w1, w2, w3], input, zero_point).into_iter().for_each(&mut *f);
    }
    for row in rows.remainder().chunks_exact(n_in) {
        f(dot(row, input, zero_point));
    }
}

/// [`row_sums`] with the centered inputs `x - zp` (in [-255, 255]) formed once per call, as two
/// 16-bit halves of a word, in a stack buffer of [`CENTERED_MAX`] inputs (wider inputs, in no
/// shipped model, go through [`dot`] row by row); then four rows per pass share each loaded word. An odd last input is
/// summed directly.
///
/// On a Cortex-M4 one word load serves two inputs of four rows, and each product of a weight
/// with a half word is one `SMLABB`/`SMLATB`: the loop the compiler makes of it takes 84
/// instructions for 32 multiply-accumulates.
pub(crate) fn row_sums_centered(weights: &[i8], input: &[i8], zero_point: i32, f: &mut dyn FnMut(i32)) {
    let n_in = input.len();
    let mut buffer = [0u32; CENTERED_MAX / 2];
    let Some(packed) = buffer.get_mut(..n_in / 2) else {
        for row in weights.chunks_exact(n_in) {
            f(dot(row, input, zero_point));
        }
        return;
    };
    // Validated int8 zero points keep x - zp inside i16; wrapping keeps unvalidated callers
    // panic-free.
    let zp = zero_point as i16;
    let center = |x: i8| i16::from(x).wrapping_sub(zp) as u16;
    for (word, x) in packed.iter_mut().zip(input.chunks_exact(2)) {
        if let [a, b] = x {
            *word = u32::from(center(*a)) | (u32::from(center(*b)) << 16);
        }
    }
    let packed = &*packed;
    let paired = 2 * packed.len();
    let tail = input.get(paired..).unwrap_or(&[]);
    let mut quads = weights.chunks_exact(4 * n_in);
    for w4 in &mut quads {
        let (w01, w23) = w4.split_at(2 * n_in);
        let (w0, w1) = w01.split_at(n_in);
        let (w2, w3) = w23.split_at(n_in);
        let rows = [w0, w1, w2, w3];
        let sums = dot4_packed(rows, packed);
        for (row, sum) in rows.into_iter().zip(sums) {
            f(sum.wrapping_add(dot(row.get(paired..).unwrap_or(&[]), tail, zero_point)));
        }
    }
    // The last `rows % 4` rows, one at a time.
    for row in quads.remainder().chunks_exact(n_in) {
        f(dot(row, input, zero_point));
    }
}

/// `sum_i w[r][i] * c[i]` for four rows over the `2 * packed.len()` centered inputs `c`
/// held two to a word (`c[2k]` in the low half of `packed[k]`, `c[2k + 1]` in the high half).
#[inline]
fn dot4_packed(w: [&[i8]; 4], packed: &[u32]) -> [i32; 4] {
    // The signed low and high halves of a word: the operands `SMLABB` and `SMLATB` take.
    let low = |c: u32| ((c as i32) << 16) >> 16;
    let high = |c: u32| (c as i32) >> 16;
    let [w0, w1, w2, w3] = w;
    let mut acc = [0i32; 4];
    for ((((c, a), b), d), e) in packed
        .iter()
        .zip(w0.chunks_exact(2))
        .zip(w1.chunks_exact(2))
        .zip(w2.chunks_exact(2))
        .zip(w3.chunks_exact(2))
    {
        let (c0, c1) = (low(*c), high(*c));
        for (s, w) in acc.iter_mut().zip([a, b, d, e]) {
            if let [w0, w1] = w {
                *s = s.wrapping_add(i32::from(*w0) * c0).wrapping_add(i32::from(*w1) * c1);
            }
        }
    }
    acc
}

/// `sum_i w[i] * (x[i] - zero_point)` with wrapping i32 addition.
///
/// Both zero points are validated to int8, so `x - zp` is in [-255, 255] and each product is at
/// most 128 * 255 = 32,640 in magnitude: it fits an i16, which lets the compiler use 16-bit
/// multiply-add instructions (SSE2's `pmaddwd`, NEON's `smlal`). Only the running sum can
/// overflow, hence the wrapping add; wrapping addition is associative, so the summation order
/// (which the compiler may change when it vectorises) cannot change a bit of the result.
#[inline]
pub(crate) fn dot(w: &[i8], x: &[i8], zero_point: i32) -> i32 {
    // In [-128, 127] after validation; any other value would make products wrap in i16 too,
    // which only callers that skipped validation could see.
    let zp = zero_point as i16;
    w.iter().zip(x).fold(0i32, |acc, (&w, &x)| {
        let centered = i16::from(x).wrapping_sub(zp);
        acc.wrapping_add(i32::from(i16::from(w)) * i32::from(centered))
    })
}

/// [`dot`] of four weight rows with the same input, in one pass over the input.
#[inline]
pub(crate) fn dot4(w: [&[i8]; 4], x: &[i8], zero_point: i32) -> [i32; 4] {
    let zp = zero_point as i16;
    let [w0, w1, w2, w3] = w;
    let mut acc = [0i32; 4];
    for ((((&x, &a), &b), &c), &d) in x.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
        let centered = i32::from(i16::from(x).wrapping_sub(zp));
        let product = |w: i8| i32::from(i16::from(w)) * centered;
        let [s0, s1, s2, s3] = &mut acc;
        *s0 = s0.wrapping_add(product(a));
        *s1 = s1.wrapping_add(product(b));
        *s2 = s2.wrapping_add(product(c));
        *s3 = s3.wrapping_add(product(d));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_loop_shapes_give_the_naive_sums() {
        let mut rng = SplitMix64::new(0x5a5a);
        for case in 0..400 {
            let n_in = 1 + rng.below(if case % 10 == 0 { 1100 } else { 40 }) as usize;
            let rows = rng.below(12) as usize;
            let zp = rng.range_i32(-128, 127);
            let weights: Vec<i8> = (0..rows * n_in).map(|_| rng.range_i32(-128, 127) as i8).collect();
            let input: Vec<i8> = (0..n_in).map(|_| rng.range_i32(-128, 127) as i8).collect();
            let naive: Vec<i32> = weights
                .chunks(n_in)
                .map(|w| {
                    w.iter()
                        .zip(&input)
                        .map(|(&w, &x)| i64::from(w) * (i64::from(x) - i64::from(zp)))
                        .sum::<i64>() as i32
                })
                .collect();
            let (mut direct, mut centered) = (Vec::new(), Vec::new());
            row_sums_direct(&weights, &input, zp, &mut |s| direct.push(s));
            row_sums_centered(&weights, &input, zp, &mut |s| centered.push(s));
            assert_eq!(direct, naive, "case {case}");
            assert_eq!(centered, naive, "case {case}");
        }
    }
    use crate::requantize::tests::reference_mbqm;
    use crate::requantize::{quantize_multiplier, MAX_SHIFT, MIN_SHIFT};
    use crate::testutil::{assert_outputs_equal, SplitMix64};
    use std::vec;
    use std::vec::Vec;

    /// The plainest possible fully connected layer, for comparison: index loops, the sum in i64
    /// (truncated to i32 at the end, which equals wrapping i32 arithmetic), and the independent
    /// reference requantization.
    fn naive_fully_connected(
        params: &FcParams,
        multipliers: &[i32],
        shifts: &[i32],
        weights: &[i8],
        bias: &[i32],
        input: &[i8],
        n_out: usize,
    ) -> Vec<i8> {
        let n_in = input.len();
        let mut output = vec![0i8; n_out];
        for c in 0..n_out {
            let mut acc = i64::from(bias[c]);
            for i in 0..n_in {
                let w = i64::from(weights[c * n_in + i]);
                let x = i64::from(input[i]) - i64::from(params.input_zero_point);
                acc += w * x;
            }
            let acc = acc as i32;
            let scaled = reference_mbqm(acc, multipliers[c], shifts[c]);
            let mut y = (i64::from(scaled) + i64::from(params.output_zero_point)) as i32;
            if y < params.activation_min {
                y = params.activation_min;
            }
            if y > params.activation_max {
                y = params.activation_max;
            }
            output[c] = y as i8;
        }
        output
    }

    /// Runs the kernel on a freshly zeroed output of `n_out` and returns it.
    fn run(
        params: &FcParams,
        multipliers: &[i32],
        shifts: &[i32],
        weights: &[i8],
        bias: &[i32],
        input: &[i8],
        n_out: usize,
    ) -> Result<Vec<i8>, Error> {
        let mut output = vec![0i8; n_out];
        let quant = PerChannelQuant { multipliers, shifts };
        fully_connected_s8(params, &quant, weights, bias, input, &mut output)?;
        Ok(output)
    }

    // M = 2^-8 as (multiplier, shift): 0.5 * 2^-7.
    const M_2_POW_MINUS_8: (i32, i32) = (1 << 30, -7);

    #[test]
    fn input_zero_point_minus_128_output_zero_point_127() {
        // x - zp_in = [127 + 128, -128 + 128] = [255, 0].
        let params = FcParams::new(-128, 127);
        let (m, s) = M_2_POW_MINUS_8;
        let weights = [1, 127, -1, 0, 0, 0];
        let bias = [0, 0, -1000];
        let output = run(&params, &[m; 3], &[s; 3], &weights, &bias, &[127, -128], 3).unwrap();
        // c0: acc 255; 255 * 0.5 = 127.5 → 128; 128 / 128 = 1; 1 + 127 = 128 → clamp 127.
        // c1: acc -255; -127.5 → -127 (tie up); -127 / 128 = -0.99 → -1; 126.
        // c2: acc -1000; -500; -500 / 128 = -3.9 → -4; 123.
        assert_outputs_equal("zp -128 / 127", &output, &[127, 126, 123]);
    }

    #[test]
    fn input_zero_point_127_output_zero_point_minus_128() {
        // x - zp_in = [-128 - 127, 127 - 127] = [-255, 0].
        let params = FcParams::new(127, -128);
        let (m, s) = M_2_POW_MINUS_8;
        let weights = [1, 5, -1, 5, 0, 0];
        let bias = [0, 0, 448];
        let output = run(&params, &[m; 3], &[s; 3], &weights, &bias, &[-128, 127], 3).unwrap();
        // c0: acc -255 → -1; -1 - 128 = -129 → clamp -128.
        // c1: acc 255 → 1; -127.
        // c2: acc 448; 224; 224 / 128 = 1.75 → 2; -126.
        assert_outputs_equal("zp 127 / -128", &output, &[-128, -127, -126]);
    }

    #[test]
    fn requantization_ties_and_negative_accumulators() {
        let params = FcParams::new(0, 0);
        // acc = w * 1: [3, -3, -6, 5, -5].
        let weights = [3, -3, -6, 5, -5];
        let multipliers = [1 << 30; 5];
        // M = 0.5, 0.5, 0.25, 0.25, 0.25.
        let shifts = [0, 0, -1, -1, -1];
        let output = run(&params, &multipliers, &shifts, &weights, &[0; 5], &[1], 5).unwrap();
        // 1.5 → 2; -1.5 → -1 (first rounding: ties up); -6 * 0.5 = -3, -1.5 → -2 (second
        // rounding: ties away); 5: 2.5 → 3, 1.5 → 2; -5: -2.5 → -2, -1.
        assert_outputs_equal("ties", &output, &[2, -1, -2, 2, -1]);
    }

    #[test]
    fn fused_activation_clamps_to_activation_range() {
        let params = FcParams {
            input_zero_point: 0,
            output_zero_point: -5,
            activation_min: -5, // fused ReLU: real 0
            activation_max: 10,
        };
        let weights = [100, -100, 7];
        // M = 0.5.
        let output = run(&params, &[1 << 30; 3], &[0; 3], &weights, &[0; 3], &[1], 3).unwrap();
        // 50 - 5 = 45 → 10; -50 - 5 = -55 → -5; 3.5 → 4, 4 - 5 = -1.
        assert_outputs_equal("relu", &output, &[10, -5, -1]);
    }

    #[test]
    fn zero_multiplier_and_extreme_shifts() {
        let params = FcParams::new(0, 3);
        let weights = [100, 100, 1, -1];
        let multipliers = [0, 1 << 30, 1 << 30, 1 << 30];
        let shifts = [0, MIN_SHIFT, MAX_SHIFT, MAX_SHIFT];
        let output = run(&params, &multipliers, &shifts, &weights, &[0; 4], &[1], 4).unwrap();
        // M = 0 → 0 + 3; 100 * 2^-32 → 0 + 3; 1 * 2^29 → huge → 127; -2^29 → -128.
        assert_outputs_equal("extreme shifts", &output, &[3, 3, 127, -128]);
    }

    #[test]
    fn no_inputs_gives_requantized_bias() {
        let params = FcParams::new(0, 1);
        let output = run(&params, &[1 << 30; 2], &[0; 2], &[], &[100, -101], &[], 2).unwrap();
        // 50 + 1; -50.5 → -50 (tie up), + 1.
        assert_outputs_equal("n_in == 0", &output, &[51, -49]);
    }

    #[test]
    fn no_outputs_is_a_no_op() {
        let params = FcParams::new(0, 0);
        let output = run(&params, &[], &[], &[], &[], &[1, 2, 3], 0).unwrap();
        assert!(output.is_empty());
    }

    #[test]
    fn extreme_bias_wraps_like_the_reference_without_panicking() {
        let params = FcParams::new(-128, 0);
        let weights = [127, 127, -128, -128];
        let bias = [i32::MAX, i32::MIN];
        let input = [127, 127];
        let multipliers = [1 << 30; 2];
        let shifts = [0; 2];
        let output = run(&params, &multipliers, &shifts, &weights, &bias, &input, 2).unwrap();
        let expected = naive_fully_connected(&params, &multipliers, &shifts, &weights, &bias, &input, 2);
        assert_outputs_equal("wrapping", &output, &expected);
    }

    #[test]
    fn bad_shapes_and_params_are_errors_and_leave_output_untouched() {
        let ok = FcParams::new(0, 0);
        let m2 = [1 << 30; 2];
        let s2 = [0; 2];
        let w = [1i8; 6]; // [2][3]
        let b2 = [0; 2];
        let x = [1i8; 3];
        let mut cases: Vec<(&str, Result<(), Error>, Error)> = Vec::new();
        let mut call = |label: &'static str,
                        params: FcParams,
                        multipliers: &[i32],
                        shifts: &[i32],
                        weights: &[i8],
                        bias: &[i32],
                        input: &[i8],
                        expected: Error| {
            let mut output = [42i8; 2];
            let quant = PerChannelQuant { multipliers, shifts };
            let result = fully_connected_s8(&params, &quant, weights, bias, input, &mut output);
            assert_eq!(output, [42; 2], "{label}: output was written before the error");
            cases.push((label, result, expected));
        };
        let shape = |operand, expected, actual| Error::ShapeMismatch {
            operand,
            expected,
            actual,
        };
        call(
            "weights too short",
            ok,
            &m2,
            &s2,
            &w[..5],
            &b2,
            &x,
            shape("weights", 6, 5),
        );
        call(
            "weights too long",
            ok,
            &m2,
            &s2,
            &[1; 7],
            &b2,
            &x,
            shape("weights", 6, 7),
        );
        call(
            "input too short",
            ok,
            &m2,
            &s2,
            &w,
            &b2,
            &x[..2],
            shape("weights", 4, 6),
        );
        call("bias too short", ok, &m2, &s2, &w, &b2[..1], &x, shape("bias", 2, 1));
        call(
            "too few multipliers",
            ok,
            &m2[..1],
            &s2,
            &w,
            &b2,
            &x,
            shape("multipliers", 2, 1),
        );
        call("too many shifts", ok, &m2, &[0; 3], &w, &b2, &x, shape("shifts", 2, 3));
        call(
            "shift 31",
            ok,
            &m2,
            &[0, 31],
            &w,
            &b2,
            &x,
            Error::ShiftOutOfRange { channel: 1, shift: 31 },
        );
        call(
            "shift -32",
            ok,
            &m2,
            &[-32, 0],
            &w,
            &b2,
            &x,
            Error::ShiftOutOfRange { channel: 0, shift: -32 },
        );
        call(
            "negative multiplier",
            ok,
            &[1, -1],
            &s2,
            &w,
            &b2,
            &x,
            Error::NegativeMultiplier {
                channel: 1,
                multiplier: -1,
            },
        );
        call(
            "input zero point 128",
            FcParams::new(128, 0),
            &m2,
            &s2,
            &w,
            &b2,
            &x,
            Error::InputZeroPointOutOfRange { zero_point: 128 },
        );
        call(
            "output zero point -129",
            FcParams::new(0, -129),
            &m2,
            &s2,
            &w,
            &b2,
            &x,
            Error::OutputZeroPointOutOfRange { zero_point: -129 },
        );
        let range = |activation_min, activation_max| FcParams {
            activation_min,
            activation_max,
            ..ok
        };
        call(
            "activation min > max",
            range(5, 4),
            &m2,
            &s2,
            &w,
            &b2,
            &x,
            Error::InvalidActivationRange { min: 5, max: 4 },
        );
        call(
            "activation max 128",
            range(0, 128),
            &m2,
            &s2,
            &w,
            &b2,
            &x,
            Error::InvalidActivationRange { min: 0, max: 128 },
        );
        call(
            "activation min -129",
            range(-129, 0),
            &m2,
            &s2,
            &w,
            &b2,
            &x,
            Error::InvalidActivationRange { min: -129, max: 0 },
        );
        for (label, result, expected) in cases {
            assert_eq!(result, Err(expected), "{label}");
        }
    }

    #[test]
    fn matches_naive_reference_on_random_shapes() {
        let mut rng = SplitMix64::new(0x5eed_0fc0);
        let mut outputs_checked = 0usize;
        let cases = 2_000;
        for case in 0..cases {
            let n_out = rng.below(33) as usize;
            let n_in = match rng.below(4) {
                0 => rng.below(4) as usize,
                1 | 2 => rng.below(100) as usize,
                _ => rng.below(1025) as usize,
            };
            let mut params = FcParams::new(rng.range_i32(-128, 127), rng.range_i32(-128, 127));
            if rng.below(4) == 0 {
                params.activation_min = rng.range_i32(-128, 127);
                params.activation_max = rng.range_i32(params.activation_min, 127);
            }
            // Weights mostly in the symmetric range, sometimes the full int8 range.
            let weight_min = if rng.below(8) == 0 { -128 } else { -127 };
            let weights: Vec<i8> = (0..n_out * n_in)
                .map(|_| rng.range_i32(weight_min, 127) as i8)
                .collect();
            let input: Vec<i8> = (0..n_in).map(|_| rng.range_i32(-128, 127) as i8).collect();
            let bias: Vec<i32> = (0..n_out)
                .map(|_| match rng.below(8) {
                    0 => rng.next_u64() as i32,
                    _ => rng.range_i32(-(1 << 20), 1 << 20),
                })
                .collect();
            let (multipliers, shifts): (Vec<i32>, Vec<i32>) = (0..n_out)
                .map(|_| {
                    if rng.below(4) == 0 {
                        // Any valid raw pair, including ones no real scale produces.
                        (rng.below(1 << 31) as i32, rng.range_i32(MIN_SHIFT, MAX_SHIFT))
                    } else {
                        // A realistic effective scale s_in * s_w / s_out, about 2^-16 .. 2^2.
                        let scale = 2f64.powf(rng.next_f64() * 18.0 - 16.0);
                        quantize_multiplier(scale).unwrap()
                    }
                })
                .unzip();
            let actual = run(&params, &multipliers, &shifts, &weights, &bias, &input, n_out).unwrap();
            let expected = naive_fully_connected(&params, &multipliers, &shifts, &weights, &bias, &input, n_out);
            let label = std::format!("case {case} (n_out {n_out}, n_in {n_in}, {params:?})");
            assert_outputs_equal(&label, &actual, &expected);
            outputs_checked += n_out;
        }
        std::println!("{cases} random cases, {outputs_checked} outputs, 0 mismatches");
    }
}
