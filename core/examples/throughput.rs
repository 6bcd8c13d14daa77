//! Host throughput of the core: samples per second of `encode_u8` and `denoise` for each model
//! file given (random u8 samples of the model's input length), one thread, release build.
//!
//! ```text
//! cargo run -p autoencoder-core --release --example throughput -- models/*.aeq
//! ```
//!
//! With `--count N` it runs exactly N encodes and N denoises per model instead, to be measured
//! from outside (`perf stat -e instructions,cycles`), which a busy machine cannot disturb.

use autoencoder_core::{Model, Runner};
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let count = args.iter().position(|a| a == "--count").map(|i| {
        let n = args
            .get(i + 1)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| {
                eprintln!("error: --count needs a number");
                std::process::exit(2);
            });
        args.drain(i..i + 2);
        n
    });
    let paths = args;
    if paths.is_empty() {
        eprintln!("usage: throughput MODEL.aeq...");
        std::process::exit(2);
    }
    println!("| model | bytes | encode images/s | denoise images/s |");
    println!("|---|---:|---:|---:|");
    for path in paths {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: reading {path}: {e}");
                std::process::exit(1);
            }
        };
        let model = match Model::from_bytes(&bytes) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                std::process::exit(1);
            }
        };
        let mut scratch = vec![0i8; model.scratch_len()];
        let mut code = vec![0i8; model.code_len()];
        let mut runner = Runner::new(model, &mut scratch).expect("scratch sized by the model");
        // A fixed pseudo-random set of images, so every model sees the same work.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let n_in = runner.model().input_len();
        let images: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                (0..n_in)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 56) as u8
                    })
                    .collect()
            })
            .collect();
        let mut out = vec![0u8; n_in];
        if let Some(n) = count {
            for img in images.iter().cycle().take(n) {
                runner
                    .encode_u8_into(std::hint::black_box(img), &mut code)
                    .expect("runs");
                runner.denoise_into(std::hint::black_box(img), &mut out).expect("runs");
            }
            println!("| {path} | {} | {n} encodes | {n} denoises |", bytes.len());
            continue;
        }
        let encode = rate(&images, |img| runner.encode_u8_into(img, &mut code).expect("runs"));
        let denoise = rate(&images, |img| runner.denoise_into(img, &mut out).expect("runs"));
        println!("| {path} | {} | {encode:.0} | {denoise:.0} |", bytes.len());
    }
}

/// Images per second of `f`, the best of 5 rounds of at least 0.2 s each.
fn rate(images: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> f64 {
    let mut best = 0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(200) {
            for img in images {
                f(std::hint::black_box(img));
            }
            n += images.len();
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}
