//! Holds the firmware to the host: builds it for a model (`firmware/`, `AE_MODEL`), runs it under
//! QEMU's mps2-an386 (Cortex-M4; or its microbit, a Cortex-M0: `firmware::Board`) with samples
//! streamed in (MNIST test images, or raw f32 values for a model that takes float input) and the
//! outputs streamed out through semihosting files, and compares every code, output, anomaly
//! score and flag with [`autoencoder_core::Autoencoder`] run on the host ([`check::model_file`]
//! does it all for one model file and any samples). Also measures the firmware (flash and RAM
//! from its ELF, instructions under `-icount`) for the report (`cargo run -p host-tests
//! --release --bin firmware-report`).
//!
//! The tests are in `tests/firmware.rs` (`tests/cortex_m0.rs` for the Cortex-M0); they need
//! `qemu-system-arm` (Debian: `apt-get install qemu-system-arm`).

pub mod c_api;
pub mod check;
pub mod elf;
pub mod firmware;
/// Raw float test samples: the firmware's build script makes its self-test's samples with this
/// same file (`firmware/float_samples.rs`).
#[path = "../../firmware/float_samples.rs"]
pub mod float_samples;
pub mod mnist;
pub mod qemu;
pub mod reference;
pub mod synthetic;
pub mod tflm;

use autoencoder_core::Model;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-tests sits in the repository root")
        .to_path_buf()
}

/// The workspace's target directory (`CARGO_TARGET_DIR` if set, else `target/`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// `command` (a cargo run, or a make that runs cargo) without the variables cargo sets for the
/// process running the tests, which are meant for the host workspace's build, not the nested one.
pub fn without_outer_cargo_env(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
}

/// A file name for what is built from the file at `path`: its stem and a hash of its full path,
/// so that files of one name in different directories (a test's temporary `fc.aeq` and
/// `models/fc.aeq`) do not share it.
pub fn artifact_name(path: &Path) -> String {
    let stem = path.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy());
    let hash = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{stem}-{:08x}", hash as u32)
}

/// The shipped model files, `models/*.aeq`, sorted by name (none if `models/` does not exist).
pub fn shipped_models() -> anyhow::Result<Vec<PathBuf>> {
    let dir = repo_root().join("models");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut models = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "aeq") {
            models.push(path);
        }
    }
    models.sort();
    Ok(models)
}

/// Multiply-accumulates of one pass through layers `from..to` of a model.
pub fn macs(model: &Model<'_>, from: usize, to: usize) -> u64 {
    model
        .layers()
        .iter()
        .take(to)
        .skip(from)
        .filter_map(|layer| layer.weighted())
        .map(|w| w.shape.macs() as u64)
        .sum()
}

/// Multiply-accumulates of one encode.
pub fn encode_macs(model: &Model<'_>) -> u64 {
    macs(model, 0, usize::from(model.body().code_after))
}

/// Multiply-accumulates of one denoise (encode and decode).
pub fn denoise_macs(model: &Model<'_>) -> u64 {
    macs(model, 0, model.layers().len())
}

/// Multiply-accumulates the firmware runs per streamed sample: an encode, a reconstruction
/// (for pixels a denoise; for f32 values a decode, counted as a denoise) and the anomaly score
/// (a denoise).
pub fn sample_macs(model: &Model<'_>) -> u64 {
    encode_macs(model) + 2 * denoise_macs(model)
}

/// A time limit for a QEMU run of `samples` samples of `macs` multiply-accumulates each (see
/// [`sample_macs`]): 100 million instructions a second at 5 instructions per multiply-accumulate
/// (QEMU runs 5 to 10 times faster than that here), plus a minute.
pub fn time_limit(samples: usize, macs: u64) -> std::time::Duration {
    std::time::Duration::from_secs(60) + std::time::Duration::from_secs_f64(samples as f64 * macs as f64 * 5.0 / 1e8)
}

/// Every MNIST test image is checked for models whose denoise takes at most this many
/// multiply-accumulates (all fully connected variants); bigger models (`conv`, `deep30`) are
/// checked on the first [`FEW_IMAGES`], to keep the test suite within minutes.
pub const ALL_IMAGES_MAX_MACS: u64 = 1_000_000;

/// Images checked for a model above [`ALL_IMAGES_MAX_MACS`].
pub const FEW_IMAGES: usize = 1_000;

/// How many MNIST test images a model is checked on under QEMU: all 10,000, or [`FEW_IMAGES`]
/// for a model whose denoise is above [`ALL_IMAGES_MAX_MACS`]. The environment variable
/// `AE_QEMU_IMAGES` (a count, or `all`) overrides this for every model.
pub fn images_to_check(model: &Model<'_>) -> usize {
    let by_size = if denoise_macs(model) <= ALL_IMAGES_MAX_MACS {
        mnist::TEST_IMAGES
    } else {
        FEW_IMAGES
    };
    match std::env::var("AE_QEMU_IMAGES").ok().as_deref() {
        Some("all") => mnist::TEST_IMAGES,
        Some(n) => n.parse().map_or(by_size, |n: usize| n.min(mnist::TEST_IMAGES)),
        None => by_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{self, Shape};

    #[test]
    fn macs_count_fully_connected_and_convolution_layers() {
        let count = |shape| {
            let blob = synthetic::model(shape, 0);
            let model = Model::from_bytes(&blob).unwrap();
            (encode_macs(&model), denoise_macs(&model))
        };
        assert_eq!(count(Shape::Fc), (784 * 64, 2 * 784 * 64));
        assert_eq!(count(Shape::TopK), (784 * 64, 2 * 784 * 64));
        assert_eq!(count(Shape::Deep), (784 * 128 + 128 * 64, 2 * (784 * 128 + 128 * 64)));
        // 28 → 23 → 18 → 13 → 8 with 6x6 kernels, 1 → 8 → 8 → 8 → 8 channels; then 128 → 784.
        let conv = 23 * 23 * 8 * 36 + (18 * 18 + 13 * 13 + 8 * 8) * 8 * 36 * 8;
        assert_eq!(count(Shape::Conv), (conv, conv + 128 * 784));
    }

    #[test]
    fn synthetic_models_load_and_spread_their_codes() {
        let images = mnist::test_images(20).unwrap();
        for shape in Shape::MNIST {
            let blob = synthetic::model(shape, 7);
            let outputs = reference::run(&blob, &images).unwrap();
            assert_eq!(outputs.codes.len(), 20 * outputs.code_len, "{shape:?}");
            // Neither constant nor saturated: the requantization scales suit the inputs.
            let distinct = |v: &[u8]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
            let codes: Vec<u8> = outputs.codes.iter().map(|&c| c as u8).collect();
            assert!(distinct(&codes) > 20, "{shape:?}: codes {}", distinct(&codes));
            assert!(
                distinct(&outputs.images) > 20,
                "{shape:?}: pixels {}",
                distinct(&outputs.images)
            );
        }
    }

    #[test]
    fn the_sensor_model_takes_standardized_floats_and_spreads_its_outputs() {
        let blob = synthetic::model(Shape::Sensor, 7);
        let model = Model::from_bytes(&blob).unwrap();
        assert_eq!(model.input_shape(), [synthetic::SENSOR_FEATURES as u32]);
        assert_eq!(model.input_scaling().name(), "standard");
        assert_eq!(model.input_quant(), synthetic::SENSOR_INPUT);
        assert!(!check::takes_pixels(&model));
        let samples = float_samples::random_samples(&model, 50, 3).concat();
        let outputs = reference::run_floats(model, &samples).unwrap();
        let distinct = |v: &[i8]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct(&outputs.codes) > 40, "codes {}", distinct(&outputs.codes));
        assert!(
            distinct(&outputs.decoded) > 40,
            "outputs {}",
            distinct(&outputs.decoded)
        );
    }
}
