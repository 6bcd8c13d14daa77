//! The firmware on a Cortex-M0 (`thumbv6m-none-eabi`: the core's portable kernels, no DSP
//! instructions) under QEMU's microbit (an nRF51822: 256 KiB of flash, 16 KiB of RAM) against
//! the core on the host, bit for bit: every shipped model that fits the chip, its SysTick against
//! QEMU's instruction count, and the self-test.
//!
//! Needs `qemu-system-arm`. A model fits when the model and the firmware's own flash fit the
//! flash, and its scratch and the firmware's stack the RAM (`firmware::microbit_fit`); the test
//! prints each model's verdict, and holds the rule's allowances to what each firmware measures.
//! Each model runs on a few samples, to keep the suite's QEMU time small: `tests/firmware.rs`
//! and `tests/dsp.rs` run the same core on many more under the Cortex-M4.

use autoencoder_core::Model;
use host_tests::check::{self, StackPeaks};
use host_tests::firmware::{self, Board};
use host_tests::qemu::{self, Options};
use host_tests::{elf, mnist, synthetic};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// MNIST test images each shipped pixel model runs (and random samples of the raw range, with
/// every edge sample, for a model of float input).
const SAMPLES: usize = 20;

#[test]
fn shipped_models_that_fit_match_the_host_on_the_cortex_m0() {
    let start = Instant::now();
    let mut fitting = Vec::new();
    for path in host_tests::shipped_models().unwrap() {
        let blob = std::fs::read(&path).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match firmware::microbit_fit(blob.len() as u64, model.scratch_len() as u64) {
            Ok(()) => {
                println!("{name}: fits the microbit");
                fitting.push(path);
            }
            Err(why) => println!("{name}: skipped, does not fit the microbit ({why})"),
        }
    }
    if fitting.is_empty() {
        println!("no shipped model fits the microbit: nothing to check");
        return;
    }
    let images = mnist::test_images(SAMPLES).unwrap();
    let results = check::run_models_on(
        Board::Microbit,
        fitting,
        &images,
        |_| SAMPLES,
        |path| firmware::build(path, Board::Microbit),
    );
    let mut failures = Vec::new();
    let (mut outputs, mut qemu_seconds) = (0, 0.0);
    for (path, result) in results {
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                failures.push(format!("{}: {e:#}", path.display()));
                continue;
            }
        };
        println!("{}", report.summary());
        outputs += report.outputs;
        qemu_seconds += report.qemu_wall.as_secs_f64();
        if report.mismatches > 0 {
            failures.push(format!("{}\n{}", report.summary(), report.details));
        }
        // The rule's allowances hold for what was built and run.
        let blob = std::fs::read(&path).unwrap();
        let scratch = Model::from_bytes(&blob).unwrap().scratch_len() as u64;
        let sizes = elf::sizes(&firmware::build(&path, Board::Microbit).unwrap()).unwrap();
        let beyond_model = sizes.flash - blob.len() as u64;
        if beyond_model > firmware::MICROBIT_FIRMWARE_FLASH {
            failures.push(format!(
                "{}: the firmware's flash beyond the model is {beyond_model} bytes, over the {} allowed",
                report.model,
                firmware::MICROBIT_FIRMWARE_FLASH
            ));
        }
        let Some(stack) = report.stack else {
            failures.push(format!("{}: the firmware printed no stack peaks", report.model));
            continue;
        };
        let beside_scratch = sizes.ram - scratch + u64::from(stack.peak());
        println!(
            "{}: flash {} (the model + {beyond_model}), static RAM {}, stack peak {} loading, {} running, \
             of {} bytes",
            report.model, sizes.flash, sizes.ram, stack.loading, stack.running, stack.room
        );
        if beside_scratch > firmware::MICROBIT_STACK || stack.peak() >= stack.room {
            failures.push(format!(
                "{}: statics beside the scratch and the stack's peak take {beside_scratch} bytes, over the {} \
                 allowed, or the stack reached the statics ({stack:?})",
                report.model,
                firmware::MICROBIT_STACK
            ));
        }
    }
    println!(
        "{outputs} outputs compared on the Cortex-M0 in {:.1} s ({qemu_seconds:.1} s of QEMU runs)",
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn systick_counts_instructions_on_the_cortex_m0() {
    let path = synthetic_fc();
    let elf = firmware::build(path, Board::Microbit).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    // A 2-instruction loop: instructions = ticks * 62.5 / 2^shift, up to the few instructions of
    // the measurement itself; 3,000,000 iterations at shift 8 take 24.6 million ticks, more than
    // SysTick's 24-bit range, so a wrap is counted too.
    for (shift, iterations) in [(0, 1_000_000), (3, 10_000), (6, 10_000), (6, 1_000_000), (8, 3_000_000)] {
        let options = Options {
            icount_shift: Some(shift),
            timeout: Duration::from_secs(60),
        };
        let run = qemu::run_on(
            Board::Microbit,
            &elf,
            &["--calibrate", &iterations.to_string()],
            dir.path(),
            options,
        )
        .unwrap();
        assert!(run.status.success(), "{}", run.output());
        let output = run.output();
        let ticks: f64 = output
            .split("instructions, ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no tick count in {output:?}"));
        let counted = qemu::instructions_on(Board::Microbit, ticks, shift);
        let executed = 2.0 * f64::from(iterations);
        println!("shift {shift}: {ticks} ticks, {counted} instructions, {executed} run");
        // Granularity: one tick is 62.5 / 2^shift instructions (62.5 at shift 0).
        let tolerance = qemu::MICROBIT_TICK_NS / f64::from(1u32 << shift) + 40.0;
        assert!(
            (counted - executed).abs() <= tolerance,
            "shift {shift}: {ticks} ticks are {counted} instructions, the loop ran {executed}"
        );
    }
}

#[test]
fn the_self_test_passes_on_the_cortex_m0_and_measures_the_stack() {
    let path = synthetic_fc();
    let elf = firmware::build(path, Board::Microbit).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };
    let run = qemu::run_on(Board::Microbit, &elf, &[], dir.path(), options).unwrap();
    let output = run.output();
    println!("{output}");
    assert!(run.status.success(), "{output}");
    assert!(output.contains("all 1 images match the host bit for bit"), "{output}");
    let stack = StackPeaks::parse(&output).unwrap_or_else(|| panic!("no stack peaks in {output:?}"));
    assert!(
        stack.loading > 0 && stack.running > 0 && stack.peak() < stack.room,
        "{stack:?}"
    );
    // An overflow faults at the start of RAM, below the stack (flip-link), with the statics
    // untouched: the first write below RAM faults on the nRF51.
    let run = qemu::run_on(Board::Microbit, &elf, &["--overflow-stack"], dir.path(), options).unwrap();
    let output = run.output();
    assert_eq!(run.status.code(), Some(134), "{output}");
    assert!(
        output.contains("stack overflow: sp 0x1fff")
            && output.contains("below the stack's room (0x20000000..")
            && output.contains("; statics intact"),
        "{output}"
    );
    // No RAM is set aside for a model file on the microbit: `--model` is refused, not run.
    let run = qemu::run_on(
        Board::Microbit,
        &elf,
        &["--model", "fc.aeq", "--samples", "in.bin", "--out", "out.bin"],
        dir.path(),
        options,
    )
    .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", run.output());
    assert!(
        run.output().contains("no RAM is set aside for a model file"),
        "{}",
        run.output()
    );
}

/// The synthetic `fc` model, written once under `target/firmware/synthetic/` (the Cortex-M4
/// tests' file of the same bytes).
fn synthetic_fc() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = firmware::firmware_target_dir().join("synthetic");
        std::fs::create_dir_all(&dir).unwrap();
        let shape = synthetic::Shape::Fc;
        let path = dir.join(format!("{}.aeq", shape.name()));
        let blob = synthetic::model(shape, 1);
        if std::fs::read(&path).ok().as_deref() != Some(&blob[..]) {
            std::fs::write(&path, &blob).unwrap();
        }
        path
    })
}
