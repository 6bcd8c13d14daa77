//! Builds the C API's programs: the C example firmware (`core-c/examples/qemu`, with its
//! Makefile and Debian's `gcc-arm-none-eabi`) for one model file, and host C programs
//! (`core-c/tests/c/`) linked with the host build of `libautoencoder.a`.
//!
//! The library is built by cargo in `target/c-api/` (apart from the host workspace's outputs,
//! whose build lock the running tests hold), one build at a time across processes.

use crate::check::takes_pixels;
use anyhow::{bail, Context, Result};
use autoencoder_core::Model;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// One build at a time within a process (across processes: a lock file).
static BUILDING: Mutex<()> = Mutex::new(());

/// The target directory of the library and the C programs.
pub fn c_target_dir() -> PathBuf {
    crate::target_dir().join("c-api")
}

/// `command`, run in `dir` with the environment of a fresh cargo (the one running the tests sets
/// variables meant for the host workspace); its output in the error when it fails.
fn run(mut command: Command, what: &str) -> Result<()> {
    crate::without_outer_cargo_env(&mut command);
    let output = command
        .output()
        .with_context(|| format!("{what}: cannot start {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Holds the build lock of `target/c-api` while `build` runs.
fn locked<T>(build: impl FnOnce() -> Result<T>) -> Result<T> {
    let _guard = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = c_target_dir();
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::File::create(dir.join("host-tests.lock"))?;
    lock.lock().context("locking target/c-api")?;
    build()
}

/// Builds the C example firmware for the model file `model` with its Makefile (which builds
/// `libautoencoder.a` for thumbv7em-none-eabihf first); returns its ELF. The Makefile's sizes
/// come from the model: its input length, code width and scratch, and whether it takes raw f32
/// samples (any model but an MNIST one, as the Rust firmware decides).
///
/// # Errors
/// The model does not load, or make, cargo or the compiler fail (their output is in the error).
pub fn build_example(model: &Path) -> Result<PathBuf> {
    let model = std::path::absolute(model)?;
    let blob = std::fs::read(&model).with_context(|| format!("{}", model.display()))?;
    let parsed = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let dir = c_target_dir();
    let elf = dir.join("elf").join(format!("{}.elf", crate::artifact_name(&model)));
    locked(|| {
        let mut make = Command::new("make");
        make.arg("--quiet")
            .arg("-C")
            .arg(crate::repo_root().join("core-c/examples/qemu"))
            .arg(format!("MODEL={}", model.display()))
            .arg(format!("INPUT={}", parsed.input_len()))
            .arg(format!("CODE={}", parsed.code_len()))
            .arg(format!("SCRATCH={}", parsed.scratch_len()))
            .arg(format!("FLOAT_INPUT={}", u8::from(!takes_pixels(&parsed))))
            .arg(format!("TARGET_DIR={}", dir.display()))
            .arg(format!("ELF={}", elf.display()))
            // The sizes are not prerequisites make can see: rebuild every time (seconds).
            .arg("--always-make");
        if let Some(cargo) = std::env::var_os("CARGO") {
            make.arg(format!("CARGO={}", cargo.to_string_lossy()));
        }
        run(make, &format!("building the C example for {}", model.display()))
    })?;
    Ok(elf)
}

/// Builds `libautoencoder.a` for the host (the `embedded` profile, as for firmware); returns
/// its path.
///
/// # Errors
/// When cargo fails.
pub fn build_host_library() -> Result<PathBuf> {
    let dir = c_target_dir();
    locked(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(crate::repo_root())
            .args(["build", "--quiet", "--locked", "-p", "core-c", "--profile", "embedded"])
            .arg("--target-dir")
            .arg(&dir);
        run(command, "building libautoencoder.a for the host")
    })?;
    Ok(dir.join("embedded/libautoencoder.a"))
}

/// Compiles the host C program of `sources` with gcc against `core-c/include/autoencoder.h`
/// and links it with the host `libautoencoder.a` (and the system libraries Rust's std needs);
/// returns the executable, named after the first source.
///
/// # Errors
/// When the library or the program does not build.
pub fn build_host_program(sources: &[PathBuf]) -> Result<PathBuf> {
    let library = build_host_library()?;
    let first = sources.first().context("no C source")?;
    let exe = c_target_dir().join("host").join(crate::artifact_name(first));
    std::fs::create_dir_all(exe.parent().expect("a directory"))?;
    let mut gcc = Command::new("gcc");
    gcc.args(["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(crate::repo_root().join("core-c/include"))
        .args(sources)
        .arg(&library)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    run(gcc, &format!("compiling {}", first.display()))?;
    Ok(exe)
}
