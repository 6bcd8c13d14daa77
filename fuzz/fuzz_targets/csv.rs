//! The trainer's `.csv` reader (`trainer::data::parse_csv`, what `data::load` runs on a `.csv`
//! table's bytes) on any bytes. The first byte picks the label column (none, the first by
//! index, or one named `label`); the rest is the table. One read per input: building the CSV
//! parser's state machine, instrumented, is most of a read's time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, table)) = data.split_first() else {
        return;
    };
    let label = match pick % 3 {
        0 => None,
        1 => Some("0"),
        _ => Some("label"),
    };
    let _ = trainer::data::parse_csv(Path::new("fuzz.csv"), table, label);
});
