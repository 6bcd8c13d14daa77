//! The crate's single error type.
//!
//! One flat enum for every kernel: on a microcontroller an error is usually logged or turned into
//! a status code, so a small `Copy` value that names exactly what went wrong is more useful than a
//! tree of per-kernel error types. Kernels check everything before they write a single output, so
//! an `Err` means the output buffer is untouched.

use core::fmt;

/// What went wrong in a kernel call or in computing quantization parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A slice's length does not agree with the shape implied by the other operands (for example
    /// the weights of a fully connected layer are not `output.len() * input.len()` long).
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
    InvalidGeometry {
        /// What is wrong, in a few words (`"kernel is larger than the input"`, ...).
        reason: &'static str,
    },
    /// An input zero point is outside the int8 range [-128, 127].
    InputZeroPointOutOfRange {
        /// The zero point that was passed.
        zero_point: i32,
    },
    /// An output zero point is outside the int8 range [-128, 127].
    OutputZeroPointOutOfRange {
        /// The zero point that was passed.
        zero_point: i32,
    },
    /// The activation clamp is not a non-empty sub-range of [-128, 127]: `min > max`, or one
    /// bound lies outside int8.
    InvalidActivationRange {
        /// The lower clamp bound that was passed.
        min: i32,
        /// The upper clamp bound that was passed.
        max: i32,
    },
    /// A per-channel requantization shift is outside [-31, 30], i.e.
    /// [`MIN_SHIFT`](crate::requantize::MIN_SHIFT)..=[`MAX_SHIFT`](crate::requantize::MAX_SHIFT)
    /// (TFLM's valid range; `quantize_multiplier` never produces anything else).
    ShiftOutOfRange {
        /// The output channel whose shift is wrong.
        channel: usize,
        /// The shift that was passed.
        shift: i32,
    },
    /// A per-channel requantization multiplier is negative (effective scales are positive, so
    /// `quantize_multiplier` only produces values in [0, `i32::MAX`]).
    NegativeMultiplier {
        /// The output channel whose multiplier is wrong.
        channel: usize,
        /// The multiplier that was passed.
        multiplier: i32,
    },
    /// `quantize_multiplier` was given a negative effective scale (scales are positive, so this
    /// means a sign error upstream).
    NegativeScale,
    /// `quantize_multiplier` was given a NaN or infinite effective scale (usually a zero or
    /// non-finite tensor scale upstream).
    NonFiniteScale,
    /// `quantize_multiplier` was given an effective scale of about 2^30 or more: its shift would
    /// exceed [`MAX_SHIFT`](crate::requantize::MAX_SHIFT), and multiplying any non-zero
    /// accumulator by it overflows i32.
    ScaleTooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ShapeMismatch {
                operand,
                expected,
                actual,
            } => write!(
                f,
                "shape mismatch: `{operand}` has length {actual}, expected {expected}"
            ),
            Error::InvalidGeometry { reason } => write!(f, "invalid geometry: {reason}"),
            Error::InputZeroPointOutOfRange { zero_point } => {
                write!(f, "input zero point {zero_point} is outside [-128, 127]")
            }
            Error::OutputZeroPointOutOfRange { zero_point } => {
                write!(f, "output zero point {zero_point} is outside [-128, 127]")
            }
            Error::InvalidActivationRange { min, max } => write!(
                f,
                "activation range [{min}, {max}] is not a non-empty sub-range of [-128, 127]"
            ),
            Error::ShiftOutOfRange { channel, shift } => write!(
                f,
                "channel {channel}: requantization shift {shift} is outside [-31, 30]"
            ),
            Error::NegativeMultiplier { channel, multiplier } => write!(
                f,
                "channel {channel}: requantization multiplier {multiplier} is negative"
            ),
            Error::NegativeScale => f.write_str("effective scale is negative"),
            Error::NonFiniteScale => f.write_str("effective scale is NaN or infinite"),
            Error::ScaleTooLarge => f.write_str("effective scale is 2^30 or more, too large to requantize with"),
        }
    }
}

impl core::error::Error for Error {}

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
