//! The trainer's `.npy` reader (`trainer::data::parse_npy`, what `data::load` runs on a `.npy`
//! file's bytes) on any bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = trainer::data::parse_npy(Path::new("fuzz.npy"), data);
});
