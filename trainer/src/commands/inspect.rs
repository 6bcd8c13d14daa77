//! `trainer inspect`: a model file's header, layers, shapes and quantization parameters.

use super::print_all;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// `trainer inspect`'s arguments.
#[derive(Args)]
pub struct InspectArgs {
    /// Model file.
    pub model: PathBuf,
    /// Print everything needed to rebuild the model, as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the model file, as text or JSON.
pub fn run(args: InspectArgs) -> Result<()> {
    let (q, bytes, scratch) = crate::export::inspect(&args.model)?;
    let text = if args.json {
        serde_json::to_string(&q)? + "\n"
    } else {
        crate::export::describe(&q, bytes, scratch)
    };
    print_all(&text)
}
