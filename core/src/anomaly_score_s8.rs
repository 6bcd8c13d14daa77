//! The anomaly score: an integer reconstruction error, the same on every target.
//!
//! An autoencoder trained on normal data reconstructs normal samples well and abnormal ones
//! badly, so the distance between a sample and its reconstruction is its anomaly score. On the
//! device that distance is computed on int8 codes, exactly:
//!
//! 1. The input codes `x[i]` are in the input's quantization (`s_in`, `z_in`), the
//!    reconstruction's codes `y[i]` in the output's (`s_out`, `z_out`). The two differ (a sigmoid
//!    output is 1/256 with zero point -128, a pixel input 1/255), so each `y[i]` is first
//!    requantized into the input's quantization with the core's requantize rule:
//!    `r[i] = clamp(z_in + mbqm(y[i] - z_out, M, shift), -128, 127)`, where `(M, shift)` is
//!    [`quantize_multiplier`](crate::quantize_multiplier)`(s_out / s_in)` (the quotient formed
//!    in f64), fixed at export and stored in the model file, and `mbqm` is
//!    [`multiply_by_quantized_multiplier`].
//! 2. `d[i] = x[i] - r[i]`, an integer in [-255, 255].
//! 3. The score is `Σ d[i]²` as a u32, each addition saturating at `u32::MAX` (reached only
//!    beyond 66,051 input values: `66,051 · 255² < 2³²`).
//!
//! `docs/int8-arithmetic.md` states the same rule. The score is in units of `s_in²`: times
//! `s_in² / N` it approximates the mean squared error of the int8 model in the scaled input
//! space.

use crate::requantize::{multiply_by_quantized_multiplier, MAX_SHIFT, MIN_SHIFT};
use crate::Error;

/// The parameters of the score: both zero points and the requantization from the output's
/// quantization into the input's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreParams {
    /// The input's zero point `z_in`, in [-128, 127].
    pub input_zero_point: i32,
    /// The output's zero point `z_out`, in [-128, 127].
    pub output_zero_point: i32,
    /// The Q0.31 multiplier of `s_out / s_in`, in [0, `i32::MAX`].
    pub multiplier: i32,
    /// Its shift, in [[`MIN_SHIFT`], [`MAX_SHIFT`]].
    pub shift: i32,
}

impl ScoreParams {
    /// Checks the ranges the score relies on.
    ///
    /// # Errors
    /// [`Error::InputZeroPointOutOfRange`] or [`Error::OutputZeroPointOutOfRange`] for a zero
    /// point outside int8, [`Error::ShiftOutOfRange`] (channel 0) for a shift outside
    /// [-31, 30], [`Error::NegativeMultiplier`] (channel 0) for a negative multiplier.
    pub fn validate(&self) -> Result<(), Error> {
        if i8::try_from(self.input_zero_point).is_err() {
            return Err(Error::InputZeroPointOutOfRange {
                zero_point: self.input_zero_point,
            });
        }
        if i8::try_from(self.output_zero_point).is_err() {
            return Err(Error::OutputZeroPointOutOfRange {
                zero_point: self.output_zero_point,
            });
        }
        if !(MIN_SHIFT..=MAX_SHIFT).contains(&self.shift) {
            return Err(Error::ShiftOutOfRange {
                channel: 0,
                shift: self.shift,
            });
        }
        if self.multiplier < 0 {
            return Err(Error::NegativeMultiplier {
                channel: 0,
                multiplier: self.multiplier,
            });
        }
        Ok(())
    }

    /// One output code `y` requantized into the input's quantization (step 1 above).
    #[inline]
    pub fn requantize(&self, y: i8) -> i8 {
        let moved =
            multiply_by_quantized_multiplier(i32::from(y) - self.output_zero_point, self.multiplier, self.shift);
        let r = self.input_zero_point.saturating_add(moved).clamp(-128, 127);
        // In [-128, 127] after the clamp.
        r as i8
    }
}

/// The score of one sample: `Σ (x[i] - r[i])²` over the input codes `input` and the output
/// codes `output`, saturating at `u32::MAX` (see the [module docs](self)).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the slices differ in length; the errors of
/// [`ScoreParams::validate`].
///
/// ```
/// use autoencoder_core::anomaly_score_s8::{anomaly_score_s8, ScoreParams};
/// // Same quantization on both sides: M = 1.0 is (2^30, 1).
/// let same = ScoreParams { input_zero_point: -128, output_zero_point: -128, multiplier: 1 << 30, shift: 1 };
/// assert_eq!(anomaly_score_s8(&[0, 10, -5], &[0, 7, -1], &same)?, 9 + 16);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
pub fn anomaly_score_s8(input: &[i8], output: &[i8], params: &ScoreParams) -> Result<u32, Error> {
    params.validate()?;
    if output.len() != input.len() {
        return Err(Error::ShapeMismatch {
            operand: "output",
            expected: input.len(),
            actual: output.len(),
        });
    }
    Ok(partial_score(input, output, params, 0))
}

/// Adds the squared differences of `input` and `output` to `sum` (the callers have checked the
/// parameters; extra values of the longer slice are ignored). Lets a caller score a sample in
/// pieces, for example while quantizing a float input chunk by chunk.
#[inline]
pub(crate) fn partial_score(input: &[i8], output: &[i8], params: &ScoreParams, sum: u32) -> u32 {
    input.iter().zip(output).fold(sum, |sum, (&x, &y)| {
        let d = i32::from(x) - i32::from(params.requantize(y));
        // |d| <= 255, so d² <= 65,025 fits u32.
        sum.saturating_add(d.unsigned_abs() * d.unsigned_abs())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize_multiplier;
    use std::vec::Vec;

    /// The score the slow way: the requantization in i64 with the same double rounding as
    /// TFLM's reference, written out step by step, and the sum in u64, saturated at the end.
    fn reference(input: &[i8], output: &[i8], p: &ScoreParams) -> u32 {
        let mut sum = 0u64;
        for (&x, &y) in input.iter().zip(output) {
            let v = i64::from(y) - i64::from(p.output_zero_point);
            let left = p.shift.max(0);
            let right = (-p.shift).max(0);
            let scaled = (v << left) as i32 as i64;
            // Saturating rounding doubling high multiply: round(a * b / 2^31), half away from 0.
            let product = scaled * i64::from(p.multiplier);
            let nudge = if product >= 0 { 1i64 << 30 } else { 1 - (1i64 << 30) };
            let high = if scaled == i64::from(i32::MIN) && p.multiplier == i32::MIN {
                i64::from(i32::MAX)
            } else {
                (product + nudge) / (1i64 << 31)
            };
            // Rounding divide by 2^right, half away from zero.
            let moved = if right == 0 {
                high
            } else {
                let divisor = 1i64 << right;
                let q = high.abs() / divisor;
                let rem = high.abs() % divisor;
                let q = if 2 * rem >= divisor { q + 1 } else { q };
                if high < 0 {
                    -q
                } else {
                    q
                }
            };
            let r = (i64::from(p.input_zero_point) + moved).clamp(-128, 127);
            let d = i64::from(x) - r;
            sum += (d * d) as u64;
        }
        sum.min(u64::from(u32::MAX)) as u32
    }

    fn params(s_out: f64, s_in: f64, z_out: i32, z_in: i32) -> ScoreParams {
        let (multiplier, shift) = quantize_multiplier(s_out / s_in).unwrap();
        ScoreParams {
            input_zero_point: z_in,
            output_zero_point: z_out,
            multiplier,
            shift,
        }
    }

    fn lcg(state: &mut u64) -> i8 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 56) as u8 as i8
    }

    #[test]
    fn a_perfect_reconstruction_in_the_same_quantization_scores_zero() {
        let p = params(0.1, 0.1, 3, 3);
        let codes: Vec<i8> = (-128..=127).collect();
        assert_eq!(anomaly_score_s8(&codes, &codes, &p), Ok(0));
    }

    #[test]
    fn sigmoid_output_against_pixel_input_by_hand() {
        // s_out = 1/256, z_out = -128 (sigmoid); s_in = 1/255, z_in = -128 (pixels).
        let p = params(1.0 / 256.0, 1.0 / 255.0, -128, -128);
        // Output code 127 is real 255/256; in pixel steps 255 * 255/256 = 254.00390625 → 254,
        // so the code is 254 - 128 = 126.
        assert_eq!(p.requantize(127), 126);
        // Output code -128 is real 0 → -128.
        assert_eq!(p.requantize(-128), -128);
        // Output 0 is 128/256 = 0.5, 127.5 pixel steps: rounds half away from zero to 128 → 0.
        assert_eq!(p.requantize(0), 0);
        // Input 127 (pixel 255) against output 127: d = 127 - 126 = 1.
        assert_eq!(anomaly_score_s8(&[127, -128], &[127, 127], &p), Ok(1 + 254 * 254));
    }

    #[test]
    fn requantization_clamps_into_int8() {
        // The output's scale is twice the input's: code 100 (200 input steps) clamps to 127.
        let p = params(0.2, 0.1, 0, 0);
        assert_eq!(p.requantize(100), 127);
        assert_eq!(p.requantize(-100), -128);
        assert_eq!(p.requantize(20), 40);
    }

    #[test]
    fn the_kernel_matches_the_slow_reference_on_random_codes_and_quantizations() {
        let mut state = 7u64;
        let scales = [
            (1.0 / 256.0, 1.0 / 255.0),
            (0.031, 0.017),
            (0.02, 0.05),
            (0.5, 0.5),
            (1e-3, 0.9),
        ];
        for &(s_out, s_in) in &scales {
            for &(z_out, z_in) in &[(-128, -128), (5, -17), (127, 0)] {
                let p = params(s_out, s_in, z_out, z_in);
                let x: Vec<i8> = (0..1000).map(|_| lcg(&mut state)).collect();
                let y: Vec<i8> = (0..1000).map(|_| lcg(&mut state)).collect();
                assert_eq!(
                    anomaly_score_s8(&x, &y, &p),
                    Ok(reference(&x, &y, &p)),
                    "{s_out} {s_in}"
                );
            }
        }
    }

    #[test]
    fn the_sum_saturates_at_u32_max() {
        let p = params(1.0, 1.0, 0, 0);
        // 66,052 differences of 255 exceed u32::MAX; 66,051 do not.
        let x = std::vec![127i8; 66_052];
        let y = std::vec![-128i8; 66_052];
        assert_eq!(anomaly_score_s8(&x[..66_051], &y[..66_051], &p), Ok(66_051 * 65_025));
        assert_eq!(anomaly_score_s8(&x, &y, &p), Ok(u32::MAX));
        assert_eq!(reference(&x, &y, &p), u32::MAX);
    }

    #[test]
    fn bad_parameters_and_lengths_are_refused() {
        let good = params(0.1, 0.1, 0, 0);
        assert!(matches!(
            anomaly_score_s8(&[1, 2], &[1], &good),
            Err(Error::ShapeMismatch {
                operand: "output",
                expected: 2,
                actual: 1
            })
        ));
        let bad_shift = ScoreParams { shift: 31, ..good };
        assert!(matches!(
            anomaly_score_s8(&[1], &[1], &bad_shift),
            Err(Error::ShiftOutOfRange { .. })
        ));
        let bad_zp = ScoreParams {
            input_zero_point: 128,
            ..good
        };
        assert!(matches!(
            anomaly_score_s8(&[1], &[1], &bad_zp),
            Err(Error::InputZeroPointOutOfRange { zero_point: 128 })
        ));
        let bad_m = ScoreParams { multiplier: -1, ..good };
        assert!(matches!(
            anomaly_score_s8(&[1], &[1], &bad_m),
            Err(Error::NegativeMultiplier { .. })
        ));
    }
}
