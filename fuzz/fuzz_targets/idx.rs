//! The IDX reader (`idx` crate) on any bytes: gunzipped when they start with the gzip magic, as
//! files are, then read as MNIST images and labels and as an array of any type and shape.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    let Ok(bytes) = idx::inflate(path, data.to_vec()) else {
        return;
    };
    let _ = idx::parse_idx(path, &bytes, 0x0000_0803, "images", &[28, 28]);
    let _ = idx::parse_idx(path, &bytes, 0x0000_0801, "labels", &[]);
    if let Ok(array) = idx::parse_array(path, &bytes) {
        let _ = (array.element(), array.count(), array.item_shape(), array.values.len());
    }
});
