//! The reference: the core's runner on the host.

use autoencoder_core::{Model, ModelError, Runner, PIXELS};

/// Codes and denoised images of a run of images, one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// The model's code width.
    pub code_len: usize,
    /// `encode` of every image: `code_len` codes each.
    pub codes: Vec<i8>,
    /// `denoise` of every image: 784 bytes each.
    pub images: Vec<u8>,
}

/// Encodes and denoises every image with the model in `blob` (`encode_u8` and `denoise`), as
/// [`Autoencoder`](autoencoder_core::Autoencoder) does (it is [`Runner`] with the widths in its
/// type).
///
/// # Errors
/// The model's load error.
pub fn run(blob: &[u8], images: &[[u8; PIXELS]]) -> Result<Outputs, ModelError> {
    run_model(Model::from_bytes(blob)?, images)
}

/// [`run`] with a model already loaded.
///
/// # Errors
/// The runner's error (none for a loaded model and enough scratch).
pub fn run_model(model: Model<'_>, images: &[[u8; PIXELS]]) -> Result<Outputs, ModelError> {
    let code_len = model.code_len();
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model, &mut scratch)?;
    let mut outputs = Outputs {
        code_len,
        codes: vec![0; images.len() * code_len],
        images: vec![0; images.len() * PIXELS],
    };
    let codes = outputs.codes.chunks_exact_mut(code_len.max(1));
    let denoised = outputs.images.as_chunks_mut::<PIXELS>().0;
    for ((image, code), out) in images.iter().zip(codes).zip(denoised) {
        runner.encode_u8_into(image, code)?;
        runner.denoise_into(image, out)?;
    }
    Ok(outputs)
}
