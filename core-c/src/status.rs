//! `ae_status`: what every function returns, one value per error of the core.

use autoencoder_core::{Error, ModelError};
use core::ffi::c_char;

/// What a call did: `AE_OK`, or why it did nothing.
///
/// One value per error of the core (its `ModelError` and, for a layer the loader rejects, the
/// kernel's `Error`), and four of the C API's own: a null pointer, buffers that overlap, a
/// model handle that holds no loaded model, a misaligned pointer. `ae_status_name` names each.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ae_status {
    /// Success.
    AE_OK = 0,
    /// A pointer argument is NULL.
    AE_NULL_POINTER = 1,
    /// Two buffers of one call overlap: an output with the input, the scratch, the model blob or
    /// the `ae_model` itself, or an input with the scratch.
    AE_BUFFERS_OVERLAP = 2,
    /// The `ae_model` was never loaded, or its last load failed.
    AE_NOT_LOADED = 3,
    /// A pointer is not aligned for its type (a `float *` or an `ae_model *` from a byte buffer).
    AE_MISALIGNED = 4,
    /// The model blob is shorter than a header and a checksum.
    AE_TOO_SHORT = 10,
    /// The blob does not start with the model magic "AEQ8": not a model file.
    AE_BAD_MAGIC = 11,
    /// The file is in a format version this library does not read (`trainer upgrade` rewrites
    /// an older one).
    AE_UNSUPPORTED_VERSION = 12,
    /// The stored CRC-32 does not match the bytes: the file is corrupt.
    AE_CHECKSUM_MISMATCH = 13,
    /// The header names an unknown model kind.
    AE_UNKNOWN_KIND = 14,
    /// The body does not decode.
    AE_MALFORMED = 15,
    /// The body leaves bytes unread before the checksum.
    AE_TRAILING_BYTES = 16,
    /// The header's kind disagrees with the layers.
    AE_KIND_MISMATCH = 17,
    /// The input quantization is impossible.
    AE_BAD_INPUT = 18,
    /// The input shape is impossible.
    AE_BAD_INPUT_SHAPE = 19,
    /// An input scaling array does not hold one f32 per input value.
    AE_INPUT_SCALING_LENGTH = 20,
    /// An input scaling value is not finite, or a divisor is zero.
    AE_BAD_INPUT_SCALING = 21,
    /// The input shape does not hold as many values as the first layer takes.
    AE_FIRST_LAYER_MISMATCH = 22,
    /// The code does not split the layers into an encoder and a decoder.
    AE_BAD_CODE_SPLIT = 23,
    /// The output is not as wide as the input.
    AE_OUTPUT_WIDTH_MISMATCH = 24,
    /// The output quantization is impossible.
    AE_BAD_OUTPUT = 25,
    /// The scratch buffer is shorter than the model needs (`ae_model_info.scratch_len`).
    AE_SCRATCH_TOO_SMALL = 26,
    /// A code buffer's length is not the model's code width.
    AE_CODE_WIDTH_MISMATCH = 27,
    /// An input or output buffer's length is not the model's input length.
    AE_INPUT_WIDTH_MISMATCH = 28,
    /// A float input value is NaN, which has no int8 code; nothing was written.
    AE_NOT_A_NUMBER = 29,
    /// The anomaly score's stored requantization is out of range.
    AE_BAD_SCORE = 30,
    /// A score was to be flagged, but the model holds no threshold.
    AE_NO_THRESHOLD = 31,
    /// A layer: an array's length disagrees with its shape.
    AE_LAYER_SHAPE_MISMATCH = 40,
    /// A layer: its geometry is impossible.
    AE_LAYER_INVALID_GEOMETRY = 41,
    /// A layer: an input zero point outside [-128, 127].
    AE_LAYER_INPUT_ZERO_POINT = 42,
    /// A layer: an output zero point outside [-128, 127].
    AE_LAYER_OUTPUT_ZERO_POINT = 43,
    /// A layer: an activation clamp that is not a sub-range of [-128, 127].
    AE_LAYER_ACTIVATION_RANGE = 44,
    /// A layer: a requantization shift outside [-31, 30].
    AE_LAYER_SHIFT_OUT_OF_RANGE = 45,
    /// A layer: a negative requantization multiplier.
    AE_LAYER_NEGATIVE_MULTIPLIER = 46,
    /// A layer: a negative effective scale.
    AE_LAYER_NEGATIVE_SCALE = 47,
    /// A layer: a NaN or infinite effective scale.
    AE_LAYER_NON_FINITE_SCALE = 48,
    /// A layer: an effective scale too large to requantize with.
    AE_LAYER_SCALE_TOO_LARGE = 49,
    /// An error this build of the C API does not know (a newer core): report it as a bug.
    AE_UNKNOWN_ERROR = 99,
}

use ae_status::*;

/// Every status, in declaration order.
pub const ALL: [ae_status; 38] = [
    AE_OK,
    AE_NULL_POINTER,
    AE_BUFFERS_OVERLAP,
    AE_NOT_LOADED,
    AE_MISALIGNED,
    AE_TOO_SHORT,
    AE_BAD_MAGIC,
    AE_UNSUPPORTED_VERSION,
    AE_CHECKSUM_MISMATCH,
    AE_UNKNOWN_KIND,
    AE_MALFORMED,
    AE_TRAILING_BYTES,
    AE_KIND_MISMATCH,
    AE_BAD_INPUT,
    AE_BAD_INPUT_SHAPE,
    AE_INPUT_SCALING_LENGTH,
    AE_BAD_INPUT_SCALING,
    AE_FIRST_LAYER_MISMATCH,
    AE_BAD_CODE_SPLIT,
    AE_OUTPUT_WIDTH_MISMATCH,
    AE_BAD_OUTPUT,
    AE_SCRATCH_TOO_SMALL,
    AE_CODE_WIDTH_MISMATCH,
    AE_INPUT_WIDTH_MISMATCH,
    AE_NOT_A_NUMBER,
    AE_BAD_SCORE,
    AE_NO_THRESHOLD,
    AE_LAYER_SHAPE_MISMATCH,
    AE_LAYER_INVALID_GEOMETRY,
    AE_LAYER_INPUT_ZERO_POINT,
    AE_LAYER_OUTPUT_ZERO_POINT,
    AE_LAYER_ACTIVATION_RANGE,
    AE_LAYER_SHIFT_OUT_OF_RANGE,
    AE_LAYER_NEGATIVE_MULTIPLIER,
    AE_LAYER_NEGATIVE_SCALE,
    AE_LAYER_NON_FINITE_SCALE,
    AE_LAYER_SCALE_TOO_LARGE,
    AE_UNKNOWN_ERROR,
];

impl ae_status {
    /// The value's name as C spells it (`"AE_CHECKSUM_MISMATCH"`), NUL-terminated.
    pub const fn name(self) -> &'static core::ffi::CStr {
        match self {
            AE_OK => c"AE_OK",
            AE_NULL_POINTER => c"AE_NULL_POINTER",
            AE_BUFFERS_OVERLAP => c"AE_BUFFERS_OVERLAP",
            AE_NOT_LOADED => c"AE_NOT_LOADED",
            AE_MISALIGNED => c"AE_MISALIGNED",
            AE_TOO_SHORT => c"AE_TOO_SHORT",
            AE_BAD_MAGIC => c"AE_BAD_MAGIC",
            AE_UNSUPPORTED_VERSION => c"AE_UNSUPPORTED_VERSION",
            AE_CHECKSUM_MISMATCH => c"AE_CHECKSUM_MISMATCH",
            AE_UNKNOWN_KIND => c"AE_UNKNOWN_KIND",
            AE_MALFORMED => c"AE_MALFORMED",
            AE_TRAILING_BYTES => c"AE_TRAILING_BYTES",
            AE_KIND_MISMATCH => c"AE_KIND_MISMATCH",
            AE_BAD_INPUT => c"AE_BAD_INPUT",
            AE_BAD_INPUT_SHAPE => c"AE_BAD_INPUT_SHAPE",
            AE_INPUT_SCALING_LENGTH => c"AE_INPUT_SCALING_LENGTH",
            AE_BAD_INPUT_SCALING => c"AE_BAD_INPUT_SCALING",
            AE_FIRST_LAYER_MISMATCH => c"AE_FIRST_LAYER_MISMATCH",
            AE_BAD_CODE_SPLIT => c"AE_BAD_CODE_SPLIT",
            AE_OUTPUT_WIDTH_MISMATCH => c"AE_OUTPUT_WIDTH_MISMATCH",
            AE_BAD_OUTPUT => c"AE_BAD_OUTPUT",
            AE_SCRATCH_TOO_SMALL => c"AE_SCRATCH_TOO_SMALL",
            AE_CODE_WIDTH_MISMATCH => c"AE_CODE_WIDTH_MISMATCH",
            AE_INPUT_WIDTH_MISMATCH => c"AE_INPUT_WIDTH_MISMATCH",
            AE_NOT_A_NUMBER => c"AE_NOT_A_NUMBER",
            AE_BAD_SCORE => c"AE_BAD_SCORE",
            AE_NO_THRESHOLD => c"AE_NO_THRESHOLD",
            AE_LAYER_SHAPE_MISMATCH => c"AE_LAYER_SHAPE_MISMATCH",
            AE_LAYER_INVALID_GEOMETRY => c"AE_LAYER_INVALID_GEOMETRY",
            AE_LAYER_INPUT_ZERO_POINT => c"AE_LAYER_INPUT_ZERO_POINT",
            AE_LAYER_OUTPUT_ZERO_POINT => c"AE_LAYER_OUTPUT_ZERO_POINT",
            AE_LAYER_ACTIVATION_RANGE => c"AE_LAYER_ACTIVATION_RANGE",
            AE_LAYER_SHIFT_OUT_OF_RANGE => c"AE_LAYER_SHIFT_OUT_OF_RANGE",
            AE_LAYER_NEGATIVE_MULTIPLIER => c"AE_LAYER_NEGATIVE_MULTIPLIER",
            AE_LAYER_NEGATIVE_SCALE => c"AE_LAYER_NEGATIVE_SCALE",
            AE_LAYER_NON_FINITE_SCALE => c"AE_LAYER_NON_FINITE_SCALE",
            AE_LAYER_SCALE_TOO_LARGE => c"AE_LAYER_SCALE_TOO_LARGE",
            AE_UNKNOWN_ERROR => c"AE_UNKNOWN_ERROR",
        }
    }
}

impl From<ModelError> for ae_status {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::TooShort { .. } => AE_TOO_SHORT,
            ModelError::BadMagic { .. } => AE_BAD_MAGIC,
            ModelError::UnsupportedVersion { .. } => AE_UNSUPPORTED_VERSION,
            ModelError::ChecksumMismatch { .. } => AE_CHECKSUM_MISMATCH,
            ModelError::UnknownKind { .. } => AE_UNKNOWN_KIND,
            ModelError::Malformed { .. } => AE_MALFORMED,
            ModelError::TrailingBytes { .. } => AE_TRAILING_BYTES,
            ModelError::KindMismatch { .. } => AE_KIND_MISMATCH,
            ModelError::BadInput => AE_BAD_INPUT,
            ModelError::BadInputShape { .. } => AE_BAD_INPUT_SHAPE,
            ModelError::InputScalingLength { .. } => AE_INPUT_SCALING_LENGTH,
            ModelError::BadInputScaling { .. } => AE_BAD_INPUT_SCALING,
            ModelError::FirstLayerMismatch { .. } => AE_FIRST_LAYER_MISMATCH,
            ModelError::BadCodeSplit { .. } => AE_BAD_CODE_SPLIT,
            ModelError::OutputWidthMismatch { .. } => AE_OUTPUT_WIDTH_MISMATCH,
            ModelError::BadOutput => AE_BAD_OUTPUT,
            ModelError::Layer { error, .. } => error.into(),
            ModelError::ScratchTooSmall { .. } => AE_SCRATCH_TOO_SMALL,
            ModelError::CodeWidthMismatch { .. } => AE_CODE_WIDTH_MISMATCH,
            ModelError::InputWidthMismatch { .. } => AE_INPUT_WIDTH_MISMATCH,
            ModelError::NotANumber { .. } => AE_NOT_A_NUMBER,
            ModelError::BadScore { .. } => AE_BAD_SCORE,
            ModelError::NoThreshold => AE_NO_THRESHOLD,
            _ => AE_UNKNOWN_ERROR,
        }
    }
}

impl From<Error> for ae_status {
    fn from(error: Error) -> Self {
        match error {
            Error::ShapeMismatch { .. } => AE_LAYER_SHAPE_MISMATCH,
            Error::InvalidGeometry { .. } => AE_LAYER_INVALID_GEOMETRY,
            Error::InputZeroPointOutOfRange { .. } => AE_LAYER_INPUT_ZERO_POINT,
            Error::OutputZeroPointOutOfRange { .. } => AE_LAYER_OUTPUT_ZERO_POINT,
            Error::InvalidActivationRange { .. } => AE_LAYER_ACTIVATION_RANGE,
            Error::ShiftOutOfRange { .. } => AE_LAYER_SHIFT_OUT_OF_RANGE,
            Error::NegativeMultiplier { .. } => AE_LAYER_NEGATIVE_MULTIPLIER,
            Error::NegativeScale => AE_LAYER_NEGATIVE_SCALE,
            Error::NonFiniteScale => AE_LAYER_NON_FINITE_SCALE,
            Error::ScaleTooLarge => AE_LAYER_SCALE_TOO_LARGE,
            Error::NotANumber { .. } => AE_NOT_A_NUMBER,
            _ => AE_UNKNOWN_ERROR,
        }
    }
}

/// The name of a status value as C spells it (`"AE_CHECKSUM_MISMATCH"`), or
/// `"AE_UNKNOWN_STATUS"` for a value that is not one. The string is static: never free it.
///
/// Takes an `int` rather than an `ae_status`, so that any integer a caller holds is safe to pass.
#[no_mangle]
pub extern "C" fn ae_status_name(status: i32) -> *const c_char {
    ALL.iter()
        .find(|s| **s as i32 == status)
        .map_or(c"AE_UNKNOWN_STATUS", |s| s.name())
        .as_ptr()
}
