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
//! of the rest, that each layer's arrays have the lengths its shape implies, that quantization
//! parameters are in range, that each layer's input is the previous layer's output, and where
//! the code sits. A blob that passes can be run by [`Autoencoder`](crate::Autoencoder) without
//! any further failure; one that does not gives a [`ModelError`] naming what is wrong.

use crate::conv2d_s8::Conv2dGeometry;
use crate::max_pool_s8::MaxPoolGeometry;
use crate::requantize::{MAX_SHIFT, MIN_SHIFT};
use crate::table_s8::TABLE_LEN;
use crate::Error;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The first four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"AEQ8";

/// The format version this crate reads and writes. It changes whenever the meaning or layout of
/// any byte changes; a loader accepts exactly its own version (see `docs/model-format.md`, which
/// lists every version). `trainer upgrade` rewrites an older file in this version.
pub const FORMAT_VERSION: u16 = 2;

/// Bytes before the body: magic, version, kind, reserved.
pub const HEADER_LEN: usize = 8;

/// Bytes after the body: the CRC-32.
pub const CHECKSUM_LEN: usize = 4;

/// The most layers a model may have (the capacity of [`ModelBody::layers`]).
pub const MAX_LAYERS: usize = 32;

/// Pixels of one MNIST image, the input (and, for denoise, the output) of every model.
pub const PIXELS: usize = 784;

/// Zero point of the input tensor: with scale 1/255 a u8 pixel `p` is the int8 code `p - 128`.
pub const INPUT_ZERO_POINT: i32 = -128;

/// The most output channels a convolution may have: the runner decodes a convolution's
/// per-channel parameters onto the stack, this many at a time (fully connected layers of any
/// width run in chunks of this size).
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
    pub scale: f32,
    /// The code of real 0. Valid range: [-128, 127].
    pub zero_point: i32,
}

/// The quantized parameters of a fully connected or convolution layer. Multi-byte integers are
/// little-endian byte arrays, so the model borrows them from any byte slice whatever its
/// alignment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights<'a> {
    /// Int8 weights, symmetric (zero point 0): `[outputs][inputs]` for a fully connected layer,
    /// OHWI `[out_channels][kernel][kernel][in_channels]` for a convolution.
    pub weights: &'a [u8],
    /// Per output channel, the weight scale as f32 little-endian (4 bytes each). For tools only.
    pub weight_scales: &'a [u8],
    /// Per output channel, the i32 bias in units of `input scale * weight scale` (4 bytes each).
    pub bias: &'a [u8],
    /// Per output channel, the Q0.31 requantization multiplier, i32 (4 bytes each), from
    /// [`quantize_multiplier`](crate::quantize_multiplier).
    pub multipliers: &'a [u8],
    /// Per output channel, the requantization shift, i8 (1 byte each), in [-31, 30].
    pub shifts: &'a [u8],
    /// Quantization of the layer's output.
    pub output: Quant,
}

/// The function a [`Layer::Table`] computes; the table itself is what runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// LeakyReLU with this negative slope.
    LeakyRelu {
        /// Slope for negative inputs (0.01 in every variant).
        slope: f32,
    },
    /// The logistic sigmoid (output scale 1/256, zero point -128, as TFLM requires).
    Logistic,
}

/// One layer of a model, in order from input to output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Layer<'a> {
    /// TFLite's `FULLY_CONNECTED`, per-channel weight scales, no fused activation.
    FullyConnected {
        /// Input width.
        inputs: u32,
        /// Output width.
        outputs: u32,
        /// Weights and quantization.
        #[serde(borrow)]
        params: Weights<'a>,
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
        #[serde(borrow)]
        params: Weights<'a>,
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
        table: &'a [u8],
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
        slope: f32,
        /// Weights and the positive-side quantization.
        #[serde(borrow)]
        params: Weights<'a>,
        /// Per output channel, the negative-side multiplier, i32 (4 bytes each).
        negative_multipliers: &'a [u8],
        /// Per output channel, the negative-side shift, i8 (1 byte each), in [-31, 30].
        negative_shifts: &'a [u8],
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
        slope: f32,
        /// Filters (OHWI) and the positive-side quantization.
        #[serde(borrow)]
        params: Weights<'a>,
        /// Per output channel, the negative-side multiplier, i32 (4 bytes each).
        negative_multipliers: &'a [u8],
        /// Per output channel, the negative-side shift, i8 (1 byte each), in [-31, 30].
        negative_shifts: &'a [u8],
    },
}

impl Layer<'_> {
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
}

/// Everything between the header and the checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBody<'a> {
    /// The variant the model was exported from (`fc`, `conv`, `deep2d`, ...).
    pub name: &'a str,
    /// Test MSE of the float model it was quantized from, measured at export (NaN if unknown).
    pub float_test_mse: f32,
    /// Quantization of the input: scale 1/255 and zero point [`INPUT_ZERO_POINT`].
    pub input: Quant,
    /// How many of the layers form the encoder; the output of `layers[code_after - 1]` is the
    /// code.
    pub code_after: u16,
    /// The layers, input first.
    #[serde(borrow)]
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
}

/// Why a model blob was rejected, or why a model cannot run with what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The blob is shorter than a header and a checksum.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The first four bytes are not [`MAGIC`]: this is not a model file.
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// The file was written in another format version.
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The version this crate reads.
        supported: u16,
    },
    /// The CRC-32 stored at the end does not match the bytes: the file is corrupt.
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// Header byte 6 is not a known [`ModelKind`].
    UnknownKind {
        /// The byte found.
        kind: u8,
    },
    /// The body does not decode as a [`ModelBody`].
    Malformed {
        /// What the decoder found wrong.
        reason: &'static str,
    },
    /// The body decodes but leaves bytes before the checksum unread.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The header's kind disagrees with the layers (a convolution in a fully connected model or
    /// none in a convolutional one).
    KindMismatch {
        /// The kind in the header.
        header: ModelKind,
    },
    /// The input quantization is not scale > 0 with zero point -128.
    BadInput,
    /// `code_after` does not split the layers into a non-empty encoder and decoder.
    BadCodeSplit {
        /// `code_after` as stored.
        code_after: usize,
        /// Number of layers.
        layers: usize,
    },
    /// The model's input or output is not [`PIXELS`] long.
    NotAnImageModel {
        /// Which end: `"input"` or `"output"`.
        end: &'static str,
        /// Its length.
        len: usize,
    },
    /// A layer is invalid: a wrong array length, an out-of-range parameter, a geometry that
    /// cannot be, or an input that is not the previous layer's output.
    Layer {
        /// Index of the layer, from 0.
        index: usize,
        /// What is wrong with it.
        error: Error,
    },
    /// The scratch buffer given to run the model is too small.
    ScratchTooSmall {
        /// Bytes the model needs ([`Model::scratch_len`]).
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The code width asked for (the `K` of `[i8; K]`) is not the model's.
    CodeWidthMismatch {
        /// The model's code width.
        model: usize,
        /// The width asked for.
        requested: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::TooShort { len } => write!(
                f,
                "model blob is {len} bytes, shorter than its {} bytes of header and checksum",
                HEADER_LEN + CHECKSUM_LEN
            ),
            ModelError::BadMagic { found } => {
                write!(
                    f,
                    "not a model file: magic is {found:02x?}, expected {MAGIC:02x?} (\"AEQ8\")"
                )
            }
            ModelError::UnsupportedVersion { found, supported } if found < supported => write!(
                f,
                "model format version {found} is older than this build's version {supported}: \
                 rewrite the file with `trainer upgrade FILE`"
            ),
            ModelError::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is newer than this build's version {supported}: \
                 use a newer build to read it"
            ),
            ModelError::ChecksumMismatch { stored, computed } => write!(
                f,
                "model file is corrupt: stored CRC-32 {stored:#010x}, computed {computed:#010x}"
            ),
            ModelError::UnknownKind { kind } => write!(f, "unknown model kind {kind}"),
            ModelError::Malformed { reason } => write!(f, "model body does not decode: {reason}"),
            ModelError::TrailingBytes { count } => {
                write!(f, "model body leaves {count} bytes unread before the checksum")
            }
            ModelError::KindMismatch { header } => {
                write!(f, "header says {} but the layers say otherwise", header.name())
            }
            ModelError::BadInput => f.write_str("input quantization must have scale > 0 and zero point -128"),
            ModelError::BadCodeSplit { code_after, layers } => write!(
                f,
                "code after layer {code_after} does not split {layers} layers into an encoder and a decoder"
            ),
            ModelError::NotAnImageModel { end, len } => {
                write!(f, "model {end} has {len} values, expected {PIXELS}")
            }
            ModelError::Layer { index, error } => write!(f, "layer {index}: {error}"),
            ModelError::ScratchTooSmall { needed, actual } => {
                write!(f, "scratch buffer has {actual} bytes, the model needs {needed}")
            }
            ModelError::CodeWidthMismatch { model, requested } => {
                write!(f, "model codes are {model} wide, asked for {requested}")
            }
        }
    }
}

impl core::error::Error for ModelError {}

/// A checked model, borrowing its arrays from the blob it was loaded from.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<'a> {
    kind: ModelKind,
    body: ModelBody<'a>,
    code_len: usize,
    max_activation: usize,
}

impl<'a> Model<'a> {
    /// Loads and checks a model blob (see the [module docs](self)).
    ///
    /// # Errors
    /// A [`ModelError`] naming the first problem found. Never panics, whatever the bytes.
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
        if input.zero_point != INPUT_ZERO_POINT || !positive_finite(input.scale) {
            return Err(ModelError::BadInput);
        }
        let code_after = usize::from(body.code_after);
        let layers = body.layers.len();
        if code_after == 0 || code_after >= layers {
            return Err(ModelError::BadCodeSplit { code_after, layers });
        }
        let has_conv = body
            .layers
            .iter()
            .any(|l| matches!(l, Layer::Conv2d { .. } | Layer::Conv2dLeakyRelu { .. }));
        if has_conv != (kind == ModelKind::Convolutional) {
            return Err(ModelError::KindMismatch { header: kind });
        }
        let mut shape = Shape {
            len: PIXELS,
            zero_point: INPUT_ZERO_POINT,
        };
        let mut max_activation = PIXELS;
        let mut code_len = 0;
        for (index, layer) in body.layers.iter().enumerate() {
            shape = check_layer(layer, shape).map_err(|error| ModelError::Layer { index, error })?;
            max_activation = max_activation.max(shape.len);
            if index + 1 == code_after {
                code_len = shape.len;
            }
        }
        if shape.len != PIXELS {
            return Err(ModelError::NotAnImageModel {
                end: "output",
                len: shape.len,
            });
        }
        Ok(Self {
            kind,
            body,
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

    /// The layers, input first.
    pub fn layers(&self) -> &[Layer<'a>] {
        &self.body.layers
    }

    /// Width of the code (the encoder's output).
    pub fn code_len(&self) -> usize {
        self.code_len
    }

    /// Quantization of the code.
    pub fn code_quant(&self) -> Quant {
        quant_after(&self.body, usize::from(self.body.code_after))
    }

    /// Quantization of the output image.
    pub fn output_quant(&self) -> Quant {
        quant_after(&self.body, self.body.layers.len())
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
}

/// The CRC-32 of model files (IEEE 802.3, reflected, as zlib's `crc32`), with a 1 KiB table.
pub fn crc32(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
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

fn check_zero_point(zero_point: i32) -> Result<(), Error> {
    if i8::try_from(zero_point).is_err() {
        return Err(Error::OutputZeroPointOutOfRange { zero_point });
    }
    Ok(())
}

/// The quantization of the activation after the first `count` layers.
fn quant_after(body: &ModelBody<'_>, count: usize) -> Quant {
    let mut quant = body.input;
    for layer in body.layers.iter().take(count) {
        match layer {
            Layer::FullyConnected { params, .. }
            | Layer::Conv2d { params, .. }
            | Layer::FullyConnectedLeakyRelu { params, .. }
            | Layer::Conv2dLeakyRelu { params, .. } => quant = params.output,
            Layer::Table { output, .. } => quant = *output,
            Layer::MaxPool2d { .. } | Layer::TopK { .. } => {}
        }
    }
    quant
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
        E::DeserializeBadUtf8 => "the name is not UTF-8",
        E::DeserializeBadEnum => "a layer or activation tag is unknown",
        E::DeserializeBadOption => "an option tag is neither 0 nor 1",
        E::DeserializeBadEncoding => "a field has a bad encoding",
        _ => "a field has an impossible value (for example more than 32 layers)",
    }
}

/// An upper bound on the bytes [`write()`] needs for `body`: the arrays, plus room for lengths,
/// scalars and the header.
pub fn encoded_len_bound(body: &ModelBody<'_>) -> usize {
    let arrays: usize = body
        .layers
        .iter()
        .map(|layer| match layer {
            Layer::FullyConnected { params, .. } | Layer::Conv2d { params, .. } => {
                params.weights.len()
                    + params.weight_scales.len()
                    + params.bias.len()
                    + params.multipliers.len()
                    + params.shifts.len()
            }
            Layer::FullyConnectedLeakyRelu {
                params,
                negative_multipliers,
                negative_shifts,
                ..
            }
            | Layer::Conv2dLeakyRelu {
                params,
                negative_multipliers,
                negative_shifts,
                ..
            } => {
                params.weights.len()
                    + params.weight_scales.len()
                    + params.bias.len()
                    + params.multipliers.len()
                    + params.shifts.len()
                    + negative_multipliers.len()
                    + negative_shifts.len()
            }
            Layer::Table { table, .. } => table.len(),
            Layer::MaxPool2d { .. } | Layer::TopK { .. } => 0,
        })
        .sum();
    HEADER_LEN + CHECKSUM_LEN + body.name.len() + arrays + 64 * (body.layers.len() + 2)
}

/// Writes a model file (header, the postcard body, the checksum) into `out`; returns its
/// length. The body is first checked exactly as [`Model::from_bytes`] checks a file, so a file
/// that this writes always loads. Used by the trainer's export; needs no allocator.
///
/// # Errors
/// The problem [`Model::from_bytes`] would report, or [`ModelError::TooShort`] (with `out`'s
/// length) when `out` cannot hold the file ([`encoded_len_bound`] always can).
pub fn write(kind: ModelKind, body: &ModelBody<'_>, out: &mut [u8]) -> Result<usize, ModelError> {
    Model::check(kind, body.clone())?;
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
    Ok(len + CHECKSUM_LEN)
}
