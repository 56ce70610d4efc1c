//! Stack high-water mark: paint the stack below the current stack pointer with a pattern at
//! boot, later find the lowest word that no longer holds it. Measures what scoring and
//! sampling really use (the kernels' stack buffers included), for the footprint report.

/// Bytes painted below the stack pointer (the RAM map leaves megabytes between `.bss` and
/// the stack on both boards).
const PAINTED: usize = 128 * 1024;
/// Margin kept above the painted area for the painting function's own frame.
const MARGIN: usize = 256;
const PATTERN: u32 = 0x5AC3_A53C;

static mut TOP: usize = 0;

/// Paints the stack; call once, early, from `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp - MARGIN;
    let mut p = top - PAINTED;
    while p < top {
        // SAFETY: the words between `sp − MARGIN − PAINTED` and `sp − MARGIN` lie below the
        // live stack and above `.bss` (checked by the memory maps' sizes: RAM is 4 MiB and
        // the statics use under 2 MiB), so nothing else owns them.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
    // SAFETY: single-threaded firmware; written once before any reader.
    unsafe { TOP = sp };
}

/// Bytes of stack used since [`paint`] (relative to the stack pointer `paint` saw), as the
/// distance from that pointer to the lowest overwritten word.
pub fn used() -> usize {
    // SAFETY: single-threaded; `TOP` was written by `paint`.
    let sp = unsafe { TOP };
    let top = sp - MARGIN;
    let mut p = top - PAINTED;
    while p < top {
        // SAFETY: the painted area, as above.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PATTERN {
            break;
        }
        p += 4;
    }
    sp - p
}
