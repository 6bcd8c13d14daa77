//! `trainer train <experiment>`: one experiment into its run directory. A recipe's run is
//! started, refused over an existing run, continued (`--resume`) or started over (`--force`);
//! the PCA baseline and the semi-supervised study are done once and then reported from their
//! `metrics.json`.

use super::{default_threads, describe, load_data, load_dataset, load_one_class, recorded_or_given, DataArgs};
use crate::anomaly::recipe;
use crate::data::{Dataset, ScalingKind};
use crate::experiments::pca_baseline::{self, PcaScore};
use crate::experiments::recipe_run::{self, RunError};
use crate::experiments::semisup_study;
use crate::experiments::Experiment;
use crate::gpu::Device;
use crate::mnist::Mnist;
use crate::progress::Progress;
use crate::recipe::Config;
use crate::semisup::{Score, SemisupConfig};
use crate::spec::{check, Spec};
use crate::train::{Metrics, State, TrainError, Trainer, CHECKPOINT, METRICS};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// `trainer train`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Variant to train (see `trainer list`), or none with --spec.
    #[arg(required_unless_present = "spec", conflicts_with = "spec")]
    pub variant: Option<String>,
    /// Train the autoencoder a spec file describes (TOML; `trainer spec fc` prints an example),
    /// into runs/<its name>.
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// Epoch cap of the first phases (tied training).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epoch cap of the fine-tuning phase.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Seed of initialisation and shuffling [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Weight of the penalty: sparsity (variants `l1`, `kl1e-2`, `kl1e-1`) or weight decay
    /// (`deep30`) [default: the recipe's].
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Coupled L2 weight decay, an optimiser setting that combines with any sparsity penalty
    /// [default: the recipe's: 1e-6 for `deep30`, none for the others].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning rate: a new run's initial rate [default: the recipe's]. With --resume, the
    /// rate the current phase continues at, as after a divergence (later phases start at the
    /// run's own rate).
    #[arg(long, value_parser = learning_rate)]
    pub lr: Option<f64>,
    /// Run directory [default: runs/<variant>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in the output directory from its checkpoint.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Discard a run already in the output directory and start over.
    #[arg(long)]
    pub force: bool,
    /// Threads [default: all cores]. Results are identical for the same seed and thread count.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the training steps run: `cpu`, or `cuda` / `cuda:N` for an NVIDIA GPU (a build
    /// with the `cuda` feature). A run may resume on another device than it started on.
    #[arg(long, default_value = "cpu", value_name = "cpu|cuda[:N]")]
    pub device: Device,
    #[command(flatten)]
    pub data: DataArgs,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Validate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
}

impl TrainArgs {
    /// A plain `trainer train <variant>` into `runs/<variant>`, continuing (or just reporting) a
    /// run already there.
    pub fn plain(variant: &str) -> TrainArgs {
        let out = Path::new("runs").join(variant);
        TrainArgs {
            variant: Some(variant.into()),
            spec: None,
            epochs: None,
            finetune_epochs: None,
            seed: None,
            lambda: None,
            weight_decay: None,
            lr: None,
            resume: out.join(CHECKPOINT).exists(),
            out: Some(out),
            force: false,
            threads: None,
            device: Device::Cpu,
            data: DataArgs::default(),
            train_limit: None,
            test_limit: None,
        }
    }

    /// The run directory of experiment `name`: `--out`, else `runs/<name>`.
    fn out_dir(&self, name: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| Path::new("runs").join(name))
    }
}

/// Runs the experiment `args` names, or the spec it gives. Returns an autoencoder's metrics
/// (`None` for the PCA baseline and the study, and for a finished run without its
/// `metrics.json`).
pub fn run(args: TrainArgs) -> Result<Option<Metrics>> {
    if let Some(path) = &args.spec {
        let spec = Spec::read(path)?;
        return train_spec(&spec, &args, None);
    }
    let variant = args.variant.as_deref().unwrap_or_default();
    match Experiment::find(variant).map_err(anyhow::Error::msg)? {
        Experiment::Recipe(recipe) => train_spec(&recipe.spec(), &args, None),
        Experiment::Anomaly => train_anomaly(&args),
        experiment => {
            let out = args.out_dir(variant);
            let _held = crate::train::lock(&out)?;
            if args.force {
                remove_metrics(&out)?;
            }
            let data = load_data(&args.data)?;
            if let Experiment::Pca = experiment {
                pca(&data, &out)?;
            } else {
                semisup(&data, &out, args.seed.unwrap_or(0), args.device)?;
            }
            Ok(None)
        }
    }
}

/// `--lr`: a finite rate above 0.
fn learning_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        Ok(_) => Err("the learning rate must be a finite number above 0".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

/// Removes `dir`'s `metrics.json`, if there.
fn remove_metrics(dir: &Path) -> Result<()> {
    let old = dir.join(METRICS);
    if old.exists() {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// The `metrics.json` a finished run left in `dir`, if it is there and reads as `T`.
pub fn stored_metrics<T: serde::de::DeserializeOwned>(dir: &Path) -> Option<T> {
    let bytes = std::fs::read(dir.join(METRICS)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The PCA baseline into `out`: fitted once; a finished one is reported from its metrics.
pub fn pca(data: &Mnist, out: &Path) -> Result<Vec<PcaScore>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        baselines: Vec<PcaScore>,
    }
    if let Some(stored) = stored_metrics::<Stored>(out) {
        println!("pca: already fitted in {}", out.display());
        return Ok(stored.baselines);
    }
    let scores = pca_baseline::run_pca(data, out)?;
    for s in &scores {
        println!(
            "pca-{}: test_mse {:.6}, per-image squared error {:.2}",
            s.components, s.test_mse, s.per_image_squared_error
        );
    }
    Ok(scores)
}

/// The semi-supervised study into `out`, on the encoder of the finished `fc` run in `runs/fc`
/// (trained first when missing); a finished study is reported from its metrics.
pub fn semisup(data: &Mnist, out: &Path, seed: u64, device: Device) -> Result<Vec<Score>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        scores: Vec<Score>,
    }
    if let Some(stored) = stored_metrics::<Stored>(out) {
        println!("semisup: already done in {}", out.display());
        return Ok(stored.scores);
    }
    // The device first: one that cannot be used stops the study before anything is written.
    let mut session = crate::gpu::open(device)?;
    let fc = Path::new("runs/fc").join(CHECKPOINT);
    let finished = crate::checkpoint::load::<State>(&fc)
        .map(|s| s.finished)
        .unwrap_or(false);
    if !finished {
        println!("semisup: training fc first, for its encoder");
        run(TrainArgs {
            device,
            ..TrainArgs::plain("fc")
        })?;
    }
    let state: State =
        crate::checkpoint::load(&fc).with_context(|| format!("loading the fc encoder from {}", fc.display()))?;
    let config = SemisupConfig {
        seed,
        ..SemisupConfig::default()
    };
    semisup_study::run_semisup(&state.model, data, &config, out, session.as_mut(), |s| {
        println!(
            "semisup: {} labels, {}: test accuracy {:.2} % after {} epochs",
            s.labels,
            s.start.label(),
            100.0 * s.test_accuracy,
            s.epochs
        )
    })
}

/// What to do about the run directory, decided before any data is loaded.
enum Start {
    /// The run there is finished: reported, nothing trained.
    Finished,
    /// Continue this stored run.
    Resume(Box<State>),
    /// Start a new run of this configuration (its input shape still to come from the data).
    New(Box<Config>),
}

/// The resume policy: `--resume` continues the stored run (whose configuration rules: a flag
/// that contradicts it is an error) or reports it when finished; otherwise a new run starts,
/// unless a run is already there and `--force` is not given.
fn start(spec: &Spec, args: &TrainArgs, out: &Path, progress: &Progress) -> Result<Start> {
    let ckpt = out.join(CHECKPOINT);
    if args.resume {
        let state: State = crate::checkpoint::load(&ckpt).with_context(|| {
            format!(
                "cannot resume from {}; run without --resume to start a new run",
                ckpt.display()
            )
        })?;
        check_resume_flags(args, spec, &state)?;
        if state.finished {
            progress.say(&format!(
                "{}: the run in {} is finished (test_mse {:.6}); `trainer train {} --force` trains it again",
                state.config.variant,
                out.display(),
                state.history.last().map_or(f64::NAN, |r| r.val_mse),
                state.config.variant
            ));
            return Ok(Start::Finished);
        }
        let mut state = state;
        if let Some(lr) = args.lr {
            progress.say(&format!(
                "{}: the learning rate goes from {:e} to {lr:e} (--lr)",
                state.config.variant, state.adam.lr
            ));
            state.adam.lr = lr;
        }
        progress.say(&format!(
            "{}: resuming {} at phase {}, epoch {}",
            state.config.variant,
            out.display(),
            state.phase_name(),
            state.epoch_in_phase
        ));
        return Ok(Start::Resume(Box::new(state)));
    }
    refuse_existing(out, args)?;
    let mut config = spec.config(args.threads.unwrap_or_else(default_threads));
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config
        .cap_epochs(args.epochs, args.finetune_epochs)
        .map_err(anyhow::Error::msg)?;
    if let Some(lambda) = args.lambda {
        config.set_lambda(lambda).map_err(anyhow::Error::msg)?;
    }
    if let Some(decay) = args.weight_decay {
        config.set_weight_decay(decay).map_err(anyhow::Error::msg)?;
    }
    if let Some(lr) = args.lr {
        config.lr = lr;
    }
    config.train_limit = args.train_limit;
    config.test_limit = args.test_limit;
    Ok(Start::New(Box::new(config)))
}

/// The `trainer train` arguments that name the run: the variant or `--spec FILE`, and
/// `--out DIR` when given.
fn run_flags(args: &TrainArgs) -> String {
    let what = match (&args.spec, &args.variant) {
        (Some(spec), _) => format!("--spec {}", spec.display()),
        (None, variant) => variant.clone().unwrap_or_default(),
    };
    match &args.out {
        Some(dir) => format!("{what} --out {}", dir.display()),
        None => what,
    }
}

/// The run's checkpoint in `out`, if one loads: where it is, its phase and its epochs done in
/// it, for the messages after a run stopped early.
fn last_checkpoint(out: &Path) -> Option<String> {
    let ckpt = out.join(CHECKPOINT);
    let good = crate::checkpoint::load::<State>(&ckpt).ok()?;
    Some(format!(
        "{} (phase '{}', {} epochs done)",
        ckpt.display(),
        good.phase_name(),
        good.epoch_in_phase
    ))
}

/// What to do after Ctrl-C: continue from the checkpoint, or start again when no epoch finished.
fn after_interruption(args: &TrainArgs, out: &Path) -> String {
    let run = run_flags(args);
    match last_checkpoint(out) {
        Some(ckpt) => format!(
            "the checkpoint of the last finished epoch stays in {ckpt}; continue with: trainer train {run} --resume"
        ),
        None => format!("no epoch finished, so no checkpoint was written; start again with: trainer train {run}"),
    }
}

/// What to do after a divergence: continue from the last good checkpoint, or start again
/// when no epoch finished, with a learning rate ten times lower, as a command to copy.
fn after_divergence(trainer: &Trainer, args: &TrainArgs, out: &Path) -> String {
    let was = trainer.state.adam.lr;
    // Ten times lower, to two significant digits: 1e-4, not 1.0000000000000001e-4.
    let lr: f64 = format!("{:.1e}", was / 10.0).parse().unwrap_or(was / 10.0);
    let run = run_flags(args);
    match last_checkpoint(out) {
        Some(ckpt) => format!(
            "the last good checkpoint stays in {ckpt}; continue with a lower learning rate (it was {was:e}): trainer train {run} --resume --lr {lr:e}"
        ),
        None => format!(
            "no epoch finished, so no checkpoint was written; start again with a lower learning rate (it was {was:e}): trainer train {run} --lr {lr:e}"
        ),
    }
}

/// The input shape of a run of `spec` on samples of `data_shape`: the data's, which must be the
/// one the spec names, if it names one, and fit the spec's layers.
pub fn input_shape(spec: &Spec, data_shape: &[usize]) -> Result<Vec<usize>> {
    let named = spec.input.as_ref().map(|i| i.shape.as_slice());
    check::check(&spec.architecture(), named, data_shape).map_err(|rule| {
        anyhow::anyhow!(
            "{}: {}: {} (the data's samples are {data_shape:?})",
            spec.name,
            rule.key,
            rule.message
        )
    })?;
    Ok(data_shape.to_vec())
}

/// The `anomaly` recipe's run: its spec follows from the data (input width, training samples,
/// scaling), so a new run reads the data first; a run to continue makes it from its own
/// configuration.
fn train_anomaly(args: &TrainArgs) -> Result<Option<Metrics>> {
    let out = args.out_dir(recipe::NAME);
    let ckpt = out.join(CHECKPOINT);
    if args.resume {
        // A checkpoint that does not load is reported by `start`; any spec of the recipe will do.
        let (width, scaling) =
            crate::checkpoint::load::<State>(&ckpt).map_or((recipe::MIN_INPUT, ScalingKind::Unit), |s| {
                let scaling = s.config.data.as_ref().map_or(ScalingKind::Unit, |d| d.scaling.kind);
                (s.config.input_shape.iter().product(), scaling)
            });
        let spec = recipe::spec(width, 1, scaling)?;
        return train_spec(&spec, args, None);
    }
    refuse_existing(&out, args)?;
    let seed = args.seed.unwrap_or(0);
    let (data, split) = load_one_class(&args.data, seed)?;
    Progress::auto().say(&format!("{}: {split}", recipe::NAME));
    let trained = args.train_limit.map_or(data.train.len(), |n| n.min(data.train.len()));
    let spec = recipe::spec(data.train.features(), trained, data.record.scaling.kind)?;
    train_spec(&spec, args, Some(data))
}

/// Refuses to start a new run over the run in `out` unless `--force` is given.
fn refuse_existing(out: &Path, args: &TrainArgs) -> Result<()> {
    if out.join(CHECKPOINT).exists() && !args.force {
        bail!(
            "{} already holds a run; pass --resume to continue it, --force to discard it and start over, or --out DIR",
            out.display()
        );
    }
    Ok(())
}

/// An autoencoder's run into its directory, as [`start`] decides; a new run trains on `data`
/// when given (read already), else on the data `args` name.
fn train_spec(spec: &Spec, args: &TrainArgs, data: Option<Dataset>) -> Result<Option<Metrics>> {
    // The device first: one that cannot be used stops the command before anything is read or
    // written.
    let session = crate::gpu::open(args.device)?;
    let out = args.out_dir(&spec.name);
    // Held until the run returns: a second trainer on this directory is refused.
    let _held = crate::train::lock(&out)?;
    let mut progress = Progress::auto();
    let (state, data) = match start(spec, args, &out, &progress)? {
        Start::Finished => return Ok(stored_metrics(&out)),
        Start::Resume(state) => {
            // The run's own data, read again and checked against its hashes.
            let record = state.config.data.as_ref();
            if args.data.given() {
                bail!("--resume continues on the run's recorded data; drop the data flags");
            }
            let data = recorded_or_given(record, &args.data, state.config.seed)?;
            (*state, data)
        }
        Start::New(config) => {
            let mut config = *config;
            let data = match data {
                Some(data) => data,
                None if spec.training.one_class => {
                    let (data, split) = load_one_class(&args.data, config.seed)?;
                    progress.say(&format!("{}: {split}", spec.name));
                    data
                }
                None => load_dataset(&args.data, config.seed)?,
            };
            config.input_shape = input_shape(spec, data.train.shape())?;
            (State::new(config)?, data)
        }
    };
    progress.say(&format!("{}: data {}", spec.name, describe(&data)));
    let mut trainer = Trainer::new(state, data)?;
    if let Some(session) = session {
        trainer.set_session(session);
        progress.say(&format!("{}: training on {}", spec.name, trainer.device_name()));
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if !args.resume {
        // A new run must not leave an older run's final metrics beside its own checkpoint.
        remove_metrics(&out)?;
    }
    let metrics = match recipe_run::run(&mut trainer, &out, &mut progress) {
        Ok(m) => m,
        Err(RunError::Train(e @ TrainError::Diverged { .. })) => {
            bail!("{e}\n{}", after_divergence(&trainer, args, &out))
        }
        Err(RunError::Train(e @ TrainError::Interrupted { .. })) => {
            let message = format!("{e}\n{}", after_interruption(args, &out));
            return Err(crate::interrupt::Interrupted(message).into());
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

/// With --resume the stored configuration rules; a flag that contradicts it is an error, and so
/// is a spec that describes another model or schedule.
pub fn check_resume_flags(args: &TrainArgs, spec: &Spec, state: &State) -> Result<()> {
    let c = &state.config;
    if c.variant != spec.name {
        bail!(
            "the run in {} trains '{}', not '{}'",
            args.out.as_deref().unwrap_or(Path::new("?")).display(),
            c.variant,
            spec.name
        );
    }
    let described = spec.config(c.threads);
    if described.architecture != c.architecture {
        bail!(
            "the run in {} has another model than the spec '{}' describes; drop --resume (and pass --force) to train the spec anew",
            args.out.as_deref().unwrap_or(Path::new("?")).display(),
            spec.name
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
        if wanted.weight_decay != c.weight_decay {
            bail!(
                "--lambda {lambda} differs from the run's weight decay {}; drop it to resume",
                c.weight_decay
            );
        }
    }
    if let Some(decay) = args.weight_decay {
        let mut wanted = c.clone();
        wanted.set_weight_decay(decay).map_err(anyhow::Error::msg)?;
        if wanted.weight_decay != c.weight_decay {
            bail!(
                "--weight-decay {decay} differs from the run's {}; drop it to resume",
                c.weight_decay
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_are_typed_and_an_unknown_name_lists_them_all() {
        assert!(matches!(Experiment::find("pca"), Ok(Experiment::Pca)));
        assert!(matches!(Experiment::find("semisup"), Ok(Experiment::Semisup)));
        assert!(matches!(Experiment::find("fc"), Ok(Experiment::Recipe(r)) if r.name == "fc"));
        let Err(e) = Experiment::find("nosuch") else {
            panic!("found")
        };
        assert!(e.starts_with("unknown variant 'nosuch'; known: fc, "), "{e}");
        assert!(e.ends_with(", denoise-mask, anomaly, pca, semisup"), "{e}");
        assert!(matches!(Experiment::find("anomaly"), Ok(Experiment::Anomaly)));
        let names: Vec<_> = Experiment::all().map(|e| e.name()).collect();
        assert_eq!(names.len(), crate::recipe::RECIPES.len() + 3);
        assert_eq!(names[names.len() - 3..], ["anomaly", "pca", "semisup"]);
    }

    #[test]
    fn resume_flags_that_contradict_the_stored_run_are_refused() {
        let state = State::new(crate::recipe::find("deep30").unwrap().config(0, 2)).unwrap();
        let mut args = TrainArgs::plain("deep30");
        args.threads = Some(2);
        args.weight_decay = Some(crate::recipe::DEEP30_WEIGHT_DECAY.into());
        let spec = crate::recipe::find("deep30").unwrap().spec();
        check_resume_flags(&args, &spec, &state).unwrap();
        args.weight_decay = Some(1e-5);
        let e = check_resume_flags(&args, &spec, &state).unwrap_err().to_string();
        assert!(e.starts_with("--weight-decay 0.00001 differs"), "{e}");
        args.weight_decay = None;
        // deep30's --lambda is its weight decay.
        args.lambda = Some(2e-6);
        let e = check_resume_flags(&args, &spec, &state).unwrap_err().to_string();
        assert!(e.contains("differs from the run's weight decay"), "{e}");
        args.lambda = None;
        args.seed = Some(3);
        let e = check_resume_flags(&args, &spec, &state).unwrap_err().to_string();
        assert_eq!(e, "--seed 3 differs from the run's 0; drop it to resume");
        let other = TrainArgs::plain("fc");
        let fc = crate::recipe::find("fc").unwrap().spec();
        let e = check_resume_flags(&other, &fc, &state).unwrap_err().to_string();
        assert!(e.contains("trains 'deep30', not 'fc'"), "{e}");
    }
}
