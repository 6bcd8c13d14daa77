//! Requantization: turning an i32 accumulator into the next tensor's int8 scale, exactly as
//! TensorFlow Lite Micro does it.
//!
//! A layer computes `acc = sum(w * (x - zp_in)) + bias` in i32, in units of `s_in * s_w[c]`. The
//! output needs units of `s_out`, so `acc` is multiplied by the effective scale
//! `M = s_in * s_w[c] / s_out`. On the device `M` is a fixed-point pair `(multiplier, shift)` with
//! `M ≈ multiplier * 2^(shift - 31)`, computed once on the host by [`quantize_multiplier`] and
//! applied by [`multiply_by_quantized_multiplier`].
//!
//! The device side uses TFLM's default "double rounding": first
//! [`saturating_rounding_doubling_high_mul`] rounds `x * multiplier / 2^31` (ties toward +∞), then
//! [`rounding_divide_by_pot`] rounds the right shift (ties away from zero). The single-rounding
//! variant used by desktop TFLite builds differs in about 1 case in 800, so it is deliberately not
//! offered here.

use crate::error::expect_len;
use crate::Error;

/// The smallest shift TFLM accepts: a right shift by 31 bits.
pub const MIN_SHIFT: i32 = -31;

/// The largest shift TFLM accepts: a left shift by 30 bits (the accumulator is multiplied by
/// `2^shift` in i32 before the high multiply).
pub const MAX_SHIFT: i32 = 30;

/// Per-output-channel requantization parameters, as CMSIS-NN's
/// `cmsis_nn_per_channel_quant_params`: channel `c` is requantized with
/// `(multipliers[c], shifts[c])` from [`quantize_multiplier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerChannelQuant<'a> {
    /// Q0.31 multipliers, one per output channel. Valid range: [0, `i32::MAX`]; a non-zero one
    /// from [`quantize_multiplier`] lies in [2^30, 2^31 - 1].
    pub multipliers: &'a [i32],
    /// Power-of-two exponents, one per output channel (positive: left shift). Valid range:
    /// [[`MIN_SHIFT`], [`MAX_SHIFT`]].
    pub shifts: &'a [i32],
}

impl PerChannelQuant<'_> {
    /// Checks that there are exactly `channels` multipliers and shifts and that every one lies in
    /// its documented range.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a wrong length, [`Error::NegativeMultiplier`] or
    /// [`Error::ShiftOutOfRange`] (naming the first bad channel) for a bad value.
    pub fn validate(&self, channels: usize) -> Result<(), Error> {
        // Shapes: multipliers [channels], shifts [channels].
        expect_len("multipliers", channels, self.multipliers.len())?;
        expect_len("shifts", channels, self.shifts.len())?;
        for (channel, (&multiplier, &shift)) in self.multipliers.iter().zip(self.shifts).enumerate() {
            if multiplier < 0 {
                return Err(Error::NegativeMultiplier { channel, multiplier });
            }
            if !(MIN_SHIFT..=MAX_SHIFT).contains(&shift) {
                return Err(Error::ShiftOutOfRange { channel, shift });
            }
        }
        Ok(())
    }
}

/// 2^31 as an f64 (exact).
const TWO_POW_31: f64 = 2_147_483_648.0;

// IEEE 754 binary64 layout: 1 sign bit, 11 exponent bits (bias 1023), 52 fraction bits.
const SIGN_MASK: u64 = 1 << 63;
const FRACTION_BITS: u32 = 52;
const FRACTION_MASK: u64 = (1 << FRACTION_BITS) - 1;
const EXPONENT_BIAS: i32 = 1023;
const EXPONENT_ALL_ONES: i32 = 0x7ff;

/// Splits an effective scale into TFLM's fixed-point `(multiplier, shift)`, with
/// `M ≈ multiplier * 2^(shift - 31)`.
///
/// **Host/export side only.** This is the one place the crate uses floating point; it runs once
/// per channel when a model is exported, and the device only ever sees the resulting integers.
/// It is `no_std` (no libm): the float splitting and rounding are done on the bit pattern.
///
/// The rule (TFLM's `QuantizeMultiplier`): `M == 0` gives `(0, 0)`. Otherwise `M = q * 2^shift`
/// with `q` in [0.5, 1); `multiplier = round_half_away_from_zero(q * 2^31)`; if that rounds up to
/// 2^31 it is halved and `shift` incremented; if `shift < -31` the result is `(0, 0)` (scales
/// below about 2^-32 flush to zero).
///
/// Valid input: `0 <= M` and `M` below about 2^30 (precisely: `shift <= MAX_SHIFT` after
/// rounding). Real effective scales `s_in * s_w / s_out` are far inside that range.
///
/// # Errors
/// [`Error::NonFiniteScale`] for NaN or ±∞, [`Error::NegativeScale`] for `M < 0` (`-0.0` counts
/// as zero), [`Error::ScaleTooLarge`] when the shift would exceed [`MAX_SHIFT`].
///
/// ```
/// use autoencoder_core::requantize::quantize_multiplier;
/// assert_eq!(quantize_multiplier(0.25), Ok((1 << 30, -1))); // 0.5 * 2^-1
/// assert_eq!(quantize_multiplier(0.75), Ok((3 << 29, 0))); // 0.75 * 2^0
/// assert_eq!(quantize_multiplier(0.0), Ok((0, 0)));
/// ```
pub fn quantize_multiplier(effective_scale: f64) -> Result<(i32, i32), Error> {
    if !effective_scale.is_finite() {
        return Err(Error::NonFiniteScale);
    }
    if effective_scale < 0.0 {
        return Err(Error::NegativeScale);
    }
    if effective_scale == 0.0 {
        return Ok((0, 0));
    }
    let (q, mut shift) = frexp(effective_scale);
    // q is in [0.5, 1), so q * 2^31 is an exact power-of-two scaling into [2^30, 2^31) and the
    // rounded value is an integer in [2^30, 2^31]: the conversion to i64 is exact.
    let mut multiplier = round_half_away_from_zero(q * TWO_POW_31) as i64;
    if multiplier == 1 << 31 {
        // q was within half a unit of 1: 2^31 does not fit in i32, and 2^30 * 2^(shift + 1)
        // is the same value.
        multiplier /= 2;
        shift += 1;
    }
    if shift < MIN_SHIFT {
        // Right shifts of 32 bits or more would zero every accumulator anyway; TFLM encodes that
        // as a zero multiplier so the device never shifts by more than 31.
        return Ok((0, 0));
    }
    if shift > MAX_SHIFT {
        return Err(Error::ScaleTooLarge);
    }
    // multiplier is in [2^30, 2^31 - 1] here.
    Ok((multiplier as i32, shift))
}

/// The effective scale of a weighted layer's output channel, as TFLM forms it from the
/// tensors' f32 scales (`PopulateConvolutionQuantizationParams`): each scale widened to f64, then
/// `input_scale * weight_scale / output_scale`, left to right. [`quantize_multiplier`] of this is
/// the channel's `(multiplier, shift)`.
///
/// ```
/// use autoencoder_core::requantize::effective_scale;
/// assert_eq!(effective_scale(0.5, 0.25, 0.125), 1.0);
/// ```
pub fn effective_scale(input_scale: f32, weight_scale: f32, output_scale: f32) -> f64 {
    f64::from(input_scale) * f64::from(weight_scale) / f64::from(output_scale)
}

/// The scale whose requantization gives a fused LeakyReLU's negative side: `output_scale /
/// slope`, formed in f32. A channel's negative pair is [`quantize_multiplier`] of
/// [`effective_scale`]`(input_scale, weight_scale, fused_negative_scale(output_scale, slope))`,
/// which is what TFLM derives for a second `FULLY_CONNECTED` or `CONV_2D` whose output tensor
/// has this scale (and the output's zero point): the fused layer is exactly
/// `MAXIMUM(layer(output_scale), layer(fused_negative_scale))` in TFLM (see
/// `docs/int8-arithmetic.md`).
///
/// ```
/// use autoencoder_core::requantize::fused_negative_scale;
/// assert_eq!(fused_negative_scale(0.5, 0.25), 2.0);
/// ```
pub fn fused_negative_scale(output_scale: f32, slope: f32) -> f32 {
    output_scale / slope
}

/// Rounds to the nearest integer, ties away from zero (`0.5 → 1`, `-2.5 → -3`), like C's
/// `round` and TFLite's `TfLiteRound`. Exact for every input: ±0, ±∞ and NaN come back unchanged,
/// values below 0.5 in magnitude become a zero of the same sign.
///
/// Works on the bit pattern, so it needs neither `std` nor libm. (Adding 0.5 and truncating is
/// not exact: it rounds 0.49999999999999994 up to 1.)
///
/// ```
/// use autoencoder_core::requantize::round_half_away_from_zero;
/// assert_eq!(round_half_away_from_zero(2.5), 3.0);
/// assert_eq!(round_half_away_from_zero(-2.5), -3.0);
/// assert_eq!(round_half_away_from_zero(0.49999999999999994), 0.0);
/// ```
pub fn round_half_away_from_zero(x: f64) -> f64 {
    let bits = x.to_bits();
    let sign = bits & SIGN_MASK;
    let magnitude = bits & !SIGN_MASK;
    // |x| lies in [2^e, 2^(e+1)) for normal numbers; zero and subnormals get e = -1023.
    let e = (magnitude >> FRACTION_BITS) as i32 - EXPONENT_BIAS;
    let rounded = if e >= FRACTION_BITS as i32 {
        // The unit in the last place is at least 1: already an integer. Also covers ±∞ and NaN
        // (exponent all ones), which must pass through untouched.
        magnitude
    } else if e < -1 {
        // |x| < 0.5, including zero and subnormals.
        0
    } else if e == -1 {
        // |x| in [0.5, 1): the 0.5 bit is the implicit leading bit, so handle it on its own.
        1.0f64.to_bits()
    } else {
        // 0 <= e <= 51: fraction bit (51 - e) is worth 0.5 and the bits below it are the rest of
        // the fractional part. Adding the half bit rounds the magnitude up exactly when the
        // fractional part is >= 0.5 (ties away from zero, as the sign is handled apart); a carry
        // out of the fraction field correctly bumps the exponent (the fraction is then all zero).
        // Clearing the fractional bits then truncates.
        let half = 1u64 << (FRACTION_BITS as i32 - 1 - e);
        let fractional_mask = (half << 1) - 1;
        (magnitude + half) & !fractional_mask
    };
    f64::from_bits(sign | rounded)
}

/// Splits `x` into `(q, e)` with `x = q * 2^e` and `|q|` in [0.5, 1), like C's `frexp`.
/// `±0`, `±∞` and NaN come back as `(x, 0)`. Subnormals are normalized, so `q` is always in
/// [0.5, 1) for finite non-zero `x`. The sign stays on `q`.
pub(crate) fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let sign = bits & SIGN_MASK;
    let biased = ((bits & !SIGN_MASK) >> FRACTION_BITS) as i32;
    let fraction = bits & FRACTION_MASK;
    if biased == EXPONENT_ALL_ONES || (biased == 0 && fraction == 0) {
        return (x, 0);
    }
    let (fraction, exponent) = if biased == 0 {
        // Subnormal: x = fraction * 2^-1074 with no implicit bit. Move the leading one up to
        // bit 52 (where a normal number's implicit bit sits): a u64 with its top set bit at 52
        // has 11 leading zeros, and fraction < 2^52 has at least 12, so the shift is >= 1.
        let shift = fraction.leading_zeros() - 11;
        let normalized = fraction << shift;
        // x = normalized * 2^(-1074 - shift) = (normalized / 2^53) * 2^(-1021 - shift).
        (normalized & FRACTION_MASK, -1021 - shift as i32)
    } else {
        // Normal: x = 1.f * 2^(biased - 1023) = 0.1f * 2^(biased - 1022).
        (fraction, biased - (EXPONENT_BIAS - 1))
    };
    // Biased exponent 1022 puts q in [0.5, 1).
    let q_bits = sign | (((EXPONENT_BIAS - 1) as u64) << FRACTION_BITS) | fraction;
    (f64::from_bits(q_bits), exponent)
}

/// `round(a * b / 2^31)` with ties toward +∞, saturated: gemmlowp's
/// `SaturatingRoundingDoublingHighMul`, the first rounding of TFLM's requantization.
///
/// The only product that does not fit is `i32::MIN * i32::MIN` (= 2^62, whose result 2^31 is
/// one too big); it saturates to `i32::MAX`. Every other input gives the exact rounded value.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    // Shapes: two scalars; the product is formed in i64.
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    // Nudge by half a unit so that the truncating division below rounds; for negative products
    // the nudge is one less than -1/2, which (with truncation toward zero) makes ties go up, not
    // away from zero. This is gemmlowp's rule and must stay exactly so.
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |ab| <= 2^62 - 2^31 here, so the sum does not overflow and the quotient fits in i32.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `round(x / 2^exponent)` with ties away from zero: gemmlowp's `RoundingDivideByPOT`, the
/// second rounding of TFLM's requantization.
///
/// TFLM uses exponents 0..=31. Larger exponents are defined here too (so the function never
/// panics) with the same rounding rule: the result is then 0, except `-1` for
/// `x == i32::MIN, exponent == 32` (exactly -0.5).
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    // Shapes: a scalar.
    if exponent > 31 {
        return if exponent == 32 && x == i32::MIN { -1 } else { 0 };
    }
    // The bits shifted out, and half of their range. Computed in u32 because 1 << 31 overflows
    // i32; the mask itself (at most 2^31 - 1) fits.
    let mask = ((1u32 << exponent) - 1) as i32;
    let remainder = x & mask;
    // `x >> exponent` floors. Round up when the dropped part is above one half; for negative x a
    // dropped part of exactly one half must not round up (that would go toward zero), hence the
    // threshold one higher.
    let threshold = (mask >> 1) + i32::from(x < 0);
    // (x >> exponent) <= 2^30 - 1 when exponent >= 1, and the increment is 0 when exponent == 0
    // (mask and remainder are 0), so the sum cannot overflow.
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `x * M` for the fixed-point scale `M = multiplier * 2^(shift - 31)` from
/// [`quantize_multiplier`], bit-exact to TFLM's `MultiplyByQuantizedMultiplier` (double
/// rounding): `rounding_divide_by_pot(srdhm(x * 2^left, multiplier), right)` with
/// `left = max(shift, 0)`, `right = max(-shift, 0)`.
///
/// Valid range: `multiplier` in [0, `i32::MAX`] and `shift` in [[`MIN_SHIFT`], [`MAX_SHIFT`]],
/// as `quantize_multiplier` produces. Outside it the function still never panics: `x * 2^left`
/// wraps in i32 (as TFLM's C++ does on Cortex-M) and right shifts beyond 31 round as
/// [`rounding_divide_by_pot`] documents.
///
/// ```
/// use autoencoder_core::requantize::{multiply_by_quantized_multiplier, quantize_multiplier};
/// // M = 0.25 is (2^30, -1): 0.5 * 2^-1.
/// let (m, shift) = quantize_multiplier(0.25).unwrap();
/// assert_eq!((m, shift), (1 << 30, -1));
/// assert_eq!(multiply_by_quantized_multiplier(100, m, shift), 25);
/// assert_eq!(multiply_by_quantized_multiplier(-100, m, shift), -25);
/// // Double rounding: 5 * 0.25 = 1.25, but 5 * 0.5 = 2.5 first rounds to 3, then 3 / 2 = 1.5
/// // rounds to 2. TFLM returns 2, and so does this.
/// assert_eq!(multiply_by_quantized_multiplier(5, m, shift), 2);
/// ```
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    // Shapes: scalars.
    let left = if shift > 0 { shift.unsigned_abs() } else { 0 };
    // unsigned_abs, not `-shift`, so that i32::MIN cannot overflow.
    let right = if shift < 0 { shift.unsigned_abs() } else { 0 };
    // x * 2^left modulo 2^32: what the C++ `x * (1 << left)` compiles to. A shift of 32 or more
    // leaves nothing of x modulo 2^32.
    let scaled = if left < 32 { x.wrapping_shl(left) } else { 0 };
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)
}

/// Requantizes one accumulator to int8: `clamp(mbqm(acc) + output_zero_point, min, max)`.
/// Shared by the int8 kernels. Callers have validated `output_zero_point` and
/// `activation_min <= activation_max` within int8, so the clamp result fits `i8`.
#[inline]
pub(crate) fn requantize_to_s8(
    acc: i32,
    multiplier: i32,
    shift: i32,
    output_zero_point: i32,
    activation_min: i32,
    activation_max: i32,
) -> i8 {
    // The add can only overflow for accumulators near i32::MAX with a scale near 1, far outside
    // any real model; it wraps like the C++ reference instead of panicking.
    let value = multiply_by_quantized_multiplier(acc, multiplier, shift).wrapping_add(output_zero_point);
    // max/min rather than clamp: clamp panics on min > max, and this must not panic even if a
    // caller skipped validation.
    value.max(activation_min).min(activation_max) as i8
}

/// [`requantize_to_s8`] over the whole int8 range for a validated channel (`multiplier` in
/// [0, `i32::MAX`], `shift` in [[`MIN_SHIFT`], [`MAX_SHIFT`]], as the model loader checks them),
/// with TFLM's two roundings written as shifts: the model runner's fully connected layers, where
/// it runs once per output.
///
/// - First rounding: gemmlowp's nudge and truncating division are, for every product, the
///   floor of `(x * multiplier + 2^30) / 2^31` (ties toward +∞), one 64-bit multiply-add and a
///   shift. A multiplier of at least 0 rules out the one saturating case (both operands
///   `i32::MIN`).
/// - Second rounding, by `right` bits with ties away from zero: for `h >= 0` it is rounding half
///   up, `(z >> 1) + (z & 1)` with `z = h >> (right - 1)` (the floor of `h / 2^(right - 1)`,
///   rounded up by its last bit), which cannot overflow; for `h < 0`, rounding half up of
///   `h - 1` moves exact ties down and leaves every other value where it was. `h` is never
///   `i32::MIN` (`|h| <= 2^31 - 1` as `multiplier < 2^31`), so `h - 1` does not wrap.
///
/// Tests hold it to [`multiply_by_quantized_multiplier`] on every shift and on the extreme
/// accumulators and multipliers. Outside the valid ranges it never panics, with results of no
/// meaning.
#[inline]
pub(crate) fn requantize_to_s8_validated(acc: i32, multiplier: i32, shift: i32, output_zero_point: i32) -> i8 {
    let left = shift.max(0) as u32;
    let right = shift.wrapping_neg().max(0) as u32;
    let x = acc.wrapping_shl(left);
    let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
    let scaled = if right == 0 {
        high
    } else {
        // (Wrapping shifts: no check that `right - 1 < 32`, which a valid shift keeps.)
        let z = high.wrapping_add(high >> 31).wrapping_shr(right - 1);
        (z >> 1) + (z & 1)
    };
    scaled
        .wrapping_add(output_zero_point)
        .clamp(i8::MIN.into(), i8::MAX.into()) as i8
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::SplitMix64;
    use std::vec::Vec;

    /// Independent formulation of [`multiply_by_quantized_multiplier`] for random tests: the two
    /// roundings written as floor divisions in i64 instead of gemmlowp's masks and nudges.
    pub(crate) fn reference_mbqm(x: i32, multiplier: i32, shift: i32) -> i32 {
        // x * 2^left, wrapped to i32 (shift <= 30, so the i64 product is exact before wrapping).
        let scaled = if shift > 0 { (i64::from(x) << shift) as i32 } else { x };
        // First rounding: floor(scaled * multiplier / 2^31 + 1/2), i.e. ties toward +∞,
        // saturating the single product that overflows.
        let high = if scaled == i32::MIN && multiplier == i32::MIN {
            i32::MAX
        } else {
            (i64::from(scaled) * i64::from(multiplier) + (1 << 30)).div_euclid(1 << 31) as i32
        };
        // Second rounding: |high| / 2^right rounded half up, sign put back: ties away from zero.
        let right = (-shift).max(0) as u32;
        if right == 0 {
            return high;
        }
        let magnitude = (i64::from(high).abs() + (1i64 << (right - 1))) >> right;
        (if high < 0 { -magnitude } else { magnitude }) as i32
    }

    /// Checks a list of `(label, actual, expected)` and fails listing every mismatch.
    fn check_all<T: PartialEq + core::fmt::Debug>(cases: &[(&str, T, T)]) {
        let failures: Vec<_> = cases
            .iter()
            .enumerate()
            .filter(|(_, (_, actual, expected))| actual != expected)
            .map(|(i, (label, actual, expected))| {
                std::format!("case {i} `{label}`: actual {actual:?}, expected {expected:?}")
            })
            .collect();
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    // ---- round_half_away_from_zero ----

    #[test]
    fn round_ties_go_away_from_zero_both_signs() {
        let r = round_half_away_from_zero;
        check_all(&[
            ("0.5", r(0.5), 1.0),
            ("-0.5", r(-0.5), -1.0),
            ("1.5", r(1.5), 2.0),
            ("-1.5", r(-1.5), -2.0),
            ("2.5", r(2.5), 3.0),
            ("-2.5", r(-2.5), -3.0),
            ("2^52 - 0.5", r(4_503_599_627_370_495.5), 4_503_599_627_370_496.0),
            ("-(2^52 - 0.5)", r(-4_503_599_627_370_495.5), -4_503_599_627_370_496.0),
        ]);
    }

    #[test]
    fn round_non_ties_go_to_nearest() {
        let r = round_half_away_from_zero;
        check_all(&[
            ("just below 0.5", r(0.499_999_999_999_999_94), 0.0),
            ("just above 0.5", r(0.500_000_000_000_000_1), 1.0),
            ("2.4999", r(2.4999), 2.0),
            ("-2.5001", r(-2.5001), -3.0),
            ("0.99", r(0.99), 1.0),
            ("1.0", r(1.0), 1.0),
            ("2^53 - 1", r(9_007_199_254_740_991.0), 9_007_199_254_740_991.0),
            ("1e300", r(1e300), 1e300),
        ]);
    }

    #[test]
    fn round_keeps_sign_of_zero_and_passes_specials_through() {
        let r = |x: f64| round_half_away_from_zero(x).to_bits();
        check_all(&[
            ("+0", r(0.0), 0.0f64.to_bits()),
            ("-0", r(-0.0), (-0.0f64).to_bits()),
            ("-0.3 gives -0", r(-0.3), (-0.0f64).to_bits()),
            ("smallest subnormal", r(5e-324), 0.0f64.to_bits()),
            ("+inf", r(f64::INFINITY), f64::INFINITY.to_bits()),
            ("-inf", r(f64::NEG_INFINITY), f64::NEG_INFINITY.to_bits()),
            ("NaN", r(f64::NAN), f64::NAN.to_bits()),
        ]);
    }

    #[test]
    fn round_matches_std_round_on_random_values() {
        // std's f64::round is also ties-away-from-zero; compare bit patterns (so the sign of
        // zero counts too) on random bit patterns and on values near ties.
        let mut rng = SplitMix64::new(0x5eed_0001);
        for i in 0..1_000_000 {
            let x = match i % 3 {
                0 => f64::from_bits(rng.next_u64()),
                // Near-integer and half-integer values of moderate size, where rounding happens.
                1 => (rng.next_u64() % 4096) as f64 * 0.5 - 1024.0,
                _ => (rng.next_u64() as i64 as f64) * 2f64.powi(-(rng.below(64) as i32)),
            };
            let actual = round_half_away_from_zero(x);
            let expected = x.round();
            if x.is_nan() {
                assert!(actual.is_nan(), "case {i}: x = {x:e}, actual {actual:e}, expected NaN");
            } else {
                assert_eq!(
                    actual.to_bits(),
                    expected.to_bits(),
                    "case {i}: x = {x:e}, actual {actual:e}, expected {expected:e}"
                );
            }
        }
    }

    // ---- frexp ----

    /// q * 2^e by repeated exact doubling/halving (exact whenever the result is representable).
    fn ldexp(mut q: f64, e: i32) -> f64 {
        for _ in 0..e.max(0) {
            q *= 2.0;
        }
        for _ in 0..(-e).max(0) {
            q *= 0.5;
        }
        q
    }

    #[test]
    fn frexp_edges_zero_subnormal_extremes_and_negative() {
        check_all(&[
            ("0", frexp(0.0), (0.0, 0)),
            ("1", frexp(1.0), (0.5, 1)),
            ("0.75", frexp(0.75), (0.75, 0)),
            ("-3", frexp(-3.0), (-0.75, 2)),
            ("smallest subnormal 2^-1074", frexp(5e-324), (0.5, -1073)),
            (
                "largest subnormal",
                frexp(f64::from_bits(FRACTION_MASK)),
                (1.0 - 2f64.powi(-52), -1022),
            ),
            ("smallest normal 2^-1022", frexp(f64::MIN_POSITIVE), (0.5, -1021)),
            ("f64::MAX", frexp(f64::MAX), (1.0 - 2f64.powi(-53), 1024)),
        ]);
        assert_eq!(frexp(-0.0).0.to_bits(), (-0.0f64).to_bits(), "-0 keeps its sign");
        assert_eq!(frexp(f64::INFINITY), (f64::INFINITY, 0));
        assert!(frexp(f64::NAN).0.is_nan());
    }

    #[test]
    fn frexp_reconstructs_random_values() {
        let mut rng = SplitMix64::new(0x5eed_0002);
        for i in 0..200_000 {
            let x = f64::from_bits(rng.next_u64());
            if !x.is_finite() || x == 0.0 {
                continue;
            }
            let (q, e) = frexp(x);
            assert!(
                (0.5..1.0).contains(&q.abs()),
                "case {i}: x = {x:e}, q = {q:e} not in [0.5, 1)"
            );
            assert_eq!(ldexp(q, e), x, "case {i}: q = {q:e}, e = {e} does not rebuild x");
        }
    }

    // ---- quantize_multiplier ----

    #[test]
    fn quantize_multiplier_zero_gives_zero_zero() {
        check_all(&[
            ("M == 0", quantize_multiplier(0.0), Ok((0, 0))),
            ("M == -0", quantize_multiplier(-0.0), Ok((0, 0))),
        ]);
    }

    #[test]
    fn quantize_multiplier_exact_powers_and_fractions() {
        check_all(&[
            ("0.5", quantize_multiplier(0.5), Ok((1 << 30, 0))),
            ("1.0", quantize_multiplier(1.0), Ok((1 << 30, 1))),
            ("0.75", quantize_multiplier(0.75), Ok((3 << 29, 0))),
            ("2^-31", quantize_multiplier(2f64.powi(-31)), Ok((1 << 30, -30))),
            (
                "2^29 (largest shift)",
                quantize_multiplier(2f64.powi(29)),
                Ok((1 << 30, 30)),
            ),
        ]);
    }

    #[test]
    fn quantize_multiplier_rounds_ties_up() {
        // q * 2^31 = 2^30 + 0.5 exactly: rounds away from zero to 2^30 + 1.
        let tie = 0.5 + 2f64.powi(-32);
        // Just below that tie: rounds down to 2^30.
        let below_tie = 0.5 + 2f64.powi(-32) - 2f64.powi(-53);
        check_all(&[
            ("tie", quantize_multiplier(tie), Ok(((1 << 30) + 1, 0))),
            ("below tie", quantize_multiplier(below_tie), Ok((1 << 30, 0))),
        ]);
    }

    #[test]
    fn quantize_multiplier_carry_when_m_rounds_to_2_pow_31() {
        // q = 1 - 2^-53: q * 2^31 = 2^31 - 2^-22 rounds to 2^31, halved with shift + 1.
        let largest_below_one = 1.0 - 2f64.powi(-53);
        // q = 1 - 2^-32: q * 2^31 = 2^31 - 0.5 exactly, a tie, rounds up to 2^31 too.
        let tie_to_carry = 1.0 - 2f64.powi(-32);
        // One ulp lower the tie is not reached: stays at 2^31 - 1 without a carry.
        let below_carry = 1.0 - 2f64.powi(-32) - 2f64.powi(-53);
        check_all(&[
            ("1 - 2^-53", quantize_multiplier(largest_below_one), Ok((1 << 30, 1))),
            ("1 - 2^-32 (tie)", quantize_multiplier(tie_to_carry), Ok((1 << 30, 1))),
            ("below carry", quantize_multiplier(below_carry), Ok((i32::MAX, 0))),
        ]);
    }

    #[test]
    fn quantize_multiplier_shift_below_minus_31_gives_zero_zero() {
        check_all(&[
            // 2^-32 = 0.5 * 2^-31: the smallest shift kept.
            ("2^-32", quantize_multiplier(2f64.powi(-32)), Ok((1 << 30, -31))),
            // 2^-33 = 0.5 * 2^-32: flushed.
            ("2^-33", quantize_multiplier(2f64.powi(-33)), Ok((0, 0))),
            // Just below 2^-32: shift -32, but the carry lifts it back to -31.
            (
                "carry rescues from flush",
                quantize_multiplier((1.0 - 2f64.powi(-53)) * 2f64.powi(-32)),
                Ok((1 << 30, -31)),
            ),
            ("subnormal", quantize_multiplier(5e-324), Ok((0, 0))),
            ("smallest normal", quantize_multiplier(f64::MIN_POSITIVE), Ok((0, 0))),
        ]);
    }

    #[test]
    fn quantize_multiplier_rejects_negative_non_finite_and_too_large() {
        check_all(&[
            ("-0.5", quantize_multiplier(-0.5), Err(Error::NegativeScale)),
            ("-tiny", quantize_multiplier(-5e-324), Err(Error::NegativeScale)),
            ("NaN", quantize_multiplier(f64::NAN), Err(Error::NonFiniteScale)),
            ("+inf", quantize_multiplier(f64::INFINITY), Err(Error::NonFiniteScale)),
            (
                "-inf",
                quantize_multiplier(f64::NEG_INFINITY),
                Err(Error::NonFiniteScale),
            ),
            ("2^30", quantize_multiplier(2f64.powi(30)), Err(Error::ScaleTooLarge)),
            (
                "just below 2^30 carries to shift 31",
                quantize_multiplier(2f64.powi(30) * (1.0 - 2f64.powi(-53))),
                Err(Error::ScaleTooLarge),
            ),
            ("f64::MAX", quantize_multiplier(f64::MAX), Err(Error::ScaleTooLarge)),
        ]);
    }

    #[test]
    fn quantize_multiplier_is_within_half_a_unit_on_random_scales() {
        // For M in the normal range, M * 2^(31 - shift) is exact in f64; the multiplier must be
        // its nearest integer, ties away from zero (upward, M being positive).
        let mut rng = SplitMix64::new(0x5eed_0003);
        for i in 0..200_000 {
            let exponent = rng.below(60) as i32 - 31; // M in [2^-32, 2^28)
            let m = (1.0 + rng.next_f64()) * 2f64.powi(exponent - 1);
            let (multiplier, shift) = quantize_multiplier(m).unwrap();
            assert!(
                ((1 << 30)..=i32::MAX).contains(&multiplier) && (MIN_SHIFT..=MAX_SHIFT).contains(&shift),
                "case {i}: M = {m:e} gave ({multiplier}, {shift})"
            );
            let target = m * 2f64.powi(31 - shift);
            let error = f64::from(multiplier) - target;
            assert!(
                error.abs() < 0.5 || error == 0.5,
                "case {i}: M = {m:e}: multiplier {multiplier} is {error} from {target}"
            );
        }
    }

    // ---- saturating_rounding_doubling_high_mul ----

    #[test]
    fn srdhm_i32_min_squared_saturates() {
        let f = saturating_rounding_doubling_high_mul;
        check_all(&[
            ("MIN * MIN", f(i32::MIN, i32::MIN), i32::MAX),
            // -2^31 * (2^31 - 1) / 2^31 = -(2^31 - 1) exactly: no saturation needed.
            ("MIN * MAX", f(i32::MIN, i32::MAX), -i32::MAX),
            ("MAX * MIN", f(i32::MAX, i32::MIN), -i32::MAX),
            // (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31.
            ("MAX * MAX", f(i32::MAX, i32::MAX), i32::MAX - 1),
            // MIN * 2^30 / 2^31 = -2^30.
            ("MIN * 2^30", f(i32::MIN, 1 << 30), -(1 << 30)),
        ]);
    }

    #[test]
    fn srdhm_ties_round_toward_plus_infinity() {
        // b = 2^30 is the multiplier 0.5, so a * b / 2^31 = a / 2.
        let half = |a| saturating_rounding_doubling_high_mul(a, 1 << 30);
        check_all(&[
            ("1/2 = 0.5", half(1), 1),
            ("-1/2 = -0.5 goes up to 0", half(-1), 0),
            ("3/2 = 1.5", half(3), 2),
            ("-3/2 = -1.5 goes up to -1", half(-3), -1),
            ("-5/2 = -2.5 goes up to -2", half(-5), -2),
            ("4/2 exact", half(4), 2),
            ("-4/2 exact", half(-4), -2),
        ]);
    }

    #[test]
    fn srdhm_negative_non_ties_round_to_nearest() {
        // b = 3 * 2^29 is 0.75.
        let f = |a| saturating_rounding_doubling_high_mul(a, 3 << 29);
        check_all(&[
            ("-1 * 0.75 = -0.75", f(-1), -1),
            ("-2 * 0.75 = -1.5 tie", f(-2), -1),
            ("-3 * 0.75 = -2.25", f(-3), -2),
            ("-1000 * 0.75 = -750", f(-1000), -750),
            ("-1001 * 0.75 = -750.75", f(-1001), -751),
        ]);
    }

    // ---- rounding_divide_by_pot ----

    #[test]
    fn rdbp_ties_go_away_from_zero_both_signs() {
        let f = rounding_divide_by_pot;
        check_all(&[
            ("1/2", f(1, 1), 1),
            ("-1/2", f(-1, 1), -1),
            ("5/2", f(5, 1), 3),
            ("-5/2", f(-5, 1), -3),
            ("6/4 = 1.5", f(6, 2), 2),
            ("-6/4 = -1.5", f(-6, 2), -2),
            ("5/4 = 1.25", f(5, 2), 1),
            ("-5/4 = -1.25", f(-5, 2), -1),
            ("7/4 = 1.75", f(7, 2), 2),
            ("-7/4 = -1.75", f(-7, 2), -2),
            ("2^30 / 2^31 = 0.5", f(1 << 30, 31), 1),
            ("-2^30 / 2^31 = -0.5", f(-(1 << 30), 31), -1),
            ("(-2^30 + 1) / 2^31", f(-(1 << 30) + 1, 31), 0),
        ]);
    }

    #[test]
    fn rdbp_exponent_zero_and_extremes() {
        let f = rounding_divide_by_pot;
        check_all(&[
            ("MIN >> 0", f(i32::MIN, 0), i32::MIN),
            ("MAX >> 0", f(i32::MAX, 0), i32::MAX),
            ("-7 >> 0", f(-7, 0), -7),
            ("MIN / 2^31 = -1", f(i32::MIN, 31), -1),
            ("MAX / 2^31 ≈ 1", f(i32::MAX, 31), 1),
            ("MIN / 2^32 = -0.5", f(i32::MIN, 32), -1),
            ("MAX / 2^32 < 0.5", f(i32::MAX, 32), 0),
            ("MIN / 2^33", f(i32::MIN, 33), 0),
            ("MIN / 2^u32::MAX", f(i32::MIN, u32::MAX), 0),
        ]);
    }

    // ---- multiply_by_quantized_multiplier ----

    #[test]
    fn mbqm_negative_accumulators() {
        let (m, s) = quantize_multiplier(0.25).unwrap(); // (2^30, -1)
        let (m3, s3) = quantize_multiplier(0.75).unwrap(); // (3 * 2^29, 0)
        let f = multiply_by_quantized_multiplier;
        check_all(&[
            ("-100 * 0.25", f(-100, m, s), -25),
            // -6 * 0.5 = -3, then -3 / 2 = -1.5 rounds away to -2.
            ("-6 * 0.25 = -1.5", f(-6, m, s), -2),
            // -5 * 0.5 = -2.5 rounds up to -2, then -2 / 2 = -1 (exact answer -1.25).
            ("-5 * 0.25 = -1.25", f(-5, m, s), -1),
            // -7 * 0.5 = -3.5 rounds up to -3, then -3 / 2 = -1.5 rounds away to -2 (exact -1.75).
            ("-7 * 0.25 = -1.75", f(-7, m, s), -2),
            ("-2 * 0.75 = -1.5 tie goes up", f(-2, m3, s3), -1),
            ("-1001 * 0.75", f(-1001, m3, s3), -751),
            ("MIN * 0.25", f(i32::MIN, m, s), -(1 << 29)),
        ]);
    }

    #[test]
    fn mbqm_double_rounding_differs_from_single_rounding() {
        // 5 * 0.25 = 1.25: single rounding gives 1, TFLM's double rounding gives 2 (2.5 → 3,
        // then 1.5 → 2). The device must give 2.
        let (m, s) = quantize_multiplier(0.25).unwrap();
        check_all(&[
            ("5 * 0.25", multiply_by_quantized_multiplier(5, m, s), 2),
            ("-5 * 0.25", multiply_by_quantized_multiplier(-5, m, s), -1),
        ]);
    }

    #[test]
    fn mbqm_positive_shift_is_a_left_shift() {
        let f = multiply_by_quantized_multiplier;
        check_all(&[
            // 3 * (0.5 * 2^2) = 6.
            ("3 * 2.0", f(3, 1 << 30, 2), 6),
            // -3 * (0.75 * 2) = -4.5: (-3 * 2) * 0.75 = -4.5 rounds up to -4.
            ("-3 * 1.5 tie", f(-3, 3 << 29, 1), -4),
            // 3 * 1.5 = 4.5 rounds up to 5.
            ("3 * 1.5 tie", f(3, 3 << 29, 1), 5),
            // 1 * 0.5 * 2^30 = 2^29, the largest valid shift.
            ("1 * 2^29", f(1, 1 << 30, 30), 1 << 29),
            // x * 2^left overflows i32 and wraps, as the C++ does: 4 * 2^30 = 2^32 ≡ 0.
            ("wrapping left shift", f(4, 1 << 30, 30), 0),
        ]);
    }

    #[test]
    fn mbqm_shift_minus_31_and_zero_multiplier() {
        let f = multiply_by_quantized_multiplier;
        check_all(&[
            // 2^30 * 2^30 / 2^31 = 2^29, / 2^31 = 0.25 → 0.
            ("2^30 * 2^-32", f(1 << 30, 1 << 30, -31), 0),
            // MIN * 0.5 = -2^30, / 2^31 = -0.5 → -1.
            ("MIN * 2^-32", f(i32::MIN, 1 << 30, -31), -1),
            // M == 0 (what shifts below -31 become): everything maps to 0.
            ("M == 0, MAX", f(i32::MAX, 0, 0), 0),
            ("M == 0, MIN", f(i32::MIN, 0, 0), 0),
            // Out-of-range shifts do not panic.
            ("shift i32::MIN", f(i32::MIN, 1 << 30, i32::MIN), 0),
            ("shift i32::MAX", f(7, 1 << 30, i32::MAX), 0),
        ]);
    }

    #[test]
    fn mbqm_matches_reference_on_random_inputs() {
        let mut rng = SplitMix64::new(0x5eed_0004);
        for i in 0..2_000_000 {
            let x = match i % 4 {
                0 => rng.next_u64() as i32,
                1 => rng.below(1 << 16) as i32 - (1 << 15),
                2 => [i32::MIN, i32::MAX, 0, -1, 1][rng.below(5) as usize],
                _ => (rng.next_u64() as i32) >> rng.below(32),
            };
            let multiplier = match i % 3 {
                0 => rng.below(1 << 31) as i32,
                1 => (1 << 30) + rng.below(1 << 30) as i32,
                _ => [0, 1 << 30, i32::MAX][rng.below(3) as usize],
            };
            let shift = rng.below(62) as i32 - 31;
            let actual = multiply_by_quantized_multiplier(x, multiplier, shift);
            let expected = reference_mbqm(x, multiplier, shift);
            assert_eq!(
                actual, expected,
                "case {i}: x = {x}, multiplier = {multiplier}, shift = {shift}"
            );
        }
    }

    #[test]
    fn per_channel_quant_validate_names_the_problem() {
        let ok = PerChannelQuant {
            multipliers: &[1 << 30, 0],
            shifts: &[MIN_SHIFT, MAX_SHIFT],
        };
        check_all(&[
            ("valid", ok.validate(2), Ok(())),
            (
                "too few multipliers",
                ok.validate(3),
                Err(Error::ShapeMismatch {
                    operand: "multipliers",
                    expected: 3,
                    actual: 2,
                }),
            ),
            (
                "shifts shorter than multipliers",
                PerChannelQuant {
                    multipliers: &[1, 2],
                    shifts: &[0],
                }
                .validate(2),
                Err(Error::ShapeMismatch {
                    operand: "shifts",
                    expected: 2,
                    actual: 1,
                }),
            ),
            (
                "negative multiplier",
                PerChannelQuant {
                    multipliers: &[1, -1],
                    shifts: &[0, 0],
                }
                .validate(2),
                Err(Error::NegativeMultiplier {
                    channel: 1,
                    multiplier: -1,
                }),
            ),
            (
                "shift 31",
                PerChannelQuant {
                    multipliers: &[1],
                    shifts: &[31],
                }
                .validate(1),
                Err(Error::ShiftOutOfRange { channel: 0, shift: 31 }),
            ),
            (
                "shift -32",
                PerChannelQuant {
                    multipliers: &[1],
                    shifts: &[-32],
                }
                .validate(1),
                Err(Error::ShiftOutOfRange { channel: 0, shift: -32 }),
            ),
        ]);
    }

    #[test]
    fn the_validated_form_is_tflms_requantization() {
        let mut rng = SplitMix64::new(0x2ea1);
        let accumulators = [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
            1 << 30,
            -(1 << 30),
            (1 << 30) + 1,
            -(1 << 30) - 1,
        ];
        let multipliers = [0, 1, 1 << 30, (1 << 30) + 1, i32::MAX, i32::MAX - 1, 1_518_500_250];
        let mut checked = 0u64;
        for shift in MIN_SHIFT..=MAX_SHIFT {
            for &zero_point in &[-128, 0, 127] {
                let mut check = |acc: i32, multiplier: i32| {
                    let want = requantize_to_s8(acc, multiplier, shift, zero_point, -128, 127);
                    let got = requantize_to_s8_validated(acc, multiplier, shift, zero_point);
                    assert_eq!(
                        got, want,
                        "acc {acc}, multiplier {multiplier}, shift {shift}, zp {zero_point}"
                    );
                    checked += 1;
                };
                for &acc in &accumulators {
                    for &multiplier in &multipliers {
                        check(acc, multiplier);
                    }
                }
                // Small accumulators times 0.5: every kind of tie of both roundings.
                for acc in -2048..2048 {
                    check(acc, 1 << 30);
                }
                for _ in 0..3000 {
                    // Accumulators of every magnitude, and exact ties of the second rounding.
                    let acc = match rng.below(3) {
                        0 => rng.next_u64() as i32,
                        1 => (rng.next_u64() as i32) >> rng.below(32),
                        _ => ((rng.next_u64() as i32) >> rng.below(32)) | 1 << (rng.below(31)),
                    };
                    let multiplier = if rng.below(4) == 0 {
                        rng.below(1 << 31) as i32
                    } else {
                        (1 << 30) + rng.below(1 << 30) as i32
                    };
                    check(acc, multiplier);
                }
            }
        }
        std::println!("{checked} requantizations, 0 mismatches");
    }
}
