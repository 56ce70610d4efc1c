//! Stack high-water mark: paint the stack below the current stack pointer with a pattern at
//! boot, later find the lowest word that no longer holds it. Measures what scoring and
//! sampling really use (the kernels' stack buffers included), for the footprint report.

/// Most bytes painted below the stack pointer (fewer when `.bss` ends closer).
const PAINTED: usize = 128 * 1024;
/// Margin kept above the painted area for the painting function's own frame.
const MARGIN: usize = 256;
const PATTERN: u32 = 0x5AC3_A53C;

static mut TOP: usize = 0;
static mut BOTTOM: usize = 0;

extern "C" {
    /// The end of `.bss` (cortex-m-rt's linker script); the stack grows down towards it.
    static __ebss: u8;
}

/// Paints the stack; call once, early, from `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp - MARGIN;
    // Only the symbol's address is taken.
    let ebss = core::ptr::addr_of!(__ebss) as usize;
    let bottom = (top.saturating_sub(PAINTED)).max(ebss.next_multiple_of(4));
    let mut p = bottom;
    while p < top {
        // SAFETY: the words between the end of `.bss` (or `sp − MARGIN − PAINTED`, if
        // higher) and `sp − MARGIN` lie below the live stack and above every static, so
        // nothing else owns them.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
    // SAFETY: single-threaded firmware; written once before any reader.
    unsafe {
        TOP = sp;
        BOTTOM = bottom;
    }
}

/// Bytes of stack used since [`paint`] (relative to the stack pointer `paint` saw), as the
/// distance from that pointer to the lowest overwritten word.
pub fn used() -> usize {
    // SAFETY: single-threaded; `TOP` and `BOTTOM` were written by `paint`.
    let (sp, bottom) = unsafe { (TOP, BOTTOM) };
    let top = sp - MARGIN;
    let mut p = bottom;
    while p < top {
        // SAFETY: the painted area, as above.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PATTERN {
            break;
        }
        p += 4;
    }
    sp - p
}
