//! Raw float test samples for a model that takes float input: random values over the raw range
//! its int8 input covers, and the edge values of its float quantization (exact ties and their
//! f32 neighbours, signed zeros, subnormals, infinities, the largest finite f32, values far out of
//! range). Shared by the firmware's build script (the built-in self-test samples) and host-tests
//! (the samples streamed through the firmware under QEMU), so both hold the device to the same
//! edges.
//!
//! The quantization is `docs/int8-arithmetic.md`, "Float input and output": raw value `x` of
//! input value `i` becomes `t = ((x - offset[i]) / divisor[i]) / scale`, each step one f32
//! operation, then `q = clamp(round_half_away_from_zero(t) + zero_point, -128, 127)`. An exact
//! tie is an `x` whose `t` is exactly `k + 0.5`.
//!
//! No NaN: it has no code and the core refuses it (`ModelError::NotANumber`); host-tests checks
//! that on its own.

use autoencoder_core::model::InputScaling;
use autoencoder_core::quantize_f32::{scale_value, UNIT_DIVISOR};
use autoencoder_core::testutil::SplitMix64;
use autoencoder_core::Model;

/// Per input value, the `(offset, divisor)` the core scales it with: the model's arrays for
/// `MinMax` and `Standard`, `(0, 1)` for `None` and `(0, 255)` for `Unit` (which the core computes
/// as the same two operations: `(x - 0) / 1` is `x` and `(x - 0) / 255` is `x / 255` for every
/// `x`).
pub fn feature_scaling(model: &Model<'_>) -> Vec<(f32, f32)> {
    let n = model.input_len();
    let f32s = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    match model.input_scaling() {
        InputScaling::None => vec![(0.0, 1.0); n],
        InputScaling::Unit => vec![(0.0, UNIT_DIVISOR); n],
        InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
            f32s(offset).into_iter().zip(f32s(divisor)).collect()
        }
    }
}

/// What the quantizer rounds for raw value `x` of a feature scaled by `(offset, divisor)`:
/// `t = scale_value(x, offset, divisor) / scale`, the core's f32 operations in its order.
pub fn quantizer_input(x: f32, (offset, divisor): (f32, f32), scale: f32) -> f32 {
    scale_value(x, offset, divisor) / scale
}

/// The f32s in order, as integers: `key(a) < key(b)` exactly when `a < b` (-0 before +0).
fn key(x: f32) -> i64 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        -i64::from(bits & 0x7fff_ffff) - 1
    } else {
        i64::from(bits)
    }
}

/// The inverse of [`key`].
fn from_key(key: i64) -> f32 {
    if key < 0 {
        f32::from_bits((-(key + 1)) as u32 | 0x8000_0000)
    } else {
        f32::from_bits(key as u32)
    }
}

/// The finite raw value nearest the crossing where the quantizer's input `t` reaches `target`:
/// the first `x` (in the direction `t` grows: up for a positive divisor, down for a negative
/// one) whose `t` is at least `target`. `t` is monotone in `x` (each f32 operation is), so a
/// binary search over the f32s finds it. `None` when no finite `x` reaches `target`.
pub fn crossing(target: f32, feature: (f32, f32), scale: f32) -> Option<f32> {
    let reaches = |k: i64| quantizer_input(from_key(k), feature, scale) >= target;
    let (lo, hi) = (key(-f32::MAX), key(f32::MAX));
    let rising = feature.1 > 0.0;
    // Invariant: the answer is in [first, last], `reaches` flips once across the range.
    let (mut first, mut last) = (lo, hi);
    if rising {
        if !reaches(hi) {
            return None;
        }
        while first < last {
            let mid = first + (last - first) / 2;
            if reaches(mid) {
                last = mid;
            } else {
                first = mid + 1;
            }
        }
    } else {
        if !reaches(lo) {
            return None;
        }
        while first < last {
            let mid = first + (last - first + 1) / 2;
            if reaches(mid) {
                first = mid;
            } else {
                last = mid - 1;
            }
        }
    }
    Some(from_key(first))
}

/// A raw value whose quantizer input is exactly `target` (an exact tie when `target` is
/// `k + 0.5`), if there is one.
pub fn exact(target: f32, feature: (f32, f32), scale: f32) -> Option<f32> {
    crossing(target, feature, scale).filter(|&x| quantizer_input(x, feature, scale) == target)
}

/// The ties and boundaries probed in every feature, as values of `t`: ties around zero, the
/// ties and integers at both ends of the int8 range (`q` = -128 and 127 after the zero point)
/// and just past them, 2^23 (from where every f32 is an integer) and ±2^31 (where the cast to
/// i32 saturates).
pub fn targets(zero_point: i32) -> Vec<f32> {
    let top = (127 - zero_point) as f32;
    let bottom = (-128 - zero_point) as f32;
    vec![
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        top - 0.5,
        top,
        top + 0.5,
        top + 1.0,
        bottom + 0.5,
        bottom,
        bottom - 0.5,
        bottom - 1.0,
        8_388_608.0,
        -8_388_608.0,
        2_147_483_648.0,
        -2_147_483_648.0,
    ]
}

/// Up to `count` raw values that give the quantizer an exact tie (`t = k + 0.5`), spread over
/// the ties from just below code -128 to just above code 127. A tie exists only where the f32
/// steps of `x` are finer than those of `t` near it: a feature whose offset is large against
/// its divisor may have few or none.
pub fn exact_ties(feature: (f32, f32), scale: f32, zero_point: i32, count: usize) -> Vec<f32> {
    let ties: Vec<f32> = (-129 - zero_point..=127 - zero_point)
        .filter_map(|k| exact(k as f32 + 0.5, feature, scale))
        .collect();
    if ties.len() <= count {
        return ties;
    }
    (0..count)
        .map(|i| ties[i * (ties.len() - 1) / (count - 1).max(1)])
        .collect()
}

/// Exact ties probed per feature ([`exact_ties`]).
pub const TIES_PER_FEATURE: usize = 4;

/// Raw values that are edges whatever the scaling: signed zeros, the smallest and largest
/// subnormals, the smallest normal, infinities, the largest finite f32 and values far out of
/// the int8 range.
pub const FIXED_EDGES: [f32; 18] = [
    0.0,
    -0.0,
    f32::from_bits(1),
    -f32::from_bits(1),
    f32::from_bits(0x007f_ffff),
    -f32::from_bits(0x007f_ffff),
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MAX,
    -f32::MAX,
    1e30,
    -1e30,
    3e9,
    -3e9,
    1e6,
    -1e6,
];

/// The edge values of one feature: [`FIXED_EDGES`], the feature's offset (`x - offset` is +0),
/// [`TIES_PER_FEATURE`] exact ties ([`exact_ties`]) and for each of [`targets`] the raw value
/// where `t` reaches it (exactly, when an f32 gives it), all with their two f32 neighbours.
pub fn feature_edges(feature: (f32, f32), scale: f32, zero_point: i32) -> Vec<f32> {
    let mut edges = FIXED_EDGES.to_vec();
    edges.push(feature.0);
    let crossings = targets(zero_point)
        .into_iter()
        .filter_map(|target| crossing(target, feature, scale));
    for x in exact_ties(feature, scale, zero_point, TIES_PER_FEATURE)
        .into_iter()
        .chain(crossings)
    {
        let k = key(x);
        edges.extend(
            [x, from_key(k - 1), from_key(k + 1)]
                .into_iter()
                .filter(|v| v.is_finite()),
        );
    }
    edges
}

/// Each feature's edge values ([`feature_edges`]).
pub fn edges(model: &Model<'_>) -> Vec<Vec<f32>> {
    let quant = model.input_quant();
    feature_scaling(model)
        .into_iter()
        .map(|feature| feature_edges(feature, quant.scale, quant.zero_point))
        .collect()
}

/// Samples of edge values, one per start in `starts`: value `i` of the sample that starts at `s`
/// is edge `(s + i) mod L` of feature `i`'s `L` edges. The samples that start at 0 to `L - 1`
/// give every feature every one of its edges; two that start at 0 and at N hold every kind of
/// edge (in some feature) when 2 N >= L.
pub fn edge_samples(model: &Model<'_>, starts: impl IntoIterator<Item = usize>) -> Vec<Vec<f32>> {
    let edges = edges(model);
    starts
        .into_iter()
        .map(|s| edges.iter().enumerate().map(|(i, e)| e[(s + i) % e.len()]).collect())
        .collect()
}

/// How many [`edge_samples`] give every feature every one of its edges: the longest list.
pub fn edge_sample_count(model: &Model<'_>) -> usize {
    edges(model).iter().map(Vec::len).max().unwrap_or(0)
}

/// Random samples over the raw range each feature's int8 input covers, and a little beyond it
/// (`t` from 4 steps below code -128 to 4 above code 127), drawn from `seed`.
pub fn random_samples(model: &Model<'_>, count: usize, seed: u64) -> Vec<Vec<f32>> {
    let quant = model.input_quant();
    let (scale, zero_point) = (f64::from(quant.scale), f64::from(quant.zero_point));
    let features = feature_scaling(model);
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            features
                .iter()
                .map(|&(offset, divisor)| {
                    let t = -132.0 - zero_point + 263.0 * rng.next_f64();
                    (t * scale * f64::from(divisor) + f64::from(offset)) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Features scaled up and down, with offsets of both signs, a negative divisor and the
    /// `None` and `Unit` scalings' (0, 1) and (0, 255).
    const FEATURES: [(f32, f32); 6] = [
        (0.0, 1.0),
        (0.0, 255.0),
        (120.5, 6.2),
        (-3.0, 0.05),
        (7.0, -2.5),
        (1e4, 3e-3),
    ];

    #[test]
    fn a_crossing_is_the_first_raw_value_whose_quantizer_input_reaches_the_target() {
        for feature in FEATURES {
            for scale in [0.031_4f32, 1.0 / 255.0, 2.0] {
                for target in targets(17).into_iter().chain(targets(-128)) {
                    let Some(x) = crossing(target, feature, scale) else {
                        continue;
                    };
                    let t = |x| quantizer_input(x, feature, scale);
                    // The step before it, in the direction t grows, is still below the target.
                    let before = if feature.1 > 0.0 { key(x) - 1 } else { key(x) + 1 };
                    assert!(t(x) >= target, "{feature:?} {scale}: t({x:e}) = {} < {target}", t(x));
                    assert!(
                        t(from_key(before)) < target,
                        "{feature:?} {scale}: {target} is reached before {x:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_ties_are_ties_and_keys_order_the_floats() {
        for feature in FEATURES {
            let ties = exact_ties(feature, 0.031_4, 17, TIES_PER_FEATURE);
            for x in ties {
                assert_eq!(
                    quantizer_input(x, feature, 0.031_4).fract().abs(),
                    0.5,
                    "{feature:?}: {x:e}"
                );
            }
        }
        let ordered = [
            -f32::MAX,
            -1.0,
            -f32::from_bits(1),
            -0.0,
            0.0,
            f32::from_bits(1),
            1.0,
            f32::MAX,
        ];
        for pair in ordered.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{pair:?}");
        }
        for x in ordered {
            assert_eq!(from_key(key(x)).to_bits(), x.to_bits(), "{x:e}");
        }
        // Neighbours: -0 and +0, and +0 and the smallest subnormal, are one key apart.
        assert_eq!(key(-0.0) + 1, key(0.0));
        assert_eq!(from_key(key(0.0) + 1), f32::from_bits(1));
    }
}
