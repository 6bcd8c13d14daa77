//! Checkpoint decoding (`trainer::checkpoint::decode`, what `checkpoint::load` runs on a file's
//! bytes) of a training state, on any bytes.
//!
//! The checksum fix-up: a checkpoint ends with the CRC-32 of everything before it, which random
//! mutations almost never keep right. Before decoding, the target recomputes the CRC-32 (the
//! IEEE one, as `crc32fast` and `autoencoder_core::model::crc32` compute it) over all bytes but
//! the last 4 and writes it into the last 4, so the fuzzer reaches the version check and the
//! postcard decoder of the state behind it. `AE_FUZZ_KEEP_CRC=1` in the environment turns the
//! fix-up off (to measure what it adds).

#![no_main]

use autoencoder_core::model::crc32;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

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
    let _ = trainer::checkpoint::decode::<trainer::train::State>(Path::new("fuzz.ckpt"), &bytes);
});
