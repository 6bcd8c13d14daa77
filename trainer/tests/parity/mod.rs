//! The device training step against the CPU trainer, for any device: `tests/device.rs` runs
//! these on the reference backend (plain Rust, every machine), `tests/cuda.rs` on a GPU.

#![allow(dead_code)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::OnceLock;
use trainer::gpu::Session;
use trainer::layers::conv2d::Conv2dGeometry;
use trainer::layers::max_pool::MaxPoolGeometry;
use trainer::mnist::Mnist;
use trainer::model::{Layer, Model, Param};
use trainer::noise::Noise;
use trainer::progress::Progress;
use trainer::recipe::{self, Penalty};
use trainer::train::{State, TrainError, Trainer, CHECKPOINT};

/// A fresh session on the device under test.
pub type MakeSession = dyn Fn() -> Session;

/// The bundled MNIST, or the directory `MNIST_DIR` names (a test binary run on another
/// machine than it was built on).
pub fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = std::env::var_os("MNIST_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist"),
            Into::into,
        );
        Mnist::load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
    })
    .clone()
}

fn uniform(rng: &mut ChaCha8Rng, shape: (usize, usize), fan_in: usize) -> Array2<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    Array2::from_shape_simple_fn(shape, || rng.random_range(-bound..=bound))
}

fn param(rng: &mut ChaCha8Rng, params: &mut Vec<Param>, name: &str, shape: (usize, usize), fan_in: usize) -> usize {
    params.push(Param::new(name, uniform(rng, shape, fan_in)));
    params.len() - 1
}

/// An odd width in `lo..hi`.
fn odd(rng: &mut ChaCha8Rng, lo: usize, hi: usize) -> usize {
    rng.random_range(lo..hi) | 1
}

/// Models of every layer kind on random odd sizes, each ending in 784 outputs. `seed` draws
/// the sizes and the weights.
pub fn zoo(seed: u64) -> Vec<(String, Model)> {
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    let leaky = Layer::LeakyRelu { slope: 0.01 };
    let mut models = Vec::new();

    // Tied: Linear, LeakyReLU, Linearᵀ, Sigmoid (both activations fused with their bias).
    let k = odd(rng, 9, 40);
    let mut p = Vec::new();
    let w = param(rng, &mut p, "w", (k, 784), 784);
    let b1 = param(rng, &mut p, "b1", (1, k), 784);
    let b2 = param(rng, &mut p, "b2", (1, 784), k);
    let tied = Model {
        input: 784,
        layers: vec![
            Layer::Linear {
                weight: w,
                bias: b1,
                transposed: false,
            },
            leaky.clone(),
            Layer::Linear {
                weight: w,
                bias: b2,
                transposed: true,
            },
            Layer::Sigmoid,
        ],
        params: p,
        code_after: 2,
    };
    models.push((format!("tied 784-{k}-784"), tied));

    // Untied two-layer encoder with top-k on sigmoid codes, a standalone activation after it.
    let (h, k) = (odd(rng, 41, 80), odd(rng, 9, 30));
    let mut p = Vec::new();
    let w1 = param(rng, &mut p, "w1", (h, 784), 784);
    let b1 = param(rng, &mut p, "b1", (1, h), 784);
    let w2 = param(rng, &mut p, "w2", (k, h), h);
    let b2 = param(rng, &mut p, "b2", (1, k), h);
    let w3 = param(rng, &mut p, "w3", (784, k), k);
    let b3 = param(rng, &mut p, "b3", (1, 784), k);
    let topk = Model {
        input: 784,
        layers: vec![
            Layer::Linear {
                weight: w1,
                bias: b1,
                transposed: false,
            },
            leaky.clone(),
            Layer::Linear {
                weight: w2,
                bias: b2,
                transposed: false,
            },
            Layer::Sigmoid,
            Layer::TopK { k: k / 3 },
            Layer::Linear {
                weight: w3,
                bias: b3,
                transposed: false,
            },
            leaky.clone(),
        ],
        params: p,
        code_after: 5,
    };
    models.push((format!("top-{} of 784-{h}-{k}-784", k / 3), topk));

    // Lifetime top-k, then a frozen first layer (only the layers above it learn).
    let k = odd(rng, 9, 40);
    let mut p = Vec::new();
    let w1 = param(rng, &mut p, "w1", (k, 784), 784);
    let b1 = param(rng, &mut p, "b1", (1, k), 784);
    let w2 = param(rng, &mut p, "w2", (784, k), k);
    let b2 = param(rng, &mut p, "b2", (1, 784), k);
    let lifetime = Model {
        input: 784,
        layers: vec![
            Layer::Linear {
                weight: w1,
                bias: b1,
                transposed: false,
            },
            leaky.clone(),
            Layer::LifetimeTopK { fraction: 0.2 },
            Layer::Linear {
                weight: w2,
                bias: b2,
                transposed: false,
            },
            leaky.clone(),
        ],
        params: p,
        code_after: 3,
    };
    models.push((format!("lifetime 20 % of 784-{k}-784"), lifetime.clone()));
    let mut frozen = lifetime;
    frozen.params[0].frozen = true;
    frozen.params[1].frozen = true;
    models.push((format!("frozen encoder 784-{k}-784"), frozen));

    // Two convolutions with odd channel counts and kernels, max-pooling to odd sizes, a linear
    // decoder.
    let (c1, c2) = (odd(rng, 2, 6), odd(rng, 2, 6));
    let (k1, k2) = (odd(rng, 2, 6), 2 * rng.random_range(1..3));
    let g1 = Conv2dGeometry::new(1, 28, 28, c1, k1);
    let g2 = Conv2dGeometry::new(c1, g1.out_h(), g1.out_w(), c2, k2);
    let pool = MaxPoolGeometry::new(c2, g2.out_h(), g2.out_w());
    let mut p = Vec::new();
    let cw1 = param(rng, &mut p, "conv1.weight", g1.weight_shape(), k1 * k1);
    let cb1 = param(rng, &mut p, "conv1.bias", (1, c1), k1 * k1);
    let cw2 = param(rng, &mut p, "conv2.weight", g2.weight_shape(), c1 * k2 * k2);
    let cb2 = param(rng, &mut p, "conv2.bias", (1, c2), c1 * k2 * k2);
    let code = pool.out_len();
    let dw = param(rng, &mut p, "dec.weight", (784, code), code);
    let db = param(rng, &mut p, "dec.bias", (1, 784), code);
    let conv = Model {
        input: 784,
        layers: vec![
            Layer::Conv2d {
                weight: cw1,
                bias: cb1,
                geometry: g1,
            },
            leaky.clone(),
            Layer::Conv2d {
                weight: cw2,
                bias: cb2,
                geometry: g2,
            },
            leaky.clone(),
            Layer::MaxPool2d { geometry: pool },
            Layer::Linear {
                weight: dw,
                bias: db,
                transposed: false,
            },
            Layer::Sigmoid,
        ],
        params: p,
        code_after: 5,
    };
    models.push((
        format!("conv {c1}x{k1}x{k1}, {c2}x{k2}x{k2}, pool to {code}, 784"),
        conv,
    ));
    models
}

/// A trainer of `model` on `n` training images with batches of `batch` rows, `threads` CPU
/// threads, and `config` changed by `edit`.
pub fn trainer_of(model: Model, batch: usize, threads: usize, edit: impl Fn(&mut trainer::recipe::Config)) -> Trainer {
    let mut c = recipe::find("fc").unwrap().config(0, threads);
    c.batch_size = batch;
    c.train_limit = Some(600);
    c.test_limit = Some(300);
    edit(&mut c);
    Trainer::new(State::with_model(c, model).unwrap(), mnist()).unwrap()
}

/// `a` and `b` agree within `tol` of the larger magnitude (at least 1e-3 of 1).
pub fn assert_close(what: &str, a: &Array2<f32>, b: &Array2<f32>, tol: f32) {
    assert_eq!(a.dim(), b.dim(), "{what}: shapes");
    let scale = a.iter().chain(b.iter()).fold(1e-3f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= tol * scale, "{what}: differs by {worst} (scale {scale})");
}

/// A batch of odd size from the training images, in a scrambled order.
fn odd_batch(seed: u64, rows: usize) -> Vec<u32> {
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    (0..rows).map(|_| rng.random_range(0..600)).collect()
}

/// Every layer kind forward and backward: the device's loss and parameter gradients of one odd
/// batch are the CPU's (three threads, so the CPU shards the batch), within float tolerance,
/// plain and with each code penalty, weight decay and denoising noise.
pub fn every_layer_matches_the_cpu(make: &MakeSession) {
    type Edit = fn(&mut trainer::recipe::Config);
    let settings: [(&str, Edit); 5] = [
        ("plain", |_| {}),
        ("L1", |c| c.penalty = Some(Penalty::L1 { lambda: 0.3 })),
        ("KL", |c| c.penalty = Some(Penalty::Kl { lambda: 0.1, rho: 0.05 })),
        ("weight decay", |c| c.weight_decay = 0.01),
        ("gaussian noise", |c| c.noise = Some(Noise::Gaussian { variance: 0.1 })),
    ];
    for seed in [1, 2] {
        for (name, model) in zoo(seed) {
            for (setting, edit) in settings {
                let rows = 2 * (seed as usize) * 13 + 11;
                let batch = odd_batch(seed, rows);
                let mut cpu = trainer_of(model.clone(), rows, 3, edit);
                let mut dev = trainer_of(model.clone(), rows, 3, edit);
                dev.set_session(make());
                let (cpu_loss, cpu_grads) = cpu.batch_gradients(&batch);
                let (dev_loss, dev_grads) = dev.batch_gradients(&batch);
                let what = format!("{name}, {setting}, {rows} rows");
                assert!(
                    (cpu_loss - dev_loss).abs() <= 1e-5 * cpu_loss.abs(),
                    "{what}: loss {cpu_loss} on the CPU, {dev_loss} on the device"
                );
                for (p, (c, d)) in cpu_grads.iter().zip(&dev_grads).enumerate() {
                    let pname = &model.params[p].name;
                    if model.params[p].frozen {
                        continue;
                    }
                    assert_close(&format!("{what}: gradient of {pname}"), c, d, 2e-4);
                }
            }
        }
    }
}

/// One epoch of `variant` on `train` images (all of them when `None`) gives the CPU's
/// validation MSE within `tolerance` relative.
pub fn one_epoch_matches_the_cpu(make: &MakeSession, variant: &str, train: Option<usize>, tolerance: f64) {
    let run = |device: bool| {
        let mut c = recipe::find(variant).unwrap().config(0, 2);
        c.train_limit = train;
        c.test_limit = Some(2000);
        let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
        if device {
            t.set_session(make());
        }
        t.next_epoch(&mut Progress::Silent).unwrap().unwrap()
    };
    let (cpu, dev) = (run(false), run(true));
    let rel = (cpu.val_mse - dev.val_mse).abs() / cpu.val_mse;
    assert!(
        rel <= tolerance,
        "{variant}: validation MSE {} on the CPU, {} on the device ({rel:.2e} relative)",
        cpu.val_mse,
        dev.val_mse
    );
    let rel = (cpu.train_loss - dev.train_loss).abs() / cpu.train_loss;
    assert!(
        rel <= tolerance,
        "{variant}: training loss {} on the CPU, {} on the device",
        cpu.train_loss,
        dev.train_loss
    );
}

/// Lifetime top-k keeps each unit's largest fraction of the whole batch and KL's ρ̂ is the whole
/// batch's mean: the device's gradients equal those of the CPU on one thread (no shards) and
/// on several, and a change to one row moves the mask of another.
pub fn batch_coupled_layers_decide_over_the_whole_batch(make: &MakeSession) {
    let rows = 97;
    let batch = odd_batch(9, rows);
    for variant in ["lifetime5", "kl1e-2"] {
        let grads = |threads: usize, device: bool| {
            let mut c = recipe::find(variant).unwrap().config(0, threads);
            c.batch_size = rows;
            c.train_limit = Some(600);
            c.test_limit = Some(100);
            let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
            if device {
                t.set_session(make());
            }
            t.batch_gradients(&batch).1
        };
        let dev = grads(1, true);
        for threads in [1, 4] {
            for (p, (c, d)) in grads(threads, false).iter().zip(&dev).enumerate() {
                assert_close(&format!("{variant}, {threads} CPU threads: parameter {p}"), c, d, 2e-4);
            }
        }
    }
}

/// A run started on the device resumes on the CPU and the other way round: one epoch on each
/// gives what two epochs on the CPU give, within float tolerance.
pub fn checkpoints_move_between_devices(make: &MakeSession) {
    let config = || {
        let mut c = recipe::find("fc").unwrap().config(0, 2);
        c.train_limit = Some(1000);
        c.test_limit = Some(500);
        c
    };
    let mut reference = Trainer::new(State::new(config()).unwrap(), mnist()).unwrap();
    reference.next_epoch(&mut Progress::Silent).unwrap();
    let want = reference.next_epoch(&mut Progress::Silent).unwrap().unwrap().val_mse;
    for first_on_device in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Trainer::new(State::new(config()).unwrap(), mnist()).unwrap();
        if first_on_device {
            first.set_session(make());
        }
        first.next_epoch(&mut Progress::Silent).unwrap();
        first.save(dir.path()).unwrap();
        let state: State = trainer::checkpoint::load(&dir.path().join(CHECKPOINT)).unwrap();
        let mut second = Trainer::new(state, mnist()).unwrap();
        if !first_on_device {
            second.set_session(make());
        }
        let got = second.next_epoch(&mut Progress::Silent).unwrap().unwrap().val_mse;
        assert!(
            ((got - want) / want).abs() < 1e-4,
            "first epoch on the {}: {got}, CPU only: {want}",
            if first_on_device { "device" } else { "CPU" }
        );
    }
}

/// A NaN weight stops the device's run with the CPU's divergence error, in the epoch it
/// appears.
pub fn divergence_is_reported(make: &MakeSession) {
    let mut c = recipe::find("fc").unwrap().config(0, 2);
    c.train_limit = Some(600);
    c.test_limit = Some(100);
    let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
    t.set_session(make());
    t.next_epoch(&mut Progress::Silent).unwrap().unwrap();
    t.state.model.params[0].value[[0, 0]] = f32::NAN;
    match t.next_epoch(&mut Progress::Silent) {
        Err(TrainError::Diverged { what, epoch, .. }) => assert_eq!((what.as_str(), epoch), ("training loss", 2)),
        other => panic!("expected a divergence, got {other:?}"),
    }
}

/// `semisup`'s classifiers: a frozen encoder's head and a fine-tuned encoder trained on the
/// device end where the CPU's end, within float tolerance.
pub fn semisup_matches_the_cpu(make: &MakeSession) {
    use trainer::semisup::{self, SemisupConfig, Start};
    let data = mnist();
    let fc = Model::fc_tied(784, 16, &mut ChaCha8Rng::seed_from_u64(3));
    let config = SemisupConfig {
        max_epochs_small: 12,
        batch_size: 64,
        ..SemisupConfig::default()
    };
    let subset = semisup::balanced_subset(&data.train.labels, 200, 0);
    let images: Vec<f32> = data.train.images.iter().map(|&p| f32::from(p) / 255.0).collect();
    for start in [Start::Frozen, Start::FineTuned] {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let model = semisup::classifier(&fc, start, &mut rng);
        let (cpu, cpu_score) = semisup::train(model.clone(), &data, &subset, start, &config);
        let mut session = make();
        let (dev, dev_score) = semisup::train_on(&mut session, &images, model, &data, &subset, start, &config).unwrap();
        assert_eq!(cpu_score.epochs, dev_score.epochs, "{start:?}: epochs");
        assert!(
            (cpu_score.test_accuracy - dev_score.test_accuracy).abs() <= 0.002,
            "{start:?}: test accuracy {} on the CPU, {} on the device",
            cpu_score.test_accuracy,
            dev_score.test_accuracy
        );
        for (c, d) in cpu.params.iter().zip(&dev.params) {
            assert_close(&format!("{start:?}: {}", c.name), &c.value, &d.value, 1e-3);
        }
    }
}
