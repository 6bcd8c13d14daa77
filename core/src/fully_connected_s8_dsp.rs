//! The fully connected layers' sums with the Cortex-M4's DSP instructions (`cfg(arm_dsp)`: a
//! `thumbv7em` target without the `portable` feature, see build.rs).
//!
//! The same sums as the portable [`row_sums`](crate::fully_connected_s8), bit for bit:
//! `sum_i w[r][i] * (x[i] - zero_point)` in wrapping i32 for every row `r` of the weights. Each
//! product is exact (at most 128 * 255 in magnitude) and wrapping addition is associative, so the
//! order of the additions cannot change a bit of a sum.
//!
//! How the work is laid out:
//! 1. [`pack`]: once per call, the centered inputs `x - zero_point` (in [-255, 255]) as 16-bit
//!    halves, in the order in which `SXTB16` splits a word of four weights: inputs `4k` and
//!    `4k + 2` in word `2k`, inputs `4k + 1` and `4k + 3` in word `2k + 1`. Two `SXTAB16`
//!    per four inputs sign-extend them and add `-zero_point` to both halves at once
//!    ([`pack_row`]: 6 instructions per four inputs). A sentinel word, which no pair of
//!    centered inputs can equal, ends them. The inputs may lie in several rows ([`Rows`], a
//!    convolution's window), each but the last of whole groups of four.
//! 2. [`dot4`]: four rows per pass, four inputs per step: one `LDRD` of two packed words, four
//!    `LDR` of four weights, eight `SXTB16` (each word as is and rotated by 8 bits) and eight
//!    `SMLAD` (two 16 x 16-bit products added to an accumulator): 21 instructions for 16
//!    multiply-accumulates, 23 with the loop's compare and branch. CMSIS-NN's loop does 8 in 15.
//! 3. The last `n_in % 4` inputs of each row are summed directly; the last one to three rows go
//!    through the same four-row loop with rows repeated (their extra sums are dropped).
//! 4. The sums go to the caller [`SUM_CHUNK`] rows at a time, so that its loop over the outputs
//!    (the requantization) runs apart from this one, with registers of its own.
//!
//! More inputs than [`CENTERED_MAX`] (in no shipped model) are summed plainly, row by row.
//!
//! Under `cargo test` on the host the module is built with plain-Rust models of the three
//! instructions ([`pack_row`] with [`sxtab16`], and [`dot4`], without `cfg(arm_dsp)`), so that
//! the packing, the tails
//! and the row blocks are tested on the host too; the firmware tests run the instructions
//! themselves under QEMU.

use crate::fully_connected_s8::{dot, CENTERED_MAX, SUM_CHUNK};
use core::mem::MaybeUninit;

/// The word after the last pair of packed inputs: two halves of -32768, which no centered input
/// `x - zero_point` in [-255, 255] can be. [`dot4`]'s loop stops at it.
pub(crate) const SENTINEL: u32 = 0x8000_8000;

/// The inputs of one layer's row sums: `count` rows of `len` values, each `stride` values after
/// the one before in `values` (a convolution's window in its input: `k` rows of `k * C`
/// values, one input row apart); a fully connected layer's inputs are one row
/// ([`Rows::one`]). The inputs are the rows' values one after the other.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows<'a> {
    /// The first row's values from its start, and (at least) every later row's.
    pub values: &'a [i8],
    /// Values per row.
    pub len: usize,
    /// Distance from one row's start to the next one's.
    pub stride: usize,
    /// Rows.
    pub count: usize,
}

impl<'a> Rows<'a> {
    /// All of `input`, as one row.
    pub(crate) fn one(input: &'a [i8]) -> Rows<'a> {
        Rows {
            values: input,
            len: input.len(),
            stride: input.len(),
            count: 1,
        }
    }

    /// How many inputs the rows hold.
    pub(crate) fn total(&self) -> usize {
        self.len.saturating_mul(self.count)
    }

    /// Row `p`'s values (empty if `values` is too short for it).
    fn row(&self, p: usize) -> &'a [i8] {
        let start = p.saturating_mul(self.stride);
        self.values.get(start..start.saturating_add(self.len)).unwrap_or(&[])
    }

    /// The rows, in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = &'a [i8]> {
        (0..self.count).map(move |p| self.row(p))
    }
}

/// Calls `f` with `sum_i w[r][i] * (x[i] - zero_point)` (wrapping i32) for every row `r` of
/// `weights` (`[rows][n]`, `n = inputs.total()`), in order, [`SUM_CHUNK`] rows at a time
/// (fewer in the last call). No inputs: no call.
///
/// Inputs are packed and summed with `SMLAD` when there are at most [`CENTERED_MAX`] of them
/// and each row but the last holds whole groups of four; otherwise (in no shipped model) each
/// row's sum is the plain [`dot`] of each input row, one sum per call.
///
/// `sums` holds the sums handed to `f` (its previous values are not read): a caller that calls
/// this for every pixel of a convolution clears it once, not once per pixel.
pub(crate) fn row_sum_chunks(
    weights: &[i8],
    inputs: Rows<'_>,
    zero_point: i32,
    sums: &mut [i32; SUM_CHUNK],
    f: &mut dyn FnMut(&[i32]),
) {
    let n_in = inputs.total();
    if n_in == 0 {
        return;
    }
    // Room for the packed inputs, the sentinel, and the word after it that the last `LDRD` also
    // reads; left uninitialised (no 2 KiB of zeros per call): `pack` writes what is read.
    let mut buffer = [MaybeUninit::<u32>::uninit(); CENTERED_MAX / 2 + 2];
    let packed = buffer
        .get_mut(..2 * (n_in / 4) + 2)
        .and_then(|room| pack(inputs, zero_point, room));
    let Some(packed) = packed else {
        for weights in weights.chunks_exact(n_in) {
            let mut sum = 0i32;
            for (w, x) in weights.chunks_exact(inputs.len).zip(inputs.iter()) {
                sum = sum.wrapping_add(dot(w, x, zero_point));
            }
            f(&[sum]);
        }
        return;
    };
    let body = 4 * packed.groups;
    let last = inputs.row(inputs.count.saturating_sub(1));
    // The last `n_in % 4` inputs: the end of the last row, since the others hold whole groups.
    let tail = last.get(last.len().saturating_sub(n_in % 4)..).unwrap_or(&[]);

    for chunk in weights.chunks(SUM_CHUNK * n_in) {
        let mut blocks = chunk.chunks_exact(4 * n_in);
        let full = blocks.len();
        for (block, out) in (&mut blocks).zip(sums.chunks_exact_mut(4)) {
            let second = block.get(2 * n_in..).unwrap_or(&[]);
            out.copy_from_slice(&dot4(&packed, block, second, n_in));
        }
        // One to three rows left: the four-row loop with rows repeated, rows (first,
        // first + stride, second, second + stride) then being (0, 0, 0, 0), (0, 1, 0, 1) or
        // (0, 1, 1, 2).
        let rest = blocks.remainder();
        let (second, stride) = match rest.len() / n_in {
            1 => (rest, 0),
            2 => (rest, n_in),
            _ => (rest.get(n_in..).unwrap_or(&[]), n_in),
        };
        if !rest.is_empty() {
            let [s0, s1, s2, s3] = dot4(&packed, rest, second, stride);
            let three = [s0, s1, if rest.len() / n_in == 3 { s3 } else { s2 }];
            for (o, s) in sums.iter_mut().skip(4 * full).zip(three) {
                *o = s;
            }
        }
        if !tail.is_empty() {
            // Each row's last `n_in % 4` weights, summed directly.
            for (sum, row) in sums.iter_mut().zip(chunk.chunks_exact(n_in)) {
                *sum = sum.wrapping_add(dot(row.get(body..).unwrap_or(&[]), tail, zero_point));
            }
        }
        f(sums.get(..chunk.len() / n_in).unwrap_or(&[]));
    }
}

/// Packed inputs as [`dot4`] reads them: `2 * groups` words of centered pairs, then
/// [`SENTINEL`] and one more word. Only [`pack`] makes one, which is what lets [`dot4`] trust
/// the framing.
pub(crate) struct Packed<'a> {
    words: &'a [u32],
    groups: usize,
}

/// Writes the centered inputs of the `n / 4` whole groups of four of the `n` inputs in
/// `inputs` into `room[..2 * groups]` (see the module's documentation), then [`SENTINEL`] and a
/// zero word; returns them. `None` when `room` is not `2 * groups + 2` words long, or when the
/// rows before the last do not hold whole groups of four.
pub(crate) fn pack<'r>(inputs: Rows<'_>, zero_point: i32, room: &'r mut [MaybeUninit<u32>]) -> Option<Packed<'r>> {
    // -zero_point in both halves (wrapping: a validated zero point is within int8).
    let offset = (zero_point.wrapping_neg() as u32 & 0xffff) * 0x0001_0001;
    let groups = inputs.total() / 4;
    if room.len() != 2 * groups + 2 || (inputs.count > 1 && !inputs.len.is_multiple_of(4)) {
        return None;
    }
    let (pairs, end) = room.split_at_mut(2 * groups);
    // Each row's groups into the next `2 * (len / 4)` words; the rows' words tile `pairs`.
    let mut rest = pairs;
    for row in inputs.iter() {
        let (words, after) = rest.split_at_mut_checked(2 * (row.len() / 4))?;
        if !pack_row(row, offset, words) {
            return None;
        }
        rest = after;
    }
    if !rest.is_empty() {
        return None;
    }
    for (word, value) in end.iter_mut().zip([SENTINEL, 0]) {
        word.write(value);
    }
    if end.len() != 2 {
        return None;
    }
    // SAFETY: `pack_row` wrote every word of each row's part of `pairs` (it returned `true`),
    // those parts tile `pairs` (`rest` is empty after the last), and the loop above wrote both
    // words of `end`; `pairs` and `end` together are `room`. So all `room.len()` words are
    // initialised u32s, borrowed from `room` for as long as it is.
    let words = unsafe { core::slice::from_raw_parts(room.as_ptr().cast::<u32>(), room.len()) };
    Some(Packed { words, groups })
}

/// Writes the whole groups of four of `row`, centered by `offset` (`-zero_point` in both
/// halves), into `words`, two words per group (see the module's documentation). Returns `true`
/// when `words` is `2 * (row.len() / 4)` long, having written every word of it; `false`, having
/// written nothing, otherwise.
///
/// Per group: one `LDR` of four inputs (unaligned, which Armv7-M allows), two `SXTAB16` (the word
/// as is and rotated by 8 bits), one `STRD`, and the loop's count and branch: 6 instructions.
#[cfg(arm_dsp)]
fn pack_row(row: &[i8], offset: u32, words: &mut [MaybeUninit<u32>]) -> bool {
    let groups = row.len() / 4;
    if words.len() != 2 * groups {
        return false;
    }
    if groups == 0 {
        return true;
    }
    // SAFETY: the loop runs `groups` times (at least once; `SUBS` counts down to 0). Each pass
    // reads 4 bytes of `row` (in all `4 * groups <= row.len()` bytes from its start) and writes 8
    // bytes of `words` (in all `8 * groups`, its whole length, from its start, which is
    // word-aligned as `STRD` needs: it is a `[MaybeUninit<u32>]`). Only the named registers and
    // the flags change; no stack is used.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {x}, [{src}], #4",
            "sxtab16 {even}, {offset}, {x}",
            "sxtab16 {odd}, {offset}, {x}, ror #8",
            "strd {even}, {odd}, [{dst}], #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            src = inout(reg) row.as_ptr() => _,
            dst = inout(reg) words.as_mut_ptr() => _,
            n = inout(reg) groups => _,
            offset = in(reg) offset,
            x = out(reg) _,
            even = out(reg) _,
            odd = out(reg) _,
            options(nostack),
        );
    }
    true
}

/// [`pack_row`] in plain Rust, with [`sxtab16`]'s model: what the host's tests run.
#[cfg(not(arm_dsp))]
fn pack_row(row: &[i8], offset: u32, words: &mut [MaybeUninit<u32>]) -> bool {
    if words.len() != 2 * (row.len() / 4) {
        return false;
    }
    for (x, pair) in row.chunks_exact(4).zip(words.chunks_exact_mut(2)) {
        if let ([a, b, c, d], [even, odd]) = (x, pair) {
            let word = u32::from_le_bytes([*a as u8, *b as u8, *c as u8, *d as u8]);
            // Inputs 0 and 2, then 1 and 3 (the word rotated right by 8 bits).
            even.write(sxtab16(offset, word));
            odd.write(sxtab16(offset, word.rotate_right(8)));
        }
    }
    true
}

/// `SXTAB16 d, a, x` written out, the model of the instruction that the host's tests run: bytes
/// 0 and 2 of `x`, sign-extended, added to the low and high halves of `a`, each half wrapping on
/// its own.
#[cfg(not(arm_dsp))]
fn sxtab16(a: u32, x: u32) -> u32 {
    let half = |a: u32, x: u32| u32::from((a as u16).wrapping_add(i16::from(x as u8 as i8) as u16));
    half(a, x) | (half(a >> 16, x >> 16) << 16)
}

/// The sums of four rows over the packed inputs: the rows start at `first`,
/// `first[stride..]`, `second` and `second[stride..]`, each with at least `4 * groups` weights.
///
/// The loop in `SMLAD`s. Should a slice be too short for the groups (the callers make sure it
/// is not), the same sums come from [`dot4_plain`] instead of reading beyond it.
#[cfg(arm_dsp)]
#[inline(always)]
fn dot4(packed: &Packed<'_>, first: &[i8], second: &[i8], stride: usize) -> [i32; 4] {
    let reach = stride.saturating_add(4 * packed.groups);
    if first.len() < reach || second.len() < reach {
        return dot4_plain(packed, first, second, stride);
    }
    let [mut s0, mut s1, mut s2, mut s3] = [0i32; 4];
    // SAFETY: the loop reads two words of `packed` per group, from its start up to the first
    // SENTINEL and the word after it: at most its `2 * groups + 2` words, as [`pack`] put the
    // SENTINEL at `2 * groups` (a SENTINEL earlier would only end the loop sooner). It reads 4 bytes per group from each of the rows at `first`,
    // `first + stride`, `second` and `second + stride`: at most `4 * groups + stride` bytes from
    // the start of either slice, which both hold (checked above). `LDRD` needs a word-aligned
    // address: `packed` is a `[u32]`. `LDR` of the weights may be unaligned, which Armv7-M allows
    // (the reset value of CCR.UNALIGN_TRP, which the firmware keeps). Only the named registers
    // and the flags change; no memory is written and no stack used.
    unsafe {
        core::arch::asm!(
            "ldrd {x02}, {x13}, [{xp}], #8",
            "cmp {x02}, #0x80008000",
            "beq 3f",
            "2:",
            // Row 1 (at first + stride), then row 0, whose load steps `first` on.
            "ldr {w}, [{p0}, {n}]",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s1}, {t}, {x02}, {s1}",
            "smlad {s1}, {w}, {x13}, {s1}",
            "ldr {w}, [{p0}], #4",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s0}, {t}, {x02}, {s0}",
            "smlad {s0}, {w}, {x13}, {s0}",
            // Rows 3 and 2.
            "ldr {w}, [{p2}, {n}]",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s3}, {t}, {x02}, {s3}",
            "smlad {s3}, {w}, {x13}, {s3}",
            "ldr {w}, [{p2}], #4",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s2}, {t}, {x02}, {s2}",
            "smlad {s2}, {w}, {x13}, {s2}",
            "ldrd {x02}, {x13}, [{xp}], #8",
            "cmp {x02}, #0x80008000",
            "bne 2b",
            "3:",
            xp = inout(reg) packed.words.as_ptr() => _,
            p0 = inout(reg) first.as_ptr() => _,
            p2 = inout(reg) second.as_ptr() => _,
            n = in(reg) stride,
            s0 = inout(reg) s0,
            s1 = inout(reg) s1,
            s2 = inout(reg) s2,
            s3 = inout(reg) s3,
            x02 = out(reg) _,
            x13 = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            options(nostack, readonly),
        );
    }
    [s0, s1, s2, s3]
}

/// [`dot4`] without the instructions: what the host's tests run.
#[cfg(not(arm_dsp))]
fn dot4(packed: &Packed<'_>, first: &[i8], second: &[i8], stride: usize) -> [i32; 4] {
    dot4_plain(packed, first, second, stride)
}

/// [`dot4`] in plain Rust: for each row, `SMLAD` of the packed pairs with the weights split as
/// `SXTB16` splits them, up to the [`SENTINEL`].
fn dot4_plain(packed: &Packed<'_>, first: &[i8], second: &[i8], stride: usize) -> [i32; 4] {
    let rows = [
        first,
        first.get(stride..).unwrap_or(&[]),
        second,
        second.get(stride..).unwrap_or(&[]),
    ];
    let half = |word: u32, high: bool| i32::from((if high { word >> 16 } else { word }) as u16 as i16);
    rows.map(|row| {
        let mut sum = 0i32;
        for (pair, w) in packed.words.chunks_exact(2).zip(row.chunks_exact(4)) {
            let ([even, odd], [w0, w1, w2, w3]) = (pair, w) else {
                break;
            };
            if *even == SENTINEL {
                break;
            }
            for (x, w) in [(*even, [w0, w2]), (*odd, [w1, w3])] {
                let products = i32::from(*w[0]) * half(x, false) + i32::from(*w[1]) * half(x, true);
                sum = sum.wrapping_add(products);
            }
        }
        sum
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SplitMix64;
    use std::vec::Vec;

    /// The sums in i64 by index, wrapped to i32 at the end.
    fn naive(weights: &[i8], input: &[i8], zero_point: i32) -> Vec<i32> {
        let n_in = input.len();
        weights
            .chunks_exact(n_in)
            .map(|row| {
                let sum: i64 = (0..n_in)
                    .map(|i| i64::from(row[i]) * (i64::from(input[i]) - i64::from(zero_point)))
                    .sum();
                sum as i32
            })
            .collect()
    }

    #[test]
    fn packing_puts_inputs_in_the_order_sxtb16_splits_weights() {
        let input = [1i8, -2, 3, -128, 127, 0, -1, 5, 9];
        let mut room = [MaybeUninit::uninit(); 6];
        let packed = pack(Rows::one(&input), -128, &mut room).unwrap();
        assert_eq!(packed.groups, 2);
        // x + 128: [129, 126, 131, 0, 255, 128, 127, 133]; the ninth input is a tail.
        let pair = |lo: u32, hi: u32| lo | (hi << 16);
        assert_eq!(
            *packed.words,
            [
                pair(129, 131),
                pair(126, 0),
                pair(255, 127),
                pair(128, 133),
                SENTINEL,
                0
            ]
        );
        let mut room = [MaybeUninit::uninit(); 4];
        // x - 127: [-255, 0, -127, -127] as 16-bit halves.
        assert_eq!(
            *pack(Rows::one(&[-128, 127, 0, 0]), 127, &mut room).unwrap().words,
            [0xff81_ff01, 0xff81_0000, SENTINEL, 0]
        );
        // Room for one group of two: no packing.
        let mut room = [MaybeUninit::uninit(); 4];
        assert!(pack(Rows::one(&input), -128, &mut room).is_none());
    }

    #[test]
    fn row_sums_match_the_naive_sums_on_random_shapes_and_extremes() {
        let mut rng = SplitMix64::new(0xd5b0);
        for case in 0..600 {
            let n_in = match case % 6 {
                0 => 1 + rng.below(4) as usize,
                5 => 1000 + rng.below(40) as usize,
                _ => 1 + rng.below(80) as usize,
            };
            let rows = rng.below(14) as usize;
            let zero_point = match case % 3 {
                0 => -128,
                1 => 127,
                _ => rng.range_i32(-128, 127),
            };
            let extreme = case % 4 == 0;
            let value = |rng: &mut SplitMix64, v: i8| if extreme { v } else { rng.range_i32(-128, 127) as i8 };
            let weights: Vec<i8> = (0..rows * n_in).map(|_| value(&mut rng, -128)).collect();
            let input: Vec<i8> = (0..n_in)
                .map(|_| value(&mut rng, if zero_point > 0 { -128 } else { 127 }))
                .collect();
            let mut sums = Vec::new();
            row_sum_chunks(&weights, Rows::one(&input), zero_point, &mut [7; SUM_CHUNK], &mut |s| {
                sums.extend_from_slice(s)
            });
            assert_eq!(
                sums,
                naive(&weights, &input, zero_point),
                "case {case}: {rows} rows of {n_in}, zero point {zero_point}"
            );
        }
    }

    /// Inputs in strided rows (a convolution's window) give the sums of the same inputs in one
    /// slice: packed when each row holds whole groups of four, summed plainly when not or when
    /// there are more than `CENTERED_MAX`.
    #[test]
    fn inputs_in_rows_sum_as_one_slice() {
        let mut rng = SplitMix64::new(0x9ec3);
        for case in 0..400 {
            let count = 1 + rng.below(8) as usize;
            let len = match case % 4 {
                0 => 1 + rng.below(30) as usize,
                1 => 1040 / count + rng.below(40) as usize,
                _ => 4 * (1 + rng.below(13) as usize),
            };
            let stride = len + rng.below(9) as usize;
            let rows = 1 + rng.below(13) as usize;
            let zero_point = [-128, 127, rng.range_i32(-128, 127)][case % 3];
            let n_in = len * count;
            let weights: Vec<i8> = (0..rows * n_in).map(|_| rng.next_u64() as i8).collect();
            let values: Vec<i8> = (0..stride * (count - 1) + len).map(|_| rng.next_u64() as i8).collect();
            let inputs = Rows {
                values: &values,
                len,
                stride,
                count,
            };
            let flat: Vec<i8> = inputs.iter().flatten().copied().collect();
            assert_eq!(flat.len(), n_in);
            let mut sums = Vec::new();
            row_sum_chunks(&weights, inputs, zero_point, &mut [7; SUM_CHUNK], &mut |s| {
                sums.extend_from_slice(s)
            });
            assert_eq!(
                sums,
                naive(&weights, &flat, zero_point),
                "case {case}: {count} rows of {len}, stride {stride}"
            );
        }
    }

    #[test]
    fn a_short_row_slice_takes_the_plain_sums_without_reading_past_it() {
        let input: Vec<i8> = (0..12).map(|i| i as i8 - 6).collect();
        let mut room = [MaybeUninit::uninit(); 8];
        let packed = pack(Rows::one(&input), 3, &mut room).unwrap();
        let weights: Vec<i8> = (0..24).map(|i| 50 - 4 * i as i8).collect();
        // Two rows of 12 as (first, first + 12, second, second + 12): second + 12 is beyond.
        let want = naive(&weights, &input, 3);
        let [s0, s1, s2, _] = dot4(&packed, &weights, &weights[12..], 12);
        assert_eq!([s0, s1, s2], [want[0], want[1], want[1]]);
        assert_eq!(
            dot4_plain(&packed, &weights, &weights, 12),
            [want[0], want[1], want[0], want[1]]
        );
    }
}
