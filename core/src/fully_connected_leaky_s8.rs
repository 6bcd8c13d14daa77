//! Int8 fully connected layer with a fused LeakyReLU: TFLM's `FULLY_CONNECTED` accumulator fed
//! straight into TFLM's `LEAKY_RELU` requantization, without the int8 tensor between them.
//!
//! For each output channel `c`:
//! `acc = bias[c] + sum_i w[c][i] * (x[i] - input_zero_point)` in i32 (exactly as
//! [`fully_connected_s8`](crate::fully_connected_s8())), then, as TFLM's LeakyReLU does with its
//! two multipliers, `y[c] = clamp(output_zero_point + mbqm(acc, m, shift), -128, 127)` with
//! `(m, shift)` the channel's *positive* pair when `acc >= 0` and its *negative* pair (the
//! effective scale times the slope) otherwise.
//!
//! Why it exists: a LeakyReLU input can span a range whose negative part is tens of times wider
//! than its positive part (an L1 penalty on the codes does this). One int8 scale cannot resolve
//! both; the i32 accumulator can. Every step is still TFLM's integer arithmetic
//! ([`multiply_by_quantized_multiplier`](crate::multiply_by_quantized_multiplier)), only the
//! intermediate rounding to int8 is gone. The exporter uses it only where it measurably helps.

use crate::error::expect_len;
use crate::fully_connected_s8::row_sums;
use crate::requantize::{requantize_to_s8, PerChannelQuant};
use crate::{Error, FcParams};

/// Int8 fully connected layer followed by LeakyReLU, for one sample.
///
/// Shapes as [`fully_connected_s8`](crate::fully_connected_s8()): `input [n_in]`,
/// `output [n_out]`, `weights [n_out][n_in]`, `bias [n_out]`; `positive` and `negative` hold one
/// multiplier and shift per output channel.
///
/// ```
/// use autoencoder_core::{fully_connected_leaky_s8, FcParams, PerChannelQuant};
/// // One output, weight 1, no bias: the identity for x >= 0 and x / 4 below.
/// let positive = PerChannelQuant { multipliers: &[1 << 30], shifts: &[1] }; // 1.0
/// let negative = PerChannelQuant { multipliers: &[1 << 30], shifts: &[-1] }; // 0.25
/// let mut y = [0i8; 1];
/// fully_connected_leaky_s8(&FcParams::new(0, 0), &positive, &negative, &[1], &[0], &[-40], &mut y)?;
/// assert_eq!(y, [-10]);
/// fully_connected_leaky_s8(&FcParams::new(0, 0), &positive, &negative, &[1], &[0], &[40], &mut y)?;
/// assert_eq!(y, [40]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
///
/// # Errors
/// As [`fully_connected_s8`](crate::fully_connected_s8()), with both `positive` and `negative`
/// validated; on error `output` is untouched.
pub fn fully_connected_leaky_s8(
    params: &FcParams,
    positive: &PerChannelQuant<'_>,
    negative: &PerChannelQuant<'_>,
    weights: &[i8],
    bias: &[i32],
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let n_in = input.len();
    let n_out = output.len();
    params.validate()?;
    expect_len("weights", n_out.saturating_mul(n_in), weights.len())?;
    expect_len("bias", n_out, bias.len())?;
    positive.validate(n_out)?;
    negative.validate(n_out)?;

    let quants = positive
        .multipliers
        .iter()
        .zip(positive.shifts)
        .zip(negative.multipliers.iter().zip(negative.shifts));
    let per_channel = bias.iter().zip(quants);
    let requantize = |acc: i32, ((&mp, &sp), (&mn, &sn)): ((&i32, &i32), (&i32, &i32))| {
        let (m, s) = if acc >= 0 { (mp, sp) } else { (mn, sn) };
        requantize_to_s8(
            acc,
            m,
            s,
            params.output_zero_point,
            params.activation_min,
            params.activation_max,
        )
    };
    if n_in == 0 {
        for (y, (&b, quant)) in output.iter_mut().zip(per_channel) {
            *y = requantize(b, quant);
        }
        return Ok(());
    }
    let mut channels = output.iter_mut().zip(per_channel);
    row_sums(weights, input, params.input_zero_point, &mut |sum| {
        if let Some((y, (&b, quant))) = channels.next() {
            *y = requantize(b.wrapping_add(sum), quant);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requantize::quantize_multiplier;
    use crate::requantize::tests::reference_mbqm;
    use crate::table_s8::leaky_relu_table;
    use crate::testutil::SplitMix64;
    use crate::{fully_connected_s8, table_s8};
    use std::vec;
    use std::vec::Vec;

    struct Case {
        params: FcParams,
        mp: Vec<i32>,
        sp: Vec<i32>,
        mn: Vec<i32>,
        sn: Vec<i32>,
        weights: Vec<i8>,
        bias: Vec<i32>,
        input: Vec<i8>,
        n_out: usize,
    }

    fn random_case(rng: &mut SplitMix64) -> Case {
        let n_in = rng.below(40) as usize;
        let n_out = rng.below(11) as usize;
        let scale = |rng: &mut SplitMix64| 2f64.powi(-(rng.below(14) as i32)) * (0.5 + rng.below(1000) as f64 / 1000.0);
        let (mut mp, mut sp, mut mn, mut sn) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n_out {
            let s = scale(rng);
            let (m, sh) = quantize_multiplier(s).unwrap();
            mp.push(m);
            sp.push(sh);
            let (m, sh) = quantize_multiplier(s * 0.01).unwrap();
            mn.push(m);
            sn.push(sh);
        }
        Case {
            params: FcParams::new(rng.range_i32(-128, 127), rng.range_i32(-128, 127)),
            mp,
            sp,
            mn,
            sn,
            weights: (0..n_in * n_out).map(|_| rng.range_i32(-127, 127) as i8).collect(),
            bias: (0..n_out).map(|_| rng.range_i32(-20000, 20000)).collect(),
            input: (0..n_in).map(|_| rng.range_i32(-128, 127) as i8).collect(),
            n_out,
        }
    }

    fn run(c: &Case) -> Vec<i8> {
        let mut y = vec![0i8; c.n_out];
        fully_connected_leaky_s8(
            &c.params,
            &PerChannelQuant {
                multipliers: &c.mp,
                shifts: &c.sp,
            },
            &PerChannelQuant {
                multipliers: &c.mn,
                shifts: &c.sn,
            },
            &c.weights,
            &c.bias,
            &c.input,
            &mut y,
        )
        .unwrap();
        y
    }

    /// Index loops, the sum in i64, the independent requantization.
    fn naive(c: &Case) -> Vec<i8> {
        let n_in = c.input.len();
        (0..c.n_out)
            .map(|o| {
                let mut acc = i64::from(c.bias[o]);
                for i in 0..n_in {
                    acc += i64::from(c.weights[o * n_in + i])
                        * (i64::from(c.input[i]) - i64::from(c.params.input_zero_point));
                }
                let acc = acc as i32;
                let (m, s) = if acc >= 0 {
                    (c.mp[o], c.sp[o])
                } else {
                    (c.mn[o], c.sn[o])
                };
                (i64::from(reference_mbqm(acc, m, s)) + i64::from(c.params.output_zero_point)).clamp(-128, 127) as i8
            })
            .collect()
    }

    #[test]
    fn matches_the_naive_reference_on_random_cases() {
        let mut rng = SplitMix64::new(0x1eaf);
        for n in 0..3000 {
            let c = random_case(&mut rng);
            assert_eq!(run(&c), naive(&c), "case {n}");
        }
    }

    #[test]
    fn equal_multipliers_make_it_the_plain_layer() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..500 {
            let mut c = random_case(&mut rng);
            c.mn = c.mp.clone();
            c.sn = c.sp.clone();
            let mut plain = vec![0i8; c.n_out];
            fully_connected_s8(
                &c.params,
                &PerChannelQuant {
                    multipliers: &c.mp,
                    shifts: &c.sp,
                },
                &c.weights,
                &c.bias,
                &c.input,
                &mut plain,
            )
            .unwrap();
            assert_eq!(run(&c), plain);
        }
    }

    #[test]
    fn it_is_tflms_leaky_relu_applied_to_the_accumulator() {
        // With unit weights on one input, acc = bias + x - zp: the fused layer must equal the
        // LeakyReLU table (TFLM's rule) applied to the int8 code `acc + zp_in'` of a tensor with
        // the layer's effective scale.
        let (s_in, s_out) = (0.05f32, 0.03f32);
        let table = leaky_relu_table(0.01, s_in, 0, s_out, -7).unwrap();
        // The table forms its two scales in f32, as TFLM does.
        let (mp, sp) = quantize_multiplier(f64::from(s_in / s_out)).unwrap();
        let (mn, sn) = quantize_multiplier(f64::from(s_in * 0.01 / s_out)).unwrap();
        for x in -128..=127i32 {
            let mut y = [0i8];
            fully_connected_leaky_s8(
                &FcParams::new(0, -7),
                &PerChannelQuant {
                    multipliers: &[mp],
                    shifts: &[sp],
                },
                &PerChannelQuant {
                    multipliers: &[mn],
                    shifts: &[sn],
                },
                &[1],
                &[0],
                &[x as i8],
                &mut y,
            )
            .unwrap();
            let mut want = [0i8];
            table_s8::apply(&table, &[x as i8], &mut want).unwrap();
            assert_eq!(y, want, "x = {x}");
        }
    }

    #[test]
    fn bad_negative_parameters_leave_the_output_untouched() {
        let mut y = [9i8; 1];
        let ok = PerChannelQuant {
            multipliers: &[1 << 30],
            shifts: &[0],
        };
        let bad = PerChannelQuant {
            multipliers: &[1 << 30],
            shifts: &[-32],
        };
        assert_eq!(
            fully_connected_leaky_s8(&FcParams::new(0, 0), &ok, &bad, &[1], &[0], &[1], &mut y),
            Err(Error::ShiftOutOfRange { channel: 0, shift: -32 })
        );
        assert_eq!(y, [9]);
    }
}
