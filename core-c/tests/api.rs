//! The C API called from Rust, as C calls it: every function against the core's `Runner` on every
//! shipped model (the same bits), and every status a caller can provoke.

use autoencoder::ae_status::{self, *};
use autoencoder::*;
use autoencoder_core::{Model, ModelError, Runner};
use std::ffi::CStr;
use std::path::{Path, PathBuf};

fn models() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("models/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "aeq"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the shipped models are in models/");
    files
}

/// A deterministic sequence of bytes (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Storage for an `ae_model` on the heap (it is large for a test thread's stack).
fn storage() -> Box<ae_model> {
    // SAFETY: `ae_model` is plain words; all zeros is a valid, unloaded value.
    unsafe { Box::new(std::mem::zeroed()) }
}

fn name(status: ae_status) -> String {
    // SAFETY: ae_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ae_status_name(status as i32)) }
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// Loads `blob` with a scratch of the size it asks for; panics on failure.
fn load(blob: &[u8], scratch: &mut Vec<i8>) -> (Box<ae_model>, ae_model_info) {
    let mut info = std::mem::MaybeUninit::<ae_model_info>::uninit();
    // SAFETY: a live blob and a writable info.
    let status = unsafe { ae_model_check(blob.as_ptr(), blob.len(), info.as_mut_ptr()) };
    assert_eq!(status, AE_OK, "{}", name(status));
    // SAFETY: AE_OK wrote it.
    let info = unsafe { info.assume_init() };
    scratch.resize(info.scratch_len, 0);
    let mut model = storage();
    // SAFETY: blob and scratch outlive the model in every test.
    let status = unsafe {
        ae_model_load(
            &mut *model,
            blob.as_ptr(),
            blob.len(),
            scratch.as_mut_ptr(),
            scratch.len(),
        )
    };
    assert_eq!(status, AE_OK, "{}", name(status));
    (model, info)
}

#[test]
fn every_function_gives_the_cores_bits_on_every_shipped_model() {
    for path in models() {
        let blob = std::fs::read(&path).expect("model file");
        let core = Model::from_bytes(&blob).expect("a shipped model loads");
        let mut core_scratch = vec![0i8; core.scratch_len()];
        let mut runner = Runner::new(core.clone(), &mut core_scratch).expect("binds");
        let mut scratch = Vec::new();
        let (mut model, info) = load(&blob, &mut scratch);
        let (n, k) = (core.input_len(), core.code_len());
        assert_eq!(
            (info.input_len, info.code_len, info.scratch_len),
            (n, k, core.scratch_len())
        );
        assert_eq!(info.threshold, core.threshold().unwrap_or(0));
        assert_eq!(info.has_threshold, core.threshold().is_some());
        let m = &mut *model;
        for seed in 0..3 {
            let bytes = noise(seed, n);
            let codes: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
            let floats: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 7.0 - 10.0).collect();
            let (mut want_code, mut code) = (vec![0i8; k], vec![0i8; k]);
            // SAFETY (all calls below): live buffers of the lengths passed.
            unsafe {
                runner.encode_into(&codes, &mut want_code).expect("core");
                assert_eq!(ae_encode(m, codes.as_ptr(), n, code.as_mut_ptr(), k), AE_OK);
                assert_eq!(code, want_code, "{}: ae_encode", path.display());
                runner.encode_u8_into(&bytes, &mut want_code).expect("core");
                assert_eq!(ae_encode_u8(m, bytes.as_ptr(), n, code.as_mut_ptr(), k), AE_OK);
                assert_eq!(code, want_code, "{}: ae_encode_u8", path.display());
                runner.encode_f32_into(&floats, &mut want_code).expect("core");
                assert_eq!(ae_encode_f32(m, floats.as_ptr(), n, code.as_mut_ptr(), k), AE_OK);
                assert_eq!(code, want_code, "{}: ae_encode_f32", path.display());

                let (mut want, mut got) = (vec![0i8; n], vec![0i8; n]);
                runner.decode_into(&code, &mut want).expect("core");
                assert_eq!(ae_decode(m, code.as_ptr(), k, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(got, want, "{}: ae_decode", path.display());
                runner.reconstruct_into(&codes, &mut want).expect("core");
                assert_eq!(ae_reconstruct(m, codes.as_ptr(), n, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(got, want, "{}: ae_reconstruct", path.display());

                let (mut want, mut got) = (vec![0u8; n], vec![0u8; n]);
                runner.decode_u8_into(&code, &mut want).expect("core");
                assert_eq!(ae_decode_u8(m, code.as_ptr(), k, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(got, want, "{}: ae_decode_u8", path.display());
                runner.denoise_into(&bytes, &mut want).expect("core");
                assert_eq!(ae_denoise(m, bytes.as_ptr(), n, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(got, want, "{}: ae_denoise", path.display());

                let (mut want, mut got) = (vec![0f32; n], vec![0f32; n]);
                runner.decode_f32_into(&code, &mut want).expect("core");
                assert_eq!(ae_decode_f32(m, code.as_ptr(), k, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(bits(&got), bits(&want), "{}: ae_decode_f32", path.display());
                runner.reconstruct_f32_into(&floats, &mut want).expect("core");
                assert_eq!(ae_reconstruct_f32(m, floats.as_ptr(), n, got.as_mut_ptr(), n), AE_OK);
                assert_eq!(bits(&got), bits(&want), "{}: ae_reconstruct_f32", path.display());

                let mut score = 0u32;
                assert_eq!(ae_anomaly_score(m, codes.as_ptr(), n, &mut score), AE_OK);
                assert_eq!(score, runner.anomaly_score(&codes).expect("core"));
                assert_eq!(ae_anomaly_score_u8(m, bytes.as_ptr(), n, &mut score), AE_OK);
                assert_eq!(score, runner.anomaly_score_u8(&bytes).expect("core"));
                assert_eq!(ae_anomaly_score_f32(m, floats.as_ptr(), n, &mut score), AE_OK);
                assert_eq!(score, runner.anomaly_score_f32(&floats).expect("core"));

                let mut flag = false;
                let status = ae_model_is_anomalous(m, score, &mut flag);
                match core.is_anomalous(score) {
                    Ok(anomalous) => assert_eq!((status, flag), (AE_OK, anomalous)),
                    Err(e) => assert_eq!((status, e), (AE_NO_THRESHOLD, ModelError::NoThreshold)),
                }
            }
        }
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The fc model, loaded, with its blob and scratch kept alive.
struct Fc {
    blob: Vec<u8>,
    _scratch: Vec<i8>,
    model: Box<ae_model>,
    info: ae_model_info,
}

fn fc() -> Fc {
    let blob = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fc.aeq")).expect("fc.aeq");
    let mut scratch = Vec::new();
    let (model, info) = load(&blob, &mut scratch);
    Fc {
        blob,
        _scratch: scratch,
        model,
        info,
    }
}

#[test]
fn bad_pointers_and_lengths_get_their_status_and_write_nothing() {
    let mut fc = fc();
    let (n, k) = (fc.info.input_len, fc.info.code_len);
    let m: *mut ae_model = &mut *fc.model;
    let input = vec![0i8; n + 1];
    let mut code = vec![7i8; k + 1];
    let floats = vec![0f32; n + 1];
    // SAFETY (all calls): pointers are NULL, misaligned or live buffers of at least the length
    // passed; the API must reject the bad ones before reading.
    unsafe {
        assert_eq!(
            ae_encode(std::ptr::null_mut(), input.as_ptr(), n, code.as_mut_ptr(), k),
            AE_NULL_POINTER
        );
        assert_eq!(ae_encode(m, std::ptr::null(), n, code.as_mut_ptr(), k), AE_NULL_POINTER);
        assert_eq!(
            ae_encode(m, input.as_ptr(), n, std::ptr::null_mut(), k),
            AE_NULL_POINTER
        );
        assert_eq!(
            ae_encode(m, input.as_ptr(), n + 1, code.as_mut_ptr(), k),
            AE_INPUT_WIDTH_MISMATCH
        );
        assert_eq!(
            ae_encode(m, input.as_ptr(), n - 1, code.as_mut_ptr(), k),
            AE_INPUT_WIDTH_MISMATCH
        );
        assert_eq!(
            ae_encode(m, input.as_ptr(), n, code.as_mut_ptr(), k + 1),
            AE_CODE_WIDTH_MISMATCH
        );
        assert_eq!(
            ae_encode(m, input.as_ptr(), n, code.as_mut_ptr(), k - 1),
            AE_CODE_WIDTH_MISMATCH
        );
        assert!(code.iter().all(|&c| c == 7), "a failed call wrote its output");
        let misaligned = floats.as_ptr().cast::<u8>().add(1).cast::<f32>();
        assert_eq!(ae_encode_f32(m, misaligned, n, code.as_mut_ptr(), k), AE_MISALIGNED);
        let mut nan = vec![0.5f32; n];
        nan[n / 2] = f32::NAN;
        assert_eq!(ae_encode_f32(m, nan.as_ptr(), n, code.as_mut_ptr(), k), AE_NOT_A_NUMBER);
        assert!(code.iter().all(|&c| c == 7), "a NaN wrote the output");
        // In place: input and output are one buffer.
        let mut same = vec![0i8; n];
        assert_eq!(
            ae_reconstruct(m, same.as_ptr(), n, same.as_mut_ptr(), n),
            AE_BUFFERS_OVERLAP
        );
        // The output over the model's own scratch, its blob, its storage.
        let scratch = fc._scratch.as_mut_ptr();
        assert_eq!(ae_encode(m, input.as_ptr(), n, scratch, k), AE_BUFFERS_OVERLAP);
        let blob = fc.blob.as_mut_ptr().cast::<i8>();
        assert_eq!(ae_decode(m, code.as_ptr(), k, blob.add(100), n), AE_BUFFERS_OVERLAP);
        assert_eq!(ae_encode(m, input.as_ptr(), n, m.cast::<i8>(), k), AE_BUFFERS_OVERLAP);
        // An input may share the blob's bytes (both are only read), not the scratch's.
        assert_eq!(ae_encode(m, blob.add(100), n, code.as_mut_ptr(), k), AE_OK);
        assert_eq!(ae_encode(m, scratch, n, code.as_mut_ptr(), k), AE_BUFFERS_OVERLAP);
        code.fill(7);
        let mut score = 0u32;
        assert_eq!(
            ae_anomaly_score(m, input.as_ptr(), n, std::ptr::null_mut()),
            AE_NULL_POINTER
        );
        assert_eq!(ae_anomaly_score(m, input.as_ptr(), n, &mut score), AE_OK);
        let mut flag = false;
        assert_eq!(ae_model_is_anomalous(m, score, &mut flag), AE_NO_THRESHOLD);
        assert_eq!(ae_model_is_anomalous(m, score, std::ptr::null_mut()), AE_NULL_POINTER);
        assert_eq!(ae_model_get_info(m, std::ptr::null_mut()), AE_NULL_POINTER);

        // An unloaded model, and one whose load failed.
        let mut unloaded = storage();
        assert_eq!(
            ae_encode(&mut *unloaded, input.as_ptr(), n, code.as_mut_ptr(), k),
            AE_NOT_LOADED
        );
        let mut too_small = vec![0i8; fc.info.scratch_len - 1];
        let status = ae_model_load(
            m,
            fc.blob.as_ptr(),
            fc.blob.len(),
            too_small.as_mut_ptr(),
            too_small.len(),
        );
        assert_eq!(status, AE_SCRATCH_TOO_SMALL);
        assert_eq!(ae_encode(m, input.as_ptr(), n, code.as_mut_ptr(), k), AE_NOT_LOADED);
        let mut info = std::mem::MaybeUninit::<ae_model_info>::uninit();
        assert_eq!(ae_model_get_info(m, info.as_mut_ptr()), AE_NOT_LOADED);
        // A model handle that is not aligned for its type.
        let mut bytes = vec![0usize; AE_MODEL_WORDS + 1];
        let odd = bytes.as_mut_ptr().cast::<u8>().add(1).cast::<ae_model>();
        let status = ae_model_load(odd, fc.blob.as_ptr(), fc.blob.len(), too_small.as_mut_ptr(), 1);
        assert_eq!(status, AE_MISALIGNED);
        assert_eq!(
            ae_model_load(
                std::ptr::null_mut(),
                fc.blob.as_ptr(),
                fc.blob.len(),
                too_small.as_mut_ptr(),
                1
            ),
            AE_NULL_POINTER
        );
    }
}

#[test]
fn corrupt_and_foreign_blobs_get_the_status_that_names_the_problem() {
    let fc = fc();
    let mut scratch = vec![0i8; fc.info.scratch_len];
    let try_load = |blob: &[u8], scratch: &mut [i8]| {
        let mut model = storage();
        // SAFETY: live buffers of the lengths passed.
        unsafe {
            ae_model_load(
                &mut *model,
                blob.as_ptr(),
                blob.len(),
                scratch.as_mut_ptr(),
                scratch.len(),
            )
        }
    };
    let mut flipped = fc.blob.clone();
    flipped[1000] ^= 0x10;
    assert_eq!(try_load(&flipped, &mut scratch), AE_CHECKSUM_MISMATCH);
    assert_eq!(try_load(&fc.blob[..10], &mut scratch), AE_TOO_SHORT);
    assert_eq!(
        try_load(b"# README\nnot a model, just some text\n", &mut scratch),
        AE_BAD_MAGIC
    );
    let mut version = fc.blob.clone();
    version[4] = 0x7F;
    assert_eq!(try_load(&version, &mut scratch), AE_UNSUPPORTED_VERSION);
    let truncated = &fc.blob[..fc.blob.len() / 2];
    assert_eq!(try_load(truncated, &mut scratch), AE_CHECKSUM_MISMATCH);
    // The scratch over the blob itself.
    let mut both = fc.blob.clone();
    let (blob_part, len) = (both.as_ptr(), fc.blob.len());
    let mut model = storage();
    // SAFETY: live buffers; the API must refuse the overlap before using either.
    let status = unsafe { ae_model_load(&mut *model, blob_part, len, both.as_mut_ptr().cast::<i8>(), 16) };
    assert_eq!(status, AE_BUFFERS_OVERLAP);
    assert_eq!(try_load(&fc.blob, &mut scratch), AE_OK);
    // SAFETY: a null blob.
    let mut info = std::mem::MaybeUninit::<ae_model_info>::uninit();
    assert_eq!(
        unsafe { ae_model_check(std::ptr::null(), 10, info.as_mut_ptr()) },
        AE_NULL_POINTER
    );
}

#[test]
fn every_status_has_its_c_name_and_every_core_error_its_own_status() {
    let mut seen = std::collections::HashSet::new();
    for status in ALL_STATUSES {
        let name = name(status);
        assert!(name.starts_with("AE_"), "{name}");
        assert!(seen.insert(status as i32), "{name}: value used twice");
        assert_ne!(name, "AE_UNKNOWN_STATUS");
    }
    assert_eq!(name_of_int(12345), "AE_UNKNOWN_STATUS");
    assert_eq!(name_of_int(-1), "AE_UNKNOWN_STATUS");
    // Each core error maps to the status named after it (CamelCase to AE_SCREAMING_CASE).
    let errors = [
        ModelError::TooShort { len: 0 },
        ModelError::BadMagic { found: [0; 4] },
        ModelError::UnsupportedVersion { found: 9, supported: 4 },
        ModelError::ChecksumMismatch { stored: 0, computed: 1 },
        ModelError::UnknownKind { kind: 9 },
        ModelError::Malformed { reason: "" },
        ModelError::TrailingBytes { count: 1 },
        ModelError::KindMismatch {
            header: autoencoder_core::ModelKind::Convolutional,
        },
        ModelError::BadInput,
        ModelError::BadInputShape { reason: "" },
        ModelError::InputScalingLength {
            array: "",
            expected: 0,
            actual: 1,
        },
        ModelError::BadInputScaling { array: "", index: 0 },
        ModelError::FirstLayerMismatch { input: 0, layer: 1 },
        ModelError::BadCodeSplit {
            code_after: 0,
            layers: 0,
        },
        ModelError::OutputWidthMismatch { input: 0, output: 1 },
        ModelError::BadOutput,
        ModelError::ScratchTooSmall { needed: 1, actual: 0 },
        ModelError::CodeWidthMismatch { model: 1, requested: 0 },
        ModelError::InputWidthMismatch { model: 1, requested: 0 },
        ModelError::NotANumber { index: 0 },
        ModelError::BadScore {
            multiplier: 0,
            shift: 0,
        },
        ModelError::NoThreshold,
    ];
    for error in errors {
        let want = format!("AE_{}", screaming(error.name()));
        assert_eq!(name(ae_status::from(error)), want);
    }
    let kernel = [
        (
            autoencoder_core::Error::ShapeMismatch {
                operand: "",
                expected: 0,
                actual: 1,
            },
            "SHAPE_MISMATCH",
        ),
        (
            autoencoder_core::Error::InvalidGeometry { reason: "" },
            "INVALID_GEOMETRY",
        ),
        (
            autoencoder_core::Error::InputZeroPointOutOfRange { zero_point: 0 },
            "INPUT_ZERO_POINT",
        ),
        (
            autoencoder_core::Error::OutputZeroPointOutOfRange { zero_point: 0 },
            "OUTPUT_ZERO_POINT",
        ),
        (
            autoencoder_core::Error::InvalidActivationRange { min: 0, max: 0 },
            "ACTIVATION_RANGE",
        ),
        (
            autoencoder_core::Error::ShiftOutOfRange { channel: 0, shift: 0 },
            "SHIFT_OUT_OF_RANGE",
        ),
        (
            autoencoder_core::Error::NegativeMultiplier {
                channel: 0,
                multiplier: 0,
            },
            "NEGATIVE_MULTIPLIER",
        ),
        (autoencoder_core::Error::NegativeScale, "NEGATIVE_SCALE"),
        (autoencoder_core::Error::NonFiniteScale, "NON_FINITE_SCALE"),
        (autoencoder_core::Error::ScaleTooLarge, "SCALE_TOO_LARGE"),
    ];
    for (error, suffix) in kernel {
        let status = ae_status::from(ModelError::Layer { index: 3, error });
        assert_eq!(name(status), format!("AE_LAYER_{suffix}"));
    }
}

fn name_of_int(value: i32) -> String {
    // SAFETY: ae_status_name returns a static NUL-terminated string for any integer.
    unsafe { CStr::from_ptr(ae_status_name(value)) }
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// `ChecksumMismatch` as `CHECKSUM_MISMATCH`.
fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
