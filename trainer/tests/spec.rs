//! Spec files: every built-in variant is one and builds the model and schedule the tutorial's
//! constructors do; printing and reading a spec loses nothing; a wrong spec is an error with the
//! key path and the line; architectures beyond the built-ins build and fit together.

mod common;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use trainer::layers::leaky_relu::SLOPE;
use trainer::model::{Layer, Model};
use trainer::noise::Noise;
use trainer::recipe::{self, Penalty, PhaseStart, RECIPES};
use trainer::spec::{Spec, SpecError};

const LEAKY: Layer = Layer::LeakyRelu { slope: SLOPE };

/// The built-in variant's model for MNIST, from seed `seed`.
fn built(variant: &str, seed: u64) -> Model {
    let c = recipe::find(variant).unwrap().config(seed, 1);
    c.architecture
        .build(&c.input_shape, &mut ChaCha8Rng::seed_from_u64(seed))
        .unwrap()
}

#[test]
fn every_built_in_spec_parses_under_its_own_name_and_survives_printing() {
    assert_eq!(RECIPES.len(), 14);
    for r in RECIPES {
        let spec = r.spec();
        assert_eq!(spec.name, r.name);
        assert!(!spec.about.is_empty(), "{}", r.name);
        let printed = spec.to_toml();
        let again = Spec::parse(&printed, "printed").unwrap_or_else(|e| panic!("{}: {e}\n{printed}", r.name));
        assert_eq!(again, spec, "{}", r.name);
        assert_eq!(again.config(2), spec.config(2));
    }
}

#[test]
fn the_one_layer_specs_build_the_tutorials_tied_autoencoders() {
    let tied = |activation: Layer, sparsity: &[Layer], seed| {
        Model::tied(784, 64, activation, sparsity, &mut ChaCha8Rng::seed_from_u64(seed))
    };
    for seed in [0, 5] {
        for v in ["fc", "l1", "denoise-gaussian", "denoise-mask"] {
            assert_eq!(built(v, seed), tied(LEAKY, &[], seed), "{v}");
        }
        assert_eq!(built("topk16", seed), tied(LEAKY, &[Layer::TopK { k: 16 }], seed));
        assert_eq!(built("topk5", seed), tied(LEAKY, &[Layer::TopK { k: 5 }], seed));
        let lifetime = |fraction| [Layer::LifetimeTopK { fraction }];
        assert_eq!(built("lifetime25", seed), tied(LEAKY, &lifetime(0.25), seed));
        assert_eq!(built("lifetime5", seed), tied(LEAKY, &lifetime(0.05), seed));
        for v in ["kl1e-2", "kl1e-1"] {
            assert_eq!(built(v, seed), tied(Layer::Sigmoid, &[], seed), "{v}");
        }
    }
}

#[test]
fn greedy_specs_start_as_their_first_stage() {
    let rng = || ChaCha8Rng::seed_from_u64(3);
    assert_eq!(built("deep", 3), Model::tied(784, 128, LEAKY, &[], &mut rng()));
    for (v, width) in [("deep2d", 128), ("deep30", 1000)] {
        let mut m = Model::tied(784, width, LEAKY, &[], &mut rng());
        *m.layers.last_mut().unwrap() = Layer::Sigmoid;
        assert_eq!(built(v, 3), m, "{v}");
    }
}

#[test]
fn the_conv_spec_builds_the_tutorials_network() {
    let m = built("conv", 0);
    let w = m.widths().unwrap();
    // 8x23x23, 8x18x18, 8x13x13, 8x8x8, pooled 8x4x4, then 784.
    assert_eq!(w, vec![4232, 4232, 2592, 2592, 1352, 1352, 512, 512, 128, 784, 784]);
    assert_eq!(m.code_after, 9);
    let names: Vec<_> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "conv3.weight",
            "conv3.bias",
            "conv4.weight",
            "conv4.bias",
            "dec.weight",
            "dec.bias"
        ]
    );
    assert_eq!(m.params[8].value.dim(), (784, 128));
    assert_eq!(m.code_width(), 128);
    // Forward MACs: 23²·8·36 + 18²·8·288 + 13²·8·288 + 8²·8·288 + 128·784; the first
    // convolution needs no input gradient.
    let fwd = [152_352u64, 746_496, 389_376, 147_456, 100_352];
    let expected = 2 * (2 * fwd[0] + 3 * fwd[1..].iter().sum::<u64>());
    assert_eq!(m.train_flops_per_sample(), expected);
    assert_eq!(m.dictionary().dim(), (128, 784));
}

fn phases(variant: &str) -> Vec<(String, usize, PhaseStart)> {
    recipe::find(variant)
        .unwrap()
        .config(0, 1)
        .phases
        .into_iter()
        .map(|p| (p.name, p.max_epochs, p.start))
        .collect()
}

fn p(name: &str, epochs: usize, start: PhaseStart) -> (String, usize, PhaseStart) {
    (name.into(), epochs, start)
}

#[test]
fn the_schedules_are_the_tutorials() {
    use PhaseStart::*;
    assert_eq!(phases("fc"), [p("tied", 100, Keep), p("finetune", 50, Untie)]);
    for v in ["topk16", "topk5", "lifetime25", "lifetime5", "l1", "kl1e-2", "kl1e-1"] {
        assert_eq!(phases(v), [p("tied", 100, Keep), p("finetune", 100, Untie)], "{v}");
    }
    for v in ["denoise-gaussian", "denoise-mask"] {
        assert_eq!(phases(v), [p("tied", 100, Keep), p("finetune", 50, Untie)], "{v}");
    }
    assert_eq!(phases("conv"), [p("train", 100, Keep)]);
    assert_eq!(
        phases("deep"),
        [
            p("stage1", 100, Keep),
            p("stage2", 100, Grow { width: 64 }),
            p("finetune", 100, UnfreezeUntie)
        ]
    );
    assert_eq!(
        phases("deep2d"),
        [
            p("stage1", 100, Keep),
            p("stage2", 100, Grow { width: 64 }),
            p("stage3", 100, Grow { width: 32 }),
            p("stage4", 100, GrowLinear { width: 2 }),
            p("finetune", 100, UnfreezeUntie)
        ]
    );
    assert_eq!(
        phases("deep30"),
        [
            p("stage1", 15, Keep),
            p("stage2", 15, Grow { width: 500 }),
            p("stage3", 15, Grow { width: 250 }),
            p("stage4", 15, GrowLinear { width: 30 }),
            p("finetune", 50, Unfreeze)
        ]
    );
    for r in RECIPES {
        let c = r.config(0, 1);
        let deep30 = r.name == "deep30";
        assert_eq!(c.batch_size, if deep30 { 128 } else { 512 }, "{}", r.name);
        assert_eq!(c.plateau.patience, if deep30 { 3 } else { 10 }, "{}", r.name);
        assert_eq!(c.weight_decay, if deep30 { recipe::DEEP30_WEIGHT_DECAY } else { 0.0 });
        assert_eq!(
            (c.lr, c.stop_lr, c.plateau.factor, c.plateau.threshold),
            (1e-3, 1e-5, 0.1, 1e-4)
        );
        assert_eq!(c.plateau.cooldown, 0);
        let penalty = match r.name {
            "l1" => Some(Penalty::L1 {
                lambda: recipe::L1_LAMBDA,
            }),
            "kl1e-2" => Some(Penalty::Kl {
                lambda: 1e-2,
                rho: 0.05,
            }),
            "kl1e-1" => Some(Penalty::Kl {
                lambda: 1e-1,
                rho: 0.05,
            }),
            _ => None,
        };
        assert_eq!(c.penalty, penalty, "{}", r.name);
        let noise = match r.name {
            "denoise-gaussian" => Some(Noise::Gaussian { variance: 0.1 }),
            "denoise-mask" => Some(Noise::Mask { fraction: 0.25 }),
            _ => None,
        };
        assert_eq!(c.noise, noise, "{}", r.name);
        assert_eq!(c.input_shape, [28, 28]);
    }
}

/// The message of a spec that does not parse.
fn error(text: &str) -> String {
    match Spec::parse(text, "my.toml") {
        Err(e @ SpecError::Invalid { .. }) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

const FC: &str = "name = \"x\"\n[encoder]\nlayers = [{ dense = 16 }]\n";

#[test]
fn a_wrong_spec_names_the_key_and_the_line() {
    let e = error("name = \"x\"\n[encoder]\nlayers = [{ dense = 16 }]\nwidth = 3\n");
    assert!(e.starts_with("my.toml:4: encoder.width: unknown field `width`"), "{e}");
    let e = error("name = \"x\"\n[encoder]\nlayers = [{ dense = 16 }, { dense = 0 }]\n");
    assert_eq!(e, "my.toml:3: encoder.layers[1].dense: width 0; it must be at least 1");
    let e = error("name = \"x\"\n[encoder]\nlayers = [{ dense = -2 }]\n");
    assert!(
        e.starts_with("my.toml:3: encoder.layers[0].dense: invalid value: integer `-2`"),
        "{e}"
    );
    let e = error("name = \"x\"\n\n[encoder]\nlayers = [{ dense = 16 }]\nactivation = \"tanh\"\n");
    assert!(
        e.starts_with("my.toml:5: encoder.activation: tanh is not offered"),
        "{e}"
    );
    let e = error("name = \"x\"\n[encoder]\nlayers = [{ conv = 4 }]\n");
    assert!(
        e.starts_with("my.toml:3: encoder.layers[0]: a `conv` layer needs `kernel"),
        "{e}"
    );
    let e = error(&format!("{FC}[training]\ngreedy = true\n"));
    assert!(
        e.starts_with("my.toml:5: training.greedy: greedy stages grow tied pairs"),
        "{e}"
    );
    let e = error(&format!("{FC}[schedule]\nbatch = 0\n"));
    assert_eq!(e, "my.toml:5: schedule.batch: batch size 0; it must be at least 1");
    let e = error(&format!("{FC}[training]\npenalty = {{ kl = 0.1 }}\n"));
    assert!(
        e.starts_with("my.toml:5: training.penalty: a `kl` penalty needs `rho`"),
        "{e}"
    );
    let e = error("name = \"x\"\n");
    assert!(e.contains("missing field `encoder`"), "{e}");
    let e = error("name = \"x\"\n[encoder\n");
    assert!(e.starts_with("my.toml:2: "), "{e}");
    let e = error("name = \"../x\"\n[encoder]\nlayers = [{ dense = 1 }]\n");
    assert!(
        e.starts_with("my.toml:1: name: '../x' cannot name a run directory"),
        "{e}"
    );
}

/// The input-dependent error of `text` on samples of `shape`.
fn input_error(text: &str, shape: &[usize]) -> String {
    let spec = Spec::parse(text, "my.toml").unwrap();
    trainer::commands::train::input_shape(&spec, shape)
        .unwrap_err()
        .to_string()
}

#[test]
fn rules_that_depend_on_the_data_name_the_key() {
    let conv = "name = \"c\"\n[encoder]\nlayers = [{ conv = 4, kernel = 3 }]\n[decoder]\nlayers = []\n";
    let e = input_error(conv, &[64]);
    assert!(
        e.contains("encoder.layers[0].conv: a convolution needs 2-D images"),
        "{e}"
    );
    let e = input_error(&conv.replace("kernel = 3", "kernel = 9"), &[8, 8]);
    assert!(
        e.contains("encoder.layers[0].kernel: kernel 9 does not fit the 8x8 input"),
        "{e}"
    );
    let topk = "name = \"t\"\n[encoder]\nlayers = [{ dense = 8 }]\nsparsity = { top_k = 9 }\n";
    let e = input_error(topk, &[20]);
    assert!(
        e.contains("encoder.sparsity.top_k: k 9 is above the code width 8"),
        "{e}"
    );
    let named = "name = \"n\"\n[input]\nshape = [64]\n[encoder]\nlayers = [{ dense = 8 }]\n";
    let e = input_error(named, &[28, 28]);
    assert!(
        e.contains("input.shape: [64], but the data's samples are [28, 28]"),
        "{e}"
    );
    let spec = Spec::parse(named, "n").unwrap();
    assert_eq!(trainer::commands::train::input_shape(&spec, &[64]).unwrap(), [64]);
}

fn model(text: &str, shape: &[usize]) -> Model {
    let spec = Spec::parse(text, "t").unwrap();
    spec.architecture()
        .build(shape, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap()
}

#[test]
fn dense_recipes_take_any_input_width() {
    for v in ["fc", "topk5", "l1", "deep", "deep30"] {
        let spec = recipe::find(v).unwrap().spec();
        let m = spec
            .architecture()
            .build(&[37], &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        assert_eq!(m.input, 37, "{v}");
        assert_eq!(*m.widths().unwrap().last().unwrap(), 37, "{v}");
    }
}

#[test]
fn deeper_untied_tied_and_listed_architectures_fit_together() {
    // Untied, mirrored: 20-16-4-16-20, ReLU inside, linear code, sigmoid output.
    let m = model(
        "name = \"u\"\n[encoder]\nlayers = [{ dense = 16 }, { dense = 4 }]\nactivation = \"relu\"\ncode_activation = \"linear\"\n[decoder]\noutput_activation = \"sigmoid\"\n",
        &[20],
    );
    assert_eq!(m.widths().unwrap(), [16, 16, 4, 16, 16, 20, 20]);
    assert_eq!(m.layers[1], Layer::LeakyRelu { slope: 0.0 });
    assert_eq!(m.layers[6], Layer::Sigmoid);
    assert_eq!(m.code_after, 3);
    assert_eq!(m.params.len(), 8);
    // Tied, two layers: the decoder reuses both weights.
    let m = model(
        "name = \"t\"\n[encoder]\nlayers = [{ dense = 16 }, { dense = 4 }]\nalpha = 0.2\n[decoder]\ntied = true\n",
        &[20],
    );
    assert_eq!(m.widths().unwrap(), [16, 16, 4, 4, 16, 16, 20, 20]);
    assert_eq!(m.params.len(), 6, "two weights, four biases");
    assert!(matches!(
        m.layers[4],
        Layer::Linear {
            weight: 2,
            transposed: true,
            ..
        }
    ));
    assert!(matches!(
        m.layers[6],
        Layer::Linear {
            weight: 0,
            transposed: true,
            ..
        }
    ));
    assert_eq!(m.layers[1], Layer::LeakyRelu { slope: 0.2 });
    // Listed decoder after a convolution and a dense code.
    let m = model(
        "name = \"c\"\n[encoder]\nlayers = [{ conv = 4, kernel = 3 }, { max_pool = 2 }, { dense = 6 }]\n[decoder]\nlayers = [{ dense = 12 }]\n",
        &[10, 10],
    );
    assert_eq!(m.widths().unwrap(), [256, 256, 64, 6, 6, 12, 12, 100, 100]);
    assert_eq!(m.code_after, 5);
}

#[test]
fn a_spec_file_is_read_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.toml");
    std::fs::write(&path, FC).unwrap();
    assert_eq!(Spec::read(&path).unwrap().name, "x");
    let e = Spec::read(&dir.path().join("none.toml")).unwrap_err().to_string();
    assert!(e.contains("none.toml"), "{e}");
}

/// One epoch of a history: phase, epoch, training loss, validation MSE, learning rate.
type Epoch = (String, usize, f64, f64, f64);

/// The model, history and configuration of the run in `dir` (not its wall times).
fn run_of(dir: &std::path::Path) -> (Model, Vec<Epoch>, recipe::Config) {
    let state: trainer::train::State = trainer::checkpoint::load(&dir.join("checkpoint.bin")).unwrap();
    let history = state
        .history
        .iter()
        .map(|e| (e.phase.clone(), e.epoch, e.train_loss, e.val_mse, e.lr))
        .collect();
    (state.model, history, state.config)
}

#[test]
fn training_a_printed_spec_reproduces_the_built_in_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = [
        "--train-limit",
        "48",
        "--test-limit",
        "16",
        "--threads",
        "1",
        "--epochs",
        "1",
    ];
    for r in RECIPES {
        let printed = common::trainer(&["spec", r.name]);
        assert!(printed.status.success(), "{}", common::text(&printed));
        assert_eq!(String::from_utf8(printed.stdout).unwrap(), r.toml);
        let path = dir.path().join(format!("{}.toml", r.name));
        std::fs::write(&path, r.toml).unwrap();
        let finetune: &[&str] = if r.config(0, 1).phases.len() > 1 {
            &["--finetune-epochs", "1"]
        } else {
            &[]
        };
        let (a, b) = (
            dir.path().join(format!("{}-a", r.name)),
            dir.path().join(format!("{}-b", r.name)),
        );
        let mut built_in = vec!["train", r.name, "--out", a.to_str().unwrap()];
        let mut from_spec = vec!["train", "--spec", path.to_str().unwrap(), "--out", b.to_str().unwrap()];
        for args in [&mut built_in, &mut from_spec] {
            args.extend(tiny);
            args.extend(finetune);
            let o = common::trainer(args);
            assert!(o.status.success(), "{}: {}", r.name, common::text(&o));
        }
        assert_eq!(run_of(&a), run_of(&b), "{}", r.name);
    }
}
