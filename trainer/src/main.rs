//! `trainer`: trains the tutorial's autoencoders on MNIST. With no arguments it trains `fc`
//! into `runs/fc` (continuing a run already there).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe::{self, RECIPES};
use trainer::semisup::{Score, SemisupConfig};
use trainer::studies::{self, PcaScore};
use trainer::summary;
use trainer::train::{self, Metrics, State, Trainer, CHECKPOINT};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Trains the tutorial's autoencoders on MNIST",
    after_help = "With no command, trains `fc` into runs/fc, continuing a run already there."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train one variant into runs/<variant>/.
    Train(TrainArgs),
    /// List the variants.
    List,
    /// Time training epochs and print one JSON line.
    Bench(BenchArgs),
    /// Quantize a trained run to int8 and write its model file (and golden vectors beside it),
    /// or, with --safetensors, write its float weights for PyTorch and numpy.
    Export(ExportArgs),
    /// Test MSE of a model file's int8 model, next to its float model's.
    Eval(EvalArgs),
    /// Print a model file: header, layers, shapes and every quantization parameter.
    Inspect(InspectArgs),
    /// Rewrite model files of an older format version in the current one: every weight, bias and
    /// scale kept, multipliers and tables recomputed, golden vectors regenerated.
    Upgrade(UpgradeArgs),
    /// Derive .tflite files from a model file: PREFIX.encoder.tflite (input to code) and
    /// PREFIX.decoder.tflite (code to output), int8 in and out, the same tensors and weights.
    Convert(ConvertArgs),
}

#[derive(Args)]
struct ConvertArgs {
    /// Model file (.aeq).
    model: PathBuf,
    /// Write PREFIX.encoder.tflite and PREFIX.decoder.tflite (nothing else).
    #[arg(long, value_name = "PREFIX", required = true)]
    tflite: PathBuf,
}

#[derive(Args)]
struct UpgradeArgs {
    /// Model files (.aeq), each rewritten in place unless --out is given.
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// Write the upgraded model here instead (one model only); golden vectors go beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// A variant (its run in runs/<variant>) or a run directory.
    run: String,
    /// Model file to write [default: models/<variant>.aeq]; golden vectors go to
    /// <name>.golden.json beside it. With --safetensors, only written when given.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the run's float weights to this .safetensors file: PyTorch `nn.Sequential` names
    /// and layouts, the forward pass in its metadata. Alone, nothing else is written (no model
    /// file, no golden vectors); with --out, the int8 model file as well.
    #[arg(long, value_name = "FILE")]
    safetensors: Option<PathBuf>,
    /// Training images used to calibrate the activation ranges.
    #[arg(long, default_value_t = trainer::quantize::CALIBRATION_IMAGES)]
    calibration: usize,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// Model files.
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// Print one markdown table row per model, after a header.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Print one JSON object per model, one per line, instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct InspectArgs {
    /// Model file.
    model: PathBuf,
    /// Print everything needed to rebuild the model, as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Variant to train (see `trainer list`).
    variant: String,
    /// Epoch cap of the first phases (tied training).
    #[arg(long)]
    epochs: Option<usize>,
    /// Epoch cap of the fine-tuning phase.
    #[arg(long)]
    finetune_epochs: Option<usize>,
    /// Seed of initialisation and shuffling [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Weight of the penalty: sparsity (variants `l1`, `kl1e-2`, `kl1e-1`) or weight decay
    /// (`deep30`) [default: the recipe's].
    #[arg(long)]
    lambda: Option<f64>,
    /// Run directory [default: runs/<variant>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in the output directory from its checkpoint.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Discard a run already in the output directory and start over.
    #[arg(long)]
    force: bool,
    /// Threads [default: all cores]. Results are identical for the same seed and thread count.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Validate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
}

#[derive(Args)]
struct DataArgs {
    /// Directory with the four MNIST IDX files [default: data/mnist].
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// Variant to time.
    #[arg(long, default_value = "fc")]
    variant: String,
    /// Timed epochs, after one warm-up.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => train_default(),
        Some(Command::Train(args)) => train_cmd(args).map(|_| ()),
        Some(Command::List) => {
            for r in RECIPES {
                println!("{:<17} {}", r.name, r.about);
            }
            println!("{:<17} PCA with 2, 30 and 64 components: the baseline", "pca");
            println!("{:<17} 64-10 softmax classifier on the fc encoder with 100, 1,000 and 60,000 labels: frozen, fine-tuned, from scratch", "semisup");
            Ok(())
        }
        Some(Command::Export(args)) => export_cmd(args),
        Some(Command::Eval(args)) => {
            let mut data = load_data(&args.data)?;
            if let Some(n) = args.test_limit {
                data.test = data.test.truncated(n);
            }
            if args.markdown {
                println!("| model | bytes | float test MSE | int8 test MSE | int8 / float | int8 per-image SE |");
                println!("|---|---:|---:|---:|---:|---:|");
            }
            for model in &args.models {
                let r = trainer::export::eval(model, &data.test)?;
                let bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
                if args.json {
                    println!("{}", serde_json::to_string(&r)?);
                } else if args.markdown {
                    println!(
                        "| `{}` | {bytes} | {:.6} | {:.6} | {:.3} | {:.2} |",
                        r.variant, r.float_test_mse, r.int8_test_mse, r.ratio, r.int8_per_image_se
                    );
                } else {
                    println!(
                        "{}: {} test images, int8 test MSE {:.6} ({:.2} per image), float {:.6}, int8/float {:.4}",
                        model.display(),
                        r.images,
                        r.int8_test_mse,
                        r.int8_per_image_se,
                        r.float_test_mse,
                        r.ratio
                    );
                }
            }
            Ok(())
        }
        Some(Command::Inspect(args)) => {
            let (q, bytes, scratch) = trainer::export::inspect(&args.model)?;
            let text = if args.json {
                serde_json::to_string(&q)? + "\n"
            } else {
                trainer::export::describe(&q, bytes, scratch)
            };
            print_all(&text)
        }
        Some(Command::Upgrade(args)) => upgrade_cmd(args),
        Some(Command::Convert(args)) => convert_cmd(args),
        Some(Command::Bench(args)) => {
            let data = load_data(&args.data)?;
            let threads = args.threads.unwrap_or_else(default_threads);
            let result = trainer::bench::run(&args.variant, args.epochs, threads, data)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
}

/// Prints `text` to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `trainer convert`.
fn convert_cmd(args: ConvertArgs) -> Result<()> {
    let bytes = trainer::export::read_model_file(&args.model)?;
    let model = trainer::export::load(&args.model, &bytes)?;
    let quantized = trainer::quantize::Quantized::from_core(&model);
    let converted = trainer::tflite::convert(&quantized)
        .with_context(|| format!("{}: cannot convert to .tflite", args.model.display()))?;
    let path = |part: &str| {
        let mut name = args.tflite.clone().into_os_string();
        name.push(format!(".{part}.tflite"));
        PathBuf::from(name)
    };
    let (encoder, decoder) = (path("encoder"), path("decoder"));
    trainer::checkpoint::write_all_or_nothing(&[(&encoder, &converted.encoder), (&decoder, &converted.decoder)])
        .context("writing the .tflite files")?;
    println!("{}: {} bytes", encoder.display(), converted.encoder.len());
    println!("{}: {} bytes", decoder.display(), converted.decoder.len());
    if let Some(k) = converted.top_k {
        println!(
            "the encoder ends before the model's hard top-k (no TFLite op): keep each sample's {k} largest \
             codes (a tie goes to the lower index) and set the others to the code's zero point, as the core does"
        );
    }
    Ok(())
}

/// `trainer upgrade`.
fn upgrade_cmd(args: UpgradeArgs) -> Result<()> {
    if args.out.is_some() && args.models.len() > 1 {
        bail!("--out takes one model file; {} were given", args.models.len());
    }
    let data = load_data(&args.data)?;
    for model in &args.models {
        let out = args.out.clone().unwrap_or_else(|| model.clone());
        let r = trainer::upgrade::upgrade(model, &out, &data.test.images)?;
        println!(
            "{}: version {} -> {}; {} multipliers and {} table entries recomputed differently; {}; golden vectors in {}",
            r.model.display(),
            r.from_version,
            r.to_version,
            r.changes.multipliers,
            r.changes.table_entries,
            if r.bytes_changed { "bytes changed" } else { "bytes unchanged" },
            r.golden.display()
        );
    }
    Ok(())
}

/// `trainer export`.
fn export_cmd(args: ExportArgs) -> Result<()> {
    let as_dir = PathBuf::from(&args.run);
    let run_dir = if as_dir.join(CHECKPOINT).exists() {
        as_dir
    } else if recipe::find(&args.run).is_ok() {
        Path::new("runs").join(&args.run)
    } else {
        bail!(
            "{} is neither a run directory (with {CHECKPOINT}) nor a variant (see `trainer list`)",
            args.run
        );
    };
    if let Some(path) = &args.safetensors {
        let r = trainer::safetensors_export::export(&run_dir, path)?;
        println!(
            "{}: {} float weights of {} in {} tensors, {} bytes{}",
            r.path.display(),
            r.values,
            r.variant,
            r.tensors,
            r.bytes,
            if r.tied {
                " (tied decoder written as the transpose)"
            } else {
                ""
            }
        );
        if args.out.is_none() {
            if !r.finished {
                eprintln!("warning: the run in {} has not finished training", run_dir.display());
            }
            return Ok(());
        }
    }
    let data = load_data(&args.data)?;
    let name = match trainer::checkpoint::load::<State>(&run_dir.join(CHECKPOINT)) {
        Ok(state) => state.config.variant,
        Err(_) => args.run.clone(),
    };
    let out = args
        .out
        .unwrap_or_else(|| Path::new("models").join(format!("{name}.{}", trainer::export::EXTENSION)));
    let r = trainer::export::export(&run_dir, &out, &data.train, &data.test, args.calibration)?;
    if !r.finished {
        eprintln!("warning: the run in {} has not finished training", run_dir.display());
    }
    println!(
        "{}: {} bytes; test MSE float {:.6}, int8 {:.6} (int8/float {:.4}); golden vectors in {}",
        r.model.display(),
        r.bytes,
        r.float_test_mse,
        r.int8_test_mse,
        r.int8_test_mse / r.float_test_mse,
        r.golden.display()
    );
    Ok(())
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `data/mnist` relative to the working directory, else the copy bundled with the sources.
fn load_data(args: &DataArgs) -> Result<Mnist> {
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => {
            let local = PathBuf::from("data/mnist");
            if local.is_dir() {
                local
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
            }
        }
    };
    Mnist::load(&dir).with_context(|| format!("loading MNIST from {}", dir.display()))
}

/// The arguments of a plain `trainer train <variant>` into `runs/<variant>`, continuing (or just
/// reporting) a run already there.
fn default_args(variant: &str) -> TrainArgs {
    let out = Path::new("runs").join(variant);
    TrainArgs {
        variant: variant.into(),
        epochs: None,
        finetune_epochs: None,
        lambda: None,
        seed: None,
        resume: out.join(CHECKPOINT).exists(),
        out: Some(out),
        force: false,
        threads: None,
        data: DataArgs { data: None },
        train_limit: None,
        test_limit: None,
    }
}

/// No arguments: every variant of the tutorial into `runs/<variant>` (finished runs are kept and
/// reported, interrupted ones continue), then one summary table, also written to
/// `runs/summary.md`.
fn train_default() -> Result<()> {
    let t0 = std::time::Instant::now();
    let mut rows = Vec::new();
    for r in RECIPES {
        let metrics = train_cmd(default_args(r.name))?.with_context(|| format!("{}: no metrics", r.name))?;
        rows.push(summary::Row::from_metrics(&metrics));
    }
    let data = load_data(&DataArgs { data: None })?;
    let pca = pca_cmd(&data, Path::new("runs/pca"))?;
    let semisup = semisup_cmd(&data, Path::new("runs/semisup"), 0)?;
    let table = summary::markdown(&rows, &pca, &semisup, t0.elapsed().as_secs_f64());
    println!("\n{table}");
    let path = Path::new("runs/summary.md");
    trainer::checkpoint::write_atomic(path, table.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The `metrics.json` a finished run left in `dir`, if it is there and reads as `T`.
fn stored_metrics<T: serde::de::DeserializeOwned>(dir: &Path) -> Option<T> {
    let bytes = std::fs::read(dir.join(train::METRICS)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `trainer train pca`: fits once; a finished run is reported from its metrics.
fn pca_cmd(data: &Mnist, out: &Path) -> Result<Vec<PcaScore>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        baselines: Vec<PcaScore>,
    }
    if let Some(stored) = stored_metrics::<Stored>(out) {
        println!("pca: already fitted in {}", out.display());
        return Ok(stored.baselines);
    }
    let scores = studies::run_pca(data, out)?;
    for s in &scores {
        println!(
            "pca-{}: test_mse {:.6}, per-image squared error {:.2}",
            s.components, s.test_mse, s.per_image_squared_error
        );
    }
    Ok(scores)
}

/// `trainer train semisup`: the study on the encoder of the finished `fc` run in `runs/fc`
/// (trained first when missing); a finished study is reported from its metrics.
fn semisup_cmd(data: &Mnist, out: &Path, seed: u64) -> Result<Vec<Score>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        scores: Vec<Score>,
    }
    if let Some(stored) = stored_metrics::<Stored>(out) {
        println!("semisup: already done in {}", out.display());
        return Ok(stored.scores);
    }
    let fc = Path::new("runs/fc").join(CHECKPOINT);
    let finished = trainer::checkpoint::load::<State>(&fc)
        .map(|s| s.finished)
        .unwrap_or(false);
    if !finished {
        println!("semisup: training fc first, for its encoder");
        train_cmd(default_args("fc"))?;
    }
    let state: State =
        trainer::checkpoint::load(&fc).with_context(|| format!("loading the fc encoder from {}", fc.display()))?;
    let config = SemisupConfig {
        seed,
        ..SemisupConfig::default()
    };
    studies::run_semisup(&state.model, data, &config, out, |s| {
        println!(
            "semisup: {} labels, {}: test accuracy {:.2} % after {} epochs",
            s.labels,
            s.start.label(),
            100.0 * s.test_accuracy,
            s.epochs
        )
    })
}

fn train_cmd(args: TrainArgs) -> Result<Option<Metrics>> {
    if args.variant == "pca" || args.variant == "semisup" {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| Path::new("runs").join(&args.variant));
        if args.force {
            let old = out.join(train::METRICS);
            if old.exists() {
                std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
            }
        }
        let data = load_data(&args.data)?;
        if args.variant == "pca" {
            pca_cmd(&data, &out)?;
        } else {
            semisup_cmd(&data, &out, args.seed.unwrap_or(0))?;
        }
        return Ok(None);
    }
    let recipe = recipe::find(&args.variant).map_err(|e| anyhow::anyhow!("{e}, pca, semisup"))?;
    let out = args.out.clone().unwrap_or_else(|| Path::new("runs").join(recipe.name));
    let ckpt = out.join(CHECKPOINT);
    let mut progress = Progress::auto();
    let state = if args.resume {
        let state: State = trainer::checkpoint::load(&ckpt).with_context(|| {
            format!(
                "cannot resume from {}; run without --resume to start a new run",
                ckpt.display()
            )
        })?;
        check_resume_flags(&args, &state)?;
        if state.finished {
            progress.say(&format!(
                "{}: the run in {} is finished (test_mse {:.6}); `trainer train {} --force` trains it again",
                state.config.variant,
                out.display(),
                state.history.last().map_or(f64::NAN, |r| r.val_mse),
                state.config.variant
            ));
            return Ok(stored_metrics(&out));
        }
        progress.say(&format!(
            "{}: resuming {} at phase {}, epoch {}",
            state.config.variant,
            out.display(),
            state.config.phases[state.phase].name,
            state.epoch_in_phase
        ));
        state
    } else {
        if ckpt.exists() && !args.force {
            bail!(
                "{} already holds a run; pass --resume to continue it, --force to discard it and start over, or --out DIR",
                out.display()
            );
        }
        let mut config = recipe.config(args.seed.unwrap_or(0), args.threads.unwrap_or_else(default_threads));
        config
            .cap_epochs(args.epochs, args.finetune_epochs)
            .map_err(anyhow::Error::msg)?;
        if let Some(lambda) = args.lambda {
            config.set_lambda(lambda).map_err(anyhow::Error::msg)?;
        }
        config.train_limit = args.train_limit;
        config.test_limit = args.test_limit;
        State::new(config)?
    };
    let data = load_data(&args.data)?;
    let mut trainer = Trainer::new(state, data)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if !args.resume {
        // A new run must not leave an older run's final metrics beside its own checkpoint.
        let old = out.join(train::METRICS);
        if old.exists() {
            std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    let metrics = match trainer.run(Some(&out), &mut progress) {
        Ok(m) => m,
        Err(e @ train::TrainError::Diverged { .. }) => {
            bail!(
                "{e}\nthe last good checkpoint stays in {} (epoch {} of phase '{}'); lower the learning rate or check the data",
                ckpt.display(),
                trainer.state.epoch_in_phase,
                trainer.state.config.phases.get(trainer.state.phase).map_or("?", |p| p.name.as_str())
            )
        }
        Err(e) => return Err(e.into()),
    };
    let epochs: Vec<String> = metrics.epochs.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{}: test_mse {:.6} after {} epochs ({}), {:.1} s; wrote {}",
        metrics.variant,
        metrics.test_mse,
        metrics.epochs.values().filter_map(|v| v.as_u64()).sum::<u64>(),
        epochs.join(", "),
        metrics.wall_seconds,
        out.display()
    );
    Ok(Some(metrics))
}

/// With --resume the stored configuration rules; a flag that contradicts it is an error.
fn check_resume_flags(args: &TrainArgs, state: &State) -> Result<()> {
    let c = &state.config;
    if c.variant != args.variant {
        bail!(
            "the run in {} trains '{}', not '{}'",
            args.out.as_deref().unwrap_or(Path::new("?")).display(),
            c.variant,
            args.variant
        );
    }
    let differs = |flag: &str, given: Option<String>, stored: String| match given {
        Some(g) if g != stored => Err(anyhow::anyhow!(
            "--{flag} {g} differs from the run's {stored}; drop it to resume"
        )),
        _ => Ok(()),
    };
    if let Some(lambda) = args.lambda {
        let mut wanted = c.clone();
        wanted.set_lambda(lambda).map_err(anyhow::Error::msg)?;
        if wanted.penalty != c.penalty {
            bail!(
                "--lambda {lambda} differs from the run's penalty {:?}; drop it to resume",
                c.penalty
            );
        }
    }
    differs("seed", args.seed.map(|v| v.to_string()), c.seed.to_string())?;
    differs("threads", args.threads.map(|v| v.to_string()), c.threads.to_string())?;
    differs(
        "train-limit",
        args.train_limit.map(|v| v.to_string()),
        c.train_limit.map_or("none".into(), |v| v.to_string()),
    )?;
    differs(
        "test-limit",
        args.test_limit.map(|v| v.to_string()),
        c.test_limit.map_or("none".into(), |v| v.to_string()),
    )?;
    if args.epochs.is_some() || args.finetune_epochs.is_some() {
        let mut wanted = c.clone();
        wanted
            .cap_epochs(args.epochs, args.finetune_epochs)
            .map_err(anyhow::Error::msg)?;
        if wanted.phases != c.phases {
            bail!("--epochs/--finetune-epochs differ from the run's caps; drop them to resume");
        }
    }
    Ok(())
}
