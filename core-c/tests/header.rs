//! `include/autoencoder.h`, the header C code includes, is the one cbindgen generates from the
//! crate (build.rs): a change to the API that is not in the committed header fails here.
//! `AE_UPDATE_HEADER=1 cargo test -p core-c --test header` rewrites the committed copy.

use std::path::Path;

#[test]
fn the_committed_header_is_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/autoencoder.h"));
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/autoencoder.h");
    if std::env::var_os("AE_UPDATE_HEADER").is_some() {
        std::fs::write(&committed_path, generated).expect("writing include/autoencoder.h");
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "core-c/include/autoencoder.h is not the header cbindgen generates from core-c/src: \
         rewrite it with `AE_UPDATE_HEADER=1 cargo test -p core-c --test header` and commit it"
    );
}
