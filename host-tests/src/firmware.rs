//! Builds the firmware (`firmware/`, its own cargo workspace) for one model file.
//!
//! Builds go to `target/firmware/` (apart from the host workspace's own outputs) and run one at
//! a time; each model's ELF is copied to `target/firmware/elf/` so that the next build does not
//! overwrite it while QEMU runs it. Within one process a model file is built once per board and
//! kernels (the default DSP path, or the `portable` feature). The Cortex-M4 boards are built for
//! `thumbv7em-none-eabihf`, QEMU's microbit (Cortex-M0) for `thumbv6m-none-eabi`.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// Which board the firmware is built for (its cargo feature and target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Board {
    /// QEMU's mps2-an386, a Cortex-M4 (default feature `qemu`).
    Qemu,
    /// The nRF52840-DK, a Cortex-M4F (feature `board-nrf52840`).
    Nrf52840,
    /// QEMU's microbit, an nRF51822: a Cortex-M0 with 256 KiB of flash and 16 KiB of RAM (default
    /// feature `qemu`, target `thumbv6m-none-eabi`). The core's portable kernels only.
    Microbit,
}

impl Board {
    /// The suffix of its ELF in `target/firmware/elf/`.
    fn suffix(self) -> &'static str {
        match self {
            Board::Qemu => "qemu",
            Board::Nrf52840 => "nrf52840",
            Board::Microbit => "microbit",
        }
    }

    /// The target the firmware is built for.
    pub fn target(self) -> &'static str {
        match self {
            Board::Qemu | Board::Nrf52840 => "thumbv7em-none-eabihf",
            Board::Microbit => "thumbv6m-none-eabi",
        }
    }

    /// The kernels of the default build: the DSP path on a Cortex-M4, the portable kernels on the
    /// Cortex-M0, which has no other.
    pub fn default_kernels(self) -> Kernels {
        match self {
            Board::Qemu | Board::Nrf52840 => Kernels::Dsp,
            Board::Microbit => Kernels::Portable,
        }
    }
}

/// Flash of QEMU's microbit (firmware/memory/qemu-microbit.x).
pub const MICROBIT_FLASH: u64 = 256 * 1024;

/// RAM of QEMU's microbit, for the statics and the stack together.
pub const MICROBIT_RAM: u64 = 16 * 1024;

/// Flash the microbit's firmware takes beyond its model, at most: its code, read-only data and
/// built-in samples. Measured: 46,207 to 46,225 bytes with an MNIST model, 50,558 with the float
/// model `vibration-anomaly` (its float path and three samples).
pub const MICROBIT_FIRMWARE_FLASH: u64 = 52 * 1024;

/// RAM the microbit's firmware needs beside the model's scratch, at most: its other statics
/// (8 bytes) and the stack's peak. Measured: 11,980 bytes while a model loads, 12,500 to 12,616
/// while an MNIST model streams samples (it varies with the depth at which SysTick's interrupt
/// stacks its frame), 9,316 for the float model `vibration-anomaly`.
pub const MICROBIT_STACK: u64 = 13 * 1024;

/// Whether a model of `bytes` bytes whose scratch is `scratch` bytes fits QEMU's microbit: the
/// model and [`MICROBIT_FIRMWARE_FLASH`] within its flash, the scratch and [`MICROBIT_STACK`]
/// within its RAM. The error names the memory that is short, with the sum against the chip's.
///
/// # Errors
/// The model does not fit.
pub fn microbit_fit(bytes: u64, scratch: u64) -> std::result::Result<(), String> {
    let flash = bytes + MICROBIT_FIRMWARE_FLASH;
    let ram = scratch + MICROBIT_STACK;
    if flash > MICROBIT_FLASH {
        return Err(format!(
            "flash: the model's {bytes} bytes and {MICROBIT_FIRMWARE_FLASH} for the firmware are {flash}, \
             over the microbit's {MICROBIT_FLASH}"
        ));
    }
    if ram > MICROBIT_RAM {
        return Err(format!(
            "RAM: the model's scratch of {scratch} bytes and {MICROBIT_STACK} for the stack and \
             statics are {ram}, over the microbit's {MICROBIT_RAM}"
        ));
    }
    Ok(())
}

/// Which kernels the core runs in the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernels {
    /// The default build: the fully connected layers' DSP path of the Cortex-M4.
    Dsp,
    /// The firmware's `portable` feature: the core's portable kernels, as on a Cortex-M0.
    Portable,
}

impl Kernels {
    /// Both, the default first.
    pub const BOTH: [Kernels; 2] = [Kernels::Dsp, Kernels::Portable];

    /// What the report calls them.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Dsp => "DSP",
            Kernels::Portable => "portable",
        }
    }
}

/// What a firmware is built for: a model file, a board, the kernels.
type Build = (PathBuf, Board, Kernels);

/// ELFs built by this process.
static BUILT: Mutex<Option<HashMap<Build, PathBuf>>> = Mutex::new(None);

/// The firmware's target directory.
pub fn firmware_target_dir() -> PathBuf {
    crate::target_dir().join("firmware")
}

/// The firmware links through `flip-link` (firmware/.cargo/config.toml); without it cargo's
/// error would be a linker's that is not found, deep in the build's output.
fn require_flip_link() -> Result<()> {
    match Command::new("flip-link").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "the firmware links with flip-link, which cannot be run ({e}): install it with \
             `cargo install flip-link --locked` (./check.sh does)"
        ),
    }
}

/// Builds the release firmware with the model file `model` for `board`, with its default kernels
/// ([`Board::default_kernels`]); returns its ELF.
///
/// # Errors
/// When cargo fails (its output is in the error): a model the build script rejects, a board
/// whose flash cannot hold the model, a compile error.
pub fn build(model: &Path, board: Board) -> Result<PathBuf> {
    build_with(model, board, board.default_kernels())
}

/// [`build`] with the chosen kernels: `Kernels::Portable` adds the firmware's `portable`
/// feature on a Cortex-M4 board (on the microbit the portable kernels are the only ones).
///
/// # Errors
/// As [`build`]; and the DSP path asked of the microbit.
pub fn build_with(model: &Path, board: Board, kernels: Kernels) -> Result<PathBuf> {
    if board == Board::Microbit && kernels == Kernels::Dsp {
        bail!("the microbit's Cortex-M0 has no DSP instructions: build it with the portable kernels");
    }
    let model = std::path::absolute(model).with_context(|| format!("{}", model.display()))?;
    // One build at a time: they share the target directory and `AE_MODEL` changes between them.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(elf) = built.get(&(model.clone(), board, kernels)) {
        return Ok(elf.clone());
    }
    require_flip_link()?;
    let root = crate::repo_root();
    let target = firmware_target_dir();
    // And one at a time across processes (the tests and the report, say), until the ELF is copied.
    std::fs::create_dir_all(&target)?;
    let lock = std::fs::File::create(target.join("host-tests.lock"))?;
    lock.lock().context("locking target/firmware")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root.join("firmware"))
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            board.target(),
            "--target-dir",
        ])
        .arg(&target)
        .env("AE_MODEL", &model);
    // The firmware has its own target directory and target.
    crate::without_outer_cargo_env(&mut command);
    let mut features = Vec::new();
    if board == Board::Nrf52840 {
        command.arg("--no-default-features");
        features.push("board-nrf52840");
    }
    // The microbit's build has no DSP path to turn off.
    if kernels == Kernels::Portable && board != Board::Microbit {
        features.push("portable");
    }
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command.output().context("running cargo to build the firmware")?;
    if !output.status.success() {
        bail!(
            "building the firmware for {} ({board:?}, {kernels:?}) failed:\n{}",
            model.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let elf = target.join(board.target()).join("release/firmware");
    let dir = target.join("elf");
    std::fs::create_dir_all(&dir)?;
    let kernels_suffix = match kernels {
        Kernels::Portable if board != Board::Microbit => "-portable",
        _ => "",
    };
    let copy = dir.join(format!(
        "{}-{}{kernels_suffix}.elf",
        crate::artifact_name(&model),
        board.suffix()
    ));
    std::fs::copy(&elf, &copy).with_context(|| format!("copying {} to {}", elf.display(), copy.display()))?;
    drop(lock);
    // The firmware embeds the model file verbatim: check that this is the build of this model.
    let blob = std::fs::read(&model)?;
    let image = std::fs::read(&copy)?;
    let head = &blob[..blob.len().min(64)];
    let embedded = image
        .windows(head.len())
        .enumerate()
        .filter(|(_, w)| *w == head)
        .any(|(at, _)| image.get(at..at + blob.len()) == Some(&blob[..]));
    if !embedded {
        bail!(
            "{} does not embed {}: was it rebuilt meanwhile?",
            copy.display(),
            model.display()
        );
    }
    built.insert((model, board, kernels), copy.clone());
    Ok(copy)
}
