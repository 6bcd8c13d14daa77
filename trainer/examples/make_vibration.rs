//! Writes the example vibration data set: windows of a vibration sensor on four machines,
//! healthy ones for training, healthy and faulty ones for testing, made from a seed (nothing is
//! downloaded). `trainer::data::vibration` describes the signal and the faults.
//!
//! ```text
//! cargo run -p trainer --release --example make_vibration -- --out data/vibration
//! ```
//!
//! Writes into `--out`:
//! - `vibration.npz`: `x_train` (train × window f32, healthy), `y_train` (i64, all 0),
//!   `x_test` (test × window f32), `y_test` (i64 anomaly labels: 0 healthy, 1 faulty, as
//!   `trainer score` reads them), `fault_test` (i64: 0 healthy, 1 bearing tone, 2 impacts,
//!   3 dropout);
//! - `vibration_train.csv`, `vibration_test.csv`: the same splits as tables, header
//!   `s0,...,s{window-1},label`, one window per line, the label the anomaly label (read them
//!   with the label column `label`).
//!
//! Flags (defaults in brackets):
//! - `--out DIR` [data/vibration]: where to write;
//! - `--window L` [64]: samples per window;
//! - `--rate HZ` [1000]: sample rate, above twice the highest tone (about 533 Hz);
//! - `--train N` [4000]: training windows, all healthy;
//! - `--test N` [1000]: test windows;
//! - `--fault-fraction F` [0.3]: fraction of the test windows that are faulty, spread evenly
//!   over the three faults;
//! - `--noise S` [0.25]: standard deviation of the sensor noise (a shaft tone's amplitude is
//!   about 1);
//! - `--fault-min A`, `--fault-max B` [1, 3]: each fault's energy is drawn from A to B times the
//!   noise's, `S² · L`;
//! - `--seed N` [1]: seed of everything random.

use clap::Parser;
use std::path::PathBuf;
use trainer::data::vibration::{generate, VibrationConfig, FAULTS, HEALTHY};

/// Writes the example vibration data set (see the file's header).
#[derive(Parser)]
struct Args {
    /// Where to write vibration.npz, vibration_train.csv and vibration_test.csv.
    #[arg(long, default_value = "data/vibration")]
    out: PathBuf,
    /// Samples per window.
    #[arg(long, default_value_t = VibrationConfig::default().window)]
    window: usize,
    /// Sample rate, Hz.
    #[arg(long, default_value_t = VibrationConfig::default().rate)]
    rate: f64,
    /// Training windows (all healthy).
    #[arg(long, default_value_t = VibrationConfig::default().train)]
    train: usize,
    /// Test windows.
    #[arg(long, default_value_t = VibrationConfig::default().test)]
    test: usize,
    /// Fraction of the test windows that are faulty.
    #[arg(long, default_value_t = VibrationConfig::default().fault_fraction)]
    fault_fraction: f64,
    /// Standard deviation of the sensor noise.
    #[arg(long, default_value_t = VibrationConfig::default().noise)]
    noise: f64,
    /// The least energy of a fault, in units of the noise's energy over a window.
    #[arg(long, default_value_t = VibrationConfig::default().fault_energy[0])]
    fault_min: f64,
    /// The most energy of a fault, in units of the noise's energy over a window.
    #[arg(long, default_value_t = VibrationConfig::default().fault_energy[1])]
    fault_max: f64,
    /// Seed of everything random.
    #[arg(long, default_value_t = VibrationConfig::default().seed)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = VibrationConfig {
        window: args.window,
        rate: args.rate,
        train: args.train,
        test: args.test,
        fault_fraction: args.fault_fraction,
        noise: args.noise,
        fault_energy: [args.fault_min, args.fault_max],
        seed: args.seed,
    };
    config.check()?;
    let data = generate(&config);
    for path in data.write_all(&args.out)? {
        println!("wrote {}", path.display());
    }
    let count = |label: i64| data.y_test.iter().filter(|&&y| y == label).count();
    println!(
        "{} training windows (healthy), {} test windows: {} healthy, {} bearing tone, {} impacts, {} dropout; {} samples each",
        data.train_len(),
        data.test_len(),
        count(HEALTHY),
        count(FAULTS[0]),
        count(FAULTS[1]),
        count(FAULTS[2]),
        data.window
    );
    Ok(())
}
