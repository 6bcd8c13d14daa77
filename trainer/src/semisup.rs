//! Semi-supervised classification: an autoencoder's encoder feeds a softmax classifier trained
//! on few labels. Three starts are compared on the same class-balanced label subsets: the
//! pretrained encoder frozen (only the 64→10 head learns), the pretrained encoder fine-tuned,
//! and the same 784-64-10 network from scratch.
//!
//! The procedure is the same for every start and label count, and the test set plays no part
//! in it (no labelled image is spare for validation either):
//!
//! - every encoder's code units are centred first ([`centre_codes`]): the bias of the layer
//!   that makes the codes is shifted so that each unit's pre-activation averages 0 over the
//!   60,000 training images, labels unused. The `fc` autoencoder's units never leave LeakyReLU's
//!   linear range on MNIST, so uncentred they make the classifier linear in the pixels;
//!   centred, each unit is active on part of the images, as a freshly initialised unit is;
//! - Adam (1e-3, batches of 512) with the plateau scheduler on the training loss, until
//!   lr < 1e-5 or the epoch cap;
//! - the fine-tuned start continues from the frozen start's classifier (its trained head on
//!   the same encoder), so fine-tuning does not begin by back-propagating a random head's
//!   errors into the pretrained encoder.

use crate::gpu::session::{StepConfig, Target};
use crate::gpu::{DeviceError, Session};
use crate::layers::softmax_ce;
use crate::mnist::{Mnist, Split, PIXELS};
use crate::model::{init, Layer, Model, Param};
use crate::optim::adam::Adam;
use crate::optim::plateau::{Plateau, PlateauConfig};
use crate::workspace::Workspace;
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Digits.
pub const CLASSES: usize = 10;

/// How the classifier's encoder starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// The autoencoder's encoder, frozen.
    Frozen,
    /// The autoencoder's encoder, trained further with the head.
    FineTuned,
    /// A fresh encoder of the same shape.
    Scratch,
}

impl Start {
    /// All three, in report order.
    pub const ALL: [Start; 3] = [Start::Frozen, Start::FineTuned, Start::Scratch];

    /// A name for tables and legends.
    pub fn label(self) -> &'static str {
        match self {
            Start::Frozen => "pretrained encoder, frozen",
            Start::FineTuned => "pretrained encoder, fine-tuned",
            Start::Scratch => "from scratch",
        }
    }
}

/// The study's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SemisupConfig {
    /// Seeds the label subsets, initialisation and shuffling.
    pub seed: u64,
    /// Labelled training images per run (class-balanced; at least the whole set means all).
    pub label_counts: Vec<usize>,
    /// Batch size.
    pub batch_size: usize,
    /// Adam's initial learning rate.
    pub lr: f64,
    /// Stop once the learning rate is below this.
    pub stop_lr: f64,
    /// Epoch cap for subsets of up to 1,000 labels (an epoch is one or two batches).
    pub max_epochs_small: usize,
    /// Epoch cap for larger subsets.
    pub max_epochs_large: usize,
}

/// Images per pass when the centring statistics are gathered.
const CENTRE_BATCH: usize = 512;

impl Default for SemisupConfig {
    fn default() -> Self {
        SemisupConfig {
            seed: 0,
            label_counts: vec![100, 1_000, 60_000],
            batch_size: 512,
            lr: 1e-3,
            stop_lr: 1e-5,
            max_epochs_small: 500,
            max_epochs_large: 50,
        }
    }
}

/// One classifier's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Labelled images it trained on.
    pub labels: usize,
    /// How its encoder started.
    pub start: Start,
    /// Accuracy on the 10,000 test images.
    pub test_accuracy: f64,
    /// Epochs run.
    pub epochs: usize,
}

/// `n` training images, `n / 10` of each digit (all of them when `n` reaches the split's size),
/// chosen by `seed`.
pub fn balanced_subset(labels: &[u8], n: usize, seed: u64) -> Vec<u32> {
    let mut all: Vec<u32> = (0..labels.len() as u32).collect();
    if n >= labels.len() {
        return all;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    all.shuffle(&mut rng);
    let per_class = n / CLASSES;
    let mut taken = [0usize; CLASSES];
    let mut out: Vec<u32> = all
        .into_iter()
        .filter(|&i| {
            let c = labels[i as usize] as usize;
            taken[c] += 1;
            taken[c] <= per_class
        })
        .collect();
    out.sort_unstable();
    out
}

/// The classifier: the autoencoder's encoder (its layers up to the code) and a linear head
/// `K → 10`. `Scratch` re-initialises the encoder's parameters; `Frozen` freezes them.
pub fn classifier(autoencoder: &Model, start: Start, rng: &mut ChaCha8Rng) -> Model {
    let mut params: Vec<Param> = Vec::new();
    let mut remap = std::collections::HashMap::new();
    let mut layers = Vec::new();
    let mut fan_in = autoencoder.input;
    for (i, layer) in autoencoder.layers[..autoencoder.code_after].iter().enumerate() {
        let mut layer = layer.clone();
        if let Layer::Linear { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } = &mut layer {
            for p in [weight, bias] {
                let new = *remap.entry(*p).or_insert_with(|| {
                    let mut param = autoencoder.params[*p].clone();
                    match start {
                        Start::Scratch => param.value = init(rng, param.value.dim(), fan_in),
                        Start::Frozen => param.frozen = true,
                        Start::FineTuned => param.frozen = false,
                    }
                    params.push(param);
                    params.len() - 1
                });
                *p = new;
            }
        }
        fan_in = autoencoder.widths().expect("a valid model")[i];
        layers.push(layer);
    }
    let code = autoencoder.code_width();
    params.push(Param::new("head.weight", init(rng, (CLASSES, code), code)));
    params.push(Param::new("head.bias", init(rng, (1, CLASSES), code)));
    layers.push(Layer::Linear {
        weight: params.len() - 2,
        bias: params.len() - 1,
        transposed: false,
    });
    Model {
        input: autoencoder.input,
        code_after: layers.len() - 1,
        layers,
        params,
    }
}

/// Centres the code units of `model`'s encoder (`layers[..code_after]`) on `images`: the bias of
/// the encoder's last linear layer is shifted so that the layer's outputs (the pre-activations of
/// the codes) average 0 over the images. Labels are not used. Returns the shift's size (the
/// root mean square of the means removed); 0 when the encoder has no linear layer.
pub fn centre_codes(model: &mut Model, images: &Split) -> f64 {
    let Some((layer, bias)) = model.layers[..model.code_after]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| match *l {
            Layer::Linear { bias, .. } => Some((i, bias)),
            _ => None,
        })
    else {
        return 0.0;
    };
    let n = images.len();
    if n == 0 {
        return 0.0;
    }
    let width = model.params[bias].value.ncols();
    let mut sums = vec![0f64; width];
    let mut ws = Workspace::new(model, CENTRE_BATCH.min(n));
    for start in (0..n).step_by(ws.capacity()) {
        let end = (start + ws.capacity()).min(n);
        ws.load((start..end).map(|i| images.image(i)));
        ws.forward_range(model, 0..layer + 1, false);
        for row in ws.act(layer).axis_iter(Axis(0)) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
    }
    let mut square = 0.0;
    for (b, s) in model.params[bias].value.iter_mut().zip(&sums) {
        let mean = s / n as f64;
        *b = (*b as f64 - mean) as f32;
        square += mean * mean;
    }
    (square / width as f64).sqrt()
}

/// The fine-tuned start: `frozen`, a classifier trained with its encoder frozen, with every
/// parameter made trainable.
pub fn unfrozen(frozen: &Model) -> Model {
    let mut model = frozen.clone();
    model.unfreeze_all();
    model
}

/// Loss (mean cross-entropy) and accuracy of `model` on `split`.
pub fn evaluate(model: &Model, split: &Split, ws: &mut Workspace) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0, 0usize);
    let n = split.len();
    for start in (0..n).step_by(ws.capacity()) {
        let end = (start + ws.capacity()).min(n);
        ws.load((start..end).map(|i| split.image(i)));
        ws.forward(model, false);
        let labels = &split.labels[start..end];
        let (z, dz) = ws.output_and_grad();
        loss += softmax_ce::forward_backward(z, labels, dz, n);
        correct += ws
            .output()
            .axis_iter(Axis(0))
            .zip(labels)
            .filter(|(z, &y)| softmax_ce::predict(z.view()) == y)
            .count();
    }
    (loss / n as f64, correct as f64 / n as f64)
}

/// How one classifier trains, on the CPU or a device: batch size, a fresh Adam and plateau
/// scheduler, the shuffling generator (stream 1 of the seed) and the epoch cap.
struct Schedule {
    bs: usize,
    adam: Adam,
    plateau: Plateau,
    rng: ChaCha8Rng,
    max_epochs: usize,
}

impl Schedule {
    fn new(model: &Model, subset: &[u32], config: &SemisupConfig) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(1);
        Schedule {
            bs: config.batch_size.min(subset.len()).max(1),
            adam: Adam::new(config.lr, model.params.iter().map(|p| p.value.dim())),
            plateau: Plateau::new(PlateauConfig::default()),
            rng,
            max_epochs: if subset.len() <= 1_000 {
                config.max_epochs_small
            } else {
                config.max_epochs_large
            },
        }
    }

    /// Runs epochs until the cap or the stop rate `stop_lr`: each shuffles `subset`, `epoch`
    /// trains on that order with this Adam and returns the summed loss, and the plateau
    /// scheduler follows the mean. Returns the epochs run.
    fn run<E>(
        &mut self,
        subset: &[u32],
        stop_lr: f64,
        mut epoch: impl FnMut(&[u32], &mut Adam) -> Result<f64, E>,
    ) -> Result<usize, E> {
        let mut order = subset.to_vec();
        let mut epochs = 0;
        while epochs < self.max_epochs && self.adam.lr >= stop_lr {
            order.shuffle(&mut self.rng);
            let loss = epoch(&order, &mut self.adam)?;
            epochs += 1;
            self.plateau.step(loss / order.len() as f64, &mut self.adam.lr);
        }
        Ok(epochs)
    }
}

/// The score of `model` trained `epochs` epochs on `subset` from `start`: its accuracy on the
/// test images, which training never sees (measured on the CPU with `ws`).
fn score(model: &Model, data: &Mnist, subset: &[u32], start: Start, epochs: usize, ws: &mut Workspace) -> Score {
    let (_, test_accuracy) = evaluate(model, &data.test, ws);
    Score {
        labels: subset.len(),
        start,
        test_accuracy,
        epochs,
    }
}

/// Trains `model` on the training images `subset`, the plateau scheduler following the training
/// loss; returns the trained model and its score on the test images, which training never sees.
pub fn train(mut model: Model, data: &Mnist, subset: &[u32], start: Start, config: &SemisupConfig) -> (Model, Score) {
    let mut schedule = Schedule::new(&model, subset, config);
    let bs = schedule.bs;
    let mut ws = Workspace::new(&model, bs);
    let trainable: Vec<bool> = model.params.iter().map(|p| !p.frozen).collect();
    let mut labels = Vec::with_capacity(bs);
    let epochs = schedule.run(subset, config.stop_lr, |order, adam| {
        let mut loss = 0.0;
        for batch in order.chunks(bs) {
            ws.load(batch.iter().map(|&i| data.train.image(i as usize)));
            labels.clear();
            labels.extend(batch.iter().map(|&i| data.train.labels[i as usize]));
            ws.forward(&model, true);
            let (z, dz) = ws.output_and_grad();
            loss += softmax_ce::forward_backward(z, &labels, dz, batch.len());
            ws.backward(&model);
            let mut params: Vec<&mut Array2<f32>> = model.params.iter_mut().map(|p| &mut p.value).collect();
            adam.step(&mut params, &ws.grads, &trainable);
        }
        Ok::<f64, std::convert::Infallible>(loss)
    });
    let Ok(epochs) = epochs;
    let score = score(&model, data, subset, start, epochs, &mut ws);
    (model, score)
}

/// [`train`] on a device: the same batches, the same Adam and schedule, the steps on the
/// device (`images`: every training image scaled to [0, 1], as the device holds them). The
/// trained model comes back from the device; the test accuracy is measured on the CPU.
#[allow(clippy::too_many_arguments)]
pub fn train_on(
    session: &mut Session,
    images: &[f32],
    mut model: Model,
    data: &Mnist,
    subset: &[u32],
    start: Start,
    config: &SemisupConfig,
) -> Result<(Model, Score), DeviceError> {
    let mut schedule = Schedule::new(&model, subset, config);
    let bs = schedule.bs;
    session.load(&model, &schedule.adam, bs, false, images, PIXELS)?;
    let step = StepConfig {
        batch_size: bs,
        penalty: None,
        weight_decay: 0.0,
    };
    let mut labels: Vec<u32> = Vec::with_capacity(bs);
    let epochs = schedule.run(subset, config.stop_lr, |order, adam| {
        session.begin_epoch(order)?;
        let mut batches = 0;
        for (b, batch) in order.chunks(bs).enumerate() {
            labels.clear();
            labels.extend(batch.iter().map(|&i| u32::from(data.train.labels[i as usize])));
            let constants = adam.advance();
            session.step(
                &model,
                &step,
                b,
                b * bs,
                batch.len(),
                Target::Classes(&labels),
                Some(constants),
            )?;
            batches += 1;
        }
        Ok(session.losses(batches)?.iter().map(|&l| f64::from(l)).sum())
    })?;
    session.store(&mut model, &mut schedule.adam)?;
    let score = score(&model, data, subset, start, epochs, &mut Workspace::new(&model, bs));
    Ok((model, score))
}

/// The whole study: every label count and every start, from `autoencoder`'s encoder. For each
/// label count the frozen start trains first and the fine-tuned start continues from its
/// classifier ([`unfrozen`]).
/// With `device`, the classifiers train there ([`train_on`]).
pub fn run(
    autoencoder: &Model,
    data: &Mnist,
    config: &SemisupConfig,
    mut device: Option<&mut Session>,
    mut report: impl FnMut(&Score),
) -> Result<Vec<Score>, DeviceError> {
    // A start's classifier before training, its codes centred on all the training images: the
    // same for every label count, so built once per start (each centring is a pass over the
    // 60,000 images).
    let initial = |start| {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(2);
        let mut model = classifier(autoencoder, start, &mut rng);
        centre_codes(&mut model, &data.train);
        model
    };
    // What a device holds: every training image as the network sees it.
    let images: Vec<f32> = match device {
        Some(_) => data.train.images.iter().map(|&p| f32::from(p) / 255.0).collect(),
        None => Vec::new(),
    };
    let frozen_start = initial(Start::Frozen);
    let scratch_start = initial(Start::Scratch);
    let mut scores = Vec::new();
    for &n in &config.label_counts {
        let subset = balanced_subset(&data.train.labels, n, config.seed);
        let mut frozen = None;
        for start in Start::ALL {
            let model = match (start, &frozen) {
                (Start::Frozen, _) => frozen_start.clone(),
                (Start::Scratch, _) => scratch_start.clone(),
                (Start::FineTuned, Some(trained)) => unfrozen(trained),
                (Start::FineTuned, None) => initial(start),
            };
            let (model, score) = match device.as_deref_mut() {
                Some(session) => train_on(session, &images, model, data, &subset, start, config)?,
                None => train(model, data, &subset, start, config),
            };
            if start == Start::Frozen {
                frozen = Some(model);
            }
            report(&score);
            scores.push(score);
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::check;

    #[test]
    fn balanced_subsets_hold_n_over_10_of_each_digit() {
        let labels: Vec<u8> = (0..1000).map(|i| ((i * 7) % 10) as u8).collect();
        let s = balanced_subset(&labels, 100, 3);
        assert_eq!(s.len(), 100);
        for d in 0..10u8 {
            assert_eq!(s.iter().filter(|&&i| labels[i as usize] == d).count(), 10);
        }
        assert_eq!(s, balanced_subset(&labels, 100, 3), "seeded");
        assert_ne!(s, balanced_subset(&labels, 100, 4));
        assert_eq!(
            balanced_subset(&labels, 5000, 3).len(),
            1000,
            "all when n reaches the size"
        );
    }

    #[test]
    fn classifier_reuses_frozen_or_copies_the_encoder() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let ae = Model::fc_tied(12, 4, &mut rng);
        let frozen = classifier(&ae, Start::Frozen, &mut rng);
        assert_eq!(frozen.widths().unwrap(), vec![4, 4, 10]);
        assert_eq!(frozen.params[0].value, ae.params[0].value);
        assert!(frozen.params[0].frozen && frozen.params[1].frozen && !frozen.params[2].frozen);
        assert_eq!(frozen.first_trainable_layer(), 2);
        let scratch = classifier(&ae, Start::Scratch, &mut rng);
        assert_ne!(scratch.params[0].value, ae.params[0].value);
        assert!(scratch.params.iter().all(|p| !p.frozen));
    }

    /// `n` images of random pixels with labels `i % 10`.
    fn random_split(n: usize, seed: u64) -> Split {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Split {
            images: (0..n * crate::mnist::PIXELS).map(|_| rng.random()).collect(),
            labels: (0..n).map(|i| (i % CLASSES) as u8).collect(),
        }
    }

    #[test]
    fn centring_zeroes_the_mean_pre_activation_and_keeps_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let ae = Model::fc_tied(crate::mnist::PIXELS, 4, &mut rng);
        let mut model = classifier(&ae, Start::Frozen, &mut rng);
        // 1,100 images: more than one pass of the statistics' batches.
        let images = random_split(1_100, 3);
        let before = model.clone();
        let shift = centre_codes(&mut model, &images);
        assert!(
            shift > 0.01,
            "random pixels give pre-activations far from mean 0: {shift}"
        );
        assert_eq!(model.params[0], before.params[0], "weights unchanged");
        assert_ne!(model.params[1].value, before.params[1].value, "the code bias moved");
        assert!(model.params[1].frozen, "frozen stays frozen");
        let mut ws = Workspace::new(&model, images.len());
        ws.load((0..images.len()).map(|i| images.image(i)));
        ws.forward(&model, false);
        let means = ws.act(0).mean_axis(Axis(0)).unwrap();
        assert!(means.iter().all(|m| m.abs() < 1e-4), "{means}");
        // Centring again finds nothing left to move.
        assert!(centre_codes(&mut model, &images) < 1e-4);
    }

    #[test]
    fn training_never_looks_at_the_test_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let ae = Model::fc_tied(crate::mnist::PIXELS, 4, &mut rng);
        let model = classifier(&ae, Start::FineTuned, &mut rng);
        let config = SemisupConfig {
            max_epochs_small: 30,
            ..SemisupConfig::default()
        };
        let train_split = random_split(60, 5);
        let subset: Vec<u32> = (0..60).collect();
        let data = |test_seed| Mnist {
            train: train_split.clone(),
            test: random_split(20, test_seed),
        };
        let (a, _) = train(model.clone(), &data(6), &subset, Start::FineTuned, &config);
        let (b, _) = train(model, &data(7), &subset, Start::FineTuned, &config);
        assert_eq!(a, b, "another test set, the same training");
    }

    #[test]
    fn the_fine_tuned_start_continues_from_the_frozen_classifier() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let ae = Model::fc_tied(12, 4, &mut rng);
        let frozen = classifier(&ae, Start::Frozen, &mut rng);
        let tuned = unfrozen(&frozen);
        assert!(tuned.params.iter().all(|p| !p.frozen));
        let values = |m: &Model| m.params.iter().map(|p| p.value.clone()).collect::<Vec<_>>();
        assert_eq!(values(&tuned), values(&frozen));
        assert_eq!(tuned.layers, frozen.layers);
    }

    #[test]
    fn classifier_gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ae = Model::fc_tied(12, 4, &mut rng);
        let mut model = classifier(&ae, Start::FineTuned, &mut rng);
        let images: Vec<Vec<u8>> = (0..5)
            .map(|r| (0..12).map(|c| ((r * 31 + c * 17) % 256) as u8).collect())
            .collect();
        let labels = [1u8, 7, 3, 3, 0];
        let mut ws = Workspace::new(&model, 5);
        let loss = |m: &Model, ws: &mut Workspace| {
            ws.load(images.iter());
            ws.forward(m, true);
            let (z, dz) = ws.output_and_grad();
            softmax_ce::forward_backward(z, &labels, dz, 5) / 5.0
        };
        loss(&model, &mut ws);
        ws.backward(&model);
        let analytic = ws.grads.clone();
        for (p, grad) in analytic.iter().enumerate() {
            let value = model.params[p].value.clone();
            let name = model.params[p].name.clone();
            check(&format!("classifier {name}"), &value, grad, |v| {
                model.params[p].value.assign(v);
                let l = loss(&model, &mut ws);
                model.params[p].value.assign(&value);
                l
            });
        }
    }
}
