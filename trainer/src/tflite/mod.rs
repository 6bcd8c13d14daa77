//! A model file as TensorFlow Lite flatbuffers: an int8 encoder and an int8 decoder that TFLM
//! runs bit for bit as the core runs the `.aeq`.
//!
//! [`convert`] turns the owned form of a model file
//! ([`Quantized`](crate::quantize::Quantized)) into two `.tflite` models
//! with the same tensors, scales, zero points, weights and biases:
//! - the **encoder**: the input as int8 codes (the model's input quantization, whatever its
//!   zero point; for the MNIST models the pixels as `p - 128`), shape `[1, N]`, or `[1, H, W, C]`
//!   for a convolutional model whose input shape is `[H, W]` (one channel) or `[H, W, C]`
//!   (MNIST's `conv`: `[1, 28, 28, 1]`), to the code (the output of layer `code_after - 1`),
//!   shape `[1, code]`. The input scaling is not part of the graph: the caller scales and
//!   quantizes raw samples first, as TFLite's `QUANTIZE` or the core's `quantize_f32` does, so a
//!   model of any scaling converts. A hard top-k layer that ends the encoder has no TFLite op:
//!   the encoder stops before it and [`Converted::top_k`] says which `k` the caller applies
//!   ([`autoencoder_core::top_k_s8()`], with the code's zero point);
//! - the **decoder**: the code, `[1, code]`, to the N output values, `[1, N]`.
//!
//! Layer by layer (activations NHWC, as in the core):
//!
//! | layer | TFLite |
//! |---|---|
//! | `FullyConnected` | `FULLY_CONNECTED`: weights int8 `[out, in]`, per-channel symmetric (quantized dimension 0), bias int32 `[out]` with scale `input scale × weight scale`, no fused activation, `keep_num_dims` false |
//! | `Conv2d` | `CONV_2D`, `VALID`, stride 1, dilation 1, filter OHWI per channel, bias int32 |
//! | `MaxPool2d` | `MAX_POOL_2D` 2x2, stride 2, `VALID`; the output keeps the input's quantization |
//! | LeakyReLU table | `LEAKY_RELU` (alpha = the slope) into the table's output quantization |
//! | Logistic table | `LOGISTIC` (output scale 1/256, zero point -128) |
//! | `FullyConnectedLeakyRelu`, `Conv2dLeakyRelu` | the weighted op twice on the same weights and bias, into the output quantization and into scale [`fused_negative_scale`]`(output scale, slope)`, joined by `MAXIMUM` (exact for slopes in (0, 0.5]) |
//! | `TopK` | only as the encoder's last layer ([`Converted::top_k`]) |
//!
//! Where an op reads another shape than the activation before it has (a flat activation into a
//! convolution or pooling, an image into a fully connected layer), and for an image-shaped code
//! or output, a `RESHAPE` (a copy, in NHWC order) comes between.
//!
//! Nothing is approximated: before writing a weighted op the converter checks that the
//! requantization TFLM derives from the tensors' scales (`quantize_multiplier` of
//! `effective_scale`) is the stored one, channel by channel, and that every stored table is what
//! the core's table functions compute from the scales; a model that fails either check is
//! refused ([`ConvertError::StaleMultipliers`], [`ConvertError::StaleTable`]) rather than written
//! with a different arithmetic. [`table_model`] writes a stored table's op alone, to hold the
//! table against TFLM on all 256 inputs; [`float_model`] writes TFLite's `QUANTIZE` or
//! `DEQUANTIZE` alone, to hold the core's float input and output against TFLM's.
//!
//! The files: `schema.rs` declares the TFLite tables and writes them with `flatbuffers`'
//! builder (schema version 3, identifier `TFL3`, buffer 0 empty, every buffer's data
//! [`DATA_ALIGN`]-byte aligned in the file); `convert.rs` builds the graphs from the layers.
//!
//! [`fused_negative_scale`]: autoencoder_core::fused_negative_scale

mod convert;
#[cfg(test)]
mod read;
mod schema;
#[cfg(test)]
mod tests;

pub use convert::{convert, float_model, table_model, FloatOp};
pub use schema::DATA_ALIGN;

/// A model file as two TFLite flatbuffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The encoder: the int8 input (for MNIST, the pixels as `p - 128`) to the code (before
    /// any top-k).
    pub encoder: Vec<u8>,
    /// The decoder: the code to the N int8 output values.
    pub decoder: Vec<u8>,
    /// k of a top-k layer that ends the encoder, applied by the caller after the encoder
    pub top_k: Option<usize>,
}

/// Why a model (or a layer, for [`table_model`]) has no exact `.tflite` form.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The layer has no TFLite op (or op pair) that computes exactly what the core computes.
    #[error("cannot write .tflite: layer {layer} ({kind}): no exact TFLite form: {reason}")]
    NoExactForm {
        /// Index of the layer in the model.
        layer: usize,
        /// Its kind, as `inspect` names it.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored multiplier and shift are not what TFLM derives from the tensors' scales, so
    /// TFLM would requantize differently.
    #[error(
        "cannot write .tflite: layer {layer} ({kind}): stored multipliers are not the ones TFLM derives \
         from the scales (channel {channel}, {side} side: stored {stored:?}, derived {derived:?}); run \
         `trainer upgrade` on the model file"
    )]
    StaleMultipliers {
        /// Index of the layer in the model.
        layer: usize,
        /// Its kind.
        kind: &'static str,
        /// The first channel that differs.
        channel: usize,
        /// `positive` (the layer's own requantization) or `negative` (a fused LeakyReLU's).
        side: &'static str,
        /// The stored `(multiplier, shift)`.
        stored: (i32, i32),
        /// What TFLM derives.
        derived: (i32, i32),
    },
    /// A stored table is not what TFLM's op computes from the scales.
    #[error(
        "cannot write .tflite: layer {layer} ({kind}): the stored table is not the one TFLM computes from \
         the scales (input code {input}: stored {stored}, TFLM {derived}); run `trainer upgrade` on the \
         model file"
    )]
    StaleTable {
        /// Index of the layer in the model.
        layer: usize,
        /// Its kind.
        kind: &'static str,
        /// The first input code whose entry differs.
        input: i8,
        /// The stored entry.
        stored: i8,
        /// TFLM's output.
        derived: i8,
    },
    /// A requantization or table cannot be derived from the layer's scales at all.
    #[error("cannot write .tflite: layer {layer} ({kind}): {what}: {source}")]
    Arithmetic {
        /// Index of the layer in the model.
        layer: usize,
        /// Its kind.
        kind: &'static str,
        /// What was being derived.
        what: &'static str,
        /// The core's error.
        source: autoencoder_core::Error,
    },
    /// A layer's arrays or shapes do not fit together (a hand-built or damaged model).
    #[error("cannot write .tflite: layer {layer} ({kind}): {reason}")]
    Malformed {
        /// Index of the layer in the model.
        layer: usize,
        /// Its kind.
        kind: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// Something about the model as a whole (where the code sits, its input or output).
    #[error("cannot write .tflite: {0}")]
    Model(String),
    /// [`table_model`] was given something it cannot write.
    #[error("cannot write a .tflite table model of a {kind} layer: {reason}")]
    TableModel {
        /// The layer's kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}
