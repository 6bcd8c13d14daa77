//! The trainer's `.csv` reader (`trainer::data::parse_csv`, what `data::load` runs on a `.csv`
//! table's bytes) on any bytes, with no label column, a label column by index and one by name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.csv");
    let _ = trainer::data::parse_csv(path, data, None);
    let _ = trainer::data::parse_csv(path, data, Some("0"));
    let _ = trainer::data::parse_csv(path, data, Some("label"));
});
