//! `trainer export`: a trained run quantized to int8 (model file and golden vectors), or its
//! float weights as safetensors.

use super::{recorded_or_given, DataArgs};
use crate::recipe;
use crate::train::CHECKPOINT;
use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// `trainer export`'s arguments.
#[derive(Args)]
pub struct ExportArgs {
    /// A variant (its run in runs/<variant>) or a run directory.
    pub run: String,
    /// Model file to write [default: models/<variant>.aeq]; golden vectors go to
    /// <name>.golden.json beside it. With --safetensors, only written when given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the run's float weights to this .safetensors file: PyTorch `nn.Sequential` names
    /// and layouts, the forward pass in its metadata. Alone, nothing else is written (no model
    /// file, no golden vectors); with --out, the int8 model file as well.
    #[arg(long, value_name = "FILE")]
    pub safetensors: Option<PathBuf>,
    /// Training images used to calibrate the activation ranges.
    #[arg(long, default_value_t = crate::quantize::CALIBRATION_IMAGES)]
    pub calibration: usize,
    /// Store in the model the integer anomaly threshold that flags this fraction of normal
    /// samples (the run's held-out validation samples, or its training samples when it validated
    /// on a test set), e.g. 0.01. Without it no threshold is stored, except for the `anomaly`
    /// recipe's runs, which get 0.01.
    #[arg(long, value_name = "P")]
    pub threshold_fpr: Option<f64>,
    /// Threads for the quantization search, the int8 test MSE and the threshold's samples
    /// [default: all cores]. The model file is the same for any count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Exports the run as asked and prints what was written.
pub fn run(args: ExportArgs) -> Result<()> {
    let as_dir = PathBuf::from(&args.run);
    let run_dir = if as_dir.join(CHECKPOINT).exists() {
        as_dir
    } else if recipe::find(&args.run).is_ok() {
        Path::new("runs").join(&args.run)
    } else {
        bail!(
            "{} is neither a run directory (with {CHECKPOINT}) nor a variant (see `trainer list`)",
            args.run
        );
    };
    // Read once: the variant names the default output, and both exports read the model.
    let state = crate::export::load_run(&run_dir)?;
    if let Some(path) = &args.safetensors {
        let r = crate::safetensors_export::export(&state, path)?;
        println!(
            "{}: {} float weights of {} in {} tensors, {} bytes{}",
            r.path.display(),
            r.values,
            r.variant,
            r.tensors,
            r.bytes,
            if r.tied {
                " (tied decoder written as the transpose)"
            } else {
                ""
            }
        );
        if args.out.is_none() {
            if !r.finished {
                eprintln!("warning: the run in {} has not finished training", run_dir.display());
            }
            return Ok(());
        }
    }
    // The run's own data (read again, checked against its hashes), unless --data names other.
    let data = recorded_or_given(state.config.data.as_ref(), &args.data, state.config.seed)?;
    let out = args
        .out
        .unwrap_or_else(|| Path::new("models").join(format!("{}.{}", state.config.variant, crate::export::EXTENSION)));
    let threshold_fpr = args
        .threshold_fpr
        .or((state.config.variant == crate::anomaly::recipe::NAME).then_some(crate::anomaly::threshold::DEFAULT_FPR));
    let options = crate::export::ExportOptions {
        calibration: args.calibration,
        threshold_fpr,
        run_dir: Some(run_dir.clone()),
        threads: args.threads.map_or_else(super::default_threads, usize::from),
    };
    let r = crate::export::export(&state, &out, &data, &options)?;
    if !r.finished {
        eprintln!("warning: the run in {} has not finished training", run_dir.display());
    }
    println!(
        "{}: {} bytes; test MSE float {:.6}, int8 {:.6} (int8/float {:.4}); golden vectors in {}",
        r.model.display(),
        r.bytes,
        r.float_test_mse,
        r.int8_test_mse,
        r.int8_test_mse / r.float_test_mse,
        r.golden.display()
    );
    if let Some(t) = &r.threshold {
        println!(
            "anomaly threshold {} (score > {} is flagged): flags {:.2}% of {} {} (asked for {}%)",
            t.score,
            t.score,
            100.0 * t.flagged,
            t.samples,
            t.fit_on.describe(),
            100.0 * t.target_fpr
        );
    }
    Ok(())
}
