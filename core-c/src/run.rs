//! Running a loaded model: encode, decode, reconstruct, denoise and score, for int8 codes, u8
//! samples and f32 samples. Each is the core's `Runner` function of the same name, on buffers
//! whose lengths the caller passes and the call checks.

use crate::buffers::{overlap, Buffer};
use crate::handle::{ae_model, loaded};
use crate::status::ae_status;
use autoencoder_core::{ModelError, Runner};

/// Which of the model's widths a buffer must have.
#[derive(Clone, Copy)]
enum Width {
    /// The input length N: an input, an output.
    Input,
    /// The code width K.
    Code,
    /// One value (a score).
    One,
}

impl Width {
    /// `Ok` when `len` is this width of `runner`'s model, else the core's error for it.
    fn check(self, runner: &Runner<'_, '_>, len: usize) -> Result<(), ae_status> {
        let model = runner.model();
        match self {
            Width::Input if len != model.input_len() => Err(ModelError::InputWidthMismatch {
                model: model.input_len(),
                requested: len,
            }
            .into()),
            Width::Code if len != model.code_len() => Err(ModelError::CodeWidthMismatch {
                model: model.code_len(),
                requested: len,
            }
            .into()),
            _ => Ok(()),
        }
    }
}

/// One call: the loaded model, an input buffer of width `from` and an output buffer of width
/// `to`, checked (NULL, alignment, lengths, overlap with each other and the scratch) before
/// `body` runs on them as slices.
///
/// # Safety
/// The API's contract: `model` is an `ae_model`; `input` holds `input_len` readable values and
/// `output` `output_len` writable ones, for the call.
unsafe fn call<I, O>(
    model: *mut ae_model,
    (input, input_len, from): (*const I, usize, Width),
    (output, output_len, to): (*mut O, usize, Width),
    body: impl FnOnce(&mut Runner<'static, 'static>, &[I], &mut [O]) -> Result<(), ModelError>,
) -> ae_status {
    let status = (|| {
        let input = Buffer::new_const(input, input_len)?;
        let output = Buffer::new(output, output_len)?;
        // SAFETY: the caller's contract for `model`.
        let (runner, [scratch, blob, storage]) = unsafe { loaded(model) }?;
        from.check(runner, input.len())?;
        to.check(runner, output.len())?;
        let (input_span, output_span) = (input.span(), output.span());
        // The output is written: it may overlap nothing else the call reads or writes. The
        // input is read: it may share bytes with the blob, never with the scratch.
        let output_overlaps = [&input_span, &scratch, &blob, &storage]
            .iter()
            .any(|other| overlap(&output_span, other));
        if output_overlaps || overlap(&input_span, &scratch) || overlap(&input_span, &storage) {
            return Err(ae_status::AE_BUFFERS_OVERLAP);
        }
        // SAFETY: non-null, aligned, of the model's lengths, the output disjoint from every
        // other buffer the call uses and the input from those written; readable and writable
        // for the call by the caller's contract.
        let (input, output) = unsafe { (input.slice(), output.slice_mut()) };
        body(runner, input, output).map_err(ae_status::from)
    })();
    status.err().unwrap_or(ae_status::AE_OK)
}

/// The code (K int8 values) of an int8 input (N values, in the model's input quantization).
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `code` `code_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_encode(
    model: *mut ae_model,
    input: *const i8,
    input_len: usize,
    code: *mut i8,
    code_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (code, code_len, Width::Code),
            |r, i, o| r.encode_into(i, o),
        )
    }
}

/// The code of raw u8 samples, scaled and quantized on the device as the model says.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `code` `code_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_encode_u8(
    model: *mut ae_model,
    input: *const u8,
    input_len: usize,
    code: *mut i8,
    code_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (code, code_len, Width::Code),
            |r, i, o| r.encode_u8_into(i, o),
        )
    }
}

/// The code of raw f32 samples, scaled and quantized on the device as the model says;
/// `AE_NOT_A_NUMBER` for a NaN.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `code` `code_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_encode_f32(
    model: *mut ae_model,
    input: *const f32,
    input_len: usize,
    code: *mut i8,
    code_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (code, code_len, Width::Code),
            |r, i, o| r.encode_f32_into(i, o),
        )
    }
}

/// The int8 output (N values, in the model's output quantization) of a code.
///
/// # Safety
/// `model` is an `ae_model`; `code` holds `code_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_decode(
    model: *mut ae_model,
    code: *const i8,
    code_len: usize,
    output: *mut i8,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (code, code_len, Width::Code),
            (output, output_len, Width::Input),
            |r, i, o| r.decode_into(i, o),
        )
    }
}

/// The output of a code as bytes, each int8 code `q` as `q + 128`: an MNIST model's pixels.
///
/// # Safety
/// `model` is an `ae_model`; `code` holds `code_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_decode_u8(
    model: *mut ae_model,
    code: *const i8,
    code_len: usize,
    output: *mut u8,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (code, code_len, Width::Code),
            (output, output_len, Width::Input),
            |r, i, o| r.decode_u8_into(i, o),
        )
    }
}

/// The output of a code as f32 samples, dequantized and unscaled into the raw units.
///
/// # Safety
/// `model` is an `ae_model`; `code` holds `code_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_decode_f32(
    model: *mut ae_model,
    code: *const i8,
    code_len: usize,
    output: *mut f32,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (code, code_len, Width::Code),
            (output, output_len, Width::Input),
            |r, i, o| r.decode_f32_into(i, o),
        )
    }
}

/// The int8 reconstruction of an int8 input: encode then decode, in one call.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_reconstruct(
    model: *mut ae_model,
    input: *const i8,
    input_len: usize,
    output: *mut i8,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (output, output_len, Width::Input),
            |r, i, o| r.reconstruct_into(i, o),
        )
    }
}

/// The reconstruction of raw f32 samples, in raw units; `AE_NOT_A_NUMBER` for a NaN.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_reconstruct_f32(
    model: *mut ae_model,
    input: *const f32,
    input_len: usize,
    output: *mut f32,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (output, output_len, Width::Input),
            |r, i, o| r.reconstruct_f32_into(i, o),
        )
    }
}

/// The reconstruction of u8 samples as bytes (`ae_decode_u8` of `ae_encode_u8`): an MNIST
/// model's denoised image.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `output` `output_len` writable
/// ones, for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_denoise(
    model: *mut ae_model,
    input: *const u8,
    input_len: usize,
    output: *mut u8,
    output_len: usize,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (output, output_len, Width::Input),
            |r, i, o| r.denoise_into(i, o),
        )
    }
}

/// The anomaly score of an int8 input: the integer squared error of its reconstruction, bit for
/// bit the host's (`docs/int8-arithmetic.md`, "The anomaly score").
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `score` is writable,
/// for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_anomaly_score(
    model: *mut ae_model,
    input: *const i8,
    input_len: usize,
    score: *mut u32,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (score, 1, Width::One),
            |r, i, o| {
                o.fill(r.anomaly_score(i)?);
                Ok(())
            },
        )
    }
}

/// The anomaly score of raw u8 samples.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `score` is writable,
/// for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_anomaly_score_u8(
    model: *mut ae_model,
    input: *const u8,
    input_len: usize,
    score: *mut u32,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (score, 1, Width::One),
            |r, i, o| {
                o.fill(r.anomaly_score_u8(i)?);
                Ok(())
            },
        )
    }
}

/// The anomaly score of raw f32 samples; `AE_NOT_A_NUMBER` for a NaN.
///
/// # Safety
/// `model` is an `ae_model`; `input` holds `input_len` readable values and `score` is writable,
/// for the call.
#[no_mangle]
pub unsafe extern "C" fn ae_anomaly_score_f32(
    model: *mut ae_model,
    input: *const f32,
    input_len: usize,
    score: *mut u32,
) -> ae_status {
    // SAFETY: this function's own contract, passed on.
    unsafe {
        call(
            model,
            (input, input_len, Width::Input),
            (score, 1, Width::One),
            |r, i, o| {
                o.fill(r.anomaly_score_f32(i)?);
                Ok(())
            },
        )
    }
}
