//! Runs the firmware under `qemu-system-arm -machine mps2-an386` (Cortex-M4), or `-machine
//! microbit` (Cortex-M0) for the firmware built for it, with a time limit.

use crate::firmware::Board;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// SysTick's clock on mps2-an386: the 25 MHz core clock, 40 ns per tick.
pub const TICK_NS: u64 = 40;

/// SysTick's clock on the microbit: the nRF51's 16 MHz core clock (HCLK), 62.5 ns per tick.
pub const MICROBIT_TICK_NS: f64 = 62.5;

/// Nanoseconds per SysTick tick of `board` under QEMU: [`TICK_NS`] on mps2-an386,
/// [`MICROBIT_TICK_NS`] on the microbit (the nRF52840-DK runs on no QEMU machine: mps2-an386's).
pub fn tick_ns(board: Board) -> f64 {
    match board {
        Board::Qemu | Board::Nrf52840 => TICK_NS as f64,
        Board::Microbit => MICROBIT_TICK_NS,
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Run {
    /// QEMU's exit status: the firmware's semihosting exit code.
    pub status: ExitStatus,
    /// What QEMU and the firmware printed (semihosting console output goes to stdout or stderr
    /// depending on the QEMU version; both are kept).
    pub stdout: String,
    /// See `stdout`.
    pub stderr: String,
    /// Wall time of the run.
    pub wall: Duration,
}

impl Run {
    /// stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Options of one QEMU run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `-icount shift=N,sleep=off`: each instruction takes 2^N ns of virtual time, so SysTick
    /// counts instructions (see [`instructions`]). `None`: free-running, faster.
    pub icount_shift: Option<u32>,
    /// Kill QEMU after this long.
    pub timeout: Duration,
}

/// Instructions in `ticks` SysTick ticks of a run on mps2-an386 with `-icount shift=shift`:
/// `ticks * 40 / 2^shift`.
pub fn instructions(ticks: f64, shift: u32) -> f64 {
    instructions_on(Board::Qemu, ticks, shift)
}

/// Instructions in `ticks` SysTick ticks of a run on `board` with `-icount shift=shift`:
/// `ticks * tick_ns / 2^shift` ([`tick_ns`]).
pub fn instructions_on(board: Board, ticks: f64, shift: u32) -> f64 {
    ticks * tick_ns(board) / f64::from(1u32 << shift)
}

/// Runs `elf`, a firmware for mps2-an386, with the semihosting command line `args` (the
/// firmware's `argv[1..]`); relative file names are taken from `dir`.
///
/// # Errors
/// When QEMU cannot be started (is `qemu-system-arm` installed?) or runs out of time (it is
/// killed then). A run that ends with a failure status is not an error here: see
/// [`Run::status`].
pub fn run(elf: &Path, args: &[&str], dir: &Path, options: Options) -> Result<Run> {
    run_on(Board::Qemu, elf, args, dir, options)
}

/// The QEMU machine (and CPU, where the machine has a choice) of `board`.
fn machine(board: Board) -> Result<&'static [&'static str]> {
    match board {
        Board::Qemu => Ok(&["-machine", "mps2-an386", "-cpu", "cortex-m4"]),
        Board::Microbit => Ok(&["-machine", "microbit"]),
        Board::Nrf52840 => bail!("the nRF52840-DK's firmware runs on the board (cargo board), not under QEMU"),
    }
}

/// [`run`] for the firmware built for `board`, on its QEMU machine.
///
/// # Errors
/// As [`run`]; and a board that QEMU does not run.
pub fn run_on(board: Board, elf: &Path, args: &[&str], dir: &Path, options: Options) -> Result<Run> {
    let machine = machine(board)?;
    // QEMU option values escape a comma by doubling it.
    let mut semihosting = String::from("enable=on,target=native,arg=firmware");
    for arg in args {
        semihosting.push_str(",arg=");
        semihosting.push_str(&arg.replace(',', ",,"));
    }
    let mut command = Command::new("qemu-system-arm");
    command
        .current_dir(dir)
        .args(machine)
        .args(["-nographic", "-monitor", "none"])
        .args(["-serial", "none", "-semihosting-config"])
        .arg(&semihosting);
    if let Some(shift) = options.icount_shift {
        command.args(["-icount", &format!("shift={shift},sleep=off")]);
    }
    command
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .context("starting qemu-system-arm (Debian: apt-get install qemu-system-arm)")?;
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > options.timeout {
            child.kill().context("killing QEMU")?;
            child.wait()?;
            let output = format!(
                "{}{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
            bail!(
                "QEMU running {} {args:?} did not finish within {:?} and was killed; it printed:\n{output}",
                elf.display(),
                options.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        wall: start.elapsed(),
    })
}
