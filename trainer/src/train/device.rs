//! Epochs on a device ([`crate::gpu`]): the host shuffles as the CPU trainer does, draws the
//! denoising noise from the same generators, and hands the device one batch after another;
//! the weights and Adam's moments come back once the epoch ends, before validation and the
//! checkpoint read them.

use super::{TrainError, Trainer};
use crate::gpu::session::Target;
use crate::gpu::{Device, Session};
use crate::noise;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rayon::prelude::*;

impl Trainer {
    /// Trains on `device` from the next epoch on; `Device::Cpu` goes back to the CPU trainer.
    /// Fails at once, naming the cause, when the device cannot be used: it never falls back to
    /// the CPU.
    pub fn set_device(&mut self, device: Device) -> Result<(), TrainError> {
        self.device = crate::gpu::open(device)?;
        Ok(())
    }

    /// Trains on the device of `session` from the next epoch on (the tests' reference device).
    pub fn set_session(&mut self, session: Session) {
        self.device = Some(session);
    }

    /// Where the steps run, as the log and `metrics.json` name it.
    pub fn device_name(&self) -> String {
        self.device
            .as_ref()
            .map_or_else(|| "cpu".into(), |d| d.name().to_string())
    }

    /// Puts the model's buffers and the training samples on the device unless they are there,
    /// and the host's weights and moments in any case (they may have changed since).
    fn device_ready(&mut self) -> Result<&mut Session, TrainError> {
        let session = self.device.as_mut().expect("a device is set");
        let st = &self.state;
        if session.is_loaded() {
            session.put(&st.model, &st.adam)?;
        } else {
            let noisy = st.config.noise.is_some();
            let (train, width) = (self.train.values(), self.train.features());
            session.load(&st.model, &st.adam, st.config.batch_size, noisy, train, width)?;
        }
        Ok(session)
    }

    /// The corrupted and the clean rows of samples `batch`, which start at position `first` of
    /// epoch `epoch`: the noise the CPU trainer draws for them.
    fn noisy_rows(&self, batch: &[u32], epoch: u64, first: usize, seed: u64) -> Option<(Vec<f32>, Vec<f32>)> {
        let noise = self.state.config.noise?;
        let width = self.train.features();
        let mut input = vec![0f32; batch.len() * width];
        let mut clean = vec![0f32; batch.len() * width];
        let train = &self.train;
        self.pool.install(|| {
            input
                .par_chunks_mut(width)
                .zip(clean.par_chunks_mut(width))
                .zip(batch.par_iter())
                .enumerate()
                .for_each(|(r, ((x, c), &i))| {
                    c.copy_from_slice(train.row(i as usize));
                    x.copy_from_slice(c);
                    noise.apply(x, &mut noise::rng(seed, noise::key(epoch, first + r)));
                });
        });
        Some((input, clean))
    }

    /// One pass over the shuffled training set on the device; the mean loss per sample.
    pub(super) fn device_epoch(&mut self) -> Result<f64, TrainError> {
        let n = self.train.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut self.state.rng);
        let epoch = self.state.history.len() as u64;
        let bs = self.state.config.batch_size;
        self.device_ready()?.begin_epoch(&order)?;
        let mut batches = 0;
        for (b, batch) in order.chunks(bs).enumerate() {
            if crate::interrupt::requested() {
                return Err(self.interrupted());
            }
            let noisy = self.noisy_rows(batch, epoch, b * bs, self.state.config.seed);
            let step = self.state.adam.advance();
            let st = &self.state;
            let session = self.device.as_mut().expect("a device is set");
            let target = noisy.as_ref().map_or(Target::Input, |(x, c)| Target::Noisy(x, c));
            session.step(
                &st.model,
                &(&st.config).into(),
                b,
                b * bs,
                batch.len(),
                target,
                Some(step),
            )?;
            batches += 1;
        }
        let session = self.device.as_mut().expect("a device is set");
        let losses = session.losses(batches)?;
        session.store(&mut self.state.model, &mut self.state.adam)?;
        let mut total = 0.0;
        for (batch, &loss) in order.chunks(bs).zip(&losses) {
            if !loss.is_finite() {
                return Err(self.diverged("training loss", f64::from(loss)));
            }
            total += f64::from(loss) * batch.len() as f64;
        }
        Ok(total / n as f64)
    }

    /// [`Trainer::batch_gradients`] on the device.
    pub(super) fn device_batch_gradients(&mut self, batch: &[u32]) -> Result<(f64, Vec<Array2<f32>>), TrainError> {
        let noisy = self.noisy_rows(batch, 0, 0, self.state.config.seed);
        self.device_ready()?.begin_epoch(batch)?;
        let st = &self.state;
        let session = self.device.as_mut().expect("a device is set");
        let target = noisy.as_ref().map_or(Target::Input, |(x, c)| Target::Noisy(x, c));
        session.step(&st.model, &(&st.config).into(), 0, 0, batch.len(), target, None)?;
        let loss = session.losses(1)?[0];
        Ok((f64::from(loss), session.gradients(&st.model)?))
    }
}
