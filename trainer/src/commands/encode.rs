//! `trainer encode`: the codes of a data file's samples under a model file, as `.npy`.

use crate::infer::{self, Job, Product, Split};
use anyhow::Result;
use clap::Args;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// `trainer encode`'s arguments.
#[derive(Args)]
pub struct EncodeArgs {
    /// Model file (.aeq).
    pub model: PathBuf,
    /// The samples, raw (the model scales and quantizes them itself): a directory of IDX files,
    /// a .npy, a .npz or a .csv, each sample of the model's input shape (or flat, as many values).
    #[arg(long)]
    pub data: PathBuf,
    /// Which samples: train (a .npy's or .csv's only ones) or test (a .npz's x_test, IDX t10k
    /// files).
    #[arg(long, default_value_t = Split::Train)]
    pub split: Split,
    /// CSV: the column that holds labels (its header name, or its 0-based index), set aside.
    #[arg(long)]
    pub label_column: Option<String>,
    /// Where to write the codes: a .npy of shape (samples, K), f32 scale * (q - zero_point) with
    /// the model's code quantization.
    #[arg(long)]
    pub out: PathBuf,
    /// Write the int8 codes themselves (i8) instead.
    #[arg(long)]
    pub int8: bool,
    /// Worker threads [default: every core]; the codes do not depend on it.
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
}

/// Encodes every sample and prints one line.
pub fn run(args: EncodeArgs) -> Result<()> {
    let report = infer::run(&Job {
        model: args.model,
        data: args.data,
        split: args.split,
        label_column: args.label_column,
        product: Product::Codes,
        int8: args.int8,
        out: args.out,
        threads: args.threads.map_or_else(super::default_threads, NonZeroUsize::get),
    })?;
    println!("{report}");
    Ok(())
}
