//! The `trainer` binary as a user runs it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use trainer::checkpoint;
use trainer::train::{State, CHECKPOINT, HISTORY, LOCK, METRICS};

mod common;
use common::{text, trainer};

const TINY: &[&str] = &["--train-limit", "1024", "--test-limit", "256", "--threads", "2"];

/// A run long enough to be still training while a test acts on it (60 epochs of 4,096 images).
const LONG: &[&str] = &[
    "--threads",
    "1",
    "--train-limit",
    "4096",
    "--test-limit",
    "512",
    "--epochs",
    "60",
];

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "fc", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    trainer(&args)
}

/// `trainer train fc --out OUT ARGS...` started in the background in the trainer's directory,
/// its output discarded but for `stderr`.
fn spawn_train(out: &Path, args: &[&str], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "fc", "--out", out.to_str().unwrap()])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Polls `reached` every millisecond until it holds; fails the test after two minutes with
/// `what`.
fn wait_until(what: &str, mut reached: impl FnMut() -> bool) {
    let start = Instant::now();
    while !reached() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The text a run's lock file starts with while `child` holds it.
fn holder(child: &Child) -> String {
    format!("process {}:", child.id())
}

/// Whether `child` holds the run directory `out`.
fn holds(out: &Path, holder: &str) -> bool {
    std::fs::read_to_string(out.join(LOCK)).is_ok_and(|s| s.starts_with(holder))
}

#[test]
fn list_names_the_variants() {
    let o = trainer(&["list"]);
    assert!(o.status.success());
    assert!(text(&o).lines().any(|l| l.starts_with("fc ")), "{}", text(&o));
}

#[test]
fn train_writes_the_run_and_protects_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fc");
    let o = train(&out, &["--epochs", "2", "--finetune-epochs", "1"]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    // Not a terminal: one plain line per epoch, then the summary.
    assert!(log.contains("fc tied epoch 2/2: train"), "{log}");
    assert!(log.contains("fc finetune epoch 1/1: train"), "{log}");
    assert!(log.contains("test_mse"), "{log}");
    for f in [CHECKPOINT, HISTORY, METRICS] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read(out.join(METRICS)).unwrap();
    let fields: serde_json::Value = serde_json::from_slice(&metrics).unwrap();
    assert_eq!(fields["device"], "cpu");

    // Starting again over it is refused and changes nothing.
    let o = train(&out, &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already holds a run"), "{}", text(&o));
    assert_eq!(std::fs::read(out.join(METRICS)).unwrap(), metrics);
    // Resuming a finished run says so.
    let o = train(&out, &["--resume"]);
    assert!(o.status.success());
    assert!(text(&o).contains("is finished"), "{}", text(&o));
    // A flag that contradicts the stored run is refused.
    let o = train(&out, &["--resume", "--seed", "9"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--seed 9 differs"), "{}", text(&o));
    // --force starts over.
    let o = train(&out, &["--force", "--epochs", "1", "--finetune-epochs", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let s: State = checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert_eq!(s.history.len(), 1);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = trainer(&["train", "nosuch"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown variant 'nosuch'; known: fc"), "{}", text(&o));

    let o = trainer(&[
        "train",
        "conv",
        "--finetune-epochs",
        "3",
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("variant 'conv' has no fine-tuning phase"),
        "{}",
        text(&o)
    );

    let o = train(&dir.path().join("none"), &["--resume"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot resume from"), "{}", text(&o));

    // A corrupt checkpoint is named, not loaded.
    let out = dir.path().join("corrupt");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join(CHECKPOINT), b"AE-CKPT\n\x01\0\0\0garbage").unwrap();
    let o = train(&out, &["--resume"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("corrupt or truncated"), "{}", text(&o));

    // A data directory with a damaged file.
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    for f in std::fs::read_dir(&bundled).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(data.join("t10k-labels-idx1-ubyte.gz"), b"\x1f\x8b\x08truncated").unwrap();
    let o = train(&dir.path().join("x"), &["--data", data.to_str().unwrap()]);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz") && msg.contains("gzip"),
        "{msg}"
    );
}

#[test]
fn a_device_that_cannot_be_used_stops_the_command_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fc");
    // This test binary's trainer has no GPU 7: without the `cuda` feature it says so, with it
    // the driver's library or GPU is missing. Either way before the run directory exists.
    let o = train(&out, &["--device", "cuda:7"]);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(msg.contains("--device cuda:7: "), "{msg}");
    assert!(!out.exists(), "nothing written");
    let o = trainer(&["bench", "--epochs", "1", "--device", "cuda:7"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--device cuda:7: "), "{}", text(&o));
    // A device that is not one, and --device before a command.
    let o = train(&out, &["--device", "gpu"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("use cpu, cuda or cuda:N"), "{}", text(&o));
    let o = trainer(&["--device", "cuda", "list"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("give it after the command"), "{}", text(&o));
}

/// The command a divergence message gives (its last line's text after "): ").
fn suggested_command(log: &str) -> Vec<String> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("trainer train"))
        .expect("a command");
    let command = &line[line.find("trainer train").unwrap()..];
    command.split_whitespace().skip(1).map(String::from).collect()
}

#[test]
fn a_divergence_names_the_run_and_the_command_that_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fc");
    let caps = ["--epochs", "2", "--finetune-epochs", "0"];

    // From the first batch: no checkpoint, and a command to start again at a lower rate.
    let o = train(&out, &[&caps[..], &["--lr", "1e30"]].concat());
    let log = text(&o);
    assert!(!o.status.success(), "{log}");
    assert!(log.contains("fc: training diverged: "), "{log}");
    assert!(log.contains("in phase 'tied', epoch 1"), "{log}");
    assert!(log.contains("no epoch finished, so no checkpoint was written"), "{log}");
    assert!(!out.join(CHECKPOINT).exists());
    let command = suggested_command(&log);
    let expected = format!("train fc --out {} --lr 1e29", out.display());
    assert_eq!(command.join(" "), expected, "{log}");
    let o = train(&out, &[&caps[..], &["--lr", "1e-3"]].concat());
    assert!(o.status.success(), "{}", text(&o));

    // Mid-run: the stored run, one epoch from its end, continues at a rate that diverges.
    let mut state: State = checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    state.finished = false;
    state.phase = 0;
    state.phase_started = true;
    state.epoch_in_phase = 1;
    state.adam.lr = 1e30;
    checkpoint::save(&out.join(CHECKPOINT), &state).unwrap();
    let good = std::fs::read(out.join(CHECKPOINT)).unwrap();
    let o = train(&out, &["--resume"]);
    let log = text(&o);
    assert!(!o.status.success(), "{log}");
    assert!(log.contains("in phase 'tied', epoch 2"), "{log}");
    assert!(
        log.contains("the last good checkpoint stays in") && log.contains("(phase 'tied', 1 epochs done)"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(out.join(CHECKPOINT)).unwrap(),
        good,
        "the checkpoint changed"
    );
    let command = suggested_command(&log);
    let expected = format!("train fc --out {} --resume --lr 1e29", out.display());
    assert_eq!(command.join(" "), expected, "{log}");

    // `--lr` continues the phase at the given rate.
    let o = train(&out, &["--resume", "--lr", "1e-4"]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("the learning rate goes from 1e30 to 1e-4 (--lr)"), "{log}");
    let done: State = checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert!(done.finished);
    assert_eq!(done.history.len(), 3);

    // Not a rate.
    for bad in ["0", "-1", "inf", "fast"] {
        let o = train(&out, &["--resume", &format!("--lr={bad}")]);
        assert!(!o.status.success());
        assert!(text(&o).contains("--lr"), "{}", text(&o));
    }
}

#[test]
fn a_second_trainer_on_a_busy_run_directory_is_refused_until_the_first_ends() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("busy");
    let mut first = spawn_train(&out, LONG, Stdio::null());
    let holder = holder(&first);
    wait_until("no lock appeared", || holds(&out, &holder));
    for extra in [&["--resume"][..], &["--force"], &[]] {
        let o = train(&out, extra);
        let log = text(&o);
        assert!(!o.status.success(), "{extra:?}: {log}");
        assert!(
            log.contains("is in use by another trainer (process"),
            "{extra:?}: {log}"
        );
        assert!(log.contains(&holder), "{extra:?}: names the first trainer: {log}");
    }
    assert!(first.try_wait().unwrap().is_none(), "the first trainer ended early");
    // Killed, it leaves no stuck lock.
    first.kill().unwrap();
    first.wait().unwrap();
    let held = trainer::train::lock(&out).expect("the lock is free once its holder is gone");
    let note = std::fs::read_to_string(out.join(LOCK)).unwrap();
    assert!(note.starts_with(&format!("process {}:", std::process::id())), "{note}");
    drop(held);
}

#[test]
fn ctrl_c_keeps_the_last_checkpoint_and_says_how_to_continue() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("interrupted");
    let child = spawn_train(&out, LONG, Stdio::piped());
    wait_until("no checkpoint appeared", || out.join(CHECKPOINT).exists());
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let log = text(&o);
    assert_eq!(o.status.code(), Some(130), "{log}");
    assert!(log.contains("stopping at the next batch"), "{log}");
    assert!(log.contains("fc: interrupted in phase 'tied' after"), "{log}");
    let state: State = checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert!(!state.finished);
    let expected = format!(
        "the checkpoint of the last finished epoch stays in {} (phase 'tied', {} epochs done); continue with: trainer train fc --out {} --resume",
        out.join(CHECKPOINT).display(),
        state.epoch_in_phase,
        out.display()
    );
    assert!(log.contains(&expected), "{log}\nexpected: {expected}");
    assert!(!out.join(METRICS).exists());
}

/// Where [`kills_at_five_points_resume_to_the_same_weights`] kills the run: once the checkpoint
/// holds `epochs` epochs (0: as soon as training starts, before any checkpoint), after `delay_ms`
/// more; `torn_write` then leaves the half-written temporary files a kill during the checkpoint's
/// write would.
struct KillPoint {
    epochs: usize,
    delay_ms: u64,
    torn_write: bool,
}

#[test]
fn kills_at_five_points_resume_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    // 4 tied epochs and 3 fine-tuning ones, on 2,048 images.
    let caps = [
        "--train-limit",
        "2048",
        "--test-limit",
        "256",
        "--epochs",
        "4",
        "--finetune-epochs",
        "3",
        "--seed",
        "5",
        "--threads",
        "2",
    ];
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "fc", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        trainer(&args)
    };
    let whole = dir.path().join("whole");
    let o = run(&whole, &caps);
    assert!(o.status.success(), "{}", text(&o));
    let reference: State = checkpoint::load(&whole.join(CHECKPOINT)).unwrap();
    assert_eq!(reference.history.len(), 7);

    let points = [
        // Before the first checkpoint: nothing to resume, the run starts again.
        KillPoint {
            epochs: 0,
            delay_ms: 0,
            torn_write: false,
        },
        // In the second epoch.
        KillPoint {
            epochs: 1,
            delay_ms: 20,
            torn_write: false,
        },
        // While writing the third epoch's checkpoint (its temporary files half-written).
        KillPoint {
            epochs: 2,
            delay_ms: 0,
            torn_write: true,
        },
        // At the phase boundary, before the model is untied.
        KillPoint {
            epochs: 4,
            delay_ms: 0,
            torn_write: false,
        },
        // In fine-tuning.
        KillPoint {
            epochs: 5,
            delay_ms: 10,
            torn_write: false,
        },
    ];
    for (i, point) in points.iter().enumerate() {
        let out = dir.path().join(format!("killed-{i}"));
        let mut child = spawn_train(&out, &caps, Stdio::null());
        let holder = holder(&child);
        wait_until(&format!("point {i}: never reached"), || {
            if point.epochs == 0 {
                holds(&out, &holder)
            } else {
                checkpoint::load::<State>(&out.join(CHECKPOINT)).is_ok_and(|s| s.history.len() >= point.epochs)
            }
        });
        std::thread::sleep(Duration::from_millis(point.delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let at_kill = checkpoint::load::<State>(&out.join(CHECKPOINT)).ok();
        if let Some(state) = &at_kill {
            assert!(!state.finished, "point {i}: the kill came after the run ended");
        }
        if point.torn_write {
            for (file, len) in [(CHECKPOINT, 1000), (HISTORY, 10)] {
                let good = std::fs::read(out.join(file)).unwrap();
                std::fs::write(out.join(format!("{file}.tmp")), &good[..len.min(good.len())]).unwrap();
            }
        }
        let o = if at_kill.is_some() {
            run(&out, &["--resume"])
        } else {
            run(&out, &caps)
        };
        assert!(o.status.success(), "point {i}: {}", text(&o));
        let resumed: State = checkpoint::load(&out.join(CHECKPOINT)).unwrap();
        assert!(resumed.finished);
        assert_eq!(resumed.model, reference.model, "point {i}: resumed weights differ");
        let val = |s: &State| s.history.iter().map(|r| r.val_mse.to_bits()).collect::<Vec<_>>();
        assert_eq!(val(&resumed), val(&reference), "point {i}: history differs");
        // No temporary file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "point {i}: {leftovers:?}");
    }
}

#[test]
fn killed_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let caps = [
        "--train-limit",
        "4096",
        "--test-limit",
        "512",
        "--epochs",
        "60",
        "--finetune-epochs",
        "30",
        "--seed",
        "7",
    ];
    let killed = dir.path().join("killed");
    let mut child = spawn_train(&killed, &[&["--threads", "2"][..], &caps].concat(), Stdio::inherit());
    wait_until("no checkpoint appeared", || killed.join(CHECKPOINT).exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill: State = checkpoint::load(&killed.join(CHECKPOINT)).unwrap();
    assert!(
        !at_kill.finished,
        "the kill came after the run ended; the test proves nothing"
    );

    let o = trainer(&["train", "fc", "--out", killed.to_str().unwrap(), "--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming"), "{}", text(&o));

    let whole = dir.path().join("whole");
    let mut args = vec!["train", "fc", "--threads", "2", "--out", whole.to_str().unwrap()];
    args.extend_from_slice(&caps);
    assert!(trainer(&args).status.success());

    let a: State = checkpoint::load(&killed.join(CHECKPOINT)).unwrap();
    let b: State = checkpoint::load(&whole.join(CHECKPOINT)).unwrap();
    assert!(a.finished && b.finished);
    assert_eq!(a.model, b.model, "resumed weights differ from the uninterrupted run's");
    let val = |s: &State| s.history.iter().map(|r| r.val_mse).collect::<Vec<_>>();
    assert_eq!(val(&a), val(&b));
}

#[test]
fn bench_prints_one_json_line() {
    let o = trainer(&["bench", "--epochs", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["variant"], "fc");
    assert_eq!(v["phase"], "1 (tied)");
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["train_samples"], 60_000);
    let median = v["median_epoch_s"].as_f64().unwrap();
    assert!(median > 0.0);
    let samples = v["samples_per_s"].as_f64().unwrap();
    assert!((samples * median - 60_000.0).abs() < 1.0);
    // 30.1 GFLOP per epoch, by the model's count.
    assert!((v["gflops"].as_f64().unwrap() * median - 30.1056).abs() < 1e-3);
}

#[test]
fn bench_names_a_phase_the_recipe_lacks() {
    let o = trainer(&["bench", "--variant", "deep", "--phase", "4"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("deep has phases 1 to 3, not 4"), "{}", text(&o));
}
