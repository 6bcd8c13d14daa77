//! The model loader against malformed blobs: every truncation, every bit flip (with the checksum
//! left stale and with it recomputed, so that the decoder and the layer checks are reached),
//! random overwrites and random bodies. Nothing may panic, and every blob that loads must run.

use autoencoder_core::model::{
    encoded_len_bound, write, Activation, Anomaly, InputScaling, Layer, ModelBody, ModelKind, Quant, Weights,
    CHECKSUM_LEN, FORMAT_VERSION, HEADER_LEN,
};
use autoencoder_core::quantize_f32::{dequantize_f32, quantize_f32, quantize_u8};
use autoencoder_core::Autoencoder;
use autoencoder_core::{Error, Model, ModelError, Runner, PIXELS};

/// SplitMix64, for reproducible random bytes.
/// The crate's shared test generator, with bytes.
struct Rng(autoencoder_core::testutil::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Arrays of a small valid model: 784 → 3 (LeakyReLU table, top-2) → 784 (logistic table).
struct Parts {
    enc_w: Vec<u8>,
    dec_w: Vec<u8>,
    enc_words: Vec<u8>,
    dec_words: Vec<u8>,
    enc_shifts: Vec<u8>,
    dec_shifts: Vec<u8>,
    table: Vec<u8>,
}

fn parts() -> Parts {
    let mut rng = Rng(autoencoder_core::testutil::SplitMix64::new(7));
    let words = |n: usize, value: i32| (0..n).flat_map(|_| value.to_le_bytes()).collect::<Vec<u8>>();
    Parts {
        enc_w: rng.bytes(3 * PIXELS),
        dec_w: rng.bytes(3 * PIXELS),
        enc_words: words(3, 1 << 30),
        dec_words: words(PIXELS, 1 << 30),
        enc_shifts: vec![(-9i8) as u8; 3],
        dec_shifts: vec![(-3i8) as u8; PIXELS],
        table: (0..=255u8).collect(),
    }
}

fn body(p: &Parts) -> ModelBody<'_> {
    let q = Quant {
        scale: 0.05,
        zero_point: -5,
    };
    let mut layers = heapless::Vec::new();
    let enc = Weights {
        weights: &p.enc_w[..],
        weight_scales: &p.enc_words[..],
        bias: &p.enc_words[..],
        multipliers: &p.enc_words[..],
        shifts: &p.enc_shifts[..],
        output: q,
    };
    let dec = Weights {
        weights: &p.dec_w[..],
        weight_scales: &p.dec_words[..],
        bias: &p.dec_words[..],
        multipliers: &p.dec_words[..],
        shifts: &p.dec_shifts[..],
        output: q,
    };
    for layer in [
        Layer::FullyConnected {
            inputs: PIXELS as u32,
            outputs: 3,
            params: enc,
        },
        Layer::Table {
            activation: Activation::LeakyRelu { slope: 0.01 },
            table: &p.table[..],
            output: q,
        },
        Layer::TopK { k: 2 },
        Layer::FullyConnected {
            inputs: 3,
            outputs: PIXELS as u32,
            params: dec,
        },
        Layer::Table {
            activation: Activation::Logistic,
            table: &p.table[..],
            output: Quant {
                scale: 1.0 / 256.0,
                zero_point: -128,
            },
        },
    ] {
        layers.push(layer).unwrap();
    }
    let mut body = ModelBody {
        name: "tiny",
        source: r#"{"test":"model_format"}"#,
        float_test_mse: 0.01,
        input_shape: &MNIST_SHAPE[..],
        input_scaling: InputScaling::Unit,
        input: Quant {
            scale: 1.0 / 255.0,
            zero_point: -128,
        },
        code_after: 3,
        layers,
        anomaly: Anomaly::derive(
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
        )
        .unwrap(),
    };
    body.anomaly = Anomaly::of(&body).unwrap();
    body
}

fn blob(kind: ModelKind, body: &ModelBody<'_>) -> Result<Vec<u8>, ModelError> {
    let mut out = vec![0u8; encoded_len_bound(body)];
    let len = write(kind, body, &mut out)?;
    out.truncate(len);
    Ok(out)
}

fn valid_blob() -> Vec<u8> {
    let p = parts();
    let b = body(&p);
    blob(ModelKind::FullyConnected, &b).expect("a valid model writes")
}

fn fix_checksum(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32(&bytes[..n - CHECKSUM_LEN]);
    bytes[n - CHECKSUM_LEN..].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 (IEEE, reflected, as zlib), bit by bit: an independent check of the file's checksum.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Loads `bytes`; if the model loads, it must also run without error.
fn load_and_run(bytes: &[u8]) -> Result<(), ModelError> {
    let model = Model::from_bytes(bytes)?;
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut code = vec![0i8; model.code_len()];
    let mut runner = Runner::new(model, &mut scratch).expect("scratch of the reported size binds");
    let n = runner.model().input_len();
    let image = vec![200u8; n];
    let mut out = vec![0u8; n];
    runner
        .encode_u8_into(&image, &mut code)
        .expect("a loaded model encodes");
    runner.denoise_into(&image, &mut out).expect("a loaded model denoises");
    let floats = vec![-3.5f32; n];
    let mut back = vec![0f32; n];
    runner
        .encode_f32_into(&floats, &mut code)
        .expect("a loaded model encodes floats");
    runner
        .reconstruct_f32_into(&floats, &mut back)
        .expect("a loaded model reconstructs floats");
    Ok(())
}

#[test]
fn the_valid_blob_loads_and_its_checksum_is_zlibs_crc32() {
    let bytes = valid_blob();
    let n = bytes.len();
    assert_eq!(&bytes[..4], b"AEQ8");
    assert_eq!(
        u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()),
        crc32(&bytes[..n - 4])
    );
    load_and_run(&bytes).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.code_len(), 3);
    assert_eq!(model.kind(), ModelKind::FullyConnected);
    assert_eq!(model.scratch_len(), 2 * PIXELS);
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = valid_blob();
    for len in 0..bytes.len() {
        let err = Model::from_bytes(&bytes[..len]).expect_err("a truncated blob must not load");
        if len < HEADER_LEN + CHECKSUM_LEN {
            assert_eq!(err, ModelError::TooShort { len });
        }
        // With the checksum recomputed the decoder itself must notice the missing bytes.
        if len >= HEADER_LEN + CHECKSUM_LEN {
            let mut cut = bytes[..len].to_vec();
            fix_checksum(&mut cut);
            assert!(
                load_and_run(&cut).is_err(),
                "truncated to {len} bytes with a fresh checksum"
            );
        }
    }
}

#[test]
fn every_bit_flip_is_caught_by_the_checksum() {
    let bytes = valid_blob();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let err = Model::from_bytes(&flipped).expect_err("a flipped bit must not load");
        assert!(
            matches!(
                err,
                ModelError::ChecksumMismatch { .. }
                    | ModelError::BadMagic { .. }
                    | ModelError::UnsupportedVersion { .. }
            ),
            "bit {bit}: {err:?}"
        );
    }
}

#[test]
fn bit_flips_behind_a_fresh_checksum_never_panic() {
    // The checksum is recomputed, so each flip reaches the decoder and the layer checks; a flip
    // in a weight is a different valid model, which must then run.
    let bytes = valid_blob();
    let (mut loaded, mut rejected) = (0, 0);
    for bit in 0..(bytes.len() - CHECKSUM_LEN) * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        fix_checksum(&mut flipped);
        match load_and_run(&flipped) {
            Ok(()) => loaded += 1,
            Err(_) => rejected += 1,
        }
    }
    // Most of the blob is weights (any value is valid); the structure is guarded.
    assert!(loaded > 0 && rejected > 0, "loaded {loaded}, rejected {rejected}");
}

#[test]
fn random_overwrites_and_random_bodies_never_panic() {
    let bytes = valid_blob();
    let mut rng = Rng(autoencoder_core::testutil::SplitMix64::new(42));
    for _ in 0..3000 {
        let mut b = bytes.clone();
        let at = rng.next() as usize % (b.len() - CHECKSUM_LEN);
        let len = (rng.next() as usize % 16 + 1).min(b.len() - CHECKSUM_LEN - at);
        b[at..at + len].copy_from_slice(&rng.bytes(len));
        fix_checksum(&mut b);
        let _ = load_and_run(&b);
    }
    for _ in 0..3000 {
        let len = rng.next() as usize % 300;
        let mut b = b"AEQ8".to_vec();
        b.extend(FORMAT_VERSION.to_le_bytes());
        b.extend([1, 0]);
        b.extend(rng.bytes(len));
        b.extend([0; 4]);
        fix_checksum(&mut b);
        assert!(Model::from_bytes(&b).is_err(), "a random body loaded");
        let raw = rng.bytes(len);
        assert!(Model::from_bytes(&raw).is_err());
    }
}

#[test]
fn header_errors_are_named() {
    let bytes = valid_blob();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(Model::from_bytes(&b), Err(ModelError::BadMagic { .. })));
    // Older files (version 1, before the rules of format 2; version 2, before the input's
    // shape and scaling) and a newer one: all refused with both versions named; the older ones
    // are pointed at `trainer upgrade`.
    for old_version in [1u8, 2, 3] {
        let mut b = bytes.clone();
        b[4] = old_version;
        let old = Model::from_bytes(&b).unwrap_err();
        assert_eq!(
            old,
            ModelError::UnsupportedVersion {
                found: u16::from(old_version),
                supported: FORMAT_VERSION
            }
        );
        let text = old.to_string();
        assert!(
            text.contains(&format!("version {old_version}"))
                && text.contains(&format!("version {FORMAT_VERSION}"))
                && text.contains("trainer upgrade"),
            "{text}"
        );
    }
    let mut b = bytes.clone();
    b[4] = FORMAT_VERSION as u8 + 1;
    let new = Model::from_bytes(&b).unwrap_err();
    assert_eq!(
        new,
        ModelError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    assert!(new.to_string().contains("newer"), "{new}");
    let mut b = bytes.clone();
    b[6] = 9;
    fix_checksum(&mut b);
    assert_eq!(Model::from_bytes(&b), Err(ModelError::UnknownKind { kind: 9 }));
    let mut b = bytes.clone();
    b[6] = ModelKind::Convolutional as u8;
    fix_checksum(&mut b);
    assert_eq!(
        Model::from_bytes(&b),
        Err(ModelError::KindMismatch {
            header: ModelKind::Convolutional
        })
    );
    let mut b = bytes.clone();
    let n = b.len();
    b.insert(n - CHECKSUM_LEN, 0);
    fix_checksum(&mut b);
    assert_eq!(Model::from_bytes(&b), Err(ModelError::TrailingBytes { count: 1 }));
    let mut b = bytes;
    let n = b.len();
    b[n - 1] ^= 0xff;
    assert!(matches!(
        Model::from_bytes(&b),
        Err(ModelError::ChecksumMismatch { .. })
    ));
}

#[test]
fn layer_errors_name_the_layer_and_the_problem() {
    let p = parts();
    // A shift outside [-31, 30] in the decoder.
    let mut shifts = p.dec_shifts.clone();
    shifts[5] = 40;
    let mut b = body(&p);
    if let Layer::FullyConnected { params, .. } = &mut b.layers[3] {
        params.shifts = &shifts[..];
    }
    assert_eq!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::Layer {
            index: 3,
            error: Error::ShiftOutOfRange { channel: 5, shift: 40 }
        })
    );
    // A short weight array.
    let mut b = body(&p);
    if let Layer::FullyConnected { params, .. } = &mut b.layers[0] {
        params.weights = &p.enc_w[1..];
    }
    assert_eq!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::Layer {
            index: 0,
            error: Error::ShapeMismatch {
                operand: "weights",
                expected: 3 * PIXELS,
                actual: 3 * PIXELS - 1
            }
        })
    );
    // A chain that does not connect: the decoder expects 4 inputs.
    let mut b = body(&p);
    if let Layer::FullyConnected { inputs, .. } = &mut b.layers[3] {
        *inputs = 4;
    }
    assert!(matches!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::Layer { index: 3, .. })
    ));
    // Top-k keeping more codes than there are.
    let mut b = body(&p);
    b.layers[2] = Layer::TopK { k: 4 };
    assert!(matches!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::Layer { index: 2, .. })
    ));
    // A code split that leaves no decoder.
    let mut b = body(&p);
    b.code_after = 5;
    assert_eq!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::BadCodeSplit {
            code_after: 5,
            layers: 5
        })
    );
    // A table that is not 256 entries.
    let mut b = body(&p);
    b.layers[1] = Layer::Table {
        activation: Activation::Logistic,
        table: &p.table[..255],
        output: Quant {
            scale: 1.0 / 256.0,
            zero_point: -128,
        },
    };
    assert!(matches!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::Layer {
            index: 1,
            error: Error::ShapeMismatch { operand: "table", .. }
        })
    ));
}

#[test]
fn scratch_and_code_width_are_checked_when_binding() {
    let bytes = valid_blob();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut small = vec![0i8; model.scratch_len() - 1];
    assert_eq!(
        Runner::new(model.clone(), &mut small).err(),
        Some(ModelError::ScratchTooSmall {
            needed: 2 * PIXELS,
            actual: 2 * PIXELS - 1
        })
    );
    let mut scratch = vec![0i8; model.scratch_len()];
    assert_eq!(
        autoencoder_core::Autoencoder::<PIXELS, 4>::new(model.clone(), &mut scratch).err(),
        Some(ModelError::CodeWidthMismatch { model: 3, requested: 4 })
    );
    assert_eq!(
        autoencoder_core::Autoencoder::<783, 3>::new(model.clone(), &mut scratch).err(),
        Some(ModelError::InputWidthMismatch {
            model: PIXELS,
            requested: 783
        })
    );
    let mut runner = Runner::new(model, &mut scratch).unwrap();
    let mut code = [0i8; 2];
    assert_eq!(
        runner.encode_u8_into(&[0; PIXELS], &mut code),
        Err(ModelError::CodeWidthMismatch { model: 3, requested: 2 })
    );
    let mut code = [0i8; 3];
    assert_eq!(
        runner.encode_into(&[0; PIXELS - 1], &mut code),
        Err(ModelError::InputWidthMismatch {
            model: PIXELS,
            requested: PIXELS - 1
        })
    );
    let mut out = [0f32; PIXELS + 1];
    assert_eq!(
        runner.decode_f32_into(&code, &mut out),
        Err(ModelError::InputWidthMismatch {
            model: PIXELS,
            requested: PIXELS + 1
        })
    );
    let mut out = [0u8; PIXELS];
    assert_eq!(
        runner.denoise_into(&[0; PIXELS + 1], &mut out),
        Err(ModelError::InputWidthMismatch {
            model: PIXELS,
            requested: PIXELS + 1
        })
    );
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// MNIST's input shape, 28 x 28, as the file stores it.
const MNIST_SHAPE: [u8; 8] = [28, 0, 0, 0, 28, 0, 0, 0];

/// The sensor model's shape, 2 x 3.
const SENSOR_SHAPE: [u8; 8] = [2, 0, 0, 0, 3, 0, 0, 0];

#[test]
fn input_errors_are_named() {
    let p = parts();
    let load = |b: &ModelBody<'_>| blob(ModelKind::FullyConnected, b).map(|_| ());
    // Any zero point in int8 and any finite positive scale.
    for (scale, zero_point) in [(0.3, -5), (1e-30, 127), (1.0 / 255.0, -128)] {
        let mut b = body(&p);
        b.input = Quant { scale, zero_point };
        assert_eq!(load(&b), Ok(()), "scale {scale}, zero point {zero_point}");
    }
    for (scale, zero_point) in [
        (1.0, 128),
        (1.0, -129),
        (0.0, 0),
        (-1.0, 0),
        (f32::NAN, 0),
        (f32::INFINITY, 0),
    ] {
        let mut b = body(&p);
        b.input = Quant { scale, zero_point };
        assert_eq!(
            load(&b),
            Err(ModelError::BadInput),
            "scale {scale}, zero point {zero_point}"
        );
    }
    // Shapes: the product is what counts.
    for shape in [&[784][..], &[7, 4, 28], &[28, 28]] {
        let bytes = u32_bytes(shape);
        let mut b = body(&p);
        b.input_shape = &bytes;
        assert_eq!(load(&b), Ok(()), "{shape:?}");
        let model_bytes = blob(ModelKind::FullyConnected, &b).unwrap();
        assert_eq!(Model::from_bytes(&model_bytes).unwrap().input_shape(), shape);
    }
    let bad_shapes: [(&[u8], &str); 6] = [
        (&[], "it has no dimensions"),
        (&[28, 0, 0], "it is not a whole number of u32 values"),
        (&[28, 0, 0, 0, 28, 0, 0, 0, 1], "it is not a whole number of u32 values"),
        (&[28, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0], "a dimension is 0"),
        (
            &[7, 0, 0, 0, 4, 0, 0, 0, 28, 0, 0, 0, 1, 0, 0, 0],
            "it has more than 3 dimensions",
        ),
        (
            &[255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            "its product overflows",
        ),
    ];
    for (shape, reason) in bad_shapes {
        let mut b = body(&p);
        b.input_shape = shape;
        assert_eq!(load(&b), Err(ModelError::BadInputShape { reason }), "{shape:?}");
    }
    let shape = u32_bytes(&[27, 28]);
    let mut b = body(&p);
    b.input_shape = &shape;
    assert_eq!(
        load(&b),
        Err(ModelError::FirstLayerMismatch {
            input: 27 * 28,
            layer: PIXELS
        })
    );
}

#[test]
fn scaling_arrays_are_checked() {
    let p = parts();
    let load = |b: &ModelBody<'_>| blob(ModelKind::FullyConnected, b).map(|_| ());
    let ones = f32_bytes(&[1.0; PIXELS]);
    let short = f32_bytes(&[1.0; PIXELS - 1]);
    let mut divisors = vec![2.5f32; PIXELS];
    let mut b = body(&p);
    b.input_scaling = InputScaling::Standard {
        offset: &ones[..],
        divisor: &short[..],
    };
    assert_eq!(
        load(&b),
        Err(ModelError::InputScalingLength {
            array: "divisor",
            expected: 4 * PIXELS,
            actual: 4 * (PIXELS - 1)
        })
    );
    b.input_scaling = InputScaling::MinMax {
        offset: &short[..],
        divisor: &ones[..],
    };
    assert_eq!(
        load(&b),
        Err(ModelError::InputScalingLength {
            array: "offset",
            expected: 4 * PIXELS,
            actual: 4 * (PIXELS - 1)
        })
    );
    for (index, bad) in [(0, 0.0), (5, -0.0), (783, f32::NAN), (9, f32::NEG_INFINITY)] {
        let saved = divisors[index];
        divisors[index] = bad;
        let bytes = f32_bytes(&divisors);
        let mut b = body(&p);
        b.input_scaling = InputScaling::MinMax {
            offset: &ones[..],
            divisor: &bytes[..],
        };
        assert_eq!(
            load(&b),
            Err(ModelError::BadInputScaling {
                array: "divisor",
                index
            }),
            "divisor {bad}"
        );
        divisors[index] = saved;
    }
    let mut offsets = vec![-1e30f32; PIXELS];
    offsets[17] = f32::INFINITY;
    let offsets = f32_bytes(&offsets);
    let divisors = f32_bytes(&divisors);
    let tiny = f32_bytes(&[-1e-38; PIXELS]);
    let big = f32_bytes(&[3e38; PIXELS]);
    let mut b = body(&p);
    b.input_scaling = InputScaling::Standard {
        offset: &offsets[..],
        divisor: &divisors[..],
    };
    assert_eq!(
        load(&b),
        Err(ModelError::BadInputScaling {
            array: "offset",
            index: 17
        })
    );
    // Negative and tiny divisors, large offsets: any finite offset and nonzero divisor.
    let mut b = body(&p);
    b.input_scaling = InputScaling::Standard {
        offset: &big[..],
        divisor: &tiny[..],
    };
    assert_eq!(load(&b), Ok(()));
}

#[test]
fn the_output_must_be_as_wide_as_the_input_and_have_a_scale() {
    let p = parts();
    let mut b = body(&p);
    // The decoder's last 10 outputs dropped: 774 outputs for 784 inputs.
    if let Layer::FullyConnected { outputs, params, .. } = &mut b.layers[3] {
        *outputs = PIXELS as u32 - 10;
        params.weights = &p.dec_w[..3 * (PIXELS - 10)];
        params.weight_scales = &p.dec_words[..4 * (PIXELS - 10)];
        params.bias = &p.dec_words[..4 * (PIXELS - 10)];
        params.multipliers = &p.dec_words[..4 * (PIXELS - 10)];
        params.shifts = &p.dec_shifts[..PIXELS - 10];
    }
    assert_eq!(
        blob(ModelKind::FullyConnected, &b),
        Err(ModelError::OutputWidthMismatch {
            input: PIXELS,
            output: PIXELS - 10
        })
    );
    for scale in [0.0, -1.0 / 256.0, f32::NAN, f32::INFINITY] {
        let mut b = body(&p);
        b.layers[4] = Layer::Table {
            activation: Activation::Logistic,
            table: &p.table[..],
            output: Quant {
                scale,
                zero_point: -128,
            },
        };
        assert_eq!(
            blob(ModelKind::FullyConnected, &b),
            Err(ModelError::BadOutput),
            "scale {scale}"
        );
    }
}

/// Arrays of a model of 6 sensor values (shape `[2, 3]`, min-max scaled, input zero point 7)
/// with a code of 2.
struct SensorParts {
    enc_w: Vec<u8>,
    dec_w: Vec<u8>,
    enc_words: Vec<u8>,
    dec_words: Vec<u8>,
    enc_shifts: Vec<u8>,
    dec_shifts: Vec<u8>,
    offset: Vec<u8>,
    divisor: Vec<u8>,
}

const SENSORS: usize = 6;
const SENSOR_CODE: usize = 2;

fn sensor_parts() -> SensorParts {
    let (n, k) = (SENSORS, SENSOR_CODE);
    let mut rng = Rng(autoencoder_core::testutil::SplitMix64::new(99));
    let words = |n: usize, value: i32| (0..n).flat_map(|_| value.to_le_bytes()).collect::<Vec<u8>>();
    SensorParts {
        enc_w: rng.bytes(k * n),
        dec_w: rng.bytes(n * k),
        enc_words: words(k, 1 << 30),
        dec_words: words(n, 1 << 30),
        enc_shifts: vec![(-6i8) as u8; k],
        dec_shifts: vec![(-4i8) as u8; n],
        offset: f32_bytes(&[-1.0, 0.5, 20.0, -300.0, 0.0, 7.25]),
        divisor: f32_bytes(&[2.0, 0.25, 40.0, 600.0, 1.0, -3.5]),
    }
}

fn sensor_body(p: &SensorParts) -> ModelBody<'_> {
    let mut layers = heapless::Vec::new();
    for layer in [
        Layer::FullyConnected {
            inputs: SENSORS as u32,
            outputs: SENSOR_CODE as u32,
            params: Weights {
                weights: &p.enc_w[..],
                weight_scales: &p.enc_words[..],
                bias: &p.enc_words[..],
                multipliers: &p.enc_words[..],
                shifts: &p.enc_shifts[..],
                output: Quant {
                    scale: 0.2,
                    zero_point: -10,
                },
            },
        },
        Layer::FullyConnected {
            inputs: SENSOR_CODE as u32,
            outputs: SENSORS as u32,
            params: Weights {
                weights: &p.dec_w[..],
                weight_scales: &p.dec_words[..],
                bias: &p.dec_words[..],
                multipliers: &p.dec_words[..],
                shifts: &p.dec_shifts[..],
                output: Quant {
                    scale: 0.01,
                    zero_point: 3,
                },
            },
        },
    ] {
        layers.push(layer).unwrap();
    }
    let mut body = ModelBody {
        name: "sensors",
        source: r#"{"data":"synthetic"}"#,
        float_test_mse: f32::NAN,
        input_shape: &SENSOR_SHAPE[..],
        input_scaling: InputScaling::MinMax {
            offset: &p.offset[..],
            divisor: &p.divisor[..],
        },
        input: Quant {
            scale: 0.05,
            zero_point: 7,
        },
        code_after: 1,
        layers,
        anomaly: Anomaly::derive(
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
        )
        .unwrap(),
    };
    body.anomaly = Anomaly::of(&body).unwrap();
    body
}

#[test]
fn bit_flips_in_a_scaled_model_never_panic() {
    let p = sensor_parts();
    let bytes = blob(ModelKind::FullyConnected, &sensor_body(&p)).unwrap();
    let (mut loaded, mut rejected) = (0, 0);
    for bit in 0..(bytes.len() - CHECKSUM_LEN) * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        fix_checksum(&mut flipped);
        match load_and_run(&flipped) {
            Ok(()) => loaded += 1,
            Err(_) => rejected += 1,
        }
    }
    assert!(loaded > 0 && rejected > 0, "loaded {loaded}, rejected {rejected}");
}

/// The sensor model run through every entry of [`Autoencoder`] and [`Runner`].
#[test]
fn a_model_of_any_shape_runs_through_every_entry() {
    const N: usize = SENSORS;
    const K: usize = SENSOR_CODE;
    let mut rng = Rng(autoencoder_core::testutil::SplitMix64::new(100));
    let p = sensor_parts();
    let (offset, divisor) = (&p.offset, &p.divisor);
    let b = sensor_body(&p);
    let bytes = blob(ModelKind::FullyConnected, &b).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(
        (model.input_len(), model.input_shape(), model.code_len()),
        (N, &[2u32, 3][..], K)
    );
    assert_eq!(model.input_quant(), b.input);
    assert!(matches!(
        model.input_scaling(),
        InputScaling::MinMax { offset: o, divisor: d } if o == &offset[..] && d == &divisor[..]
    ));
    assert_eq!(model.source(), r#"{"data":"synthetic"}"#);
    assert_eq!(model.scratch_len(), 2 * N);
    let scaling = model.input_scaling();
    let (in_q, out_q) = (model.input_quant(), model.output_quant());

    let mut scratch = vec![0i8; model.scratch_len()];
    let mut ae = Autoencoder::<N, K>::new(model.clone(), &mut scratch).unwrap();
    let mut scratch2 = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch2).unwrap();
    for case in 0..200 {
        let x: [f32; N] = std::array::from_fn(|_| (rng.0.next_f64() * 80.0 - 40.0) as f32);
        let mut q = [0i8; N];
        quantize_f32(&x, &scaling, in_q, &mut q).unwrap();
        let code = ae.encode(&q).unwrap();
        assert_eq!(ae.encode_f32(&x).unwrap(), code, "case {case}");
        let out = ae.decode(&code).unwrap();
        assert_eq!(ae.reconstruct(&q).unwrap(), out, "case {case}");
        let mut want = [0f32; N];
        dequantize_f32(&out, &scaling, out_q, &mut want).unwrap();
        let bits = |v: [f32; N]| v.map(f32::to_bits);
        assert_eq!(bits(ae.decode_f32(&code).unwrap()), bits(want), "case {case}");
        assert_eq!(bits(ae.reconstruct_f32(&x).unwrap()), bits(want), "case {case}");
        assert_eq!(
            ae.decode_u8(&code).unwrap(),
            out.map(|c| (i32::from(c) + 128) as u8),
            "case {case}"
        );
        // The runner gives the same through slices.
        let (mut c2, mut o2, mut f2) = ([0i8; K], [0i8; N], [0f32; N]);
        runner.encode_f32_into(&x, &mut c2).unwrap();
        runner.reconstruct_into(&q, &mut o2).unwrap();
        runner.reconstruct_f32_into(&x, &mut f2).unwrap();
        assert_eq!((c2, o2, bits(f2)), (code, out, bits(want)), "case {case}");

        let p: [u8; N] = std::array::from_fn(|_| rng.next() as u8);
        let mut qp = [0i8; N];
        quantize_u8(&p, &scaling, in_q, &mut qp).unwrap();
        let code = ae.encode(&qp).unwrap();
        assert_eq!(ae.encode_u8(&p).unwrap(), code, "case {case}");
        assert_eq!(ae.denoise(&p).unwrap(), ae.decode_u8(&code).unwrap(), "case {case}");
        let mut d2 = [0u8; N];
        runner.denoise_into(&p, &mut d2).unwrap();
        runner.encode_u8_into(&p, &mut c2).unwrap();
        assert_eq!((d2, c2), (ae.denoise(&p).unwrap(), code), "case {case}");
    }
    // A NaN anywhere: a typed error, and nothing written.
    let mut x = [1.0f32; N];
    x[4] = f32::NAN;
    assert_eq!(ae.encode_f32(&x), Err(ModelError::NotANumber { index: 4 }));
    assert_eq!(ae.reconstruct_f32(&x), Err(ModelError::NotANumber { index: 4 }));
    let mut code = [5i8; K];
    assert_eq!(
        runner.encode_f32_into(&x, &mut code),
        Err(ModelError::NotANumber { index: 4 })
    );
    assert_eq!(code, [5; K]);
    // Infinite and huge raw values saturate instead.
    ae.encode_f32(&[f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, 0.0, -0.0])
        .unwrap();
}

/// The MNIST model's u8 entries are the int8 ones on `p - 128` and `q + 128`.
#[test]
fn pixels_in_and_out_are_the_codes_shifted_by_128() {
    let bytes = valid_blob();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.input_shape(), &[28, 28]);
    assert_eq!(model.input_scaling(), InputScaling::Unit);
    assert_eq!(model.source(), r#"{"test":"model_format"}"#);
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut ae = Autoencoder::<PIXELS, 3>::new(model, &mut scratch).unwrap();
    let mut rng = Rng(autoencoder_core::testutil::SplitMix64::new(5));
    for _ in 0..20 {
        let image: [u8; PIXELS] = std::array::from_fn(|_| rng.next() as u8);
        let codes = image.map(|p| (i32::from(p) - 128) as i8);
        let code = ae.encode(&codes).unwrap();
        assert_eq!(ae.encode_u8(&image).unwrap(), code);
        let floats = image.map(f32::from);
        assert_eq!(ae.encode_f32(&floats).unwrap(), code);
        let out = ae.decode(&code).unwrap();
        let pixels = out.map(|q| (i32::from(q) + 128) as u8);
        assert_eq!(ae.decode_u8(&code).unwrap(), pixels);
        assert_eq!(ae.denoise(&image).unwrap(), pixels);
    }
}
