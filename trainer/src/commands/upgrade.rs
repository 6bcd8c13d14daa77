//! `trainer upgrade`: model files of an older format version rewritten in the current one.

use super::{load_data, DataArgs};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// `trainer upgrade`'s arguments.
#[derive(Args)]
pub struct UpgradeArgs {
    /// Model files (.aeq), each rewritten in place unless --out is given.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Write the upgraded model here instead (one model only); golden vectors go beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Upgrades every model file and prints a line each.
pub fn run(args: UpgradeArgs) -> Result<()> {
    if args.out.is_some() && args.models.len() > 1 {
        bail!("--out takes one model file; {} were given", args.models.len());
    }
    let data = load_data(&args.data)?;
    for model in &args.models {
        let out = args.out.clone().unwrap_or_else(|| model.clone());
        let r = crate::upgrade::upgrade(model, &out, &data.test.images)?;
        println!(
            "{}: version {} -> {}; {} multipliers and {} table entries recomputed differently; {}; golden vectors in {}",
            r.model.display(),
            r.from_version,
            r.to_version,
            r.changes.multipliers,
            r.changes.table_entries,
            if r.bytes_changed { "bytes changed" } else { "bytes unchanged" },
            r.golden.display()
        );
    }
    Ok(())
}
