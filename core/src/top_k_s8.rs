//! Hard top-k sparsity on int8 codes (not a TFLite op; the project's own rule).
//!
//! Per sample, the `k` largest codes are kept and every other code is set to the tensor's zero
//! point, which is real 0. A tie at the threshold goes to the lower index, so the result is a
//! pure function of the codes, the same on every target.
//!
//! The kernel needs no sorting and no heap: one pass builds a 256-bin histogram of the codes, a
//! walk down the histogram finds the threshold code `t` (with fewer than `k` codes above it and
//! at least `k` at or above it), and a last pass keeps every code above `t` and the first
//! `k - count(> t)` codes equal to `t`. That is `O(n + 256)` time and 1 KiB of stack.

use crate::Error;

/// Keeps the `k` largest codes of `codes` (ties to the lower index) and sets all others to
/// `zero_point`, in place.
///
/// `k >= codes.len()` keeps everything; `k == 0` sets everything to `zero_point`.
///
/// # Errors
/// [`Error::OutputZeroPointOutOfRange`] when `zero_point` is outside [-128, 127]; `codes` is then
/// untouched.
///
/// ```
/// use autoencoder_core::top_k_s8::top_k_s8;
/// let mut codes = [5i8, -3, 9, 5, 7, 5];
/// top_k_s8(3, -128, &mut codes)?;
/// // 9 and 7 are kept; of the three 5s only the first one fits.
/// assert_eq!(codes, [5, -128, 9, -128, 7, -128]);
/// # Ok::<(), autoencoder_core::Error>(())
/// ```
pub fn top_k_s8(k: usize, zero_point: i32, codes: &mut [i8]) -> Result<(), Error> {
    let Ok(zero) = i8::try_from(zero_point) else {
        return Err(Error::OutputZeroPointOutOfRange { zero_point });
    };
    if k >= codes.len() {
        return Ok(());
    }
    // counts[i] = number of codes equal to i - 128.
    let mut counts = [0usize; 256];
    for &q in codes.iter() {
        if let Some(count) = counts.get_mut(bin(q)) {
            *count += 1;
        }
    }
    // Walk down from 127 until at least k codes are at or above the current value.
    let mut above = 0usize; // codes strictly above `threshold`
    let mut threshold = i8::MIN;
    for q in (i8::MIN..=i8::MAX).rev() {
        let here = counts.get(bin(q)).copied().unwrap_or(0);
        if above + here >= k {
            threshold = q;
            break;
        }
        above += here;
    }
    // k < len, so the walk always stops; at i8::MIN every code is counted.
    let mut ties_left = k - above;
    for q in codes.iter_mut() {
        if *q > threshold {
            continue;
        }
        if *q == threshold && ties_left > 0 {
            ties_left -= 1;
            continue;
        }
        *q = zero;
    }
    Ok(())
}

/// Histogram bin of a code: -128 → 0, 127 → 255.
#[inline]
fn bin(q: i8) -> usize {
    usize::from((q as u8) ^ 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SplitMix64;
    use std::vec::Vec;

    /// The plainest rule: sort indices by (value descending, index ascending), keep the first k.
    fn naive_top_k(k: usize, zero: i8, codes: &[i8]) -> Vec<i8> {
        let mut order: Vec<usize> = (0..codes.len()).collect();
        order.sort_by(|&a, &b| codes[b].cmp(&codes[a]).then(a.cmp(&b)));
        let mut out = std::vec![zero; codes.len()];
        for &i in order.iter().take(k) {
            out[i] = codes[i];
        }
        out
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let mut codes = [1i8, 3, 3, 3, 2];
        top_k_s8(2, 0, &mut codes).unwrap();
        assert_eq!(codes, [0, 3, 3, 0, 0]);
    }

    #[test]
    fn keeps_all_or_none_at_the_edges() {
        let mut codes = [4i8, -2, 7];
        top_k_s8(3, 9, &mut codes).unwrap();
        assert_eq!(codes, [4, -2, 7]);
        top_k_s8(0, 9, &mut codes).unwrap();
        assert_eq!(codes, [9, 9, 9]);
        let mut empty: [i8; 0] = [];
        top_k_s8(5, 0, &mut empty).unwrap();
    }

    #[test]
    fn extreme_codes_and_zero_points() {
        let mut codes = [-128i8, 127, -128, 127, -128];
        top_k_s8(3, -128, &mut codes).unwrap();
        assert_eq!(codes, [-128, 127, -128, 127, -128]);
        let mut codes = [-128i8, -128, -128];
        top_k_s8(1, 127, &mut codes).unwrap();
        assert_eq!(codes, [-128, 127, 127]);
    }

    #[test]
    fn a_bad_zero_point_leaves_the_codes_untouched() {
        let mut codes = [1i8, 2, 3];
        assert_eq!(
            top_k_s8(1, 128, &mut codes),
            Err(Error::OutputZeroPointOutOfRange { zero_point: 128 })
        );
        assert_eq!(codes, [1, 2, 3]);
    }

    #[test]
    fn matches_the_naive_rule_on_random_codes() {
        let mut rng = SplitMix64::new(0x70b6);
        for case in 0..2000 {
            let len = (rng.next_u64() % 200) as usize;
            // Narrow value ranges make many ties.
            let spread = [3u64, 16, 256][case % 3];
            let codes: Vec<i8> = (0..len)
                .map(|_| ((rng.next_u64() % spread) as i64 - (spread as i64) / 2) as i8)
                .collect();
            let k = (rng.next_u64() % (len as u64 + 2)) as usize;
            let zero = (rng.next_u64() % 256) as i64 as i8;
            let mut got = codes.clone();
            top_k_s8(k, i32::from(zero), &mut got).unwrap();
            assert_eq!(got, naive_top_k(k, zero, &codes), "case {case}: k {k} codes {codes:?}");
        }
    }
}
