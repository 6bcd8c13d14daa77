//! `trainer export RUN --safetensors FILE` as a user runs it: the numpy replay of
//! `tools/python/safetensors_mse.py`, built from the file's metadata alone, gives the float
//! model's clean-input test MSE; nothing but the file is written; a path that cannot be written
//! is an error that names it and leaves no file.
//!
//! The Python side needs numpy and safetensors: `TFLM_PYTHON`, else `.venv-tflm/bin/python` at
//! the repository root (which `./check.sh` sets up). Without either the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use trainer::checkpoint;
use trainer::mnist::{Mnist, PIXELS};
use trainer::model::{Layer, Model};
use trainer::progress::Progress;
use trainer::quantize;
use trainer::recipe;
use trainer::safetensors_export::FORMAT;
use trainer::train::{State, Trainer, CHECKPOINT};
use trainer::workspace::Workspace;

mod common;
use common::{text, trainer_in};

/// Test images the replay and the float model are compared on.
const IMAGES: usize = 500;

/// The agreement asked of the two test MSEs, relative.
const TOLERANCE: f64 = 1e-6;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&repo().join("data/mnist")).unwrap())
        .clone()
}

/// The float model's clean-input test MSE on `images`, each squared error summed in f64.
/// (`quantize::float_mse` sums each image's 784 squared errors in f32, about 1e-6 relative off
/// this; the replay sums in f64.)
fn float_mse_f64(model: &Model, images: &[u8]) -> f64 {
    let mut ws = Workspace::new(model, 500);
    let mut sse = 0.0;
    for chunk in images.chunks(500 * PIXELS) {
        ws.load(chunk.chunks_exact(PIXELS));
        ws.forward(model, false);
        sse += ws
            .output()
            .iter()
            .zip(ws.input().iter())
            .map(|(&y, &x)| (y as f64 - x as f64).powi(2))
            .sum::<f64>();
    }
    sse / images.len() as f64
}

/// The smallest gap, relative to the value, between the k-th and (k+1)-th largest input of
/// every top-k layer of `model` over `images`. Float rounding (another summation order) moves
/// values by about 1e-7 relative; a gap that small could flip which code is kept.
fn smallest_top_k_gap(model: &Model, images: &[u8]) -> f32 {
    let mut ws = Workspace::new(model, images.len() / PIXELS);
    ws.load(images.chunks_exact(PIXELS));
    ws.forward(model, false);
    let mut smallest = f32::INFINITY;
    for (i, layer) in model.layers.iter().enumerate() {
        let Layer::TopK { k } = *layer else { continue };
        for row in ws.act(i - 1).rows() {
            let mut v: Vec<f32> = row.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            smallest = smallest.min((v[k - 1] - v[k]) / v[k - 1].abs());
        }
    }
    smallest
}

/// `variant` trained one epoch per phase on 512 images (`finetune` caps the last phase of
/// recipes that have one: 0 keeps a tied decoder tied), its checkpoint saved in `dir`.
fn tiny_run(variant: &str, finetune: Option<usize>, dir: &Path) -> State {
    let mut c = recipe::find(variant).unwrap().config(0, 2);
    c.cap_epochs(Some(1), finetune).unwrap();
    c.train_limit = Some(512);
    c.test_limit = Some(64);
    let mut t = Trainer::new(State::new(c).unwrap(), mnist()).unwrap();
    t.run(None, &mut Progress::Silent).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    checkpoint::save(&dir.join(CHECKPOINT), &t.state).unwrap();
    t.state
}

fn export(run: &Path, file: &Path, cwd: &Path) -> Output {
    trainer_in(
        &["export", run.to_str().unwrap(), "--safetensors", file.to_str().unwrap()],
        cwd,
    )
}

/// The interpreter with numpy and safetensors: `TFLM_PYTHON`, else the repository's
/// `.venv-tflm`. Missing, the test fails: it is never skipped.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TFLM_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv-tflm/bin/python");
    assert!(
        venv.exists(),
        "no Python with numpy and safetensors: {} is missing and TFLM_PYTHON is not set; run ./check.sh, which creates the venv",
        venv.display()
    );
    venv
}

/// `tools/python/safetensors_mse.py` on `files`, first `IMAGES` test images: one JSON object
/// per file.
fn replay(files: &[PathBuf], dtype: &str) -> Vec<serde_json::Value> {
    let script = repo().join("tools/python/safetensors_mse.py");
    let o = Command::new(python())
        .arg(&script)
        .args(files)
        .args(["--count", &IMAGES.to_string(), "--dtype", dtype])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run ./check.sh to set up the venv", python().display()));
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The `__metadata__` of a `.safetensors` file, read with the crate's reader.
fn metadata(file: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(file).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap()
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_numpy_replay_of_the_file_gives_the_float_models_test_mse() {
    // (variant, fine-tuning epochs, tied in the end): fc stays tied; topk16's top-k; lifetime25
    // (the identity at inference); kl1e-2's sigmoids; conv (NCHW, OIHW, flatten); deep2d grown
    // greedily over four stages, linear code, logistic output, every pair still tied.
    let cases = [
        ("fc", Some(0), true),
        ("topk16", Some(1), false),
        ("lifetime25", Some(1), false),
        ("kl1e-2", Some(1), false),
        ("conv", None, false),
        ("deep2d", Some(0), true),
    ];
    let dir = tempfile::tempdir().unwrap();
    let test = &mnist().test.images[..IMAGES * PIXELS];
    let mut files = Vec::new();
    let mut float = Vec::new();
    for (variant, finetune, tied) in cases {
        let run = dir.path().join(variant);
        let state = tiny_run(variant, finetune, &run);
        let file = dir.path().join(format!("{variant}.safetensors"));
        let o = export(&run, &file, dir.path());
        assert!(o.status.success(), "{variant}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("float weights of {variant}")),
            "{}",
            text(&o)
        );
        let meta = metadata(&file);
        assert_eq!(meta["format"], FORMAT);
        assert_eq!(meta["variant"], variant);
        assert_eq!(meta["tied"], tied.to_string(), "{variant}");
        files.push(file);
        let gap = smallest_top_k_gap(&state.model, test);
        assert!(
            gap > 1e-6,
            "{variant}: a near-tie at the top-k boundary (relative gap {gap:e}) can flip under rounding; pick another seed"
        );
        let want = float_mse_f64(&state.model, test);
        // The trainer's own figure is the same up to its f32 sums.
        let trainer_figure = quantize::float_mse(&state.model, test);
        assert!(
            (trainer_figure - want).abs() <= 1e-5 * want,
            "{variant}: {trainer_figure} vs {want}"
        );
        float.push(want);
    }
    for dtype in ["float32", "float64"] {
        let replayed = replay(&files, dtype);
        assert_eq!(replayed.len(), cases.len());
        for ((r, (variant, ..)), want) in replayed.iter().zip(cases).zip(&float) {
            assert_eq!(r["variant"], variant);
            assert_eq!(r["images"], IMAGES);
            let got = r["test_mse"].as_f64().unwrap();
            let rel = (got - want).abs() / want;
            println!("{variant}: float model {want:.9}, numpy {dtype} {got:.9}, relative difference {rel:.2e}");
            assert!(
                rel <= TOLERANCE,
                "{variant} ({dtype}): numpy replay {got}, float model {want}: relative difference {rel:e}"
            );
        }
    }
}

#[test]
fn safetensors_alone_writes_nothing_else_and_with_out_the_model_file_too() {
    // In an empty working directory: the default model file would be models/fc.aeq there.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    tiny_run("fc", Some(1), &run);
    let file = dir.path().join("weights").join("fc.safetensors");
    let o = export(&run, &file, dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        files_under(dir.path()),
        ["run/checkpoint.bin", "weights/fc.safetensors"],
        "no .aeq, no golden vectors, no temporary file"
    );
    assert_eq!(metadata(&file)["tied"], "false", "fine-tuned: untied");

    // With --out as well: both, the safetensors file first.
    let model = dir.path().join("fc.aeq");
    let o = trainer_in(
        &[
            "export",
            run.to_str().unwrap(),
            "--safetensors",
            file.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--calibration",
            "64",
        ],
        &repo(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("int8/float"), "{}", text(&o));
    assert_eq!(
        files_under(dir.path()),
        [
            "fc.aeq",
            "fc.golden.json",
            "run/checkpoint.bin",
            "weights/fc.safetensors"
        ]
    );
}

#[test]
fn an_unwritable_path_is_an_error_that_names_it_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    tiny_run("fc", Some(0), &run);
    std::fs::write(dir.path().join("plain"), b"a file, not a directory").unwrap();
    std::fs::create_dir(dir.path().join("taken.safetensors")).unwrap();
    let before = files_under(dir.path());
    // Under a regular file nothing can be created; over a directory the rename fails after the
    // temporary file was written, which must then be gone.
    for bad in ["plain/fc.safetensors", "taken.safetensors"] {
        let path = dir.path().join(bad);
        let o = export(&run, &path, dir.path());
        assert!(!o.status.success(), "{bad}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("writing {}", path.display())),
            "{bad}: {}",
            text(&o)
        );
        assert_eq!(files_under(dir.path()), before, "{bad}");
        assert!(dir.path().join("taken.safetensors").is_dir());
    }
    // Not a run: refused before anything is written.
    let o = export(
        &dir.path().join("nothing"),
        &dir.path().join("x.safetensors"),
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("neither a run directory"), "{}", text(&o));
    assert_eq!(files_under(dir.path()), before);
}

/// A model whose four codes are its biases exactly (zero encoder weights): `[0.5, 0.5, 0.5,
/// 0.25]` kept two at a time, and a decoder that writes a different image for each code.
fn tied_codes_model(biases: [f32; 4]) -> Model {
    let decoder = ndarray::Array2::from_shape_fn((PIXELS, 4), |(p, j)| ((p * 7 + j * 13) % 17) as f32 / 17.0 - 0.3);
    let mut bias = ndarray::Array2::zeros((1, 4));
    bias.row_mut(0).assign(&ndarray::arr1(&biases));
    Model {
        input: PIXELS,
        layers: vec![
            Layer::Linear {
                weight: 0,
                bias: 1,
                transposed: false,
            },
            Layer::TopK { k: 2 },
            Layer::Linear {
                weight: 2,
                bias: 3,
                transposed: false,
            },
        ],
        params: vec![
            trainer::model::Param::new("enc.weight", ndarray::Array2::zeros((4, PIXELS))),
            trainer::model::Param::new("enc.bias", bias),
            trainer::model::Param::new("dec.weight", decoder),
            trainer::model::Param::new("dec.bias", ndarray::Array2::zeros((1, PIXELS))),
        ],
        code_after: 2,
    }
}

#[test]
fn the_replay_breaks_top_k_ties_to_the_lower_index_as_the_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let test = &mnist().test.images[..IMAGES * PIXELS];
    let model = tied_codes_model([0.5, 0.5, 0.5, 0.25]);
    let want = float_mse_f64(&model, test);
    // Keeping codes 1 and 2 instead of 0 and 1 gives another figure: the case discriminates.
    let other = float_mse_f64(&tied_codes_model([0.25, 0.5, 0.5, 0.5]), test);
    assert!((other - want).abs() > 1e-3 * want, "{other} vs {want}");
    let file = dir.path().join("ties.safetensors");
    let dict = trainer::safetensors_export::state_dict(&model).unwrap();
    std::fs::write(
        &file,
        dict.to_bytes("ties", &autoencoder_core::model::InputScaling::Unit)
            .unwrap(),
    )
    .unwrap();
    let got = replay(std::slice::from_ref(&file), "float32")[0]["test_mse"]
        .as_f64()
        .unwrap();
    assert!((got - want).abs() <= TOLERANCE * want, "numpy {got}, trainer {want}");
}
