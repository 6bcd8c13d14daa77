//! `trainer spec <variant>`: a built-in variant's spec file, to copy and change, then train with
//! `trainer train --spec FILE.toml`.

use super::print_all;
use anyhow::Result;
use clap::Args;

/// `trainer spec`'s arguments.
#[derive(Args)]
pub struct SpecArgs {
    /// A built-in variant (see `trainer list`).
    pub variant: String,
}

/// Prints the variant's spec, comments and all.
pub fn run(args: SpecArgs) -> Result<()> {
    let recipe = crate::recipe::find(&args.variant).map_err(anyhow::Error::msg)?;
    print_all(recipe.toml)
}
