//! Fixed-size encode, decode and reconstruct of a loaded [`Model`], with caller-provided scratch.
//!
//! The sizes are in the types: an input (and an output) is N values, `[i8; N]`, `[u8; N]` or
//! `[f32; N]` with `N` the model's input length, a code is `[i8; K]` with `K` the model's code
//! width; both are checked once by [`Autoencoder::new`] together with the scratch length. After
//! that, running never fails on a model that [`Model::from_bytes`] accepted, except on a float
//! input holding a NaN ([`ModelError::NotANumber`]); the other errors in the `Result`s are those
//! a kernel would report, which the load checks have already excluded.
//!
//! Three forms of input and output: int8 codes as the model computes them (`encode`, `decode`,
//! `reconstruct`); raw samples as u8 or f32, scaled and quantized on the device with the
//! model's [`InputScaling`](crate::model::InputScaling) and input quantization, and outputs
//! dequantized and unscaled back ([`quantize_f32`](mod@crate::quantize_f32)); and for the MNIST
//! models, u8 pixels in and out (`denoise`).

use crate::anomaly_score_s8::partial_score;
use crate::fully_connected_s8::row_sum_chunks;
#[cfg(not(arm_dsp))]
use crate::model::le_i32;
use crate::model::{conv_geometry, pool_geometry, Layer, Model, ModelError, Weights, CHANNEL_CHUNK};
use crate::quantize_f32::{dequantize_f32, quantize_f32, quantize_u8};
use crate::requantize::requantize_to_s8_validated;
#[cfg(not(arm_dsp))]
use crate::requantize::PerChannelQuant;
use crate::table_s8::{apply, Table, TABLE_LEN};
#[cfg(not(arm_dsp))]
use crate::{conv2d_leaky_s8, conv2d_s8, FcParams};
#[cfg(doc)]
use crate::{fully_connected_leaky_s8, fully_connected_s8};
use crate::{max_pool_s8, top_k_s8, Error};

/// A model ready to run, with its scratch memory, its input length `N` and its code width `K`.
///
/// ```
/// use autoencoder_core::{Autoencoder, Model};
/// # fn demo(blob: &[u8]) -> Result<(), autoencoder_core::ModelError> {
/// // `blob` is a model file exported by `trainer export`, e.g. include_bytes!("fc.aeq").
/// let model = Model::from_bytes(blob)?;
/// let mut scratch = [0i8; 2 * 784]; // at least model.scratch_len()
/// let mut fc: Autoencoder<'_, '_, 784, 64> = Autoencoder::new(model, &mut scratch)?;
/// let image = [0u8; 784];
/// let code: [i8; 64] = fc.encode_u8(&image)?;
/// let clean: [u8; 784] = fc.denoise(&image)?;
/// let pixels: [f32; 784] = fc.decode_f32(&code)?; // in the units of the raw input, 0..=255
/// # let _ = (clean, pixels);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Autoencoder<'m, 's, const N: usize, const K: usize> {
    runner: Runner<'m, 's>,
}

impl<'m, 's, const N: usize, const K: usize> Autoencoder<'m, 's, N, K> {
    /// Binds a model to its scratch memory.
    ///
    /// # Errors
    /// [`ModelError::InputWidthMismatch`] when `N` is not the model's input length,
    /// [`ModelError::CodeWidthMismatch`] when `K` is not its code width,
    /// [`ModelError::ScratchTooSmall`] when `scratch` is shorter than [`Model::scratch_len`].
    pub fn new(model: Model<'m>, scratch: &'s mut [i8]) -> Result<Self, ModelError> {
        if model.input_len() != N {
            return Err(ModelError::InputWidthMismatch {
                model: model.input_len(),
                requested: N,
            });
        }
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

    /// The int8 code of an input already quantized with [`Model::input_quant`]: the encoder's
    /// output, in the units of [`Model::code_quant`].
    ///
    /// # Errors
    /// None for a model that loaded: the load checks exclude every error a kernel could report.
    pub fn encode(&mut self, input: &[i8; N]) -> Result<[i8; K], ModelError> {
        let mut code = [0i8; K];
        self.runner.encode_into(input, &mut code)?;
        Ok(code)
    }

    /// The int8 code of raw u8 samples, scaled and quantized by the model
    /// ([`quantize_u8`](crate::quantize_f32::quantize_u8): for the MNIST models a pixel `p` is
    /// the code `p - 128`).
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn encode_u8(&mut self, input: &[u8; N]) -> Result<[i8; K], ModelError> {
        let mut code = [0i8; K];
        self.runner.encode_u8_into(input, &mut code)?;
        Ok(code)
    }

    /// The int8 code of raw float samples, scaled and quantized by the model as TFLM's
    /// `QUANTIZE` does ([`quantize_f32`](crate::quantize_f32::quantize_f32)).
    ///
    /// # Errors
    /// [`ModelError::NotANumber`] for a NaN in `input`.
    pub fn encode_f32(&mut self, input: &[f32; N]) -> Result<[i8; K], ModelError> {
        let mut code = [0i8; K];
        self.runner.encode_f32_into(input, &mut code)?;
        Ok(code)
    }

    /// The decoder's int8 output for a code, in the units of [`Model::output_quant`].
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn decode(&mut self, code: &[i8; K]) -> Result<[i8; N], ModelError> {
        let mut output = [0i8; N];
        self.runner.decode_into(code, &mut output)?;
        Ok(output)
    }

    /// The decoder's output with each int8 code `q` as the byte `q + 128`: for the MNIST models'
    /// LeakyReLU output (scale 1/255, zero point -128) the byte is the pixel; for a logistic
    /// output (scale 1/256) it is the pixel in 256ths.
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn decode_u8(&mut self, code: &[i8; K]) -> Result<[u8; N], ModelError> {
        let mut output = [0u8; N];
        self.runner.decode_u8_into(code, &mut output)?;
        Ok(output)
    }

    /// The decoder's output dequantized and unscaled into the units of the raw input, as TFLM's
    /// `DEQUANTIZE` then the inverse of the input scaling
    /// ([`dequantize_f32`](crate::quantize_f32::dequantize_f32)).
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn decode_f32(&mut self, code: &[i8; K]) -> Result<[f32; N], ModelError> {
        let mut output = [0f32; N];
        self.runner.decode_f32_into(code, &mut output)?;
        Ok(output)
    }

    /// Encodes then decodes a quantized input: the int8 reconstruction, as [`decode`] returns
    /// it.
    ///
    /// [`decode`]: Autoencoder::decode
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn reconstruct(&mut self, input: &[i8; N]) -> Result<[i8; N], ModelError> {
        let mut output = [0i8; N];
        self.runner.reconstruct_into(input, &mut output)?;
        Ok(output)
    }

    /// Encodes then decodes raw float samples: the reconstruction in raw units, as
    /// [`encode_f32`] reads and [`decode_f32`] returns them.
    ///
    /// [`encode_f32`]: Autoencoder::encode_f32
    /// [`decode_f32`]: Autoencoder::decode_f32
    ///
    /// # Errors
    /// [`ModelError::NotANumber`] for a NaN in `input`.
    pub fn reconstruct_f32(&mut self, input: &[f32; N]) -> Result<[f32; N], ModelError> {
        let mut output = [0f32; N];
        self.runner.reconstruct_f32_into(input, &mut output)?;
        Ok(output)
    }

    /// Encodes then decodes raw u8 samples, as [`encode_u8`] reads and [`decode_u8`] returns
    /// them: for the MNIST models, the denoised (reconstructed) image of an image.
    ///
    /// [`encode_u8`]: Autoencoder::encode_u8
    /// [`decode_u8`]: Autoencoder::decode_u8
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn denoise(&mut self, input: &[u8; N]) -> Result<[u8; N], ModelError> {
        let mut output = [0u8; N];
        self.runner.denoise_into(input, &mut output)?;
        Ok(output)
    }

    /// The anomaly score of a quantized input: the sum of squared differences between the
    /// input codes and the reconstruction requantized into the input's quantization
    /// ([`anomaly_score_s8`](mod@crate::anomaly_score_s8)). Higher is more anomalous.
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn anomaly_score(&mut self, input: &[i8; N]) -> Result<u32, ModelError> {
        self.runner.anomaly_score(input)
    }

    /// The anomaly score of raw u8 samples, quantized as [`encode_u8`] does.
    ///
    /// [`encode_u8`]: Autoencoder::encode_u8
    ///
    /// # Errors
    /// None for a model that loaded.
    pub fn anomaly_score_u8(&mut self, input: &[u8; N]) -> Result<u32, ModelError> {
        self.runner.anomaly_score_u8(input)
    }

    /// The anomaly score of raw float samples, scaled and quantized on the device as
    /// [`encode_f32`] does.
    ///
    /// [`encode_f32`]: Autoencoder::encode_f32
    ///
    /// # Errors
    /// [`ModelError::NotANumber`] for a NaN in `input`.
    pub fn anomaly_score_f32(&mut self, input: &[f32; N]) -> Result<u32, ModelError> {
        self.runner.anomaly_score_f32(input)
    }

    /// Whether the quantized input's [anomaly score](Autoencoder::anomaly_score) is above the
    /// threshold stored in the model.
    ///
    /// # Errors
    /// [`ModelError::NoThreshold`] when the model was exported without one.
    pub fn is_anomaly(&mut self, input: &[i8; N]) -> Result<bool, ModelError> {
        self.runner.is_anomaly(input)
    }

    /// [`Autoencoder::is_anomaly`] of raw float samples.
    ///
    /// # Errors
    /// [`ModelError::NoThreshold`] when the model was exported without one,
    /// [`ModelError::NotANumber`] for a NaN in `input`.
    pub fn is_anomaly_f32(&mut self, input: &[f32; N]) -> Result<bool, ModelError> {
        self.runner.is_anomaly_f32(input)
    }
}

/// The same as [`Autoencoder`] with the widths known only at run time (tools that handle any
/// model): inputs, outputs and codes are slices whose lengths are checked on each call, before
/// anything is written.
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
    /// [`ModelError::InputWidthMismatch`] when `input` is not [`Model::input_len`] long,
    /// [`ModelError::CodeWidthMismatch`] when `code` is not [`Model::code_len`] long.
    pub fn encode_into(&mut self, input: &[i8], code: &mut [i8]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_code(code.len())?;
        self.load(|a| copy_codes(input, a))?;
        self.encoder_into(code)
    }

    /// [`Autoencoder::encode_u8`] into `code`.
    ///
    /// # Errors
    /// As [`Runner::encode_into`].
    pub fn encode_u8_into(&mut self, input: &[u8], code: &mut [i8]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_code(code.len())?;
        self.load_u8(input)?;
        self.encoder_into(code)
    }

    /// [`Autoencoder::encode_f32`] into `code`.
    ///
    /// # Errors
    /// As [`Runner::encode_into`], and [`ModelError::NotANumber`] for a NaN in `input` (then
    /// `code` is untouched).
    pub fn encode_f32_into(&mut self, input: &[f32], code: &mut [i8]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_code(code.len())?;
        self.load_f32(input)?;
        self.encoder_into(code)
    }

    /// [`Autoencoder::decode`] into `output`.
    ///
    /// # Errors
    /// [`ModelError::CodeWidthMismatch`] when `code` is not [`Model::code_len`] long,
    /// [`ModelError::InputWidthMismatch`] when `output` is not [`Model::input_len`] long.
    pub fn decode_into(&mut self, code: &[i8], output: &mut [i8]) -> Result<(), ModelError> {
        self.check_code(code.len())?;
        self.check_input(output.len())?;
        let in_a = self.decoder(code)?;
        copy_codes(self.activation(in_a, output.len())?, output)
    }

    /// [`Autoencoder::decode_u8`] into `output`.
    ///
    /// # Errors
    /// As [`Runner::decode_into`].
    pub fn decode_u8_into(&mut self, code: &[i8], output: &mut [u8]) -> Result<(), ModelError> {
        self.check_code(code.len())?;
        self.check_input(output.len())?;
        let in_a = self.decoder(code)?;
        self.output_u8(in_a, output)
    }

    /// [`Autoencoder::decode_f32`] into `output`.
    ///
    /// # Errors
    /// As [`Runner::decode_into`].
    pub fn decode_f32_into(&mut self, code: &[i8], output: &mut [f32]) -> Result<(), ModelError> {
        self.check_code(code.len())?;
        self.check_input(output.len())?;
        let in_a = self.decoder(code)?;
        self.output_f32(in_a, output)
    }

    /// [`Autoencoder::reconstruct`] into `output`.
    ///
    /// # Errors
    /// [`ModelError::InputWidthMismatch`] when `input` or `output` is not [`Model::input_len`]
    /// long.
    pub fn reconstruct_into(&mut self, input: &[i8], output: &mut [i8]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_input(output.len())?;
        self.load(|a| copy_codes(input, a))?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        copy_codes(self.activation(in_a, output.len())?, output)
    }

    /// [`Autoencoder::reconstruct_f32`] into `output`.
    ///
    /// # Errors
    /// As [`Runner::reconstruct_into`], and [`ModelError::NotANumber`] for a NaN in `input`
    /// (then `output` is untouched).
    pub fn reconstruct_f32_into(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_input(output.len())?;
        self.load_f32(input)?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        self.output_f32(in_a, output)
    }

    /// [`Autoencoder::denoise`] into `output`.
    ///
    /// # Errors
    /// As [`Runner::reconstruct_into`].
    pub fn denoise_into(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), ModelError> {
        self.check_input(input.len())?;
        self.check_input(output.len())?;
        self.load_u8(input)?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        self.output_u8(in_a, output)
    }

    /// [`Autoencoder::anomaly_score`] of a slice.
    ///
    /// # Errors
    /// [`ModelError::InputWidthMismatch`] when `input` is not [`Model::input_len`] long.
    pub fn anomaly_score(&mut self, input: &[i8]) -> Result<u32, ModelError> {
        self.check_input(input.len())?;
        self.load(|a| copy_codes(input, a))?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        let params = self.model.score_params();
        let output = self.activation(in_a, input.len())?;
        Ok(partial_score(input, output, &params, 0))
    }

    /// [`Autoencoder::anomaly_score_u8`] of a slice.
    ///
    /// # Errors
    /// As [`Runner::anomaly_score`].
    pub fn anomaly_score_u8(&mut self, input: &[u8]) -> Result<u32, ModelError> {
        self.check_input(input.len())?;
        self.load_u8(input)?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        let (scaling, quant) = (self.model.input_scaling(), self.model.input_quant());
        self.score_in_chunks(in_a, input.len(), |from, to, codes| {
            quantize_u8(
                input.get(from..to).unwrap_or(&[]),
                &scaling.features(from, to),
                quant,
                codes,
            )
        })
    }

    /// [`Autoencoder::anomaly_score_f32`] of a slice.
    ///
    /// # Errors
    /// As [`Runner::anomaly_score`], and [`ModelError::NotANumber`] for a NaN in `input`.
    pub fn anomaly_score_f32(&mut self, input: &[f32]) -> Result<u32, ModelError> {
        self.check_input(input.len())?;
        self.load_f32(input)?;
        let in_a = self.run(0, self.model.layers().len(), true)?;
        let (scaling, quant) = (self.model.input_scaling(), self.model.input_quant());
        self.score_in_chunks(in_a, input.len(), |from, to, codes| {
            quantize_f32(
                input.get(from..to).unwrap_or(&[]),
                &scaling.features(from, to),
                quant,
                codes,
            )
        })
    }

    /// [`Autoencoder::is_anomaly`] of a slice.
    ///
    /// # Errors
    /// [`ModelError::NoThreshold`] when the model holds no threshold (checked first, before
    /// running), and those of [`Runner::anomaly_score`].
    pub fn is_anomaly(&mut self, input: &[i8]) -> Result<bool, ModelError> {
        self.model.is_anomalous(0)?;
        let score = self.anomaly_score(input)?;
        self.model.is_anomalous(score)
    }

    /// [`Autoencoder::is_anomaly_f32`] of a slice.
    ///
    /// # Errors
    /// As [`Runner::is_anomaly`] and [`Runner::anomaly_score_f32`].
    pub fn is_anomaly_f32(&mut self, input: &[f32]) -> Result<bool, ModelError> {
        self.model.is_anomalous(0)?;
        let score = self.anomaly_score_f32(input)?;
        self.model.is_anomalous(score)
    }

    /// The score of the reconstruction in buffer `in_a`/`b` against the input, whose codes are
    /// formed again, [`CHANNEL_CHUNK`] values at a time, by `quantize(from, to, codes)` (the
    /// input's own buffer was overwritten by the layers). Quantizing is a pure function, so the
    /// codes are those the model ran on.
    fn score_in_chunks(
        &mut self,
        in_a: bool,
        len: usize,
        mut quantize: impl FnMut(usize, usize, &mut [i8]) -> Result<(), Error>,
    ) -> Result<u32, ModelError> {
        let params = self.model.score_params();
        let output = self.activation(in_a, len)?;
        let mut codes = [0i8; CHANNEL_CHUNK];
        let mut sum = 0u32;
        let mut from = 0;
        while from < len {
            let to = (from + CHANNEL_CHUNK).min(len);
            let chunk = codes.get_mut(..to - from).unwrap_or(&mut []);
            quantize(from, to, chunk).map_err(input_error)?;
            sum = partial_score(chunk, output.get(from..to).unwrap_or(&[]), &params, sum);
            from = to;
        }
        Ok(sum)
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

    fn check_input(&self, len: usize) -> Result<(), ModelError> {
        if len == self.model.input_len() {
            Ok(())
        } else {
            Err(ModelError::InputWidthMismatch {
                model: self.model.input_len(),
                requested: len,
            })
        }
    }

    /// Fills the first [`Model::input_len`] codes of buffer `a` with `fill`.
    fn load(&mut self, fill: impl FnOnce(&mut [i8]) -> Result<(), ModelError>) -> Result<(), ModelError> {
        let n = self.model.input_len();
        let (a, _) = self.halves();
        let actual = a.len();
        fill(
            a.get_mut(..n)
                .ok_or(ModelError::ScratchTooSmall { needed: n, actual })?,
        )
    }

    /// Raw u8 samples, scaled and quantized into buffer `a`.
    fn load_u8(&mut self, input: &[u8]) -> Result<(), ModelError> {
        let (scaling, quant) = (self.model.input_scaling(), self.model.input_quant());
        self.load(|a| quantize_u8(input, &scaling, quant, a).map_err(input_error))
    }

    /// Raw float samples, scaled and quantized into buffer `a`.
    fn load_f32(&mut self, input: &[f32]) -> Result<(), ModelError> {
        let (scaling, quant) = (self.model.input_scaling(), self.model.input_quant());
        self.load(|a| quantize_f32(input, &scaling, quant, a).map_err(input_error))
    }

    /// Runs the encoder on buffer `a` and copies the code out.
    fn encoder_into(&mut self, code: &mut [i8]) -> Result<(), ModelError> {
        let encoder = usize::from(self.model.body().code_after);
        let in_a = self.run(0, encoder, true)?;
        copy_codes(self.activation(in_a, code.len())?, code)
    }

    /// Runs the decoder on `code`; returns where its output is.
    fn decoder(&mut self, code: &[i8]) -> Result<bool, ModelError> {
        let encoder = usize::from(self.model.body().code_after);
        let layers = self.model.layers().len();
        let (a, _) = self.halves();
        let actual = a.len();
        let dst = a.get_mut(..code.len()).ok_or(ModelError::ScratchTooSmall {
            needed: code.len(),
            actual,
        })?;
        dst.copy_from_slice(code);
        self.run(encoder, layers, true)
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

    /// The output codes as bytes `q + 128`.
    fn output_u8(&mut self, in_a: bool, output: &mut [u8]) -> Result<(), ModelError> {
        let codes = self.activation(in_a, output.len())?;
        for (p, &q) in output.iter_mut().zip(codes) {
            *p = code_to_pixel(q);
        }
        Ok(())
    }

    /// The output codes dequantized and unscaled.
    fn output_f32(&mut self, in_a: bool, output: &mut [f32]) -> Result<(), ModelError> {
        let (scaling, quant) = (self.model.input_scaling(), self.model.output_quant());
        let codes = self.activation(in_a, output.len())?;
        dequantize_f32(codes, &scaling, quant, output).map_err(|_| ModelError::BadOutput)
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

/// Copies codes between slices of the same length (the callers check the lengths first).
fn copy_codes(src: &[i8], dst: &mut [i8]) -> Result<(), ModelError> {
    if src.len() != dst.len() {
        return Err(ModelError::InputWidthMismatch {
            model: dst.len(),
            requested: src.len(),
        });
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// What a quantization kernel's error means here: a NaN in the caller's input, or (never, for a
/// model that loaded) an input quantization the loader would have refused.
fn input_error(error: Error) -> ModelError {
    match error {
        Error::NotANumber { index } => ModelError::NotANumber { index },
        _ => ModelError::BadInput,
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
            fully_connected(params, None, input.len(), output, &mut |weights, f| {
                row_sum_chunks(weights, input, zero_point, f);
            })?;
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
            fully_connected(params, Some(&negative), input.len(), output, &mut |weights, f| {
                row_sum_chunks(weights, input, zero_point, f);
            })?;
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
fn convolution<'m>(
    geometry: &crate::Conv2dGeometry,
    params: &Weights<'m>,
    negative: Option<&Weights<'m>>,
    zero_point: i32,
    input: &[i8],
    dst: &mut [i8],
) -> Result<Step, Error> {
    let out_len = geometry.output_len()?;
    let output = dst.get_mut(..out_len).ok_or(short("output", out_len, 0))?;
    let step = Step {
        len: out_len,
        zero_point: params.output.zero_point,
        swapped: true,
    };
    // On a Cortex-M4 or M7: each output pixel is a fully connected layer of the filters over
    // the pixel's window (im2col), with that layer's `SMLAD` loop and requantization.
    #[cfg(arm_dsp)]
    {
        geometry.validate()?;
        if input.len() != geometry.input_len()? {
            return Err(short("input", geometry.input_len()?, input.len()));
        }
        let mut sums = [0; crate::fully_connected_s8::SUM_CHUNK];
        crate::conv2d_s8_dsp::for_each_window(geometry, input, output, &mut |window, pixel| {
            fully_connected(params, negative, window.total(), pixel, &mut |weights, f| {
                crate::fully_connected_s8_dsp::row_sum_chunks(weights, window, zero_point, &mut sums, f);
            })
        })?;
        Ok(step)
    }
    #[cfg(not(arm_dsp))]
    {
        convolution_portable(geometry, params, negative, zero_point, input, output)?;
        Ok(step)
    }
}

/// [`convolution`] with the portable kernels [`conv2d_s8()`] and [`conv2d_leaky_s8()`].
#[cfg(not(arm_dsp))]
fn convolution_portable(
    geometry: &crate::Conv2dGeometry,
    params: &Weights<'_>,
    negative: Option<&Weights<'_>>,
    zero_point: i32,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
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
    Ok(())
}

/// What hands a layer's row sums to the requantization: see [`fully_connected`].
type RowSums<'a> = dyn FnMut(&[i8], &mut dyn FnMut(&[i32])) + 'a;

/// A fully connected layer of any width in one pass, with a fused LeakyReLU when `negative`
/// holds its negative-side multipliers and shifts: [`fully_connected_s8()`] and
/// [`fully_connected_leaky_s8()`] on the model's arrays as they lie in the file, each output's
/// bias, multiplier and shift read as its sum comes (no per-chunk copies), the inputs centered
/// (or packed, on the DSP path) once per layer.
///
/// `sums(weights, f)` hands `f` the row sums of the weights over the layer's `n_in` inputs (see
/// [`row_sum_chunks`]): over a fully connected layer's input, or on the DSP path over a
/// convolution's window (see [`convolution`]).
fn fully_connected<'m>(
    params: &Weights<'m>,
    negative: Option<&Weights<'m>>,
    n_in: usize,
    output: &mut [i8],
    sums: &mut RowSums<'_>,
) -> Result<(), Error> {
    let weights: &[i8] = bytemuck::cast_slice(params.weights);
    let n_out = output.len();
    // The loader checked the lengths, zero points, multipliers and shifts (`check_weights`);
    // the lengths are checked again here, the rest needs no check: the requantization is
    // defined, and never panics, for any value.
    let expect = |operand, expected: usize, actual: usize| {
        if expected == actual {
            Ok(())
        } else {
            Err(short(operand, expected, actual))
        }
    };
    expect("weights", n_out.saturating_mul(n_in), weights.len())?;
    // A plain layer is a fused one whose two sides are the same.
    let negative = negative.unwrap_or(params);
    for p in [params, negative] {
        expect("bias", 4 * n_out, p.bias.len())?;
        expect("multipliers", 4 * n_out, p.multipliers.len())?;
        expect("shifts", n_out, p.shifts.len())?;
    }
    let output_zero_point = params.output.zero_point;
    // Per channel: the bias, both sides' multipliers (4 bytes each) and shifts (1 byte).
    let words = |bytes: &'m [u8]| bytes.as_chunks::<4>().0;
    let (bias, positive_multipliers, negative_multipliers) = (
        words(params.bias),
        words(params.multipliers),
        words(negative.multipliers),
    );
    let (positive_shifts, negative_shifts) = (params.shifts, negative.shifts);
    let mut done = 0;
    // `move`: the zero point and the slices by value, in registers in the loop below.
    let mut requantize = move |sums: &[i32]| {
        let range = done..done + sums.len();
        done = range.end;
        // The channels of these sums as local slices, so that their loop keeps its pointers in
        // registers.
        let (Some(y), Some(b), Some(mp), Some(sp), Some(mn), Some(sn)) = (
            output.get_mut(range.clone()),
            bias.get(range.clone()),
            positive_multipliers.get(range.clone()),
            positive_shifts.get(range.clone()),
            negative_multipliers.get(range.clone()),
            negative_shifts.get(range),
        ) else {
            return;
        };
        let channels = y.iter_mut().zip(b).zip(mp.iter().zip(sp)).zip(mn.iter().zip(sn));
        for (&sum, (((y, bias), (mp, &sp)), (mn, &sn))) in sums.iter().zip(channels) {
            let acc = i32::from_le_bytes(*bias).wrapping_add(sum);
            let (m, s) = if acc >= 0 { (mp, sp) } else { (mn, sn) };
            *y = requantize_to_s8_validated(acc, i32::from_le_bytes(*m), i32::from(s as i8), output_zero_point);
        }
    };
    if n_in == 0 {
        // No inputs: each output is its requantized bias.
        (0..n_out)
            .step_by(CHANNEL_CHUNK)
            .for_each(|_| requantize(&[0; CHANNEL_CHUNK]));
    } else {
        sums(weights, &mut requantize);
    }
    Ok(())
}

/// Decodes the bias, multipliers and shifts of channels `start..start + n` (n at most
/// `CHANNEL_CHUNK`) into the given arrays.
#[cfg(not(arm_dsp))]
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
