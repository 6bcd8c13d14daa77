//! `trainer convert`: a model file as two TFLite flatbuffers, encoder and decoder.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// `trainer convert`'s arguments.
#[derive(Args)]
pub struct ConvertArgs {
    /// Model file (.aeq).
    pub model: PathBuf,
    /// Write PREFIX.encoder.tflite and PREFIX.decoder.tflite (nothing else).
    #[arg(long, value_name = "PREFIX", required = true)]
    pub tflite: PathBuf,
}

/// Writes `PREFIX.encoder.tflite` and `PREFIX.decoder.tflite`, both or neither.
pub fn run(args: ConvertArgs) -> Result<()> {
    let bytes = crate::export::read_model_file(&args.model)?;
    let model = crate::export::load(&args.model, &bytes)?;
    let quantized = crate::quantize::Quantized::from_core(&model);
    let converted = crate::tflite::convert(&quantized)
        .with_context(|| format!("{}: cannot convert to .tflite", args.model.display()))?;
    let path = |part: &str| {
        let mut name = args.tflite.clone().into_os_string();
        name.push(format!(".{part}.tflite"));
        PathBuf::from(name)
    };
    let (encoder, decoder) = (path("encoder"), path("decoder"));
    crate::checkpoint::write_all_or_nothing(&[(&encoder, &converted.encoder), (&decoder, &converted.decoder)])
        .context("writing the .tflite files")?;
    println!("{}: {} bytes", encoder.display(), converted.encoder.len());
    println!("{}: {} bytes", decoder.display(), converted.decoder.len());
    if let Some(k) = converted.top_k {
        println!(
            "the encoder ends before the model's hard top-k (no TFLite op): keep each sample's {k} largest \
             codes (a tie goes to the lower index) and set the others to the code's zero point, as the core does"
        );
    }
    Ok(())
}
