//! One model, end to end: the firmware under QEMU against the core on the host, every output.

use crate::qemu::{self, Options};
use crate::reference;
use anyhow::{bail, Context, Result};
use autoencoder_core::{Model, PIXELS};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Mismatches printed in full before the rest are only counted.
pub const SHOWN: usize = 20;

/// What a run over a set of images found.
#[derive(Debug)]
pub struct Report {
    /// The model file's name.
    pub model: String,
    /// Images run.
    pub images: usize,
    /// Outputs compared: codes and pixels.
    pub outputs: usize,
    /// Outputs that differ between firmware and host.
    pub mismatches: usize,
    /// The first [`SHOWN`] mismatches, one per line: model, image, position, both values.
    pub details: String,
    /// SysTick ticks of each encode (meaningful under `-icount`).
    pub encode_ticks: Vec<u32>,
    /// SysTick ticks of each denoise.
    pub denoise_ticks: Vec<u32>,
    /// Wall time of the QEMU run.
    pub qemu_wall: Duration,
}

/// Streams `images` through the firmware `elf` (built with the model file at `path`, read and
/// parsed once by the caller into `model`) under QEMU and compares every code and pixel with the
/// core's runner on the host.
///
/// # Errors
/// QEMU cannot run, times out, or the firmware ends with a failure status or writes an output
/// file of the wrong length. Mismatches are not errors: see [`Report::mismatches`].
pub fn run(path: &Path, model: &Model<'_>, elf: &Path, images: &[[u8; PIXELS]], options: Options) -> Result<Report> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("images.bin"), images.concat())?;

    // The host reference runs while QEMU does.
    let (expected, run) = std::thread::scope(|s| {
        let host = s.spawn(|| reference::run_model(model.clone(), images));
        let run = qemu::run(
            elf,
            &["--images", "images.bin", "--out", "out.bin"],
            dir.path(),
            options,
        );
        (host.join().expect("the host reference does not panic"), run)
    });
    let expected = expected.map_err(|e| anyhow::anyhow!("{name}: the host rejects the model: {e}"))?;
    let run = run?;
    if !run.status.success() {
        bail!("{name}: the firmware failed ({}):\n{}", run.status, run.output());
    }
    let out = std::fs::read(dir.path().join("out.bin")).context("reading the firmware's output")?;
    let code_len = expected.code_len;
    let record = code_len + PIXELS + 8;
    if out.len() != images.len() * record {
        bail!(
            "{name}: the firmware wrote {} bytes, {} images of {record} bytes were expected:\n{}",
            out.len(),
            images.len(),
            run.output()
        );
    }

    let mut report = Report {
        model: name.clone(),
        images: images.len(),
        outputs: images.len() * (code_len + PIXELS),
        mismatches: 0,
        details: String::new(),
        encode_ticks: Vec::with_capacity(images.len()),
        denoise_ticks: Vec::with_capacity(images.len()),
        qemu_wall: run.wall,
    };
    let expected_codes = expected.codes.chunks_exact(code_len.max(1));
    let expected_images = expected.images.chunks_exact(PIXELS);
    for (index, ((record, code), image)) in out
        .chunks_exact(record)
        .zip(expected_codes)
        .zip(expected_images)
        .enumerate()
    {
        let (got_code, rest) = record.split_at(code_len);
        let (got_image, ticks) = rest.split_at(PIXELS);
        for (position, (&got, &want)) in got_code.iter().zip(code).enumerate() {
            if got as i8 != want {
                report.mismatch(format_args!(
                    "{name}: image {index}, code {position}: firmware {}, host {want}",
                    got as i8
                ));
            }
        }
        for (position, (&got, &want)) in got_image.iter().zip(image).enumerate() {
            if got != want {
                report.mismatch(format_args!(
                    "{name}: image {index}, pixel {position} (row {}, column {}): firmware {got}, host {want}",
                    position / 28,
                    position % 28
                ));
            }
        }
        report
            .encode_ticks
            .push(u32::from_le_bytes(ticks[..4].try_into().expect("4 bytes")));
        report
            .denoise_ticks
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

    /// One line: model, images, outputs, mismatches, QEMU time.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} images, {} outputs, {} mismatches (QEMU {:.1} s)",
            self.model,
            self.images,
            self.outputs,
            self.mismatches,
            self.qemu_wall.as_secs_f64()
        )
    }

    /// Mean SysTick ticks of an encode and of a denoise.
    pub fn mean_ticks(&self) -> (f64, f64) {
        let mean = |t: &[u32]| t.iter().map(|&t| f64::from(t)).sum::<f64>() / t.len().max(1) as f64;
        (mean(&self.encode_ticks), mean(&self.denoise_ticks))
    }
}
