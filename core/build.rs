//! Build script of the core: selects the kernels' DSP path.
//!
//! Sets `cfg(arm_dsp)` when the target is a Cortex-M4 or M7 (`thumbv7em-*`, whose Armv7E-M
//! architecture always has the DSP extension's `SMLAD`, `SXTB16` and `SXTAB16`) and the
//! `portable` feature is off, and `cfg(armv6m)` for a Cortex-M0 or M0+ (`thumbv6m-*`). Rust's
//! target features would say the same, but stable Rust does not report Arm's, so the target
//! name decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(arm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let portable = std::env::var_os("CARGO_FEATURE_PORTABLE").is_some();
    if target.starts_with("thumbv7em-") && !portable {
        println!("cargo::rustc-cfg=arm_dsp");
    }
    // A Cortex-M0/M0+ (Armv6-M): eight low registers and no 16 x 16-bit multiply-accumulate, so
    // the portable row sums take the host's loop shape there (fewer values live at once).
    if target.starts_with("thumbv6m-") {
        println!("cargo::rustc-cfg=armv6m");
    }
}
