//! The firmware under QEMU (mps2-an386, Cortex-M4) against the core on the host.
//!
//! Needs `qemu-system-arm` (Debian: `apt-get install qemu-system-arm`). Every QEMU run has a time
//! limit and is killed past it. Each model's firmware is built once per test run; every model in
//! `models/` is checked on all 10,000 MNIST test images (1,000 for models of more than a million
//! multiply-accumulates per denoise, `conv` and `deep30`; `AE_QEMU_IMAGES=all` checks all), in
//! one QEMU run per model. A model that takes float input is checked on raw f32 samples: random
//! values over its raw range and every edge of its quantization (`firmware/float_samples.rs`).
//! Every run compares each sample's code, reconstruction, anomaly score and flag with the host's.

use autoencoder_core::model::{encoded_len_bound, write, InputScaling, Threshold};
use autoencoder_core::{Model, ModelError, Runner, PIXELS};
use host_tests::check::{Samples, StackPeaks};
use host_tests::firmware::{self, Board};
use host_tests::qemu::{self, Options};
use host_tests::synthetic::{self, Shape};
use host_tests::{check, float_samples, mnist, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use trainer::data::vibration::{self, VibrationConfig};

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

/// A synthetic model file under target/ ([`model_file_under_target`]).
fn synthetic_model(shape: Shape) -> PathBuf {
    model_file_under_target(shape.name(), &synthetic::model(shape, 1))
}

/// The model file `target/firmware/synthetic/NAME.aeq` holding `blob`, written only when its
/// bytes change (the firmware's build script reruns when the file's modification time changes).
fn model_file_under_target(name: &str, blob: &[u8]) -> PathBuf {
    let dir = firmware::firmware_target_dir().join("synthetic");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.aeq"));
    if std::fs::read(&path).ok().as_deref() != Some(blob) {
        std::fs::write(&path, blob).unwrap();
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
    let options = Options {
        icount_shift: None,
        timeout: host_tests::time_limit(images.len(), host_tests::sample_macs(&parsed)),
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
    let results = check::run_models(models, test_images(), host_tests::images_to_check, |model| {
        firmware::build(model, Board::Qemu)
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(model, result)| match result {
            Ok(report) => {
                println!("{}", report.summary());
                (report.mismatches > 0).then(|| format!("{}\n{}", report.summary(), report.details))
            }
            Err(e) => Some(format!("{}: {e:#}", model.display())),
        })
        .collect();
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
    for shape in Shape::MNIST {
        let model = synthetic_model(shape);
        let elf = firmware::build(&model, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
        check_model(&model, &elf, &images);
    }
}

/// Random readings of the sensor model streamed through its firmware.
const SENSOR_RANDOM_SAMPLES: usize = 4_000;

/// A model that is no MNIST model (64 readings, `Standard` scaling with a mean and a deviation
/// per reading, input zero point 17, a fused LeakyReLU layer, a linear output) built into the
/// firmware, which then takes raw f32 values and quantizes them on the device: every code, every
/// int8 output, every f32 output (dequantized and unscaled on the device) and every anomaly score
/// (`anomaly_score_f32`; the model holds no threshold, so no sample is flagged) is the host core's,
/// bit for bit, on random readings over the whole raw range and on every edge of the
/// quantization in every reading (exact ties and their f32 neighbours, the ends of the int8
/// range, ±0, subnormals, ±∞, ±f32::MAX, values far out of range, the saturation of the cast to
/// i32); its self-test passes; a NaN is refused with the core's typed error on the host and on
/// the device; the MNIST firmware refuses the model at run time.
#[test]
fn float_input_of_a_non_mnist_model_matches_the_host_bit_for_bit() {
    require_qemu();
    let path = synthetic_model(Shape::Sensor);
    let blob = std::fs::read(&path).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let quant = model.input_quant();
    assert_eq!(model.input_shape(), [64]);
    assert!(matches!(model.input_scaling(), InputScaling::Standard { .. }));
    assert_ne!(quant.zero_point, -128);
    assert!(!check::takes_pixels(&model));

    // The edges are what they claim: raw values that give the quantizer an exact tie (k + 0.5
    // after the scaling and the division by the scale), in nearly every reading.
    let features = float_samples::feature_scaling(&model);
    let (mut with_ties, mut ties_total) = (0, 0);
    for &feature in &features {
        let ties = float_samples::exact_ties(feature, quant.scale, quant.zero_point, float_samples::TIES_PER_FEATURE);
        for &x in &ties {
            let t = float_samples::quantizer_input(x, feature, quant.scale);
            assert_eq!(
                t.fract().abs(),
                0.5,
                "{x:e} in a reading scaled by {feature:?} gives {t}"
            );
        }
        with_ties += usize::from(!ties.is_empty());
        ties_total += ties.len();
    }
    println!(
        "{with_ties} of {} readings have exact ties, {ties_total} in all",
        features.len()
    );
    assert!(
        with_ties >= 48 && ties_total >= 150,
        "{with_ties} readings have exact ties, {ties_total} in all"
    );

    // A NaN has no code: the host's runner refuses it by position and writes nothing.
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
    let mut nan_sample = float_samples::random_samples(&model, 1, 9).concat();
    nan_sample[5] = f32::NAN;
    let mut code = vec![7i8; model.code_len()];
    let nan_error = runner.encode_f32_into(&nan_sample, &mut code).unwrap_err();
    assert_eq!(nan_error, ModelError::NotANumber { index: 5 });
    assert!(code.iter().all(|&c| c == 7), "the code was written: {code:?}");
    let mut values = vec![7f32; model.input_len()];
    nan_sample[5] = -f32::NAN;
    assert_eq!(
        runner.reconstruct_f32_into(&nan_sample, &mut values),
        Err(ModelError::NotANumber { index: 5 })
    );
    assert!(values.iter().all(|&v| v == 7.0), "the output was written");
    drop(runner);

    let elf = firmware::build(&path, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };

    // The self-test: random readings and edge values built in, their outputs from the host.
    let run = qemu::run(&elf, &[], dir.path(), options).unwrap();
    assert!(run.status.success(), "{}", run.output());
    assert!(
        run.output().contains("all 3 samples match the host bit for bit"),
        "{}",
        run.output()
    );

    // Random readings and every edge of every reading, streamed.
    let edges = float_samples::edge_sample_count(&model);
    let samples = [
        float_samples::random_samples(&model, SENSOR_RANDOM_SAMPLES, 2),
        float_samples::edge_samples(&model, 0..edges),
    ]
    .concat();
    let values = samples.concat();
    let bits = |v: &f32| v.to_bits();
    for edge in float_samples::FIXED_EDGES {
        assert!(
            values.iter().any(|v| bits(v) == bits(&edge)),
            "{edge:e} is not streamed"
        );
    }
    let report =
        check::run_samples(&path, &model, &elf, Samples::Floats(&values), options).unwrap_or_else(|e| panic!("{e:#}"));
    println!("{} ({edges} of edge values)", report.summary());
    assert_eq!(report.samples, SENSOR_RANDOM_SAMPLES + edges);
    assert!(report.flags.iter().all(Option::is_none), "flags without a threshold");
    assert_eq!(
        report.mismatches,
        0,
        "{}\nfirst mismatches:\n{}",
        report.summary(),
        report.details
    );

    // A NaN in the third sample: the core's error, naming the sample and the value; status 3.
    let mut with_nan = float_samples::random_samples(&model, 3, 4);
    with_nan[2][5] = f32::NAN;
    let file: Vec<u8> = with_nan.concat().iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.path().join("nan.bin"), file).unwrap();
    let args = ["--samples", "nan.bin", "--out", "out.bin"];
    let run = qemu::run(&elf, &args, dir.path(), options).unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", run.output());
    let expected = format!("error: sample 2: {nan_error}");
    assert!(
        run.output().contains(&expected),
        "expected {expected:?} in:\n{}",
        run.output()
    );

    // The MNIST firmware takes pixels: it refuses the model at run time.
    let (_, mnist_elf) = fc_firmware();
    std::fs::write(dir.path().join("sensor.aeq"), &blob).unwrap();
    std::fs::write(dir.path().join("images.bin"), test_images()[0]).unwrap();
    let args = ["--model", "sensor.aeq", "--images", "images.bin", "--out", "out.bin"];
    let run = qemu::run(&mnist_elf, &args, dir.path(), options).unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", run.output());
    assert!(run.output().contains("error: model sensor.aeq: "), "{}", run.output());
}

/// Random readings streamed through the firmware of the sensor model with a threshold.
const THRESHOLD_RANDOM_SAMPLES: usize = 1_000;

/// A model that holds an anomaly threshold: the sensor model with its threshold set to the
/// median of the host's scores of the samples (so that about half are above it), written again
/// and built into the firmware, which flags each sample: every score and every flag under QEMU is
/// the host's, the flags are the firmware's scores against the threshold, both verdicts occur,
/// and the self-test names the threshold.
#[test]
fn a_model_with_a_threshold_flags_samples_as_the_host_does() {
    require_qemu();
    let blob = std::fs::read(synthetic_model(Shape::Sensor)).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let edges = float_samples::edge_sample_count(&model);
    let values = [
        float_samples::random_samples(&model, THRESHOLD_RANDOM_SAMPLES, 5),
        float_samples::edge_samples(&model, 0..edges),
    ]
    .concat()
    .concat();

    let mut scratch = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
    let mut scores: Vec<u32> = values
        .chunks_exact(model.input_len())
        .map(|sample| runner.anomaly_score_f32(sample).unwrap())
        .collect();
    scores.sort_unstable();
    let threshold = scores[scores.len() / 2];
    let mut body = model.to_owned_body().unwrap();
    assert_eq!(body.anomaly.threshold, None);
    body.anomaly.threshold = Some(Threshold {
        score: threshold,
        false_positive_rate: 0.5,
    });
    let mut file = vec![0u8; encoded_len_bound(&body)];
    let len = write(model.kind(), &body, &mut file).unwrap();
    file.truncate(len);
    assert_eq!(Model::from_bytes(&file).unwrap().threshold(), Some(threshold));
    let path = model_file_under_target("synthetic-sensor-threshold", &file);

    let report = check::model_file(&path, Samples::Floats(&values)).unwrap_or_else(|e| panic!("{e:#}"));
    println!("{} (threshold {threshold})", report.summary());
    assert_eq!(report.samples, THRESHOLD_RANDOM_SAMPLES + edges);
    assert_eq!(
        report.mismatches,
        0,
        "{}\nfirst mismatches:\n{}",
        report.summary(),
        report.details
    );
    for (index, (&score, &flag)) in report.scores.iter().zip(&report.flags).enumerate() {
        assert_eq!(flag, Some(score > threshold), "sample {index}: score {score}");
    }
    let (anomalies, normal) = report.flag_counts();
    assert_eq!(anomalies + normal, report.samples);
    assert!(
        anomalies >= report.samples / 4 && normal >= report.samples / 4,
        "{anomalies} flagged, {normal} not"
    );

    // The self-test of the same firmware (built once above) names the threshold.
    let elf = firmware::build(&path, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        icount_shift: None,
        timeout: Duration::from_secs(60),
    };
    let run = qemu::run(&elf, &[], dir.path(), options).unwrap();
    let output = run.output();
    assert!(run.status.success(), "{output}");
    assert!(
        output.contains(&format!("anomaly threshold: a score above {threshold}"))
            && output.contains("all 3 samples match the host bit for bit"),
        "{output}"
    );
}

/// The shipped anomaly model on every test window of the example vibration data
/// (`trainer::data::vibration` with the defaults of `trainer/examples/make_vibration.rs`): every
/// code, output, score and flag under QEMU is the host's, and what its threshold flags is mostly
/// the faulty windows.
#[test]
fn vibration_anomaly_scores_match_the_host_on_every_test_sample() {
    require_qemu();
    let path = repo_root().join("models/vibration-anomaly.aeq");
    let data = vibration::generate(&VibrationConfig::default());
    let report = check::model_file(&path, Samples::Floats(&data.x_test)).unwrap_or_else(|e| panic!("{e:#}"));
    println!("{}", report.summary());
    assert_eq!(report.samples, data.test_len());
    assert_eq!(
        report.mismatches,
        0,
        "{}\nfirst mismatches:\n{}",
        report.summary(),
        report.details
    );
    let flagged: Vec<i64> = report
        .flags
        .iter()
        .zip(&data.y_test)
        .filter(|(flag, _)| **flag == Some(true))
        .map(|(_, &fault)| fault)
        .collect();
    let faulty = flagged.iter().filter(|&&fault| fault != vibration::HEALTHY).count();
    let (_, normal) = report.flag_counts();
    assert!(
        normal > 0 && faulty > 0 && faulty * 10 >= flagged.len() * 9,
        "{} flagged, {faulty} of them faulty; {normal} not flagged",
        flagged.len()
    );
}

/// The float path (`quantize_u8`'s float branch, `encode_f32`, `dequantize_f32`) is in the
/// firmware of a model that takes float input and in no MNIST model's.
#[test]
fn an_mnist_firmware_holds_none_of_the_float_path() {
    let float_path = ["quantize_f32", "quantize_u8", "encode_f32", "dequantize_f32"];
    let holds = |elf: &Path| -> Vec<String> {
        let symbols = host_tests::elf::function_symbols(elf).unwrap();
        symbols
            .into_iter()
            .filter(|s| float_path.iter().any(|f| s.contains(f)) && !s.contains("is_unit_pixels"))
            .collect()
    };
    let (_, mnist_elf) = fc_firmware();
    let found = holds(&mnist_elf);
    assert!(found.is_empty(), "the MNIST firmware holds {found:?}");
    let sensor_elf = firmware::build(&synthetic_model(Shape::Sensor), Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    let found = holds(&sensor_elf);
    assert!(
        !found.is_empty(),
        "the float firmware holds none of {float_path:?}: is the check blind?"
    );
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
    let record = check::record_len(&Model::from_bytes(&blob).unwrap());
    assert_eq!(record, 64 + PIXELS + check::SCORE_BYTES + check::TICKS_BYTES);
    assert_eq!(from_file.len(), 4 * record);
    // The records end with the timings, which differ from run to run without -icount.
    let outputs = |records: &[u8]| -> Vec<u8> {
        records
            .chunks(record)
            .flat_map(|r| r[..record - check::TICKS_BYTES].to_vec())
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
    let cases: [(&[&str], i32, &str); 7] = [
        (&["--panic"], 101, "panic at "),
        // flip-link put the stack below the statics: the overflow faults below RAM and leaves them
        // as they were (firmware/src/fault.rs).
        (&["--overflow-stack"], 134, "below the stack's room (0x20000000.."),
        (&["--frobnicate"], 2, "unknown argument --frobnicate"),
        (
            &["--images", "missing.bin", "--out", "out.bin"],
            2,
            "missing.bin: cannot open",
        ),
        (
            &["--images", "partial.bin", "--out", "out.bin"],
            2,
            "ends inside image 1 (100 of 784 bytes)",
        ),
        (&["--images", "partial.bin"], 2, "--samples and --out go together"),
        (&["--model", "partial.bin"], 2, "--model runs with --samples and --out"),
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
    let overflow = qemu::run(&elf, &["--overflow-stack"], dir.path(), options).unwrap();
    assert!(
        overflow.output().contains("stack overflow: sp 0x") && overflow.output().contains("; statics intact"),
        "{}",
        overflow.output()
    );
    // Without arguments: the self-test on the built-in images passes, and reports the stack's
    // peaks within its room.
    let run = qemu::run(&elf, &[], dir.path(), options).unwrap();
    assert!(run.status.success(), "{}", run.output());
    assert!(
        run.output().contains("images match the host bit for bit"),
        "{}",
        run.output()
    );
    let stack = StackPeaks::parse(&run.output()).unwrap_or_else(|| panic!("no stack peaks in {}", run.output()));
    assert!(
        stack.loading > 1024 && stack.running > 1024 && stack.peak() < stack.room,
        "{stack:?}"
    );
}

#[test]
fn static_ram_beyond_the_activation_buffers_is_within_16_kib() {
    let (fc, fc_elf) = fc_firmware();
    let sensor = synthetic_model(Shape::Sensor);
    let sensor_elf = firmware::build(&sensor, Board::Qemu).unwrap_or_else(|e| panic!("{e:#}"));
    for (model, elf) in [(fc, fc_elf), (sensor, sensor_elf)] {
        let blob = std::fs::read(&model).unwrap();
        let scratch = Model::from_bytes(&blob).unwrap().scratch_len() as u64;
        let sizes = host_tests::elf::sizes(&elf).unwrap();
        let name = model.display();
        assert!(
            sizes.flash > blob.len() as u64,
            "{name}: {sizes:?}: the model is in flash"
        );
        assert!(
            sizes.ram >= scratch && sizes.ram <= scratch + 16 * 1024,
            "{name}: {sizes:?}: static RAM beyond the {scratch} bytes of scratch"
        );
    }
}

/// The flash target for a model that takes u8 pixels (an MNIST model): at most 32 KiB beyond
/// the model file on the nRF52840 (the QEMU build adds semihosting and `core::fmt` for its
/// messages, see the README).
#[test]
fn flash_beyond_an_mnist_model_is_within_32_kib_on_the_nrf52840() {
    let model = synthetic_model(Shape::Fc);
    let elf = firmware::build(&model, Board::Nrf52840).unwrap_or_else(|e| panic!("{e:#}"));
    let size = std::fs::metadata(&model).unwrap().len();
    let sizes = host_tests::elf::sizes(&elf).unwrap();
    let beyond = sizes.flash - size;
    println!("nRF52840: flash {} = the model's {size} + {beyond}", sizes.flash);
    assert!(
        beyond <= 32 * 1024,
        "{sizes:?}: {beyond} bytes of flash beyond the {size} of the model"
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
