//! Spec files (`trainer::spec::Spec::parse`) on any bytes that are UTF-8. A spec that parses is
//! checked against MNIST's shapes and the data-independent rules, and written back as TOML,
//! which must parse again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trainer::spec::{check, Spec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = Spec::parse(text, "fuzz.toml") else {
        return;
    };
    let arch = spec.architecture();
    let _ = check::check(&arch, None, &[784]);
    let _ = check::check(&arch, Some(&[28, 28]), &[28, 28]);
    let _ = check::encoder_layers(&arch);
    let _ = check::decoder_layers(&arch);
    let written = spec.to_toml();
    if let Err(e) = Spec::parse(&written, "written.toml") {
        panic!("a parsed spec written back does not parse: {e}\n{text:?}\n{written}");
    }
});
