//! The firmware report: for every model file, the firmware's flash and static RAM on both boards
//! (from the ELF) and its instructions per encode, denoise and anomaly score under QEMU, printed
//! as a markdown table.
//!
//! ```text
//! cargo run -p host-tests --release --bin firmware-report [-- [--images N] [--kernels K] [--board B] [MODEL.aeq...]]
//! ```
//!
//! Without model files it reports every `models/*.aeq` and the synthetic model of MLPerf Tiny's
//! anomaly-detection shape (`synthetic-mlperf-anomaly`, random weights); a synthetic shape's name
//! in place of a file reports its model. Each model is reported for both of the
//! core's paths, one row each: `DSP` (the default firmware: the Cortex-M4's DSP instructions in
//! the fully connected layers) and `portable` (the firmware's `portable` feature); `--kernels
//! dsp` or `--kernels portable` reports one. Instructions are counted with
//! `-icount shift=6,sleep=off` (instructions = SysTick ticks × 40 / 64), averaged over the first
//! N MNIST test images (default 100); for a model that takes float input, over N random samples
//! of its raw range, and the second step is the decode of the code with its dequantization
//! rather than a denoise (encode and decode). A score runs the whole model on the sample again
//! (encode and decode) and compares the reconstruction with the input codes
//! (`anomaly_score`, `anomaly_score_f32`); its multiply-accumulates are a denoise's. The stack
//! column is the peak the firmware measured under QEMU (painted stack, src/stack.rs in the
//! firmware) while the model loaded and while the samples ran.
//!
//! `--board m0` reports the Cortex-M0 instead (`thumbv6m-none-eabi`, the portable kernels, under
//! QEMU's microbit: instructions = SysTick ticks × 62.5 / 64): one row per model, with the
//! microbit's flash, static RAM and the stack's peaks the firmware measures while loading and
//! while running; a model that does not fit the microbit (`firmware::microbit_fit`) gets a row
//! saying why, and is not built. `--board m4` (the default) is the report above.

use anyhow::{bail, Context, Result};
use autoencoder_core::Model;
use host_tests::check::{self, Report, Samples};
use host_tests::elf::{self, Sizes};
use host_tests::firmware::{self, Board, Kernels};
use host_tests::qemu::{self, Options};
use host_tests::synthetic::{self, Shape};
use host_tests::{float_samples, mnist};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `-icount` shift of the measurements: 64 ns per instruction, 1.6 SysTick ticks.
const SHIFT: u32 = 6;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut count = 100;
    let mut models = Vec::new();
    let mut kernels = Kernels::BOTH.to_vec();
    let mut m0 = false;
    let usage = "usage: firmware-report [--images N] [--kernels dsp|portable|both] [--board m4|m0] [MODEL.aeq...]";
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--images" => {
                let n = args.next().context("--images needs a count")?;
                count = n.parse().with_context(|| format!("--images {n}"))?;
            }
            "--kernels" => {
                kernels = match args.next().as_deref() {
                    Some("dsp") => vec![Kernels::Dsp],
                    Some("portable") => vec![Kernels::Portable],
                    Some("both") => Kernels::BOTH.to_vec(),
                    _ => bail!("{usage}"),
                };
            }
            "--board" => {
                m0 = match args.next().as_deref() {
                    Some("m4") => false,
                    Some("m0") => true,
                    _ => bail!("{usage}"),
                };
            }
            _ if arg.starts_with('-') => bail!("{usage}"),
            _ => models.push(model_path(&arg)?),
        }
    }
    if models.is_empty() {
        models = host_tests::shipped_models()?;
        models.push(model_path(Shape::MlperfAnomaly.name())?);
    }
    if models.is_empty() {
        bail!("no model files given and none in models/");
    }
    let images = mnist::test_images(count.clamp(1, mnist::TEST_IMAGES))?;
    if m0 {
        return report_m0(&models, count, &images);
    }

    println!(
        "| model | kernels | bytes | scratch | flash, QEMU | static RAM, QEMU | flash, nRF52840 | static RAM, nRF52840 \
         | encode MACs | encode instructions | per MAC | denoise MACs | denoise instructions | per MAC \
         | score instructions | per MAC | stack peak, loading / running |"
    );
    println!(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for path in &models {
        let blob = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let name = model.body().name;
        let scratch = model.scratch_len() as u64;
        let size = blob.len() as u64;

        for &kernels in &kernels {
            let elf = firmware::build_with(path, Board::Qemu, kernels)?;
            let qemu_sizes = elf::sizes(&elf)?;
            // A model too big for the nRF52840's flash fails to link: reported as not fitting.
            let board_sizes = firmware::build_with(path, Board::Nrf52840, kernels)
                .and_then(|elf| elf::sizes(&elf))
                .ok();

            let report = count_instructions(Board::Qemu, path, &model, &elf, count, &images)?;
            let (encode, denoise, score) = mean_instructions(Board::Qemu, &report);
            let stack = stack_cell(path, &report)?;
            let encode_macs = host_tests::encode_macs(&model);
            let denoise_macs = host_tests::denoise_macs(&model);

            let flash = |s: &Sizes| format!("{} (+{})", group(s.flash), group(s.flash.saturating_sub(size)));
            let ram = |s: &Sizes| format!("{} (+{})", group(s.ram), group(s.ram.saturating_sub(scratch)));
            let (board_flash, board_ram) = match &board_sizes {
                Some(s) => (flash(s), ram(s)),
                None => ("does not fit".into(), "—".into()),
            };
            println!(
                "| `{name}` | {} | {} | {} | {} | {} | {board_flash} | {board_ram} | {} | {stack} |",
                kernels.name(),
                group(size),
                group(scratch),
                flash(&qemu_sizes),
                ram(&qemu_sizes),
                instruction_cells(encode_macs, denoise_macs, encode, denoise, score),
            );
        }
    }
    Ok(())
}

/// The Cortex-M0 report (`--board m0`): per model, the microbit's flash, static RAM and stack
/// peaks, and the instructions of the portable kernels; a row saying why for a model that does
/// not fit.
fn report_m0(models: &[PathBuf], count: usize, images: &[[u8; autoencoder_core::PIXELS]]) -> Result<()> {
    println!(
        "| model | bytes | scratch | flash, microbit | static RAM, microbit | stack peak, loading / running \
         | encode MACs | encode instructions | per MAC | denoise MACs | denoise instructions | per MAC \
         | score instructions | per MAC |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for path in models {
        let blob = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let name = model.body().name;
        let (size, scratch) = (blob.len() as u64, model.scratch_len() as u64);
        if let Err(why) = firmware::microbit_fit(size, scratch) {
            println!(
                "| `{name}` | {} | {} | does not fit: {why} | — | — | | | | | | | | |",
                group(size),
                group(scratch)
            );
            continue;
        }
        let elf = firmware::build(path, Board::Microbit)?;
        let sizes = elf::sizes(&elf)?;
        let report = count_instructions(Board::Microbit, path, &model, &elf, count, images)?;
        let stack = stack_cell(path, &report)?;
        let (encode, denoise, score) = mean_instructions(Board::Microbit, &report);
        let (encode_macs, denoise_macs) = (host_tests::encode_macs(&model), host_tests::denoise_macs(&model));
        println!(
            "| `{name}` | {} | {} | {} (+{}) | {} (+{}) | {stack} | {} |",
            group(size),
            group(scratch),
            group(sizes.flash),
            group(sizes.flash.saturating_sub(size)),
            group(sizes.ram),
            group(sizes.ram.saturating_sub(scratch)),
            instruction_cells(encode_macs, denoise_macs, encode, denoise, score),
        );
    }
    Ok(())
}

/// The stack column of a report row, both boards alike: the peaks the firmware printed while
/// loading and while running, `loading / running` bytes.
fn stack_cell(path: &Path, report: &Report) -> Result<String> {
    let stack = report
        .stack
        .with_context(|| format!("{}: the firmware printed no stack peaks", path.display()))?;
    Ok(format!(
        "{} / {}",
        group(stack.loading.into()),
        group(stack.running.into())
    ))
}

/// The instruction columns of a report row, both boards alike: encode MACs, instructions and per
/// MAC; denoise MACs, instructions and per MAC; score instructions and per MAC (of the denoise
/// MACs).
fn instruction_cells(encode_macs: u64, denoise_macs: u64, encode: f64, denoise: f64, score: f64) -> String {
    format!(
        "{} | {} | {:.2} | {} | {} | {:.2} | {} | {:.2}",
        group(encode_macs),
        group(encode.round() as u64),
        encode / encode_macs as f64,
        group(denoise_macs),
        group(denoise.round() as u64),
        denoise / denoise_macs as f64,
        group(score.round() as u64),
        score / denoise_macs as f64,
    )
}

/// Runs `count` samples through the firmware `elf` of `model` (at `path`) built for `board`,
/// under `-icount shift=`[`SHIFT`], and checks them against the host: MNIST images for an MNIST
/// model; random pixels for a model of pixels of another size; random raw values for a model that
/// takes float input.
fn count_instructions(
    board: Board,
    path: &std::path::Path,
    model: &Model<'_>,
    elf: &std::path::Path,
    count: usize,
    images: &[[u8; autoencoder_core::PIXELS]],
) -> Result<Report> {
    let options = Options {
        icount_shift: Some(SHIFT),
        timeout: Duration::from_secs(600),
    };
    let (floats, pixels);
    let samples = if !check::takes_pixels(model) {
        floats = float_samples::random_samples(model, count, 1).concat();
        Samples::Floats(&floats)
    } else if model.input_len() == autoencoder_core::PIXELS {
        Samples::Pixels(images.as_flattened())
    } else {
        let mut rng = autoencoder_core::testutil::SplitMix64::new(1);
        pixels = (0..count * model.input_len())
            .map(|_| rng.next_u64() as u8)
            .collect::<Vec<_>>();
        Samples::Pixels(&pixels)
    };
    let report = check::run_samples_on(board, path, model, elf, samples, options)?;
    if report.mismatches > 0 {
        bail!("{}\n{}", report.summary(), report.details);
    }
    Ok(report)
}

/// Mean instructions of an encode, a reconstruction and a score in `report`, a run on `board`.
fn mean_instructions(board: Board, report: &Report) -> (f64, f64, f64) {
    let (encode, denoise, score) = report.mean_ticks();
    (
        qemu::instructions_on(board, encode, SHIFT),
        qemu::instructions_on(board, denoise, SHIFT),
        qemu::instructions_on(board, score, SHIFT),
    )
}

/// The model file `arg`, or for the name of a synthetic shape (`synthetic-mlperf-anomaly`,
/// `fc`, ...) that is no file, its model (seed 1) written to `target/firmware/synthetic/`.
fn model_path(arg: &str) -> Result<PathBuf> {
    let path = PathBuf::from(arg);
    let Some(shape) = Shape::from_name(arg).filter(|_| !path.exists()) else {
        return Ok(path);
    };
    let dir = firmware::firmware_target_dir().join("synthetic");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.aeq", shape.name()));
    let blob = synthetic::model(shape, 1);
    // Written only when the bytes change: the firmware's build reruns on a new modification time.
    if std::fs::read(&path).ok().as_deref() != Some(&blob[..]) {
        std::fs::write(&path, &blob)?;
    }
    Ok(path)
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
