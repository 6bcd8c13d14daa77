//! 256-entry int8 lookup tables for LeakyReLU and Logistic, as TFLM computes them.
//!
//! An element-wise op whose input is int8 has only 256 possible inputs, so on the device it can
//! be a table: [`apply`] (or [`apply_in_place`]) maps every input code through a [`Table`], with
//! integers only and one load per element. The tables are built on the host at export time, by
//! [`leaky_relu_table`] and [`logistic_table`], which emulate TensorFlow Lite Micro's int8
//! reference kernels step by step, so the table holds exactly what TFLM would return for each
//! input: identical by construction, on any target.
//!
//! Entry `i` of a table is the output for the input code `i - 128` (entry 0 for -128, entry 255
//! for 127), the same order as the `output` arrays of the TFLM golden vectors.

use crate::error::expect_len;
use crate::requantize::{multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot, MAX_SHIFT};
use crate::Error;

/// Number of entries in a [`Table`]: one per int8 code.
pub const TABLE_LEN: usize = 256;

/// A 256-entry int8 → int8 lookup table: entry `i` is the output for input code `i - 128`.
///
/// ```
/// use autoencoder_core::table_s8::Table;
/// let mut entries = [0i8; 256];
/// entries[0] = -7; // the output for input -128
/// entries[255] = 9; // the output for input 127
/// let table = Table::from_entries(entries);
/// assert_eq!(table.lookup(-128), -7);
/// assert_eq!(table.lookup(127), 9);
/// assert_eq!(table.lookup(0), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Table([i8; TABLE_LEN]);

impl Table {
    /// Wraps 256 entries, entry `i` being the output for input code `i - 128` (as a model file
    /// or the TFLM golden vectors list them).
    pub const fn from_entries(entries: [i8; TABLE_LEN]) -> Self {
        Self(entries)
    }

    /// The 256 entries, entry `i` being the output for input code `i - 128`.
    pub const fn entries(&self) -> &[i8; TABLE_LEN] {
        &self.0
    }

    /// The table whose every entry is its own input code: `lookup(q) == q`.
    pub fn identity() -> Self {
        Self::from_fn(|q| q)
    }

    /// Builds a table from the output of every input code, `f(-128)` to `f(127)`.
    fn from_fn(mut f: impl FnMut(i8) -> i8) -> Self {
        let mut entries = [0i8; TABLE_LEN];
        for (entry, q) in entries.iter_mut().zip(i8::MIN..=i8::MAX) {
            *entry = f(q);
        }
        Self(entries)
    }

    /// The output for input code `q`: entry `q + 128`.
    #[inline]
    pub fn lookup(&self, q: i8) -> i8 {
        // Flipping the sign bit maps -128..=127 onto 0..=255 in order (two's complement).
        let index = usize::from((q as u8) ^ 0x80);
        // A u8 index is always inside a 256-entry array; the fallback is never taken (and the
        // bounds check compiles away).
        self.0.get(index).copied().unwrap_or(q)
    }
}

/// Maps every input code through `table`: `output[i] = table.lookup(input[i])`.
///
/// Integers only; this is the device-side kernel of every table activation.
///
/// # Errors
/// [`Error::ShapeMismatch`] (operand `"output"`) when `output.len() != input.len()`; `output` is
/// then untouched.
///
/// ```
/// use autoencoder_core::table_s8::{apply, leaky_relu_table};
/// // Same scale in and out, zero point 0: the identity for q >= 0, and q * alpha below.
/// let table = leaky_relu_table(0.5, 0.1, 0, 0.1, 0).unwrap();
/// let mut output = [0i8; 4];
/// apply(&table, &[-128, -4, 0, 127], &mut output).unwrap();
/// assert_eq!(output, [-64, -2, 0, 127]);
/// ```
pub fn apply(table: &Table, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    // Shapes: input [n], output [n].
    expect_len("output", input.len(), output.len())?;
    for (y, &x) in output.iter_mut().zip(input) {
        *y = table.lookup(x);
    }
    Ok(())
}

/// Maps every code of `data` through `table` in place: `data[i] = table.lookup(data[i])`.
///
/// ```
/// use autoencoder_core::table_s8::{apply_in_place, Table};
/// let mut data = [-128i8, 0, 127];
/// apply_in_place(&Table::identity(), &mut data);
/// assert_eq!(data, [-128, 0, 127]);
/// ```
pub fn apply_in_place(table: &Table, data: &mut [i8]) {
    for x in data.iter_mut() {
        *x = table.lookup(*x);
    }
}

/// Checks that a zero point lies in int8.
fn zero_point_in_range(zero_point: i32) -> bool {
    (i32::from(i8::MIN)..=i32::from(i8::MAX)).contains(&zero_point)
}

/// Clamps an i32 to int8.
fn saturate_to_i8(value: i32) -> i8 {
    value.clamp(i32::from(i8::MIN), i32::from(i8::MAX)) as i8
}

/// LeakyReLU as TFLM's int8 `LEAKY_RELU` computes it, as a table.
///
/// **Host/export side** (the multipliers are computed in floating point). TFLM's rule, as the
/// pinned `tflite-micro` build computes it (see `docs/int8-arithmetic.md`): the three f32 values
/// are widened to f64 and the two effective scales formed there, `identity = in_scale /
/// out_scale` and `alpha = in_scale * alpha / out_scale` (left to right), then split by
/// [`quantize_multiplier`]. (Forming them in f32 first, or forming `in_scale * alpha` in f32,
/// differs from TFLM in rare ties; `testdata/tflm/leaky_relu_rule.jsonl` holds such cases.)
/// For every input code `q`:
/// `v = q - in_zero_point`;
/// `y = clamp(out_zero_point + mbqm(v, if v >= 0 { identity } else { alpha }), -128, 127)`
/// with `mbqm` = [`multiply_by_quantized_multiplier`].
///
/// `alpha` may be 0 (plain ReLU: every negative input maps to `out_zero_point`); a negative
/// alpha is refused, as [`quantize_multiplier`] refuses negative scales. Held to TFLM by the
/// golden vectors in `testdata/tflm/leaky_relu.jsonl` (all 300 cases, bit for bit).
///
/// # Errors
/// [`Error::InputZeroPointOutOfRange`] / [`Error::OutputZeroPointOutOfRange`] for a zero point
/// outside [-128, 127]; from [`quantize_multiplier`]: [`Error::NegativeScale`] (a negative scale
/// or alpha), [`Error::NonFiniteScale`] (NaN or infinite inputs, or an `out_scale` of 0),
/// [`Error::ScaleTooLarge`].
///
/// ```
/// use autoencoder_core::table_s8::leaky_relu_table;
/// // s_in = s_out: the identity for q >= zp_in; below it, (q - zp_in) * 0.25.
/// let table = leaky_relu_table(0.25, 0.05, -10, 0.05, -10).unwrap();
/// assert_eq!(table.lookup(100), 100);
/// assert_eq!(table.lookup(-10), -10);
/// assert_eq!(table.lookup(-18), -12); // -8 * 0.25 = -2
/// ```
pub fn leaky_relu_table(
    alpha: f32,
    in_scale: f32,
    in_zero_point: i32,
    out_scale: f32,
    out_zero_point: i32,
) -> Result<Table, Error> {
    if !zero_point_in_range(in_zero_point) {
        return Err(Error::InputZeroPointOutOfRange {
            zero_point: in_zero_point,
        });
    }
    if !zero_point_in_range(out_zero_point) {
        return Err(Error::OutputZeroPointOutOfRange {
            zero_point: out_zero_point,
        });
    }
    // All in f64: what TFLM's LEAKY_RELU returns (settled by running it, not by reading it).
    let identity_scale = f64::from(in_scale) / f64::from(out_scale);
    let alpha_scale = f64::from(in_scale) * f64::from(alpha) / f64::from(out_scale);
    let (identity_multiplier, identity_shift) = quantize_multiplier(identity_scale)?;
    let (alpha_multiplier, alpha_shift) = quantize_multiplier(alpha_scale)?;
    Ok(Table::from_fn(|q| {
        // Both operands in int8, so v is in [-255, 255].
        let v = i32::from(q) - in_zero_point;
        let scaled = if v >= 0 {
            multiply_by_quantized_multiplier(v, identity_multiplier, identity_shift)
        } else {
            multiply_by_quantized_multiplier(v, alpha_multiplier, alpha_shift)
        };
        // |scaled| <= 255 * 2^30 can wrap only for absurd scales; wrapping (as the C++ does)
        // rather than panicking.
        saturate_to_i8(scaled.wrapping_add(out_zero_point))
    }))
}

/// Integer bits of the Q4.27 format the logistic's input is rescaled to (TFLM's
/// `kInputIntegerBits`).
const LOGISTIC_INPUT_INTEGER_BITS: i32 = 4;

/// The output's zero point, fixed by TFLM for int8 LOGISTIC (the scale is fixed to 1/256).
pub const LOGISTIC_OUTPUT_ZERO_POINT: i32 = -128;

/// The sigmoid as TFLM's int8 reference `LOGISTIC` computes it, as a table. The output scale is
/// 1/256 and its zero point -128 ([`LOGISTIC_OUTPUT_ZERO_POINT`]), which TFLM requires.
///
/// **Host/export side** (the input multiplier is computed in floating point; the rest is the
/// same integer arithmetic as TFLM's). The steps, as TFLM's `CalculateArithmeticOpDataLogistic`
/// and `reference_integer_ops::Logistic` with gemmlowp's fixed-point `logistic`:
/// 1. `in_scale * 2^27` (exact in f64) is split into `(multiplier, left_shift)` by
///    [`quantize_multiplier`] (an f32 scale has 24 significant bits, so no rounding happens and
///    this equals TFLM's `frexp` and `round`).
/// 2. The input radius is `floor(15 * 2^27 / 2^left_shift)` (TFLM's `CalculateInputRadius`
///    with 4 integer bits): the largest `|v|` whose rescaled value fits Q4.27.
/// 3. For each input code `q`, `v = q - in_zero_point`: `v <= -radius` gives -128 and
///    `v >= radius` gives 127; otherwise `x = mbqm(v, multiplier, left_shift)` is `v * in_scale`
///    in Q4.27, gemmlowp's `logistic(x)` gives the sigmoid in Q0.31, and the output is
///    `clamp(rounding_divide_by_pot(sigmoid, 23) - 128, -128, 127)`.
///
/// A float table (`round(256 / (1 + exp(-x))) - 128`) differs from this where the radius
/// saturates inputs whose sigmoid is not yet at the int8 ends: with `in_scale` ≈ 2 the radius
/// is 3, so `v = -3` (x ≈ -6) gives -128 where a float table says -127; with `in_scale` = 4 the
/// radius is 1 and x = ±4 gives -128 / 127 instead of -123 / 123. Held to TFLM by the golden
/// vectors in `testdata/tflm/logistic.jsonl` (all 600 cases, bit for bit, those 28 entries
/// included).
///
/// An `in_scale` of 0 (or one so small that every input rescales to 0) gives the all-zero table
/// (sigmoid(0) = 0.5 is code 0). An `in_scale` of 8 or more is refused ([`Error::ScaleTooLarge`]):
/// TFLM's radius is then 0 and every input saturates, the zero point included, which is not a
/// sigmoid (and from 2^36 on its arithmetic is undefined).
///
/// # Errors
/// [`Error::InputZeroPointOutOfRange`] for a zero point outside [-128, 127];
/// [`Error::NegativeScale`], [`Error::NonFiniteScale`] (NaN or ±∞) or [`Error::ScaleTooLarge`]
/// (`in_scale >= 8`) for the scale.
///
/// ```
/// use autoencoder_core::table_s8::logistic_table;
/// let table = logistic_table(0.05, 3).unwrap();
/// assert_eq!(table.lookup(3), 0); // x = 0: sigmoid 0.5 = 128/256, code 128 - 128
/// assert_eq!(table.lookup(23), 59); // x = 1: 0.7311 * 256 = 187.2 → 187, code 187 - 128
/// assert_eq!(table.lookup(-128), -128); // x = -6.55: 0.37 → 0, code -128
/// ```
pub fn logistic_table(in_scale: f32, in_zero_point: i32) -> Result<Table, Error> {
    if !zero_point_in_range(in_zero_point) {
        return Err(Error::InputZeroPointOutOfRange {
            zero_point: in_zero_point,
        });
    }
    // 2^(31 - 4) = 2^27: v * in_scale * 2^27 is x in Q4.27. The product is exact in f64.
    let real_multiplier = f64::from(in_scale) * f64::from(1u32 << (31 - LOGISTIC_INPUT_INTEGER_BITS));
    let (multiplier, left_shift) = quantize_multiplier(real_multiplier)?;
    let radius = logistic_input_radius(left_shift);
    Ok(Table::from_fn(|q| {
        let v = i32::from(q) - in_zero_point;
        if v <= -radius {
            i8::MIN
        } else if v >= radius {
            i8::MAX
        } else {
            let x_q4_27 = multiply_by_quantized_multiplier(v, multiplier, left_shift);
            let sigmoid_q0_31 = fixed_point::logistic_q4_27(x_q4_27);
            // Q0.31 to units of 1/256: divide by 2^(31 - 8).
            let code = rounding_divide_by_pot(sigmoid_q0_31, 31 - 8);
            saturate_to_i8(code + LOGISTIC_OUTPUT_ZERO_POINT)
        }
    }))
}

/// TFLM's `CalculateInputRadius(4, left_shift, 31)`: `floor(15 * 2^27 / 2^left_shift)`, the
/// largest input magnitude (in input codes) that the Q4.27 rescale can represent.
///
/// `left_shift` is at most [`MAX_SHIFT`] (30) here, giving radius 1. For `left_shift <= 0` the
/// radius is 15 * 2^27 or more (TFLM's shift by a negative amount is undefined there); any
/// radius above 255 saturates nothing, so it is returned as `i32::MAX`.
fn logistic_input_radius(left_shift: i32) -> i32 {
    const MAX_INPUT_RESCALED: i32 = ((1 << LOGISTIC_INPUT_INTEGER_BITS) - 1) << (31 - LOGISTIC_INPUT_INTEGER_BITS);
    match u32::try_from(left_shift) {
        Ok(0) | Err(_) => i32::MAX,
        // An exact integer division by a power of two: the floor.
        Ok(shift) if shift <= MAX_SHIFT.unsigned_abs() => MAX_INPUT_RESCALED >> shift,
        Ok(_) => 0,
    }
}

/// gemmlowp's fixed-point `logistic` for a Q4.27 input (`FixedPoint<int32, 4>`), integer for
/// integer. Notation: `Qm.n` is a signed 32-bit value with `m` integer and `n` fractional bits;
/// a product of two values with `a` and `b` integer bits (gemmlowp's `operator*`, i.e.
/// [`saturating_rounding_doubling_high_mul`](crate::requantize::saturating_rounding_doubling_high_mul)) has `a + b` integer bits. Additions and
/// subtractions are plain i32 ones in gemmlowp (they never overflow on these paths); they wrap
/// here so that nothing can panic.
pub(crate) mod fixed_point {
    use crate::requantize::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul as mul};

    /// 1.0 in Q0.31, saturated: gemmlowp's `FixedPoint<int32, 0>::One()`.
    const ONE_Q0_31: i32 = i32::MAX;

    /// `x * 2^exponent` with saturation to the i32 range (gemmlowp's
    /// `SaturatingRoundingMultiplyByPOT` for a positive exponent, used by `Rescale` towards
    /// fewer integer bits). `exponent` is 1..=30.
    pub(crate) fn saturating_shl(x: i32, exponent: u32) -> i32 {
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    }

    /// `(a + b) / 2` rounded half away from zero, computed without overflow: gemmlowp's
    /// `RoundingHalfSum` for int32.
    pub(crate) fn rounding_half_sum(a: i32, b: i32) -> i32 {
        let sum = i64::from(a) + i64::from(b);
        let sign = if sum >= 0 { 1 } else { -1 };
        // |sum + sign| / 2 <= 2^31: the quotient of two int32 halves always fits.
        ((sum + sign) / 2) as i32
    }

    /// `exp(a)` for `a` in [-1/4, 0), both Q0.31: a 4th-order Taylor polynomial around -1/8.
    pub(crate) fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
        // round(exp(-1/8) * 2^31) and round(2^31 / 3).
        const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668;
        const ONE_THIRD: i32 = 715_827_883;
        // x = a + 1/8, in [-1/8, 1/8).
        let x = a.wrapping_add(1 << 28);
        let x2 = mul(x, x);
        let x3 = mul(x2, x);
        let x4 = mul(x2, x2);
        let x4_over_4 = rounding_divide_by_pot(x4, 2);
        // (x^4/4 + x^3) / 3 + x^2, halved: x^4/24 + x^3/6 + x^2/2.
        let higher_terms = rounding_divide_by_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), 1);
        // e^-1/8 * (1 + x + x^2/2 + x^3/6 + x^4/24).
        EXP_MINUS_ONE_EIGHTH.wrapping_add(mul(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(higher_terms)))
    }

    /// `exp(a)` for `a <= 0`: `a` in Q4.27, the result in Q0.31 (`exp(0)` is `i32::MAX`).
    ///
    /// `a` is split as `(a mod 1/4) - 1/4` (in [-1/4, 0)) plus a multiple of 1/4; the first part
    /// goes through the polynomial, and each set bit of the multiple multiplies in a constant
    /// `exp(-2^k)`, k = -2..=3 (a barrel shifter).
    pub(crate) fn exp_on_negative_values_q4_27(a: i32) -> i32 {
        const FRACTIONAL_BITS: i32 = 27;
        const ONE_QUARTER: i32 = 1 << (FRACTIONAL_BITS - 2);
        // round(exp(-2^k) * 2^31) for k = -2..=3, as gemmlowp has them. (Its k = 4 entry only
        // applies to inputs with more than 4 integer bits.)
        const BARREL: [(i32, i32); 6] = [
            (-2, 1_672_461_947),
            (-1, 1_302_514_674),
            (0, 790_015_084),
            (1, 290_630_308),
            (2, 39_332_535),
            (3, 720_401),
        ];
        let a_mod_quarter_minus_one_quarter = (a & (ONE_QUARTER - 1)).wrapping_sub(ONE_QUARTER);
        // Q4.27 to Q0.31 (Rescale<0>): a left shift by 4, saturated; in range here.
        let mut result =
            exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shl(a_mod_quarter_minus_one_quarter, 4));
        // The non-negative multiple of 1/4 that was taken off, in Q4.27.
        let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
        for (exponent, exp_minus_two_pow_exponent) in BARREL {
            // The bit worth 2^exponent in Q4.27; exponent + 27 is in 25..=30.
            let bit = 1i32 << (FRACTIONAL_BITS + exponent);
            if remainder & bit != 0 {
                result = mul(result, exp_minus_two_pow_exponent);
            }
        }
        if a == 0 {
            ONE_Q0_31
        } else {
            result
        }
    }

    /// `1 / (1 + a)` for `a` in [0, 1], both Q0.31: three Newton–Raphson steps on
    /// `d = (1 + a) / 2` in Q2.29, starting from `48/17 - 32/17 * d`.
    pub(crate) fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
        // round(48/17 * 2^29) and round(-32/17 * 2^29): Q2.29 constants.
        const FORTY_EIGHT_OVER_17: i32 = 1_515_870_810;
        const MINUS_THIRTY_TWO_OVER_17: i32 = -1_010_580_540;
        const ONE_Q2_29: i32 = 1 << 29;
        let half_denominator = rounding_half_sum(a, ONE_Q0_31);
        // Q0.31 * Q2.29 is Q2.29.
        let mut x = FORTY_EIGHT_OVER_17.wrapping_add(mul(half_denominator, MINUS_THIRTY_TWO_OVER_17));
        for _ in 0..3 {
            let half_denominator_times_x = mul(half_denominator, x);
            let one_minus_half_denominator_times_x = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
            // Q2.29 * Q2.29 is Q4.27; Rescale<2> shifts it left by 2 (saturating).
            x = x.wrapping_add(saturating_shl(mul(x, one_minus_half_denominator_times_x), 2));
        }
        // x ≈ 1 / d = 2 / (1 + a) in Q2.29; the same bits are x / 2 in Q1.30 (ExactMulByPot<-1>),
        // and Rescale<0> takes Q1.30 to Q0.31 with a saturating left shift by 1.
        saturating_shl(x, 1)
    }

    /// gemmlowp's `logistic`: `1 / (1 + exp(-a))` for `a` in Q4.27, the result in Q0.31.
    /// Computed for `|a|` as `1 / (1 + exp(-|a|))` and mirrored (`1 - s`) for negative `a`;
    /// exactly 1/2 at 0.
    pub(crate) fn logistic_q4_27(a: i32) -> i32 {
        if a == 0 {
            return 1 << 30;
        }
        let magnitude = if a > 0 { a } else { a.wrapping_neg() };
        let positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values_q4_27(magnitude.wrapping_neg()));
        if a > 0 {
            positive
        } else {
            ONE_Q0_31.wrapping_sub(positive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixed_point::*;
    use super::*;
    use crate::requantize::tests::reference_mbqm;
    use crate::testutil::SplitMix64;
    use std::format;
    use std::vec::Vec;

    /// Compares two tables entry by entry, naming the first differing input code.
    fn assert_tables_equal(label: &str, actual: &Table, expected: &[i8; 256]) {
        for (position, (a, e)) in actual.entries().iter().zip(expected).enumerate() {
            let q = position as i32 - 128;
            assert_eq!(a, e, "{label}: input {q} (entry {position}): actual {a}, expected {e}");
        }
    }

    fn table_of(f: impl Fn(i32) -> i32) -> [i8; 256] {
        let mut entries = [0i8; 256];
        for (position, entry) in entries.iter_mut().enumerate() {
            *entry = f(position as i32 - 128) as i8;
        }
        entries
    }

    // ---- Table, apply ----

    #[test]
    fn table_entry_i_is_the_output_for_code_i_minus_128() {
        let table = Table::from_entries(table_of(|q| 127 - (q + 128)));
        assert_eq!(table.lookup(-128), 127);
        assert_eq!(table.lookup(-1), 0);
        assert_eq!(table.lookup(0), -1);
        assert_eq!(table.lookup(127), -128);
        for q in i8::MIN..=i8::MAX {
            assert_eq!(Table::identity().lookup(q), q, "identity at {q}");
        }
    }

    #[test]
    fn apply_maps_every_element_and_in_place_agrees() {
        let table = Table::from_entries(table_of(|q| q / 2));
        let input: Vec<i8> = (i8::MIN..=i8::MAX).chain([0, -128, 127, 5]).collect();
        let mut output = std::vec![0i8; input.len()];
        apply(&table, &input, &mut output).unwrap();
        let mut in_place = input.clone();
        apply_in_place(&table, &mut in_place);
        for (position, ((&x, &y), &z)) in input.iter().zip(&output).zip(&in_place).enumerate() {
            let expected = (i32::from(x) / 2) as i8;
            assert_eq!(
                y, expected,
                "apply: position {position}, input {x}: actual {y}, expected {expected}"
            );
            assert_eq!(
                z, expected,
                "in place: position {position}, input {x}: actual {z}, expected {expected}"
            );
        }
    }

    #[test]
    fn apply_empty_is_a_no_op() {
        let mut output: [i8; 0] = [];
        assert_eq!(apply(&Table::identity(), &[], &mut output), Ok(()));
        apply_in_place(&Table::identity(), &mut output);
    }

    #[test]
    fn apply_length_mismatch_is_an_error_and_leaves_output_untouched() {
        let table = Table::from_entries([1; 256]);
        for (input_len, output_len) in [(3usize, 2usize), (2, 3), (0, 1), (1, 0)] {
            let input = std::vec![0i8; input_len];
            let mut output = std::vec![42i8; output_len];
            let result = apply(&table, &input, &mut output);
            assert_eq!(
                result,
                Err(Error::ShapeMismatch {
                    operand: "output",
                    expected: input_len,
                    actual: output_len,
                }),
                "input {input_len}, output {output_len}"
            );
            assert!(output.iter().all(|&y| y == 42), "input {input_len}: output was written");
        }
    }

    // ---- LeakyReLU ----

    /// LeakyReLU from the rule in docs/int8-arithmetic.md, with the independent reference
    /// requantization.
    fn naive_leaky_relu(alpha: f32, s_in: f32, zp_in: i32, s_out: f32, zp_out: i32) -> [i8; 256] {
        let (s_in, s_out, alpha) = (f64::from(s_in), f64::from(s_out), f64::from(alpha));
        let (mi, si) = quantize_multiplier(s_in / s_out).unwrap();
        let (ma, sa) = quantize_multiplier(s_in * alpha / s_out).unwrap();
        table_of(|q| {
            let v = q - zp_in;
            let scaled = if v >= 0 {
                reference_mbqm(v, mi, si)
            } else {
                reference_mbqm(v, ma, sa)
            };
            (zp_out + scaled).clamp(-128, 127)
        })
    }

    #[test]
    fn leaky_relu_identity_scale_maps_q_to_q_from_the_zero_point_up() {
        for zp in [-128, -1, 0, 37, 127] {
            for scale in [0.003f32, 0.1, 1.0, 7.5] {
                let table = leaky_relu_table(0.01, scale, zp, scale, zp).unwrap();
                for q in zp..=127 {
                    let actual = table.lookup(q as i8);
                    assert_eq!(
                        i32::from(actual),
                        q,
                        "zp {zp}, scale {scale}: input {q}: actual {actual}"
                    );
                }
                // Just below the zero point: -1 * 0.01 rounds to 0, so the output is zp too.
                if zp > -128 {
                    let actual = table.lookup((zp - 1) as i8);
                    assert_eq!(i32::from(actual), zp, "zp {zp}, scale {scale}: input {}", zp - 1);
                }
            }
        }
    }

    #[test]
    fn leaky_relu_zero_points_minus_128_and_127() {
        // zp_in -128: every input is >= zp, so the whole table is the identity branch:
        // v = q + 128 in [0, 255], times 0.5, plus 127, saturating.
        let table = leaky_relu_table(0.01, 0.5, -128, 1.0, 127).unwrap();
        // q = -128: v = 0 → 127; every other v > 0 → >= 128 → 127.
        assert_tables_equal("zp_in -128, zp_out 127", &table, &[127; 256]);
        // zp_in 127: every input but 127 is on the alpha branch: v = q - 127 in [-255, 0].
        // alpha 0.5, scales equal: y = -128 + mbqm(v, 0.5): saturates to -128 for all v < 0.
        let table = leaky_relu_table(0.5, 0.25, 127, 0.25, -128).unwrap();
        assert_tables_equal("zp_in 127, zp_out -128", &table, &[-128; 256]);
        // zp_in 127, zp_out 127: y = 127 + v * 0.5 (srdhm ties go up: -0.5 → 0, -1.5 → -1).
        let table = leaky_relu_table(0.5, 0.25, 127, 0.25, 127).unwrap();
        let expected = table_of(|q| {
            let v = q - 127;
            127 + (v + 1).div_euclid(2) // round(v / 2), ties toward +∞
        });
        assert_tables_equal("zp_in 127, zp_out 127", &table, &expected);
        assert_eq!(table.lookup(-128), 127 - 127); // v = -255: -127.5 → -127
    }

    #[test]
    fn leaky_relu_negative_inputs_use_the_alpha_multiplier() {
        // alpha 0.25 with equal scales: M_alpha = 0.25 = (2^30, -1), double rounding.
        let table = leaky_relu_table(0.25, 0.1, 0, 0.1, 0).unwrap();
        // -4 → -1; -5 * 0.25 = -1.25: -2.5 → -2, then -1; -6: -3 then -1.5 → -2;
        // -7: -3.5 → -3, -1.5 → -2; -2: -0.5 → 0... -1 → 0 → 0.
        let cases = [(-4, -1), (-5, -1), (-6, -2), (-7, -2), (-2, -1), (-1, 0), (-128, -32)];
        for (q, expected) in cases {
            let actual = table.lookup(q);
            assert_eq!(actual, expected, "input {q}: actual {actual}, expected {expected}");
        }
    }

    #[test]
    fn leaky_relu_alpha_zero_is_relu() {
        let table = leaky_relu_table(0.0, 0.02, 5, 0.04, -3).unwrap();
        for q in -128..5 {
            assert_eq!(table.lookup(q as i8), -3, "input {q}");
        }
        // q = 9: v = 4, * 0.5 = 2, -3 + 2.
        assert_eq!(table.lookup(9), -1);
    }

    #[test]
    fn leaky_relu_bad_scales_and_zero_points_are_errors() {
        let cases: [(&str, Result<Table, Error>, Error); 10] = [
            (
                "negative in_scale",
                leaky_relu_table(0.01, -0.1, 0, 0.1, 0),
                Error::NegativeScale,
            ),
            (
                "negative out_scale",
                leaky_relu_table(0.01, 0.1, 0, -0.1, 0),
                Error::NegativeScale,
            ),
            (
                "negative alpha",
                leaky_relu_table(-0.01, 0.1, 0, 0.1, 0),
                Error::NegativeScale,
            ),
            (
                "NaN in_scale",
                leaky_relu_table(0.01, f32::NAN, 0, 0.1, 0),
                Error::NonFiniteScale,
            ),
            (
                "NaN alpha",
                leaky_relu_table(f32::NAN, 0.1, 0, 0.1, 0),
                Error::NonFiniteScale,
            ),
            (
                "infinite in_scale",
                leaky_relu_table(0.01, f32::INFINITY, 0, 0.1, 0),
                Error::NonFiniteScale,
            ),
            (
                "zero out_scale",
                leaky_relu_table(0.01, 0.1, 0, 0.0, 0),
                Error::NonFiniteScale,
            ),
            (
                "huge ratio",
                leaky_relu_table(0.01, 1e10, 0, 1e-1, 0),
                Error::ScaleTooLarge,
            ),
            (
                "in zero point 128",
                leaky_relu_table(0.01, 0.1, 128, 0.1, 0),
                Error::InputZeroPointOutOfRange { zero_point: 128 },
            ),
            (
                "out zero point -129",
                leaky_relu_table(0.01, 0.1, 0, 0.1, -129),
                Error::OutputZeroPointOutOfRange { zero_point: -129 },
            ),
        ];
        for (label, result, expected) in cases {
            assert_eq!(result, Err(expected), "{label}");
        }
    }

    #[test]
    fn leaky_relu_matches_naive_rule_on_random_parameters() {
        let mut rng = SplitMix64::new(0x5eed_1eaf);
        for case in 0..2_000 {
            let alpha = [0.01f32, 0.1, 0.2, 0.3, 0.0][rng.below(5) as usize];
            let s_in = 2f64.powf(rng.next_f64() * 16.0 - 12.0) as f32;
            let s_out = 2f64.powf(rng.next_f64() * 16.0 - 12.0) as f32;
            let zp_in = rng.range_i32(-128, 127);
            let zp_out = rng.range_i32(-128, 127);
            let table = leaky_relu_table(alpha, s_in, zp_in, s_out, zp_out).unwrap();
            let expected = naive_leaky_relu(alpha, s_in, zp_in, s_out, zp_out);
            let label = format!("case {case}: alpha {alpha}, in ({s_in}, {zp_in}), out ({s_out}, {zp_out})");
            assert_tables_equal(&label, &table, &expected);
        }
    }

    // ---- Logistic: the fixed-point pieces ----

    fn q0_31(x: f64) -> f64 {
        x * 2f64.powi(31)
    }

    #[test]
    fn fixed_point_exp_is_close_to_exp_and_exact_at_zero() {
        assert_eq!(exp_on_negative_values_q4_27(0), i32::MAX);
        // Every multiple of 1/64 in (-16, 0), plus odd points. The 4th-order polynomial on
        // [-1/4, 0) is accurate to about x^5 / 120 at |x| <= 1/8 (about 1.3e-7, some 280 units of
        // 2^-31, and the barrel multiplications add their roundings): the bound is 600 units.
        let mut worst = 0f64;
        for i in 1..(16 * 64) {
            for offset in [0, 1, 12345] {
                let a = -(i << 21) - offset; // Q4.27
                let x = f64::from(a) / 2f64.powi(27);
                let actual = f64::from(exp_on_negative_values_q4_27(a));
                let error = (actual - q0_31(x.exp())).abs();
                worst = worst.max(error);
                assert!(error < 600.0, "exp({x}): actual {actual}, expected {}", q0_31(x.exp()));
            }
        }
        std::println!("fixed-point exp: worst error {worst} units of 2^-31");
    }

    #[test]
    fn fixed_point_one_over_one_plus_x_is_close() {
        for i in 0..=1024 {
            let a = if i == 1024 { i32::MAX } else { i << 21 };
            let x = f64::from(a) / 2f64.powi(31);
            let actual = f64::from(one_over_one_plus_x_for_x_in_0_1(a));
            let expected = q0_31(1.0 / (1.0 + x)).min(f64::from(i32::MAX));
            assert!(
                (actual - expected).abs() < 16.0,
                "1/(1+{x}): actual {actual}, expected {expected}"
            );
        }
    }

    #[test]
    fn fixed_point_logistic_is_half_at_zero_and_mirrored() {
        assert_eq!(logistic_q4_27(0), 1 << 30);
        for a in [1, 7, 1 << 20, 1 << 27, 3 << 27, 15 << 27, i32::MAX] {
            // s(-a) = One - s(a) with One = i32::MAX.
            assert_eq!(logistic_q4_27(-a), i32::MAX - logistic_q4_27(a), "a = {a}");
        }
    }

    #[test]
    fn saturating_shl_and_rounding_half_sum_edges() {
        assert_eq!(saturating_shl((1 << 27) - 1, 4), ((1 << 27) - 1) << 4);
        assert_eq!(saturating_shl(1 << 27, 4), i32::MAX);
        assert_eq!(saturating_shl(-(1 << 27) + 1, 4), (-(1 << 27) + 1) << 4);
        assert_eq!(saturating_shl(-(1 << 27), 4), i32::MIN);
        assert_eq!(rounding_half_sum(i32::MAX, i32::MAX), i32::MAX);
        assert_eq!(rounding_half_sum(i32::MIN, i32::MIN), i32::MIN);
        assert_eq!(rounding_half_sum(0, i32::MAX), 1 << 30); // 2^30 - 0.5 rounds away: 2^30
        assert_eq!(rounding_half_sum(-3, 0), -2);
        assert_eq!(rounding_half_sum(3, 0), 2);
    }

    // ---- Logistic tables ----

    #[test]
    fn logistic_of_the_zero_point_is_code_0() {
        for zp in [-128, -1, 0, 64, 127] {
            for scale in [1e-3f32, 0.02, 0.1, 0.5, 4.0] {
                let table = logistic_table(scale, zp).unwrap();
                assert_eq!(table.lookup(zp as i8), 0, "zp {zp}, scale {scale}");
            }
        }
    }

    #[test]
    fn logistic_saturates_at_the_input_radius() {
        // s_in = 1/16: s_in * 2^27 = 2^23 = 0.5 * 2^24, left shift 24, radius 15 * 2^27 / 2^24 =
        // 120. x = v / 16.
        let table = logistic_table(1.0 / 16.0, 0).unwrap();
        for q in -128..=-120 {
            assert_eq!(table.lookup(q as i8), -128, "input {q} is beyond -radius");
        }
        for q in 120..=127 {
            assert_eq!(table.lookup(q as i8), 127, "input {q} is beyond +radius");
        }
        // Just inside: x = ±7.4375, sigmoid 0.99941 → 255.85 → 256, clamped; 0.00059 → 0.
        assert_eq!(table.lookup(119), 127);
        assert_eq!(table.lookup(-119), -128);
        // x = 1: 256 * 0.731059 = 187.15 → 187 → 59; x = -1: 68.85 → 69 → -59.
        assert_eq!(table.lookup(16), 59);
        assert_eq!(table.lookup(-16), -59);

        // s_in = 2: left shift 29, radius floor(15/4) = 3. v = -3 (x = -6) saturates to -128
        // where a float table says round(256 * 0.00247) - 128 = -127: the golden vectors' x ≈ -6
        // cases. v = -2 (x = -4) is computed: 256 * 0.01799 = 4.6 → 5 → -123.
        let table = logistic_table(2.0, 0).unwrap();
        assert_eq!(table.lookup(-3), -128);
        assert_eq!(table.lookup(-2), -123);
        assert_eq!(table.lookup(2), 123);
        assert_eq!(table.lookup(3), 127);

        // s_in = 4: left shift 30, radius floor(15/8) = 1: only v = 0 is computed, and v = ±1
        // (x = ±4) saturate although sigmoid(4) * 256 is only 251.4 (code 123). TFLM does this.
        let table = logistic_table(4.0, 10).unwrap();
        let expected = table_of(|q| match q - 10 {
            v if v < 0 => -128,
            0 => 0,
            _ => 127,
        });
        assert_tables_equal("s_in 4", &table, &expected);
    }

    #[test]
    fn logistic_zero_points_minus_128_and_127() {
        // zp -128: inputs are x = (q + 128) * s >= 0, the upper half of the sigmoid.
        let table = logistic_table(0.05, -128).unwrap();
        assert_eq!(table.lookup(-128), 0);
        assert!(table.entries().windows(2).all(|w| w[0] <= w[1]), "not monotonic");
        assert_eq!(table.lookup(127), 127); // x = 12.75
                                            // zp 127: x <= 0, the lower half.
        let table = logistic_table(0.05, 127).unwrap();
        assert_eq!(table.lookup(127), 0);
        assert_eq!(table.lookup(-128), -128); // x = -12.75
    }

    #[test]
    fn logistic_of_tiny_or_zero_scales_is_all_zero() {
        for scale in [0.0f32, -0.0, 1e-30, f32::from_bits(1), 2f32.powi(-40)] {
            let table = logistic_table(scale, 3).unwrap();
            assert_tables_equal(&format!("scale {scale:e}"), &table, &[0; 256]);
        }
    }

    #[test]
    fn logistic_bad_scales_and_zero_points_are_errors() {
        let cases: [(&str, Result<Table, Error>, Error); 7] = [
            ("negative", logistic_table(-0.1, 0), Error::NegativeScale),
            ("NaN", logistic_table(f32::NAN, 0), Error::NonFiniteScale),
            ("+inf", logistic_table(f32::INFINITY, 0), Error::NonFiniteScale),
            ("-inf", logistic_table(f32::NEG_INFINITY, 0), Error::NonFiniteScale),
            ("8.0", logistic_table(8.0, 0), Error::ScaleTooLarge),
            (
                "zp 128",
                logistic_table(0.1, 128),
                Error::InputZeroPointOutOfRange { zero_point: 128 },
            ),
            (
                "zp -129",
                logistic_table(0.1, -129),
                Error::InputZeroPointOutOfRange { zero_point: -129 },
            ),
        ];
        for (label, result, expected) in cases {
            assert_eq!(result, Err(expected), "{label}");
        }
        // Just below 8 is accepted: left shift 30.
        assert!(logistic_table(7.999_999_5, 0).is_ok());
    }

    #[test]
    fn logistic_is_within_one_code_of_the_float_sigmoid() {
        let mut rng = SplitMix64::new(0x5eed_5167);
        let mut differing = 0usize;
        for case in 0..2_000 {
            let scale = 2f64.powf(rng.next_f64() * 12.0 - 10.0) as f32; // about 2^-10 .. 4
            let zp = rng.range_i32(-128, 127);
            let table = logistic_table(scale, zp).unwrap();
            let (_, left_shift) = quantize_multiplier(f64::from(scale) * 2f64.powi(27)).unwrap();
            let radius = logistic_input_radius(left_shift);
            for q in -128..=127 {
                let v = q - zp;
                if v.abs() >= radius {
                    continue; // TFLM saturates by the radius, not by the value
                }
                let x = f64::from(v) * f64::from(scale);
                let float = (256.0 / (1.0 + (-x).exp())).round() as i32 - 128;
                let float = float.clamp(-128, 127);
                let actual = i32::from(table.lookup(q as i8));
                assert!(
                    (actual - float).abs() <= 1,
                    "case {case}: scale {scale}, zp {zp}, input {q} (x = {x}): actual {actual}, float {float}"
                );
                differing += usize::from(actual != float);
            }
        }
        std::println!("logistic: {differing} entries one code away from the float table");
    }

    #[test]
    fn logistic_input_radius_edges() {
        assert_eq!(logistic_input_radius(30), 1);
        assert_eq!(logistic_input_radius(24), 120);
        assert_eq!(logistic_input_radius(1), 15 << 26);
        assert_eq!(logistic_input_radius(0), i32::MAX);
        assert_eq!(logistic_input_radius(-5), i32::MAX);
        assert_eq!(logistic_input_radius(31), 0);
    }
}
