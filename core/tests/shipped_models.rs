//! Every model shipped in `models/` against its golden vectors (`<name>.golden.json`, written by
//! `trainer export` from the trainer's independent integer reference): codes and denoised pixels
//! must be equal byte for byte, through both the run-time-width [`Runner`] and the fixed-size
//! [`Autoencoder`], from u8 pixels and from the same pixels as floats.

use autoencoder_core::model::InputScaling;
use autoencoder_core::{Autoencoder, Model, Runner, PIXELS};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The first position where two byte strings differ, with both values.
fn first_difference(got: &[u8], want: &[u8]) -> Option<(usize, u8, u8)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .map(|(i, (&g, &w))| (i, g, w))
}

/// Runs the fixed-size API for the code widths of the shipped variants.
fn typed(model: Model<'_>, input: &[u8; PIXELS]) -> Option<(Vec<u8>, [u8; PIXELS])> {
    fn run<const K: usize>(model: Model<'_>, input: &[u8; PIXELS]) -> (Vec<u8>, [u8; PIXELS]) {
        let mut scratch = vec![0i8; model.scratch_len()];
        let mut ae = Autoencoder::<PIXELS, K>::new(model, &mut scratch).expect("binds");
        let code = ae.encode_u8(input).expect("encodes");
        let image = ae.denoise(input).expect("denoises");
        // The same pixels as floats, through the float path, and as int8 codes.
        assert_eq!(ae.encode_f32(&input.map(f32::from)).expect("encodes floats"), code);
        assert_eq!(
            ae.encode(&input.map(|p| (i32::from(p) - 128) as i8)).expect("encodes"),
            code
        );
        assert_eq!(ae.decode_u8(&code).expect("decodes"), image);
        (code.iter().map(|&c| c as u8).collect(), image)
    }
    match model.code_len() {
        2 => Some(run::<2>(model, input)),
        30 => Some(run::<30>(model, input)),
        64 => Some(run::<64>(model, input)),
        128 => Some(run::<128>(model, input)),
        _ => None,
    }
}

#[test]
fn every_shipped_model_matches_its_golden_vectors() {
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .expect("models/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "aeq"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The tutorial's models are MNIST's: 28 x 28 pixels, divided by 255, quantized as
        // p - 128. The others (the anomaly model of the example vibration data) have their own
        // input, and golden vectors of the synthetic cases alone (their samples are not bytes).
        let mnist = model.input_shape() == [28, 28];
        if mnist {
            assert_eq!(model.input_scaling(), InputScaling::Unit, "{name}");
            let input = model.input_quant();
            assert_eq!((input.scale, input.zero_point), (1.0 / 255.0, -128), "{name}");
        }
        let golden_path = path.with_extension("golden.json");
        let golden: Value = serde_json::from_str(
            &std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display())),
        )
        .unwrap();
        let cases = golden["cases"].as_array().expect("cases");
        assert!(
            cases.len() >= if mnist { 10 } else { 4 },
            "{name}: too few golden cases"
        );
        let mut scratch = vec![0i8; model.scratch_len()];
        let mut runner = Runner::new(model.clone(), &mut scratch).unwrap();
        let mut code = vec![0i8; model.code_len()];
        let mut image = vec![0u8; model.input_len()];
        for case in cases {
            let source = case["source"].as_str().unwrap();
            let input = unhex(case["input"].as_str().unwrap());
            assert_eq!(input.len(), model.input_len(), "{name}, {source}: input length");
            let want_code = unhex(case["code"].as_str().unwrap());
            let want_image = unhex(case["denoise"].as_str().unwrap());
            runner.encode_u8_into(&input, &mut code).unwrap();
            runner.denoise_into(&input, &mut image).unwrap();
            let got_code: Vec<u8> = code.iter().map(|&c| c as u8).collect();
            assert_eq!(got_code.len(), want_code.len(), "{name}, {source}: code width");
            if let Some((i, g, w)) = first_difference(&got_code, &want_code) {
                panic!(
                    "{name}, {source}: code[{i}] is {} but the golden value is {}",
                    g as i8, w as i8
                );
            }
            if let Some((i, g, w)) = first_difference(&image, &want_image) {
                panic!("{name}, {source}: pixel {i} is {g} but the golden value is {w}");
            }
            let typed = match <&[u8; PIXELS]>::try_from(&input[..]) {
                Ok(pixels) => typed(model.clone(), pixels),
                Err(_) => None,
            };
            if let Some((typed_code, typed_image)) = typed {
                assert_eq!(typed_code, got_code, "{name}, {source}: Autoencoder::encode");
                assert_eq!(typed_image[..], image[..], "{name}, {source}: Autoencoder::denoise");
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no model files in models/");
}
