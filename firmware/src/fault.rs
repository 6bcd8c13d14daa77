//! What a HardFault reports, on both boards, and how a stack overflow ends.
//!
//! The firmware is linked with `flip-link` (`.cargo/config.toml`): the stack sits at the bottom
//! of RAM, below the statics, and grows down towards the start of RAM. A stack that overflows
//! writes below RAM, which faults, instead of overwriting the statics silently as it would with
//! cortex-m-rt's own layout (stack at the top, growing down into the statics).
//!
//! By then the stack pointer is at the bottom of its room or below it, where the handler cannot
//! push a single register. So the HardFault entry here is three instructions of assembly, before
//! any Rust code runs: it reads the stacked program counter if the exception frame lies within the
//! stack's room, moves the stack pointer back to the top of the stack (the handler never returns,
//! so nothing of the faulting code's stack is needed any more) and calls [`entry`], which tells a
//! stack overflow from any other fault and hands it to the board's `hard_fault`.

use crate::stack;
use core::mem::MaybeUninit;

/// The HardFault's cause, as far as the firmware can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The stack pointer was below the room of the stack, or too close to its bottom for an
    /// exception frame: the stack overflowed. `sp` is the stack pointer at the fault.
    StackOverflow { sp: u32 },
    /// Any other fault, at the stacked program counter `pc`.
    Other { pc: u32 },
}

/// Bytes of the exception frame the core pushes on entry: r0-r3, r12, lr, pc, xPSR.
const FRAME: usize = 32;

// The vector table's HardFault (cortex-m-rt's link.x takes a `HardFault` the program defines over
// its own). Armv6-M instructions only, so the same code serves the Cortex-M0 and the Cortex-M4.
// r0: the main stack pointer at the fault; r1: the stacked pc, or 0 where the frame would lie
// below the stack's room; then sp = the top of the stack, and `entry(r0, r1)`.
core::arch::global_asm!(
    ".section .HardFault.user, \"ax\"",
    ".global HardFault",
    ".type HardFault,%function",
    ".thumb_func",
    "HardFault:",
    "    mrs r0, MSP",
    "    movs r1, #0",
    "    ldr r2, =_stack_end",
    "    cmp r0, r2",
    "    blo 1f",
    "    ldr r1, [r0, #24]",
    "1:",
    "    ldr r2, =_stack_start",
    "    mov sp, r2",
    "    bl {entry}",
    "    .ltorg",
    ".size HardFault, . - HardFault",
    entry = sym entry,
);

/// The HardFault handler proper, on a fresh stack: `sp` is the stack pointer at the fault, `pc`
/// the stacked program counter (0 if the frame was not read).
extern "C" fn entry(sp: u32, pc: u32) -> ! {
    let (bottom, _) = stack::bounds();
    let fault = if (sp as usize) < bottom + FRAME {
        Fault::StackOverflow { sp }
    } else {
        Fault::Other { pc }
    };
    #[cfg(feature = "qemu")]
    crate::qemu::hard_fault(fault);
    #[cfg(feature = "board-nrf52840")]
    crate::board::hard_fault(fault);
}

/// The canary's words.
const CANARY_WORDS: [u32; 4] = [0x5afe_c0de, 0xa5a5_5a5a, 0x0123_4567, 0x89ab_cdef];

/// Words that nothing but [`set_canary`] and [`statics_intact`] touch, at the end of the statics
/// (cortex-m-rt's `.uninit` comes after `.bss`). That end is the one a stack overflow would reach
/// first in cortex-m-rt's own layout, where the stack grows down from the top of RAM into the
/// statics; with `flip-link` the statics are above the stack and the canary the farthest from it.
#[link_section = ".uninit.CANARY"]
static mut CANARY: MaybeUninit<[u32; 4]> = MaybeUninit::uninit();

/// Writes the canary; the firmware's first step.
pub fn set_canary() {
    // SAFETY: called once, at the start of `main`, before anything reads the canary; a volatile
    // write of plain words to a static that no reference points to.
    unsafe {
        core::ptr::addr_of_mut!(CANARY)
            .cast::<[u32; 4]>()
            .write_volatile(CANARY_WORDS)
    };
}

/// Whether the canary still holds the value [`set_canary`] wrote.
pub fn statics_intact() -> bool {
    // SAFETY: written by `set_canary` at the start of `main`; a volatile read, which cannot be
    // elided.
    let canary = unsafe { core::ptr::addr_of!(CANARY).cast::<[u32; 4]>().read_volatile() };
    canary == CANARY_WORDS
}

/// Recurses until the stack overflows, with frames of a few hundred bytes that it writes in full:
/// the firmware's check that an overflow faults (`--overflow-stack` under QEMU). Never returns.
#[cfg(feature = "qemu")]
#[inline(never)]
pub fn overflow_stack(depth: u32) -> u32 {
    // A way out that the compiler cannot rule out, without which it would see a function that
    // cannot return.
    if core::hint::black_box(depth) == u32::MAX {
        return 0;
    }
    let mut frame = [depth; 64];
    core::hint::black_box(&mut frame);
    let below = overflow_stack(depth.wrapping_add(1));
    below.wrapping_add(frame[(depth % 64) as usize])
}
