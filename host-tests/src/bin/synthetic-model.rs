//! Writes a valid model file with random parameters, for trying the firmware without a trained
//! model: `cargo run -p host-tests --bin synthetic-model -- <fc|topk|deep|conv|sensor|mlperf-anomaly> OUT [SEED]`.

use anyhow::{bail, Context, Result};
use host_tests::synthetic::{self, Shape};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (shape, out, seed) = match args.as_slice() {
        [shape, out] => (shape, out, "0"),
        [shape, out, seed] => (shape, out, seed.as_str()),
        _ => bail!("usage: synthetic-model <fc|topk|deep|conv|sensor|mlperf-anomaly> OUT [SEED]"),
    };
    let shape = Shape::from_name(shape).with_context(|| format!("unknown shape {shape}"))?;
    let seed: u64 = seed.parse().with_context(|| format!("seed {seed}"))?;
    let blob = synthetic::model(shape, seed);
    if let Some(dir) = std::path::Path::new(out).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, &blob).with_context(|| format!("writing {out}"))?;
    println!("{out}: {} ({} bytes)", shape.name(), blob.len());
    Ok(())
}
