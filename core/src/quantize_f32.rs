//! Float input and output: raw samples scaled and quantized into the model's int8 input, and
//! int8 outputs dequantized and unscaled back into raw units, exactly as TFLM's `QUANTIZE` and
//! `DEQUANTIZE` reference kernels do it (float to int8, int8 to float).
//!
//! Quantizing raw value `x[i]` (`docs/int8-arithmetic.md`, "Float input and output"), all in f32:
//! 1. the model's [`InputScaling`]: `v = x` (`None`), `v = x / 255` (`Unit`), or
//!    `v = (x - offset[i]) / divisor[i]` (`MinMax`, `Standard`: one subtraction, one division);
//! 2. `t = v / scale`, one f32 division (TFLM's `AffineQuantize`: `val / scale` in float);
//! 3. `q = round_half_away_from_zero(t)` ([`round_half_away_from_zero_f32`], TFLM's
//!    `TfLiteRound`), as i32, saturating for |t| >= 2^31 and ±∞; then `q + zero_point` (also
//!    saturating) clamped to [-128, 127].
//!
//! NaN has no code: [`quantize_f32`] refuses an input with a NaN anywhere
//! ([`Error::NotANumber`]) before writing anything.
//!
//! Dequantizing output code `q`: `y = (q - zero_point) as f32 * scale` (one f32 product; TFLM
//! forms it in f64 and rounds once to f32, which is the same value, since `q - zero_point` has at
//! most 9 bits and the f64 product is exact), then `x = y * divisor[i] + offset[i]` (one f32
//! product, one f32 sum), `x = y * 255` (`Unit`) or `x = y` (`None`).
//!
//! [`quantize_u8`] takes u8 samples: the float path on `p as f32`, except for the MNIST input
//! (`Unit` scaling, scale [`UNIT_SCALE`], zero point -128), where it is the byte's top bit
//! flipped, `p - 128`; a test runs all 256 bytes through both.
//!
//! `host-tests/tests/tflm.rs` runs TFLM's own `QUANTIZE` and `DEQUANTIZE` on ties, their f32
//! neighbours, zeros, subnormals and random values and finds the same codes and the same floats.
//!
//! No `std`, no libm: the rounding works on the bit pattern. Rust never fuses a product and a
//! sum into one rounding, so every step is the single f32 operation written here, on the host
//! and on a Cortex-M (with or without an FPU).

use crate::error::expect_len;
use crate::model::{le_f32, InputScaling, Quant};
use crate::storage::Storage;
use crate::Error;

/// The f32 nearest to 1/255: the MNIST models' input scale, with which a pixel `p` scaled by
/// [`InputScaling::Unit`] quantizes to `p - 128` (zero point -128).
pub const UNIT_SCALE: f32 = 1.0 / 255.0;

/// What [`InputScaling::Unit`] divides by.
pub const UNIT_DIVISOR: f32 = 255.0;

/// Rounds to the nearest integer, ties away from zero (`0.5 → 1`, `-2.5 → -3`), like C's
/// `roundf` and TFLite's `TfLiteRound` on a float. Exact for every input: ±0, ±∞ and NaN come
/// back unchanged, values below 0.5 in magnitude (subnormals too) become a zero of the same sign,
/// and values of magnitude 2^23 or more are integers already.
///
/// Works on the bit pattern, as [`round_half_away_from_zero`](crate::requantize::round_half_away_from_zero)
/// does for f64. (Adding 0.5 and truncating is not exact: it rounds 0.49999997 up to 1.)
///
/// ```
/// use autoencoder_core::quantize_f32::round_half_away_from_zero_f32;
/// assert_eq!(round_half_away_from_zero_f32(2.5), 3.0);
/// assert_eq!(round_half_away_from_zero_f32(-2.5), -3.0);
/// assert_eq!(round_half_away_from_zero_f32(0.49999997), 0.0);
/// ```
pub fn round_half_away_from_zero_f32(x: f32) -> f32 {
    const SIGN: u32 = 1 << 31;
    const FRACTION_BITS: i32 = 23;
    const BIAS: i32 = 127;
    let bits = x.to_bits();
    let sign = bits & SIGN;
    let magnitude = bits & !SIGN;
    // |x| lies in [2^e, 2^(e+1)) for normal numbers; zero and subnormals get e = -127.
    let e = (magnitude >> FRACTION_BITS) as i32 - BIAS;
    let rounded = if e >= FRACTION_BITS {
        // The unit in the last place is at least 1: already an integer. Also ±∞ and NaN.
        magnitude
    } else if e < -1 {
        // |x| < 0.5, including zero and subnormals.
        0
    } else if e == -1 {
        // |x| in [0.5, 1): the 0.5 bit is the implicit leading bit.
        1.0f32.to_bits()
    } else {
        // 0 <= e <= 22: fraction bit (22 - e) is worth 0.5. Adding it rounds the magnitude up
        // exactly when the fractional part is >= 0.5 (a carry out of the fraction field bumps the
        // exponent correctly); clearing the fractional bits then truncates.
        let half = 1u32 << (FRACTION_BITS - 1 - e);
        let fractional_mask = (half << 1) - 1;
        (magnitude + half) & !fractional_mask
    };
    f32::from_bits(sign | rounded)
}

/// The int8 code of `t = v / scale` with `zero_point`: `round_half_away_from_zero(t)` as i32
/// (saturating: |t| >= 2^31 and ±∞ become `i32::MIN` or `i32::MAX`), plus the zero point
/// (saturating), clamped to [-128, 127]. `t` is never NaN here.
#[inline]
fn to_code(t: f32, zero_point: i32) -> i8 {
    let q = round_half_away_from_zero_f32(t) as i32;
    q.saturating_add(zero_point).clamp(-128, 127) as i8
}

/// `(x - offset) / divisor` in f32: how [`InputScaling::MinMax`] and [`InputScaling::Standard`]
/// scale one raw value (one subtraction, then one division; the trainer scales its data with
/// this function).
#[inline]
pub fn scale_value(x: f32, offset: f32, divisor: f32) -> f32 {
    (x - offset) / divisor
}

/// `y * divisor + offset` in f32: the inverse of [`scale_value`] for an output value (one
/// product, then one sum, never fused).
#[inline]
pub fn unscale_value(y: f32, offset: f32, divisor: f32) -> f32 {
    y * divisor + offset
}

/// Scales and quantizes raw float samples into int8 input codes (see the
/// [module documentation](self)): `output[i]` is the code of `input[i]`.
///
/// # Errors
/// Nothing is written when any of these is returned: [`Error::ShapeMismatch`] when `output`, or
/// an array of `scaling`, does not have one value per input; [`Error::OutputZeroPointOutOfRange`]
/// when the zero point is outside int8; [`Error::NotANumber`] for the first NaN in `input`.
///
/// ```
/// use autoencoder_core::model::{InputScaling, Quant};
/// use autoencoder_core::quantize_f32::quantize_f32;
/// let quant = Quant { scale: 0.5, zero_point: 3 };
/// let mut codes = [0i8; 4];
/// // t = x / 0.5: 0.5 (a tie, away from zero), -0.5, 2 and a value far out of range.
/// quantize_f32(&[0.25, -0.25, 1.0, 1e9], &InputScaling::None, quant, &mut codes)?;
/// assert_eq!(codes, [1 + 3, -1 + 3, 2 + 3, 127]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
pub fn quantize_f32(input: &[f32], scaling: &InputScaling<'_>, quant: Quant, output: &mut [i8]) -> Result<(), Error> {
    check(input.len(), output.len(), scaling)?;
    if i8::try_from(quant.zero_point).is_err() {
        return Err(Error::OutputZeroPointOutOfRange {
            zero_point: quant.zero_point,
        });
    }
    if let Some(index) = input.iter().position(|x| x.is_nan()) {
        return Err(Error::NotANumber { index });
    }
    quantize_each(input, |&x| x, scaling, quant, output);
    Ok(())
}

/// Scales and quantizes u8 samples: [`quantize_f32`] of each `p as f32` (a u8 is never NaN).
/// For the MNIST input ([`InputScaling::Unit`], scale [`UNIT_SCALE`], zero point -128) the code
/// is `p - 128`, computed as that; the test `unit_pixels_quantize_to_p_minus_128` shows it is
/// the float path's code for all 256 bytes.
///
/// # Errors
/// As [`quantize_f32`], except [`Error::NotANumber`].
///
/// ```
/// use autoencoder_core::model::{InputScaling, Quant};
/// use autoencoder_core::quantize_f32::{quantize_u8, UNIT_SCALE};
/// let mnist = Quant { scale: UNIT_SCALE, zero_point: -128 };
/// let mut codes = [0i8; 3];
/// quantize_u8(&[0, 128, 255], &InputScaling::Unit, mnist, &mut codes)?;
/// assert_eq!(codes, [-128, 0, 127]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
pub fn quantize_u8(input: &[u8], scaling: &InputScaling<'_>, quant: Quant, output: &mut [i8]) -> Result<(), Error> {
    check(input.len(), output.len(), scaling)?;
    if i8::try_from(quant.zero_point).is_err() {
        return Err(Error::OutputZeroPointOutOfRange {
            zero_point: quant.zero_point,
        });
    }
    if is_unit_pixels(scaling, quant) {
        for (q, &p) in output.iter_mut().zip(input) {
            *q = (p ^ 0x80) as i8;
        }
    } else {
        quantize_each(input, |&p| f32::from(p), scaling, quant, output);
    }
    Ok(())
}

/// Whether u8 samples quantize as `p - 128`: `Unit` scaling, scale exactly [`UNIT_SCALE`],
/// zero point -128 (the MNIST models' input; the scaling borrowed or owned).
pub fn is_unit_pixels<'a, S: Storage<'a>>(scaling: &InputScaling<'a, S>, quant: Quant) -> bool {
    matches!(scaling, InputScaling::Unit) && quant.zero_point == -128 && quant.scale.to_bits() == UNIT_SCALE.to_bits()
}

/// Dequantizes int8 output codes and unscales them into raw units (see the
/// [module documentation](self)): `output[i]` is the raw value of `input[i]`, unscaled with the
/// scaling of input value `i`.
///
/// # Errors
/// Nothing is written when any of these is returned: [`Error::ShapeMismatch`] when `output`, or
/// an array of `scaling`, does not have one value per code; [`Error::InputZeroPointOutOfRange`]
/// when the zero point is outside int8.
///
/// ```
/// use autoencoder_core::model::{InputScaling, Quant};
/// use autoencoder_core::quantize_f32::dequantize_f32;
/// let quant = Quant { scale: 0.5, zero_point: -128 };
/// let mut values = [0f32; 3];
/// dequantize_f32(&[-128, -127, 127], &InputScaling::None, quant, &mut values)?;
/// assert_eq!(values, [0.0, 0.5, 127.5]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
pub fn dequantize_f32(input: &[i8], scaling: &InputScaling<'_>, quant: Quant, output: &mut [f32]) -> Result<(), Error> {
    check(input.len(), output.len(), scaling)?;
    let zero_point = quant.zero_point;
    if i8::try_from(zero_point).is_err() {
        return Err(Error::InputZeroPointOutOfRange { zero_point });
    }
    let real = |q: i8| (i32::from(q) - zero_point) as f32 * quant.scale;
    match *scaling {
        InputScaling::None => {
            for (x, &q) in output.iter_mut().zip(input) {
                *x = real(q);
            }
        }
        InputScaling::Unit => {
            for (x, &q) in output.iter_mut().zip(input) {
                *x = real(q) * UNIT_DIVISOR;
            }
        }
        InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
            let arrays = offset.chunks_exact(4).zip(divisor.chunks_exact(4));
            for ((x, &q), (o, d)) in output.iter_mut().zip(input).zip(arrays) {
                *x = unscale_value(real(q), le_f32(o), le_f32(d));
            }
        }
    }
    Ok(())
}

/// `output.len()` and the scaling arrays against `len` values.
fn check(len: usize, output: usize, scaling: &InputScaling<'_>) -> Result<(), Error> {
    expect_len("output", len, output)?;
    if let Some((offset, divisor)) = scaling.arrays() {
        expect_len("offset", len.saturating_mul(4), offset.len())?;
        expect_len("divisor", len.saturating_mul(4), divisor.len())?;
    }
    Ok(())
}

/// The float path, on checked operands: `to_f32` gives each raw value as f32. `None` and
/// `Unit` go through the same two operations as the per-feature scalings, with offset 0 and
/// divisor 1 or 255: `(x - 0) / 1` is `x` and `(x - 0) / 255` is `x / 255` for every `x`, the
/// zeros' signs included, so this is exactly the sequence the module documentation gives.
fn quantize_each<T>(
    input: &[T],
    to_f32: impl Fn(&T) -> f32,
    scaling: &InputScaling<'_>,
    quant: Quant,
    output: &mut [i8],
) {
    let Quant { scale, zero_point } = quant;
    let (offsets, divisors) = scaling.arrays().map_or((&[][..], &[][..]), |(o, d)| (o, d));
    let mut offsets = offsets.chunks_exact(4).map(le_f32);
    let mut divisors = divisors.chunks_exact(4).map(le_f32);
    let (offset, divisor) = match scaling {
        InputScaling::Unit => (0.0, UNIT_DIVISOR),
        _ => (0.0, 1.0),
    };
    for (q, x) in output.iter_mut().zip(input) {
        let o = offsets.next().unwrap_or(offset);
        let d = divisors.next().unwrap_or(divisor);
        *q = to_code(scale_value(to_f32(x), o, d) / scale, zero_point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Borrowed;
    use crate::testutil::SplitMix64;
    use std::vec::Vec;

    fn q(scale: f32, zero_point: i32) -> Quant {
        Quant { scale, zero_point }
    }

    fn next_up(x: f32) -> f32 {
        if x.is_nan() || x == f32::INFINITY {
            x
        } else if x == 0.0 {
            f32::from_bits(1)
        } else if x > 0.0 {
            f32::from_bits(x.to_bits() + 1)
        } else {
            f32::from_bits(x.to_bits() - 1)
        }
    }

    fn next_down(x: f32) -> f32 {
        -next_up(-x)
    }

    fn bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Values where rounding can go wrong: ties, their neighbours, zeros, subnormals, the ends of
    /// the exact-integer range, the i32 range, infinities.
    fn edge_values() -> Vec<f32> {
        let mut v = Vec::new();
        let mut centres: Vec<f32> = (0..40).map(|k| k as f32 + 0.5).collect();
        centres.extend([
            0.0,
            1.0,
            127.5,
            128.5,
            255.5,
            8_388_607.5, // 2^23 - 0.5, the largest tie
            8_388_608.0, // 2^23
            16_777_216.0,
            2_147_483_520.0, // the largest f32 below 2^31
            2_147_483_648.0, // 2^31
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::MAX,
        ]);
        for c in centres {
            for x in [
                c,
                next_up(c),
                next_down(c),
                next_up(next_up(c)),
                next_down(next_down(c)),
            ] {
                v.extend([x, -x]);
            }
        }
        v.extend([f32::INFINITY, f32::NEG_INFINITY, f32::from_bits(0x007f_ffff), -0.0]);
        v
    }

    #[track_caller]
    fn assert_same_round(x: f32) {
        let got = round_half_away_from_zero_f32(x);
        let want = x.round();
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "round({x:e} = {:#010x}): got {got:e}, f32::round says {want:e}",
            x.to_bits()
        );
        if x.is_finite() {
            // And f64's rounding of the same value, as a second oracle.
            let wide = f64::from(x).round() as f32;
            assert_eq!(got.to_bits(), wide.to_bits(), "round({x:e}): f64::round says {wide:e}");
        }
    }

    #[test]
    fn rounding_by_hand() {
        let r = round_half_away_from_zero_f32;
        assert_eq!(r(0.5), 1.0);
        assert_eq!(r(1.5), 2.0);
        assert_eq!(r(2.5), 3.0);
        assert_eq!(r(-0.5), -1.0);
        assert_eq!(r(-2.5), -3.0);
        // The f32 neighbours of 0.5: 0.49999997 and 0.50000006.
        assert_eq!(r(0.499_999_97), 0.0);
        assert_eq!(r(0.500_000_06), 1.0);
        assert_eq!(r(-0.499_999_97).to_bits(), (-0.0f32).to_bits());
        // Neighbours of 2.5.
        assert_eq!(r(next_down(2.5)), 2.0);
        assert_eq!(r(next_up(2.5)), 3.0);
        // Zeros and subnormals keep their sign.
        assert_eq!(r(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(r(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(r(f32::from_bits(1)).to_bits(), 0.0f32.to_bits());
        assert_eq!(r(-f32::from_bits(0x007f_ffff)).to_bits(), (-0.0f32).to_bits());
        // 2^23 - 0.5 is the largest tie; from 2^23 on every f32 is an integer.
        assert_eq!(r(8_388_607.5), 8_388_608.0);
        assert_eq!(r(8_388_609.0), 8_388_609.0);
        assert_eq!(r(f32::INFINITY), f32::INFINITY);
        assert_eq!(r(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert!(r(f32::NAN).is_nan());
    }

    #[test]
    fn rounding_matches_std_on_edges_and_sweeps() {
        for x in edge_values() {
            assert_same_round(x);
        }
        // Every k + 0.5 up to 2^16 and its two neighbours, both signs.
        for k in 0..65_536u32 {
            let c = k as f32 + 0.5;
            for x in [c, next_up(c), next_down(c)] {
                assert_same_round(x);
                assert_same_round(-x);
            }
        }
        // A stride through all 2^32 bit patterns (NaNs compared as NaN), and random ones.
        let mut bits = 0u32;
        loop {
            let x = f32::from_bits(bits);
            if x.is_nan() {
                assert!(round_half_away_from_zero_f32(x).is_nan());
            } else {
                assert_same_round(x);
            }
            let (next, overflow) = bits.overflowing_add(1021);
            if overflow {
                break;
            }
            bits = next;
        }
        let mut rng = SplitMix64::new(11);
        for _ in 0..1_000_000 {
            let x = f32::from_bits(rng.next_u64() as u32);
            if !x.is_nan() {
                assert_same_round(x);
            }
        }
    }

    /// TFLM's `AffineQuantize` with f64 as the oracle: `round(v / scale)` (the division in f32),
    /// then the zero point, clamped; values outside i32 saturate.
    fn oracle(v: f32, quant: Quant) -> i8 {
        let t = f64::from(v / quant.scale).round();
        (t + f64::from(quant.zero_point)).clamp(-128.0, 127.0) as i8
    }

    #[test]
    fn codes_at_edges_saturate_and_clamp() {
        let cases: &[(f32, Quant, i8)] = &[
            (0.25, q(0.5, 0), 1),                 // tie, up
            (-0.25, q(0.5, 0), -1),               // tie, down
            (next_down(0.25), q(0.5, 0), 0),      // just below the tie
            (next_up(-0.25), q(0.5, 0), 0),       // just above the negative tie
            (0.4, q(1.0, 127), 127),              // the zero point at the top
            (-0.6, q(1.0, -128), -128),           // the zero point at the bottom
            (1e10, q(1.0, -128), 127),            // beyond i32
            (-1e10, q(1.0, 127), -128),           // beyond i32, negative
            (f32::INFINITY, q(1.0, 0), 127),      // saturates
            (f32::NEG_INFINITY, q(1.0, 0), -128), // saturates
            (0.0, q(1.0, 5), 5),
            (-0.0, q(1.0, 5), 5),
            (f32::from_bits(1), q(1.0, -7), -7),     // subnormal
            (1.0, q(f32::from_bits(1), 0), 127),     // t overflows to +inf
            (-1.0, q(f32::from_bits(1), 100), -128), // t overflows to -inf
            (200.0, q(1.0, -100), 100),              // 200 - 100
            (2_147_483_520.0, q(1.0, -128), 127),    // i32::MAX region, then the zero point
            (-2_147_483_648.0, q(1.0, 127), -128),   // i32::MIN, then the zero point
        ];
        for &(x, quant, want) in cases {
            let mut out = [0i8; 1];
            quantize_f32(&[x], &InputScaling::None, quant, &mut out).unwrap();
            assert_eq!(
                out[0], want,
                "x {x:e}, scale {:e}, zero point {}",
                quant.scale, quant.zero_point
            );
            assert_eq!(out[0], oracle(x, quant), "oracle, x {x:e}");
        }
    }

    /// A scaling rule written out: raw value, offset, divisor to the input value.
    type Rule = fn(f32, f32, f32) -> f32;

    #[test]
    fn every_scaling_is_the_written_sequence_of_f32_operations() {
        let mut rng = SplitMix64::new(3);
        for case in 0..2000 {
            let n = 1 + rng.below(9) as usize;
            let raw: Vec<f32> = (0..n).map(|_| (rng.next_f64() * 600.0 - 300.0) as f32).collect();
            let offset: Vec<f32> = (0..n).map(|_| (rng.next_f64() * 40.0 - 20.0) as f32).collect();
            let divisor: Vec<f32> = (0..n).map(|_| (rng.next_f64() * 9.0 + 0.01) as f32).collect();
            let quant = q((rng.next_f64() * 0.5 + 1e-3) as f32, rng.range_i32(-128, 127));
            let (ob, db) = (bytes(&offset), bytes(&divisor));
            let rules: [(InputScaling<'_>, Rule); 4] = [
                (InputScaling::None, |x, _, _| x),
                (InputScaling::Unit, |x, _, _| x / 255.0),
                (
                    InputScaling::MinMax {
                        offset: &ob[..],
                        divisor: &db[..],
                    },
                    |x, o, d| (x - o) / d,
                ),
                (
                    InputScaling::Standard {
                        offset: &ob[..],
                        divisor: &db[..],
                    },
                    |x, o, d| (x - o) / d,
                ),
            ];
            for (scaling, rule) in rules {
                let mut codes = std::vec![0i8; n];
                quantize_f32(&raw, &scaling, quant, &mut codes).unwrap();
                let mut values = std::vec![0f32; n];
                dequantize_f32(&codes, &scaling, quant, &mut values).unwrap();
                for i in 0..n {
                    let v = rule(raw[i], offset[i], divisor[i]);
                    assert_eq!(codes[i], oracle(v, quant), "case {case}, {}, value {i}", scaling.name());
                    let y = (i32::from(codes[i]) - quant.zero_point) as f32 * quant.scale;
                    let x = match scaling {
                        InputScaling::None => y,
                        InputScaling::Unit => y * 255.0,
                        _ => y * divisor[i] + offset[i],
                    };
                    assert_eq!(
                        values[i].to_bits(),
                        x.to_bits(),
                        "case {case}, {}, value {i}",
                        scaling.name()
                    );
                }
            }
        }
    }

    #[test]
    fn dequantize_is_tflms_f64_product_rounded_once() {
        // TFLM: static_cast<float>(double(scale) * (q - zero_point)).
        let mut rng = SplitMix64::new(5);
        let mut scales: Vec<f32> = (0..5000)
            .map(|_| f32::from_bits((rng.next_u64() as u32) & 0x7fff_ffff))
            .filter(|s| s.is_finite() && *s > 0.0)
            .collect();
        scales.extend([f32::from_bits(1), f32::MIN_POSITIVE, f32::MAX, UNIT_SCALE, 1.0 / 256.0]);
        let codes: Vec<i8> = (-128..=127).collect();
        for &scale in &scales {
            for zero_point in [-128, -1, 0, 77, 127] {
                let mut values = [0f32; 256];
                dequantize_f32(&codes, &InputScaling::None, q(scale, zero_point), &mut values).unwrap();
                for (&c, &v) in codes.iter().zip(&values) {
                    let tflm = (f64::from(scale) * f64::from(i32::from(c) - zero_point)) as f32;
                    assert_eq!(
                        v.to_bits(),
                        tflm.to_bits(),
                        "scale {scale:e}, zero point {zero_point}, code {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn unit_pixels_quantize_to_p_minus_128() {
        // The float path on every byte gives p - 128, so quantize_u8's shortcut is the same.
        let mnist = q(1.0 / 255.0, -128);
        assert_eq!(mnist.scale.to_bits(), UNIT_SCALE.to_bits());
        assert!(is_unit_pixels(&InputScaling::<Borrowed>::Unit, mnist));
        let pixels: Vec<u8> = (0..=255).collect();
        let floats: Vec<f32> = pixels.iter().map(|&p| p as f32).collect();
        let mut by_float = [0i8; 256];
        quantize_f32(&floats, &InputScaling::Unit, mnist, &mut by_float).unwrap();
        let mut by_u8 = [0i8; 256];
        quantize_u8(&pixels, &InputScaling::Unit, mnist, &mut by_u8).unwrap();
        for p in 0..=255u8 {
            let want = (i32::from(p) - 128) as i8;
            assert_eq!(by_float[usize::from(p)], want, "pixel {p}: the float path");
            assert_eq!(by_u8[usize::from(p)], want, "pixel {p}: quantize_u8");
        }
    }

    #[test]
    fn u8_samples_take_the_float_path_otherwise() {
        let pixels: Vec<u8> = (0..=255).collect();
        let floats: Vec<f32> = pixels.iter().map(|&p| p as f32).collect();
        let offset = bytes(&std::vec![3.5f32; 256]);
        let divisor = bytes(&std::vec![-7.25f32; 256]);
        let scalings = [
            InputScaling::None,
            InputScaling::Unit,
            InputScaling::MinMax {
                offset: &offset[..],
                divisor: &divisor[..],
            },
        ];
        for scaling in &scalings {
            for quant in [q(1.0 / 255.0, -127), q(0.9 / 255.0, -128), q(0.37, 4), q(1.0, -128)] {
                let (mut a, mut b) = ([0i8; 256], [0i8; 256]);
                quantize_u8(&pixels, scaling, quant, &mut a).unwrap();
                quantize_f32(&floats, scaling, quant, &mut b).unwrap();
                assert_eq!(
                    a,
                    b,
                    "{} with scale {:e}, zero point {}",
                    scaling.name(),
                    quant.scale,
                    quant.zero_point
                );
            }
        }
    }

    #[test]
    fn nan_is_an_error_and_nothing_is_written() {
        let mut out = [9i8; 3];
        assert_eq!(
            quantize_f32(&[1.0, f32::NAN, 2.0], &InputScaling::Unit, q(1.0, 0), &mut out),
            Err(Error::NotANumber { index: 1 })
        );
        assert_eq!(out, [9; 3]);
        // A NaN with its sign bit set, and one in a later position.
        assert_eq!(
            quantize_f32(&[1.0, 2.0, -f32::NAN], &InputScaling::None, q(1.0, 0), &mut out),
            Err(Error::NotANumber { index: 2 })
        );
        assert_eq!(out, [9; 3]);
    }

    #[test]
    fn lengths_and_zero_points_are_checked_first() {
        let one = bytes(&[1.0]);
        let two = bytes(&[1.0, 1.0]);
        let mut out = [7i8; 2];
        assert_eq!(
            quantize_f32(&[1.0], &InputScaling::None, q(1.0, 0), &mut out),
            Err(Error::ShapeMismatch {
                operand: "output",
                expected: 1,
                actual: 2
            })
        );
        let short = InputScaling::Standard {
            offset: &two[..],
            divisor: &one[..],
        };
        assert_eq!(
            quantize_f32(&[1.0, 2.0], &short, q(1.0, 0), &mut out),
            Err(Error::ShapeMismatch {
                operand: "divisor",
                expected: 8,
                actual: 4
            })
        );
        assert_eq!(
            quantize_u8(&[1, 2], &InputScaling::Unit, q(1.0, 128), &mut out),
            Err(Error::OutputZeroPointOutOfRange { zero_point: 128 })
        );
        assert_eq!(out, [7; 2]);
        let mut values = [5f32; 2];
        assert_eq!(
            dequantize_f32(&[1, 2], &InputScaling::None, q(1.0, -129), &mut values),
            Err(Error::InputZeroPointOutOfRange { zero_point: -129 })
        );
        assert_eq!(
            dequantize_f32(&[1], &InputScaling::None, q(1.0, 0), &mut values),
            Err(Error::ShapeMismatch {
                operand: "output",
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(values, [5.0; 2]);
    }
}
