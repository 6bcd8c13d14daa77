//! Test support, shared by this crate's tests, its integration tests and host-tests: one
//! seeded generator for random test cases. Not part of the API (hidden from the docs); `no_std`,
//! heap-free and panic-free like the rest of the crate.

/// SplitMix64: a tiny, well-mixed, deterministic PRNG, so random tests are reproducible without
/// a dependency. Not for anything but tests.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator with state `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n) for n >= 1 (the modulo bias is irrelevant for tests); 0 for n = 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// Uniform in [lo, hi] (inclusive; `lo <= hi`).
    pub fn range_i32(&mut self, lo: i32, hi: i32) -> i32 {
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        (i64::from(lo) + self.below(span) as i64) as i32
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Element-wise comparison of kernel outputs that names the first differing position.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_outputs_equal(label: &str, actual: &[i8], expected: &[i8]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{label}: output length {} vs expected {}",
        actual.len(),
        expected.len()
    );
    for (position, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(
            a, e,
            "{label}: output[{position}]: actual {a}, expected {e} (all: {actual:?} vs {expected:?})"
        );
    }
}
