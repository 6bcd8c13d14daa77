//! One model, end to end: the firmware under QEMU against the core on the host, every output.
//!
//! The firmware streams samples in and records out (`firmware/src/qemu.rs`): per sample the
//! code (K bytes, int8), the reconstruction, then the ticks of its two steps (u32 little-endian
//! each). The reconstruction of u8 pixels is the denoised image (N bytes); of raw f32 values, the
//! int8 output (N bytes) and the same output dequantized into raw units (N f32 little-endian).

use crate::qemu::{self, Options};
use crate::reference;
use anyhow::{bail, Context, Result};
use autoencoder_core::quantize_f32::is_unit_pixels;
use autoencoder_core::{Model, PIXELS};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Mismatches printed in full before the rest are only counted.
pub const SHOWN: usize = 20;

/// What a run over a set of samples found.
#[derive(Debug)]
pub struct Report {
    /// The model file's name.
    pub model: String,
    /// Samples run.
    pub samples: usize,
    /// Outputs compared: codes, and pixels or int8 and f32 output values.
    pub outputs: usize,
    /// Outputs that differ between firmware and host.
    pub mismatches: usize,
    /// The first [`SHOWN`] mismatches, one per line: model, sample, position, both values.
    pub details: String,
    /// SysTick ticks of each encode (meaningful under `-icount`).
    pub encode_ticks: Vec<u32>,
    /// SysTick ticks of each reconstruction (denoise, or decode with the dequantization).
    pub reconstruct_ticks: Vec<u32>,
    /// Wall time of the QEMU run.
    pub qemu_wall: Duration,
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
/// into `model`) under QEMU and compares every output byte with the core's runner on the host:
/// `encode_u8` and `denoise` for pixels; for f32 values `encode_f32`, `decode` of the code and
/// `reconstruct_f32` (the f32s compared bit for bit).
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

    // The host reference runs while QEMU does: per sample, the code and the reconstruction's
    // bytes as the firmware writes them.
    let (expected, run) = std::thread::scope(|s| {
        let host = s.spawn(|| -> Result<(Vec<i8>, Vec<u8>), autoencoder_core::ModelError> {
            Ok(match samples {
                Samples::Pixels(pixels) => {
                    let outputs = reference::run_model(model.clone(), pixels)?;
                    (outputs.codes, outputs.images)
                }
                Samples::Floats(values) => {
                    let outputs = reference::run_floats(model.clone(), values)?;
                    let mut bytes = Vec::with_capacity(count * 5 * n);
                    for (decoded, values) in outputs.decoded.chunks_exact(n).zip(outputs.values.chunks_exact(n)) {
                        bytes.extend(decoded.iter().map(|&q| q as u8));
                        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                    }
                    (outputs.codes, bytes)
                }
            })
        });
        let run = qemu::run(
            elf,
            &["--samples", "samples.bin", "--out", "out.bin"],
            dir.path(),
            options,
        );
        (host.join().expect("the host reference does not panic"), run)
    });
    let (expected_codes, expected_outputs) =
        expected.map_err(|e| anyhow::anyhow!("{name}: the host rejects the model or a sample: {e}"))?;
    let run = run?;
    if !run.status.success() {
        bail!("{name}: the firmware failed ({}):\n{}", run.status, run.output());
    }
    let out = std::fs::read(dir.path().join("out.bin")).context("reading the firmware's output")?;
    let output_len = if pixels { n } else { 5 * n };
    let record = code_len + output_len + 8;
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
        outputs: count * (code_len + if pixels { n } else { 2 * n }),
        mismatches: 0,
        details: String::new(),
        encode_ticks: Vec::with_capacity(count),
        reconstruct_ticks: Vec::with_capacity(count),
        qemu_wall: run.wall,
    };
    let expected_codes = expected_codes.chunks_exact(code_len.max(1));
    let expected_outputs = expected_outputs.chunks_exact(output_len);
    for (index, ((record, code), output)) in out
        .chunks_exact(record)
        .zip(expected_codes)
        .zip(expected_outputs)
        .enumerate()
    {
        let (got_code, rest) = record.split_at(code_len);
        let (got_output, ticks) = rest.split_at(output_len);
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
        report
            .encode_ticks
            .push(u32::from_le_bytes(ticks[..4].try_into().expect("4 bytes")));
        report
            .reconstruct_ticks
            .push(u32::from_le_bytes(ticks[4..].try_into().expect("4 bytes")));
    }
    Ok(report)
}

impl Report {
    fn mismatch(&mut self, line: std::fmt::Arguments<'_>) {
        if self.mismatches < SHOWN {
            let _ = writeln!(self.details, "{line}");
        }
        self.mismatches += 1;
    }

    /// One line: model, samples, outputs, mismatches, QEMU time.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} samples, {} outputs, {} mismatches (QEMU {:.1} s)",
            self.model,
            self.samples,
            self.outputs,
            self.mismatches,
            self.qemu_wall.as_secs_f64()
        )
    }

    /// Mean SysTick ticks of an encode and of a reconstruction.
    pub fn mean_ticks(&self) -> (f64, f64) {
        let mean = |t: &[u32]| t.iter().map(|&t| f64::from(t)).sum::<f64>() / t.len().max(1) as f64;
        (mean(&self.encode_ticks), mean(&self.reconstruct_ticks))
    }
}
