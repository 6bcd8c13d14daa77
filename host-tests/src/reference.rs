//! The reference: the core's runner on the host.

use autoencoder_core::{Model, ModelError, Runner, PIXELS};

/// Codes, denoised images and anomaly scores of a run of u8 images, one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// The model's code width.
    pub code_len: usize,
    /// `encode_u8` of every image: `code_len` codes each.
    pub codes: Vec<i8>,
    /// `denoise` of every image: N bytes each.
    pub images: Vec<u8>,
    /// `anomaly_score_u8` of every image.
    pub scores: Vec<u32>,
}

/// Encodes, denoises and scores every MNIST image with the model in `blob` (`encode_u8`,
/// `denoise`, `anomaly_score_u8`),
/// as [`Autoencoder`](autoencoder_core::Autoencoder) does (it is [`Runner`] with the widths in
/// its type).
///
/// # Errors
/// The model's load error, or [`ModelError::InputWidthMismatch`] for a model that does not
/// take 784 values.
pub fn run(blob: &[u8], images: &[[u8; PIXELS]]) -> Result<Outputs, ModelError> {
    run_model(Model::from_bytes(blob)?, images.as_flattened())
}

/// [`run`] with a model already loaded, on images of the model's N bytes one after the other.
///
/// # Errors
/// The runner's error (none for a loaded model, enough scratch and whole images).
pub fn run_model(model: Model<'_>, images: &[u8]) -> Result<Outputs, ModelError> {
    let (n, code_len) = (model.input_len(), model.code_len());
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model, &mut scratch)?;
    let count = images.len() / n;
    let mut outputs = Outputs {
        code_len,
        codes: vec![0; count * code_len],
        images: vec![0; count * n],
        scores: Vec::with_capacity(count),
    };
    let codes = outputs.codes.chunks_exact_mut(code_len.max(1));
    let denoised = outputs.images.chunks_exact_mut(n);
    for ((image, code), out) in images.chunks_exact(n).zip(codes).zip(denoised) {
        runner.encode_u8_into(image, code)?;
        runner.denoise_into(image, out)?;
        outputs.scores.push(runner.anomaly_score_u8(image)?);
    }
    Ok(outputs)
}

/// Codes and reconstructions of a run of raw f32 samples, one after the other.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatOutputs {
    /// The model's code width.
    pub code_len: usize,
    /// `encode_f32` of every sample: `code_len` codes each.
    pub codes: Vec<i8>,
    /// `decode` of every code: the int8 output, N codes each.
    pub decoded: Vec<i8>,
    /// `reconstruct_f32` of every sample: the output in raw units, N values each.
    pub values: Vec<f32>,
    /// `anomaly_score_f32` of every sample.
    pub scores: Vec<u32>,
}

/// Encodes every raw float sample (`encode_f32`), decodes its code (`decode`), reconstructs it
/// in raw units (`reconstruct_f32`, which encodes again, then decodes and dequantizes) and
/// scores it (`anomaly_score_f32`).
///
/// # Errors
/// The runner's error: [`ModelError::NotANumber`] for a NaN in a sample.
pub fn run_floats(model: Model<'_>, samples: &[f32]) -> Result<FloatOutputs, ModelError> {
    let (n, code_len) = (model.input_len(), model.code_len());
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model, &mut scratch)?;
    let count = samples.len() / n;
    let mut outputs = FloatOutputs {
        code_len,
        codes: vec![0; count * code_len],
        decoded: vec![0; count * n],
        values: vec![0.0; count * n],
        scores: Vec::with_capacity(count),
    };
    let codes = outputs.codes.chunks_exact_mut(code_len.max(1));
    let decoded = outputs.decoded.chunks_exact_mut(n);
    let values = outputs.values.chunks_exact_mut(n);
    for (((sample, code), decoded), values) in samples.chunks_exact(n).zip(codes).zip(decoded).zip(values) {
        runner.encode_f32_into(sample, code)?;
        runner.decode_into(code, decoded)?;
        runner.reconstruct_f32_into(sample, values)?;
        outputs.scores.push(runner.anomaly_score_f32(sample)?);
    }
    Ok(outputs)
}
