//! Fixed-size encode, decode and denoise of a loaded [`Model`], with caller-provided scratch.
//!
//! The sizes are in the types: an image is `[u8; 784]`, a code is `[i8; K]` with `K` the
//! model's code width, checked once by [`Autoencoder::new`] together with the scratch length.
//! After that, running never fails on a model that [`Model::from_bytes`] accepted; the `Result`s
//! only carry errors a kernel would report, which the load checks have already excluded.

use crate::model::{conv_geometry, le_i32, pool_geometry, Layer, Model, ModelError, Weights, CHANNEL_CHUNK, PIXELS};
use crate::requantize::PerChannelQuant;
use crate::table_s8::{apply, Table, TABLE_LEN};
use crate::{
    conv2d_leaky_s8, conv2d_s8, fully_connected_leaky_s8, fully_connected_s8, max_pool_s8, top_k_s8, Error, FcParams,
};

/// A model ready to run, with its scratch memory and the width `K` of its codes.
///
/// ```
/// use autoencoder_core::{Autoencoder, Model};
/// # fn demo(blob: &[u8]) -> Result<(), autoencoder_core::ModelError> {
/// // `blob` is a model file exported by `trainer export`, e.g. include_bytes!("fc.aeq").
/// let model = Model::from_bytes(blob)?;
/// let mut scratch = [0i8; 2 * 784]; // at least model.scratch_len()
/// let mut fc: Autoencoder<'_, '_, 64> = Autoencoder::new(model, &mut scratch)?;
/// let image = [0u8; 784];
/// let code: [i8; 64] = fc.encode(&image)?;
/// let clean: [u8; 784] = fc.denoise(&image)?;
/// # let _ = (code, clean);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Autoencoder<'m, 's, const K: usize> {
    runner: Runner<'m, 's>,
}

impl<'m, 's, const K: usize> Autoencoder<'m, 's, K> {
    /// Binds a model to its scratch memory.
    ///
    /// # Errors
    /// [`ModelError::CodeWidthMismatch`] when `K` is not the model's code width,
    /// [`ModelError::ScratchTooSmall`] when `scratch` is shorter than [`Model::scratch_len`].
    pub fn new(model: Model<'m>, scratch: &'s mut [i8]) -> Result<Self, ModelError> {
        if model.code_len() != K {
            return Err(ModelError::CodeWidthMismatch {
                model: model.code_len(),
                requested: K,
            });
        }
        Ok(Self {
            runner: Runner::new(model, scratch)?,
        })
    }

    /// The model being run.
    pub fn model(&self) -> &Model<'m> {
        self.runner.model()
    }

    /// The int8 code of an image (pixels 0..=255, quantized with scale 1/255 and zero point
    /// -128): the encoder's output, in the units of [`Model::code_quant`].
    ///
    /// # Errors
    /// None for a model that loaded: the load checks exclude every error a kernel could report.
    pub fn encode(&mut self, image: &[u8; PIXELS]) -> Result<[i8; K], ModelError> {
        let mut code = [0i8; K];
        self.runner.encode_into(image, &mut code)?;
        Ok(code)
    }

    /// The image the decoder makes of a code: each output code `q` as the byte `q + 128`, so for
    /// a LeakyReLU output (scale 1/255, zero point -128) the byte is the pixel; for a logistic
    /// output (scale 1/256) it is the pixel in 256ths.
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn decode(&mut self, code: &[i8; K]) -> Result<[u8; PIXELS], ModelError> {
        let mut image = [0u8; PIXELS];
        self.runner.decode_into(code, &mut image)?;
        Ok(image)
    }

    /// Encodes then decodes an image: the denoised (reconstructed) image, as [`decode`] returns
    /// it.
    ///
    /// [`decode`]: Autoencoder::decode
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn denoise(&mut self, image: &[u8; PIXELS]) -> Result<[u8; PIXELS], ModelError> {
        let mut out = [0u8; PIXELS];
        self.runner.denoise_into(image, &mut out)?;
        Ok(out)
    }
}

/// The same as [`Autoencoder`] with the code width known only at run time (tools that handle
/// any model); codes are slices whose length is checked on each call.
#[derive(Debug)]
pub struct Runner<'m, 's> {
    model: Model<'m>,
    scratch: &'s mut [i8],
}

impl<'m, 's> Runner<'m, 's> {
    /// Binds a model to its scratch memory.
    ///
    /// # Errors
    /// [`ModelError::ScratchTooSmall`] when `scratch` is shorter than [`Model::scratch_len`].
    pub fn new(model: Model<'m>, scratch: &'s mut [i8]) -> Result<Self, ModelError> {
        if scratch.len() < model.scratch_len() {
            return Err(ModelError::ScratchTooSmall {
                needed: model.scratch_len(),
                actual: scratch.len(),
            });
        }
        Ok(Self { model, scratch })
    }

    /// The model being run.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// [`Autoencoder::encode`] into `code`.
    ///
    /// # Errors
    /// [`ModelError::CodeWidthMismatch`] when `code` is not [`Model::code_len`] long.
    pub fn encode_into(&mut self, image: &[u8; PIXELS], code: &mut [i8]) -> Result<(), ModelError> {
        self.check_code(code.len())?;
        let encoder = usize::from(self.model.body().code_after);
        let (a, _) = self.halves();
        for (q, &p) in a.iter_mut().zip(image.iter()) {
            *q = pixel_to_code(p);
        }
        let in_a = self.run(0, encoder, true)?;
        code.copy_from_slice(self.activation(in_a, code.len())?);
        Ok(())
    }

    /// [`Autoencoder::decode`] into `image`.
    ///
    /// # Errors
    /// [`ModelError::CodeWidthMismatch`] when `code` is not [`Model::code_len`] long.
    pub fn decode_into(&mut self, code: &[i8], image: &mut [u8; PIXELS]) -> Result<(), ModelError> {
        self.check_code(code.len())?;
        let encoder = usize::from(self.model.body().code_after);
        let layers = self.model.layers().len();
        let (a, _) = self.halves();
        for (q, &c) in a.iter_mut().zip(code.iter()) {
            *q = c;
        }
        let in_a = self.run(encoder, layers, true)?;
        self.image(in_a, image)
    }

    /// [`Autoencoder::denoise`] into `out`.
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn denoise_into(&mut self, image: &[u8; PIXELS], out: &mut [u8; PIXELS]) -> Result<(), ModelError> {
        let layers = self.model.layers().len();
        let (a, _) = self.halves();
        for (q, &p) in a.iter_mut().zip(image.iter()) {
            *q = pixel_to_code(p);
        }
        let in_a = self.run(0, layers, true)?;
        self.image(in_a, out)
    }

    fn check_code(&self, len: usize) -> Result<(), ModelError> {
        if len == self.model.code_len() {
            Ok(())
        } else {
            Err(ModelError::CodeWidthMismatch {
                model: self.model.code_len(),
                requested: len,
            })
        }
    }

    /// The two activation buffers.
    fn halves(&mut self) -> (&mut [i8], &mut [i8]) {
        let half = self.model.max_activation_len();
        let (a, rest) = self.scratch.split_at_mut(half.min(self.scratch.len()));
        let b_len = half.min(rest.len());
        (a, rest.split_at_mut(b_len).0)
    }

    /// The first `len` codes of the buffer holding the current activation.
    fn activation(&mut self, in_a: bool, len: usize) -> Result<&[i8], ModelError> {
        let (a, b) = self.halves();
        let buffer = if in_a { a } else { b };
        let actual = buffer.len();
        buffer
            .get(..len)
            .ok_or(ModelError::ScratchTooSmall { needed: len, actual })
    }

    fn image(&mut self, in_a: bool, image: &mut [u8; PIXELS]) -> Result<(), ModelError> {
        for (p, &q) in image.iter_mut().zip(self.activation(in_a, PIXELS)?) {
            *p = code_to_pixel(q);
        }
        Ok(())
    }

    /// Runs layers `from..to` on the activation in buffer `a` (if `in_a`) or `b`; returns where
    /// the result is.
    fn run(&mut self, from: usize, to: usize, mut in_a: bool) -> Result<bool, ModelError> {
        let model = &self.model;
        let half = model.max_activation_len();
        let (a, rest) = self.scratch.split_at_mut(half.min(self.scratch.len()));
        let actual = a.len() + rest.len();
        let b = rest.get_mut(..half).ok_or(ModelError::ScratchTooSmall {
            needed: 2 * half,
            actual,
        })?;
        // Length and zero point of the activation entering layer `from`.
        let (mut len, mut zero_point) = entry_shape(model, from);
        for (index, layer) in model.layers().iter().enumerate().take(to).skip(from) {
            let (src, dst) = if in_a { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
            let step =
                run_layer(layer, len, zero_point, src, dst).map_err(|error| ModelError::Layer { index, error })?;
            len = step.len;
            zero_point = step.zero_point;
            if step.swapped {
                in_a = !in_a;
            }
        }
        Ok(in_a)
    }
}

/// A u8 pixel as an int8 code of scale 1/255 and zero point -128: `p - 128`.
#[inline]
pub fn pixel_to_code(p: u8) -> i8 {
    (p ^ 0x80) as i8
}

/// An int8 output code as a byte: `q + 128`.
#[inline]
pub fn code_to_pixel(q: i8) -> u8 {
    (q as u8) ^ 0x80
}

/// What a layer left behind.
struct Step {
    len: usize,
    zero_point: i32,
    /// The result is in the other buffer.
    swapped: bool,
}

/// Length and zero point of the activation entering layer `index` (the model is checked, so
/// this just follows the chain).
fn entry_shape(model: &Model<'_>, index: usize) -> (usize, i32) {
    let body = model.body();
    (body.len_after(index), body.quant_after(index).zero_point)
}

/// Runs one layer from `src[..len]` (in place when it can).
fn run_layer(layer: &Layer<'_>, len: usize, zero_point: i32, src: &mut [i8], dst: &mut [i8]) -> Result<Step, Error> {
    let input = src.get(..len).ok_or(short("input", len, src.len()))?;
    match *layer {
        Layer::FullyConnected {
            outputs, ref params, ..
        } => {
            let outputs = crate::model::to_usize(outputs);
            let output = dst.get_mut(..outputs).ok_or(short("output", outputs, 0))?;
            fully_connected(params, None, zero_point, input, output)?;
            Ok(Step {
                len: outputs,
                zero_point: params.output.zero_point,
                swapped: true,
            })
        }
        Layer::FullyConnectedLeakyRelu {
            outputs,
            ref params,
            negative_multipliers,
            negative_shifts,
            ..
        } => {
            let outputs = crate::model::to_usize(outputs);
            let output = dst.get_mut(..outputs).ok_or(short("output", outputs, 0))?;
            let negative = Weights {
                multipliers: negative_multipliers,
                shifts: negative_shifts,
                ..*params
            };
            fully_connected(params, Some(&negative), zero_point, input, output)?;
            Ok(Step {
                len: outputs,
                zero_point: params.output.zero_point,
                swapped: true,
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
            convolution(&geometry, params, None, zero_point, input, dst)
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
            let geometry = conv_geometry(height, width, in_channels, out_channels, kernel);
            let negative = Weights {
                multipliers: negative_multipliers,
                shifts: negative_shifts,
                ..*params
            };
            convolution(&geometry, params, Some(&negative), zero_point, input, dst)
        }
        Layer::MaxPool2d {
            height,
            width,
            channels,
        } => {
            let geometry = pool_geometry(height, width, channels);
            let out_len = geometry.output_len()?;
            let output = dst.get_mut(..out_len).ok_or(short("output", out_len, 0))?;
            max_pool_s8(&geometry, input, output)?;
            Ok(Step {
                len: out_len,
                zero_point,
                swapped: true,
            })
        }
        Layer::Table { table, output, .. } => {
            let entries: &[u8; TABLE_LEN] = table.try_into().map_err(|_| short("table", TABLE_LEN, table.len()))?;
            let table = Table::from_entries(entries.map(|e| e as i8));
            let out = dst.get_mut(..len).ok_or(short("output", len, 0))?;
            apply(&table, input, out)?;
            Ok(Step {
                len,
                zero_point: output.zero_point,
                swapped: true,
            })
        }
        Layer::TopK { k } => {
            let codes = src.get_mut(..len).ok_or(short("input", len, 0))?;
            top_k_s8(crate::model::to_usize(k), zero_point, codes)?;
            Ok(Step {
                len,
                zero_point,
                swapped: false,
            })
        }
    }
}

/// A convolution (with a fused LeakyReLU when `negative` holds its negative side) into `dst`.
fn convolution(
    geometry: &crate::Conv2dGeometry,
    params: &Weights<'_>,
    negative: Option<&Weights<'_>>,
    zero_point: i32,
    input: &[i8],
    dst: &mut [i8],
) -> Result<Step, Error> {
    let out_len = geometry.output_len()?;
    let output = dst.get_mut(..out_len).ok_or(short("output", out_len, 0))?;
    let channels = geometry.out_channels;
    let mut bias = [0i32; CHANNEL_CHUNK];
    let mut multipliers = [0i32; CHANNEL_CHUNK];
    let mut shifts = [0i32; CHANNEL_CHUNK];
    let (bias, quant) = decode_channels(params, 0, channels, &mut bias, &mut multipliers, &mut shifts)?;
    let filters: &[i8] = bytemuck::cast_slice(params.weights);
    let fc = FcParams::new(zero_point, params.output.zero_point);
    match negative {
        None => conv2d_s8(geometry, &fc, &quant, filters, bias, input, output)?,
        Some(negative) => {
            let mut negative_bias = [0i32; CHANNEL_CHUNK];
            let mut negative_multipliers = [0i32; CHANNEL_CHUNK];
            let mut negative_shifts = [0i32; CHANNEL_CHUNK];
            let (_, negative) = decode_channels(
                negative,
                0,
                channels,
                &mut negative_bias,
                &mut negative_multipliers,
                &mut negative_shifts,
            )?;
            conv2d_leaky_s8(geometry, &fc, &quant, &negative, filters, bias, input, output)?;
        }
    }
    Ok(Step {
        len: out_len,
        zero_point: params.output.zero_point,
        swapped: true,
    })
}

/// A fully connected layer of any width, `CHANNEL_CHUNK` outputs per kernel call so that the
/// per-channel parameters can be decoded from their byte arrays onto the stack; with a fused
/// LeakyReLU when `negative` holds its negative-side multipliers and shifts.
fn fully_connected(
    params: &Weights<'_>,
    negative: Option<&Weights<'_>>,
    input_zero_point: i32,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let weights: &[i8] = bytemuck::cast_slice(params.weights);
    let fc = FcParams::new(input_zero_point, params.output.zero_point);
    let n_in = input.len();
    let mut bias = [0i32; CHANNEL_CHUNK];
    let mut multipliers = [0i32; CHANNEL_CHUNK];
    let mut shifts = [0i32; CHANNEL_CHUNK];
    for (chunk, out) in output.chunks_mut(CHANNEL_CHUNK).enumerate() {
        let start = chunk * CHANNEL_CHUNK;
        let n = out.len();
        let (bias, quant) = decode_channels(params, start, n, &mut bias, &mut multipliers, &mut shifts)?;
        let rows =
            weights
                .get(start * n_in..(start + n) * n_in)
                .ok_or(short("weights", (start + n) * n_in, weights.len()))?;
        match negative {
            None => fully_connected_s8(&fc, &quant, rows, bias, input, out)?,
            Some(negative) => {
                let mut negative_bias = [0i32; CHANNEL_CHUNK];
                let mut negative_multipliers = [0i32; CHANNEL_CHUNK];
                let mut negative_shifts = [0i32; CHANNEL_CHUNK];
                let (_, negative) = decode_channels(
                    negative,
                    start,
                    n,
                    &mut negative_bias,
                    &mut negative_multipliers,
                    &mut negative_shifts,
                )?;
                fully_connected_leaky_s8(&fc, &quant, &negative, rows, bias, input, out)?;
            }
        }
    }
    Ok(())
}

/// Decodes the bias, multipliers and shifts of channels `start..start + n` (n at most
/// `CHANNEL_CHUNK`) into the given arrays.
fn decode_channels<'b>(
    params: &Weights<'_>,
    start: usize,
    n: usize,
    bias: &'b mut [i32; CHANNEL_CHUNK],
    multipliers: &'b mut [i32; CHANNEL_CHUNK],
    shifts: &'b mut [i32; CHANNEL_CHUNK],
) -> Result<(&'b [i32], PerChannelQuant<'b>), Error> {
    let words = |bytes: &[u8], out: &mut [i32; CHANNEL_CHUNK], operand| -> Result<(), Error> {
        let chunk = bytes
            .get(start * 4..(start + n) * 4)
            .ok_or(short(operand, (start + n) * 4, bytes.len()))?;
        for (x, b) in out.iter_mut().zip(chunk.chunks_exact(4)) {
            *x = le_i32(b);
        }
        Ok(())
    };
    words(params.bias, bias, "bias")?;
    words(params.multipliers, multipliers, "multipliers")?;
    let chunk = params
        .shifts
        .get(start..start + n)
        .ok_or(short("shifts", start + n, params.shifts.len()))?;
    for (x, &b) in shifts.iter_mut().zip(chunk) {
        *x = i32::from(b as i8);
    }
    let bias = bias.get(..n).ok_or(short("bias", n, CHANNEL_CHUNK))?;
    let quant = PerChannelQuant {
        multipliers: multipliers.get(..n).ok_or(short("multipliers", n, CHANNEL_CHUNK))?,
        shifts: shifts.get(..n).ok_or(short("shifts", n, CHANNEL_CHUNK))?,
    };
    Ok((bias, quant))
}

fn short(operand: &'static str, expected: usize, actual: usize) -> Error {
    Error::ShapeMismatch {
        operand,
        expected,
        actual,
    }
}
