//! `ae_model`: a checked model bound to its scratch, in storage the caller provides; loading,
//! checking a blob, and what a loaded model tells.

use crate::buffers::{overlap, Buffer};
use crate::status::ae_status;
use autoencoder_core::model::InputScaling;
use autoencoder_core::{Model, Runner};
use core::mem::{align_of, size_of, MaybeUninit};
use core::ops::Range;

/// Pointer-sized words of `ae_model`'s storage: room for a model of up to 32 layers, its
/// scratch and a tag (2,696 bytes on 32-bit Cortex-M, 4,576 on a 64-bit host); a compile-time
/// check holds every build to it.
pub const AE_MODEL_WORDS: usize = 680;

/// Storage for one loaded model: a checked model, the blob and the scratch it borrows. Its
/// contents are private; declare one (a `static`, a local) and pass its address.
///
/// Ownership and lifetime: `ae_model_load` keeps pointers into the model blob (read-only) and
/// the scratch (read and written by every run); both must stay valid, and neither may be used
/// for anything else, for as long as the `ae_model` is used. Nothing needs freeing. An
/// `ae_model` may be copied byte for byte (it holds no pointer to itself), but the copies share
/// the scratch: use one at a time.
///
/// Alignment: that of `uintptr_t`, as declared; a pointer to storage that is not aligned gets
/// `AE_MISALIGNED`.
///
/// Threads: a run writes the scratch, so one `ae_model` runs in one thread (or interrupt) at a
/// time; `ae_model_get_info` and `ae_model_is_anomalous` only read it and may share it. Models
/// loaded with different scratch buffers run concurrently, also from one blob.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct ae_model {
    opaque: [usize; AE_MODEL_WORDS],
}

/// How a model scales raw samples before quantizing them (`ae_model_info.input_scaling`).
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ae_input_scaling {
    /// The raw values are the input values.
    AE_SCALING_NONE = 0,
    /// `x / 255`: u8 pixels (the MNIST models).
    AE_SCALING_UNIT = 1,
    /// `(x - min) / range` per feature.
    AE_SCALING_MIN_MAX = 2,
    /// `(x - mean) / std` per feature.
    AE_SCALING_STANDARD = 3,
}

/// What a model needs and tells: the lengths of its buffers, its quantization, its threshold.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ae_model_info {
    /// Values in an input, and in an output (N).
    pub input_len: usize,
    /// Values in a code (K).
    pub code_len: usize,
    /// Bytes of scratch the model needs.
    pub scratch_len: usize,
    /// How raw samples (`_u8`, `_f32` functions) are scaled before they are quantized.
    pub input_scaling: ae_input_scaling,
    /// The int8 input's scale: an input code `q` stands for `input_scale * (q - input_zero_point)`.
    pub input_scale: f32,
    /// The int8 input's zero point.
    pub input_zero_point: i32,
    /// The code's scale.
    pub code_scale: f32,
    /// The code's zero point.
    pub code_zero_point: i32,
    /// Whether the model holds an anomaly threshold.
    pub has_threshold: bool,
    /// The threshold: a score above it is an anomaly (0 when `has_threshold` is false).
    pub threshold: u32,
}

/// What `ae_model`'s storage holds once loaded.
#[repr(C)]
struct Loaded {
    /// [`TAG`] once a load succeeded, anything else before.
    tag: usize,
    runner: MaybeUninit<Runner<'static, 'static>>,
    /// The addresses no output may overlap: the scratch, the blob, this storage.
    taken: [Range<usize>; 3],
}

/// The tag of a loaded model ("AEQ8").
const TAG: usize = 0x3851_4541;

const _: () = assert!(
    size_of::<Loaded>() <= size_of::<ae_model>(),
    "AE_MODEL_WORDS is too small"
);
const _: () = assert!(align_of::<Loaded>() <= align_of::<ae_model>());

/// The storage at `model` if it holds a loaded model, or why it does not.
///
/// # Safety
/// `model` is null or points to an `ae_model` the caller owns.
unsafe fn slot(model: *const ae_model) -> Result<*mut Loaded, ae_status> {
    Buffer::new_const(model, 1)?;
    let slot = model.cast::<Loaded>().cast_mut();
    // SAFETY: non-null and aligned (Buffer::new_const), an `ae_model` by the caller's contract,
    // whose storage is large and aligned enough for `Loaded` (the assertions above); the tag
    // is read as a plain word.
    let tag = unsafe { core::ptr::addr_of!((*slot).tag).read() };
    if tag == TAG {
        Ok(slot)
    } else {
        Err(ae_status::AE_NOT_LOADED)
    }
}

/// The loaded model at `model`, to run (which writes its scratch), and the addresses of its
/// scratch, its blob and its storage.
///
/// # Safety
/// `model` is null or points to an `ae_model` the caller owns, not used by anything else during
/// the call.
pub(crate) unsafe fn loaded<'a>(
    model: *mut ae_model,
) -> Result<(&'a mut Runner<'static, 'static>, [Range<usize>; 3]), ae_status> {
    // SAFETY: the caller's contract.
    let slot = unsafe { slot(model) }?;
    // SAFETY: the tag is written after the runner and the scratch, by a successful load only;
    // the caller's contract makes this the only reference for the call.
    unsafe { Ok(((*slot).runner.assume_init_mut(), (*slot).taken.clone())) }
}

/// The loaded model at `model`, read only: calls that only read may share a model.
///
/// # Safety
/// `model` is null or points to an `ae_model` the caller owns, not run during the call.
unsafe fn loaded_ref<'a>(model: *const ae_model) -> Result<&'a Runner<'static, 'static>, ae_status> {
    // SAFETY: the caller's contract.
    let slot = unsafe { slot(model) }?;
    // SAFETY: as in `loaded`, shared.
    unsafe { Ok((*slot).runner.assume_init_ref()) }
}

/// Checks a model blob and binds it to a scratch buffer, in `model`'s storage.
///
/// `blob` is the model file's bytes (`trainer export`'s `.aeq`, e.g. in flash); `scratch` is
/// at least `ae_model_info.scratch_len` bytes of RAM (`ae_model_check` tells before loading,
/// `trainer inspect` on the host). Both are borrowed, not copied: see `ae_model`. Any bytes
/// are safe to pass as a blob: a corrupt or foreign file gets the status that names what is
/// wrong. On failure `model` holds no model (other calls with it return `AE_NOT_LOADED`).
///
/// # Safety
/// `model` is writable storage for an `ae_model`; `blob` holds `blob_len` readable bytes and
/// `scratch` `scratch_len` writable ones, valid as long as the model is used.
#[no_mangle]
pub unsafe extern "C" fn ae_model_load(
    model: *mut ae_model,
    blob: *const u8,
    blob_len: usize,
    scratch: *mut i8,
    scratch_len: usize,
) -> ae_status {
    let storage = match Buffer::new(model, 1) {
        Ok(storage) => storage,
        Err(status) => return status,
    };
    let loaded = model.cast::<Loaded>();
    // SAFETY: `model` is non-null and aligned storage for an `ae_model`, which holds a `Loaded`
    // (the assertions above). Unloaded first, so that any failure below leaves it unloaded.
    unsafe { core::ptr::addr_of_mut!((*loaded).tag).write(0) };
    let status = (|| {
        let blob = Buffer::new_const(blob, blob_len)?;
        let scratch = Buffer::new(scratch, scratch_len)?;
        if overlap(&scratch.span(), &blob.span()) || overlap(&scratch.span(), &storage.span()) {
            return Err(ae_status::AE_BUFFERS_OVERLAP);
        }
        // SAFETY: the caller's contract: `blob_len` readable bytes that outlive the model.
        let bytes: &'static [u8] = unsafe { blob.slice() };
        let checked = Model::from_bytes(bytes)?;
        // SAFETY: the caller's contract: `scratch_len` writable bytes that outlive the model
        // and are used by it alone; they overlap neither the blob nor the storage.
        let buffer: &'static mut [i8] = unsafe { scratch.slice_mut() };
        let runner = Runner::new(checked, buffer)?;
        // SAFETY: as above; the fields are written in place, the tag last.
        unsafe {
            core::ptr::addr_of_mut!((*loaded).runner).write(MaybeUninit::new(runner));
            core::ptr::addr_of_mut!((*loaded).taken).write([scratch.span(), blob.span(), storage.span()]);
            core::ptr::addr_of_mut!((*loaded).tag).write(TAG);
        }
        Ok(())
    })();
    status.err().unwrap_or(ae_status::AE_OK)
}

/// Checks a model blob and tells what it needs, without loading it: the scratch length to
/// provide before `ae_model_load`, the buffer lengths, the threshold.
///
/// # Safety
/// `blob` holds `blob_len` readable bytes; `info` is writable storage for an `ae_model_info`.
#[no_mangle]
pub unsafe extern "C" fn ae_model_check(blob: *const u8, blob_len: usize, info: *mut ae_model_info) -> ae_status {
    let status = (|| {
        let blob = Buffer::new_const(blob, blob_len)?;
        let info = Buffer::new(info, 1)?;
        // SAFETY: the caller's contract: `blob_len` readable bytes, read during this call only.
        let model = Model::from_bytes(unsafe { blob.slice() })?;
        // SAFETY: non-null, aligned, writable by the caller's contract.
        unsafe { info.slice_mut() }.fill(describe(&model));
        Ok(())
    })();
    status.err().unwrap_or(ae_status::AE_OK)
}

/// What a loaded model needs and tells (as `ae_model_check` of its blob).
///
/// # Safety
/// `model` is an `ae_model` (loaded or not); `info` is writable storage for an
/// `ae_model_info`.
#[no_mangle]
pub unsafe extern "C" fn ae_model_get_info(model: *const ae_model, info: *mut ae_model_info) -> ae_status {
    let status = (|| {
        // SAFETY: the caller's contract; only read.
        let runner = unsafe { loaded_ref(model) }?;
        let info = Buffer::new(info, 1)?;
        // SAFETY: non-null, aligned, writable by the caller's contract.
        unsafe { info.slice_mut() }.fill(describe(runner.model()));
        Ok(())
    })();
    status.err().unwrap_or(ae_status::AE_OK)
}

/// Whether `score` (from an `ae_anomaly_score` function) is above the model's threshold: the
/// device's verdict, the same integer comparison as on the host. `AE_NO_THRESHOLD` for a model
/// exported without one (`trainer export --threshold-fpr` stores one).
///
/// # Safety
/// `model` is an `ae_model` (loaded or not); `anomalous` is writable storage for a `bool`.
#[no_mangle]
pub unsafe extern "C" fn ae_model_is_anomalous(model: *const ae_model, score: u32, anomalous: *mut bool) -> ae_status {
    let status = (|| {
        // SAFETY: the caller's contract; only read.
        let runner = unsafe { loaded_ref(model) }?;
        let out = Buffer::new(anomalous, 1)?;
        let verdict = runner.model().is_anomalous(score)?;
        // SAFETY: non-null, aligned, writable by the caller's contract.
        unsafe { out.slice_mut() }.fill(verdict);
        Ok::<(), ae_status>(())
    })();
    status.err().unwrap_or(ae_status::AE_OK)
}

/// The info of a checked model.
fn describe(model: &Model<'_>) -> ae_model_info {
    let threshold = model.threshold();
    ae_model_info {
        input_len: model.input_len(),
        code_len: model.code_len(),
        scratch_len: model.scratch_len(),
        input_scaling: match model.input_scaling() {
            InputScaling::None => ae_input_scaling::AE_SCALING_NONE,
            InputScaling::Unit => ae_input_scaling::AE_SCALING_UNIT,
            InputScaling::MinMax { .. } => ae_input_scaling::AE_SCALING_MIN_MAX,
            InputScaling::Standard { .. } => ae_input_scaling::AE_SCALING_STANDARD,
        },
        input_scale: model.input_quant().scale,
        input_zero_point: model.input_quant().zero_point,
        code_scale: model.code_quant().scale,
        code_zero_point: model.code_quant().zero_point,
        has_threshold: threshold.is_some(),
        threshold: threshold.unwrap_or(0),
    }
}
