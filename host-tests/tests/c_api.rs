//! The C API from C: the C example firmware (`core-c/examples/qemu`, gcc-arm-none-eabi) under
//! QEMU against the core on the host, its flash beside the Rust firmware's, and host C programs
//! (gcc) that call the API with bad input and run the README's example.
//!
//! Needs `qemu-system-arm`, `gcc-arm-none-eabi` and `gcc` (Debian: `apt-get install
//! qemu-system-arm gcc-arm-none-eabi gcc`). Every shipped model is checked on the first 1,000
//! MNIST test images (100 for models above a million multiply-accumulates per denoise, `conv`
//! and `deep30`; `AE_QEMU_IMAGES=N` or `all` checks more, as for the Rust firmware), and the
//! vibration model on its random and edge f32 samples.

use autoencoder_core::{Model, Runner, PIXELS};
use host_tests::c_api;
use host_tests::check;
use host_tests::firmware::{self, Board};
use host_tests::qemu::{self, Options};
use host_tests::{mnist, repo_root};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Images checked per model: a tenth of what the Rust firmware's test checks, by default.
fn images_for(model: &Model<'_>) -> usize {
    match std::env::var("AE_QEMU_IMAGES") {
        Ok(_) => host_tests::images_to_check(model),
        Err(_) => host_tests::images_to_check(model) / 10,
    }
}

fn require(tool: &str, hint: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is needed for the C tests (Debian: apt-get install {hint})"
    );
}

fn require_cross_tools() {
    require("qemu-system-arm", "qemu-system-arm");
    require("arm-none-eabi-gcc", "gcc-arm-none-eabi");
    require("make", "make");
}

#[test]
fn the_c_example_matches_the_host_on_every_shipped_model() {
    require_cross_tools();
    let models = host_tests::shipped_models().unwrap();
    assert!(!models.is_empty(), "the shipped models are in models/");
    let images = mnist::test_images(mnist::TEST_IMAGES).unwrap();
    let results = check::run_models(models, &images, images_for, c_api::build_example);
    let mut outputs = 0;
    let mut failures = Vec::new();
    for (model, result) in results {
        match result {
            Ok(report) => {
                println!("C example: {}", report.summary());
                outputs += report.outputs;
                if report.mismatches > 0 {
                    failures.push(format!("{}\n{}", report.summary(), report.details));
                }
            }
            Err(e) => failures.push(format!("{}: {e:#}", model.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("C example: {outputs} outputs, all as on the host");
}

/// The C example's flash and static RAM beside the Rust firmware's for QEMU, for `fc`: at most
/// 4 KiB more flash.
#[test]
fn the_c_examples_flash_is_within_4_kib_of_the_rust_firmwares() {
    require_cross_tools();
    let model = repo_root().join("models/fc.aeq");
    let c = host_tests::elf::sizes(&c_api::build_example(&model).unwrap()).unwrap();
    let rust = host_tests::elf::sizes(&firmware::build(&model, Board::Qemu).unwrap()).unwrap();
    let size = std::fs::metadata(&model).unwrap().len();
    println!(
        "fc, QEMU build: C example flash {} (model + {}), static RAM {}; Rust firmware flash {} (model + {}), static RAM {}",
        c.flash,
        c.flash - size,
        c.ram,
        rust.flash,
        rust.flash - size,
        rust.ram
    );
    assert!(
        c.flash <= rust.flash + 4 * 1024,
        "C example {c:?} against the Rust firmware {rust:?}"
    );
    assert!(c.flash > size, "the model is in the C example's flash");
}

/// The C example's command line and exit statuses: a bad command line is status 2; no arguments
/// load the model and run one sample.
#[test]
fn the_c_example_reports_a_bad_command_line_and_runs_without_one() {
    require_cross_tools();
    let elf = c_api::build_example(&repo_root().join("models/fc.aeq")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };
    let run = qemu::run(&elf, &[], dir.path(), options).unwrap();
    assert!(run.status.success(), "{}", run.output());
    assert!(run.output().contains("784 values in, code 64"), "{}", run.output());
    let run = qemu::run(&elf, &["--bogus"], dir.path(), options).unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", run.output());
    let run = qemu::run(
        &elf,
        &["--samples", "missing.bin", "--out", "out.bin"],
        dir.path(),
        options,
    )
    .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", run.output());
    assert!(run.output().contains("cannot open missing.bin"), "{}", run.output());
}

fn c_source(name: &str) -> PathBuf {
    repo_root().join("core-c").join(name)
}

#[test]
fn bad_input_from_c_gets_each_status() {
    require("gcc", "gcc");
    let exe = c_api::build_host_program(&[c_source("tests/c/bad_input.c")]).unwrap();
    let output = Command::new(&exe)
        .arg(repo_root().join("models/fc.aeq"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("checks passed"), "{text}");
}

/// The README's example (`core-c/examples/denoise.c`), with the model linked in as `xxd -i`
/// would, denoises an image as the core does on the host.
#[test]
fn the_readme_example_denoises_as_the_core_does() {
    require("gcc", "gcc");
    let model = repo_root().join("models/fc.aeq");
    let blob = std::fs::read(&model).unwrap();
    let dir = c_api::c_target_dir().join("host");
    std::fs::create_dir_all(&dir).unwrap();
    let array = dir.join("fc_aeq.c");
    let mut source = String::from("#include <stddef.h>\n#include <stdint.h>\nconst uint8_t fc_aeq[] = {");
    for (i, b) in blob.iter().enumerate() {
        if i % 16 == 0 {
            source.push('\n');
        }
        source.push_str(&format!("0x{b:02x},"));
    }
    source.push_str("\n};\nconst size_t fc_aeq_len = sizeof fc_aeq;\n");
    std::fs::write(&array, source).unwrap();
    let exe =
        c_api::build_host_program(&[c_source("tests/c/run_example.c"), c_source("examples/denoise.c"), array]).unwrap();
    let images = mnist::test_images(3).unwrap();
    let parsed = Model::from_bytes(&blob).unwrap();
    let mut scratch = vec![0i8; parsed.scratch_len()];
    let mut runner = Runner::new(parsed, &mut scratch).unwrap();
    for image in &images {
        let file = dir.join("image.bin");
        std::fs::write(&file, image).unwrap();
        let output = Command::new(&exe).arg(&file).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let mut want = [0u8; PIXELS];
        runner.denoise_into(image, &mut want).unwrap();
        assert_eq!(output.stdout, want, "the example's denoised image is not the core's");
    }
}
