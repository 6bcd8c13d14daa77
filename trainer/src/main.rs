//! `trainer`: trains the tutorial's autoencoders on MNIST. With no arguments it trains every
//! recipe into `runs/<variant>` (finished runs are kept and reported, interrupted ones
//! continue), then fits the PCA baseline and runs the semi-supervised study, and prints the
//! summary table it also writes to `runs/summary.md`.
//!
//! This file only parses arguments; each command is one call into [`trainer::commands`].

use clap::{Parser, Subcommand};
use trainer::commands::{
    self, bench, convert, encode, eval, export, inspect, oneclass, reconstruct, score, spec, train, upgrade,
};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Trains the tutorial's autoencoders on MNIST",
    after_help = "With no command, trains every variant into runs/<variant> (finished runs are kept, \
                  interrupted ones continue), then pca and semisup, and writes runs/summary.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: where every run's training steps run, `cpu` or `cuda[:N]` (a build
    /// with the `cuda` feature). A command takes its own --device.
    #[arg(long, value_name = "cpu|cuda[:N]")]
    device: Option<trainer::gpu::Device>,
}

#[derive(Subcommand)]
enum Command {
    /// Train one variant into runs/<variant>/, or the autoencoder a spec file describes
    /// (--spec FILE.toml) into runs/<its name>/.
    Train(train::TrainArgs),
    /// List the variants.
    List,
    /// Print a variant's spec file (TOML), to change and train with `train --spec`.
    Spec(spec::SpecArgs),
    /// Time training epochs and print one JSON line.
    Bench(bench::BenchArgs),
    /// Quantize a trained run to int8 and write its model file (and golden vectors beside it),
    /// or, with --safetensors, write its float weights for PyTorch and numpy.
    Export(export::ExportArgs),
    /// Test MSE of a model file's int8 model, next to its float model's.
    Eval(eval::EvalArgs),
    /// Print a model file: header, layers, shapes and every quantization parameter.
    Inspect(inspect::InspectArgs),
    /// Rewrite model files of an older format version in the current one: every weight, bias and
    /// scale kept, multipliers and tables recomputed, golden vectors regenerated.
    Upgrade(upgrade::UpgradeArgs),
    /// Derive .tflite files from a model file: PREFIX.encoder.tflite (input to code) and
    /// PREFIX.decoder.tflite (code to output), int8 in and out, the same tensors and weights.
    Convert(convert::ConvertArgs),
    /// Run a model file over a data file with the core, as the device does, and write the codes
    /// as .npy: (samples, K), dequantized (or int8 with --int8).
    Encode(encode::EncodeArgs),
    /// Run a model file over a data file with the core, as the device does, and write the
    /// reconstructions as .npy: (samples, ...input shape), in raw units (or int8 with --int8).
    Reconstruct(reconstruct::ReconstructArgs),
    /// Score a data file's samples for anomalies with a model file, as the device does, and
    /// print one JSON line: samples; with labels (1 = anomaly), AUROC, average precision and
    /// precision, recall and false positive rate at the stored threshold; with the run, the
    /// float model's too.
    Score(score::ScoreArgs),
    /// The one-class MNIST study: the anomaly recipe trained on each digit alone, the test set
    /// scored by its int8 and float models and PCA; AUROC per digit into
    /// runs/oneclass/summary.md.
    Oneclass(oneclass::OneClassArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = trainer::simd::check_env() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    if let Err(e) = trainer::interrupt::install() {
        eprintln!("warning: Ctrl-C will end runs without a message: {e}");
    }
    if cli.device.is_some() && cli.command.is_some() {
        eprintln!("error: --device before a command is for the no-command run; give it after the command (trainer train fc --device cuda)");
        std::process::exit(2);
    }
    let result = match cli.command {
        None => commands::all::run(cli.device.unwrap_or_default()),
        Some(Command::Train(args)) => train::run(args).map(|_| ()),
        Some(Command::List) => {
            commands::list::run();
            Ok(())
        }
        Some(Command::Spec(args)) => spec::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Upgrade(args)) => upgrade::run(args),
        Some(Command::Convert(args)) => convert::run(args),
        Some(Command::Encode(args)) => encode::run(args),
        Some(Command::Reconstruct(args)) => reconstruct::run(args),
        Some(Command::Score(args)) => score::run(args),
        Some(Command::Oneclass(args)) => oneclass::run(args).map(|_| ()),
    };
    if let Err(e) = result {
        if let Some(interrupted) = e.downcast_ref::<trainer::interrupt::Interrupted>() {
            eprintln!("{interrupted}");
            std::process::exit(trainer::interrupt::EXIT_STATUS);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
