//! Every variant: a tiny run end to end, and the pieces that need the whole batch (lifetime
//! top-k, the KL penalty's ρ̂, per-image noise) computed the same however the batch is sharded.

use ndarray::Array2;
use std::path::Path;
use std::sync::OnceLock;
use trainer::experiments::recipe_run;
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe::{self, RECIPES};
use trainer::train::{State, Trainer, FIGURES, METRICS};

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap())
        .clone()
}

fn tiny(variant: &str, threads: usize) -> Trainer {
    let mut c = recipe::find(variant).unwrap().config(0, threads);
    let finetune = c.phases.iter().any(|p| p.name == "finetune").then_some(1);
    c.cap_epochs(Some(1), finetune).unwrap();
    c.train_limit = Some(600);
    c.test_limit = Some(520);
    Trainer::new(State::new(c).unwrap(), mnist()).unwrap()
}

#[test]
fn every_variant_trains_a_tiny_run_and_writes_its_outputs() {
    for r in RECIPES {
        let dir = tempfile::tempdir().unwrap();
        let mut t = tiny(r.name, 2);
        let m = recipe_run::run(&mut t, dir.path(), &mut Progress::Silent).unwrap();
        assert!(m.finished, "{}", r.name);
        assert!(
            m.test_mse.is_finite() && m.test_mse > 0.0 && m.test_mse < 0.3,
            "{}: {}",
            r.name,
            m.test_mse
        );
        assert!(dir.path().join(METRICS).is_file(), "{}", r.name);
        for f in ["examples", "codes", "dictionary", "curves"] {
            let png = dir.path().join(FIGURES).join(format!("{f}.png"));
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {f}.png: {e}", r.name));
            assert!(
                bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{}: {f}.png is not a PNG",
                r.name
            );
        }
        let expected_zeros = match r.name {
            // Each sample keeps k of 64 codes (a kept LeakyReLU code is never exactly 0).
            "topk16" => Some(48.0 / 64.0),
            "topk5" => Some(59.0 / 64.0),
            _ => None,
        };
        if let Some(z) = expected_zeros {
            assert_eq!(m.zero_code_fraction, z, "{}", r.name);
        } else {
            assert!(m.zero_code_fraction < 0.5, "{}: {}", r.name, m.zero_code_fraction);
        }
    }
}

fn max_abs(a: &Array2<f32>) -> f32 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn sharding_does_not_change_a_batch_gradient() {
    // 1 thread sees the batch whole; 3 threads split 512 rows 171/171/170. Lifetime masks, the
    // KL penalty and the noise must come out the same, leaving only float rounding. `deep30`'s
    // first stage (784-1000, 0.8 million parameters, weight decay) is large enough for the
    // shards' gradients to be summed and checked on the threads.
    let batch: Vec<u32> = (0..512).map(|i| (i * 7 % 600) as u32).collect();
    for variant in [
        "deep30",
        "fc",
        "topk5",
        "lifetime5",
        "lifetime25",
        "l1",
        "kl1e-1",
        "denoise-gaussian",
        "denoise-mask",
    ] {
        // `deep30` trains in batches of 128: its workspaces hold no more.
        let batch = if variant == "deep30" { &batch[..128] } else { &batch[..] };
        let (loss1, g1) = tiny(variant, 1).batch_gradients(batch);
        let (loss3, g3) = tiny(variant, 3).batch_gradients(batch);
        assert!(
            (loss1 - loss3).abs() <= 1e-6 * loss1,
            "{variant}: loss {loss1} vs {loss3}"
        );
        for (a, b) in g1.iter().zip(&g3) {
            let scale = max_abs(a);
            let diff = max_abs(&(a - b));
            assert!(
                diff <= 1e-4 * scale,
                "{variant}: gradients differ by {diff} (scale {scale})"
            );
        }
    }
}

#[test]
fn lifetime_sparsity_is_training_only() {
    // At evaluation the lifetime layer is the identity: the test MSE of an untrained lifetime
    // model equals that of the same weights without the layer.
    let mut with = tiny("lifetime5", 2);
    let mut without = tiny("fc", 2);
    assert_eq!(with.state.model.params, without.state.model.params);
    assert_eq!(with.evaluate(), without.evaluate());
    // In training it keeps ceil(5 % of 512) = 26 values per unit.
    let batch: Vec<u32> = (0..512).collect();
    let (l_with, _) = with.batch_gradients(&batch);
    let (l_without, _) = without.batch_gradients(&batch);
    assert_ne!(l_with, l_without);
}

#[test]
fn sparsity_penalties_and_noise_compose() {
    // The tutorial's top-k and lifetime layers together, on masked inputs, with an L1 penalty.
    use rand::SeedableRng;
    use trainer::model::{Layer, Model};
    use trainer::noise::Noise;
    use trainer::recipe::Penalty;
    let model = Model::tied(
        784,
        64,
        Layer::LeakyRelu { slope: 0.01 },
        &[Layer::TopK { k: 16 }, Layer::LifetimeTopK { fraction: 0.25 }],
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
    );
    let mut c = recipe::find("fc").unwrap().config(0, 2);
    c.variant = "topk16-lifetime25-mask-l1".into();
    c.cap_epochs(Some(2), Some(1)).unwrap();
    c.train_limit = Some(1024);
    c.test_limit = Some(512);
    c.noise = Some(Noise::Mask { fraction: 0.25 });
    c.penalty = Some(Penalty::L1 { lambda: 1e-2 });
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(State::with_model(c, model).unwrap(), mnist()).unwrap();
    let m = recipe_run::run(&mut t, dir.path(), &mut Progress::Silent).unwrap();
    let h = &t.state.history;
    assert!(h[1].val_mse < h[0].val_mse, "{h:?}");
    // At evaluation lifetime sparsity is off and top-k keeps 16 of 64 codes per sample.
    assert_eq!(m.zero_code_fraction, 0.75);
    assert!(dir.path().join(FIGURES).join("examples.png").is_file());
}
