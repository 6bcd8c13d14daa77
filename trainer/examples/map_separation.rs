//! How well a finished run's 2-D map separates the digits, against PCA-2's: the leave-one-out
//! 5-nearest-neighbour accuracy of the 10,000 test images' 2-D codes (the figure `map.png`
//! shows the same number since the maps gained it).
//!
//! ```sh
//! cargo run -p trainer --release --example map_separation [-- RUN_DIR]   # default runs/deep2d
//! ```

use anyhow::Context;
use std::path::PathBuf;
use trainer::experiments::run_figures::{knn_accuracy, MAP_NEIGHBOURS};
use trainer::mnist::Mnist;
use trainer::pca::{pixels, Pca};
use trainer::train::{State, Trainer, CHECKPOINT};

fn main() -> anyhow::Result<()> {
    let run = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("runs/deep2d"));
    let data = Mnist::load(std::path::Path::new("data/mnist")).context("loading MNIST from data/mnist")?;
    let ckpt = run.join(CHECKPOINT);
    let state: State = trainer::checkpoint::load(&ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    let variant = state.config.variant.clone();
    let labels = data.test.labels.clone();
    let pca = Pca::fit(pixels(&data.train).view(), 2)?;
    let pca_map = pca.transform(pixels(&data.test).view());
    let mut trainer = Trainer::new(state, data).context("setting up the run")?;
    let map = trainer
        .test_report()
        .map
        .with_context(|| format!("{}: the code of {variant} is not 2-D", run.display()))?;
    let ours = knn_accuracy(map.view(), &labels, MAP_NEIGHBOURS);
    let theirs = knn_accuracy(pca_map.view(), &labels, MAP_NEIGHBOURS);
    println!(
        "{MAP_NEIGHBOURS}-NN accuracy of the test set's 2-D codes: {variant} {:.2} %, PCA-2 {:.2} %",
        100.0 * ours,
        100.0 * theirs
    );
    Ok(())
}
