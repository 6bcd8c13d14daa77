//! Int8 2-D convolution with a fused LeakyReLU: TFLM's `CONV_2D` accumulator fed straight into
//! TFLM's `LEAKY_RELU` requantization, as
//! [`fully_connected_leaky_s8`](crate::fully_connected_leaky_s8()) does for fully connected
//! layers (see there for why).
//!
//! For each output pixel and channel `o`: the accumulator of
//! [`conv2d_s8`](crate::conv2d_s8()), then
//! `y = clamp(output_zero_point + mbqm(acc, m, shift), -128, 127)` with channel `o`'s positive
//! pair when `acc >= 0` and its negative pair otherwise.

use crate::conv2d_s8::{for_each_accumulator, Conv2dGeometry};
use crate::error::expect_len;
use crate::requantize::{requantize_to_s8, PerChannelQuant};
use crate::{Error, FcParams};

/// Int8 convolution followed by LeakyReLU, for one sample; shapes as
/// [`conv2d_s8`](crate::conv2d_s8()), with `positive` and `negative` holding one multiplier and
/// shift per output channel.
///
/// # Errors
/// As [`conv2d_s8`](crate::conv2d_s8()), with both `positive` and `negative` validated; on
/// error `output` is untouched.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_leaky_s8(
    geometry: &Conv2dGeometry,
    params: &FcParams,
    positive: &PerChannelQuant<'_>,
    negative: &PerChannelQuant<'_>,
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
    positive.validate(geometry.out_channels)?;
    negative.validate(geometry.out_channels)?;
    expect_len("output", geometry.output_len()?, output.len())?;
    for_each_accumulator(
        geometry,
        params.input_zero_point,
        filters,
        bias,
        input,
        output,
        &|acc, o| {
            let quant = if acc >= 0 { positive } else { negative };
            let m = quant.multipliers.get(o).copied().unwrap_or_default();
            let s = quant.shifts.get(o).copied().unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d_s8;
    use crate::requantize::quantize_multiplier;
    use crate::requantize::tests::reference_mbqm;
    use crate::testutil::SplitMix64;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn is_the_plain_convolution_with_the_sign_picking_the_multiplier() {
        let mut rng = SplitMix64::new(0xc0);
        for case in 0..300 {
            let g = Conv2dGeometry {
                height: 2 + rng.below(6) as usize,
                width: 2 + rng.below(6) as usize,
                in_channels: 1 + rng.below(3) as usize,
                out_channels: 1 + rng.below(4) as usize,
                kernel: 1 + rng.below(2) as usize,
            };
            let o = g.out_channels;
            let params = FcParams::new(rng.range_i32(-128, 127), rng.range_i32(-128, 127));
            let (mut mp, mut sp, mut mn, mut sn) = (vec![], vec![], vec![], vec![]);
            for _ in 0..o {
                let scale = 2f64.powi(-(rng.below(10) as i32)) * (0.5 + rng.below(1000) as f64 / 1000.0);
                let (m, s) = quantize_multiplier(scale).unwrap();
                mp.push(m);
                sp.push(s);
                let (m, s) = quantize_multiplier(scale * 0.01).unwrap();
                mn.push(m);
                sn.push(s);
            }
            let filters: Vec<i8> = (0..g.filter_len().unwrap())
                .map(|_| rng.range_i32(-127, 127) as i8)
                .collect();
            let bias: Vec<i32> = (0..o).map(|_| rng.range_i32(-5000, 5000)).collect();
            let input: Vec<i8> = (0..g.input_len().unwrap())
                .map(|_| rng.range_i32(-128, 127) as i8)
                .collect();
            let n = g.output_len().unwrap();
            let mut fused = vec![0i8; n];
            conv2d_leaky_s8(
                &g,
                &params,
                &PerChannelQuant {
                    multipliers: &mp,
                    shifts: &sp,
                },
                &PerChannelQuant {
                    multipliers: &mn,
                    shifts: &sn,
                },
                &filters,
                &bias,
                &input,
                &mut fused,
            )
            .unwrap();
            // The reference: index loops over the formula, the sum in i64, the independent
            // requantization rule, the multiplier picked by the accumulator's sign.
            let ow = g.output_width().unwrap();
            for (idx, &got) in fused.iter().enumerate() {
                let (pix, c) = (idx / o, idx % o);
                let (r, q) = (pix / ow, pix % ow);
                let mut acc = i64::from(bias[c]);
                for p in 0..g.kernel {
                    for s in 0..g.kernel {
                        for ch in 0..g.in_channels {
                            let w = filters[((c * g.kernel + p) * g.kernel + s) * g.in_channels + ch];
                            let x = input[((r + p) * g.width + q + s) * g.in_channels + ch];
                            acc += i64::from(w) * (i64::from(x) - i64::from(params.input_zero_point));
                        }
                    }
                }
                let acc = acc as i32;
                let (m, s) = if acc >= 0 { (mp[c], sp[c]) } else { (mn[c], sn[c]) };
                let want =
                    (i64::from(reference_mbqm(acc, m, s)) + i64::from(params.output_zero_point)).clamp(-128, 127);
                assert_eq!(i64::from(got), want, "case {case}, output {idx}");
            }
            // With equal pairs it is the plain convolution.
            let mut plain = vec![0i8; n];
            let mut same = vec![0i8; n];
            let pos = PerChannelQuant {
                multipliers: &mp,
                shifts: &sp,
            };
            conv2d_s8(&g, &params, &pos, &filters, &bias, &input, &mut plain).unwrap();
            conv2d_leaky_s8(&g, &params, &pos, &pos, &filters, &bias, &input, &mut same).unwrap();
            assert_eq!(plain, same, "case {case}");
        }
    }
}
