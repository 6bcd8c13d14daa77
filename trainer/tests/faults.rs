//! Disk faults: a full disk (injected by `checkpoint::fault`, through which every file the
//! trainer writes goes) or an unusable run directory gives a clear error, and every file that was
//! there before stays as it was: a run's checkpoint, history and metrics, an exported model and
//! its golden vectors, converted `.tflite` files, an upgraded model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use trainer::checkpoint::fault;
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe;
use trainer::train::{State, TrainError, Trainer, CHECKPOINT, HISTORY, METRICS};

mod common;
use common::{text, trainer};

/// The fault is process-wide: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap())
        .clone()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Byte budgets for a write of `len` bytes in all: nothing, a little, all but one byte, and
/// points between.
fn budgets(len: u64) -> Vec<u64> {
    vec![0, 1, 100, len / 3, len / 2, len - 1]
}

#[test]
fn a_full_disk_leaves_the_runs_checkpoint_history_and_metrics_as_they_were() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut config = recipe::find("fc").unwrap().config(3, 2);
    config.cap_epochs(Some(3), Some(0)).unwrap();
    config.train_limit = Some(600);
    config.test_limit = Some(200);
    let mut t = Trainer::new(State::new(config).unwrap(), mnist()).unwrap();
    t.next_epoch(&mut Progress::Silent).unwrap().unwrap();
    t.save(dir.path()).unwrap();
    let report = t.test_report();
    t.write_metrics(dir.path(), &t.metrics(&report)).unwrap();
    let before = snapshot(dir.path());
    assert_eq!(before.len(), 3, "{:?}", before.keys());

    t.next_epoch(&mut Progress::Silent).unwrap().unwrap();
    let whole = trainer::checkpoint::encode(&t.state).unwrap().len() as u64
        + trainer::train::history_csv(&t.state.history).len() as u64;
    for budget in budgets(whole) {
        let full = fault::disk_full_after(budget);
        let e = t.save(dir.path()).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, TrainError::Io { .. }), "{message}");
        assert!(message.contains("no space left on device"), "{message}");
        assert!(
            message.contains(CHECKPOINT) || message.contains(HISTORY),
            "names the file: {message}"
        );
        let metrics = t.metrics(&report);
        assert!(t.write_metrics(dir.path(), &metrics).is_err());
        drop(full);
        assert_eq!(
            snapshot(dir.path()),
            before,
            "after a fault at {budget} of {whole} bytes"
        );
    }
    // With room again, both are written, and the checkpoint is the second epoch's.
    t.save(dir.path()).unwrap();
    let state: State = trainer::checkpoint::load(&dir.path().join(CHECKPOINT)).unwrap();
    assert_eq!(state.history.len(), 2);
    let history = std::fs::read_to_string(dir.path().join(HISTORY)).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(dir.path().join(METRICS).is_file());
}

/// Runs `trainer` in this process through its library, so that the injected fault applies.
fn exported(args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }
    #[derive(clap::Subcommand)]
    enum Command {
        Export(trainer::commands::export::ExportArgs),
        Convert(trainer::commands::convert::ConvertArgs),
        Upgrade(trainer::commands::upgrade::UpgradeArgs),
    }
    let cli = Cli::try_parse_from(std::iter::once("trainer").chain(args.iter().copied()))?;
    match cli.command {
        Command::Export(a) => trainer::commands::export::run(a),
        Command::Convert(a) => trainer::commands::convert::run(a),
        Command::Upgrade(a) => trainer::commands::upgrade::run(a),
    }
}

#[test]
fn a_full_disk_leaves_exported_converted_and_upgraded_files_as_they_were() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = trainer(&[
        "train",
        "fc",
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "1",
        "--finetune-epochs",
        "0",
        "--train-limit",
        "512",
        "--test-limit",
        "128",
        "--threads",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let model = files.join("fc.aeq");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let data = data.to_str().unwrap();
    let export = [
        "export",
        run.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--data",
        data,
    ];
    exported(&export).unwrap();
    let prefix = files.join("fc");
    let convert = ["convert", model.to_str().unwrap(), "--tflite", prefix.to_str().unwrap()];
    exported(&convert).unwrap();
    let before = snapshot(&files);
    assert_eq!(
        before.len(),
        4,
        "model, golden vectors, encoder and decoder: {:?}",
        before.keys()
    );
    let upgraded = files.join("fc.aeq");
    let upgrade = ["upgrade", upgraded.to_str().unwrap(), "--data", data];

    let len = before.values().map(|b| b.len() as u64).max().unwrap();
    for (name, command) in [
        ("export", &export[..]),
        ("convert", &convert[..]),
        ("upgrade", &upgrade[..]),
    ] {
        for budget in budgets(len) {
            let full = fault::disk_full_after(budget);
            let e = exported(command)
                .map(|()| "it succeeded".to_string())
                .unwrap_or_else(|e| format!("{e:#}"));
            drop(full);
            if name == "upgrade" && e == "it succeeded" {
                // A current model is left alone: nothing to write.
                assert_eq!(snapshot(&files), before);
                continue;
            }
            assert!(e.contains("no space left on device"), "{name} at {budget}: {e}");
            assert_eq!(snapshot(&files), before, "{name} after a fault at {budget} bytes");
        }
    }
}

#[test]
fn an_unusable_run_directory_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the run directory should be.
    let out = dir.path().join("not-a-directory");
    std::fs::write(&out, b"mine").unwrap();
    let o = trainer(&[
        "train",
        "fc",
        "--out",
        out.to_str().unwrap(),
        "--train-limit",
        "64",
        "--test-limit",
        "32",
    ]);
    let log = text(&o);
    assert!(!o.status.success(), "{log}");
    assert!(log.contains(out.to_str().unwrap()), "names the directory: {log}");
    assert_eq!(std::fs::read(&out).unwrap(), b"mine", "the file is untouched");
}
