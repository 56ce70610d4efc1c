//! The Arm DSP extension's dual 16-bit multiply-accumulate, the one instruction the
//! optimized convolution needs that stable Rust does not expose as a safe intrinsic
//! (`core::arch::arm::__smlad` is unstable). Feature `dsp`, `target_arch = "arm"` only.
#![allow(unsafe_code)]

/// `acc + lo(a)·lo(b) + hi(a)·hi(b)`, the halves read as i16: SMLAD.
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let out: i32;
    // SAFETY: SMLAD reads three registers and writes one; it touches no memory and no
    // flags other than Q (saturation sticky bit, which nothing here reads). The `dsp`
    // feature documents that it is only enabled for cores that implement the instruction.
    unsafe {
        core::arch::asm!("smlad {out}, {a}, {b}, {acc}", out = lateout(reg) out, a = in(reg) a, b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
    }
    out
}
