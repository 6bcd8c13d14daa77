//! Generates the C header from this crate's exported items with cbindgen, into
//! `$OUT_DIR/autoencoder.h`. `tests/header.rs` holds `include/autoencoder.h`, the copy C code
//! includes, to it (`AE_UPDATE_HEADER=1 cargo test -p core-c --test header` rewrites it).

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("autoencoder.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("core-c/cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the C header")
        .write_to_file(&out);
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=cbindgen.toml");
}
