//! The autoencoder core's C API: `libautoencoder.a` and `include/autoencoder.h`.
//!
//! Firmware written in C (STM32Cube, Zephyr, nRF Connect SDK, ESP-IDF, Arduino) runs the same
//! models with the same bits as the Rust firmware: every function here is a thin wrapper over
//! the core's [`Runner`](autoencoder_core::Runner). The header is generated from this crate by
//! cbindgen at build time (`build.rs`); `tests/header.rs` holds the committed copy to it.
//!
//! - No allocator: the caller owns every byte. [`ae_model`] is storage of a fixed size that the
//!   caller provides (a static, a local); the model blob and the scratch it is loaded with are
//!   borrowed for as long as the model is used.
//! - Every function returns an [`ae_status`]: `AE_OK`, or one value per error of the core, and
//!   writes nothing when it fails. Null pointers, misaligned pointers, buffers that overlap and
//!   lengths that are not the model's are statuses, never undefined behaviour on our side.
//! - Nothing panics: the core is panic-free by its lints, and this crate checks every pointer
//!   and length before making a slice of it. Should a panic happen anyway, it aborts: on a
//!   microcontroller by calling the C library's `abort()` (which the firmware provides, as for
//!   any C code that asserts), on the host as Rust aborts a panic leaving an `extern "C"`
//!   function (`SIGABRT`).
//!
//! Built for `thumbv7em-none-eabihf` (Cortex-M4F/M7), `thumbv6m-none-eabi` (Cortex-M0/M0+) and
//! the host; for firmware, with the `embedded` profile (size first, the core's kernels at
//! `opt-level = 2`, as the Rust firmware is built):
//! `cargo build -p core-c --profile embedded --target thumbv7em-none-eabihf`.

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

// The host build links std: its panic runtime, for the staticlib a host program links and for
// the tests. The microcontroller builds are `core` only.
#[cfg(not(target_os = "none"))]
extern crate std;

mod buffers;
mod handle;
mod run;
mod status;

pub use handle::{
    ae_input_scaling, ae_model, ae_model_check, ae_model_get_info, ae_model_info, ae_model_is_anomalous, ae_model_load,
    AE_MODEL_WORDS,
};
pub use run::{
    ae_anomaly_score, ae_anomaly_score_f32, ae_anomaly_score_u8, ae_decode, ae_decode_f32, ae_decode_u8, ae_denoise,
    ae_encode, ae_encode_f32, ae_encode_u8, ae_reconstruct, ae_reconstruct_f32,
};
pub use status::{ae_status, ae_status_name, ALL as ALL_STATUSES};

/// On a microcontroller, a panic calls the C library's `abort()`: the same end as a failed
/// `assert` in the firmware's own C code.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        fn abort() -> !;
    }
    // SAFETY: `abort` takes no arguments and never returns; every C runtime defines it.
    unsafe { abort() }
}
