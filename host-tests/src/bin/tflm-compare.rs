//! Runs model files through TensorFlow Lite Micro and through the core, and compares every code
//! value, output byte and table entry (see `host_tests::tflm`).
//!
//! `cargo run -p host-tests --release --bin tflm-compare -- [--images N] [MODEL.aeq ...]`:
//! every shipped model on all 10,000 MNIST test images by default. Prints a markdown table and
//! the first differences; exits with status 1 if anything differs.

use anyhow::{bail, Context, Result};
use host_tests::mnist::TEST_IMAGES;
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut images = TEST_IMAGES;
    let mut models = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--images" => {
                let n = args.next().context("--images needs a count")?;
                images = n.parse().with_context(|| format!("--images {n}: not a count"))?;
                if images == 0 || images > TEST_IMAGES {
                    bail!("--images {images}: between 1 and {TEST_IMAGES}");
                }
            }
            "-h" | "--help" => {
                println!("usage: tflm-compare [--images N] [MODEL.aeq ...]  (default: models/*.aeq, 10,000 images)");
                return Ok(());
            }
            other if other.starts_with('-') => bail!("unknown option {other}"),
            model => models.push(PathBuf::from(model)),
        }
    }
    if models.is_empty() {
        models = host_tests::shipped_models()?;
        if models.is_empty() {
            bail!("no models given and none in models/");
        }
    }
    let started = std::time::Instant::now();
    let report = host_tests::tflm::compare_models(&models, images)?;
    print!("{}", report.render());
    println!(
        "\n{} models, {images} images each, in {:.1} s",
        report.models.len(),
        started.elapsed().as_secs_f64()
    );
    if !report.is_exact() {
        std::process::exit(1);
    }
    Ok(())
}
