//! `trainer bench`: times training epochs and prints one JSON line.

use super::{default_threads, load_data, DataArgs};
use anyhow::Result;
use clap::Args;

/// `trainer bench`'s arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// Variant to time.
    #[arg(long, default_value = "fc")]
    pub variant: String,
    /// Phase to time, from 1: a greedy recipe's stages, then its fine-tuning (`deep30`'s 5);
    /// `fc`'s tied phase, then its untied one. The phases before it are started, not trained.
    #[arg(long, default_value_t = 1)]
    pub phase: usize,
    /// Timed epochs, after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the training steps run: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda`
    /// feature).
    #[arg(long, default_value = "cpu", value_name = "cpu|cuda[:N]")]
    pub device: crate::gpu::Device,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Times the variant and prints the result as JSON.
pub fn run(args: BenchArgs) -> Result<()> {
    let data = load_data(&args.data)?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let result = crate::bench::run(&args.variant, args.phase, args.epochs, threads, args.device, data)?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
