//! The crate's single error type.
//!
//! One flat enum for every kernel: on a microcontroller an error is usually logged or turned into
//! a status code, so a small `Copy` value that names exactly what went wrong is more useful than a
//! tree of per-kernel error types. Kernels check everything before they write a single output, so
//! an `Err` means the output buffer is untouched.

/// What went wrong in a kernel call or in computing quantization parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A slice's length does not agree with the shape implied by the other operands (for example
    /// the weights of a fully connected layer are not `output.len() * input.len()` long).
    #[error("shape mismatch: `{operand}` has length {actual}, expected {expected}")]
    ShapeMismatch {
        /// Which operand has the wrong length (`"weights"`, `"bias"`, `"multipliers"`, ...).
        operand: &'static str,
        /// The length the other operands imply (`usize::MAX` if that product overflows).
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },
    /// A layer's geometry is impossible: a dimension that must be at least 1 is 0, a kernel or
    /// pooling window is larger than the input, or a tensor size overflows `usize`. Checked before
    /// any slice length, since the expected lengths come from the geometry.
    #[error("invalid geometry: {reason}")]
    InvalidGeometry {
        /// What is wrong, in a few words (`"kernel is larger than the input"`, ...).
        reason: &'static str,
    },
    /// An input zero point is outside the int8 range [-128, 127].
    #[error("input zero point {zero_point} is outside [-128, 127]")]
    InputZeroPointOutOfRange {
        /// The zero point that was passed.
        zero_point: i32,
    },
    /// An output zero point is outside the int8 range [-128, 127].
    #[error("output zero point {zero_point} is outside [-128, 127]")]
    OutputZeroPointOutOfRange {
        /// The zero point that was passed.
        zero_point: i32,
    },
    /// The activation clamp is not a non-empty sub-range of [-128, 127]: `min > max`, or one
    /// bound lies outside int8.
    #[error("activation range [{min}, {max}] is not a non-empty sub-range of [-128, 127]")]
    InvalidActivationRange {
        /// The lower clamp bound that was passed.
        min: i32,
        /// The upper clamp bound that was passed.
        max: i32,
    },
    /// A per-channel requantization shift is outside [-31, 30], i.e.
    /// [`MIN_SHIFT`](crate::requantize::MIN_SHIFT)..=[`MAX_SHIFT`](crate::requantize::MAX_SHIFT)
    /// (TFLM's valid range; `quantize_multiplier` never produces anything else).
    #[error("channel {channel}: requantization shift {shift} is outside [-31, 30]")]
    ShiftOutOfRange {
        /// The output channel whose shift is wrong.
        channel: usize,
        /// The shift that was passed.
        shift: i32,
    },
    /// A per-channel requantization multiplier is negative (effective scales are positive, so
    /// `quantize_multiplier` only produces values in [0, `i32::MAX`]).
    #[error("channel {channel}: requantization multiplier {multiplier} is negative")]
    NegativeMultiplier {
        /// The output channel whose multiplier is wrong.
        channel: usize,
        /// The multiplier that was passed.
        multiplier: i32,
    },
    /// `quantize_multiplier` was given a negative effective scale (scales are positive, so this
    /// means a sign error upstream).
    #[error("effective scale is negative")]
    NegativeScale,
    /// `quantize_multiplier` was given a NaN or infinite effective scale (usually a zero or
    /// non-finite tensor scale upstream).
    #[error("effective scale is NaN or infinite")]
    NonFiniteScale,
    /// `quantize_multiplier` was given an effective scale of about 2^30 or more: its shift would
    /// exceed [`MAX_SHIFT`](crate::requantize::MAX_SHIFT), and multiplying any non-zero
    /// accumulator by it overflows i32.
    #[error("effective scale is 2^30 or more, too large to requantize with")]
    ScaleTooLarge,
    /// A float input value is NaN, which has no int8 code.
    #[error("input value {index} is NaN")]
    NotANumber {
        /// Its position in the input.
        index: usize,
    },
}

/// `Ok` when a slice has the length its shape requires, else [`Error::ShapeMismatch`] naming it.
pub(crate) fn expect_len(operand: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            operand,
            expected,
            actual,
        })
    }
}
