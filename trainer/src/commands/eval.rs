//! `trainer eval`: the test MSE of model files' int8 models, next to their float models'.

use super::{load_dataset, DataArgs};
use crate::provenance::Provenance;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// `trainer eval`'s arguments.
#[derive(Args)]
pub struct EvalArgs {
    /// Model files.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Print one markdown table row per model, after a header.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Print one JSON object per model, one per line, instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Evaluates every model file and prints a line (or row, or JSON object) each.
pub fn run(args: EvalArgs) -> Result<()> {
    // --data (MNIST by default), read once, for every model that names no data of its own.
    let given = std::cell::OnceCell::new();
    let data_of = |model: &std::path::Path| -> Result<crate::data::Dataset> {
        // Without --data, the data the model names in its provenance (the shipped MNIST models
        // name none).
        let named = std::fs::read(model)
            .ok()
            .and_then(|bytes| {
                autoencoder_core::Model::from_bytes(&bytes)
                    .ok()
                    .and_then(|m| serde_json::from_str::<Provenance>(m.source()).ok())
            })
            .filter(|_| !args.data.given());
        let mut data = match named.as_ref().and_then(|p| p.data_request().map(|r| (p, r))) {
            Some((p, request)) => {
                let data = crate::data::Dataset::load(&request)?;
                p.check_files(&data.record).map_err(anyhow::Error::msg)?;
                data
            }
            None => {
                if given.get().is_none() {
                    let _ = given.set(load_dataset(&args.data, 0)?);
                }
                given.get().cloned().expect("set above")
            }
        };
        if let Some(n) = args.test_limit {
            data.test = data.test.truncated(n);
        }
        Ok(data)
    };
    if args.markdown {
        println!("| model | bytes | float test MSE | int8 test MSE | int8 / float | int8 per-image SE |");
        println!("|---|---:|---:|---:|---:|---:|");
    }
    for model in &args.models {
        let data = data_of(model)?;
        let r = crate::export::eval(model, &data.test, super::default_threads())?;
        let bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else if args.markdown {
            println!(
                "| `{}` | {bytes} | {:.6} | {:.6} | {:.3} | {:.2} |",
                r.variant, r.float_test_mse, r.int8_test_mse, r.ratio, r.int8_per_image_se
            );
        } else {
            println!(
                "{}: {} test samples, int8 test MSE {:.6} ({:.2} per sample), float {:.6}, int8/float {:.4}",
                model.display(),
                r.images,
                r.int8_test_mse,
                r.int8_per_image_se,
                r.float_test_mse,
                r.ratio
            );
        }
    }
    Ok(())
}
