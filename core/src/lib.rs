//! The embedded inference core of the autoencoder project.
//!
//! The trainer (on the host) trains the autoencoders in f32 and exports them int8-quantized; this
//! crate runs them on Cortex-M microcontrollers. Every kernel is bit-identical to TensorFlow Lite
//! Micro's int8 reference kernels (which CMSIS-NN also matches) given the same quantized tensors,
//! and gives the same bits on the host as on the device, so a model can be tested on the host and
//! trusted on the board. The integer rules are written up in the project's
//! `docs/int8-arithmetic.md`; tests hold every kernel to golden vectors computed by TFLM, with
//! tolerance 0.
//!
//! Design constraints:
//! - `#![no_std]`, no allocator, no `unsafe` outside the inline assembly of the Cortex-M4's
//!   DSP path (`docs/dsp.md`): it builds for `thumbv6m-none-eabi` (Cortex-M0)
//!   and `thumbv7em-none-eabihf` (Cortex-M4F/M7) with nothing but `core`.
//! - No floating point on the int8 inference path. The host-side float functions,
//!   [`requantize::quantize_multiplier`] (with [`requantize::round_half_away_from_zero`]), run at
//!   export time; the device only sees their integer results. The one float step on the device
//!   is optional, at the two ends: raw float samples quantized into the model's input and its
//!   output dequantized back ([`quantize_f32`](mod@quantize_f32), TFLM's `QUANTIZE` and
//!   `DEQUANTIZE`, exact f32 operations).
//! - Kernels never panic on bad input: they check every slice length and parameter first and
//!   return an [`Error`] without touching the output.
//!
//! Running a model (the usual entry point):
//! - [`model`]: the model file, [`Model::from_bytes`] (borrowing, checking everything, a typed
//!   [`ModelError`] for anything wrong) and, for the host-side exporter, [`model::write`]. A
//!   model takes N values of any fixed shape (its [`Model::input_shape`]) and gives back N.
//! - [`Autoencoder`]: fixed-size `encode(&[i8; N]) -> [i8; K]`, `decode(&[i8; K]) -> [i8; N]`
//!   and `reconstruct`, the same from raw samples (`encode_u8`, `encode_f32`, `decode_u8`,
//!   `decode_f32`, `reconstruct_f32`) and for MNIST's pixels `denoise(&[u8; N]) -> [u8; N]`,
//!   with caller-provided scratch; [`Runner`] for widths known only at run time.
//!
//! ```
//! use autoencoder_core::{Autoencoder, Model, ModelError};
//! fn denoise_one(blob: &[u8], image: &[u8; 784]) -> Result<[u8; 784], ModelError> {
//!     let model = Model::from_bytes(blob)?; // e.g. include_bytes!("models/fc.aeq")
//!     let mut scratch = [0i8; 2 * 784]; // at least model.scratch_len()
//!     let mut fc = Autoencoder::<784, 64>::new(model, &mut scratch)?;
//!     fc.denoise(image)
//! }
//! ```
//!
//! The kernels, one per module:
//! - [`requantize`]: TFLM's fixed-point requantization (`quantize_multiplier`,
//!   `multiply_by_quantized_multiplier` and its two rounding steps), shared by the host-side
//!   export and all int8 kernels.
//! - [`fully_connected_s8`](mod@fully_connected_s8): the int8 fully connected layer
//!   ([`fully_connected_s8()`], [`FcParams`]).
//! - [`conv2d_s8`](mod@conv2d_s8): the int8 2-D convolution, `VALID` padding, stride 1,
//!   per-output-channel scales ([`conv2d_s8()`], [`Conv2dGeometry`], [`Conv2dParams`]).
//! - [`max_pool_s8`](mod@max_pool_s8): the int8 2x2, stride-2 max-pool ([`max_pool_s8()`],
//!   [`MaxPoolGeometry`]).
//! - [`table_s8`]: 256-entry tables for LeakyReLU and Logistic, built on the host with TFLM's
//!   integer rules.
//! - [`top_k_s8`](mod@top_k_s8): hard top-k sparsity on int8 codes.
//! - [`quantize_f32`](mod@quantize_f32): raw samples (f32 or u8) scaled and quantized into int8
//!   inputs, int8 outputs dequantized and unscaled, as TFLM's `QUANTIZE` and `DEQUANTIZE`.
//! - [`fully_connected_leaky_s8`](mod@fully_connected_leaky_s8) and
//!   [`conv2d_leaky_s8`](mod@conv2d_leaky_s8): the same layers with TFLM's LeakyReLU
//!   requantization applied to the i32 accumulator (used where an int8 tensor between the two
//!   would lose too much).

#![no_std]
#![deny(missing_docs)]
// `unsafe` only in the DSP path's inline assembly (`fully_connected_s8_dsp`), each block with
// its `// SAFETY:` argument.
#![deny(unsafe_code)]
// Panic-free by construction: no indexing, unwrap or explicit panics outside tests.
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

// Tests may use std (Vec, format!, f64::round as an oracle); the library itself never does.
#[cfg(test)]
extern crate std;

// Owned models for host tools (`alloc` feature); the device build never has it.
#[cfg(feature = "alloc")]
extern crate alloc;

pub mod anomaly_score_s8;
mod autoencoder;
pub mod conv2d_leaky_s8;
pub mod conv2d_s8;
#[cfg(any(arm_dsp, test))]
mod conv2d_s8_dsp;
mod error;
pub mod fully_connected_leaky_s8;
pub mod fully_connected_s8;
#[cfg(any(arm_dsp, test))]
#[allow(unsafe_code)]
mod fully_connected_s8_dsp;
pub mod max_pool_s8;
pub mod model;
pub mod quantize_f32;
pub mod requantize;
pub mod storage;
pub mod table_s8;
pub mod top_k_s8;

#[doc(hidden)]
pub mod testutil;

pub use anomaly_score_s8::{anomaly_score_s8, ScoreParams};
pub use autoencoder::{code_to_pixel, pixel_to_code, Autoencoder, Runner};
pub use conv2d_leaky_s8::conv2d_leaky_s8;
pub use conv2d_s8::{conv2d_s8, Conv2dGeometry, Conv2dParams};
pub use error::Error;
pub use fully_connected_leaky_s8::fully_connected_leaky_s8;
pub use fully_connected_s8::{fully_connected_s8, FcParams};
pub use max_pool_s8::{max_pool_s8, MaxPoolGeometry};
pub use model::{Model, ModelError, ModelKind, PIXELS};
pub use requantize::{
    effective_scale, fused_negative_scale, multiply_by_quantized_multiplier, quantize_multiplier, PerChannelQuant,
};
pub use top_k_s8::top_k_s8;
