//! `Model::from_bytes` on any bytes, then a `Runner` over every model it accepts: encode, decode,
//! reconstruct and score one input. Nothing may panic, whatever the file says.
//!
//! The checksum fix-up: a model file ends with the CRC-32 of everything before it, which random
//! mutations almost never keep right, so nearly every input would stop at the checksum. Before
//! loading, the target recomputes the CRC-32 (`autoencoder_core::model::crc32`) over all bytes
//! but the last 4 and writes it into the last 4, so the fuzzer reaches the header checks, the
//! postcard decoder and the model checks behind it. `AE_FUZZ_KEEP_CRC=1` in the environment
//! turns the fix-up off (to measure what it adds).

#![no_main]

use autoencoder_core::model::crc32;
use autoencoder_core::{Model, Runner};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Models whose scratch or arrays would be larger are loaded and checked but not run.
const CAP: usize = 1 << 20;

fn fix_crc() -> bool {
    static FIX: OnceLock<bool> = OnceLock::new();
    *FIX.get_or_init(|| std::env::var_os("AE_FUZZ_KEEP_CRC").is_none())
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if fix_crc() && bytes.len() >= 4 {
        let (body, tail) = bytes.split_at_mut(data.len() - 4);
        tail.copy_from_slice(&crc32(body).to_le_bytes());
    }
    let Ok(model) = Model::from_bytes(&bytes) else {
        return;
    };
    let (scratch_len, input_len, code_len) = (model.scratch_len(), model.input_len(), model.code_len());
    if scratch_len > CAP || input_len > CAP || code_len > CAP {
        return;
    }
    let threshold = model.threshold();
    let _ = model.is_anomalous(0);
    let mut scratch = vec![0i8; scratch_len];
    let Ok(mut runner) = Runner::new(model, &mut scratch) else {
        panic!("a scratch of scratch_len() bytes is refused");
    };
    // One input taken from the file's own bytes (any i8 values, saturation included).
    let input: Vec<i8> = data.iter().cycle().take(input_len).map(|&b| b as i8).collect();
    let mut code = vec![0i8; code_len];
    let mut output = vec![0i8; input_len];
    let _ = runner.encode_into(&input, &mut code);
    let _ = runner.decode_into(&code, &mut output);
    let _ = runner.reconstruct_into(&input, &mut output);
    let _ = runner.anomaly_score(&input);
    if threshold.is_some() {
        let _ = runner.is_anomaly(&input);
    }
    // The float path: the model's input scaling and quantization of f32 values.
    let floats: Vec<f32> = input.iter().map(|&q| f32::from(q) * 0.37).collect();
    let mut float_out = vec![0f32; input_len];
    let _ = runner.encode_f32_into(&floats, &mut code);
    let _ = runner.decode_f32_into(&code, &mut float_out);
    let _ = runner.anomaly_score_f32(&floats);
});
