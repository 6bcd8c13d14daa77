//! Greedy layer-wise training: freezing really freezes, growing keeps what was learned, and the
//! grown network unties into a plain deep autoencoder.

use ndarray::Array2;
use std::path::Path;
use std::sync::OnceLock;
use trainer::mnist::Mnist;
use trainer::model::Layer;
use trainer::progress::Progress;
use trainer::recipe;
use trainer::train::{State, Trainer};

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap())
        .clone()
}

fn deep(variant: &str, epochs: usize) -> Trainer {
    let mut c = recipe::find(variant).unwrap().config(0, 2);
    c.cap_epochs(Some(epochs), Some(epochs)).unwrap();
    c.train_limit = Some(1024);
    c.test_limit = Some(256);
    Trainer::new(State::new(c).unwrap(), mnist()).unwrap()
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_greedy_stage_trains_only_the_new_pair() {
    let mut t = deep("deep", 2);
    let mut p = Progress::Silent;
    // Stage 1: 784-128-784, tied.
    t.next_epoch(&mut p).unwrap();
    t.next_epoch(&mut p).unwrap();
    let after_stage1: Vec<Vec<u32>> = t.state.model.params.iter().map(|p| bits(&p.value)).collect();
    assert_eq!(after_stage1.len(), 3);
    // Stage 2 grows 128-64-128 in the middle and freezes the outer pair.
    t.next_epoch(&mut p).unwrap();
    t.next_epoch(&mut p).unwrap();
    let m = &t.state.model;
    assert_eq!(m.widths().unwrap(), vec![128, 128, 64, 64, 128, 128, 784, 784]);
    assert_eq!(m.code_width(), 64);
    for (i, before) in after_stage1.iter().enumerate() {
        assert!(m.params[i].frozen, "{} frozen", m.params[i].name);
        assert_eq!(
            &bits(&m.params[i].value),
            before,
            "{} changed while frozen",
            m.params[i].name
        );
    }
    // The new pair trained, and is tied: one weight used by both new layers.
    assert!(m.params[3..].iter().all(|p| !p.frozen));
    assert!(matches!(
        m.layers[2],
        Layer::Linear {
            weight: 3,
            transposed: false,
            ..
        }
    ));
    assert!(matches!(
        m.layers[4],
        Layer::Linear {
            weight: 3,
            transposed: true,
            ..
        }
    ));
    let h = &t.state.history;
    assert!(h[3].val_mse < h[2].val_mse, "stage 2 learns: {h:?}");
}

#[test]
fn frozen_parameters_get_no_optimiser_state() {
    let mut t = deep("deep", 1);
    let mut p = Progress::Silent;
    t.next_epoch(&mut p).unwrap();
    let frozen_before: Vec<Array2<f32>> = t.state.model.params.iter().map(|p| p.value.clone()).collect();
    t.next_epoch(&mut p).unwrap(); // stage 2, one epoch
                                   // A checkpoint's Adam state for the frozen tensors is still exactly zero.
    let dir = tempfile::tempdir().unwrap();
    t.save(dir.path()).unwrap();
    let s: State = trainer::checkpoint::load(&dir.path().join(trainer::train::CHECKPOINT)).unwrap();
    assert_eq!(
        s.model.params[..3].iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
        frozen_before
    );
    let json = serde_json::to_value(&s.adam).unwrap();
    for i in 0..3 {
        assert!(json["m"][i]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64() == Some(0.0)));
        assert!(json["v"][i]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64() == Some(0.0)));
    }
    assert!(json["m"][3]["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.as_f64() != Some(0.0)));
}

#[test]
fn fine_tuning_unfreezes_and_unties_everything() {
    let mut t = deep("deep2d", 1);
    t.run(None, &mut Progress::Silent).unwrap();
    let m = &t.state.model;
    assert_eq!(m.code_width(), 2);
    assert_eq!(t.state.history.len(), 5, "four stages and fine-tuning");
    assert!(m.params.iter().all(|p| !p.frozen));
    assert!(m
        .layers
        .iter()
        .all(|l| !matches!(l, Layer::Linear { transposed: true, .. })));
    // The 2-D code is linear: the decoder's first layer follows the code layer directly.
    assert_eq!(
        m.widths().unwrap(),
        vec![128, 128, 64, 64, 32, 32, 2, 32, 32, 64, 64, 128, 128, 784, 784]
    );
    assert_eq!(m.code_after, 7);
    assert!(matches!(m.layers[6], Layer::Linear { .. }));
    assert!(matches!(m.layers[7], Layer::Linear { .. }));
    assert_eq!(m.layers.last(), Some(&Layer::Sigmoid), "logistic output");
    // Untying copied the shared weights: the decoder's are the encoder's transposed.
    let Layer::Linear { weight: enc, .. } = m.layers[0] else {
        panic!()
    };
    let Layer::Linear { weight: dec, .. } = m.layers[13] else {
        panic!()
    };
    assert_eq!(m.params[dec].value.dim(), (784, 128));
    assert_ne!(enc, dec);
}

#[test]
fn deep30_has_a_linear_code_a_logistic_output_and_fine_tunes_tied() {
    let mut c = recipe::find("deep30").unwrap().config(0, 2);
    assert_eq!((c.batch_size, c.plateau.patience), (128, 3));
    assert_eq!(c.penalty, None);
    assert_eq!(c.weight_decay, recipe::DEEP30_WEIGHT_DECAY);
    c.cap_epochs(Some(1), Some(1)).unwrap();
    c.train_limit = Some(256);
    c.test_limit = Some(128);
    let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
    let mut p = Progress::Silent;
    for _ in 0..4 {
        t.next_epoch(&mut p).unwrap();
    }
    let outer = bits(&t.state.model.params[0].value);
    assert!(t.state.model.params[0].frozen, "frozen through the later stages");
    t.run(None, &mut p).unwrap();
    let m = &t.state.model;
    assert_eq!(t.state.history.len(), 5, "four stages and fine-tuning");
    assert_ne!(
        bits(&m.params[0].value),
        outer,
        "fine-tuning trains the outermost weight"
    );
    assert_eq!(
        m.widths().unwrap(),
        vec![1000, 1000, 500, 500, 250, 250, 30, 250, 250, 500, 500, 1000, 1000, 784, 784]
    );
    assert_eq!(m.code_width(), 30);
    assert!(
        matches!(m.layers[m.code_after - 1], Layer::Linear { .. }),
        "linear code"
    );
    assert_eq!(m.layers.last(), Some(&Layer::Sigmoid), "logistic output");
    assert!(m.params.iter().all(|p| !p.frozen), "everything fine-tunes");
    // Still tied: four weights, each used by an encoder layer and, transposed, by its mirror.
    let weights: Vec<(usize, bool)> = m
        .layers
        .iter()
        .filter_map(|l| match *l {
            Layer::Linear { weight, transposed, .. } => Some((weight, transposed)),
            _ => None,
        })
        .collect();
    assert_eq!(weights.len(), 8);
    for (i, &(w, transposed)) in weights[..4].iter().enumerate() {
        assert!(!transposed);
        assert_eq!(weights[7 - i], (w, true), "layer pair {i} shares its weight");
    }
    let h = &t.state.history;
    assert!(h[4].val_mse.is_finite() && h[4].val_mse < 0.3, "{h:?}");
}

#[test]
fn the_tutorial_recipes_keep_batches_of_512_and_patience_10() {
    for r in recipe::RECIPES.iter().filter(|r| r.name != "deep30") {
        let c = r.config(0, 1);
        assert_eq!((c.batch_size, c.plateau.patience), (512, 10), "{}", r.name);
    }
}

#[test]
fn weight_decay_adds_lambda_w_to_the_batch_gradient_of_every_weight() {
    let config = |weight_decay| {
        let mut c = recipe::find("deep30").unwrap().config(0, 2);
        c.weight_decay = weight_decay;
        c.train_limit = Some(256);
        c.test_limit = Some(64);
        c
    };
    let lambda = recipe::DEEP30_WEIGHT_DECAY;
    let batch: Vec<u32> = (0..128).collect();
    let mut with = Trainer::new(State::new(config(lambda)).unwrap(), mnist()).unwrap();
    let mut without = Trainer::new(State::new(config(0.0)).unwrap(), mnist()).unwrap();
    let (loss_with, g_with) = with.batch_gradients(&batch);
    let (loss_without, g_without) = without.batch_gradients(&batch);
    let m = &with.state.model;
    let w = &m.params[0].value;
    let squares: f64 = w.iter().map(|&v| v as f64 * v as f64).sum();
    assert!((loss_with - loss_without - 0.5 * lambda as f64 * squares).abs() < 1e-9);
    // params: 0 the tied weight (decayed once), 1 and 2 the biases (not decayed).
    for ((a, b), &v) in g_with[0].iter().zip(&g_without[0]).zip(w) {
        assert!((a - b - lambda * v).abs() <= 1e-6 * b.abs().max(1e-3), "{a} {b} {v}");
    }
    assert_eq!(g_with[1], g_without[1]);
    assert_eq!(g_with[2], g_without[2]);
}

#[test]
fn weight_decay_and_a_sparsity_penalty_combine() {
    // Decay is an optimiser setting: on top of L1, it adds exactly its own term and gradient.
    let config = |weight_decay| {
        let mut c = recipe::find("l1").unwrap().config(0, 2);
        c.weight_decay = weight_decay;
        c.train_limit = Some(256);
        c.test_limit = Some(64);
        c
    };
    let lambda = 1e-3f32;
    let batch: Vec<u32> = (0..128).collect();
    let mut with = Trainer::new(State::new(config(lambda)).unwrap(), mnist()).unwrap();
    let mut without = Trainer::new(State::new(config(0.0)).unwrap(), mnist()).unwrap();
    let (loss_with, g_with) = with.batch_gradients(&batch);
    let (loss_without, g_without) = without.batch_gradients(&batch);
    let w = &with.state.model.params[0].value;
    let squares: f64 = w.iter().map(|&v| v as f64 * v as f64).sum();
    assert!((loss_with - loss_without - 0.5 * lambda as f64 * squares).abs() < 1e-9);
    for ((a, b), &v) in g_with[0].iter().zip(&g_without[0]).zip(w) {
        assert!((a - b - lambda * v).abs() <= 1e-6 * b.abs().max(1e-3), "{a} {b} {v}");
    }
    assert_eq!(g_with[1], g_without[1]);
    // --lambda still weights the L1 penalty, and --weight-decay the decay.
    let mut c = config(0.0);
    c.set_lambda(0.5).unwrap();
    c.set_weight_decay(1e-4).unwrap();
    assert_eq!(c.penalty, Some(recipe::Penalty::L1 { lambda: 0.5 }));
    assert_eq!(c.weight_decay, 1e-4);
    // For deep30, without a sparsity penalty, --lambda sets the decay, as before.
    let mut d = recipe::find("deep30").unwrap().config(0, 1);
    d.set_lambda(2e-6).unwrap();
    assert_eq!((d.penalty, d.weight_decay), (None, 2e-6));
}

#[test]
fn a_stage_over_its_frozen_layers_run_once_trains_bit_for_bit_as_before() {
    // `deep30` (linear code, weight decay, batches of 128) on 1,000 images, which 2 threads
    // split into shards of 64 with a short last batch: each greedy stage starts its steps above
    // the frozen layers, from their output kept once per stage, and must end with the weights
    // and losses of steps that run those layers themselves.
    let run = |skip: bool| {
        let mut c = recipe::find("deep30").unwrap().config(0, 2);
        c.cap_epochs(Some(2), Some(1)).unwrap();
        c.train_limit = Some(1000);
        c.test_limit = Some(200);
        let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
        t.skip_frozen_layers(skip);
        let mut skipped = Vec::new();
        while t.next_epoch(&mut Progress::Silent).unwrap().is_some() {
            skipped.push(t.skipped_layers());
        }
        let weights: Vec<Vec<u32>> = t.state.model.params.iter().map(|p| bits(&p.value)).collect();
        let losses: Vec<(u64, u64)> = t
            .state
            .history
            .iter()
            .map(|r| (r.train_loss.to_bits(), r.val_mse.to_bits()))
            .collect();
        (skipped, weights, losses)
    };
    let (skipped, weights, losses) = run(true);
    // Stage 1 and fine-tuning train the bottom layer; stages 2-4 start above 2, 4 and 6 layers.
    assert_eq!(skipped, [0, 0, 2, 2, 4, 4, 6, 6, 0]);
    let (none, plain_weights, plain_losses) = run(false);
    assert!(none.iter().all(|&s| s == 0));
    assert_eq!(losses, plain_losses, "training and validation losses, bit for bit");
    assert_eq!(weights, plain_weights, "weights, bit for bit");
}
