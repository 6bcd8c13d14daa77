//! `trainer export`, `eval` and `inspect`: a trained run becomes one int8 model file, which is
//! then measured and described.

use crate::anomaly::threshold::{self, ThresholdFit};
use crate::checkpoint;
use crate::data::{Dataset, Samples};
use crate::int8;
use crate::provenance::Provenance;
use crate::quantize::{self, InputSpec, QLayer, QWeights, Quantized};
use crate::train::{State, CHECKPOINT};
use anyhow::{bail, Context, Result};
use autoencoder_core::model::{InputScaling, Owned, WeightShape};
use autoencoder_core::{Model, Runner};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The extension of model files.
pub const EXTENSION: &str = "aeq";

/// Images of the test set whose outputs go into the golden vectors (plus four synthetic ones).
pub const GOLDEN_TEST_IMAGES: usize = 8;

/// What an export produced and measured.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// Variant.
    pub variant: String,
    /// The model file written.
    pub model: PathBuf,
    /// The golden vectors written beside it.
    pub golden: PathBuf,
    /// Size of the model file.
    pub bytes: usize,
    /// Test MSE of the float model (clean test images in, compared with themselves).
    pub float_test_mse: f64,
    /// Test MSE of the int8 model run by the core, the same way.
    pub int8_test_mse: f64,
    /// Whether the run had finished all its phases.
    pub finished: bool,
    /// The anomaly threshold stored in the model, when one was asked for.
    pub threshold: Option<ThresholdFit>,
}

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Training samples used to calibrate the activation ranges.
    pub calibration: usize,
    /// Store an anomaly threshold that flags this fraction of normal samples
    /// ([`crate::anomaly::threshold`]).
    pub threshold_fpr: Option<f64>,
    /// The run directory, recorded in the model's provenance so that `trainer score` finds the
    /// float model again.
    pub run_dir: Option<PathBuf>,
    /// Threads for the quantization search, the int8 test MSE and the threshold's samples (at
    /// least 1); the model file is the same for any count.
    pub threads: usize,
}

/// The golden-vector file that goes with a model file: `x.aeq` → `x.golden.json`.
pub fn golden_path(model: &Path) -> PathBuf {
    model.with_extension("golden.json")
}

/// Writes the model file `out` (`bytes`) and its golden vectors beside it ([`golden_path`]), both
/// or neither: a failure leaves the earlier model and its golden vectors as they were. Returns
/// the golden vectors' path.
pub fn write_model_and_golden(out: &Path, bytes: &[u8], golden: &int8::Golden) -> std::io::Result<PathBuf> {
    let golden_file = golden_path(out);
    let golden_json = checkpoint::json_text(golden)?;
    checkpoint::write_all_or_nothing(&[(out, bytes), (&golden_file, golden_json.as_bytes())])?;
    Ok(golden_file)
}

/// The trained run in `run_dir`, from its checkpoint, with errors that name the directory.
pub fn load_run(run_dir: &Path) -> Result<State> {
    let ckpt = run_dir.join(CHECKPOINT);
    if !ckpt.exists() {
        bail!(
            "{} holds no trained run (no {CHECKPOINT}); train it first",
            run_dir.display()
        );
    }
    checkpoint::load(&ckpt).with_context(|| format!("loading {}", ckpt.display()))
}

/// Exports a trained run (see [`load_run`]) to `out` (and its golden vectors beside it),
/// quantizing with `calibration` training samples of `data` (raw, as read). The model file records
/// the input shape, the run's scaling and the provenance (trainer, commit, data hashes).
pub fn export(state: &State, out: &Path, data: &Dataset, options: &ExportOptions) -> Result<ExportReport> {
    let calibration = options.calibration;
    let variant = state.config.variant.clone();
    let record = state.config.data.as_ref().unwrap_or(&data.record);
    let width = data.train.features();
    if state.model.input != width {
        bail!(
            "the run's model takes {} inputs, the data's samples have {width} (shape {:?})",
            state.model.input,
            data.train.shape()
        );
    }
    let calibration = calibration.clamp(1, data.train.len());
    let raw_calibration = &data.train.values()[..calibration * width];
    let mut provenance = Provenance::of(state.config.data.as_ref());
    provenance.run = options.run_dir.as_ref().map(|d| d.display().to_string());
    let source = provenance.to_json();
    let mut scaled_calibration = raw_calibration.to_vec();
    for row in scaled_calibration.chunks_exact_mut(width) {
        record.scaling.apply_row(row);
    }
    let input = InputSpec::for_data(data.train.shape(), &record.scaling, &scaled_calibration, source);
    let float_test_mse = quantize::float_mse(&state.model, &input.scaled(data.test.values()));
    let threads = options.threads.max(1);
    let mut quantized = quantize::quantize(&state.model, &variant, &input, raw_calibration, float_test_mse, threads)
        .with_context(|| format!("quantizing {variant}"))?;
    let mut bytes = quantized.to_bytes()?;
    let threshold = match options.threshold_fpr {
        None => None,
        Some(fpr) => {
            let fit = threshold::fit(&loaded(&bytes)?, data, fpr, threads)?;
            quantized.anomaly.threshold = Some(fit.stored());
            bytes = quantized.to_bytes()?;
            Some(fit)
        }
    };
    let model = loaded(&bytes)?;
    let int8_test_mse = quantize::int8_mse(&model, &input, data.test.values(), threads);
    let file = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Golden vectors feed bytes: the test samples themselves where they are bytes, else only the
    // synthetic cases.
    let test_bytes: Vec<u8> = if data.test.element() == crate::data::Element::U8 {
        data.test.values().iter().map(|&v| v as u8).collect()
    } else {
        Vec::new()
    };
    let golden = int8::golden(&quantized, &file, &test_bytes, GOLDEN_TEST_IMAGES);
    check_against_core(&model, &golden)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let golden_file = write_model_and_golden(out, &bytes, &golden)
        .with_context(|| format!("writing {} and {}", out.display(), golden_path(out).display()))?;
    Ok(ExportReport {
        variant,
        model: out.to_path_buf(),
        golden: golden_file,
        bytes: bytes.len(),
        float_test_mse,
        int8_test_mse,
        finished: state.finished,
        threshold,
    })
}

/// The exported bytes as a model, or why they do not load.
fn loaded(bytes: &[u8]) -> Result<Model<'_>> {
    Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("the exported model does not load: {e}"))
}

/// The golden vectors come from the integer reference; the core must agree with them before
/// they are written.
pub fn check_against_core(model: &Model<'_>, golden: &int8::Golden) -> Result<()> {
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut code = vec![0i8; model.code_len()];
    let mut image = vec![0u8; model.input_len()];
    for case in &golden.cases {
        let input = unhex(&case.input)?;
        if input.len() != model.input_len() {
            bail!(
                "golden input {} of {} is {} bytes, the model takes {}",
                case.source,
                golden.model,
                input.len(),
                model.input_len()
            );
        }
        runner
            .encode_u8_into(&input, &mut code)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        runner
            .denoise_into(&input, &mut image)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if int8::hex(code.iter().map(|&c| c as u8)) != case.code || int8::hex(image.iter().copied()) != case.denoise {
            bail!(
                "the core and the integer reference disagree on {} of {}: the export is not trustworthy",
                case.source,
                golden.model
            );
        }
    }
    Ok(())
}

/// Bytes from lowercase or uppercase hex.
pub fn unhex(s: &str) -> Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        bail!("odd-length hex string");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).with_context(|| format!("bad hex at {i}")))
        .collect()
}

/// Reads a model file, with errors that name it.
pub fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading model file {}", path.display()))
}

/// Loads a model from bytes read from `path`.
pub fn load<'a>(path: &Path, bytes: &'a [u8]) -> Result<Model<'a>> {
    Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Test MSE of the int8 model run by the core on `test` (raw samples, clean in; output codes
/// read back through the output's scale and zero point, against the samples scaled by the
/// model's own scaling), on `threads` threads (the same figure for any count).
pub fn int8_mse(model: &Model<'_>, test: &Samples, threads: usize) -> Result<f64> {
    if test.features() != model.input_len() {
        bail!(
            "the model takes {} inputs (shape {:?}), the samples have {} (shape {:?})",
            model.input_len(),
            model.input_shape(),
            test.features(),
            test.shape()
        );
    }
    Ok(quantize::int8_mse(
        model,
        &InputSpec::of_model(model),
        test.values(),
        threads,
    ))
}

/// The `eval` report of one model file.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Variant.
    pub variant: String,
    /// Test images used.
    pub images: usize,
    /// The float model's test MSE, recorded at export.
    pub float_test_mse: f64,
    /// The int8 model's test MSE, measured now.
    pub int8_test_mse: f64,
    /// `int8 / float`.
    pub ratio: f64,
    /// Int8 squared error per image (sum over its values, 784 pixels).
    pub int8_per_image_se: f64,
}

/// Evaluates a model file on `test` (raw samples), on `threads` threads.
pub fn eval(path: &Path, test: &Samples, threads: usize) -> Result<EvalReport> {
    let bytes = read_model_file(path)?;
    let model = load(path, &bytes)?;
    let int8_test_mse = int8_mse(&model, test, threads)?;
    let float_test_mse = f64::from(model.body().float_test_mse);
    Ok(EvalReport {
        variant: model.body().name.to_string(),
        images: test.len(),
        float_test_mse,
        int8_test_mse,
        ratio: int8_test_mse / float_test_mse,
        int8_per_image_se: int8_test_mse * model.input_len() as f64,
    })
}

/// Everything in a model file, owned (what `inspect --json` prints).
pub fn inspect(path: &Path) -> Result<(Quantized, usize, usize)> {
    let bytes = read_model_file(path)?;
    let model = load(path, &bytes)?;
    Ok((Quantized::from_core(&model), bytes.len(), model.scratch_len()))
}

/// `inspect`'s human-readable description.
pub fn describe(q: &Quantized, file_bytes: usize, scratch: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {:?}: format version {}, kind {}, {file_bytes} bytes, scratch {scratch} bytes",
        q.name, q.format_version, q.kind
    );
    let _ = writeln!(s, "float test MSE at export: {}", q.float_test_mse);
    let _ = writeln!(
        s,
        "input: shape {:?} ({} values), scaling {}, scale {} zero point {}",
        q.input_shape.as_slice(),
        q.input_len(),
        scaling_summary(&q.input_scaling),
        q.input.scale,
        q.input.zero_point
    );
    if !q.source.is_empty() {
        let _ = writeln!(s, "source: {}", q.source);
    }
    let _ = writeln!(
        s,
        "code: output of layer {} ({} values)",
        q.code_after - 1,
        q.code_len()
    );
    let a = &q.anomaly;
    let _ = match a.threshold {
        Some(t) => writeln!(
            s,
            "anomaly: threshold {} (a score above it is flagged; fitted to flag {} of normal samples), \
             score requantization multiplier {} shift {}",
            t.score, t.false_positive_rate, a.score_multiplier, a.score_shift
        ),
        None => writeln!(
            s,
            "anomaly: no threshold (export with --threshold-fpr to store one), score requantization \
             multiplier {} shift {}",
            a.score_multiplier, a.score_shift
        ),
    };
    for (i, layer) in q.layers.iter().enumerate() {
        let _ = writeln!(s, "layer {i}: {}{}", layer.type_name(), layer_summary(layer));
        let Some(w) = layer.weighted() else { continue };
        let p = w.params;
        for (c, (((scale, bias), m), sh)) in p
            .weight_scales
            .iter()
            .zip(p.bias.iter())
            .zip(p.multipliers.iter())
            .zip(&p.shifts)
            .enumerate()
        {
            let _ = write!(
                s,
                "    channel {c}: weight scale {scale:e}, bias {bias}, multiplier {m}, shift {sh}"
            );
            let _ = match &w.fused {
                Some(f) => writeln!(
                    s,
                    ", negative multiplier {}, shift {}",
                    f.negative_multipliers[c], f.negative_shifts[c]
                ),
                None => writeln!(s),
            };
        }
    }
    s
}

/// What follows a layer's type name in `inspect`: its shape and parameters in brief (with the
/// separator in front).
fn layer_summary(layer: &QLayer) -> String {
    if let Some(w) = layer.weighted() {
        let shape = match w.shape {
            WeightShape::Dense { inputs, outputs } => format!("{inputs} -> {outputs}"),
            WeightShape::Conv(g) => format!(
                "{}x{}x{} -> {}x{}x{}, kernel {k}x{k}",
                g.height,
                g.width,
                g.in_channels,
                g.height + 1 - g.kernel,
                g.width + 1 - g.kernel,
                g.out_channels,
                k = g.kernel
            ),
        };
        let slope = w.fused.map(|f| format!(", slope {}", f.slope)).unwrap_or_default();
        return format!(" {shape}{slope}, {}", weights_summary(w.params));
    }
    match layer {
        QLayer::MaxPool2d {
            height,
            width,
            channels,
        } => format!(
            " {height}x{width}x{channels} -> {}x{}x{channels}",
            height / 2,
            width / 2
        ),
        QLayer::Table {
            activation,
            table,
            output,
        } => {
            let slope = match activation {
                autoencoder_core::model::Activation::LeakyRelu { slope } => format!(" slope {slope},"),
                autoencoder_core::model::Activation::Logistic => ",".to_string(),
            };
            format!(
                "{slope} output scale {} zero point {}, table {}",
                output.scale,
                output.zero_point,
                table_summary(table)
            )
        }
        QLayer::TopK { k } => format!(" k = {k}"),
        other => format!(" {other:?}"),
    }
}

/// An input scaling in brief: `unit (x / 255)`, or the arrays' first values.
fn scaling_summary(scaling: &InputScaling<'static, Owned>) -> String {
    match scaling {
        InputScaling::None => "none (x as is)".to_string(),
        InputScaling::Unit => "unit (x / 255)".to_string(),
        InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => {
            let show = |v: &[f32]| {
                let head: Vec<String> = v.iter().take(3).map(|x| format!("{x:e}")).collect();
                let more = if v.len() > 3 { " ..." } else { "" };
                format!("[{}{more}]", head.join(" "))
            };
            format!(
                "{} ((x - offset) / divisor), offset {}, divisor {}",
                scaling.name(),
                show(offset),
                show(divisor)
            )
        }
    }
}

fn weights_summary(p: &QWeights) -> String {
    format!(
        "{} int8 weights, output scale {} zero point {}",
        p.weights.len(),
        p.output.scale,
        p.output.zero_point
    )
}

fn table_summary(table: &[i8]) -> String {
    let show = |r: std::ops::Range<usize>| table[r].iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
    format!("[{} ... {}]", show(0..4), show(252..256))
}
