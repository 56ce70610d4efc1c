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

/// One step of [`dot1x4_blocks`]' loop as assembly text: two words (four i16) of the column
/// against the same two words of each of the four weight rows, 5 LDRD + 8 SMLAD.
macro_rules! two_words {
    () => {
        concat!(
            "ldrd {a0}, {a1}, [{c}], #8\n",
            "ldrd {w0}, {w1}, [{w}], #8\n",
            "smlad {s0}, {a0}, {w0}, {s0}\n",
            "smlad {s0}, {a1}, {w1}, {s0}\n",
            "ldrd {w0}, {w1}, [{w}], #8\n",
            "smlad {s1}, {a0}, {w0}, {s1}\n",
            "smlad {s1}, {a1}, {w1}, {s1}\n",
            "ldrd {w0}, {w1}, [{w}], #8\n",
            "smlad {s2}, {a0}, {w0}, {s2}\n",
            "smlad {s2}, {a1}, {w1}, {s2}\n",
            "ldrd {w0}, {w1}, [{w}], #8\n",
            "smlad {s3}, {a0}, {w0}, {s3}\n",
            "smlad {s3}, {a1}, {w1}, {s3}",
        )
    };
}

/// `s[r] += Σ_i dot(c[4i..4i+4], w-row r)` over `n` blocks of four words of `c` and 16 of
/// `w` (the interleaved layout of [`gemm1x4_row`]); returns `w` advanced past what it read.
/// The loop is 10 LDRD + 16 SMLAD + SUBS + BNE for 32 multiply-accumulates.
///
/// # Safety
/// `n ≥ 1`; `c` and `w` are word aligned and valid for reads of `16·n` and `64·n` bytes.
#[inline(always)]
unsafe fn dot1x4_blocks(c: *const u32, w: *const u32, n: usize, s: &mut [i32; 4]) -> *const u32 {
    let [mut s0, mut s1, mut s2, mut s3] = *s;
    let w_end: *const u32;
    // SAFETY: the caller guarantees the reads are in bounds and aligned (LDRD needs word
    // alignment); nothing is written to memory; SUBS clobbers the flags (not preserved).
    unsafe {
        core::arch::asm!(
            "2:",
            two_words!(),
            two_words!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            c = inout(reg) c => _,
            w = inout(reg) w => w_end,
            n = inout(reg) n => _,
            s0 = inout(reg) s0,
            s1 = inout(reg) s1,
            s2 = inout(reg) s2,
            s3 = inout(reg) s3,
            a0 = out(reg) _,
            a1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    *s = [s0, s1, s2, s3];
    w_end
}

/// Four output channels over `np` positions of one output row:
/// `acc[r·np + p] = bias[r] + Σ_(o, n) in runs dot(rows[o + p·step..][..n], weights of row r)`.
/// `w` holds the runs' weights one run after another, each run's four rows interleaved two
/// words at a time (for every two words of the run: two words of row 0, of row 1, of row 2,
/// of row 3; 4·n words per run). Every run must be a whole number of 4-word blocks.
/// Returns `false` without writing anything when the shapes do not fit these rules (the
/// caller then takes the portable path).
pub fn gemm1x4_row(rows: &[u32], runs: &[(usize, usize)], step: usize, w: &[u32], bias: [i32; 4], np: usize, acc: &mut [i32]) -> bool {
    if np == 0 || acc.len() < 4 * np {
        return np == 0;
    }
    let mut w_len = 0usize;
    for &(o, n) in runs {
        let end = (np - 1).checked_mul(step).and_then(|x| x.checked_add(o)).and_then(|x| x.checked_add(n));
        if n == 0 || n % 4 != 0 || end.is_none_or(|e| e > rows.len()) {
            return false;
        }
        w_len += 4 * n;
    }
    if w_len > w.len() {
        return false;
    }
    for p in 0..np {
        let mut s = bias;
        let mut wp = w.as_ptr();
        for &(o, n) in runs {
            // SAFETY: checked above: `o + p·step + n <= rows.len()` for every position
            // (p < np), n is a positive multiple of 4, and the runs' weights (4·n words each,
            // consumed in order through `wp`) fit in `w`; slices of u32 are word aligned.
            wp = unsafe { dot1x4_blocks(rows.as_ptr().add(o + p * step), wp, n / 4, &mut s) };
        }
        for (r, &v) in s.iter().enumerate() {
            acc[r * np + p] = v;
        }
    }
    true
}
