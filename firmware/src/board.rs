//! The firmware on the nRF52840-DK: the self-test on the built-in test samples, each one's anomaly
//! flag and score, its outputs against the host's and the cycles of each step logged with defmt
//! over RTT (`probe-rs run` prints it), cycles from the DWT cycle counter (64 MHz core clock).
//! A panic goes to panic-probe, which stops the core; probe-rs then prints the backtrace and
//! exits with an error (the panic message is not formatted on the device: `core::fmt` would take
//! more flash than the rest of the firmware).

use crate::fault::{self, Fault};
use crate::{
    flag_name, matches_host, measure, test_sample, Ae, Clock, Measured, CODE, FLOAT_INPUT, INPUT, MODEL, MODEL_NAME,
    SAMPLES, SCRATCH,
};
use autoencoder_core::{Autoencoder, Model, ModelError};
use cortex_m::peripheral::DWT;
use defmt_rtt as _;
use panic_probe as _;

/// The DWT cycle counter, extended to 64 bits (it wraps after 67 s at 64 MHz, far longer than
/// any single measurement, so one wrap between two readings is all there can be).
struct Cycles {
    last: u32,
    high: u64,
}

impl Clock for Cycles {
    fn now(&mut self) -> u64 {
        let now = DWT::cycle_count();
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high + u64::from(now)
    }
}

/// Logs the fault (src/fault.rs calls it on a fresh stack) and stops.
pub fn hard_fault(fault: Fault) -> ! {
    match fault {
        Fault::Other { pc } => defmt::error!("hard fault at pc {=u32:#010x}", pc),
        Fault::StackOverflow { sp } => defmt::error!(
            "stack overflow: sp {=u32:#010x}, below the stack's room; statics intact: {=bool}",
            sp,
            fault::statics_intact()
        ),
    }
    stop()
}

pub fn main(scratch: &'static mut [i8]) -> ! {
    let Some(mut peripherals) = cortex_m::Peripherals::take() else {
        defmt::error!("no peripherals");
        stop()
    };
    peripherals.DCB.enable_trace();
    peripherals.DWT.enable_cycle_counter();
    let mut clock = Cycles { last: 0, high: 0 };

    defmt::info!(
        "model {=str}: {=usize} bytes, {=usize} values in (f32: {=bool}), code {=usize}, scratch {=usize} bytes; {=usize} built-in test samples",
        MODEL_NAME,
        MODEL.len(),
        INPUT,
        FLOAT_INPUT,
        CODE,
        SCRATCH,
        SAMPLES
    );
    let start = clock.now();
    let mut ae = match runner(scratch) {
        Ok(ae) => ae,
        Err(e) => {
            defmt::error!("model rejected: {=str}", e.name());
            stop()
        }
    };
    defmt::info!("model checked and loaded in {=u64} cycles", clock.now() - start);
    let loading = crate::stack::peak_then_repaint();

    let mut failed = 0;
    let mut measured = Measured::default();
    for index in 0..SAMPLES {
        match measure(&mut ae, test_sample(index), &mut clock, &mut measured) {
            Ok(()) => {}
            Err(e) => {
                defmt::error!("sample {=usize}: {=str}", index, e.name());
                stop()
            }
        };
        let verdicts = matches_host(index, &measured);
        if !verdicts.all() {
            failed += 1;
        }
        defmt::info!(
            "sample {=usize}: {=str}, score {=u32}; encode {=u32} cycles, reconstruction {=u32} cycles, score {=u32} cycles; as on the host: code {=bool}, reconstruction {=bool}, score {=bool}; code {}",
            index,
            flag_name(measured.flag),
            measured.score,
            measured.encode_time,
            measured.reconstruct_time,
            measured.score_time,
            verdicts.code,
            verdicts.output,
            verdicts.score,
            &measured.code[..CODE.min(8)]
        );
    }
    defmt::info!(
        "stack peak: loading {=u32} bytes, running {=u32} bytes, of {=u32} bytes",
        loading,
        crate::stack::peak(),
        crate::stack::room()
    );
    if failed > 0 {
        defmt::error!("{=usize} of {=usize} samples differ from the host", failed, SAMPLES);
    } else {
        defmt::info!("all {=usize} samples match the host bit for bit", SAMPLES);
    }
    stop()
}

fn runner(scratch: &'static mut [i8]) -> Result<Ae, ModelError> {
    Autoencoder::new(Model::from_bytes(MODEL)?, scratch)
}

/// Halts the core for the debugger: `probe-rs run` ends when it sees the breakpoint.
fn stop() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}
