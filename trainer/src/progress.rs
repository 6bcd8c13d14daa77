//! Progress: a bar on a terminal, one plain line per epoch otherwise, or nothing; an
//! [`Observer`] of the training loop.

use crate::epoch::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Where progress goes.
pub enum Progress {
    /// An indicatif bar per phase (stdout is a terminal).
    Bar(Option<ProgressBar>),
    /// One line per epoch on stdout.
    Lines,
    /// Nothing (tests, benchmarks).
    Silent,
}

impl Progress {
    /// A bar when stdout is a terminal, plain lines otherwise.
    pub fn auto() -> Progress {
        if std::io::stdout().is_terminal() {
            Progress::Bar(None)
        } else {
            Progress::Lines
        }
    }

    /// A message between epochs.
    pub fn say(&self, msg: &str) {
        match self {
            Progress::Bar(Some(b)) => b.println(msg),
            Progress::Bar(None) | Progress::Lines => println!("{msg}"),
            Progress::Silent => {}
        }
    }
}

impl Observer for Progress {
    /// A phase begins (or resumes with `done` epochs behind it).
    fn phase(&mut self, variant: &str, phase: &str, max_epochs: usize, done: usize) {
        match self {
            Progress::Bar(bar) => {
                if let Some(old) = bar.take() {
                    old.finish();
                    println!();
                }
                let b = ProgressBar::new(max_epochs as u64);
                b.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:20}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                b.set_prefix(format!("{variant} {phase}"));
                b.set_position(done as u64);
                *bar = Some(b);
            }
            Progress::Lines => println!("{variant}: phase {phase}, up to {max_epochs} epochs, {done} done"),
            Progress::Silent => {}
        }
    }

    /// An epoch ended.
    fn epoch(&mut self, variant: &str, r: &EpochRecord, max_epochs: usize) {
        let line = format!(
            "train {:.6} val {:.6} lr {:.0e} {:.2}s",
            r.train_loss, r.val_mse, r.lr, r.seconds
        );
        match self {
            Progress::Bar(Some(b)) => {
                b.set_position(r.epoch as u64);
                b.set_message(line);
            }
            Progress::Bar(None) | Progress::Silent => {}
            Progress::Lines => println!("{variant} {} epoch {}/{max_epochs}: {line}", r.phase, r.epoch),
        }
    }

    /// Closes any bar.
    fn finish(&mut self) {
        if let Progress::Bar(bar) = self {
            if let Some(b) = bar.take() {
                // indicatif leaves the cursor on the bar's line; end it before later output.
                b.finish();
                println!();
            }
        }
    }
}
