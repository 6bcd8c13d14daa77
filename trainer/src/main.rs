//! `trainer`: trains the tutorial's autoencoders on MNIST. With no arguments it trains `fc`
//! into `runs/fc` (continuing a run already there).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe::{self, RECIPES};
use trainer::train::{self, State, Trainer, CHECKPOINT};

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
    /// Weight of the sparsity penalty (variants `l1`, `kl1e-2`, `kl1e-1`) [default: the recipe's].
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
        Some(Command::Train(args)) => train_cmd(args),
        Some(Command::List) => {
            for r in RECIPES {
                println!("{:<10} {}", r.name, r.about);
            }
            Ok(())
        }
        Some(Command::Bench(args)) => {
            let data = load_data(&args.data)?;
            let threads = args.threads.unwrap_or_else(default_threads);
            let result = trainer::bench::run(&args.variant, args.epochs, threads, data)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
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

/// No arguments: train `fc` into `runs/fc`, continuing (or just reporting) a run already there.
fn train_default() -> Result<()> {
    let out = PathBuf::from("runs/fc");
    let resume = out.join(CHECKPOINT).exists();
    train_cmd(TrainArgs {
        variant: "fc".into(),
        epochs: None,
        finetune_epochs: None,
        lambda: None,
        seed: None,
        out: Some(out),
        resume,
        force: false,
        threads: None,
        data: DataArgs { data: None },
        train_limit: None,
        test_limit: None,
    })
}

fn train_cmd(args: TrainArgs) -> Result<()> {
    let recipe = recipe::find(&args.variant).map_err(anyhow::Error::msg)?;
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
            return Ok(());
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
    Ok(())
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
