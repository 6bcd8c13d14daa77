//! The firmware under QEMU: its mps2-an386 (Cortex-M4F) or, built for `thumbv6m-none-eabi`, its
//! microbit (nRF51822: Cortex-M0, 256 KiB of flash, 16 KiB of RAM). Host files and the exit status
//! through semihosting, time from SysTick.
//!
//! Command line (semihosting; QEMU's `-append "..."` or `-semihosting-config ...,arg=...`):
//!
//! - no arguments: the self-test. Encode, reconstruct and score the built-in test samples,
//!   compare with the outputs build.rs computed on the host, print the SysTick ticks, the
//!   verdicts, the scores and flags, and the first codes.
//! - `--samples IN --out OUT` (`--images` is the same as `--samples`): stream mode. `IN` holds
//!   samples of the model's N values one after the other, row major: N bytes each (u8 pixels,
//!   for a model whose pixels quantize as `p - 128`, the MNIST models), or 4 N bytes (f32
//!   little-endian, for any other model). For each, one record goes to `OUT`: the code (`CODE`
//!   bytes, int8), the reconstruction, the anomaly score (u32 little-endian), the flag (one
//!   byte: 1 anomaly, 0 normal, 0xFF the model holds no threshold), then the SysTick ticks of
//!   the three steps, encode, reconstruction and score (u32 little-endian each). Pixels: the
//!   denoised image (N bytes, `denoise`), the score `anomaly_score` of the codes `p - 128`.
//!   Floats: the int8 output (N bytes, `decode` of the code) and the same output dequantized
//!   and unscaled into raw units (N f32 little-endian, as `decode_f32`), the score
//!   `anomaly_score_f32`. A NaN in a float sample ends the run with the core's `NotANumber`
//!   error and status 3.
//! - `--model FILE` (with `--samples` and `--out`): run the model in `FILE` instead of the
//!   built-in one (it must have the same input length and code width, take the same kind of
//!   samples and fit the same scratch). The file is loaded into RAM the linker leaves empty
//!   (memory/qemu-mps2-an386.x); a model the core rejects is reported, with the core's error,
//!   and ends the run with status 3. Not on the microbit, whose RAM has no room for a model
//!   (status 2).
//! - `--calibrate N`: time a loop of exactly `2 N` instructions and print the ticks, to
//!   check how ticks convert to instructions under `-icount`.
//! - `--panic`: panic, to check that a panic ends the run with a failure status.
//!
//! SysTick runs from the core clock: 25 MHz on mps2-an386 (40 ns a tick), 16 MHz on the microbit
//! (the nRF51's HCLK, 62.5 ns a tick). Under `-icount shift=S,sleep=off` QEMU advances virtual
//! time by exactly 2^S ns per instruction, so instructions = ticks × 40 / 2^S, or ticks × 62.5 /
//! 2^S on the microbit (tested by host-tests with `--calibrate`). The 24-bit counter's wraps are
//! counted in its interrupt.
//!
//! - `--overflow-stack`: recurse until the stack overflows, to check that an overflow faults
//!   before it reaches the statics (src/fault.rs).
//!
//! A self-test or a stream ends with one more line, the stack's peaks while the model loaded and
//! while the samples ran, and the room the stack has below the statics (`stack peak: loading L
//! bytes, running R bytes, of F bytes`; see src/stack.rs).
//!
//! A HardFault prints one line and ends the run with status 134: `hard fault at pc P`, or `stack
//! overflow: sp S, below the stack's room (B..T); statics intact` (or `statics overwritten`).
//!
//! Exit status: 0 success, 1 a self-test mismatch, 2 a bad command line or host file, 3 a model
//! the core rejects, 101 a panic, 134 a hard fault (a stack overflow among them).

use crate::fault::{self, Fault};
use crate::{
    flag_name, matches_host, measure, test_sample, Ae, Clock, Measured, Raw, Sample, CODE, FLOAT_INPUT, INPUT, MODEL,
    MODEL_NAME, OUTPUT_BYTES, SAMPLES, SAMPLE_BYTES, SCRATCH,
};
use autoencoder_core::{Autoencoder, Model};
use core::ffi::CStr;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use semihosting::fs::File;
use semihosting::io::{Read, Write};
use semihosting::{eprintln, print, println, process};

/// Exit status of a self-test that found a mismatch.
const EXIT_MISMATCH: i32 = 1;
/// Exit status of a bad command line or a host file that cannot be used.
const EXIT_USAGE: i32 = 2;
/// Exit status of a model the core rejects.
const EXIT_MODEL: i32 = 3;

/// SysTick's reload value: the whole 24-bit range.
const RELOAD: u32 = 0x00FF_FFFF;

/// Bytes of room for the command line: 1 KiB, and 256 bytes on the Cortex-M0 (16 KiB of RAM), where
/// `--model FILE`, which can name a long path, has no RAM to load into.
const ARGS_BYTES: usize = if cfg!(armv6m) { 256 } else { 1024 };

/// Bytes of one output record in stream mode: code, reconstruction, score (4), flag (1), and
/// the ticks of the three steps (4 each).
const RECORD: usize = CODE + OUTPUT_BYTES + 5 + 12;

/// What a sample is called in messages: "image" (u8 pixels) or "sample" (f32 values).
const NOUN: &str = <Raw as Sample>::NOUN;

/// SysTick wraps so far.
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Counts a wrap. A load and a store rather than `fetch_add`, which Armv6-M (the Cortex-M0) does
/// not have: this handler is the only writer, and it does not preempt itself.
#[exception]
fn SysTick() {
    WRAPS.store(WRAPS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Prints the fault (src/fault.rs calls it on a fresh stack) and ends the run with status 134.
pub fn hard_fault(fault: Fault) -> ! {
    match fault {
        Fault::Other { pc } => eprintln!("hard fault at pc {pc:#010x}"),
        Fault::StackOverflow { sp } => {
            let (bottom, top) = crate::stack::bounds();
            eprintln!(
                "stack overflow: sp {sp:#010x}, below the stack's room ({bottom:#010x}..{top:#010x}); statics {}",
                if fault::statics_intact() {
                    "intact"
                } else {
                    "overwritten"
                }
            );
        }
    }
    process::exit(134)
}

/// SysTick from the core clock, extended to 64 bits by counting wraps.
struct SysTickClock;

impl SysTickClock {
    fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock
    }
}

impl Clock for SysTickClock {
    fn now(&mut self) -> u64 {
        cortex_m::interrupt::free(|_| {
            let mut wraps = WRAPS.load(Ordering::Relaxed);
            let mut current = SYST::get_current();
            // A wrap whose interrupt is still pending: count it and read the counter again.
            if SCB::is_pendst_pending() {
                wraps += 1;
                current = SYST::get_current();
            }
            (u64::from(wraps) << 24) + u64::from(RELOAD - current)
        })
    }
}

/// What the command line asks for.
#[derive(Default)]
struct Options<'a> {
    model: Option<&'a str>,
    samples: Option<&'a str>,
    out: Option<&'a str>,
    calibrate: Option<u32>,
}

pub fn main(scratch: &'static mut [i8]) -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap_or_else(|| fail(EXIT_USAGE, format_args!("no peripherals")));
    let mut clock = SysTickClock::start(peripherals.SYST);

    let args = semihosting::experimental::env::args::<ARGS_BYTES>()
        .unwrap_or_else(|e| fail(EXIT_USAGE, format_args!("cannot read the command line ({})", errno(&e))));
    let mut options = Options::default();
    let mut words = (&args).skip(1);
    while let Some(word) = words.next() {
        let word = word.unwrap_or_else(|_| fail(EXIT_USAGE, format_args!("the command line is not UTF-8")));
        let mut value = || match words.next() {
            Some(Ok(value)) => value,
            _ => fail(EXIT_USAGE, format_args!("{word} needs a value")),
        };
        match word {
            "--model" => options.model = Some(value()),
            "--samples" | "--images" => options.samples = Some(value()),
            "--out" => options.out = Some(value()),
            "--panic" => panic!("--panic"),
            "--overflow-stack" => {
                fault::overflow_stack(0);
            }
            "--calibrate" => {
                let n = value();
                options.calibrate = Some(
                    n.parse()
                        .unwrap_or_else(|_| fail(EXIT_USAGE, format_args!("--calibrate {n}: not a count"))),
                );
            }
            _ => fail(
                EXIT_USAGE,
                format_args!(
                    "unknown argument {word}; usage: [--model FILE] [--samples IN --out OUT] [--calibrate N] [--panic] [--overflow-stack]"
                ),
            ),
        }
    }

    if let Some(iterations) = options.calibrate {
        calibrate(iterations, &mut clock);
    }

    let files = match (options.samples, options.out) {
        (Some(samples), Some(out)) => Some((samples, out)),
        (None, None) if options.model.is_none() => None,
        (None, None) => fail(EXIT_USAGE, format_args!("--model runs with --samples and --out")),
        _ => fail(EXIT_USAGE, format_args!("--samples and --out go together")),
    };
    let (blob, source) = match options.model {
        Some(path) => (load(path), path),
        None => (MODEL, "(built in)"),
    };
    let mut ae = runner(blob, scratch, source);
    let loading = crate::stack::peak_then_repaint();
    if !Raw::takes(ae.model()) {
        fail(
            EXIT_MODEL,
            format_args!("model {source}: takes f32 values; this firmware was built for u8 pixels"),
        );
    }
    match files {
        Some((samples, out)) => stream(&mut ae, samples, out, &mut clock, loading),
        None => self_test(&mut ae, &mut clock, loading),
    }
}

/// Loads and checks a model, and binds it to the scratch; a model the core rejects ends the run.
/// Never inlined: loading copies the model's description (2.6 KB, most of it the layer table) a
/// few times on the way, 8.5 KB of stack in this function's frame that is free again before the
/// samples run. Inlined into [`main`], with the `Result` moved out of it, it made `main`'s own
/// frame 17 KB for the whole run, more than the Cortex-M0's 16 KiB of RAM under QEMU's microbit.
#[inline(never)]
fn runner(blob: &'static [u8], scratch: &'static mut [i8], source: &str) -> Ae {
    Model::from_bytes(blob)
        .and_then(|model| Autoencoder::new(model, scratch))
        .unwrap_or_else(|e| fail(EXIT_MODEL, format_args!("model {source}: {e}")))
}

/// One line: the stack's peaks while loading (`loading`, see
/// [`crate::stack::peak_then_repaint`]) and since, and the room it has.
fn print_stack(loading: u32) {
    println!(
        "stack peak: loading {loading} bytes, running {} bytes, of {} bytes",
        crate::stack::peak(),
        crate::stack::room()
    );
}

/// The self-test on the built-in samples; exits. `loading`: see [`print_stack`].
fn self_test(ae: &mut Ae, clock: &mut SysTickClock, loading: u32) -> ! {
    println!(
        "model {MODEL_NAME}: {} bytes, {INPUT} {} in, code {CODE}, scratch {SCRATCH} bytes; {SAMPLES} built-in test {NOUN}s",
        MODEL.len(),
        if FLOAT_INPUT { "f32 values" } else { "pixels" },
    );
    match ae.model().threshold() {
        Some(threshold) => println!("anomaly threshold: a score above {threshold}"),
        None => println!("anomaly threshold: none (scores only)"),
    }
    let mut failed = 0;
    let mut measured = Measured::default();
    for index in 0..SAMPLES {
        measure(ae, test_sample(index), clock, &mut measured).unwrap_or_else(|e| fail(EXIT_MODEL, format_args!("{e}")));
        let verdicts = matches_host(index, &measured);
        if !verdicts.all() {
            failed += 1;
        }
        print!(
            "{NOUN} {index}: encode {} ticks, {} {} ticks, score {} ticks; code {}, reconstruction {}; \
             score {} {}, {}; code",
            measured.encode_time,
            <Raw as Sample>::SECOND,
            measured.reconstruct_time,
            measured.score_time,
            verdict(verdicts.code),
            verdict(verdicts.output),
            measured.score,
            verdict(verdicts.score),
            flag_name(measured.flag),
        );
        for c in measured.code.iter().take(8) {
            print!(" {c}");
        }
        println!("{}", if CODE > 8 { " ..." } else { "" });
    }
    print_stack(loading);
    if failed > 0 {
        fail(
            EXIT_MISMATCH,
            format_args!("{failed} of {SAMPLES} {NOUN}s differ from the host"),
        );
    }
    println!("all {SAMPLES} {NOUN}s match the host bit for bit");
    process::exit(0)
}

/// Stream mode; exits. `loading`: see [`print_stack`].
fn stream(ae: &mut Ae, samples: &str, out: &str, clock: &mut SysTickClock, loading: u32) -> ! {
    let mut input = open(samples, false);
    let mut output = open(out, true);
    let mut sample = [0u8; SAMPLE_BYTES];
    let mut record = [0u8; RECORD];
    let mut measured = Measured::default();
    let mut count = 0usize;
    while read_record(&mut input, &mut sample, samples, count) {
        measure(ae, &sample, clock, &mut measured)
            .unwrap_or_else(|e| fail(EXIT_MODEL, format_args!("{NOUN} {count}: {e}")));
        let (code_bytes, rest) = record.split_at_mut(CODE);
        let (output_bytes, rest) = rest.split_at_mut(OUTPUT_BYTES);
        for (b, c) in code_bytes.iter_mut().zip(&measured.code) {
            *b = *c as u8;
        }
        output_bytes.copy_from_slice(&measured.output);
        let (score, rest) = rest.split_at_mut(4);
        score.copy_from_slice(&measured.score.to_le_bytes());
        rest[0] = measured.flag;
        let times = [measured.encode_time, measured.reconstruct_time, measured.score_time];
        for (bytes, time) in rest[1..].chunks_exact_mut(4).zip(times) {
            bytes.copy_from_slice(&time.to_le_bytes());
        }
        output
            .write_all(&record)
            .unwrap_or_else(|e| fail(EXIT_USAGE, format_args!("{out}: cannot write ({})", errno(&e))));
        count += 1;
    }
    println!("{count} {NOUN}s");
    print_stack(loading);
    process::exit(0)
}

/// Fills `sample` with sample `index`, the next record of `file`; `false` at the end of the file.
fn read_record(file: &mut File, sample: &mut [u8; SAMPLE_BYTES], name: &str, index: usize) -> bool {
    let mut filled = 0;
    while filled < SAMPLE_BYTES {
        match file.read(&mut sample[filled..]) {
            Ok(0) if filled == 0 => return false,
            Ok(0) => fail(
                EXIT_USAGE,
                format_args!("{name}: ends inside {NOUN} {index} ({filled} of {SAMPLE_BYTES} bytes)"),
            ),
            Ok(n) => filled += n,
            Err(e) => fail(EXIT_USAGE, format_args!("{name}: cannot read ({})", errno(&e))),
        }
    }
    true
}

/// Opens a host file for reading, or creates (truncates) it for writing.
fn open(path: &str, write: bool) -> File {
    let mut buffer = [0u8; 512];
    let name = c_path(path, &mut buffer).unwrap_or_else(|| fail(EXIT_USAGE, format_args!("{path}: path too long")));
    let file = if write { File::create(name) } else { File::open(name) };
    file.unwrap_or_else(|e| fail(EXIT_USAGE, format_args!("{path}: cannot open ({})", errno(&e))))
}

/// `path` as a NUL-terminated string in `buffer`.
fn c_path<'b>(path: &str, buffer: &'b mut [u8]) -> Option<&'b CStr> {
    let bytes = path.as_bytes();
    buffer.get_mut(..bytes.len())?.copy_from_slice(bytes);
    *buffer.get_mut(bytes.len())? = 0;
    CStr::from_bytes_with_nul(&buffer[..=bytes.len()]).ok()
}

/// Reads a model file into the RAM region set aside for it.
fn load(path: &str) -> &'static [u8] {
    extern "C" {
        static mut _loaded_model_start: u8;
        static _loaded_model_end: u8;
    }
    // SAFETY: the linker script reserves the region between the two symbols for this buffer and
    // places nothing there; `load` runs at most once, so this is the only reference to it.
    let region: &'static mut [u8] = unsafe {
        let start = core::ptr::addr_of_mut!(_loaded_model_start);
        let end = core::ptr::addr_of!(_loaded_model_end);
        core::slice::from_raw_parts_mut(start, end as usize - start as usize)
    };
    if region.is_empty() {
        fail(
            EXIT_USAGE,
            format_args!("{path}: no RAM is set aside for a model file on this board"),
        );
    }
    let mut file = open(path, false);
    let mut len = 0;
    loop {
        let Some(rest) = region.get_mut(len..).filter(|rest| !rest.is_empty()) else {
            fail(
                EXIT_USAGE,
                format_args!("{path}: larger than the {len} bytes set aside"),
            );
        };
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => fail(EXIT_USAGE, format_args!("{path}: cannot read ({})", errno(&e))),
        }
    }
    &region[..len]
}

/// Prints the SysTick ticks of a loop of exactly `2 * iterations` instructions; exits.
fn calibrate(iterations: u32, clock: &mut SysTickClock) -> ! {
    let t0 = clock.now();
    let t1 = clock.now();
    let n = iterations.max(1);
    // SAFETY: a register-only loop of two instructions, `subs` and `bne`, run `n` times.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
    let t2 = clock.now();
    let overhead = t1.wrapping_sub(t0);
    println!(
        "calibrate: {n} x 2 instructions, {} ticks (clock overhead {} ticks removed)",
        ticks(t2.wrapping_sub(t1).saturating_sub(overhead)),
        ticks(overhead)
    );
    process::exit(0)
}

/// How an output compares with the host's.
fn verdict(matches: bool) -> &'static str {
    if matches {
        "as on the host"
    } else {
        "DIFFERS from the host"
    }
}

/// Clock units as a u32 (saturating): formatting u64 would cost flash for its division.
fn ticks(t: u64) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// The semihosting error number of a failed call, for messages (0 if there is none).
fn errno(e: &semihosting::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Ends the run with status 101, naming where the panic happened (not what it said: formatting
/// panic messages would cost more flash than the rest of the firmware).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => eprintln!("panic at {}:{}", at.file(), at.line()),
        None => eprintln!("panic"),
    }
    process::exit(101)
}

/// Prints the error to the host's stderr and ends the run with `status`.
fn fail(status: i32, message: core::fmt::Arguments<'_>) -> ! {
    eprintln!("error: {message}");
    process::exit(status)
}
