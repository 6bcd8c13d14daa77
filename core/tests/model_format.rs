//! The model loader against malformed blobs: every truncation, every bit flip (with the checksum
//! left stale and with it recomputed, so that the decoder and the layer checks are reached),
//! random overwrites and random bodies. Nothing may panic, and every blob that loads must run.

use autoencoder_core::model::{
    encoded_len_bound, write, Activation, Layer, ModelBody, ModelKind, Quant, Weights, CHECKSUM_LEN, HEADER_LEN,
};
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
    ModelBody {
        name: "tiny",
        float_test_mse: 0.01,
        input: Quant {
            scale: 1.0 / 255.0,
            zero_point: -128,
        },
        code_after: 3,
        layers,
    }
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
    let image = [200u8; PIXELS];
    let mut out = [0u8; PIXELS];
    runner.encode_into(&image, &mut code).expect("a loaded model encodes");
    runner.denoise_into(&image, &mut out).expect("a loaded model denoises");
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
        let mut b = b"AEQ8\x01\x00\x01\x00".to_vec();
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
    // An older file (version 1, before the rules of format 2) and a newer one: both refused
    // with both versions named; the older one is pointed at `trainer upgrade`.
    let mut b = bytes.clone();
    b[4] = 1;
    let old = Model::from_bytes(&b).unwrap_err();
    assert_eq!(old, ModelError::UnsupportedVersion { found: 1, supported: 2 });
    let text = old.to_string();
    assert!(
        text.contains("version 1") && text.contains("version 2") && text.contains("trainer upgrade"),
        "{text}"
    );
    let mut b = bytes.clone();
    b[4] = 3;
    let new = Model::from_bytes(&b).unwrap_err();
    assert_eq!(new, ModelError::UnsupportedVersion { found: 3, supported: 2 });
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
        autoencoder_core::Autoencoder::<4>::new(model.clone(), &mut scratch).err(),
        Some(ModelError::CodeWidthMismatch { model: 3, requested: 4 })
    );
    let mut runner = Runner::new(model, &mut scratch).unwrap();
    let mut code = [0i8; 2];
    assert_eq!(
        runner.encode_into(&[0; PIXELS], &mut code),
        Err(ModelError::CodeWidthMismatch { model: 3, requested: 2 })
    );
}
