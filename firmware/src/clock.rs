//! Instruction counter. QEMU runs with `-icount shift=0`, so the SysTick (25 MHz on the
//! mps2 boards) advances one tick every 40 instructions, exactly and repeatably; wraps of
//! its 24-bit counter are counted by the SysTick exception. (DWT's cycle counter reads 0
//! under QEMU.)

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;
/// Instructions per SysTick tick under `-icount shift=0` (1 ns per instruction, 25 MHz).
#[cfg(feature = "qemu")]
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
/// On a real board the SysTick runs on the core clock: the counts are core cycles (what the
/// log calls instructions; the boot line names the counter).
#[cfg(not(feature = "qemu"))]
pub const INSTRUCTIONS_PER_TICK: u64 = 1;

/// What [`now`] counts.
pub const COUNTER: &str = if cfg!(feature = "qemu") { "instructions" } else { "core-cycles" };

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Starts the SysTick counting down from its maximum with the wrap interrupt on.
pub fn start(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Instructions executed since [`start`].
pub fn now() -> u64 {
    loop {
        let w = WRAPS.load(Ordering::Acquire);
        let v = SYST::get_current();
        if WRAPS.load(Ordering::Acquire) == w {
            let ticks = w as u64 * (RELOAD as u64 + 1) + (RELOAD - v) as u64;
            return ticks * INSTRUCTIONS_PER_TICK;
        }
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::AcqRel);
}
