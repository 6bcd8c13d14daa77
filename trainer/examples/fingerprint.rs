//! The fingerprint of every recipe: a short run of each (two epochs per phase on 1,024 training
//! images, 256 test images, 2 threads, seed 0) with a hash of its final weights, its test MSE,
//! its history and its int8 export, and the hash of every shipped model file. Refactoring keeps this output
//! identical on one machine: run it before and after and compare.
//!
//! `cargo run -p trainer --release --example fingerprint > before.txt`, change, again into
//! `after.txt`, then `diff before.txt after.txt`. (Float results depend on the CPU's SIMD path,
//! so the two runs must be on the same machine.)

use std::path::Path;
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe::{self, RECIPES};
use trainer::train::{State, Trainer};

/// FNV-1a over bytes: stable, dependency-free, enough to tell two weight sets apart.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = Mnist::load(&root.join("data/mnist")).expect("MNIST");
    for r in RECIPES {
        let mut c = recipe::find(r.name).unwrap().config(0, 2);
        let finetune = (c.phases.len() > 1).then_some(2);
        c.cap_epochs(Some(2), finetune).unwrap();
        c.train_limit = Some(1024);
        c.test_limit = Some(256);
        let mut t = Trainer::new(State::new(c).unwrap(), data.clone()).unwrap();
        let metrics = t.run(None, &mut Progress::Silent).unwrap();
        let weights = fnv(t
            .state
            .model
            .params
            .iter()
            .flat_map(|p| p.value.iter().flat_map(|x| x.to_le_bytes())));
        let history = fnv(t.state.history.iter().flat_map(|e| {
            format!("{} {} {:e} {:e} {:e}", e.phase, e.epoch, e.train_loss, e.val_mse, e.lr).into_bytes()
        }));
        // The int8 export of the short run: calibration on 256 training images.
        let q = trainer::quantize::quantize(
            &t.state.model,
            r.name,
            &trainer::quantize::mnist_input(),
            &data.train.images[..256 * trainer::mnist::PIXELS],
            metrics.test_mse,
            1,
        )
        .unwrap();
        let int8 = fnv(q.to_bytes().unwrap());
        println!(
            "{:<17} weights {weights:016x} history {history:016x} int8 {int8:016x} test_mse {:.9e}",
            r.name, metrics.test_mse
        );
    }
    let mut models: Vec<_> = std::fs::read_dir(root.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    models.sort();
    for m in models {
        let bytes = std::fs::read(&m).unwrap();
        println!("{:<30} {:016x}", m.file_name().unwrap().to_string_lossy(), fnv(bytes));
    }
}
