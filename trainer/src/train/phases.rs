//! The phase machine: each phase starts (untie, grow, unfreeze; a fresh Adam and scheduler),
//! runs epochs until its cap or the stop rate, and hands over to the next; and the loop that
//! runs it to the end, telling an [`Observer`] as it goes.

use super::{EpochRecord, Metrics, Observer, TrainError, Trainer};
use crate::optim::adam::Adam;
use crate::optim::plateau::Plateau;
use std::path::Path;
use std::time::Instant;

impl Trainer {
    /// Runs the next epoch, starting the next phase first when the current one is over.
    /// Returns `None` once every phase is done.
    pub fn next_epoch(&mut self, observer: &mut dyn Observer) -> Result<Option<EpochRecord>, TrainError> {
        loop {
            let st = &mut self.state;
            let Some(spec) = st.config.phases.get(st.phase).cloned() else {
                st.finished = true;
                return Ok(None);
            };
            if !st.phase_started && spec.max_epochs == 0 {
                // A phase capped at 0 epochs is skipped whole: `--finetune-epochs 0` stays tied.
                st.phase += 1;
                continue;
            }
            if !st.phase_started {
                st.apply_phase_start(st.phase);
                st.adam = Adam::new(st.config.lr, st.model.params.iter().map(|p| p.value.dim()));
                st.plateau = Plateau::new(st.config.plateau);
                st.phase_started = true;
                st.epoch_in_phase = 0;
                self.rebuild_workers();
                observer.phase(&self.state.config.variant, &spec.name, spec.max_epochs, 0);
                continue;
            }
            if st.epoch_in_phase >= spec.max_epochs || st.adam.lr < st.config.stop_lr {
                st.phase += 1;
                st.phase_started = false;
                continue;
            }
            break;
        }
        let t0 = Instant::now();
        let lr = self.state.adam.lr;
        let train_loss = self.train_epoch()?;
        let val_mse = self.evaluate();
        if !val_mse.is_finite() {
            return Err(self.diverged("validation MSE", val_mse));
        }
        let st = &mut self.state;
        st.plateau.step(val_mse, &mut st.adam.lr);
        st.epoch_in_phase += 1;
        st.epochs_per_phase[st.phase] = st.epoch_in_phase;
        let record = EpochRecord {
            phase: st.config.phases[st.phase].name.clone(),
            epoch: st.epoch_in_phase,
            train_loss,
            val_mse,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        st.history.push(record.clone());
        Ok(Some(record))
    }

    /// Moves a run that has not started to the start of phase `phase` (from 0) without
    /// training: every earlier phase's start is applied to the model (a greedy stage grows the
    /// net, fine-tuning unties or unfreezes it), so the next epoch starts `phase` on the net a
    /// run would have, from other weights. `trainer bench --phase` times a phase so.
    pub fn skip_to_phase(&mut self, phase: usize) {
        let st = &mut self.state;
        for p in st.phase..phase {
            st.apply_phase_start(p);
        }
        st.phase = phase;
        st.phase_started = false;
    }

    /// Trains to the end, checkpointing into `dir` when given after every epoch and once more at
    /// the end, and telling `observer` of every phase and epoch.
    pub fn train(&mut self, dir: Option<&Path>, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let mut since = Instant::now();
        if self.state.phase_started && !self.state.finished {
            let spec = &self.state.config.phases[self.state.phase];
            observer.phase(
                &self.state.config.variant,
                &spec.name,
                spec.max_epochs,
                self.state.epoch_in_phase,
            );
        }
        while let Some(record) = self.next_epoch(observer)? {
            let max = self.state.config.phases[self.state.phase].max_epochs;
            observer.epoch(&self.state.config.variant, &record, max);
            self.state.elapsed_s += since.elapsed().as_secs_f64();
            since = Instant::now();
            if let Some(dir) = dir {
                self.save(dir)?;
            }
            if crate::interrupt::requested() {
                return Err(self.interrupted());
            }
        }
        observer.finish();
        self.state.elapsed_s += since.elapsed().as_secs_f64();
        if let Some(dir) = dir {
            self.save(dir)?;
        }
        Ok(())
    }

    /// Trains to the end as [`Trainer::train`], then evaluates and returns the metrics, also
    /// written to `dir` when given. Figures are drawn above the loop, by the experiments, from
    /// [`Trainer::test_report`].
    pub fn run(&mut self, dir: Option<&Path>, observer: &mut dyn Observer) -> Result<Metrics, TrainError> {
        self.train(dir, observer)?;
        let report = self.test_report();
        let metrics = self.metrics(&report);
        if let Some(dir) = dir {
            self.write_metrics(dir, &metrics)?;
        }
        Ok(metrics)
    }
}
