//! Tiny end-to-end runs: the loss falls, runs are reproducible, resuming equals not stopping,
//! and a divergence stops the run without touching the last good checkpoint.

use std::path::Path;
use std::sync::OnceLock;
use trainer::checkpoint;
use trainer::mnist::Mnist;
use trainer::progress::Progress;
use trainer::recipe::{self, Config};
use trainer::train::{State, TrainError, Trainer, CHECKPOINT, HISTORY, METRICS};

fn mnist() -> Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).unwrap())
        .clone()
}

/// `fc` on 1,200 training and 300 test images: 3 batches an epoch, the last one partial.
fn tiny(seed: u64, threads: usize, tied: usize, finetune: usize) -> Config {
    let mut c = recipe::find("fc").unwrap().config(seed, threads);
    c.cap_epochs(Some(tied), Some(finetune)).unwrap();
    c.train_limit = Some(1200);
    c.test_limit = Some(300);
    c
}

fn trainer(config: Config) -> Trainer {
    Trainer::new(State::new(config).unwrap(), mnist()).unwrap()
}

fn same_weights(a: &State, b: &State) {
    assert_eq!(a.model.layers, b.model.layers);
    assert_eq!(a.model.params.len(), b.model.params.len());
    for (p, q) in a.model.params.iter().zip(&b.model.params) {
        assert!(
            p.value
                .iter()
                .zip(q.value.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "parameter {} differs",
            p.name
        );
    }
}

#[test]
fn loss_falls_and_outputs_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(tiny(0, 2, 4, 2));
    let m = t.run(Some(dir.path()), &mut Progress::Silent).unwrap();
    let h = &t.state.history;
    assert_eq!(h.len(), 6);
    assert!(h[3].val_mse < 0.8 * h[0].val_mse, "validation MSE must fall: {h:?}");
    assert!(h[3].train_loss < h[0].train_loss);
    // Untying keeps the function, so fine-tuning starts where tied training ended and improves.
    assert!(h[5].val_mse < h[3].val_mse, "{h:?}");
    // Predicting the mean pixel scores about 0.1 on MNIST; 6 epochs on 1,200 images beat it.
    assert!(m.test_mse < 0.07, "test MSE {}", m.test_mse);
    assert!(m.finished);
    assert_eq!(m.epochs.get("tied").and_then(|v| v.as_u64()), Some(4));
    assert_eq!(m.epochs.get("finetune").and_then(|v| v.as_u64()), Some(2));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(METRICS)).unwrap()).unwrap();
    assert_eq!(json["variant"], "fc");
    assert_eq!(json["test_mse"].as_f64(), Some(h[5].val_mse));
    assert!(json["wall_seconds"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(dir.path().join(HISTORY)).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], "phase,epoch,train_loss,val_mse,lr,seconds");
    assert_eq!(lines.len(), 7);
    assert!(lines[5].starts_with("finetune,1,"));
    let state: State = checkpoint::load(&dir.path().join(CHECKPOINT)).unwrap();
    assert!(state.finished);
    same_weights(&state, &t.state);
}

#[test]
fn same_seed_and_threads_give_identical_runs() {
    let mut a = trainer(tiny(3, 2, 2, 1));
    let mut b = trainer(tiny(3, 2, 2, 1));
    let ma = a.run(None, &mut Progress::Silent).unwrap();
    let mb = b.run(None, &mut Progress::Silent).unwrap();
    same_weights(&a.state, &b.state);
    assert_eq!(ma.test_mse.to_bits(), mb.test_mse.to_bits());
    let mut c = trainer(tiny(4, 2, 2, 1));
    c.run(None, &mut Progress::Silent).unwrap();
    assert_ne!(
        a.state.model.params[0].value, c.state.model.params[0].value,
        "another seed, another run"
    );
}

#[test]
fn one_and_two_threads_agree_to_rounding() {
    let mut a = trainer(tiny(5, 1, 2, 0));
    let mut b = trainer(tiny(5, 2, 2, 0));
    let ma = a.run(None, &mut Progress::Silent).unwrap();
    let mb = b.run(None, &mut Progress::Silent).unwrap();
    // Sharding changes only the order of float sums.
    assert!(
        (ma.test_mse - mb.test_mse).abs() < 1e-4 * ma.test_mse,
        "{} vs {}",
        ma.test_mse,
        mb.test_mse
    );
}

/// Stops after `stop` epochs (as a kill after that checkpoint would), reloads the checkpoint
/// from disk and finishes; the result must equal the uninterrupted run bit for bit.
fn resume_after(stop: usize, reference: &Trainer) {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(tiny(1, 2, 3, 2));
    for _ in 0..stop {
        t.next_epoch(&mut Progress::Silent).unwrap().unwrap();
        t.save(dir.path()).unwrap();
    }
    // Work done after the last checkpoint and lost in the "kill".
    t.next_epoch(&mut Progress::Silent).unwrap();
    drop(t);
    let state: State = checkpoint::load(&dir.path().join(CHECKPOINT)).unwrap();
    assert_eq!(state.history.len(), stop);
    let mut resumed = Trainer::new(state, mnist()).unwrap();
    resumed.run(Some(dir.path()), &mut Progress::Silent).unwrap();
    same_weights(&resumed.state, &reference.state);
    let val = |t: &Trainer| t.state.history.iter().map(|r| r.val_mse.to_bits()).collect::<Vec<_>>();
    assert_eq!(val(&resumed), val(reference), "history after resuming at {stop}");
    assert_eq!(resumed.state.adam.step, reference.state.adam.step);
    assert_eq!(resumed.state.plateau, reference.state.plateau);
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let mut reference = trainer(tiny(1, 2, 3, 2));
    reference.run(None, &mut Progress::Silent).unwrap();
    assert_eq!(reference.state.history.len(), 5);
    // Inside the tied phase, at the phase boundary (before untying), inside fine-tuning.
    for stop in [1, 3, 4] {
        resume_after(stop, &reference);
    }
}

#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(tiny(2, 2, 5, 0));
    t.next_epoch(&mut Progress::Silent).unwrap().unwrap();
    t.save(dir.path()).unwrap();
    let good = std::fs::read(dir.path().join(CHECKPOINT)).unwrap();
    // Poison one weight: the next forward pass yields NaN.
    t.state.model.params[0].value[[0, 0]] = f32::NAN;
    let err = t.run(Some(dir.path()), &mut Progress::Silent).unwrap_err();
    match &err {
        TrainError::Diverged {
            variant,
            what,
            value,
            phase,
            epoch,
        } => {
            assert_eq!(variant, "fc");
            assert_eq!(what, "training loss");
            assert!(value.is_nan());
            assert_eq!((phase.as_str(), *epoch), ("tied", 2));
        }
        other => panic!("expected a divergence, got {other}"),
    }
    assert!(err.to_string().contains("diverged"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(CHECKPOINT)).unwrap(),
        good,
        "the checkpoint is untouched"
    );
    assert!(!dir.path().join(METRICS).exists());
}

#[test]
fn tutorial_stop_rule_ends_a_phase_once_lr_is_below_1e_5() {
    // patience 0 and a threshold no improvement can meet: every epoch is bad and lowers the lr.
    // Epochs train at 1e-3, 1e-4 and 1e-5 (as f64 1.0000000000000002e-5, not below the stop
    // rate); the third lowers it to 1e-6 and the phase ends, as the tutorial's loop does.
    let mut c = tiny(0, 1, 50, 0);
    c.plateau.patience = 0;
    c.plateau.threshold = 1.0;
    let mut t = trainer(c);
    t.run(None, &mut Progress::Silent).unwrap();
    let lrs: Vec<f64> = t.state.history.iter().map(|r| r.lr).collect();
    assert_eq!(lrs.len(), 3, "{lrs:?}");
    assert!(lrs[2] >= 1e-5 && lrs[2] < 1.1e-5, "{lrs:?}");
    assert!(t.state.adam.lr < 1e-5);
    // The fine-tuning phase, capped at 0 epochs, was skipped: the model is still tied.
    assert_eq!(t.state.model.params.len(), 3);
}

#[test]
fn a_checkpoint_of_the_previous_format_gets_a_clear_error() {
    // Version 4 had no architecture in its configuration; its runs are refused by version, not
    // misread.
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(tiny(0, 1, 1, 0));
    t.run(Some(dir.path()), &mut Progress::Silent).unwrap();
    let path = dir.path().join(CHECKPOINT);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(checkpoint::VERSION, 5);
    let mut old = bytes[..bytes.len() - 4].to_vec();
    old[8..12].copy_from_slice(&4u32.to_le_bytes());
    let crc = crc32fast::hash(&old);
    old.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &old).unwrap();
    let e = checkpoint::load::<State>(&path).unwrap_err();
    assert!(
        matches!(e, checkpoint::CheckpointError::Version { found: 4, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("checkpoint format version 4, this trainer reads version 5"),
        "{e}"
    );
}
