//! The stack's peak: how much of its room the firmware used, on every board.
//!
//! At reset cortex-m-rt paints the stack's room, from its bottom (`_stack_end`) to its top
//! (`_stack_start`), with [`PAINT`] (its `paint-stack` feature, see Cargo.toml). With `flip-link`
//! (`.cargo/config.toml`) that room is the RAM below the statics, down to the start of RAM. The
//! stack grows down from the top; its peak is how far down the paint is gone.
//! A word the stack wrote with the paint's own value (`0xCCCC_CCCC`), below every other word it
//! wrote, would count as unused: the peak can come out a few bytes low, never high.

use cortex_m_rt::STACK_PAINT_VALUE as PAINT;

extern "C" {
    /// The top of the stack (set by `flip-link`: just below the statics).
    static _stack_start: u32;
    /// The bottom of the stack's room (set by `flip-link`: the start of RAM).
    static _stack_end: u32;
}

/// The addresses of the bottom and the top of the room the stack has.
pub fn bounds() -> (usize, usize) {
    // Only the symbols' addresses are taken; nothing is read through them.
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    (bottom, top)
}

/// Bytes of the stack's room: the most the stack can take.
pub fn room() -> u32 {
    let (bottom, top) = bounds();
    (top - bottom) as u32
}

/// Bytes of stack used at most since reset or the last [`repaint`]: from the top of the stack down to
/// the highest word below every word that lost its paint. [`room`] itself means the stack used all
/// of its room.
pub fn peak() -> u32 {
    let (bottom, top) = bounds();
    let mut at = bottom;
    // SAFETY: every word from `bottom` to `top` is RAM of the stack's room (link.x), aligned to 4;
    // reading one of them, in use by the stack or not, has no effect.
    while at < top && unsafe { core::ptr::with_exposed_provenance::<u32>(at).read_volatile() } == PAINT {
        at += 4;
    }
    (top - at) as u32
}

/// Paints the stack's room below the current stack pointer again, so that the next [`peak`]
/// measures from here on.
#[inline(never)]
fn repaint() {
    let (bottom, _) = bounds();
    // Below the stack pointer no frame is alive; this function's own frame is above it.
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = bottom;
    while at + 4 <= sp {
        // SAFETY: `at` is a word of the stack's room below the stack pointer, which holds nothing
        // (an exception taken meanwhile stacks its frame and removes it before this loop goes
        // on), and is aligned to 4.
        unsafe { core::ptr::with_exposed_provenance_mut::<u32>(at).write_volatile(PAINT) };
        at += 4;
    }
}

/// The peak so far ([`peak`]), then the stack painted again ([`repaint`]) so that the next peak
/// measures what follows: the firmware's peak while loading a model.
pub fn peak_then_repaint() -> u32 {
    let peak = peak();
    repaint();
    peak
}
