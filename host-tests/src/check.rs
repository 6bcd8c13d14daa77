//! One model, end to end: the firmware under QEMU against the core on the host, every output.
//!
//! The firmware streams samples in and records out (`firmware/src/qemu.rs`): per sample the
//! code (K bytes, int8), the reconstruction, the anomaly score (u32 little-endian), its flag (one
//! byte, [`flag_byte`]), then the ticks of its three steps, encode, reconstruction and score (u32
//! little-endian each). The reconstruction of u8 pixels is the denoised image (N bytes); of raw
//! f32 values, the int8 output (N bytes) and the same output dequantized into raw units (N f32
//! little-endian).

use crate::firmware::{Board, Kernels};
use crate::qemu::{self, Options};
use crate::reference;
use anyhow::{bail, Context, Result};
use autoencoder_core::quantize_f32::is_unit_pixels;
use autoencoder_core::{Model, PIXELS};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;

/// Mismatches printed in full before the rest are only counted.
pub const SHOWN: usize = 20;

/// Bytes of the score and the flag in a record.
pub const SCORE_BYTES: usize = 5;

/// Bytes of the ticks at the end of a record: encode, reconstruction and score, u32 each.
pub const TICKS_BYTES: usize = 12;

/// A record's flag byte for a score above the model's threshold.
pub const FLAG_ANOMALY: u8 = 1;
/// A record's flag byte for a score at most the model's threshold.
pub const FLAG_NORMAL: u8 = 0;
/// A record's flag byte when the model holds no threshold.
pub const FLAG_NO_THRESHOLD: u8 = 0xFF;

/// The flag byte the firmware writes for `model`'s verdict on a score
/// ([`Model::is_anomalous`]): [`FLAG_ANOMALY`], [`FLAG_NORMAL`], or [`FLAG_NO_THRESHOLD`] for a
/// model without a threshold.
pub fn flag_byte(model: &Model<'_>, score: u32) -> u8 {
    match model.is_anomalous(score) {
        Ok(true) => FLAG_ANOMALY,
        Ok(false) => FLAG_NORMAL,
        Err(_) => FLAG_NO_THRESHOLD,
    }
}

/// A flag byte as the verdict it stands for: `Some(anomaly)`, `None` without a threshold (or for
/// a byte the firmware never writes, which the comparison reports as a mismatch).
fn flag_of(byte: u8) -> Option<bool> {
    match byte {
        FLAG_ANOMALY => Some(true),
        FLAG_NORMAL => Some(false),
        _ => None,
    }
}

/// Bytes of one stream record of `model`'s firmware: the code, the reconstruction (N bytes for
/// u8 pixels, 5 N for f32 values), the score and flag, the ticks.
pub fn record_len(model: &Model<'_>) -> usize {
    let output_len = if takes_pixels(model) { 1 } else { 5 } * model.input_len();
    model.code_len() + output_len + SCORE_BYTES + TICKS_BYTES
}

/// What a run over a set of samples found.
#[derive(Debug)]
pub struct Report {
    /// The model file's name.
    pub model: String,
    /// Samples run.
    pub samples: usize,
    /// Outputs compared: codes, pixels or int8 and f32 output values, scores and flags.
    pub outputs: usize,
    /// Outputs that differ between firmware and host.
    pub mismatches: usize,
    /// The first [`SHOWN`] mismatches, one per line: model, sample, position, both values.
    pub details: String,
    /// The firmware's anomaly score of each sample.
    pub scores: Vec<u32>,
    /// The firmware's flag of each sample: whether its score is above the model's threshold;
    /// `None` for a model without a threshold.
    pub flags: Vec<Option<bool>>,
    /// SysTick ticks of each encode (meaningful under `-icount`).
    pub encode_ticks: Vec<u32>,
    /// SysTick ticks of each reconstruction (denoise, or decode with the dequantization).
    pub reconstruct_ticks: Vec<u32>,
    /// SysTick ticks of each anomaly score.
    pub score_ticks: Vec<u32>,
    /// Wall time of the QEMU run.
    pub qemu_wall: Duration,
    /// The stack's peaks, as the firmware measured them (every board prints them).
    pub stack: Option<StackPeaks>,
}

/// The stack's peaks of a run, which the firmware prints at the end of a run
/// (`stack peak: loading L bytes, running R bytes, of F bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackPeaks {
    /// Bytes of stack at most until the model was loaded (the loading takes the most).
    pub loading: u32,
    /// Bytes of stack at most while the samples ran.
    pub running: u32,
    /// Bytes the stack has: RAM less the statics (`flip-link` puts the stack below them).
    pub room: u32,
}

impl StackPeaks {
    /// The peaks in a run's output, if it printed them.
    pub fn parse(output: &str) -> Option<StackPeaks> {
        let line = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("stack peak: loading "))?;
        let mut numbers = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(str::parse);
        let (Some(Ok(loading)), Some(Ok(running)), Some(Ok(room))) = (numbers.next(), numbers.next(), numbers.next())
        else {
            return None;
        };
        Some(StackPeaks { loading, running, room })
    }

    /// The higher of the two peaks.
    pub fn peak(&self) -> u32 {
        self.loading.max(self.running)
    }
}

/// The samples a model is run on, one after the other, N values each.
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    /// u8 pixels, for a model whose pixels quantize as `p - 128` (the MNIST models).
    Pixels(&'a [u8]),
    /// Raw f32 values, for any other model.
    Floats(&'a [f32]),
}

impl Samples<'_> {
    /// The bytes of the firmware's sample file.
    fn file(&self) -> Vec<u8> {
        match self {
            Samples::Pixels(pixels) => pixels.to_vec(),
            Samples::Floats(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// Values in all.
    fn len(&self) -> usize {
        match self {
            Samples::Pixels(pixels) => pixels.len(),
            Samples::Floats(values) => values.len(),
        }
    }
}

/// Whether the firmware built for `model` takes u8 pixels (rather than f32 values): its pixels
/// quantize as `p - 128` (`Unit` scaling, scale 1/255, zero point -128), as build.rs decides.
pub fn takes_pixels(model: &Model<'_>) -> bool {
    is_unit_pixels(&model.input_scaling(), model.input_quant())
}

/// Streams MNIST `images` through the firmware `elf` (built with the model file at `path`, read
/// and parsed once by the caller into `model`) under QEMU and compares every code and pixel with
/// the core's runner on the host.
///
/// # Errors
/// As [`run_samples`].
pub fn run(path: &Path, model: &Model<'_>, elf: &Path, images: &[[u8; PIXELS]], options: Options) -> Result<Report> {
    run_samples(path, model, elf, Samples::Pixels(images.as_flattened()), options)
}

/// Streams `samples` through the firmware `elf` (built with the model file at `path`, parsed
/// into `model`) under QEMU's mps2-an386 and compares every output byte with the core's runner on
/// the host:
/// `encode_u8` and `denoise` for pixels; for f32 values `encode_f32`, `decode` of the code and
/// `reconstruct_f32` (the f32s compared bit for bit); and each sample's anomaly score
/// (`anomaly_score_u8`, `anomaly_score_f32`) and its flag under the model's threshold
/// ([`flag_byte`]).
///
/// # Errors
/// QEMU cannot run, times out, or the firmware ends with a failure status or writes an output
/// file of the wrong length; samples of the wrong type for the model, or not whole.
/// Mismatches are not errors: see [`Report::mismatches`].
pub fn run_samples(
    path: &Path,
    model: &Model<'_>,
    elf: &Path,
    samples: Samples<'_>,
    options: Options,
) -> Result<Report> {
    run_samples_on(Board::Qemu, path, model, elf, samples, options)
}

/// [`run_samples`] with the firmware built for `board`, on its QEMU machine.
///
/// # Errors
/// As [`run_samples`].
pub fn run_samples_on(
    board: Board,
    path: &Path,
    model: &Model<'_>,
    elf: &Path,
    samples: Samples<'_>,
    options: Options,
) -> Result<Report> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (n, code_len) = (model.input_len(), model.code_len());
    let pixels = takes_pixels(model);
    if pixels != matches!(samples, Samples::Pixels(_)) {
        let kind = |pixels| if pixels { "u8 pixels" } else { "f32 values" };
        bail!("{name}: the firmware takes {}, not {}", kind(pixels), kind(!pixels));
    }
    if !samples.len().is_multiple_of(n) {
        bail!("{name}: {} values are not whole samples of {n}", samples.len());
    }
    let count = samples.len() / n;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("samples.bin"), samples.file())?;

    // The host reference runs while QEMU does: per sample, the code, the reconstruction's bytes
    // as the firmware writes them, and the score.
    type Expected = (Vec<i8>, Vec<u8>, Vec<u32>);
    let (expected, run) = std::thread::scope(|s| {
        let host = s.spawn(|| -> Result<Expected, autoencoder_core::ModelError> {
            Ok(match samples {
                Samples::Pixels(pixels) => {
                    let outputs = reference::run_model(model.clone(), pixels)?;
                    (outputs.codes, outputs.images, outputs.scores)
                }
                Samples::Floats(values) => {
                    let outputs = reference::run_floats(model.clone(), values)?;
                    let mut bytes = Vec::with_capacity(count * 5 * n);
                    for (decoded, values) in outputs.decoded.chunks_exact(n).zip(outputs.values.chunks_exact(n)) {
                        bytes.extend(decoded.iter().map(|&q| q as u8));
                        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                    }
                    (outputs.codes, bytes, outputs.scores)
                }
            })
        });
        let run = qemu::run_on(
            board,
            elf,
            &["--samples", "samples.bin", "--out", "out.bin"],
            dir.path(),
            options,
        );
        (host.join().expect("the host reference does not panic"), run)
    });
    let (expected_codes, expected_outputs, expected_scores) =
        expected.map_err(|e| anyhow::anyhow!("{name}: the host rejects the model or a sample: {e}"))?;
    let run = run?;
    if !run.status.success() {
        bail!("{name}: the firmware failed ({}):\n{}", run.status, run.output());
    }
    let out = std::fs::read(dir.path().join("out.bin")).context("reading the firmware's output")?;
    let output_len = if pixels { n } else { 5 * n };
    let record = record_len(model);
    if out.len() != count * record {
        bail!(
            "{name}: the firmware wrote {} bytes, {count} samples of {record} bytes were expected:\n{}",
            out.len(),
            run.output()
        );
    }

    let mut report = Report {
        model: name.clone(),
        samples: count,
        outputs: count * (code_len + if pixels { n } else { 2 * n } + 2),
        mismatches: 0,
        details: String::new(),
        scores: Vec::with_capacity(count),
        flags: Vec::with_capacity(count),
        encode_ticks: Vec::with_capacity(count),
        reconstruct_ticks: Vec::with_capacity(count),
        score_ticks: Vec::with_capacity(count),
        qemu_wall: run.wall,
        stack: StackPeaks::parse(&run.output()),
    };
    let expected_codes = expected_codes.chunks_exact(code_len.max(1));
    let expected_outputs = expected_outputs.chunks_exact(output_len);
    let word = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
    for (index, (((record, code), output), &want_score)) in out
        .chunks_exact(record)
        .zip(expected_codes)
        .zip(expected_outputs)
        .zip(&expected_scores)
        .enumerate()
    {
        let (got_code, rest) = record.split_at(code_len);
        let (got_output, rest) = rest.split_at(output_len);
        let (got_score, rest) = rest.split_at(4);
        let (got_flag, ticks) = (rest[0], &rest[1..]);
        let got_score = word(got_score);
        if got_score != want_score {
            report.mismatch(format_args!(
                "{name}: sample {index}, anomaly score: firmware {got_score}, host {want_score}"
            ));
        }
        let want_flag = flag_byte(model, want_score);
        if got_flag != want_flag {
            report.mismatch(format_args!(
                "{name}: sample {index}, flag (threshold {:?}): firmware {got_flag:#04x}, host {want_flag:#04x}",
                model.threshold()
            ));
        }
        report.scores.push(got_score);
        report.flags.push(flag_of(got_flag));
        for (position, (&got, &want)) in got_code.iter().zip(code).enumerate() {
            if got as i8 != want {
                report.mismatch(format_args!(
                    "{name}: sample {index}, code {position}: firmware {}, host {want}",
                    got as i8
                ));
            }
        }
        match samples {
            Samples::Pixels(_) => {
                for (position, (&got, &want)) in got_output.iter().zip(output).enumerate() {
                    if got != want {
                        report.mismatch(format_args!(
                            "{name}: image {index}, pixel {position}: firmware {got}, host {want}"
                        ));
                    }
                }
            }
            Samples::Floats(values) => {
                let input = |i: usize| values[index * n + i];
                let (got_codes, got_values) = got_output.split_at(n);
                let (want_codes, want_values) = output.split_at(n);
                for (position, (&got, &want)) in got_codes.iter().zip(want_codes).enumerate() {
                    if got != want {
                        report.mismatch(format_args!(
                            "{name}: sample {index}, int8 output {position} (input {:e}): firmware {}, host {}",
                            input(position),
                            got as i8,
                            want as i8
                        ));
                    }
                }
                let words = |bytes: &[u8]| -> Vec<f32> {
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect()
                };
                for (position, (got, want)) in words(got_values).into_iter().zip(words(want_values)).enumerate() {
                    if got.to_bits() != want.to_bits() {
                        report.mismatch(format_args!(
                            "{name}: sample {index}, f32 output {position} (input {:e}): firmware {got:e} ({:#010x}), \
                             host {want:e} ({:#010x})",
                            input(position),
                            got.to_bits(),
                            want.to_bits()
                        ));
                    }
                }
            }
        }
        report.encode_ticks.push(word(&ticks[..4]));
        report.reconstruct_ticks.push(word(&ticks[4..8]));
        report.score_ticks.push(word(&ticks[8..]));
    }
    Ok(report)
}

/// Builds the QEMU firmware with the model file at `path`, streams `samples` through it and
/// compares every code, reconstruction, score and flag with the host's ([`run_samples`]); the
/// QEMU run's time limit grows with the samples and the model's multiply-accumulates
/// ([`crate::time_limit`]). The whole check of one model file on any samples, e.g. every test
/// window of a sensor model:
///
/// ```no_run
/// # fn demo(windows: &[f32]) -> anyhow::Result<()> {
/// use host_tests::check::{self, Samples};
/// let path = host_tests::repo_root().join("models/vibration-anomaly.aeq");
/// let report = check::model_file(&path, Samples::Floats(windows))?;
/// assert_eq!(report.mismatches, 0, "{}", report.details);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The model file cannot be read or loaded, the firmware does not build, and the errors of
/// [`run_samples`].
pub fn model_file(path: &Path, samples: Samples<'_>) -> Result<Report> {
    model_file_with(path, samples, crate::firmware::Kernels::Dsp)
}

/// [`model_file`] with the firmware built with the chosen kernels (the default DSP path, or
/// the portable one).
///
/// # Errors
/// As [`model_file`].
pub fn model_file_with(path: &Path, samples: Samples<'_>, kernels: Kernels) -> Result<Report> {
    model_file_for(path, samples, Board::Qemu, kernels)
}

/// [`model_file`] with the firmware built for `board` with its default kernels
/// ([`Board::default_kernels`]), run on its QEMU machine: `Board::Microbit` checks the Cortex-M0.
///
/// # Errors
/// As [`model_file`].
pub fn model_file_on(path: &Path, samples: Samples<'_>, board: Board) -> Result<Report> {
    model_file_for(path, samples, board, board.default_kernels())
}

/// [`model_file`] for `board` and `kernels`.
fn model_file_for(path: &Path, samples: Samples<'_>, board: Board, kernels: Kernels) -> Result<Report> {
    let blob = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let elf = crate::firmware::build_with(path, board, kernels)?;
    let options = Options {
        icount_shift: None,
        timeout: crate::time_limit(samples.len() / model.input_len().max(1), crate::sample_macs(&model)),
    };
    run_samples_on(board, path, &model, &elf, samples, options)
}

impl Report {
    fn mismatch(&mut self, line: std::fmt::Arguments<'_>) {
        if self.mismatches < SHOWN {
            let _ = writeln!(self.details, "{line}");
        }
        self.mismatches += 1;
    }

    /// One line: model, samples, outputs, mismatches, the scores' range, the flags, QEMU time.
    pub fn summary(&self) -> String {
        let (anomalies, normal) = self.flag_counts();
        let flags = if anomalies + normal > 0 {
            format!("{anomalies} flagged, {normal} not")
        } else {
            "no threshold".to_string()
        };
        format!(
            "{}: {} samples, {} outputs, {} mismatches; scores {} to {}, {flags} (QEMU {:.1} s)",
            self.model,
            self.samples,
            self.outputs,
            self.mismatches,
            self.scores.iter().min().unwrap_or(&0),
            self.scores.iter().max().unwrap_or(&0),
            self.qemu_wall.as_secs_f64()
        )
    }

    /// Mean SysTick ticks of an encode, of a reconstruction and of a score.
    pub fn mean_ticks(&self) -> (f64, f64, f64) {
        let mean = |t: &[u32]| t.iter().map(|&t| f64::from(t)).sum::<f64>() / t.len().max(1) as f64;
        (
            mean(&self.encode_ticks),
            mean(&self.reconstruct_ticks),
            mean(&self.score_ticks),
        )
    }

    /// Samples flagged as anomalies, and samples under the threshold (both 0 for a model
    /// without a threshold).
    pub fn flag_counts(&self) -> (usize, usize) {
        let count = |want| self.flags.iter().filter(|&&f| f == Some(want)).count();
        (count(true), count(false))
    }
}

/// Builds each of `models` with `build`, one after the other (builds share a target directory),
/// and checks every one already built, two QEMU runs at a time on mps2-an386: the first
/// `count(model)` of `images` for a model of pixels; for a model of float input as many random
/// samples of its raw range and every edge sample ([`crate::float_samples`]). One result per
/// model, in the order they finished.
pub fn run_models(
    models: Vec<PathBuf>,
    images: &[[u8; PIXELS]],
    count: impl Fn(&Model<'_>) -> usize + Sync,
    build: impl FnMut(&Path) -> Result<PathBuf> + Send,
) -> Vec<(PathBuf, Result<Report>)> {
    run_models_on(Board::Qemu, models, images, count, build)
}

/// [`run_models`] with firmwares `build` makes for `board`, run on its QEMU machine.
pub fn run_models_on(
    board: Board,
    models: Vec<PathBuf>,
    images: &[[u8; PIXELS]],
    count: impl Fn(&Model<'_>) -> usize + Sync,
    mut build: impl FnMut(&Path) -> Result<PathBuf> + Send,
) -> Vec<(PathBuf, Result<Report>)> {
    let (built_tx, built_rx) = mpsc::channel();
    let built_rx = Mutex::new(built_rx);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(move || {
            for model in models {
                let elf = build(&model);
                built_tx
                    .send((model, elf))
                    .expect("the checking threads outlive the builds");
            }
        });
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = built_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok((model, elf)) = next else { break };
                let result = elf.and_then(|elf| check_built(board, &model, &elf, images, &count));
                results
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((model, result));
            });
        }
    });
    results.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// One model of [`run_models_on`], already built into `elf` for `board`.
fn check_built(
    board: Board,
    model: &Path,
    elf: &Path,
    images: &[[u8; PIXELS]],
    count: &impl Fn(&Model<'_>) -> usize,
) -> Result<Report> {
    let blob = std::fs::read(model)?;
    let parsed = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let count = count(&parsed);
    let options = Options {
        icount_shift: None,
        timeout: crate::time_limit(count, crate::sample_macs(&parsed)),
    };
    let floats;
    let samples = if takes_pixels(&parsed) {
        Samples::Pixels(
            images
                .get(..count)
                .context("fewer test images than asked for")?
                .as_flattened(),
        )
    } else {
        let edges = crate::float_samples::edge_sample_count(&parsed);
        floats = [
            crate::float_samples::random_samples(&parsed, count, 1),
            crate::float_samples::edge_samples(&parsed, 0..edges),
        ]
        .concat()
        .concat();
        Samples::Floats(&floats)
    };
    run_samples_on(board, model, &parsed, elf, samples, options)
}
