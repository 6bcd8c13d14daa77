//! The trainer's `.npz` reader (`trainer::data::parse_npz`, what `data::load` runs on a `.npz`
//! archive's bytes) on any bytes: the zip directory, deflate, and each array's `.npy` header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = trainer::data::parse_npz(Path::new("fuzz.npz"), data);
});
