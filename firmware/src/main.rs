//! The autoencoder firmware: one int8 model, chosen at build time (`AE_MODEL`, see build.rs),
//! run by `autoencoder-core` on a Cortex-M4F.
//!
//! Two boards, one cargo feature each:
//! - `qemu` (default): QEMU's mps2-an386. Without arguments it runs the self-test on the
//!   built-in test images; with `--images IN --out OUT` it streams MNIST images from a host file
//!   and writes every code and denoised image to another, through semihosting (see
//!   [`qemu`](crate::qemu)). The exit status tells success from failure.
//! - `board-nrf52840`: the nRF52840-DK through probe-rs, the self-test logged with defmt over
//!   RTT, cycles from the DWT cycle counter.

#![no_std]
#![no_main]

#[cfg(all(feature = "qemu", feature = "board-nrf52840"))]
compile_error!("choose one board: the default `qemu` or `--no-default-features --features board-nrf52840`");

#[cfg(feature = "board-nrf52840")]
mod board;
#[cfg(feature = "qemu")]
mod qemu;

use autoencoder_core::{Autoencoder, ModelError};
use cortex_m_rt::entry;

/// Constants of the built-in model, written by build.rs: `MODEL_NAME`, `INPUT`, `CODE`,
/// `SCRATCH`, `IMAGES`, `EXPECTED`.
mod built {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}
pub use built::{CODE, EXPECTED, IMAGES, INPUT, MODEL_NAME, SCRATCH};

/// The model file the firmware was built with.
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.aeq"));

/// The first [`IMAGES`] MNIST test images, one after the other.
static TEST_IMAGES: &[u8; IMAGES * INPUT] = include_bytes!(concat!(env!("OUT_DIR"), "/images.bin"));

/// The model's activation buffers: exactly the scratch the built-in model needs.
static mut SCRATCH_BUFFER: [i8; SCRATCH] = [0; SCRATCH];

/// The built-in model's runner.
pub type Ae = Autoencoder<'static, 'static, INPUT, CODE>;

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and is the only code that names the buffer, so this is the one
    // reference to it for the rest of the program.
    let scratch: &'static mut [i8] = unsafe { &mut *core::ptr::addr_of_mut!(SCRATCH_BUFFER) };
    #[cfg(feature = "qemu")]
    qemu::main(scratch);
    #[cfg(feature = "board-nrf52840")]
    board::main(scratch);
}

/// A free-running time base: SysTick ticks under QEMU, CPU cycles on the board.
pub trait Clock {
    /// The time now, in the clock's units.
    fn now(&mut self) -> u64;
}

/// What one image gave: its code, its denoised image, and the time each took.
pub struct Measured {
    /// `encode`'s output.
    pub code: [i8; CODE],
    /// `denoise`'s output.
    pub image: [u8; INPUT],
    /// Clock units spent in `encode`, the clock's own reading cost removed.
    pub encode_time: u64,
    /// Clock units spent in `denoise`, the clock's own reading cost removed.
    pub denoise_time: u64,
}

/// Runs `encode` and `denoise` on one image and times each.
pub fn measure<C: Clock>(ae: &mut Ae, image: &[u8; INPUT], clock: &mut C) -> Result<Measured, ModelError> {
    let t0 = clock.now();
    let t1 = clock.now();
    let overhead = t1.wrapping_sub(t0);
    let code = ae.encode_u8(image)?;
    let t2 = clock.now();
    let denoised = ae.denoise(image)?;
    let t3 = clock.now();
    Ok(Measured {
        code,
        image: denoised,
        encode_time: t2.wrapping_sub(t1).saturating_sub(overhead),
        denoise_time: t3.wrapping_sub(t2).saturating_sub(overhead),
    })
}

/// Built-in test image `index` (below [`IMAGES`]).
pub fn test_image(index: usize) -> &'static [u8; INPUT] {
    let (images, _) = TEST_IMAGES.as_chunks::<INPUT>();
    &images[index]
}

/// Whether the code and the denoised image of built-in image `index` are the host's: their
/// CRC-32s against those build.rs computed.
pub fn matches_host(index: usize, measured: &Measured) -> (bool, bool) {
    let [code, image] = EXPECTED[index];
    let code_bytes = measured.code.map(|c| c as u8);
    (
        autoencoder_core::model::crc32(&code_bytes) == code,
        autoencoder_core::model::crc32(&measured.image) == image,
    )
}
