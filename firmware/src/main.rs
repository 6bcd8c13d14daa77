//! The autoencoder firmware: one int8 model, chosen at build time (`AE_MODEL`, see build.rs),
//! run by `autoencoder-core` on a Cortex-M4F, or on a Cortex-M0 (`thumbv6m-none-eabi`, the core's
//! portable kernels) under QEMU.
//!
//! A sample is what the model takes: u8 pixels for a model whose pixels quantize as `p - 128`
//! (the MNIST models), raw f32 values for any other, quantized on the device as the model file
//! says. build.rs picks one ([`Raw`]); only its [`Sample`] implementation is instantiated, so a
//! pixel model's firmware holds none of the float path. Each sample is encoded, reconstructed
//! and scored: its anomaly score is the core's (`anomaly_score`, `anomaly_score_f32`), its flag
//! the score against the threshold the model holds, if it holds one ([`flag`]).
//!
//! Two boards, one cargo feature each:
//! - `qemu` (default): QEMU's mps2-an386, or its microbit (nRF51822) for `thumbv6m-none-eabi`.
//!   Without arguments it runs the self-test on the built-in test samples; with `--samples IN
//!   --out OUT` it streams samples from a host file and writes every code, reconstruction, score
//!   and flag to another, through semihosting (see [`qemu`](crate::qemu)). The exit status tells
//!   success from failure.
//! - `board-nrf52840`: the nRF52840-DK through probe-rs, the self-test logged with defmt over
//!   RTT, cycles from the DWT cycle counter.

#![no_std]
#![no_main]

#[cfg(all(feature = "qemu", feature = "board-nrf52840"))]
compile_error!("choose one board: the default `qemu` or `--no-default-features --features board-nrf52840`");

#[cfg(feature = "board-nrf52840")]
mod board;
mod fault;
#[cfg(feature = "qemu")]
mod qemu;
mod stack;

use autoencoder_core::quantize_f32::{dequantize_f32, is_unit_pixels};
use autoencoder_core::{Autoencoder, Model, ModelError};
use cortex_m_rt::entry;

/// Constants of the built-in model, written by build.rs: `MODEL_NAME`, `INPUT`, `CODE`,
/// `SCRATCH`, `FLOAT_INPUT`, `Raw`, `SAMPLES`, `EXPECTED`.
mod built {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}
pub use built::{Raw, CODE, EXPECTED, FLOAT_INPUT, INPUT, MODEL_NAME, SAMPLES, SCRATCH};

/// The model file the firmware was built with.
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.aeq"));

/// Bytes of one sample, in a sample file and in flash: N pixels, or N f32 little-endian.
pub const SAMPLE_BYTES: usize = INPUT * <Raw as Sample>::BYTES;

/// Bytes of one reconstruction as the firmware reports it (see [`Sample::reconstruct`]).
pub const OUTPUT_BYTES: usize = INPUT * <Raw as Sample>::OUTPUT_BYTES;

/// The built-in test samples, one after the other (build.rs).
static TEST_SAMPLES: &[u8; SAMPLES * SAMPLE_BYTES] = include_bytes!(concat!(env!("OUT_DIR"), "/samples.bin"));

/// The model's activation buffers: exactly the scratch the built-in model needs.
static mut SCRATCH_BUFFER: [i8; SCRATCH] = [0; SCRATCH];

/// The built-in model's runner.
pub type Ae = Autoencoder<'static, 'static, INPUT, CODE>;

extern "C" {
    /// cortex-m-rt's handler of unexpected exceptions and interrupts.
    fn DefaultHandler();
}

/// Interrupt vectors of the chip: 32 on QEMU's mps2-an386 and on its microbit (nRF51822), 48 on
/// the nRF52840.
#[cfg(feature = "qemu")]
const INTERRUPTS: usize = 32;
#[cfg(feature = "board-nrf52840")]
const INTERRUPTS: usize = 48;

/// The chip's interrupt vectors, all to the default handler (the firmware enables no
/// interrupt; SysTick is an exception). With cortex-m-rt's `device` feature the table has
/// exactly the chip's length instead of the generic 240 entries: 832 bytes of flash less under
/// QEMU, 768 on the nRF52840.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); INTERRUPTS] = [DefaultHandler; INTERRUPTS];

#[entry]
fn main() -> ! {
    fault::set_canary();
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

/// A raw input value and how the firmware runs a sample of them (N values, [`SAMPLE_BYTES`]
/// bytes). build.rs picks the type for the built-in model ([`Raw`]).
pub trait Sample {
    /// Bytes of one raw value in a sample.
    const BYTES: usize;
    /// Bytes of the reconstruction per input value (see [`Sample::reconstruct`]).
    const OUTPUT_BYTES: usize;
    /// What a sample is called in messages.
    const NOUN: &'static str;
    /// What the second timed step is called in messages.
    const SECOND: &'static str;

    /// Whether `model` takes samples of this type.
    fn takes(model: &Model<'_>) -> bool;

    /// The code of `sample` (the first timed step); `work` is N codes of room.
    ///
    /// # Errors
    /// The core's error: none for a model that loaded, except
    /// [`ModelError::NotANumber`] for a NaN in a float sample.
    fn encode(ae: &mut Ae, sample: &[u8], work: &mut [i8; INPUT], code: &mut [i8; CODE]) -> Result<(), ModelError>;

    /// The reconstruction of `sample`, whose code is `code` (the second timed step), as
    /// [`OUTPUT_BYTES`] bytes; `work` is N codes of room.
    ///
    /// # Errors
    /// The core's error: none for a model that loaded.
    fn reconstruct(
        ae: &mut Ae,
        sample: &[u8],
        work: &mut [i8; INPUT],
        code: &[i8; CODE],
        output: &mut [u8],
    ) -> Result<(), ModelError>;

    /// The anomaly score of `sample` (the third timed step): the core's score of the sample's
    /// input codes against the model's reconstruction of them; `work` is N codes of room.
    ///
    /// # Errors
    /// As [`Sample::encode`].
    fn score(ae: &mut Ae, sample: &[u8], work: &mut [i8; INPUT]) -> Result<u32, ModelError>;
}

/// u8 pixels of a model whose pixels quantize as `p - 128` (`Unit` scaling, scale 1/255, zero
/// point -128: the MNIST models). The firmware converts them itself, exactly as the core's
/// `encode_u8` and `denoise` do for such a model, and so links none of their float path.
impl Sample for u8 {
    const BYTES: usize = 1;
    const OUTPUT_BYTES: usize = 1;
    const NOUN: &'static str = "image";
    const SECOND: &'static str = "denoise";

    fn takes(model: &Model<'_>) -> bool {
        is_unit_pixels(&model.input_scaling(), model.input_quant())
    }

    /// `encode_u8`: the code of the pixels `p - 128`.
    fn encode(ae: &mut Ae, sample: &[u8], work: &mut [i8; INPUT], code: &mut [i8; CODE]) -> Result<(), ModelError> {
        flip_top_bits(sample, bytemuck::cast_slice_mut(work));
        *code = ae.encode(work)?;
        Ok(())
    }

    /// `denoise`: encode and decode the pixels `p - 128`; each output code `q` as the byte
    /// `q + 128` (N bytes).
    fn reconstruct(
        ae: &mut Ae,
        sample: &[u8],
        work: &mut [i8; INPUT],
        _code: &[i8; CODE],
        output: &mut [u8],
    ) -> Result<(), ModelError> {
        flip_top_bits(sample, bytemuck::cast_slice_mut(work));
        let reconstruction = ae.reconstruct(work)?;
        flip_top_bits(bytemuck::cast_slice(&reconstruction), output);
        Ok(())
    }

    /// `anomaly_score` of the pixels' codes `p - 128` (what `anomaly_score_u8` computes for
    /// such a model).
    fn score(ae: &mut Ae, sample: &[u8], work: &mut [i8; INPUT]) -> Result<u32, ModelError> {
        flip_top_bits(sample, bytemuck::cast_slice_mut(work));
        ae.anomaly_score(work)
    }
}

/// `to[i] = from[i] ^ 0x80`: pixels `p` to int8 codes `p - 128`, or codes `q` to pixels
/// `q + 128`. Four bytes to a word: the firmware is built for size, where a byte loop would
/// cost the encode of an `fc` model 3 % more instructions.
fn flip_top_bits(from: &[u8], to: &mut [u8]) {
    let (words, tail) = from.as_chunks::<4>();
    let (to_words, to_tail) = to.as_chunks_mut::<4>();
    for (t, &f) in to_words.iter_mut().zip(words) {
        *t = (u32::from_ne_bytes(f) ^ 0x8080_8080).to_ne_bytes();
    }
    for (t, &f) in to_tail.iter_mut().zip(tail) {
        *t = f ^ 0x80;
    }
}

/// Raw f32 values (little-endian in a sample), scaled and quantized on the device with the
/// model's input scaling and quantization (`encode_f32`).
impl Sample for f32 {
    const BYTES: usize = 4;
    const OUTPUT_BYTES: usize = 5;
    const NOUN: &'static str = "sample";
    const SECOND: &'static str = "decode";

    fn takes(_model: &Model<'_>) -> bool {
        true
    }

    /// `encode_f32`.
    fn encode(ae: &mut Ae, sample: &[u8], _work: &mut [i8; INPUT], code: &mut [i8; CODE]) -> Result<(), ModelError> {
        *code = ae.encode_f32(&floats(sample))?;
        Ok(())
    }

    /// `decode` of the code, the int8 output (N bytes), then that output dequantized and
    /// unscaled into raw units as `decode_f32` does (N f32, little-endian): 5 N bytes.
    fn reconstruct(
        ae: &mut Ae,
        _sample: &[u8],
        work: &mut [i8; INPUT],
        code: &[i8; CODE],
        output: &mut [u8],
    ) -> Result<(), ModelError> {
        *work = ae.decode(code)?;
        let mut values = [0f32; INPUT];
        let model = ae.model();
        dequantize_f32(work, &model.input_scaling(), model.output_quant(), &mut values)
            .map_err(|_| ModelError::BadOutput)?;
        let (codes, floats) = output.split_at_mut(INPUT.min(output.len()));
        for (b, &q) in codes.iter_mut().zip(work.iter()) {
            *b = q as u8;
        }
        for (b, v) in floats.as_chunks_mut::<4>().0.iter_mut().zip(values) {
            *b = v.to_le_bytes();
        }
        Ok(())
    }

    /// `anomaly_score_f32`: the sample quantized as `encode_f32` does, against its
    /// reconstruction.
    fn score(ae: &mut Ae, sample: &[u8], _work: &mut [i8; INPUT]) -> Result<u32, ModelError> {
        ae.anomaly_score_f32(&floats(sample))
    }
}

/// The N f32 values of a sample (little-endian).
fn floats(sample: &[u8]) -> [f32; INPUT] {
    let mut values = [0f32; INPUT];
    for (v, &bytes) in values.iter_mut().zip(sample.as_chunks::<4>().0) {
        *v = f32::from_le_bytes(bytes);
    }
    values
}

/// The flag of a sample whose score is above the model's threshold.
pub const FLAG_ANOMALY: u8 = 1;
/// The flag of a sample whose score is at most the model's threshold.
pub const FLAG_NORMAL: u8 = 0;
/// The flag of every sample when the model holds no threshold: it scores, but flags nothing.
pub const FLAG_NO_THRESHOLD: u8 = 0xFF;

/// The flag of `score` under the model's threshold ([`Model::is_anomalous`]): [`FLAG_ANOMALY`],
/// [`FLAG_NORMAL`], or [`FLAG_NO_THRESHOLD`] for a model without one.
pub fn flag(model: &Model<'_>, score: u32) -> u8 {
    match model.is_anomalous(score) {
        Ok(true) => FLAG_ANOMALY,
        Ok(false) => FLAG_NORMAL,
        Err(_) => FLAG_NO_THRESHOLD,
    }
}

/// What one sample gave: its code, its reconstruction, its anomaly score and flag, and the time
/// each step took.
pub struct Measured {
    /// The encoder's output.
    pub code: [i8; CODE],
    /// The reconstruction's bytes ([`Sample::reconstruct`]).
    pub output: [u8; OUTPUT_BYTES],
    /// The anomaly score ([`Sample::score`]).
    pub score: u32,
    /// The score under the model's threshold ([`flag`]).
    pub flag: u8,
    /// Clock units spent in the encode, the clock's own reading cost removed (saturating).
    pub encode_time: u32,
    /// Clock units spent in the reconstruction, the clock's own reading cost removed
    /// (saturating).
    pub reconstruct_time: u32,
    /// Clock units spent in the score, the clock's own reading cost removed (saturating).
    pub score_time: u32,
}

/// Zero outputs and times, the flag of a model without a threshold.
impl Default for Measured {
    fn default() -> Self {
        Measured {
            code: [0; CODE],
            output: [0; OUTPUT_BYTES],
            score: 0,
            flag: FLAG_NO_THRESHOLD,
            encode_time: 0,
            reconstruct_time: 0,
            score_time: 0,
        }
    }
}

/// Encodes, reconstructs and scores one sample into `measured`, and times each step. The outputs
/// go straight into the caller's `measured` rather than into a returned copy: on the Cortex-M0's
/// 16 KiB of RAM every copy of a sample's outputs on the stack counts.
pub fn measure<C: Clock>(
    ae: &mut Ae,
    sample: &[u8; SAMPLE_BYTES],
    clock: &mut C,
    measured: &mut Measured,
) -> Result<(), ModelError> {
    let mut work = [0i8; INPUT];
    // The code goes to a local first and to `measured` after the timing: into `measured` itself,
    // the copy of the core's result took 360 instructions more of a Cortex-M4's encode.
    let mut code = [0i8; CODE];
    let t0 = clock.now();
    let t1 = clock.now();
    let overhead = t1.wrapping_sub(t0);
    Raw::encode(ae, sample, &mut work, &mut code)?;
    let t2 = clock.now();
    Raw::reconstruct(ae, sample, &mut work, &code, &mut measured.output)?;
    let t3 = clock.now();
    measured.score = Raw::score(ae, sample, &mut work)?;
    let t4 = clock.now();
    measured.code = code;
    measured.flag = flag(ae.model(), measured.score);
    let elapsed =
        |from: u64, to: u64| u32::try_from(to.wrapping_sub(from).saturating_sub(overhead)).unwrap_or(u32::MAX);
    measured.encode_time = elapsed(t1, t2);
    measured.reconstruct_time = elapsed(t2, t3);
    measured.score_time = elapsed(t3, t4);
    Ok(())
}

/// Built-in test sample `index` (below [`SAMPLES`]).
pub fn test_sample(index: usize) -> &'static [u8; SAMPLE_BYTES] {
    let (samples, _) = TEST_SAMPLES.as_chunks::<SAMPLE_BYTES>();
    &samples[index]
}

/// Which outputs of a built-in sample are the host's.
pub struct Verdict {
    /// The code.
    pub code: bool,
    /// The reconstruction.
    pub output: bool,
    /// The anomaly score (and so its flag).
    pub score: bool,
}

impl Verdict {
    /// Every output is the host's.
    pub fn all(&self) -> bool {
        self.code && self.output && self.score
    }
}

/// Whether the code, the reconstruction and the score of built-in sample `index` are the host's:
/// the CRC-32s of the first two and the score itself against what build.rs computed.
pub fn matches_host(index: usize, measured: &Measured) -> Verdict {
    let [code, output, score] = EXPECTED[index];
    let code_bytes = measured.code.map(|c| c as u8);
    Verdict {
        code: autoencoder_core::model::crc32(&code_bytes) == code,
        output: autoencoder_core::model::crc32(&measured.output) == output,
        score: measured.score == score,
    }
}

/// A flag in words, for the logs.
pub fn flag_name(flag: u8) -> &'static str {
    match flag {
        FLAG_ANOMALY => "anomaly",
        FLAG_NORMAL => "normal",
        _ => "no threshold",
    }
}
