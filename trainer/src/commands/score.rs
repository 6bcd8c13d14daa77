//! `trainer score`: a model file's anomaly scores on a data file, and how well they separate
//! labelled anomalies, as one JSON line; optionally every score as CSV and two figures.

use super::{default_threads, recorded_or_given, DataArgs};
use crate::anomaly::evaluate::{anomaly_labels, float_threshold, ScoreSummary};
use crate::anomaly::threshold::{normal_samples, DEFAULT_FPR};
use crate::anomaly::{float_scores, int8_scores, roc_curve};
use crate::checkpoint::write_atomic;
use crate::data::{self, LoadOptions, Samples};
use crate::figures::{roc, score_histogram, RocSeries};
use crate::infer::{check_fit, load_model, read_model};
use crate::provenance::Provenance;
use crate::quantize::InputSpec;
use crate::train::CHECKPOINT;
use anyhow::{bail, Context, Result};
use autoencoder_core::Model;
use clap::Args;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// `trainer score`'s arguments.
#[derive(Args)]
pub struct ScoreArgs {
    /// Model file (.aeq).
    pub model: PathBuf,
    /// The samples, raw (the model scales and quantizes them itself): a directory of IDX files,
    /// a .npy, a .npz or a .csv. Labels, where the data has them (an .npz's `y`/`y_test`, a
    /// CSV's --label-column), mark anomalies: 1 = anomaly, 0 = normal.
    #[arg(long)]
    pub data: PathBuf,
    /// Which samples: train or test [default: the test split where the data has one (an
    /// .npz's x_test, IDX t10k files), else its only samples].
    #[arg(long)]
    pub split: Option<crate::infer::Split>,
    /// CSV: the column that holds labels (its header name, or its 0-based index).
    #[arg(long)]
    pub label_column: Option<String>,
    /// The run the model was exported from, for the float model's scores [default: the run the
    /// model file names, if it still exists].
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Write every sample's scores here: sample, label, score, flagged, float_score.
    #[arg(long, value_name = "OUT.csv")]
    pub scores: Option<PathBuf>,
    /// Draw roc.png and scores.png (normal against anomalous scores) into this directory
    /// (needs labels).
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
    /// Worker threads [default: every core]; the scores do not depend on it.
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
}

/// Scores every sample and prints one JSON line.
pub fn run(args: ScoreArgs) -> Result<()> {
    let threads = args.threads.map_or_else(default_threads, NonZeroUsize::get);
    let bytes = read_model(&args.model)?;
    let model = load_model(&args.model, &bytes)?;
    let samples = load_samples(&args)?;
    check_fit(&model, &args.model, &samples)?;
    let labels = anomaly_labels(&samples)?;
    if args.figures.is_some() && labels.is_none() {
        bail!(
            "{}: no labels, so no ROC curve or anomalous scores to draw: leave out --figures, or give labelled data",
            samples.origin()
        );
    }
    let int8 = int8_scores(&model, &samples, threads)?;
    let run_dir = match &args.run {
        Some(dir) => {
            if !dir.join(CHECKPOINT).exists() {
                bail!("--run {}: no trained run there (no {CHECKPOINT})", dir.display());
            }
            Some(dir.clone())
        }
        None => recorded_run(&model),
    };
    let float = match &run_dir {
        Some(dir) => Some(float_side(&model, &args.model, dir, &samples)?),
        None => None,
    };
    let summary = ScoreSummary::new(
        &int8,
        model.threshold(),
        labels.as_deref(),
        float.as_ref().map(|(s, t)| (s.as_slice(), *t)),
    );
    if let Some(path) = &args.scores {
        let float = float.as_ref().map(|(s, _)| s.as_slice());
        let csv = scores_csv(&int8, model.threshold(), labels.as_deref(), float);
        write_atomic(path, csv.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(dir), Some(labels)) = (&args.figures, &labels) {
        draw(dir, &args.model, &int8, model.threshold(), labels, float.as_ref())?;
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// The samples of the split asked for (default: the test split, where there is one).
fn load_samples(args: &ScoreArgs) -> Result<Samples> {
    let loaded = data::load(
        &args.data,
        &LoadOptions {
            label_column: args.label_column.clone(),
        },
    )?;
    let samples = match (args.split, loaded.test) {
        (Some(crate::infer::Split::Train), _) | (None, None) => loaded.train,
        (_, Some(test)) => test,
        (Some(crate::infer::Split::Test), None) => bail!(
            "{}: no test split (an .npz array `x_test`, or t10k-images-... IDX files): leave out --split test",
            args.data.display()
        ),
    };
    if samples.is_empty() {
        bail!("{}: no samples to score", samples.origin());
    }
    Ok(samples)
}

/// The run directory the model's provenance names, if it still holds a run.
fn recorded_run(model: &Model<'_>) -> Option<PathBuf> {
    let provenance: Provenance = serde_json::from_str(model.source()).ok()?;
    let dir = PathBuf::from(provenance.run?);
    dir.join(CHECKPOINT).exists().then_some(dir)
}

/// The float model's scores of `samples` (scaled as the model file scales them) and its
/// threshold, fitted like the int8 one: on the run's normal samples, at the false positive rate
/// the model's threshold was fitted for (or [`DEFAULT_FPR`] if it holds none).
fn float_side(model: &Model<'_>, model_path: &Path, run: &Path, samples: &Samples) -> Result<(Vec<f32>, Option<f64>)> {
    let state = crate::export::load_run(run)?;
    if state.model.input != model.input_len() {
        bail!(
            "--run {}: its model takes {} inputs, {} takes {}: not the run this model was exported from",
            run.display(),
            state.model.input,
            model_path.display(),
            model.input_len()
        );
    }
    let input = InputSpec::of_model(model);
    let scores = float_scores(&state.model, &input.scaled(samples.values()));
    let data = recorded_or_given(state.config.data.as_ref(), &DataArgs::default(), state.config.seed)
        .with_context(|| format!("reading the data of the run in {}", run.display()))?;
    let (normals, _) = normal_samples(&data);
    let fpr = model
        .body()
        .anomaly
        .threshold
        .map_or(DEFAULT_FPR, |t| f64::from(t.false_positive_rate));
    let threshold = float_threshold(&float_scores(&state.model, &input.scaled(normals.values())), fpr);
    Ok((scores, threshold))
}

/// Every sample's scores as CSV.
fn scores_csv(int8: &[u32], threshold: Option<u32>, labels: Option<&[bool]>, float: Option<&[f32]>) -> String {
    let mut csv = String::from("sample,label,score,flagged,float_score\n");
    for (i, &score) in int8.iter().enumerate() {
        let label = labels.map_or(String::new(), |l| u8::from(l[i]).to_string());
        let flagged = threshold.map_or(String::new(), |t| u8::from(score > t).to_string());
        let float = float.map_or(String::new(), |f| f[i].to_string());
        let _ = writeln!(csv, "{i},{label},{score},{flagged},{float}");
    }
    csv
}

/// roc.png and scores.png in `dir`.
fn draw(
    dir: &Path,
    model_path: &Path,
    int8: &[u32],
    threshold: Option<u32>,
    labels: &[bool],
    float: Option<&(Vec<f32>, Option<f64>)>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = model_path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let int8: Vec<f64> = int8.iter().map(|&s| f64::from(s)).collect();
    let float: Option<Vec<f64>> = float.map(|(s, _)| s.iter().map(|&v| f64::from(v)).collect());
    let mut curves = Vec::new();
    let int8_curve = roc_curve(&int8, labels);
    let float_curve = float.as_ref().and_then(|f| roc_curve(f, labels));
    if let (Some(points), Some(auroc)) = (&int8_curve, crate::anomaly::auroc(&int8, labels)) {
        curves.push(RocSeries {
            label: "int8",
            points,
            auroc,
        });
    }
    if let (Some(points), Some(auroc)) = (
        &float_curve,
        float.as_ref().and_then(|f| crate::anomaly::auroc(f, labels)),
    ) {
        curves.push(RocSeries {
            label: "float",
            points,
            auroc,
        });
    }
    if curves.is_empty() {
        bail!("no ROC curve to draw: the labels hold only one class");
    }
    roc(&dir.join("roc.png"), &format!("{name}: ROC"), &curves)?;
    let of = |anomaly: bool| -> Vec<f64> {
        int8.iter()
            .zip(labels)
            .filter(|&(_, &a)| a == anomaly)
            .map(|(&s, _)| s)
            .collect()
    };
    let (normal, anomalous) = (of(false), of(true));
    score_histogram(
        &dir.join("scores.png"),
        &format!("{name}: int8 anomaly scores"),
        &normal,
        &anomalous,
        threshold.map(f64::from),
    )?;
    Ok(())
}
