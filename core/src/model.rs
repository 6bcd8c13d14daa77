//! The model file: one int8 autoencoder in one byte slice, and its loader.
//!
//! The byte layout is documented in the project's `docs/model-format.md`. In short:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `b"AEQ8"` |
//! | 4..6 | format version, u16 little-endian ([`FORMAT_VERSION`]) |
//! | 6 | model kind ([`ModelKind`]) |
//! | 7 | reserved, 0 |
//! | 8..n-4 | the body, a postcard-serialised [`ModelBody`] |
//! | n-4..n | CRC-32 (IEEE) of bytes 0..n-4, u32 little-endian |
//!
//! [`Model::from_bytes`] borrows every array from the slice (no copy, no heap) and checks
//! everything before the model can run: header, checksum, that the body decodes and is all
//! of the rest, the input's shape, scaling and quantization, that each layer's arrays have the
//! lengths its shape implies, that quantization parameters are in range, that each layer's input
//! is the previous layer's output, that the output is as long as the input, and where the code
//! sits. A blob that passes can be run by [`Autoencoder`](crate::Autoencoder) without
//! any further failure; one that does not gives a [`ModelError`] naming what is wrong.

use crate::anomaly_score_s8::ScoreParams;
use crate::conv2d_s8::Conv2dGeometry;
use crate::max_pool_s8::MaxPoolGeometry;
use crate::requantize::{quantize_multiplier, MAX_SHIFT, MIN_SHIFT};
pub use crate::storage::{Borrowed, ByteLen, Storage, U32Values};
#[cfg(feature = "alloc")]
pub use crate::storage::{Owned, Words};
use crate::table_s8::TABLE_LEN;
use crate::Error;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The first four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"AEQ8";

/// The format version this crate reads and writes. It changes whenever the meaning or layout of
/// any byte changes; a loader accepts exactly its own version (see `docs/model-format.md`, which
/// lists every version). `trainer upgrade` rewrites an older file in this version.
pub const FORMAT_VERSION: u16 = 4;

/// Bytes before the body: magic, version, kind, reserved.
pub const HEADER_LEN: usize = 8;

/// Bytes after the body: the CRC-32.
pub const CHECKSUM_LEN: usize = 4;

/// The most layers a model may have (the capacity of [`ModelBody::layers`]).
pub const MAX_LAYERS: usize = 32;

/// The most dimensions of a sample's shape ([`ModelBody::input_shape`]).
pub const MAX_INPUT_DIMS: usize = 3;

/// Pixels of one MNIST image (28 x 28), the input length of the MNIST models.
pub const PIXELS: usize = 784;

/// The most output channels a convolution may have: the runner decodes a convolution's
/// per-channel parameters onto the stack, this many at a time (a fully connected layer of any
/// width runs in one pass, its outputs requantized this many at a time, each channel's
/// parameters read from the model's bytes).
pub const CHANNEL_CHUNK: usize = 64;

/// What kind of network a model file holds (header byte 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ModelKind {
    /// Only fully connected layers, table activations and top-k (every variant but `conv`).
    FullyConnected = 1,
    /// A convolutional encoder (convolutions and max-pooling) and a fully connected decoder.
    Convolutional = 2,
}

impl ModelKind {
    /// The kind with header byte `byte`, if any.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(ModelKind::FullyConnected),
            2 => Some(ModelKind::Convolutional),
            _ => None,
        }
    }

    /// A short lower-case name: `fully-connected` or `convolutional`.
    pub const fn name(self) -> &'static str {
        match self {
            ModelKind::FullyConnected => "fully-connected",
            ModelKind::Convolutional => "convolutional",
        }
    }
}

/// Scale and zero point of an int8 tensor: `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    /// Real value of one step. Stored for tools (inspection, evaluation, rebuilding the model);
    /// the device never reads it.
    #[serde(deserialize_with = "deserialize_le_f32")]
    pub scale: f32,
    /// The code of real 0. Valid range: [-128, 127].
    pub zero_point: i32,
}

/// The quantized parameters of a fully connected or convolution layer. Multi-byte integers are
/// little-endian byte arrays, so the model borrows them from any byte slice whatever its
/// alignment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "",
    deserialize = "S::I8: Deserialize<'de>, S::I32: Deserialize<'de>, S::F32: Deserialize<'de>, S::Str: Deserialize<'de>"
))]
pub struct Weights<'a, S: Storage<'a> = Borrowed> {
    /// Int8 weights, symmetric (zero point 0): `[outputs][inputs]` for a fully connected layer,
    /// OHWI `[out_channels][kernel][kernel][in_channels]` for a convolution.
    pub weights: S::I8,
    /// Per output channel, the weight scale as f32 little-endian (4 bytes each). For tools only.
    pub weight_scales: S::F32,
    /// Per output channel, the i32 bias in units of `input scale * weight scale` (4 bytes each).
    pub bias: S::I32,
    /// Per output channel, the Q0.31 requantization multiplier, i32 (4 bytes each), from
    /// [`quantize_multiplier`].
    pub multipliers: S::I32,
    /// Per output channel, the requantization shift, i8 (1 byte each), in [-31, 30].
    pub shifts: S::I8,
    /// Quantization of the layer's output.
    pub output: Quant,
}

/// The function a [`Layer::Table`] computes; the table itself is what runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// LeakyReLU with this negative slope.
    LeakyRelu {
        /// Slope for negative inputs (0.01 in every variant).
        #[serde(deserialize_with = "deserialize_le_f32")]
        slope: f32,
    },
    /// The logistic sigmoid (output scale 1/256, zero point -128, as TFLM requires).
    Logistic,
}

/// How a raw sample `x` (a u8 pixel, a sensor reading) becomes the model's input value `v`, the
/// real number its input quantization then codes. Each rule is one or two f32 operations,
/// exactly as written (the trainer scales its training data the same way):
///
/// - `None`: `v = x`;
/// - `Unit`: `v = x / 255` (u8 samples to [0, 1]);
/// - `MinMax` and `Standard`: `v = (x - offset[i]) / divisor[i]` for feature `i`, one f32
///   subtraction then one f32 division. The two differ only in what the trainer put in the
///   arrays (the minimum and the range, or the mean and the standard deviation).
///
/// The arrays hold one f32 per input value, little-endian (4 bytes each), so a borrowed model
/// reads them from any byte slice whatever its alignment. The loader checks their lengths and
/// that every offset is finite and every divisor finite and nonzero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "S::F32: Deserialize<'de>"))]
pub enum InputScaling<'a, S: Storage<'a> = Borrowed> {
    /// The raw values are the input values.
    None,
    /// `v = x / 255`.
    Unit,
    /// `v = (x - offset[i]) / divisor[i]`, from each feature's minimum and range.
    MinMax {
        /// Per input value, the f32 subtracted first.
        offset: S::F32,
        /// Per input value, the f32 divided by then.
        divisor: S::F32,
    },
    /// `v = (x - offset[i]) / divisor[i]`, from each feature's mean and standard deviation.
    Standard {
        /// Per input value, the f32 subtracted first.
        offset: S::F32,
        /// Per input value, the f32 divided by then.
        divisor: S::F32,
    },
}

impl Copy for InputScaling<'_, Borrowed> {}

impl<'a> InputScaling<'a, Borrowed> {
    /// The scaling of input values `from..to` alone (the same rule, its arrays cut to those
    /// features); an empty window where the range is outside the arrays.
    pub fn features(&self, from: usize, to: usize) -> Self {
        let cut = |array: &'a [u8]| array.get(from.saturating_mul(4)..to.saturating_mul(4)).unwrap_or(&[]);
        match *self {
            InputScaling::None => InputScaling::None,
            InputScaling::Unit => InputScaling::Unit,
            InputScaling::MinMax { offset, divisor } => InputScaling::MinMax {
                offset: cut(offset),
                divisor: cut(divisor),
            },
            InputScaling::Standard { offset, divisor } => InputScaling::Standard {
                offset: cut(offset),
                divisor: cut(divisor),
            },
        }
    }
}

impl<'a, S: Storage<'a>> InputScaling<'a, S> {
    /// A short lower-case name: `none`, `unit`, `min-max` or `standard`.
    pub const fn name(&self) -> &'static str {
        match self {
            InputScaling::None => "none",
            InputScaling::Unit => "unit",
            InputScaling::MinMax { .. } => "min-max",
            InputScaling::Standard { .. } => "standard",
        }
    }

    /// The per-feature offsets and divisors, for the two scalings that have them.
    pub fn arrays(&self) -> Option<(&S::F32, &S::F32)> {
        match self {
            InputScaling::None | InputScaling::Unit => None,
            InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
                Some((offset, divisor))
            }
        }
    }
}

/// One layer of a model, in order from input to output: the int8 layer kinds, declared once.
/// Every tool (the device runner, the trainer's quantizer, int8 reference, `inspect`,
/// `upgrade` and TFLite converter, the host tests) works on this list; `S` says where the arrays
/// live ([`Borrowed`] from a file's bytes, or `Owned` arrays on the host, `alloc` feature).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "",
    deserialize = "S::I8: Deserialize<'de>, S::I32: Deserialize<'de>, S::F32: Deserialize<'de>, S::Str: Deserialize<'de>"
))]
pub enum Layer<'a, S: Storage<'a> = Borrowed> {
    /// TFLite's `FULLY_CONNECTED`, per-channel weight scales, no fused activation.
    FullyConnected {
        /// Input width.
        inputs: u32,
        /// Output width.
        outputs: u32,
        /// Weights and quantization.
        params: Weights<'a, S>,
    },
    /// TFLite's `CONV_2D`, NHWC, `VALID` padding, stride 1, no fused activation.
    Conv2d {
        /// Input rows.
        height: u16,
        /// Input columns.
        width: u16,
        /// Input channels.
        in_channels: u16,
        /// Output channels, at most [`CHANNEL_CHUNK`].
        out_channels: u16,
        /// Side of the square kernel.
        kernel: u16,
        /// Filters (OHWI) and quantization.
        params: Weights<'a, S>,
    },
    /// TFLite's `MAX_POOL_2D`, 2x2 window, stride 2, on an NHWC tensor; the output keeps the
    /// input's quantization.
    MaxPool2d {
        /// Input rows.
        height: u16,
        /// Input columns.
        width: u16,
        /// Channels.
        channels: u16,
    },
    /// An element-wise activation as a 256-entry table: entry `i` is the output code for the
    /// input code `i - 128`.
    Table {
        /// What the table computes.
        activation: Activation,
        /// The 256 entries, as bytes (two's complement int8).
        table: S::I8,
        /// Quantization of the output.
        output: Quant,
    },
    /// Hard top-k sparsity: keep the `k` largest codes, set the rest to the zero point.
    TopK {
        /// Codes kept per sample.
        k: u32,
    },
    /// A fully connected layer with a fused LeakyReLU
    /// ([`fully_connected_leaky_s8`](crate::fully_connected_leaky_s8())): `params.multipliers`
    /// and `params.shifts` requantize non-negative accumulators, the `negative_*` pair (the
    /// effective scale against [`fused_negative_scale`](crate::fused_negative_scale)`(output
    /// scale, slope)`) negative ones; `params.output` is the LeakyReLU's output.
    FullyConnectedLeakyRelu {
        /// Input width.
        inputs: u32,
        /// Output width.
        outputs: u32,
        /// Negative slope (for tools; the multipliers carry it).
        #[serde(deserialize_with = "deserialize_le_f32")]
        slope: f32,
        /// Weights and the positive-side quantization.
        params: Weights<'a, S>,
        /// Per output channel, the negative-side multiplier, i32 (4 bytes each).
        negative_multipliers: S::I32,
        /// Per output channel, the negative-side shift, i8 (1 byte each), in [-31, 30].
        negative_shifts: S::I8,
    },
    /// A convolution with a fused LeakyReLU ([`conv2d_leaky_s8`](crate::conv2d_leaky_s8())),
    /// its two requantizations as in [`Layer::FullyConnectedLeakyRelu`].
    Conv2dLeakyRelu {
        /// Input rows.
        height: u16,
        /// Input columns.
        width: u16,
        /// Input channels.
        in_channels: u16,
        /// Output channels, at most [`CHANNEL_CHUNK`].
        out_channels: u16,
        /// Side of the square kernel.
        kernel: u16,
        /// Negative slope (for tools; the multipliers carry it).
        #[serde(deserialize_with = "deserialize_le_f32")]
        slope: f32,
        /// Filters (OHWI) and the positive-side quantization.
        params: Weights<'a, S>,
        /// Per output channel, the negative-side multiplier, i32 (4 bytes each).
        negative_multipliers: S::I32,
        /// Per output channel, the negative-side shift, i8 (1 byte each), in [-31, 30].
        negative_shifts: S::I8,
    },
}

/// The product a weighted layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightShape {
    /// `[outputs][inputs]` weights times a flat vector.
    Dense {
        /// Input width.
        inputs: usize,
        /// Output width (and channels).
        outputs: usize,
    },
    /// A convolution, NHWC, OHWI filters, `VALID`, stride 1.
    Conv(Conv2dGeometry),
}

impl WeightShape {
    /// Output channels: one weight scale, bias, multiplier and shift each.
    pub const fn channels(&self) -> usize {
        match self {
            WeightShape::Dense { outputs, .. } => *outputs,
            WeightShape::Conv(g) => g.out_channels,
        }
    }

    /// Values of the output (0 for a geometry that cannot be).
    pub fn output_len(&self) -> usize {
        match self {
            WeightShape::Dense { outputs, .. } => *outputs,
            WeightShape::Conv(g) => g.output_len().unwrap_or(0),
        }
    }

    /// Multiply-accumulates per input (0 for a geometry that cannot be).
    pub fn macs(&self) -> usize {
        match self {
            WeightShape::Dense { inputs, outputs } => inputs.saturating_mul(*outputs),
            WeightShape::Conv(g) => g
                .output_len()
                .unwrap_or(0)
                .saturating_mul(g.kernel * g.kernel * g.in_channels),
        }
    }
}

/// A fully connected or convolution layer, with or without a fused LeakyReLU, seen one way:
/// the accumulator comes from `shape` and `params`; a non-negative one is requantized with
/// `params`, a negative one with `fused`'s negative side when there is one.
#[derive(Debug)]
pub struct Weighted<'l, 'a, S: Storage<'a> = Borrowed> {
    /// What the weights multiply.
    pub shape: WeightShape,
    /// Weights, bias and the (positive-side) requantization into `params.output`.
    pub params: &'l Weights<'a, S>,
    /// The fused LeakyReLU, if any.
    pub fused: Option<Fused<&'l S::I32, &'l S::I8>>,
}

/// A fused LeakyReLU's slope and negative-side requantization (`M` the multipliers, `H` the
/// shifts, borrowed shared or mutable).
#[derive(Debug)]
pub struct Fused<M, H> {
    /// Negative slope (for tools; the multipliers carry it).
    pub slope: f32,
    /// Per output channel, the negative-side multiplier.
    pub negative_multipliers: M,
    /// Per output channel, the negative-side shift, in [-31, 30].
    pub negative_shifts: H,
}

impl<'a, S: Storage<'a>> Layer<'a, S> {
    /// A short name of the layer type, as `inspect` prints it.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Layer::FullyConnected { .. } => "fully_connected",
            Layer::Conv2d { .. } => "conv2d",
            Layer::MaxPool2d { .. } => "max_pool_2d",
            Layer::Table {
                activation: Activation::LeakyRelu { .. },
                ..
            } => "leaky_relu_table",
            Layer::Table {
                activation: Activation::Logistic,
                ..
            } => "logistic_table",
            Layer::TopK { .. } => "top_k",
            Layer::FullyConnectedLeakyRelu { .. } => "fully_connected_leaky_relu",
            Layer::Conv2dLeakyRelu { .. } => "conv2d_leaky_relu",
        }
    }

    /// The layer as a weighted product, if it is one (fully connected or convolution, fused or
    /// not).
    pub fn weighted(&self) -> Option<Weighted<'_, 'a, S>> {
        let conv = |height, width, in_channels, out_channels, kernel| {
            WeightShape::Conv(conv_geometry(height, width, in_channels, out_channels, kernel))
        };
        let dense = |inputs, outputs| WeightShape::Dense {
            inputs: to_usize(inputs),
            outputs: to_usize(outputs),
        };
        match self {
            Layer::FullyConnected {
                inputs,
                outputs,
                params,
            } => Some(Weighted {
                shape: dense(*inputs, *outputs),
                params,
                fused: None,
            }),
            Layer::Conv2d {
                height,
                width,
                in_channels,
                out_channels,
                kernel,
                params,
            } => Some(Weighted {
                shape: conv(*height, *width, *in_channels, *out_channels, *kernel),
                params,
                fused: None,
            }),
            Layer::FullyConnectedLeakyRelu {
                inputs,
                outputs,
                slope,
                params,
                negative_multipliers,
                negative_shifts,
            } => Some(Weighted {
                shape: dense(*inputs, *outputs),
                params,
                fused: Some(Fused {
                    slope: *slope,
                    negative_multipliers,
                    negative_shifts,
                }),
            }),
            Layer::Conv2dLeakyRelu {
                height,
                width,
                in_channels,
                out_channels,
                kernel,
                slope,
                params,
                negative_multipliers,
                negative_shifts,
            } => Some(Weighted {
                shape: conv(*height, *width, *in_channels, *out_channels, *kernel),
                params,
                fused: Some(Fused {
                    slope: *slope,
                    negative_multipliers,
                    negative_shifts,
                }),
            }),
            Layer::MaxPool2d { .. } | Layer::Table { .. } | Layer::TopK { .. } => None,
        }
    }

    /// A weighted layer's parameters and fused negative side, mutable (for tools that
    /// recompute derived values).
    #[allow(clippy::type_complexity)]
    pub fn weighted_mut(&mut self) -> Option<(&mut Weights<'a, S>, Option<Fused<&mut S::I32, &mut S::I8>>)> {
        match self {
            Layer::FullyConnected { params, .. } | Layer::Conv2d { params, .. } => Some((params, None)),
            Layer::FullyConnectedLeakyRelu {
                slope,
                params,
                negative_multipliers,
                negative_shifts,
                ..
            }
            | Layer::Conv2dLeakyRelu {
                slope,
                params,
                negative_multipliers,
                negative_shifts,
                ..
            } => Some((
                params,
                Some(Fused {
                    slope: *slope,
                    negative_multipliers,
                    negative_shifts,
                }),
            )),
            Layer::MaxPool2d { .. } | Layer::Table { .. } | Layer::TopK { .. } => None,
        }
    }

    /// The weighted layer of `shape`, `params` and, for a fused LeakyReLU, its negative side:
    /// the inverse of [`Layer::weighted`].
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] when a size does not fit its field (u32 widths, u16
    /// convolution sizes).
    pub fn from_weighted(
        shape: WeightShape,
        params: Weights<'a, S>,
        fused: Option<Fused<S::I32, S::I8>>,
    ) -> Result<Self, Error> {
        let too_large = Error::InvalidGeometry {
            reason: "a size does not fit the model format",
        };
        let u32_ = |x: usize| u32::try_from(x).map_err(|_| too_large);
        let u16_ = |x: usize| u16::try_from(x).map_err(|_| too_large);
        Ok(match (shape, fused) {
            (WeightShape::Dense { inputs, outputs }, None) => Layer::FullyConnected {
                inputs: u32_(inputs)?,
                outputs: u32_(outputs)?,
                params,
            },
            (WeightShape::Dense { inputs, outputs }, Some(f)) => Layer::FullyConnectedLeakyRelu {
                inputs: u32_(inputs)?,
                outputs: u32_(outputs)?,
                slope: f.slope,
                params,
                negative_multipliers: f.negative_multipliers,
                negative_shifts: f.negative_shifts,
            },
            (WeightShape::Conv(g), None) => Layer::Conv2d {
                height: u16_(g.height)?,
                width: u16_(g.width)?,
                in_channels: u16_(g.in_channels)?,
                out_channels: u16_(g.out_channels)?,
                kernel: u16_(g.kernel)?,
                params,
            },
            (WeightShape::Conv(g), Some(f)) => Layer::Conv2dLeakyRelu {
                height: u16_(g.height)?,
                width: u16_(g.width)?,
                in_channels: u16_(g.in_channels)?,
                out_channels: u16_(g.out_channels)?,
                kernel: u16_(g.kernel)?,
                slope: f.slope,
                params,
                negative_multipliers: f.negative_multipliers,
                negative_shifts: f.negative_shifts,
            },
        })
    }

    /// The quantization of the layer's output, or `None` when it keeps its input's.
    pub fn output_quant(&self) -> Option<Quant> {
        match self {
            Layer::Table { output, .. } => Some(*output),
            _ => self.weighted().map(|w| w.params.output),
        }
    }

    /// Values of the layer's input, for the layers whose shape fixes it (weighted layers and
    /// max-pooling; `None` for tables and top-k, which take any length; 0 for a geometry that
    /// cannot be).
    pub fn input_len(&self) -> Option<usize> {
        match self {
            Layer::MaxPool2d {
                height,
                width,
                channels,
            } => Some(pool_geometry(*height, *width, *channels).input_len().unwrap_or(0)),
            _ => self.weighted().map(|w| match w.shape {
                WeightShape::Dense { inputs, .. } => inputs,
                WeightShape::Conv(g) => g.input_len().unwrap_or(0),
            }),
        }
    }

    /// Values of the layer's output for `input` values in (0 for a geometry that cannot be).
    pub fn output_len(&self, input: usize) -> usize {
        match self {
            Layer::MaxPool2d {
                height,
                width,
                channels,
            } => pool_geometry(*height, *width, *channels).output_len().unwrap_or(0),
            Layer::Table { .. } | Layer::TopK { .. } => input,
            _ => self.weighted().map_or(input, |w| w.shape.output_len()),
        }
    }

    /// Whether the layer is a convolution (what makes a model [`ModelKind::Convolutional`]).
    pub fn is_conv(&self) -> bool {
        matches!(
            self.weighted(),
            Some(Weighted {
                shape: WeightShape::Conv(_),
                ..
            })
        )
    }
}

impl<'a, S: Storage<'a>> ModelBody<'a, S> {
    /// The kind the layers make: convolutional when any layer is a convolution.
    pub fn kind(&self) -> ModelKind {
        if self.layers.iter().any(Layer::is_conv) {
            ModelKind::Convolutional
        } else {
            ModelKind::FullyConnected
        }
    }

    /// The quantization of the activation after the first `count` layers.
    pub fn quant_after(&self, count: usize) -> Quant {
        self.layers
            .iter()
            .take(count)
            .fold(self.input, |quant, layer| layer.output_quant().unwrap_or(quant))
    }

    /// Values of one input sample: the product of [`ModelBody::input_shape`] (0 when the shape
    /// is empty or its product overflows `usize`, which the loader refuses).
    pub fn input_len(&self) -> usize {
        let shape = &self.input_shape;
        if shape.count() == 0 {
            return 0;
        }
        (0..shape.count())
            .try_fold(1usize, |len, i| len.checked_mul(usize::try_from(shape.value(i)?).ok()?))
            .unwrap_or(0)
    }

    /// Width of the activation after the first `count` layers.
    pub fn len_after(&self, count: usize) -> usize {
        self.layers
            .iter()
            .take(count)
            .fold(self.input_len(), |len, layer| layer.output_len(len))
    }

    /// Width of the code (the encoder's output).
    pub fn code_len(&self) -> usize {
        self.len_after(usize::from(self.code_after))
    }
}

impl Copy for Weights<'_, Borrowed> {}
impl Copy for Layer<'_, Borrowed> {}

/// Everything between the header and the checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "",
    deserialize = "S::I8: Deserialize<'de>, S::I32: Deserialize<'de>, S::U32: Deserialize<'de>, S::F32: Deserialize<'de>, S::Str: Deserialize<'de>"
))]
pub struct ModelBody<'a, S: Storage<'a> = Borrowed> {
    /// The variant the model was exported from (`fc`, `conv`, `deep2d`, ...).
    pub name: S::Str,
    /// Where the model came from, as the exporter recorded it (compact JSON: trainer version,
    /// commit, data hashes; `{"upgraded_from":2}` for a file migrated by `trainer upgrade`).
    /// Opaque to the core, which only stores it; may be empty.
    pub source: S::Str,
    /// Test MSE of the float model it was quantized from, measured at export (NaN if unknown).
    #[serde(deserialize_with = "deserialize_le_f32")]
    pub float_test_mse: f32,
    /// The shape of one input sample, 1 to [`MAX_INPUT_DIMS`] dimensions, each at least 1, row
    /// major (`[28, 28]`, `[64]`, or `[32, 32, 3]` as height, width, channels), as u32
    /// little-endian (4 bytes each, like the other multi-byte arrays); its product is the input
    /// length N, the first layer's input and the output's length.
    pub input_shape: S::U32,
    /// How raw samples become the input values that [`ModelBody::input`] quantizes.
    pub input_scaling: InputScaling<'a, S>,
    /// Quantization of the input values: any finite scale > 0, any zero point in [-128, 127]
    /// (the MNIST models: scale 1/255, zero point -128, so that a pixel `p` is the code
    /// `p - 128`).
    pub input: Quant,
    /// How many of the layers form the encoder; the output of `layers[code_after - 1]` is the
    /// code.
    pub code_after: u16,
    /// The layers, input first.
    pub layers: heapless::Vec<Layer<'a, S>, MAX_LAYERS>,
    /// The anomaly score's requantization and, if the model was exported with one, its
    /// threshold.
    pub anomaly: Anomaly,
}

/// What the anomaly score needs beyond the layers (see
/// [`anomaly_score_s8`](mod@crate::anomaly_score_s8)): the requantization of an output code
/// into the input's quantization, fixed at export, and an optional threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The Q0.31 multiplier of `output scale / input scale`, formed in f64 by
    /// [`quantize_multiplier`], in [0, `i32::MAX`].
    pub score_multiplier: i32,
    /// Its shift, in [-31, 30].
    pub score_shift: i8,
    /// The threshold a score is compared with, if the model was exported with one.
    pub threshold: Option<Threshold>,
}

impl Anomaly {
    /// The score's requantization from `output` into `input` (without a threshold):
    /// [`quantize_multiplier`] of `output.scale / input.scale`, both
    /// widened to f64 and divided there.
    ///
    /// # Errors
    /// The errors of `quantize_multiplier` for a ratio it cannot represent.
    pub fn derive(input: Quant, output: Quant) -> Result<Self, Error> {
        let (multiplier, shift) = quantize_multiplier(f64::from(output.scale) / f64::from(input.scale))?;
        Ok(Self {
            score_multiplier: multiplier,
            // quantize_multiplier's shifts are in [-31, 30].
            score_shift: shift as i8,
            threshold: None,
        })
    }

    /// [`Anomaly::derive`] for a body's input and output.
    ///
    /// # Errors
    /// As [`Anomaly::derive`].
    pub fn of<'a, S: Storage<'a>>(body: &ModelBody<'a, S>) -> Result<Self, Error> {
        Self::derive(body.input, body.quant_after(body.layers.len()))
    }
}

/// An anomaly threshold: a sample whose score is above `score` is flagged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The largest score that is still normal.
    pub score: u32,
    /// The fraction of normal samples the threshold was fit to flag (`--threshold-fpr`), for
    /// tools; the device never reads it.
    #[serde(deserialize_with = "deserialize_le_f32")]
    pub false_positive_rate: f32,
}

/// Why a model blob was rejected, or why a model cannot run with what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The blob is shorter than a header and a checksum.
    #[error("model blob is {len} bytes, shorter than its {} bytes of header and checksum", HEADER_LEN + CHECKSUM_LEN)]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The first four bytes are not [`MAGIC`]: this is not a model file.
    #[error("not a model file: magic is {found:02x?}, expected {MAGIC:02x?} (\"AEQ8\")", MAGIC = MAGIC)]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// The file was written in another format version.
    #[error(fmt = unsupported_version)]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The version this crate reads.
        supported: u16,
    },
    /// The CRC-32 stored at the end does not match the bytes: the file is corrupt.
    #[error("model file is corrupt: stored CRC-32 {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// Header byte 6 is not a known [`ModelKind`].
    #[error("unknown model kind {kind}")]
    UnknownKind {
        /// The byte found.
        kind: u8,
    },
    /// The body does not decode as a [`ModelBody`].
    #[error("model body does not decode: {reason}")]
    Malformed {
        /// What the decoder found wrong.
        reason: &'static str,
    },
    /// The body decodes but leaves bytes before the checksum unread.
    #[error("model body leaves {count} bytes unread before the checksum")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The header's kind disagrees with the layers (a convolution in a fully connected model or
    /// none in a convolutional one).
    #[error("header says {} but the layers say otherwise", header.name())]
    KindMismatch {
        /// The kind in the header.
        header: ModelKind,
    },
    /// The input quantization's scale is not finite and > 0, or its zero point is outside
    /// [-128, 127].
    #[error("input quantization must have a finite scale > 0 and a zero point in [-128, 127]")]
    BadInput,
    /// The input shape is not 1 to [`MAX_INPUT_DIMS`] whole u32 values, has a dimension of 0,
    /// or a product that overflows `usize`.
    #[error("input shape is impossible: {reason}")]
    BadInputShape {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// An input scaling array is not 4 bytes (one f32) per input value.
    #[error("input scaling `{array}` has {actual} bytes, expected {expected} (one f32 per input value)")]
    InputScalingLength {
        /// `"offset"` or `"divisor"`.
        array: &'static str,
        /// 4 times the input length.
        expected: usize,
        /// Its length in bytes.
        actual: usize,
    },
    /// An input scaling value cannot scale: an offset that is not finite, a divisor that is not
    /// finite or is zero.
    #[error("input scaling `{array}` value {index} is not finite or is a zero divisor")]
    BadInputScaling {
        /// `"offset"` or `"divisor"`.
        array: &'static str,
        /// The input value it belongs to.
        index: usize,
    },
    /// The input shape's product is not the length the first layer takes.
    #[error("input shape holds {input} values but the first layer takes {layer}")]
    FirstLayerMismatch {
        /// The product of the input shape.
        input: usize,
        /// The first layer's input length.
        layer: usize,
    },
    /// `code_after` does not split the layers into a non-empty encoder and decoder.
    #[error("code after layer {code_after} does not split {layers} layers into an encoder and a decoder")]
    BadCodeSplit {
        /// `code_after` as stored.
        code_after: usize,
        /// Number of layers.
        layers: usize,
    },
    /// The model's output is not as wide as its input (an autoencoder reconstructs its input).
    #[error("model output has {output} values but its input has {input}")]
    OutputWidthMismatch {
        /// The input length N.
        input: usize,
        /// The last layer's output length.
        output: usize,
    },
    /// The output quantization's scale is not finite and > 0 (the float output,
    /// [`Runner::decode_f32_into`](crate::Runner::decode_f32_into), multiplies by it).
    #[error("output quantization must have a finite scale > 0")]
    BadOutput,
    /// A layer is invalid: a wrong array length, an out-of-range parameter, a geometry that
    /// cannot be, or an input that is not the previous layer's output.
    #[error("layer {index}: {error}")]
    Layer {
        /// Index of the layer, from 0.
        index: usize,
        /// What is wrong with it.
        error: Error,
    },
    /// The scratch buffer given to run the model is too small.
    #[error("scratch buffer has {actual} bytes, the model needs {needed}")]
    ScratchTooSmall {
        /// Bytes the model needs ([`Model::scratch_len`]).
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The code width asked for (the `K` of `[i8; K]`) is not the model's.
    #[error("model codes are {model} wide, asked for {requested}")]
    CodeWidthMismatch {
        /// The model's code width.
        model: usize,
        /// The width asked for.
        requested: usize,
    },
    /// The input or output width asked for (the `N` of `[u8; N]`, or a slice's length) is not
    /// the model's input length.
    #[error("model inputs and outputs are {model} values wide, asked for {requested}")]
    InputWidthMismatch {
        /// The model's input length ([`Model::input_len`]).
        model: usize,
        /// The width asked for.
        requested: usize,
    },
    /// A float input value is NaN, which has no int8 code; nothing was written.
    #[error("input value {index} is NaN")]
    NotANumber {
        /// Its position in the input.
        index: usize,
    },
    /// The anomaly score's requantization is out of range: a negative multiplier or a shift
    /// outside [-31, 30].
    #[error("anomaly score requantization (multiplier {multiplier}, shift {shift}) is out of range")]
    BadScore {
        /// The stored multiplier.
        multiplier: i32,
        /// The stored shift.
        shift: i8,
    },
    /// A sample was to be flagged, but the model holds no threshold (export it with
    /// `--threshold-fpr`); its score is still available.
    #[error("the model holds no anomaly threshold: export it with --threshold-fpr to flag samples")]
    NoThreshold,
}

impl ModelError {
    /// The variant's name (`"ChecksumMismatch"`, ...), for logs that cannot afford `core::fmt`
    /// (the firmware's defmt logs).
    pub const fn name(&self) -> &'static str {
        match self {
            ModelError::TooShort { .. } => "TooShort",
            ModelError::BadMagic { .. } => "BadMagic",
            ModelError::UnsupportedVersion { .. } => "UnsupportedVersion",
            ModelError::ChecksumMismatch { .. } => "ChecksumMismatch",
            ModelError::UnknownKind { .. } => "UnknownKind",
            ModelError::Malformed { .. } => "Malformed",
            ModelError::TrailingBytes { .. } => "TrailingBytes",
            ModelError::KindMismatch { .. } => "KindMismatch",
            ModelError::BadInput => "BadInput",
            ModelError::BadInputShape { .. } => "BadInputShape",
            ModelError::InputScalingLength { .. } => "InputScalingLength",
            ModelError::BadInputScaling { .. } => "BadInputScaling",
            ModelError::FirstLayerMismatch { .. } => "FirstLayerMismatch",
            ModelError::BadCodeSplit { .. } => "BadCodeSplit",
            ModelError::OutputWidthMismatch { .. } => "OutputWidthMismatch",
            ModelError::BadOutput => "BadOutput",
            ModelError::Layer { .. } => "Layer",
            ModelError::ScratchTooSmall { .. } => "ScratchTooSmall",
            ModelError::CodeWidthMismatch { .. } => "CodeWidthMismatch",
            ModelError::InputWidthMismatch { .. } => "InputWidthMismatch",
            ModelError::NotANumber { .. } => "NotANumber",
            ModelError::BadScore { .. } => "BadScore",
            ModelError::NoThreshold => "NoThreshold",
        }
    }
}

/// [`ModelError::UnsupportedVersion`]'s message: what to do depends on which side is older.
fn unsupported_version(found: &u16, supported: &u16, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if found < supported {
        write!(
            f,
            "model format version {found} is older than this build's version {supported}: \
             rewrite the file with `trainer upgrade FILE`"
        )
    } else {
        write!(
            f,
            "model format version {found} is newer than this build's version {supported}: \
             use a newer build to read it"
        )
    }
}

/// A checked model, borrowing its arrays from the blob it was loaded from.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<'a> {
    kind: ModelKind,
    body: ModelBody<'a>,
    /// The input shape's dimensions, the first `dims` of them.
    shape: [u32; MAX_INPUT_DIMS],
    dims: usize,
    input_len: usize,
    code_len: usize,
    max_activation: usize,
}

impl<'a> Model<'a> {
    /// Loads and checks a model blob (see the [module docs](self)).
    ///
    /// # Errors
    /// A [`ModelError`] naming the first problem found. Never panics, whatever the bytes.
    // Inline: compiled in the crate that calls it, with the decoder's serde and postcard code, at
    // that crate's optimisation level. The firmware builds everything for size but the core,
    // whose kernels need `opt-level = 2`; the loader is 1.9 KiB smaller there at "z".
    #[inline]
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ModelError> {
        let len = bytes.len();
        if len < HEADER_LEN + CHECKSUM_LEN {
            return Err(ModelError::TooShort { len });
        }
        let (rest, checksum) = bytes.split_at(len - CHECKSUM_LEN);
        let (header, body) = rest.split_at(HEADER_LEN);
        let found = [byte(header, 0), byte(header, 1), byte(header, 2), byte(header, 3)];
        if found != MAGIC {
            return Err(ModelError::BadMagic { found });
        }
        let version = u16::from_le_bytes([byte(header, 4), byte(header, 5)]);
        if version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = u32::from_le_bytes([
            byte(checksum, 0),
            byte(checksum, 1),
            byte(checksum, 2),
            byte(checksum, 3),
        ]);
        let computed = crc32(rest);
        if stored != computed {
            return Err(ModelError::ChecksumMismatch { stored, computed });
        }
        let kind_byte = byte(header, 6);
        let kind = ModelKind::from_byte(kind_byte).ok_or(ModelError::UnknownKind { kind: kind_byte })?;
        let (body, unread): (ModelBody<'a>, _) =
            postcard::take_from_bytes(body).map_err(|e| ModelError::Malformed { reason: describe(&e) })?;
        if !unread.is_empty() {
            return Err(ModelError::TrailingBytes { count: unread.len() });
        }
        Self::check(kind, body)
    }

    /// Checks a decoded body (see [`Model::from_bytes`]).
    fn check(kind: ModelKind, body: ModelBody<'a>) -> Result<Self, ModelError> {
        let input = body.input;
        if i8::try_from(input.zero_point).is_err() || !positive_finite(input.scale) {
            return Err(ModelError::BadInput);
        }
        let (dimensions, dims, input_len) = check_input_shape(body.input_shape)?;
        check_input_scaling(&body.input_scaling, input_len)?;
        let code_after = usize::from(body.code_after);
        let layers = body.layers.len();
        if code_after == 0 || code_after >= layers {
            return Err(ModelError::BadCodeSplit { code_after, layers });
        }
        if body.kind() != kind {
            return Err(ModelError::KindMismatch { header: kind });
        }
        if let Some(layer) = body.layers.first().and_then(Layer::input_len) {
            if layer != input_len {
                return Err(ModelError::FirstLayerMismatch {
                    input: input_len,
                    layer,
                });
            }
        }
        let mut shape = Shape {
            len: input_len,
            zero_point: input.zero_point,
        };
        let mut max_activation = input_len;
        let mut code_len = 0;
        for (index, layer) in body.layers.iter().enumerate() {
            shape = check_layer(layer, shape).map_err(|error| ModelError::Layer { index, error })?;
            max_activation = max_activation.max(shape.len);
            if index + 1 == code_after {
                code_len = shape.len;
            }
        }
        if shape.len != input_len {
            return Err(ModelError::OutputWidthMismatch {
                input: input_len,
                output: shape.len,
            });
        }
        if !positive_finite(body.quant_after(layers).scale) {
            return Err(ModelError::BadOutput);
        }
        let Anomaly {
            score_multiplier: multiplier,
            score_shift: shift,
            ..
        } = body.anomaly;
        if multiplier < 0 || !(MIN_SHIFT..=MAX_SHIFT).contains(&i32::from(shift)) {
            return Err(ModelError::BadScore { multiplier, shift });
        }
        Ok(Self {
            kind,
            body,
            shape: dimensions,
            dims,
            input_len,
            code_len,
            max_activation,
        })
    }

    /// The kind in the header.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The decoded body: name, layers and every parameter, borrowed from the blob.
    pub fn body(&self) -> &ModelBody<'a> {
        &self.body
    }

    /// The body with every array copied into owned, typed vectors (`alloc` feature): what host
    /// tools read, change and write back ([`write()`] writes it as the same bytes).
    ///
    /// # Errors
    /// [`ModelError::Malformed`] if the body does not survive the round trip (it always does).
    #[cfg(feature = "alloc")]
    pub fn to_owned_body(&self) -> Result<ModelBody<'static, Owned>, ModelError> {
        let malformed = |e: postcard::Error| ModelError::Malformed { reason: describe(&e) };
        let bytes = postcard::to_allocvec(&self.body).map_err(malformed)?;
        postcard::from_bytes(&bytes).map_err(malformed)
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Layer<'a>] {
        &self.body.layers
    }

    /// Values of one input sample, N: the product of [`Model::input_shape`], the first layer's
    /// input and the output's width.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// The shape of one input sample: 1 to [`MAX_INPUT_DIMS`] dimensions, row major.
    pub fn input_shape(&self) -> &[u32] {
        self.shape.get(..self.dims).unwrap_or(&[])
    }

    /// How raw samples become input values ([`InputScaling`]).
    pub fn input_scaling(&self) -> InputScaling<'a> {
        self.body.input_scaling
    }

    /// Quantization of the input values.
    pub fn input_quant(&self) -> Quant {
        self.body.input
    }

    /// The exporter's record of where the model came from (opaque text, may be empty).
    pub fn source(&self) -> &'a str {
        self.body.source
    }

    /// Width of the code (the encoder's output).
    pub fn code_len(&self) -> usize {
        self.code_len
    }

    /// Quantization of the code.
    pub fn code_quant(&self) -> Quant {
        self.body.quant_after(usize::from(self.body.code_after))
    }

    /// Quantization of the output (N values, like the input).
    pub fn output_quant(&self) -> Quant {
        self.body.quant_after(self.body.layers.len())
    }

    /// The longest activation any layer produces (input included).
    pub fn max_activation_len(&self) -> usize {
        self.max_activation
    }

    /// Bytes of scratch the model needs to run: two activation buffers of
    /// [`Model::max_activation_len`] each.
    pub fn scratch_len(&self) -> usize {
        2 * self.max_activation
    }

    /// The parameters of the anomaly score: the input's and output's zero points and the
    /// stored requantization between them.
    pub fn score_params(&self) -> ScoreParams {
        ScoreParams {
            input_zero_point: self.body.input.zero_point,
            output_zero_point: self.output_quant().zero_point,
            multiplier: self.body.anomaly.score_multiplier,
            shift: i32::from(self.body.anomaly.score_shift),
        }
    }

    /// The anomaly threshold, if the model was exported with one: a score above it is flagged.
    pub fn threshold(&self) -> Option<u32> {
        self.body.anomaly.threshold.map(|t| t.score)
    }

    /// Whether `score` is above the model's threshold.
    ///
    /// # Errors
    /// [`ModelError::NoThreshold`] when the model holds none.
    pub fn is_anomalous(&self, score: u32) -> Result<bool, ModelError> {
        self.threshold().map(|t| score > t).ok_or(ModelError::NoThreshold)
    }
}

/// The CRC-32 of model files (IEEE 802.3, reflected, as zlib's `crc32`), with a 1 KiB table, or
/// with the feature `fast-crc` a 16 KiB one (the same checksums).
pub fn crc32(bytes: &[u8]) -> u32 {
    #[cfg(not(feature = "fast-crc"))]
    const CRC: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
    #[cfg(feature = "fast-crc")]
    const CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}

/// Length and zero point of the activation flowing between two layers.
#[derive(Clone, Copy)]
struct Shape {
    len: usize,
    zero_point: i32,
}

/// Checks one layer against the activation it receives; returns the activation it produces.
fn check_layer(layer: &Layer<'_>, input: Shape) -> Result<Shape, Error> {
    match *layer {
        Layer::FullyConnected {
            inputs,
            outputs,
            ref params,
        } => {
            let (inputs, outputs) = (to_usize(inputs), to_usize(outputs));
            expect("input", inputs, input.len)?;
            if outputs == 0 {
                return Err(Error::InvalidGeometry {
                    reason: "fully connected layer has no outputs",
                });
            }
            check_weights(params, inputs.checked_mul(outputs), outputs)?;
            Ok(Shape {
                len: outputs,
                zero_point: params.output.zero_point,
            })
        }
        Layer::Conv2d {
            height,
            width,
            in_channels,
            out_channels,
            kernel,
            ref params,
        } => {
            let geometry = conv_geometry(height, width, in_channels, out_channels, kernel);
            geometry.validate()?;
            expect("input", geometry.input_len()?, input.len)?;
            if geometry.out_channels > CHANNEL_CHUNK {
                return Err(Error::InvalidGeometry {
                    reason: "convolution has more than 64 output channels",
                });
            }
            check_weights(params, Some(geometry.filter_len()?), geometry.out_channels)?;
            Ok(Shape {
                len: geometry.output_len()?,
                zero_point: params.output.zero_point,
            })
        }
        Layer::Conv2dLeakyRelu {
            height,
            width,
            in_channels,
            out_channels,
            kernel,
            ref params,
            negative_multipliers,
            negative_shifts,
            ..
        } => {
            let plain = Layer::Conv2d {
                height,
                width,
                in_channels,
                out_channels,
                kernel,
                params: Weights {
                    multipliers: negative_multipliers,
                    shifts: negative_shifts,
                    ..*params
                },
            };
            check_layer(&plain, input)?;
            check_layer(
                &Layer::Conv2d {
                    height,
                    width,
                    in_channels,
                    out_channels,
                    kernel,
                    params: *params,
                },
                input,
            )
        }
        Layer::MaxPool2d {
            height,
            width,
            channels,
        } => {
            let geometry = pool_geometry(height, width, channels);
            geometry.validate()?;
            expect("input", geometry.input_len()?, input.len)?;
            Ok(Shape {
                len: geometry.output_len()?,
                zero_point: input.zero_point,
            })
        }
        Layer::Table { table, output, .. } => {
            expect("table", TABLE_LEN, table.len())?;
            check_zero_point(output.zero_point)?;
            Ok(Shape {
                len: input.len,
                zero_point: output.zero_point,
            })
        }
        Layer::FullyConnectedLeakyRelu {
            inputs,
            outputs,
            ref params,
            negative_multipliers,
            negative_shifts,
            ..
        } => {
            let (inputs, outputs) = (to_usize(inputs), to_usize(outputs));
            expect("input", inputs, input.len)?;
            if outputs == 0 {
                return Err(Error::InvalidGeometry {
                    reason: "fully connected layer has no outputs",
                });
            }
            check_weights(params, inputs.checked_mul(outputs), outputs)?;
            let negative = Weights {
                multipliers: negative_multipliers,
                shifts: negative_shifts,
                ..*params
            };
            check_weights(&negative, inputs.checked_mul(outputs), outputs)?;
            Ok(Shape {
                len: outputs,
                zero_point: params.output.zero_point,
            })
        }
        Layer::TopK { k } => {
            if to_usize(k) == 0 || to_usize(k) > input.len {
                return Err(Error::InvalidGeometry {
                    reason: "top-k keeps 0 codes or more codes than there are",
                });
            }
            Ok(input)
        }
    }
}

/// Checks the arrays of a weighted layer with `channels` outputs and `weight_len` weights
/// (`None` when that count overflows).
fn check_weights(params: &Weights<'_>, weight_len: Option<usize>, channels: usize) -> Result<(), Error> {
    expect("weights", weight_len.unwrap_or(usize::MAX), params.weights.len())?;
    let words = channels.saturating_mul(4);
    expect("weight_scales", words, params.weight_scales.len())?;
    expect("bias", words, params.bias.len())?;
    expect("multipliers", words, params.multipliers.len())?;
    expect("shifts", channels, params.shifts.len())?;
    check_zero_point(params.output.zero_point)?;
    for (channel, (m, &s)) in params.multipliers.chunks_exact(4).zip(params.shifts).enumerate() {
        let multiplier = le_i32(m);
        if multiplier < 0 {
            return Err(Error::NegativeMultiplier { channel, multiplier });
        }
        let shift = i32::from(s as i8);
        if !(MIN_SHIFT..=MAX_SHIFT).contains(&shift) {
            return Err(Error::ShiftOutOfRange { channel, shift });
        }
    }
    Ok(())
}

/// `x > 0` and finite, decided on the bits (no float arithmetic on the device).
fn positive_finite(x: f32) -> bool {
    let bits = x.to_bits();
    let exponent = (bits >> 23) & 0xff;
    bits >> 31 == 0 && bits != 0 && exponent != 0xff
}

/// Checks the input shape (u32 little-endian words); returns its dimensions, how many there
/// are, and the input length N, their product.
fn check_input_shape(bytes: &[u8]) -> Result<([u32; MAX_INPUT_DIMS], usize, usize), ModelError> {
    let bad = |reason| Err(ModelError::BadInputShape { reason });
    if !bytes.len().is_multiple_of(4) {
        return bad("it is not a whole number of u32 values");
    }
    let dims = bytes.count();
    if dims == 0 {
        return bad("it has no dimensions");
    }
    let mut shape = [0u32; MAX_INPUT_DIMS];
    if dims > shape.len() {
        return bad("it has more than 3 dimensions");
    }
    let mut len = 1usize;
    for (i, d) in shape.iter_mut().enumerate().take(dims) {
        *d = bytes.value(i).unwrap_or(0);
        if *d == 0 {
            return bad("a dimension is 0");
        }
        len = match usize::try_from(*d).ok().and_then(|d| len.checked_mul(d)) {
            Some(len) => len,
            None => return bad("its product overflows"),
        };
    }
    Ok((shape, dims, len))
}

/// Checks the arrays of a per-feature input scaling against the input length.
fn check_input_scaling(scaling: &InputScaling<'_>, input_len: usize) -> Result<(), ModelError> {
    let Some((offset, divisor)) = scaling.arrays() else {
        return Ok(());
    };
    let expected = input_len.saturating_mul(4);
    for (array, bytes) in [("offset", offset), ("divisor", divisor)] {
        if bytes.len() != expected {
            return Err(ModelError::InputScalingLength {
                array,
                expected,
                actual: bytes.len(),
            });
        }
    }
    for (index, (o, d)) in offset.chunks_exact(4).zip(divisor.chunks_exact(4)).enumerate() {
        let (o, d) = (le_f32(o), le_f32(d));
        let array = if !finite(o) {
            "offset"
        } else if !finite(d) || d.to_bits() << 1 == 0 {
            "divisor"
        } else {
            continue;
        };
        return Err(ModelError::BadInputScaling { array, index });
    }
    Ok(())
}

/// `x` is neither infinite nor NaN, decided on the bits.
fn finite(x: f32) -> bool {
    (x.to_bits() >> 23) & 0xff != 0xff
}

fn check_zero_point(zero_point: i32) -> Result<(), Error> {
    if i8::try_from(zero_point).is_err() {
        return Err(Error::OutputZeroPointOutOfRange { zero_point });
    }
    Ok(())
}

pub(crate) fn conv_geometry(
    height: u16,
    width: u16,
    in_channels: u16,
    out_channels: u16,
    kernel: u16,
) -> Conv2dGeometry {
    Conv2dGeometry {
        height: usize::from(height),
        width: usize::from(width),
        in_channels: usize::from(in_channels),
        out_channels: usize::from(out_channels),
        kernel: usize::from(kernel),
    }
}

pub(crate) fn pool_geometry(height: u16, width: u16, channels: u16) -> MaxPoolGeometry {
    MaxPoolGeometry {
        height: usize::from(height),
        width: usize::from(width),
        channels: usize::from(channels),
    }
}

/// `u32` to `usize`, saturating on 16-bit targets (any such length then fails its check).
pub(crate) fn to_usize(x: u32) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// A little-endian f32 from a 4-byte chunk (0 for a shorter one, which callers never pass).
pub(crate) fn le_f32(bytes: &[u8]) -> f32 {
    match *bytes {
        [a, b, c, d] => f32::from_le_bytes([a, b, c, d]),
        _ => 0.0,
    }
}

/// Reads an f32 field of the body as its 4 little-endian bytes: the bytes postcard writes for an
/// f32, so the format is the same. Postcard's own f32 path copies the 4 bytes with a length
/// check whose panic message formats both lengths, which would link `core::fmt` (3 KiB) into
/// every firmware; the four bytes one by one cannot fail that way. A human-readable format (JSON)
/// reads the number itself.
fn deserialize_le_f32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
    if deserializer.is_human_readable() {
        f32::deserialize(deserializer)
    } else {
        <[u8; 4]>::deserialize(deserializer).map(f32::from_le_bytes)
    }
}

/// A little-endian i32 from a 4-byte chunk (0 for a shorter one, which callers never pass).
pub(crate) fn le_i32(bytes: &[u8]) -> i32 {
    match *bytes {
        [a, b, c, d] => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn expect(operand: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            operand,
            expected,
            actual,
        })
    }
}

fn byte(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// A few words on why postcard rejected the body.
fn describe(error: &postcard::Error) -> &'static str {
    use postcard::Error as E;
    match error {
        E::DeserializeUnexpectedEnd => "it ends in the middle of a field",
        E::DeserializeBadVarint => "a length or integer is not a valid varint",
        E::DeserializeBadBool => "a boolean is neither 0 nor 1",
        E::DeserializeBadUtf8 => "the name or the source is not UTF-8",
        E::DeserializeBadEnum => "a layer, activation or input scaling tag is unknown",
        E::DeserializeBadOption => "an option tag is neither 0 nor 1",
        E::DeserializeBadEncoding => "a field has a bad encoding",
        _ => "a field has an impossible value (for example more than 32 layers)",
    }
}

/// An upper bound on the bytes [`write()`] needs for `body`: the arrays, plus room for lengths,
/// scalars and the header.
pub fn encoded_len_bound<'a, S: Storage<'a>>(body: &ModelBody<'a, S>) -> usize {
    let arrays: usize = body
        .layers
        .iter()
        .map(|layer| match (layer.weighted(), layer) {
            (Some(w), _) => {
                let p = w.params;
                let negative = w
                    .fused
                    .map_or(0, |f| f.negative_multipliers.byte_len() + f.negative_shifts.byte_len());
                p.weights.byte_len()
                    + p.weight_scales.byte_len()
                    + p.bias.byte_len()
                    + p.multipliers.byte_len()
                    + p.shifts.byte_len()
                    + negative
            }
            (None, Layer::Table { table, .. }) => table.byte_len(),
            (None, _) => 0,
        })
        .sum();
    let scaling = body
        .input_scaling
        .arrays()
        .map_or(0, |(offset, divisor)| offset.byte_len() + divisor.byte_len());
    HEADER_LEN
        + CHECKSUM_LEN
        + body.name.byte_len()
        + body.source.byte_len()
        + body.input_shape.byte_len()
        + scaling
        + arrays
        + 64 * (body.layers.len() + 3)
}

/// Writes a model file (header, the postcard body, the checksum) into `out`; returns its
/// length. The file written is then checked exactly as [`Model::from_bytes`] checks a file, so
/// a file that this accepts always loads. Used by the host tools (borrowed or owned bodies
/// write the same bytes); needs no allocator.
///
/// # Errors
/// The problem [`Model::from_bytes`] would report, or [`ModelError::TooShort`] (with `out`'s
/// length) when `out` cannot hold the file ([`encoded_len_bound`] always can).
pub fn write<'a, S: Storage<'a>>(
    kind: ModelKind,
    body: &ModelBody<'a, S>,
    out: &mut [u8],
) -> Result<usize, ModelError> {
    let too_short = ModelError::TooShort { len: out.len() };
    let (header, rest) = out.split_at_mut_checked(HEADER_LEN).ok_or(too_short)?;
    let version = FORMAT_VERSION.to_le_bytes();
    header.copy_from_slice(&[
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], version[0], version[1], kind as u8, 0,
    ]);
    let body_len = postcard::to_slice(body, rest).map_err(|_| too_short)?.len();
    let len = HEADER_LEN + body_len;
    let crc = crc32(out.get(..len).ok_or(too_short)?);
    out.get_mut(len..len + CHECKSUM_LEN)
        .ok_or(too_short)?
        .copy_from_slice(&crc.to_le_bytes());
    Model::from_bytes(out.get(..len + CHECKSUM_LEN).ok_or(too_short)?)?;
    Ok(len + CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model files' checksum is zlib's CRC-32 with either table (`fast-crc` or not): the
    /// check value, and the 1 KiB table's sums on random bytes of every length up to 300 and
    /// of a model-sized buffer.
    #[test]
    fn the_checksum_is_zlibs_crc32_with_either_table() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let small = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
        let mut rng = crate::testutil::SplitMix64::new(0xc4c);
        let bytes: [u8; 300] = core::array::from_fn(|_| rng.next_u64() as u8);
        for len in 0..=bytes.len() {
            assert_eq!(crc32(&bytes[..len]), small.checksum(&bytes[..len]), "{len} bytes");
        }
        let mut big = [0u8; 1 << 16];
        big.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        assert_eq!(crc32(&big), small.checksum(&big));
    }

    /// Every f32 field is read from the 4 little-endian bytes postcard writes for it, bit for
    /// bit (NaN payloads, -0, subnormals, infinities), in a plain field, an enum variant and a
    /// field after an `Option` tag; a short body is an error; JSON still reads numbers.
    #[test]
    fn f32_fields_are_read_as_the_little_endian_bytes_postcard_writes() {
        let values = [
            0.0f32,
            -0.0,
            1.0 / 255.0,
            -3.5e-39,
            f32::from_bits(1),
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::from_bits(0x7fc0_1234),
            f32::from_bits(0xffa0_0001),
        ];
        for x in values {
            let mut buffer = [0u8; 32];
            let quant = Quant {
                scale: x,
                zero_point: -7,
            };
            let bytes = postcard::to_slice(&quant, &mut buffer).unwrap();
            assert_eq!(bytes[..4], x.to_le_bytes(), "{x:e}");
            let back: Quant = postcard::from_bytes(bytes).unwrap();
            assert_eq!((back.scale.to_bits(), back.zero_point), (x.to_bits(), -7), "{x:e}");

            let slope = Activation::LeakyRelu { slope: x };
            let bytes = postcard::to_slice(&slope, &mut buffer).unwrap();
            assert_eq!(bytes[1..], x.to_le_bytes(), "{x:e}");
            match postcard::from_bytes(bytes).unwrap() {
                Activation::LeakyRelu { slope } => assert_eq!(slope.to_bits(), x.to_bits(), "{x:e}"),
                Activation::Logistic => panic!("{x:e}: read as Logistic"),
            }

            let anomaly = Anomaly {
                score_multiplier: 1 << 30,
                score_shift: -3,
                threshold: Some(Threshold {
                    score: 70_000,
                    false_positive_rate: x,
                }),
            };
            let bytes = postcard::to_slice(&anomaly, &mut buffer).unwrap();
            let end = bytes.len();
            assert_eq!(bytes[end - 4..], x.to_le_bytes(), "{x:e}");
            let back: Anomaly = postcard::from_bytes(bytes).unwrap();
            let threshold = back.threshold.unwrap();
            assert_eq!(threshold.score, 70_000);
            assert_eq!(threshold.false_positive_rate.to_bits(), x.to_bits(), "{x:e}");
            assert!(postcard::from_bytes::<Anomaly>(&bytes[..end - 1]).is_err());
        }
        assert!(postcard::from_bytes::<Quant>(&[0, 0, 128]).is_err());
        let json: Quant = serde_json::from_str(r#"{"scale":0.5,"zero_point":3}"#).unwrap();
        assert_eq!(
            json,
            Quant {
                scale: 0.5,
                zero_point: 3
            }
        );
    }
}
