//! Ctrl-C during a run. The first one stops training at the next batch or between epochs: the
//! last finished epoch's checkpoint stays as it was written, and the command says how to
//! continue, with exit status 130 (the shell's for SIGINT). A second one ends the process at once,
//! which loses nothing either: every file is written under a temporary name and renamed.
//!
//! Only the `trainer` binary installs the handler ([`install`]); in the library and its tests
//! [`requested`] stays `false`.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of an interrupted run: 128 + SIGINT, as a shell reports a process Ctrl-C
/// ended.
pub const EXIT_STATUS: i32 = 130;

/// Set by the first Ctrl-C.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler: the first press asks the run to stop, a second exits at once.
///
/// # Errors
/// When the handler cannot be installed (another one is there already).
pub fn install() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_STATUS);
        }
        eprintln!("\nstopping at the next batch (Ctrl-C again to quit at once)");
    })
}

/// Whether Ctrl-C asked the run to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// What an interrupted command reports: the message, and the exit status [`EXIT_STATUS`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);
