//! Semi-supervised classification: an autoencoder's encoder feeds a softmax classifier trained
//! on few labels. Three starts are compared on the same class-balanced label subsets: the
//! pretrained encoder frozen (only the 64→10 head learns), the pretrained encoder fine-tuned,
//! and the same 784-64-10 network from scratch.
//!
//! Each classifier trains with Adam (1e-3, batches of 512) and the plateau scheduler on the
//! test cross-entropy, until lr < 1e-5 or the epoch cap.

use crate::layers::softmax_ce;
use crate::mnist::{Mnist, Split};
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

/// Trains `model` on the training images `subset`; returns the trained model and its score.
pub fn train(mut model: Model, data: &Mnist, subset: &[u32], start: Start, config: &SemisupConfig) -> (Model, Score) {
    let bs = config.batch_size.min(subset.len()).max(1);
    let mut ws = Workspace::new(&model, bs);
    let mut adam = Adam::new(config.lr, model.params.iter().map(|p| p.value.dim()));
    let mut plateau = Plateau::new(PlateauConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(1);
    let max_epochs = if subset.len() <= 1_000 {
        config.max_epochs_small
    } else {
        config.max_epochs_large
    };
    let trainable: Vec<bool> = model.params.iter().map(|p| !p.frozen).collect();
    let mut order = subset.to_vec();
    let mut labels = Vec::with_capacity(bs);
    let mut epochs = 0;
    while epochs < max_epochs && adam.lr >= config.stop_lr {
        order.shuffle(&mut rng);
        for batch in order.chunks(bs) {
            ws.load(batch.iter().map(|&i| data.train.image(i as usize)));
            labels.clear();
            labels.extend(batch.iter().map(|&i| data.train.labels[i as usize]));
            ws.forward(&model, true);
            let (z, dz) = ws.output_and_grad();
            softmax_ce::forward_backward(z, &labels, dz, batch.len());
            ws.backward(&model);
            let mut params: Vec<&mut Array2<f32>> = model.params.iter_mut().map(|p| &mut p.value).collect();
            adam.step(&mut params, &ws.grads, &trainable);
        }
        epochs += 1;
        let (test_loss, _) = evaluate(&model, &data.test, &mut ws);
        plateau.step(test_loss, &mut adam.lr);
    }
    let (_, test_accuracy) = evaluate(&model, &data.test, &mut ws);
    let score = Score {
        labels: subset.len(),
        start,
        test_accuracy,
        epochs,
    };
    (model, score)
}

/// The whole study: every label count and every start, from `autoencoder`'s encoder.
pub fn run(autoencoder: &Model, data: &Mnist, config: &SemisupConfig, mut report: impl FnMut(&Score)) -> Vec<Score> {
    let mut scores = Vec::new();
    for &n in &config.label_counts {
        let subset = balanced_subset(&data.train.labels, n, config.seed);
        for start in Start::ALL {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(2);
            let model = classifier(autoencoder, start, &mut rng);
            let (_, score) = train(model, data, &subset, start, config);
            report(&score);
            scores.push(score);
        }
    }
    scores
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
