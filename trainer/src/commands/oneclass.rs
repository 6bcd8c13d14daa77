//! `trainer oneclass`: the one-class MNIST study ([`crate::experiments::oneclass`]): the
//! `anomaly` recipe trained on one digit at a time, the test set scored by its int8 and float
//! models and by PCA, AUROC per digit into `summary.md` and `summary.json`.

use super::{data_path, default_threads, DataArgs};
use crate::experiments::oneclass::{self, Settings, StudyData};
use crate::progress::Progress;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// `trainer oneclass`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct OneClassArgs {
    /// MNIST: a directory of IDX files with labelled training and test images [default:
    /// data/mnist].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output directory: one directory per digit, summary.md and summary.json.
    #[arg(long, default_value = "runs/oneclass")]
    pub out: PathBuf,
    /// Threads [default: all cores]. Results are identical for the same seed and thread count.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The digits to study, each in turn the normal class, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4,5,6,7,8,9",
          value_parser = clap::value_parser!(u8).range(0..=9))]
    pub digits: Vec<u8>,
    /// Seed of the holdout, initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train every digit again, even one finished with the same settings.
    #[arg(long)]
    pub force: bool,
    /// Training images that calibrate each int8 model.
    #[arg(long, default_value_t = crate::quantize::CALIBRATION_IMAGES)]
    pub calibration: usize,
    /// Train on the first N of each digit's training images only (tests, quick looks).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Score the first N test images only (tests, quick looks).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Cap the epochs below the recipe's (tests, quick looks).
    #[arg(long)]
    pub epochs: Option<usize>,
}

/// Runs the study and prints its summary.
pub fn run(args: OneClassArgs) -> Result<oneclass::Summary> {
    let mut digits = args.digits.clone();
    digits.sort_unstable();
    if let Some(w) = digits.windows(2).find(|w| w[0] == w[1]) {
        bail!("--digits names {} twice", w[0]);
    }
    for (flag, value) in [
        ("threads", args.threads),
        ("train-limit", args.train_limit),
        ("test-limit", args.test_limit),
        ("epochs", args.epochs),
        ("calibration", Some(args.calibration)),
    ] {
        if value == Some(0) {
            bail!("--{flag} must be at least 1");
        }
    }
    let settings = Settings {
        seed: args.seed,
        threads: args.threads.unwrap_or_else(default_threads),
        train_limit: args.train_limit,
        test_limit: args.test_limit,
        epochs: args.epochs,
        calibration: args.calibration,
    };
    let dir = data_path(&DataArgs {
        data: args.data.clone(),
        ..DataArgs::default()
    });
    let data = StudyData::load(&dir)?;
    let mut progress = Progress::auto();
    let summary = oneclass::run(
        &data,
        &args.digits,
        &settings,
        &args.out,
        args.force,
        &mut progress,
        |line| println!("{line}"),
    )?;
    println!("\n{}", oneclass::markdown(&summary));
    println!(
        "wrote {} and {}",
        args.out.join(oneclass::SUMMARY_MD).display(),
        args.out.join(oneclass::SUMMARY_JSON).display()
    );
    Ok(summary)
}
