//! The PCA baseline on the bundled MNIST: fits on the 60,000 training images, reports the
//! reconstruction error on the 10,000 test images for K = 2, 30 and 64, and the fit time.
//!
//! ```sh
//! cargo run -p trainer --release --example pca_mnist [-- DATA_DIR]   # default data/mnist
//! ```

use anyhow::Context;
use ndarray::Array2;
use std::path::PathBuf;
use std::time::Instant;
use trainer::mnist::{Mnist, Split, PIXELS};
use trainer::pca::Pca;

const KS: [usize; 3] = [2, 30, 64];

/// Pixels scaled to [0, 1].
// split -> x: (N, D)
fn pixels(split: &Split) -> Array2<f32> {
    Array2::from_shape_fn((split.len(), PIXELS), |(i, j)| {
        split.images[i * PIXELS + j] as f32 / 255.0
    })
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/mnist"));
    let mnist = Mnist::load(&dir).with_context(|| format!("loading MNIST from {}", dir.display()))?;
    let train = pixels(&mnist.train);
    let test = pixels(&mnist.test);

    let start = Instant::now();
    let fits = Pca::fit_many(train.view(), &KS)?;
    let fit_s = start.elapsed().as_secs_f64();
    println!(
        "PCA on {} training images ({} threads): fit (mean, covariance, eigen-decomposition, K = {:?}) in {:.2} s",
        train.nrows(),
        rayon::current_num_threads(),
        KS,
        fit_s
    );
    println!("evaluated on {} test images", test.nrows());
    println!(
        "{:>4}  {:>10}  {:>22}  {:>16}",
        "K", "test MSE", "per-image squared err", "train MSE"
    );
    for p in &fits {
        println!(
            "{:>4}  {:>10.6}  {:>22.4}  {:>16.6}",
            p.k(),
            p.mse(test.view()),
            p.per_image_squared_error(test.view()),
            p.mse(train.view())
        );
    }
    Ok(())
}
