//! Build script of the core: selects the kernels' DSP path.
//!
//! Sets `cfg(arm_dsp)` when the target is a Cortex-M4 or M7 (`thumbv7em-*`, whose Armv7E-M
//! architecture always has the DSP extension's `SMLAD`, `SXTB16` and `SXTAB16`) and the
//! `portable` feature is off. Rust's `target_feature = "dsp"` would say the same, but it is not
//! reported on stable Rust, so the target name decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let portable = std::env::var_os("CARGO_FEATURE_PORTABLE").is_some();
    if target.starts_with("thumbv7em-") && !portable {
        println!("cargo::rustc-cfg=arm_dsp");
    }
}
