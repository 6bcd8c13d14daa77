//! The firmware under QEMU (mps2-an386, Cortex-M4) against the core on the host.
//!
//! Needs `qemu-system-arm` (Debian: `apt-get install qemu-system-arm`). Every QEMU run has a time
//! limit and is killed past it. Each model's firmware is built once per test run; every model in
//! `models/` is checked on all 10,000 MNIST test images (1,000 for models of more than a million
//! multiply-accumulates per denoise, `conv` and `deep30`; `AE_QEMU_IMAGES=all` checks all), in
//! one QEMU run per model.

use autoencoder_core::{Model, ModelError, PIXELS};
use host_tests::firmware::{self, Board};
use host_tests::qemu::{self, Options};
use host_tests::synthetic::{self, Shape};
use host_tests::{check, mnist, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// The MNIST test images, read once.
fn test_images() -> &'static [[u8; PIXELS]] {
    static IMAGES: OnceLock<Vec<[u8; PIXELS]>> = OnceLock::new();
    IMAGES.get_or_init(|| mnist::test_images(mnist::TEST_IMAGES).expect("the bundled MNIST test images"))
}

/// Fails with an install hint when QEMU is missing.
fn require_qemu() {
    let found = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "qemu-system-arm is needed to run the firmware (Debian: apt-get install qemu-system-arm)"
    );
}

/// A time limit for a QEMU run of `images` images of a model of `macs` multiply-accumulates per
/// encode and denoise: 100 million instructions a second at 5 instructions per MAC (QEMU runs
/// 5 to 10 times faster than that here), plus a minute.
fn limit(images: usize, macs: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs_f64(images as f64 * macs as f64 * 5.0 / 1e8)
}

/// A synthetic model file under target/, written only when its bytes change (the firmware's
/// build script reruns when the file's modification time changes).
fn synthetic_model(shape: Shape) -> PathBuf {
    let dir = firmware::firmware_target_dir().join("synthetic");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.aeq", shape.name()));
    let blob = synthetic::model(shape, 1);
    if std::fs::read(&path).ok().as_deref() != Some(&blob[..]) {
        std::fs::write(&path, &blob).unwrap();
    }
    path
}

/// The firmware built with the synthetic `fc` model, for the tests of the firmware itself.
fn fc_firmware() -> (PathBuf, PathBuf) {
    let model = synthetic_model(Shape::Fc);
    let elf = firmware::build(&model, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    (model, elf)
}

/// Checks a model on `images`, panicking with the mismatches (model, image, position, both
/// values) if there are any.
fn check_model(model: &Path, elf: &Path, images: &[[u8; PIXELS]]) -> check::Report {
    let blob = std::fs::read(model).unwrap();
    let parsed = Model::from_bytes(&blob).unwrap();
    let macs = host_tests::encode_macs(&parsed) + host_tests::denoise_macs(&parsed);
    let options = Options {
        icount_shift: None,
        timeout: limit(images.len(), macs),
    };
    let report = check::run(model, &parsed, elf, images, options).unwrap_or_else(|e| panic!("{e:#}"));
    println!("{}", report.summary());
    assert_eq!(
        report.mismatches,
        0,
        "{}\nfirst mismatches:\n{}",
        report.summary(),
        report.details
    );
    report
}

#[test]
fn shipped_models_match_the_host_bit_for_bit() {
    require_qemu();
    let models = host_tests::shipped_models().unwrap();
    if models.is_empty() {
        println!("no model files in models/: nothing to check");
        return;
    }
    let images = test_images();
    // Builds run one after the other (they share a target directory); two QEMU runs at a time
    // check the models already built.
    let (built_tx, built_rx) = mpsc::channel();
    let built_rx = Mutex::new(built_rx);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(move || {
            for model in models {
                let elf = firmware::build(&model, Board::Qemu);
                built_tx.send((model, elf)).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = built_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok((model, elf)) = next else { break };
                let result = elf.and_then(|elf| {
                    let blob = std::fs::read(&model)?;
                    let parsed = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
                    let count = host_tests::images_to_check(&parsed);
                    let macs = host_tests::encode_macs(&parsed) + host_tests::denoise_macs(&parsed);
                    let options = Options {
                        icount_shift: None,
                        timeout: limit(count, macs),
                    };
                    check::run(&model, &parsed, &elf, &images[..count], options)
                });
                let failure = match result {
                    Ok(report) => {
                        println!("{}", report.summary());
                        (report.mismatches > 0).then(|| format!("{}\n{}", report.summary(), report.details))
                    }
                    Err(e) => Some(format!("{}: {e:#}", model.display())),
                };
                if let Some(failure) = failure {
                    failures.lock().unwrap_or_else(PoisonError::into_inner).push(failure);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn synthetic_models_of_every_layer_type_match_the_host() {
    require_qemu();
    // MNIST images, then black, white and noise.
    let mut images: Vec<[u8; PIXELS]> = test_images()[..200].to_vec();
    images.push([0; PIXELS]);
    images.push([255; PIXELS]);
    let mut state = 0x2545_f491_u32;
    for _ in 0..6 {
        images.push(std::array::from_fn(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        }));
    }
    for shape in Shape::ALL {
        let model = synthetic_model(shape);
        let elf = firmware::build(&model, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
        check_model(&model, &elf, &images);
    }
}

#[test]
fn systick_counts_instructions_under_icount() {
    require_qemu();
    let (_, elf) = fc_firmware();
    let dir = tempfile::tempdir().unwrap();
    // A 2-instruction loop: instructions = ticks * 40 / 2^shift, up to the few instructions of the
    // measurement itself; 3,000,000 iterations at shift 8 take 38.4 million ticks, more than
    // twice SysTick's 24-bit range, so the wraps are counted too.
    for (shift, iterations) in [(0, 1_000_000), (3, 10_000), (6, 10_000), (6, 1_000_000), (8, 3_000_000)] {
        let options = Options {
            icount_shift: Some(shift),
            timeout: Duration::from_secs(60),
        };
        let run = qemu::run(&elf, &["--calibrate", &iterations.to_string()], dir.path(), options).unwrap();
        assert!(run.status.success(), "{}", run.output());
        let output = run.output();
        let ticks: f64 = output
            .split("instructions, ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no tick count in {output:?}"));
        let counted = qemu::instructions(ticks, shift);
        let executed = 2.0 * f64::from(iterations);
        // Granularity: one tick is 40 / 2^shift instructions (40 at shift 0).
        let tolerance = 40.0 / f64::from(1u32 << shift) + 40.0;
        assert!(
            (counted - executed).abs() <= tolerance,
            "shift {shift}: {ticks} ticks are {counted} instructions, the loop ran {executed}"
        );
    }
}

#[test]
fn a_corrupted_model_is_reported_with_the_core_error() {
    require_qemu();
    let (model, elf) = fc_firmware();
    let blob = std::fs::read(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("images.bin"), test_images()[..4].concat()).unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };
    let run_with = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let args = ["--model", name, "--images", "images.bin", "--out", "out.bin"];
        qemu::run(&elf, &args, dir.path(), options).unwrap()
    };

    // The same model loaded from a file at run time gives exactly the built-in model's outputs.
    let run = run_with("same.aeq", &blob);
    assert!(run.status.success(), "{}", run.output());
    let from_file = std::fs::read(dir.path().join("out.bin")).unwrap();
    let args = ["--images", "images.bin", "--out", "built-in.bin"];
    let run = qemu::run(&elf, &args, dir.path(), options).unwrap();
    assert!(run.status.success(), "{}", run.output());
    let built_in = std::fs::read(dir.path().join("built-in.bin")).unwrap();
    assert_eq!(from_file.len(), 4 * (64 + PIXELS + 8));
    // The records end with the timings, which differ from run to run without -icount.
    let outputs = |records: &[u8]| -> Vec<u8> {
        records
            .chunks(64 + PIXELS + 8)
            .flat_map(|r| r[..64 + PIXELS].to_vec())
            .collect()
    };
    assert!(
        outputs(&from_file) == outputs(&built_in),
        "the model from the file runs differently"
    );

    // One flipped bit in the weights: the checksum catches it.
    let mut corrupted = blob.clone();
    corrupted[blob.len() / 2] ^= 0x10;
    let run = run_with("corrupted.aeq", &corrupted);
    assert_eq!(run.status.code(), Some(3), "{}", run.output());
    let output = run.output();
    let error = Model::from_bytes(&corrupted).unwrap_err();
    assert!(matches!(error, ModelError::ChecksumMismatch { .. }), "{error:?}");
    let expected = format!("error: model corrupted.aeq: {error}");
    assert!(output.contains(&expected), "expected {expected:?}, got:\n{output}");

    // Not a model at all, and a truncated one.
    for (name, bytes) in [("text.aeq", &b"not a model file"[..]), ("short.aeq", &blob[..6])] {
        let run = run_with(name, bytes);
        assert_eq!(run.status.code(), Some(3), "{name}: {}", run.output());
        let expected = Model::from_bytes(bytes).unwrap_err().to_string();
        assert!(
            run.output().contains(&expected),
            "{name}: expected {expected:?}:\n{}",
            run.output()
        );
    }
}

#[test]
fn panics_and_bad_input_end_the_run_with_a_failure_status() {
    require_qemu();
    let (_, elf) = fc_firmware();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("partial.bin"), [0u8; PIXELS + 100]).unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };
    let cases: [(&[&str], i32, &str); 6] = [
        (&["--panic"], 101, "panic at "),
        (&["--frobnicate"], 2, "unknown argument --frobnicate"),
        (
            &["--images", "missing.bin", "--out", "out.bin"],
            2,
            "missing.bin: cannot open",
        ),
        (
            &["--images", "partial.bin", "--out", "out.bin"],
            2,
            "ends inside an image (100 of 784 bytes)",
        ),
        (&["--images", "partial.bin"], 2, "--images and --out go together"),
        (&["--model", "partial.bin"], 2, "--model runs with --images and --out"),
    ];
    for (args, status, message) in cases {
        let run = qemu::run(&elf, args, dir.path(), options).unwrap();
        assert_eq!(run.status.code(), Some(status), "{args:?}: {}", run.output());
        assert!(
            run.output().contains(message),
            "{args:?}: expected {message:?} in:\n{}",
            run.output()
        );
    }
    // Without arguments: the self-test on the built-in images passes.
    let run = qemu::run(&elf, &[], dir.path(), options).unwrap();
    assert!(run.status.success(), "{}", run.output());
    assert!(
        run.output().contains("images match the host bit for bit"),
        "{}",
        run.output()
    );
}

#[test]
fn static_ram_beyond_the_activation_buffers_is_within_16_kib() {
    let (model, elf) = fc_firmware();
    let blob = std::fs::read(&model).unwrap();
    let scratch = Model::from_bytes(&blob).unwrap().scratch_len() as u64;
    let sizes = host_tests::elf::sizes(&elf).unwrap();
    assert!(sizes.flash > blob.len() as u64, "{sizes:?}: the model is in flash");
    assert!(
        sizes.ram >= scratch && sizes.ram <= scratch + 16 * 1024,
        "{sizes:?}: static RAM beyond the {scratch} bytes of scratch"
    );
}

#[test]
fn the_build_names_a_missing_or_invalid_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.aeq");
    let invalid = dir.path().join("invalid.aeq");
    let mut blob = synthetic::model(Shape::Fc, 1);
    let last = blob.len() - 1;
    blob[last] ^= 1;
    std::fs::write(&invalid, &blob).unwrap();
    let invalid_message = format!("is not a valid model: {}", Model::from_bytes(&blob).unwrap_err());
    for (model, message) in [(&missing, "cannot be read"), (&invalid, invalid_message.as_str())] {
        let error = firmware::build(model, Board::Qemu)
            .expect_err("the build fails")
            .to_string();
        let named = format!("model file {}", model.display());
        assert!(
            error.contains(&named) && error.contains(message),
            "expected {named:?} and {message:?} in:\n{error}"
        );
    }
}

/// `trainer train` a tiny `fc`, `trainer export` it, build the firmware with it, and check it
/// under QEMU: the whole path from training to the microcontroller.
#[test]
fn trained_exported_and_run_end_to_end() {
    require_qemu();
    let trainer = trainer_binary();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let model = dir.path().join("fc.aeq");
    let train = [
        "train",
        "fc",
        "--epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--train-limit",
        "512",
        "--test-limit",
        "256",
        "--threads",
        "1",
        "--out",
    ];
    let export = ["export", run_dir.to_str().unwrap(), "--out", model.to_str().unwrap()];
    for args in [
        &[&train[..], &[run_dir.to_str().unwrap()]].concat(),
        &export[..].to_vec(),
    ] {
        let output = Command::new(&trainer)
            .args(args)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "trainer {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let elf = firmware::build(&model, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    check_model(&model, &elf, &test_images()[..256]);
}

/// The trainer binary, built by cargo in the test's own profile (so nothing but the binary is
/// compiled: the test build has already built the trainer's library and dependencies).
fn trainer_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "--locked",
            "-p",
            "trainer",
            "--bin",
            "trainer",
            "--message-format=json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the trainer failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The compiler-artifact message of the binary names its executable.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\"") && line.contains("\"executable\":\""))
        .find_map(|line| {
            let start = line.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = start + line[start..].find('"')?;
            Some(PathBuf::from(&line[start..end]))
        })
        .expect("cargo names the trainer executable")
}
