//! Build script of the firmware:
//!
//! - picks the memory layout of the board chosen by cargo feature (`qemu` or `board-nrf52840`)
//!   and target (`qemu`: QEMU's mps2-an386 for a Cortex-M4F, its microbit for a Cortex-M0,
//!   `thumbv6m-none-eabi`) and passes the linker scripts;
//! - reads the model file named by `AE_MODEL` (default `models/fc.aeq`; a relative path is taken
//!   from the repository root), checks it with the core's loader and copies it into `OUT_DIR`
//!   for `include_bytes!`, with its input length, code width and scratch size as constants;
//! - decides what a sample is for it: u8 pixels for a model whose pixels quantize as `p - 128`
//!   (`Unit` scaling, scale 1/255, zero point -128: the MNIST models), raw f32 values for any
//!   other (`Raw`, `FLOAT_INPUT`);
//! - writes the built-in self-test samples and computes, with the same core on the host, the
//!   codes and reconstructions the firmware must produce for them (as CRC-32s) and their
//!   anomaly scores. Pixels: the
//!   first MNIST test image (random pixels for a model of another size); floats: one sample of
//!   random values over the raw range and two of the quantization's edge values
//!   (`float_samples.rs`).
//!
//! Any problem stops the build with one line naming the file and what is wrong.

use autoencoder_core::quantize_f32::is_unit_pixels;
use autoencoder_core::testutil::SplitMix64;
use autoencoder_core::{Model, ModelError, Runner, PIXELS};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Raw float samples for the self-test of a float model (host-tests uses the rest of it).
#[allow(dead_code)]
#[path = "float_samples.rs"]
mod float_samples;

/// Seed of the self-test's random samples.
const SEED: u64 = 0xae5e_1f7e;

/// The model used when `AE_MODEL` is not set, relative to the repository root.
const DEFAULT_MODEL: &str = "models/fc.aeq";

/// The MNIST test images, relative to the repository root.
const MNIST_TEST_IMAGES: &str = "data/mnist/t10k-images-idx3-ubyte.gz";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("the firmware has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);

    link(&manifest_dir, &out_dir)?;

    println!("cargo:rerun-if-env-changed=AE_MODEL");
    let (model_path, named_by) = match env::var_os("AE_MODEL") {
        Some(path) if !path.is_empty() => (root.join(PathBuf::from(path)), "AE_MODEL"),
        _ => (root.join(DEFAULT_MODEL), "the default, AE_MODEL unset"),
    };
    println!("cargo:rerun-if-changed={}", model_path.display());
    let blob = fs::read(&model_path).map_err(|e| {
        format!(
            "model file {} ({named_by}) cannot be read: {e}; set AE_MODEL to a model exported by \
             `trainer export` (README, section Firmware)",
            model_path.display()
        )
    })?;
    let model = Model::from_bytes(&blob)
        .map_err(|e| format!("model file {} is not a valid model: {e}", model_path.display()))?;
    fs::write(out_dir.join("model.aeq"), &blob).map_err(|e| e.to_string())?;

    let float_input = !is_unit_pixels(&model.input_scaling(), model.input_quant());
    let self_test = if float_input {
        float_self_test(&model).map_err(|e| e.to_string())
    } else {
        pixel_self_test(&model, &root)
    }
    .map_err(|e| format!("{}: {e}", model_path.display()))?;
    fs::write(out_dir.join("samples.bin"), &self_test.samples).map_err(|e| e.to_string())?;

    let consts = format!(
        "/// Name of the built-in model (the variant it was exported from).\n\
         pub const MODEL_NAME: &str = {name:?};\n\
         /// Values of the built-in model's input (and output), N: {shape:?}.\n\
         pub const INPUT: usize = {input};\n\
         /// Width of the built-in model's code.\n\
         pub const CODE: usize = {code};\n\
         /// Bytes of scratch the built-in model needs (`Model::scratch_len`).\n\
         pub const SCRATCH: usize = {scratch};\n\
         /// Whether the built-in model takes raw f32 values ({scaling} scaling, input scale {scale:e}, \
         zero point {zero_point}) rather than u8 pixels that quantize as `p - 128`.\n\
         pub const FLOAT_INPUT: bool = {float_input};\n\
         /// One raw input value of the built-in model.\n\
         pub type Raw = {raw};\n\
         /// Built-in test samples: {what}.\n\
         pub const SAMPLES: usize = {count};\n\
         /// Per built-in sample, the CRC-32s of its code and of its reconstruction's bytes, and its \
         anomaly score, from the host.\n\
         pub const EXPECTED: [[u32; 3]; SAMPLES] = {expected:#010x?};\n",
        name = model.body().name,
        shape = model.input_shape(),
        input = model.input_len(),
        code = model.code_len(),
        scratch = model.scratch_len(),
        scaling = model.input_scaling().name(),
        scale = model.input_quant().scale,
        zero_point = model.input_quant().zero_point,
        raw = if float_input { "f32" } else { "u8" },
        what = self_test.what,
        count = self_test.expected.len(),
        expected = self_test.expected,
    );
    fs::write(out_dir.join("model.rs"), consts).map_err(|e| e.to_string())?;
    Ok(())
}

/// The self-test's samples, as the firmware reads them, and the host's outputs for them.
struct SelfTest {
    /// The samples one after the other: a byte per pixel, or 4 per f32 (little-endian).
    samples: Vec<u8>,
    /// What the samples are, for the constants' documentation.
    what: &'static str,
    /// Per sample, the CRC-32s of the code's bytes and of the reconstruction's bytes, and the
    /// anomaly score.
    expected: Vec<[u32; 3]>,
}

/// A model of u8 pixels: the first MNIST test image for a model of MNIST's 784 pixels, random
/// pixels for another. Per image, the CRC-32 of the code and of the denoised image (the firmware
/// compares its outputs' CRCs: 8 bytes of flash per image instead of 848 for an `fc` model), and
/// the anomaly score (`anomaly_score_u8`).
fn pixel_self_test(model: &Model<'_>, root: &Path) -> Result<SelfTest, String> {
    let n = model.input_len();
    let (image, what) = if n == PIXELS {
        let images_path = root.join(MNIST_TEST_IMAGES);
        println!("cargo:rerun-if-changed={}", images_path.display());
        let images = idx::read_first_images(&images_path, 1).map_err(|e| e.to_string())?;
        (images.concat(), "the first MNIST test image")
    } else {
        let mut rng = SplitMix64::new(SEED);
        let pixels = (0..n).map(|_| rng.next_u64() as u8).collect();
        (pixels, "an image of random pixels")
    };
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut code = vec![0i8; model.code_len()];
    let mut denoised = vec![0u8; n];
    let mut run = |runner: &mut Runner<'_, '_>| -> Result<u32, ModelError> {
        runner.encode_u8_into(&image, &mut code)?;
        runner.denoise_into(&image, &mut denoised)?;
        runner.anomaly_score_u8(&image)
    };
    let score = Runner::new(model.clone(), &mut scratch)
        .and_then(|mut runner| run(&mut runner))
        .map_err(|e| e.to_string())?;
    Ok(SelfTest {
        expected: vec![[crc32_of_codes(&code), autoencoder_core::model::crc32(&denoised), score]],
        samples: image,
        what,
    })
}

/// A model of raw f32 values: one sample of random values over the raw range its input covers,
/// then two samples of edge values, each feature's list from its start and from N on (every kind
/// of edge when the lists are at most 2 N long: at most 85 edges, N >= 43). Per sample, the
/// CRC-32 of the code (`encode_f32`) and of the reconstruction as the firmware writes it: the int8
/// output (`decode` of the code), then its f32 values (`reconstruct_f32`), little-endian; and
/// the anomaly score (`anomaly_score_f32`).
fn float_self_test(model: &Model<'_>) -> Result<SelfTest, ModelError> {
    let n = model.input_len();
    let mut samples = float_samples::random_samples(model, 1, SEED);
    samples.extend(float_samples::edge_samples(model, [0, n]));
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch)?;
    let mut code = vec![0i8; model.code_len()];
    let mut output = vec![0i8; n];
    let mut values = vec![0f32; n];
    let mut expected = Vec::new();
    for sample in &samples {
        runner.encode_f32_into(sample, &mut code)?;
        runner.decode_into(&code, &mut output)?;
        runner.reconstruct_f32_into(sample, &mut values)?;
        let mut bytes: Vec<u8> = output.iter().map(|&q| q as u8).collect();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let score = runner.anomaly_score_f32(sample)?;
        expected.push([crc32_of_codes(&code), autoencoder_core::model::crc32(&bytes), score]);
    }
    Ok(SelfTest {
        samples: samples.iter().flatten().flat_map(|v| v.to_le_bytes()).collect(),
        what: "random values over the raw range, then edge values of the quantization",
        expected,
    })
}

/// The CRC-32 of int8 codes as bytes.
fn crc32_of_codes(codes: &[i8]) -> u32 {
    let bytes: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
    autoencoder_core::model::crc32(&bytes)
}

/// The memory layout of the chosen board and the linker scripts.
fn link(manifest_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let qemu = env::var_os("CARGO_FEATURE_QEMU").is_some();
    let nrf52840 = env::var_os("CARGO_FEATURE_BOARD_NRF52840").is_some();
    // The Cortex-M0 (Armv6-M) runs under QEMU's microbit, the Cortex-M4F under its mps2-an386.
    let target = env::var("TARGET").map_err(|e| e.to_string())?;
    let armv6m = target.starts_with("thumbv6m");
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    if armv6m {
        println!("cargo::rustc-cfg=armv6m");
    }
    let memory = match (qemu, nrf52840) {
        (true, false) if armv6m => "qemu-microbit.x",
        (true, false) => "qemu-mps2-an386.x",
        (false, true) if armv6m => {
            return Err(format!(
                "the nRF52840-DK has a Cortex-M4F: build `board-nrf52840` for thumbv7em-none-eabihf, not {target}"
            ))
        }
        (false, true) => "nrf52840.x",
        _ => {
            return Err("choose exactly one board: the default feature `qemu`, or \
                        `--no-default-features --features board-nrf52840`"
                .into())
        }
    };
    let source = manifest_dir.join("memory").join(memory);
    println!("cargo:rerun-if-changed={}", source.display());
    fs::copy(&source, out_dir.join("memory.x")).map_err(|e| format!("{}: {e}", source.display()))?;
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    // Identical code folding: functions of the same machine code (integer formatting for u32 and
    // usize, copies for two alignments, ...) are kept once.
    println!("cargo:rustc-link-arg-bins=--icf=all");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    if nrf52840 {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
    // cortex-m-rt's `device` feature includes a device.x naming the chip's interrupt handlers;
    // the firmware defines the vector table itself (src/main.rs) and no handler.
    fs::write(
        out_dir.join("device.x"),
        "/* No interrupt handlers: see src/main.rs. */\n",
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
