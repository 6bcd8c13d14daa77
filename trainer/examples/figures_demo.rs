//! Renders every figure of `trainer::figures` from synthetic data, to look at them:
//!
//! ```sh
//! cargo run -p trainer --release --example figures_demo [-- OUT_DIR]   # default /tmp/figs
//! ```

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use trainer::figures;
use trainer::train::EpochRecord;

/// Digit-like blobs: a few thick random strokes, blurred a little.
fn blobs(n: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let mut out = Array2::zeros((n, 784));
    for mut img in out.outer_iter_mut() {
        for _ in 0..rng.random_range(2..4) {
            let (x0, y0) = (rng.random_range(6.0..22.0f32), rng.random_range(5.0..12.0f32));
            let (x1, y1) = (rng.random_range(6.0..22.0f32), rng.random_range(16.0..23.0f32));
            for p in 0..784 {
                let (x, y) = ((p % 28) as f32, (p / 28) as f32);
                let (dx, dy) = (x1 - x0, y1 - y0);
                let t = (((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                let d = ((x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2)).sqrt();
                img[p] = f32::max(img[p], (1.6 - d / 1.5).clamp(0.0, 1.0));
            }
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/figs".into()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);

    let clean = blobs(10, &mut rng);
    let recon = clean.mapv(|v| (v * 0.85 + 0.05).min(1.0));
    let noise = Array2::from_shape_fn((10, 784), |_| rng.random_range(-0.4..0.4f32));
    let noisy = &clean + &noise;
    figures::examples(
        &dir.join("examples.png"),
        &[("input", clean.view()), ("reconstruction", recon.view())],
    )?;
    figures::examples(
        &dir.join("denoising.png"),
        &[
            ("noisy input", noisy.view()),
            ("reconstruction", recon.view()),
            ("clean target", clean.view()),
        ],
    )?;

    for units in [64, 128] {
        // ReLU-like sparse codes: each unit fires for its own share of the samples (some
        // never), a few leaky negatives; about 75 % exact zeros.
        let rates: Vec<f64> = (0..units)
            .map(|u| if u % 13 == 5 { 0.0 } else { rng.random_range(0.05..0.5) })
            .collect();
        let codes = Array2::from_shape_fn((512, units), |(_, u)| {
            if rng.random_bool(rates[u]) {
                rng.random_range(0.0..1.0f32).powi(2) * 3.0
            } else if rng.random_bool(0.01) {
                -rng.random_range(0.0..0.5f32)
            } else {
                0.0
            }
        });
        let zeros = codes.iter().filter(|v| **v == 0.0).count() as f64 / codes.len() as f64;
        figures::codes(
            &dir.join(format!("codes{units}.png")),
            &format!(
                "codes of 512 test images, {units} units: {:.1} % exactly zero",
                zeros * 100.0
            ),
            codes.view(),
        )?;
        let tiles = Array2::from_shape_fn((units, 784), |(k, p)| {
            let (x, y) = ((p % 28) as f32, (p / 28) as f32);
            let f = 0.2 + 0.05 * (k % 7) as f32;
            (x * f + y * f * 0.5 + k as f32).sin() * (-((x - 14.0).powi(2) + (y - 14.0).powi(2)) / 80.0).exp()
        });
        figures::dictionary(
            &dir.join(format!("dictionary{units}.png")),
            &format!("decoder weights: {units} units"),
            tiles.view(),
        )?;
    }

    let mut history = Vec::new();
    let mut loss = 0.06;
    for (phase, epochs, floor) in [("tied", 100, 0.0055), ("finetune", 50, 0.0051)] {
        for e in 1..=epochs {
            let lr = match e {
                e if e <= epochs * 6 / 10 => 1e-3,
                e if e <= epochs * 85 / 100 => 1e-4,
                _ => 1e-5,
            };
            loss = floor + (loss - floor) * 0.93;
            history.push(EpochRecord {
                phase: phase.into(),
                epoch: e,
                train_loss: loss * (1.0 + rng.random_range(0.0..0.02)),
                val_mse: loss * 0.98,
                lr,
                seconds: 0.25,
            });
        }
    }
    figures::curves(&dir.join("curves.png"), "fc: training", &history)?;
    figures::curves(&dir.join("curves1.png"), "fc: one epoch", &history[..1])?;
    let constant: Vec<_> = history[..5]
        .iter()
        .map(|r| EpochRecord {
            train_loss: 0.01,
            val_mse: 0.01,
            ..r.clone()
        })
        .collect();
    figures::curves(&dir.join("curves_const.png"), "constant", &constant)?;
    let short: Vec<_> = [("tied", 3), ("finetune", 1), ("polish", 2)]
        .iter()
        .flat_map(|&(phase, n)| (1..=n).map(move |e| (phase, e)))
        .enumerate()
        .map(|(i, (phase, epoch))| EpochRecord {
            phase: phase.into(),
            epoch,
            train_loss: 0.05 / (i + 1) as f64,
            val_mse: 0.045 / (i + 1) as f64,
            lr: 1e-3 / (1 << i) as f64,
            seconds: 0.25,
        })
        .collect();
    figures::curves(&dir.join("curves_short.png"), "three short phases", &short)?;
    // Latent maps: 10 Gaussian clusters of 1,000 points each, a few far outliers; a tight,
    // well separated "deep" map and an overlapping, elongated "PCA" one.
    let normal = rand_distr::StandardNormal;
    let labels: Vec<u8> = (0..10_000).map(|i| (i % 10) as u8).collect();
    for (name, spread, radius, stretch) in [("deep2d", 0.9, 6.0, 1.0), ("pca2", 1.6, 3.0, 2.2)] {
        let centres: Vec<(f32, f32)> = (0..10)
            .map(|d| {
                let a = d as f32 * std::f32::consts::TAU / 10.0 + rng.random_range(-0.2..0.2f32);
                (radius * a.cos() * stretch, radius * a.sin())
            })
            .collect();
        let mut points = Array2::<f32>::zeros((labels.len(), 2));
        for (i, &l) in labels.iter().enumerate() {
            let (cx, cy) = centres[l as usize];
            let (dx, dy): (f32, f32) = (rng.sample(normal), rng.sample(normal));
            points[[i, 0]] = cx + dx * spread * stretch;
            points[[i, 1]] = cy + dy * spread;
        }
        points[[0, 0]] = 80.0; // outliers the view leaves out
        points[[1, 1]] = -60.0;
        figures::latent_map(
            &dir.join(format!("latent_{name}.png")),
            &format!("{name}: codes of 10,000 test images"),
            points.view(),
            &labels,
        )?;
    }

    let xs = [100, 300, 1_000, 3_000, 10_000, 60_000];
    let series = [
        ("pretrained encoder, frozen", vec![0.71, 0.80, 0.86, 0.89, 0.905, 0.915]),
        (
            "pretrained encoder, fine-tuned",
            vec![0.74, 0.84, 0.91, 0.945, 0.965, 0.982],
        ),
        ("from scratch", vec![0.62, 0.76, 0.87, 0.925, 0.955, 0.979]),
    ]
    .map(|(name, acc)| (name, xs.iter().copied().zip(acc).collect::<Vec<_>>()));
    figures::accuracy_vs_labels(
        &dir.join("accuracy_vs_labels.png"),
        "test accuracy against labelled training images",
        &series,
    )?;
    println!("figures in {}", dir.display());
    Ok(())
}
