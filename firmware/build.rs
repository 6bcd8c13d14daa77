//! Build script of the firmware:
//!
//! - picks the memory layout of the board chosen by cargo feature (`qemu` or `board-nrf52840`)
//!   and passes the linker scripts;
//! - reads the model file named by `AE_MODEL` (default `models/fc.aeq`; a relative path is taken
//!   from the repository root), checks it with the core's loader (and that it takes MNIST's 784
//!   pixels, which the built-in test images and the stream mode are) and copies it into
//!   `OUT_DIR` for `include_bytes!`, with its input length, code width and scratch size as
//!   constants;
//! - takes the first [`BUILT_IN_IMAGES`] MNIST test images and computes, with the same core on
//!   the host, the codes and denoised images the firmware must produce for them (as CRC-32s).
//!
//! Any problem stops the build with one line naming the file and what is wrong.

use autoencoder_core::{Model, ModelError, Runner, PIXELS};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// MNIST test images built into the firmware for its self-test: one, the first (784 bytes of
/// flash each; the bit-exact proof over the whole test set is host-tests' streaming under QEMU).
const BUILT_IN_IMAGES: usize = 1;

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
    if model.input_len() != PIXELS {
        return Err(format!(
            "model file {} takes {} values of shape {:?}; the firmware runs MNIST models, of {PIXELS} pixels",
            model_path.display(),
            model.input_len(),
            model.input_shape()
        ));
    }
    fs::write(out_dir.join("model.aeq"), &blob).map_err(|e| e.to_string())?;

    let images_path = root.join(MNIST_TEST_IMAGES);
    println!("cargo:rerun-if-changed={}", images_path.display());
    let images = idx::read_first_images(&images_path, BUILT_IN_IMAGES).map_err(|e| e.to_string())?;
    let expected = expected_outputs(model.clone(), &images).map_err(|e| format!("{}: {e}", model_path.display()))?;
    fs::write(out_dir.join("images.bin"), images.concat()).map_err(|e| e.to_string())?;

    let consts = format!(
        "/// Name of the built-in model (the variant it was exported from).\n\
         pub const MODEL_NAME: &str = {name:?};\n\
         /// Values of the built-in model's input (and output): MNIST's 784 pixels.\n\
         pub const INPUT: usize = {input};\n\
         /// Width of the built-in model's code.\n\
         pub const CODE: usize = {code};\n\
         /// Bytes of scratch the built-in model needs (`Model::scratch_len`).\n\
         pub const SCRATCH: usize = {scratch};\n\
         /// Test images built in (the first MNIST test images).\n\
         pub const IMAGES: usize = {BUILT_IN_IMAGES};\n\
         /// Per built-in image, the CRC-32s of its code and of its denoised image, from the host.\n\
         pub const EXPECTED: [[u32; 2]; IMAGES] = {expected:#010x?};\n",
        name = model.body().name,
        input = model.input_len(),
        code = model.code_len(),
        scratch = model.scratch_len(),
    );
    fs::write(out_dir.join("model.rs"), consts).map_err(|e| e.to_string())?;
    Ok(())
}

/// The memory layout of the chosen board and the linker scripts.
fn link(manifest_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let qemu = env::var_os("CARGO_FEATURE_QEMU").is_some();
    let nrf52840 = env::var_os("CARGO_FEATURE_BOARD_NRF52840").is_some();
    let memory = match (qemu, nrf52840) {
        (true, false) => "qemu-mps2-an386.x",
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
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    if nrf52840 {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
        // cortex-m-rt's `device` feature includes a device.x naming the chip's interrupt
        // handlers; the firmware defines the vector table itself (src/board.rs) and no handler.
        fs::write(
            out_dir.join("device.x"),
            "/* No interrupt handlers: see src/board.rs. */\n",
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs encode and denoise on the host: per image, the CRC-32 of the code's bytes and of the
/// denoised image (the firmware compares its outputs' CRCs: 8 bytes of flash per image instead
/// of 848 for an `fc` model).
fn expected_outputs(model: Model<'_>, images: &[[u8; PIXELS]]) -> Result<Vec<[u32; 2]>, ModelError> {
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut code = vec![0i8; model.code_len()];
    let mut runner = Runner::new(model, &mut scratch)?;
    let mut denoised = [0u8; PIXELS];
    let mut expected = Vec::new();
    for image in images {
        runner.encode_u8_into(image, &mut code)?;
        runner.denoise_into(image, &mut denoised)?;
        let code_bytes: Vec<u8> = code.iter().map(|&c| c as u8).collect();
        expected.push([
            autoencoder_core::model::crc32(&code_bytes),
            autoencoder_core::model::crc32(&denoised),
        ]);
    }
    Ok(expected)
}
