//! The one-class MNIST study (`trainer oneclass`): for each digit, the `anomaly` recipe
//! ([`crate::anomaly::recipe`]) trained on that digit's training images alone, a sixth of them
//! held out for validation; then all test images scored, every other digit an anomaly, by the
//! int8 model the core runs (exported through the normal quantizer, calibrated on the digit's
//! training images), by the float model, and by PCA's reconstruction error with as many
//! components as the recipe's code, fitted on the same images. The test set decides nothing
//! about training: it is read only to be scored.
//!
//! Each digit's run goes into `<out>/digit-<d>/` (checkpoint, history, metrics, the model file
//! with its golden vectors, the ROC figure, and `result.json`, the mark of a finished digit);
//! the study into `<out>/summary.md` and `<out>/summary.json`. A finished digit with the same
//! settings is reported again, an interrupted one continues from its checkpoint.

use crate::anomaly::{self, recipe};
use crate::checkpoint::{self, write_json};
use crate::data::{self, DataRequest, Dataset, LoadOptions, Samples, ScalingKind};
use crate::epoch::Observer;
use crate::figures::{self, RocSeries};
use crate::pca::Pca;
use crate::recipe::Config;
use crate::train::{State, Trainer, CHECKPOINT};
use anyhow::{bail, Context, Result};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The study's Markdown summary, in the output directory.
pub const SUMMARY_MD: &str = "summary.md";
/// The study's summary as JSON.
pub const SUMMARY_JSON: &str = "summary.json";
/// A finished digit's result, in its directory.
pub const RESULT: &str = "result.json";
/// The ROC figure, in a digit's directory.
pub const ROC: &str = "roc.png";
/// The mean AUROC the study is held to.
pub const MEAN_TARGET: f64 = 0.95;
/// The largest |int8 − float| AUROC difference allowed for any digit.
pub const INT8_TOLERANCE: f64 = 0.005;
/// One-class Deep SVDD's mean AUROC over the ten MNIST digits (Ruff et al., ICML 2018).
pub const DEEP_SVDD_MEAN: f64 = 0.948;

/// What a study's numbers depend on besides the data and the digit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Seed of the holdout, initialisation and shuffling.
    pub seed: u64,
    /// Threads (training results are identical for the same seed and thread count).
    pub threads: usize,
    /// Train on the first N training images of the digit (after the holdout) only.
    pub train_limit: Option<usize>,
    /// Score the first N test images only.
    pub test_limit: Option<usize>,
    /// Cap the epochs below the recipe's.
    pub epochs: Option<usize>,
    /// Training images that calibrate the int8 model's activation ranges.
    pub calibration: usize,
}

/// One digit's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitResult {
    /// The normal digit.
    pub digit: u8,
    /// Training images trained on (the digit's, less the holdout).
    pub train_samples: usize,
    /// The digit's training images held out for validation.
    pub validation_samples: usize,
    /// Epochs run.
    pub epochs: usize,
    /// The float model's MSE on the held-out images at the end.
    pub validation_mse: f64,
    /// The int8 model's MSE on the held-out images.
    pub int8_validation_mse: f64,
    /// The model file's size.
    pub model_bytes: usize,
    /// Test images scored, and how many of them are anomalies (other digits).
    pub test_samples: usize,
    /// Test images of other digits.
    pub anomalies: usize,
    /// AUROC of the int8 model's scores (the core's integer score).
    pub auroc_int8: f64,
    /// AUROC of the float model's per-image MSE.
    pub auroc_float: f64,
    /// AUROC of PCA's per-image reconstruction error.
    pub auroc_pca: f64,
    /// Wall seconds: training, export and scoring.
    pub seconds: f64,
    /// The settings it was made with.
    pub settings: Settings,
}

impl DigitResult {
    /// `auroc_int8 − auroc_float`.
    pub fn int8_minus_float(&self) -> f64 {
        self.auroc_int8 - self.auroc_float
    }
}

/// Means over the digits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Means {
    /// Mean int8 AUROC.
    pub int8: f64,
    /// Mean float AUROC.
    pub float: f64,
    /// Mean PCA AUROC.
    pub pca: f64,
}

/// Whether the study met the targets it is held to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// The int8 models' mean AUROC is at least [`MEAN_TARGET`].
    pub mean_auroc: bool,
    /// The int8 models' mean AUROC is above PCA's.
    pub beats_pca: bool,
    /// |int8 − float| AUROC is at most [`INT8_TOLERANCE`] for every digit.
    pub int8_close: bool,
}

/// The whole study, as `summary.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The recipe's network for 784 inputs, e.g. `784-128-128-16-128-128-784`.
    pub network: String,
    /// PCA's components (the recipe's code width).
    pub pca_components: usize,
    /// The settings.
    pub settings: Settings,
    /// Per digit, in the order asked.
    pub digits: Vec<DigitResult>,
    /// Means over the digits.
    pub mean: Means,
    /// The largest |int8 − float| AUROC difference.
    pub max_abs_int8_minus_float: f64,
    /// The targets.
    pub targets: Targets,
    /// Wall seconds of this invocation (finished digits reported again cost nothing).
    pub wall_seconds: f64,
    /// The CPU's vector extensions the matrix products can use.
    pub cpu: String,
}

/// MNIST for the study: labelled training and test images from the IDX directory `dir`.
pub struct StudyData {
    /// What was read, as a request (the holdout seed set per study).
    dir: PathBuf,
    train: Samples,
    test: Samples,
    files: Vec<data::SourceFile>,
}

impl StudyData {
    /// Reads the IDX directory `dir` (MNIST's four files): training and test images, both
    /// labelled.
    pub fn load(dir: &Path) -> Result<StudyData> {
        let loaded = data::load(dir, &LoadOptions::default())?;
        let Some(test) = loaded.test else {
            bail!(
                "{}: no test images (t10k-images-...); the one-class study scores the test set",
                dir.display()
            );
        };
        if loaded.train.labels().is_none() || test.labels().is_none() {
            bail!(
                "{}: the one-class study needs labelled training and test images (train-labels-... and t10k-labels-...)",
                dir.display()
            );
        }
        Ok(StudyData {
            dir: dir.to_path_buf(),
            train: loaded.train,
            test,
            files: loaded.files,
        })
    }
}

/// The study's network for `input` features, as `784-128-128-16-128-128-784`.
fn network(input: usize) -> String {
    let (h, c) = (recipe::hidden_width(input), recipe::code_width(input));
    format!("{input}-{h}-{h}-{c}-{h}-{h}-{input}")
}

/// Runs the study for `digits` into `out` (reporting finished digits again unless `force`),
/// telling `observer` of the training, `say` of each digit's result; writes and returns the
/// summary.
pub fn run(
    data: &StudyData,
    digits: &[u8],
    settings: &Settings,
    out: &Path,
    force: bool,
    observer: &mut dyn Observer,
    mut say: impl FnMut(&str),
) -> Result<Summary> {
    if digits.is_empty() {
        bail!("no digits to study");
    }
    let t0 = Instant::now();
    let input = data.train.features();
    let mut results = Vec::new();
    for &digit in digits {
        let dir = out.join(format!("digit-{digit}"));
        let stored = std::fs::read(dir.join(RESULT))
            .ok()
            .and_then(|b| serde_json::from_slice::<DigitResult>(&b).ok());
        let result = match stored {
            Some(r) if !force && r.settings == *settings && r.digit == digit => {
                say(&format!("digit {digit}: finished in {}, reported again", dir.display()));
                r
            }
            _ => {
                let r = study_digit(data, digit, settings, &dir, force, observer)?;
                write_json(&dir.join(RESULT), &r).with_context(|| format!("writing {}", dir.join(RESULT).display()))?;
                r
            }
        };
        say(&format!(
            "digit {digit}: AUROC int8 {:.4}, float {:.4}, PCA {:.4} ({} epochs, {:.0} s)",
            result.auroc_int8, result.auroc_float, result.auroc_pca, result.epochs, result.seconds
        ));
        results.push(result);
    }
    let summary = summarize(network(input), recipe::code_width(input), settings, results, t0);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let md = out.join(SUMMARY_MD);
    checkpoint::write_atomic(&md, markdown(&summary).as_bytes())
        .with_context(|| format!("writing {}", md.display()))?;
    let json = out.join(SUMMARY_JSON);
    write_json(&json, &summary).with_context(|| format!("writing {}", json.display()))?;
    Ok(summary)
}

/// One digit: train, export, score.
fn study_digit(
    data: &StudyData,
    digit: u8,
    settings: &Settings,
    dir: &Path,
    force: bool,
    observer: &mut dyn Observer,
) -> Result<DigitResult> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let request = DataRequest {
        data: data.dir.clone(),
        test_data: None,
        scaling: Some(ScalingKind::Unit),
        label_column: None,
        seed: settings.seed,
    };
    let (dataset, _) = Dataset::one_class_of(&request, &data.train, (data.files.clone(), Vec::new()), digit.into())?;
    let trained = settings
        .train_limit
        .map_or(dataset.train.len(), |n| n.min(dataset.train.len()));
    let mut spec = recipe::spec(dataset.train.features(), trained, ScalingKind::Unit)?;
    spec.name = format!("oneclass-{digit}");
    let mut config = spec.config(settings.threads);
    config.seed = settings.seed;
    config.input_shape = dataset.train.shape().to_vec();
    config.train_limit = settings.train_limit;
    config.cap_epochs(settings.epochs, None).map_err(anyhow::Error::msg)?;
    let state = resumable(&dir.join(CHECKPOINT), &config, force).map_or_else(|| State::new(config), Ok)?;
    let mut trainer = Trainer::new(state, dataset)?;
    trainer.train(Some(dir), observer)?;
    let report = trainer.test_report();
    let metrics = trainer.metrics(&report);
    trainer.write_metrics(dir, &metrics)?;

    let model_path = dir.join(format!("{}.{}", spec.name, crate::export::EXTENSION));
    let options = crate::export::ExportOptions {
        calibration: settings.calibration,
        threads: settings.threads,
        ..crate::export::ExportOptions::default()
    };
    let export = crate::export::export(&trainer.state, &model_path, trainer.data(), &options)?;
    let bytes = crate::export::read_model_file(&model_path)?;
    let core = crate::export::load(&model_path, &bytes)?;

    let test = match settings.test_limit {
        Some(n) => data.test.clone().truncated(n),
        None => data.test.clone(),
    };
    let labels: Vec<bool> = test
        .labels()
        .expect("checked when loaded")
        .iter()
        .map(|&l| l != i64::from(digit))
        .collect();
    let int8: Vec<f64> = anomaly::int8_scores(&core, &test, settings.threads)?
        .into_iter()
        .map(f64::from)
        .collect();
    let mut scaled = test.clone();
    trainer
        .state
        .config
        .data
        .as_ref()
        .expect("set by the trainer")
        .scaling
        .apply(&mut scaled)?;
    let float: Vec<f64> = anomaly::float_scores(&trainer.state.model, scaled.values())
        .into_iter()
        .map(f64::from)
        .collect();
    let pca = pca_scores(trainer.train_samples(), &scaled, recipe::code_width(test.features()))?;

    let auroc = |scores: &[f64], what: &str| {
        anomaly::auroc(scores, &labels).with_context(|| {
            format!("digit {digit}: no AUROC of the {what} scores (the test images need both the digit and others)")
        })
    };
    let (auroc_int8, auroc_float, auroc_pca) = (auroc(&int8, "int8")?, auroc(&float, "float")?, auroc(&pca, "PCA")?);
    let k = recipe::code_width(test.features());
    let curves = [
        ("int8", &int8, auroc_int8),
        ("float", &float, auroc_float),
        (&*format!("PCA-{k}"), &pca, auroc_pca),
    ]
    .map(|(label, scores, auroc)| {
        (
            label.to_string(),
            anomaly::roc_curve(scores, &labels).unwrap_or_default(),
            auroc,
        )
    });
    let series: Vec<RocSeries<'_>> = curves
        .iter()
        .map(|(label, points, auroc)| RocSeries {
            label,
            points,
            auroc: *auroc,
        })
        .collect();
    figures::roc(
        &dir.join(ROC),
        &format!("one-class MNIST, digit {digit} normal: {} test images", test.len()),
        &series,
    )?;
    Ok(DigitResult {
        digit,
        train_samples: trainer.train_len(),
        validation_samples: trainer.test_samples().len(),
        epochs: trainer.state.epochs_per_phase.iter().sum(),
        validation_mse: metrics.test_mse,
        int8_validation_mse: export.int8_test_mse,
        model_bytes: export.bytes,
        test_samples: test.len(),
        anomalies: labels.iter().filter(|&&a| a).count(),
        auroc_int8,
        auroc_float,
        auroc_pca,
        seconds: t0.elapsed().as_secs_f64(),
        settings: settings.clone(),
    })
}

/// The run stored at `ckpt` when it is a run of `config` (to continue or report), unless
/// `force`.
fn resumable(ckpt: &Path, config: &Config, force: bool) -> Option<State> {
    if force {
        return None;
    }
    let state: State = checkpoint::load(ckpt).ok()?;
    let mut stored = state.config.clone();
    stored.data = None;
    (stored == *config).then_some(state)
}

/// PCA's anomaly score of every row of `test` (scaled): the mean squared reconstruction error
/// over its features, PCA with `k` components fitted on `train` (scaled).
fn pca_scores(train: &Samples, test: &Samples, k: usize) -> Result<Vec<f64>> {
    let pca = Pca::fit(view(train), k)?;
    let x = view(test);
    let recon = pca.reconstruct(pca.transform(x).view());
    Ok(x.rows()
        .into_iter()
        .zip(recon.rows())
        .map(|(x, y)| {
            let sse: f64 = x
                .iter()
                .zip(y)
                .map(|(&a, &b)| f64::from(a - b) * f64::from(a - b))
                .sum();
            sse / x.len() as f64
        })
        .collect())
}

/// `samples` as a matrix, one row per sample.
// -> (N, F)
fn view(samples: &Samples) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((samples.len(), samples.features()), samples.values())
        .expect("samples are rows of their features")
}

/// The summary of `results`.
fn summarize(network: String, k: usize, settings: &Settings, results: Vec<DigitResult>, t0: Instant) -> Summary {
    let n = results.len() as f64;
    let mean = |f: fn(&DigitResult) -> f64| results.iter().map(f).sum::<f64>() / n;
    let mean = Means {
        int8: mean(|r| r.auroc_int8),
        float: mean(|r| r.auroc_float),
        pca: mean(|r| r.auroc_pca),
    };
    let max_diff = results.iter().map(|r| r.int8_minus_float().abs()).fold(0.0, f64::max);
    Summary {
        network,
        pca_components: k,
        settings: settings.clone(),
        targets: Targets {
            mean_auroc: mean.int8 >= MEAN_TARGET,
            beats_pca: mean.int8 > mean.pca,
            int8_close: max_diff <= INT8_TOLERANCE,
        },
        mean,
        max_abs_int8_minus_float: max_diff,
        digits: results,
        wall_seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_features(),
    }
}

/// The x86 vector extensions present (AVX2, FMA, AVX-512F), or the architecture elsewhere.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let found: Vec<&str> = [
            ("AVX2", std::arch::is_x86_feature_detected!("avx2")),
            ("FMA", std::arch::is_x86_feature_detected!("fma")),
            ("AVX-512F", std::arch::is_x86_feature_detected!("avx512f")),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        format!(
            "x86_64 ({})",
            if found.is_empty() {
                "no AVX2".into()
            } else {
                found.join(", ")
            }
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// `x` to four decimals with its sign, a difference that rounds to zero as `+0.0000`.
fn signed(x: f64) -> String {
    format!("{:+.4}", (x * 1e4).round() / 1e4 + 0.0)
}

/// The summary as Markdown: a table per digit, the means, the targets.
pub fn markdown(s: &Summary) -> String {
    let k = s.pca_components;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# One-class MNIST: the `anomaly` recipe, one digit normal at a time\n"
    );
    let _ = writeln!(
        md,
        "Each digit's training images alone train the `anomaly` recipe ({}, LeakyReLU, linear code, \
         sigmoid output, pixels / 255), a sixth of them held out for validation. Every test image is \
         scored, the other digits' being the anomalies: the int8 model run by the core (its integer \
         anomaly score), the float model (per-image MSE), and PCA-{k}'s reconstruction error, fitted on \
         the same training images. AUROC per digit:\n",
        s.network
    );
    let _ = writeln!(
        md,
        "| digit | train | epochs | val MSE | AUROC int8 | AUROC float | AUROC PCA-{k} | int8 − float |"
    );
    let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &s.digits {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.6} | {:.4} | {:.4} | {:.4} | {} |",
            r.digit,
            r.train_samples,
            r.epochs,
            r.validation_mse,
            r.auroc_int8,
            r.auroc_float,
            r.auroc_pca,
            signed(r.int8_minus_float())
        );
    }
    let _ = writeln!(
        md,
        "| **mean** | | | | **{:.4}** | **{:.4}** | **{:.4}** | {} |\n",
        s.mean.int8,
        s.mean.float,
        s.mean.pca,
        signed(s.mean.int8 - s.mean.float)
    );
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(md, "Targets:\n");
    let _ = writeln!(
        md,
        "- mean int8 AUROC ≥ {MEAN_TARGET}: {} ({:.4}; float {:.4})",
        met(s.targets.mean_auroc),
        s.mean.int8,
        s.mean.float
    );
    let _ = writeln!(
        md,
        "- the autoencoder beats PCA-{k}: {} (int8 {:.4} against {:.4})",
        met(s.targets.beats_pca),
        s.mean.int8,
        s.mean.pca
    );
    let _ = writeln!(
        md,
        "- |int8 − float| AUROC ≤ {INT8_TOLERANCE} for every digit: {} (largest {:.4})\n",
        met(s.targets.int8_close),
        s.max_abs_int8_minus_float
    );
    let _ = writeln!(
        md,
        "Published reference: one-class Deep SVDD (Ruff et al., ICML 2018), mean AUROC about {DEEP_SVDD_MEAN} over the ten digits.\n"
    );
    let st = &s.settings;
    let limits = [
        st.train_limit
            .map(|n| format!("training limited to {n} images per digit")),
        st.test_limit.map(|n| format!("the first {n} test images")),
        st.epochs.map(|n| format!("at most {n} epochs")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let _ = writeln!(
        md,
        "Seed {}, {} threads, calibration on {} training images{}; {:.0} s wall time on {}.",
        st.seed,
        st.threads,
        st.calibration,
        if limits.is_empty() {
            String::new()
        } else {
            format!("; {}", limits.join(", "))
        },
        s.wall_seconds,
        s.cpu
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_keep_their_sign_and_a_rounded_zero_is_positive() {
        assert_eq!(signed(-0.00004), "+0.0000");
        assert_eq!(signed(-0.00051), "-0.0005");
        assert_eq!(signed(0.0012), "+0.0012");
    }
}
