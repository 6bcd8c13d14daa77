//! What the integration tests share: the `trainer` binary run as a user runs it, and model-file
//! bytes with another format version. (Each test binary uses part of it.)
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `trainer` binary with `args` in the trainer's directory.
pub fn trainer(args: &[&str]) -> Output {
    trainer_in(args, Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Runs the `trainer` binary with `args` in `cwd`.
pub fn trainer_in(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Everything the command printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Sets a model file's version field and fixes its checksum.
pub fn with_version(bytes: &mut [u8], version: u16) {
    bytes[4..6].copy_from_slice(&version.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = autoencoder_core::model::crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}
