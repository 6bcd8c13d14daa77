//! `trainer spec <variant>`: a built-in variant's spec file, to copy and change, then train with
//! `trainer train --spec FILE.toml`. The `anomaly` recipe's spec follows from the data: with
//! `--input-width N` (and `--train-samples`, `--scaling`) it prints the spec for such data,
//! without it the rule.

use super::print_all;
use crate::anomaly::recipe as anomaly;
use crate::data::ScalingKind;
use anyhow::{bail, Result};
use clap::Args;

/// `trainer spec`'s arguments.
#[derive(Args)]
pub struct SpecArgs {
    /// A built-in variant (see `trainer list`).
    pub variant: String,
    /// `anomaly` only: the features per sample to make the spec for [default: print the rule].
    #[arg(long, value_name = "N")]
    pub input_width: Option<usize>,
    /// `anomaly` only: the training samples (after the validation holdout), which set the epoch
    /// cap [default: the largest cap].
    #[arg(long, value_name = "n", requires = "input_width")]
    pub train_samples: Option<usize>,
    /// `anomaly` only: the data's scaling, which picks the output activation [default: minmax].
    #[arg(long, requires = "input_width")]
    pub scaling: Option<ScalingKind>,
}

/// Prints the variant's spec, comments and all (for `anomaly`, the rule or the spec it makes).
pub fn run(args: SpecArgs) -> Result<()> {
    if args.variant == anomaly::NAME {
        let Some(width) = args.input_width else {
            return print_all(&anomaly::rule());
        };
        let scaling = args.scaling.unwrap_or(ScalingKind::MinMax);
        return print_all(&anomaly::spec_file(width, args.train_samples, scaling)?);
    }
    let recipe = crate::recipe::find(&args.variant).map_err(|e| anyhow::anyhow!("{e}, {}", anomaly::NAME))?;
    if args.input_width.is_some() {
        bail!(
            "--input-width applies to the {} recipe only; {}'s spec is fixed (the dense variants take any input width as they are)",
            anomaly::NAME,
            recipe.name
        );
    }
    print_all(recipe.toml)
}
