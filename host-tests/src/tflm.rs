//! Holds the core to TensorFlow Lite Micro itself: each model file is converted to `.tflite`
//! (`trainer convert`'s converter, [`trainer::tflite`]) and run in TFLM's Python interpreter
//! (the pinned `tflite-micro` build in the virtual environment that `./check.sh` makes), and
//! every code value and output byte is compared with the core's; every stored table is run
//! through TFLM's own op on all 256 inputs.
//!
//! The Python side is a plain runner (`tools/python/tflm_run.py`): it reads a job list of
//! (`.tflite`, input `.npy`) pairs, runs each row through TFLM, and writes the outputs as `.npy`.
//! Everything else (the inputs, the core's outputs, top-k after the encoder, the comparison and
//! its report) happens here.

use crate::repo_root;
use anyhow::{bail, Context, Result};
use autoencoder_core::model::{InputScaling, Quant};
use autoencoder_core::quantize_f32::{dequantize_f32, quantize_f32, quantize_u8};
use autoencoder_core::{top_k_s8, Model, Runner, PIXELS};
use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use trainer::quantize::{QLayer, Quantized};

/// The environment variable naming the Python interpreter that has `tflite-micro`.
pub const PYTHON_ENV: &str = "TFLM_PYTHON";

/// Mismatches listed in full per model; the rest are counted.
const LISTED: usize = 20;

/// The Python interpreter with `tflite-micro`: `$TFLM_PYTHON`, else the repository's
/// `.venv-tflm`. Missing is an error that says how to make it, never a skip.
pub fn python() -> Result<PathBuf> {
    let path = match std::env::var_os(PYTHON_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv-tflm/bin/python"),
    };
    if !path.is_file() {
        bail!(
            "no Python with tflite-micro at {}: run ./check.sh (it creates .venv-tflm), or \
             `python3 -m venv .venv-tflm && .venv-tflm/bin/pip install -r tools/python/requirements.txt`, \
             or set {PYTHON_ENV}",
            path.display()
        );
    }
    Ok(path)
}

/// One model's comparison.
#[derive(Clone, Debug, Default)]
pub struct ModelReport {
    /// The model's variant name.
    pub name: String,
    /// Images compared.
    pub images: usize,
    /// Code values compared, and how many differ.
    pub codes: usize,
    /// Differing code values.
    pub code_mismatches: usize,
    /// Output bytes compared.
    pub outputs: usize,
    /// Differing output bytes.
    pub output_mismatches: usize,
    /// Tables checked against TFLM's op.
    pub tables: usize,
    /// Differing table entries.
    pub table_mismatches: usize,
    /// The first differences, one line each: image, position, core value, TFLM value.
    pub listed: Vec<String>,
}

impl ModelReport {
    /// Whether nothing differs.
    pub fn is_exact(&self) -> bool {
        self.code_mismatches == 0 && self.output_mismatches == 0 && self.table_mismatches == 0
    }

    fn note(&mut self, line: String) {
        if self.listed.len() < LISTED {
            self.listed.push(line);
        }
    }
}

/// The whole comparison.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per model, in the order given.
    pub models: Vec<ModelReport>,
}

impl Report {
    /// Whether every model matched exactly.
    pub fn is_exact(&self) -> bool {
        self.models.iter().all(ModelReport::is_exact)
    }

    /// A markdown table of the counts, then every listed difference.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| model | images | codes | differing | output bytes | differing | tables (x256) | differing entries |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for m in &self.models {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                m.name,
                m.images,
                m.codes,
                m.code_mismatches,
                m.outputs,
                m.output_mismatches,
                m.tables,
                m.table_mismatches
            );
        }
        let total = |f: fn(&ModelReport) -> usize| self.models.iter().map(f).sum::<usize>();
        let _ = writeln!(
            s,
            "| all {} | | {} | {} | {} | {} | {} | {} |",
            self.models.len(),
            total(|m| m.codes),
            total(|m| m.code_mismatches),
            total(|m| m.outputs),
            total(|m| m.output_mismatches),
            total(|m| m.tables),
            total(|m| m.table_mismatches)
        );
        for m in self.models.iter().filter(|m| !m.is_exact()) {
            let _ = writeln!(s, "\n{}: first differences (core vs TFLM):", m.name);
            for line in &m.listed {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

/// What one model needs run in TFLM, and the core's answers to compare with.
struct Prepared {
    quantized: Quantized,
    top_k: Option<(usize, i32)>,
    code_len: usize,
    core_codes: Array2<i8>,
    core_outputs: Array2<i8>,
    /// (layer index, stored table) of every table layer.
    tables: Vec<(usize, Vec<i8>)>,
}

/// One TFLM run: a model, its input rows and where its output rows go.
struct Job {
    tflite: PathBuf,
    input: PathBuf,
    output: PathBuf,
}

fn write_rows(path: &Path, rows: &Array2<i8>) -> Result<()> {
    write_npy(path, rows).with_context(|| format!("writing {}", path.display()))
}

/// Converts one model (or `for_tflm` in its place), runs the core on `images`, and queues its
/// TFLM jobs in `dir`.
fn prepare(
    path: &Path,
    for_tflm: Option<&Quantized>,
    images: &[[u8; PIXELS]],
    dir: &Path,
    jobs: &mut Vec<Job>,
) -> Result<Prepared> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let quantized = for_tflm.cloned().unwrap_or_else(|| Quantized::from_core(&model));
    let converted =
        trainer::tflite::convert(&quantized).with_context(|| format!("converting {} to .tflite", path.display()))?;
    let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let code_len = model.code_len();
    let top_k = converted.top_k.map(|k| {
        let zero_point = quantized.quant_after(usize::from(quantized.code_after) - 1).zero_point;
        (k, zero_point)
    });

    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = images.len();
    let mut pixels = Array2::<i8>::zeros((n, PIXELS));
    let mut core_codes = Array2::<i8>::zeros((n, code_len));
    let mut core_outputs = Array2::<i8>::zeros((n, PIXELS));
    let mut code = vec![0i8; code_len];
    let mut input = [0i8; PIXELS];
    let mut out = [0i8; PIXELS];
    let (scaling, quant) = (model.input_scaling(), model.input_quant());
    for (i, image) in images.iter().enumerate() {
        // The encoder's input is the quantized input (for MNIST, p - 128), as the core makes it.
        quantize_u8(image, &scaling, quant, &mut input).map_err(|e| anyhow::anyhow!("{e}"))?;
        runner
            .encode_into(&input, &mut code)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        runner
            .decode_into(&code, &mut out)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (j, &q) in input.iter().enumerate() {
            pixels[[i, j]] = q;
        }
        for (j, &c) in code.iter().enumerate() {
            core_codes[[i, j]] = c;
        }
        for (j, &q) in out.iter().enumerate() {
            core_outputs[[i, j]] = q;
        }
    }

    let file = |suffix: &str| dir.join(format!("{stem}.{suffix}"));
    std::fs::write(file("encoder.tflite"), &converted.encoder)?;
    std::fs::write(file("decoder.tflite"), &converted.decoder)?;
    write_rows(&file("pixels.npy"), &pixels)?;
    write_rows(&file("core_codes.npy"), &core_codes)?;
    jobs.push(Job {
        tflite: file("encoder.tflite"),
        input: file("pixels.npy"),
        output: file("tflm_codes.npy"),
    });
    // The decoder gets the core's codes, so an encoder difference does not hide a decoder one.
    jobs.push(Job {
        tflite: file("decoder.tflite"),
        input: file("core_codes.npy"),
        output: file("tflm_outputs.npy"),
    });

    let inputs = Array2::from_shape_fn((1, 256), |(_, j)| (j as i32 - 128) as i8);
    write_rows(&file("table_inputs.npy"), &inputs)?;
    let mut tables = Vec::new();
    for (index, layer) in quantized.layers.iter().enumerate() {
        if let QLayer::Table { table, .. } = layer {
            let one_op = trainer::tflite::table_model(layer, quantized.quant_after(index))
                .with_context(|| format!("{}: layer {index}: the one-op table model", path.display()))?;
            let tflite = file(&format!("table{index}.tflite"));
            std::fs::write(&tflite, one_op)?;
            jobs.push(Job {
                tflite,
                input: file("table_inputs.npy"),
                output: file(&format!("tflm_table{index}.npy")),
            });
            tables.push((index, table.clone()));
        }
    }
    Ok(Prepared {
        quantized,
        top_k,
        code_len,
        core_codes,
        core_outputs,
        tables,
    })
}

/// Runs every job in one Python process.
fn run_tflm(python: &Path, dir: &Path, jobs: &[Job]) -> Result<()> {
    let list: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| {
            serde_json::json!({
                "tflite": j.tflite,
                "input": j.input,
                "output": j.output,
            })
        })
        .collect();
    let job_file = dir.join("jobs.json");
    std::fs::write(
        &job_file,
        serde_json::to_vec_pretty(&serde_json::json!({ "jobs": list }))?,
    )?;
    let script = repo_root().join("tools/python/tflm_run.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(&job_file)
        .output()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "the TFLM runner failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Compares TFLM's results for one model with the core's.
fn compare(path: &Path, dir: &Path, p: &Prepared) -> Result<ModelReport> {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let read = |suffix: &str| -> Result<Array2<i8>> {
        let file = dir.join(format!("{stem}.{suffix}"));
        read_npy(&file).with_context(|| format!("reading TFLM's {}", file.display()))
    };
    let mut r = ModelReport {
        name: p.quantized.name.clone(),
        images: p.core_codes.nrows(),
        ..ModelReport::default()
    };
    let mut tflm_codes = read("tflm_codes.npy")?;
    if tflm_codes.dim() != p.core_codes.dim() {
        bail!(
            "{stem}: TFLM's encoder gave {:?} codes, the core {:?}",
            tflm_codes.dim(),
            p.core_codes.dim()
        );
    }
    if let Some((k, zero_point)) = p.top_k {
        // Hard top-k has no TFLM op: applied exactly as the core does, after TFLM's encoder.
        for mut row in tflm_codes.rows_mut() {
            let row = row.as_slice_mut().context("rows are contiguous")?;
            top_k_s8(k, zero_point, row).map_err(|e| anyhow::anyhow!("top-k: {e}"))?;
        }
    }
    for (((i, j), &core), &tflm) in p.core_codes.indexed_iter().zip(&tflm_codes) {
        r.codes += 1;
        if core != tflm {
            r.code_mismatches += 1;
            r.note(format!(
                "image {i}, code position {j}/{}: core {core}, TFLM {tflm}",
                p.code_len
            ));
        }
    }
    let tflm_outputs = read("tflm_outputs.npy")?;
    if tflm_outputs.dim() != p.core_outputs.dim() {
        bail!(
            "{stem}: TFLM's decoder gave {:?} outputs, the core {:?}",
            tflm_outputs.dim(),
            p.core_outputs.dim()
        );
    }
    for (((i, j), &core), &tflm) in p.core_outputs.indexed_iter().zip(&tflm_outputs) {
        r.outputs += 1;
        if core != tflm {
            r.output_mismatches += 1;
            r.note(format!(
                "image {i}, output byte {j}: core {core}, TFLM {tflm} (int8 codes)"
            ));
        }
    }
    for (index, stored) in &p.tables {
        let tflm = read(&format!("tflm_table{index}.npy"))?;
        r.tables += 1;
        for (position, (&s, &t)) in stored.iter().zip(&tflm).enumerate() {
            if s != t {
                r.table_mismatches += 1;
                r.note(format!(
                    "layer {index} table, input code {}: stored {s}, TFLM {t}",
                    position as i32 - 128
                ));
            }
        }
    }
    Ok(r)
}

/// Runs every model in `models` through TFLM on the first `images` MNIST test images and
/// compares every code value, output byte and table entry with the core's.
pub fn compare_models(models: &[PathBuf], images: usize) -> Result<Report> {
    let pairs: Vec<(PathBuf, Option<Quantized>)> = models.iter().map(|m| (m.clone(), None)).collect();
    compare_pairs(&pairs, images)
}

/// The harness's own check: the core runs `model`, TFLM runs `altered` (the same model with
/// something changed), so the comparison must find and report the differences.
pub fn compare_altered(model: &Path, altered: &Quantized, images: usize) -> Result<Report> {
    compare_pairs(&[(model.to_path_buf(), Some(altered.clone()))], images)
}

fn compare_pairs(pairs: &[(PathBuf, Option<Quantized>)], images: usize) -> Result<Report> {
    let python = python()?;
    let test = crate::mnist::test_images(images)?;
    let dir = tempfile::tempdir()?;
    let mut jobs = Vec::new();
    let prepared = pairs
        .iter()
        .map(|(m, alt)| prepare(m, alt.as_ref(), &test, dir.path(), &mut jobs))
        .collect::<Result<Vec<_>>>()?;
    let models: Vec<&PathBuf> = pairs.iter().map(|(m, _)| m).collect();
    run_tflm(&python, dir.path(), &jobs)?;
    let models = models
        .iter()
        .zip(&prepared)
        .map(|(m, p)| compare(m, dir.path(), p))
        .collect::<Result<Vec<_>>>()?;
    Ok(Report { models })
}

/// What [`compare_float_io`] found.
#[derive(Clone, Debug, Default)]
pub struct FloatReport {
    /// Float values quantized by both, over all quantizations.
    pub quantized: usize,
    /// Int8 codes dequantized by both, over all quantizations.
    pub dequantized: usize,
    /// One line per differing value: the quantization, the value, the core's and TFLM's result.
    pub mismatches: Vec<String>,
}

/// The core's float input and output (`autoencoder_core::quantize_f32`, with no scaling) against
/// TFLM's own `QUANTIZE` and `DEQUANTIZE` (`trainer::tflite::float_model`): every value of
/// `values` quantized under each of `quants`, and every int8 code dequantized. The values must be
/// finite with `value / scale` inside i32 (beyond it C++'s cast to int32 is undefined, where the
/// core saturates).
///
/// # Errors
/// When TFLM cannot be run, or a model cannot be written.
pub fn compare_float_io(values: &[f32], quants: &[Quant]) -> Result<FloatReport> {
    use trainer::tflite::{float_model, FloatOp};
    let python = python()?;
    let dir = tempfile::tempdir()?;
    let path = |name: String| dir.path().join(name);
    let input = Array2::from_shape_vec((1, values.len()), values.to_vec())?;
    write_npy(path("values.npy".into()), &input).context("writing values.npy")?;
    let codes: Vec<i8> = (-128..=127).collect();
    write_rows(
        &path("codes.npy".into()),
        &Array2::from_shape_vec((1, 256), codes.clone())?,
    )?;
    let mut jobs = Vec::new();
    for (i, &quant) in quants.iter().enumerate() {
        for (op, name, rows, n) in [
            (FloatOp::Quantize, "quantize", "values.npy", values.len()),
            (FloatOp::Dequantize, "dequantize", "codes.npy", 256),
        ] {
            let tflite = path(format!("{name}{i}.tflite"));
            std::fs::write(&tflite, float_model(op, n, quant)?)?;
            jobs.push(Job {
                tflite,
                input: path(rows.into()),
                output: path(format!("tflm_{name}{i}.npy")),
            });
        }
    }
    run_tflm(&python, dir.path(), &jobs)?;
    let mut report = FloatReport::default();
    for (i, &quant) in quants.iter().enumerate() {
        let q = format!("scale {:e} zero point {}", quant.scale, quant.zero_point);
        let tflm: Array2<i8> = read_npy(path(format!("tflm_quantize{i}.npy"))).context("reading TFLM's codes")?;
        let mut core = vec![0i8; values.len()];
        quantize_f32(values, &InputScaling::None, quant, &mut core).map_err(|e| anyhow::anyhow!("{e}"))?;
        for ((&x, &c), &t) in values.iter().zip(&core).zip(tflm.iter()) {
            report.quantized += 1;
            if c != t {
                report.mismatches.push(format!(
                    "QUANTIZE, {q}: {x:e} ({:#010x}): core {c}, TFLM {t}",
                    x.to_bits()
                ));
            }
        }
        let tflm: Array2<f32> = read_npy(path(format!("tflm_dequantize{i}.npy"))).context("reading TFLM's floats")?;
        let mut core = vec![0f32; 256];
        dequantize_f32(&codes, &InputScaling::None, quant, &mut core).map_err(|e| anyhow::anyhow!("{e}"))?;
        for ((&c, &x), &t) in codes.iter().zip(&core).zip(tflm.iter()) {
            report.dequantized += 1;
            if x.to_bits() != t.to_bits() {
                report
                    .mismatches
                    .push(format!("DEQUANTIZE, {q}: code {c}: core {x:e}, TFLM {t:e}"));
            }
        }
    }
    Ok(report)
}
