//! Kernels for Arm cores with the DSP extension (Cortex-M4/M7/M33/M55; feature `dsp`,
//! `target_arch = "arm"` only): the portable convolutions ([`crate::kernels::portable`])
//! with an SMLAD micro-kernel ([`Smlad`]: words of two i16, two multiply-accumulates per
//! instruction, the one instruction stable Rust does not expose as a safe intrinsic —
//! `core::arch::arm::__smlad` is unstable) and a four-channel assembly row kernel
//! ([`gemm1x4_row`]) for the channel-last path.
#![allow(unsafe_code)]

use crate::kernels::dispatch::{KernelTable, PORTABLE};
use crate::kernels::portable::conv::{conv2d_im2col, gemm_pair, gemm_pair_hwc, MicroKernel, RowCache, CACHE_CO, TILE};
use crate::kernels::{f32_at, i32_at, AddParams, ConvGeometry, OutSpec};
use crate::quant::RoundingRequantizer;

/// The table: the portable kernels with the SMLAD convolution (the transposed one as its
/// phases), the assembly requantization, the addition over it and the four-lane ReLU.
pub const TABLE: KernelTable = KernelTable {
    name: "arm-dsp",
    conv2d: |g, x, w, b, s, o, _| conv2d(g, x, w, b, s, o),
    conv_transpose2d: |g, x, w, b, s, o, _| conv_transpose2d(g, x, w, b, s, o),
    add,
    relu,
    ..PORTABLE
};

/// A transposed convolution as its phases, each run by the SMLAD [`conv2d`]
/// ([`crate::kernels::portable::conv::conv_transpose2d_phases`]); a kernel that is not a
/// multiple of its stride by the reference kernel (flash is scarcer than time for those).
fn conv_transpose2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    if !crate::kernels::portable::conv::conv_transpose2d_phases(g, input, weights, bias, spec, out, conv2d) {
        crate::kernels::reference::conv_transpose2d(g, input, weights, bias, spec, out)
    }
}

/// int8 ReLU at `zero_point` (`max(x, zero_point)` per byte, bit-exact with
/// `reference::relu`), four bytes per word: SSUB8 sets each byte lane's GE flag where
/// `x − zp ≥ 0` (signed), SEL then takes `x` there and `zp` elsewhere.
pub fn relu(zero_point: i32, input: &[u8], out: &mut [u8]) {
    let n = out.len().min(input.len());
    // A zero point outside int8 clamps like the reference: every x ≥ −128 > zp, or none.
    let zp = zero_point.clamp(-128, 127) as i8;
    if zero_point != zp as i32 || n < 16 {
        return crate::kernels::reference::relu(zero_point, &input[..n], &mut out[..n]);
    }
    let z = u32::from_ne_bytes([zp as u8; 4]);
    let words = n / 4;
    for (o, x) in out[..4 * words].chunks_exact_mut(4).zip(input[..4 * words].chunks_exact(4)) {
        let x = u32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        let y: u32;
        // SAFETY: SSUB8 and SEL read and write registers only; SSUB8 writes the APSR.GE
        // bits, which SEL reads next (declared by leaving out `preserves_flags`).
        unsafe {
            core::arch::asm!(
                "ssub8 {t}, {x}, {z}",
                "sel {y}, {x}, {z}",
                t = out(reg) _, y = lateout(reg) y, x = in(reg) x, z = in(reg) z,
                options(pure, nomem, nostack),
            );
        }
        o.copy_from_slice(&y.to_le_bytes());
    }
    crate::kernels::reference::relu(zero_point, &input[4 * words..n], &mut out[4 * words..n]);
}

/// 2-D convolution, bit-exact with `reference::conv2d`: the portable im2col and channel-last
/// GEMMs over [`Smlad`].
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    conv2d_im2col::<Smlad>(g, input, weights, bias, spec, out)
}

/// The SMLAD micro-kernel: each lane is a word holding two i16 (low half first, as SMLAD
/// reads them). The pair GEMMs are out of line so their inner loops get the register file,
/// with the per-position bookkeeping outside them.
pub struct Smlad;

impl MicroKernel for Smlad {
    type Lane = u32;
    const QUADS: bool = true;

    /// Each step is 4 word loads and 4 SMLADs for 8 multiply-accumulates.
    #[inline(always)]
    fn dot2x2(c0: &[u32], c1: &[u32], w0: &[u32], w1: &[u32]) -> [i32; 4] {
        let n = c0.len();
        let (c1, w0, w1) = (&c1[..n], &w0[..n], &w1[..n]);
        let (mut s00, mut s01, mut s10, mut s11) = (0i32, 0i32, 0i32, 0i32);
        for i in 0..n {
            let (a, b, u, v) = (c0[i], c1[i], w0[i], w1[i]);
            s00 = smlad(a, u, s00);
            s01 = smlad(a, v, s01);
            s10 = smlad(b, u, s10);
            s11 = smlad(b, v, s11);
        }
        [s00, s01, s10, s11]
    }

    #[inline(always)]
    fn dot(c: &[u32], w: &[u32]) -> i32 {
        let mut s = 0i32;
        for (&a, &u) in c.iter().zip(w) {
            s = smlad(a, u, s);
        }
        s
    }

    #[inline(never)]
    fn gemm_pair(cols: &[u32], kl: usize, w0: &[u32], w1: &[u32], b0: i32, b1: i32, a0: &mut [i32], a1: &mut [i32]) {
        gemm_pair::<Self>(cols, kl, w0, w1, b0, b1, a0, a1)
    }

    #[inline(never)]
    fn gemm_pair_hwc(
        rows: &[u32],
        runs: &[(usize, usize)],
        step: usize,
        w0: &[u32],
        w1: &[u32],
        b0: i32,
        b1: i32,
        a0: &mut [i32],
        a1: &mut [i32],
    ) {
        gemm_pair_hwc::<Self>(rows, runs, step, w0, w1, b0, b1, a0, a1)
    }

    #[inline(always)]
    fn requantize_run(acc: &[i32], r: &RoundingRequantizer, zero_point: i32, lo: i32, hi: i32, dst: &mut [u8]) -> bool {
        requantize_run(acc, r, zero_point, lo, hi, dst)
    }

    #[inline(always)]
    fn channel_last_row(input: &[u8], ci_n: usize, hi: usize, wi: usize, iy: usize, zp: i32, pad: usize, dst: &mut [i16]) {
        channel_last_row(input, ci_n, hi, wi, iy, zp, pad, dst)
    }

    /// Four output channels at a time through [`gemm1x4_row`], each channel's row then
    /// requantized from the interleaved sums.
    #[inline(never)]
    fn gemm_quads_row(
        rows: &[u32],
        runs: &[(usize, usize)],
        step: usize,
        wv: &[u32],
        per_co: usize,
        bias: &[u8],
        acc: &mut [i32; TILE],
        oy: usize,
        [co_n, ho, wo]: [usize; 3],
        spec: &OutSpec,
        out: &mut [u8],
        cache: &mut RowCache,
    ) -> bool {
        let Some(table) = RunTable::new(rows.len(), runs, step, wo) else {
            return false;
        };
        // The channels' biases and requantization constants, worked out on the first row
        // (about 100 instructions a quad and row otherwise).
        let int8 = match *spec {
            OutSpec::Int8 { zero_point, act_min, act_max, quant } if co_n <= CACHE_CO => {
                Some((zero_point, act_min as i32, act_max as i32, quant))
            }
            _ => None,
        };
        if let Some((zero_point, lo, hi, quant)) = int8 {
            if !cache.filled {
                for co in 0..co_n {
                    cache.bias[co] = i32_at(bias, co);
                    let (mult, shift) = (i32_at(quant, 2 * co), i32_at(quant, 2 * co + 1));
                    // k = 0 marks a channel the assembly loop does not take.
                    cache.consts[co] = RoundingRequantizer::new(mult, shift)
                        .filter(|_| hi == 127 && (-128..=127).contains(&lo))
                        .and_then(|r| smlal_constants(&r, zero_point))
                        .map_or([0; 3], |(m, c_hi, k)| [m, c_hi, k as i32]);
                }
                cache.filled = true;
            }
        }
        for q in 0..co_n.div_ceil(4) {
            let Some(wq) = wv.get(q * 4 * per_co..(q + 1) * 4 * per_co) else {
                return false;
            };
            let nc = (co_n - 4 * q).min(4);
            let mut b = [0i32; 4];
            for (r, b) in b[..nc].iter_mut().enumerate() {
                *b = if int8.is_some() { cache.bias[4 * q + r] } else { i32_at(bias, 4 * q + r) };
            }
            if !table.gemm1x4_row(rows, wq, b, &mut acc[..]) {
                return false;
            }
            // The whole quad in one assembly loop where every channel suits it.
            if let Some((_, lo, _, _)) = int8 {
                if requantize_quad(&acc[..4 * wo], &cache.consts[4 * q..4 * q + nc], lo, out, (4 * q * ho + oy) * wo, ho * wo) {
                    continue;
                }
            }
            // Otherwise (f32 outputs, a width not a multiple of 4, a channel without the
            // assembly's constants) channel by channel.
            for r in 0..nc {
                let co = 4 * q + r;
                emit_every_fourth(&acc[r..4 * wo], wo, co, (co * ho + oy) * wo, spec, out);
            }
        }
        true
    }
}

/// [`portable::conv::channel_last_row`](crate::kernels::portable::conv::channel_last_row)
/// with the DSP extension: for each pair of input channels, four pixels a pass — one LDR of
/// four bytes from each channel's row, SXTB16 (twice, the second rotated by 8) to the i16
/// lanes, SSUB16 for the zero point, PKHBT/PKHTB to pair the channels, and four STR at
/// immediate offsets (the pixel stride a constant: 16, 32 or 64 channels a pixel); 21
/// instructions for eight values where the portable loop takes about 50. Other channel
/// counts and rows whose width is not a multiple of four take the portable code.
#[allow(clippy::too_many_arguments)]
fn channel_last_row(input: &[u8], ci_n: usize, hi: usize, wi: usize, iy: usize, zp: i32, pad: usize, dst: &mut [i16]) {
    let ci2 = dst.len() / (wi + 2 * pad);
    let quads = wi / 4;
    let pairs = ci_n / 2;
    let fast = matches!(ci2, 16 | 32 | 64)
        && ci_n == ci2
        && wi == 4 * quads
        && quads > 0
        && (-128..=127).contains(&zp)
        && ci_n * hi * wi <= input.len();
    if !fast {
        return crate::kernels::portable::conv::channel_last_row(input, ci_n, hi, wi, iy, zp, pad, dst);
    }
    dst[..pad * ci2].fill(0);
    dst[(pad + wi) * ci2..].fill(0);
    let body = &mut dst[pad * ci2..(pad + wi) * ci2];
    let zz = (zp as u16 as u32) * 0x0001_0001;
    for pair in 0..pairs {
        let ci = 2 * pair;
        let a = &input[(ci * hi + iy) * wi..(ci * hi + iy + 1) * wi];
        let b = &input[((ci + 1) * hi + iy) * wi..((ci + 1) * hi + iy + 1) * wi];
        // SAFETY: `a` and `b` hold `wi ≥ 4·quads` bytes: the loop reads 4·quads bytes of each
        // (LDR needs no alignment on a core with the DSP extension). It writes words
        // `x·ci2/2 + ci/2` of `body` for x < 4·quads (`body` holds wi·ci2 i16 and starts at an
        // even i16 offset of a word-aligned buffer: the words are aligned and in bounds).
        // SXTB16, SSUB16 and PKH touch registers only; CMP sets the flags.
        unsafe {
            let d = body.as_mut_ptr().add(ci) as *mut u32;
            macro_rules! pair_loop {
                ($s:literal) => {
                    core::arch::asm!(
                        "2:",
                        "ldr {ra}, [{pa}], #4",
                        "ldr {rb}, [{pb}], #4",
                        "sxtb16 {t0}, {ra}",
                        "sxtb16 {t1}, {rb}",
                        "ssub16 {t0}, {t0}, {zz}",
                        "ssub16 {t1}, {t1}, {zz}",
                        "pkhbt {x}, {t0}, {t1}, lsl #16",
                        "pkhtb {t1}, {t1}, {t0}, asr #16",
                        "str {x}, [{d}]",
                        concat!("str {t1}, [{d}, #", $s, " * 2]"),
                        "sxtb16 {t0}, {ra}, ror #8",
                        "sxtb16 {t1}, {rb}, ror #8",
                        "ssub16 {t0}, {t0}, {zz}",
                        "ssub16 {t1}, {t1}, {zz}",
                        "pkhbt {x}, {t0}, {t1}, lsl #16",
                        "pkhtb {t1}, {t1}, {t0}, asr #16",
                        concat!("str {x}, [{d}, #", $s, "]"),
                        concat!("str {t1}, [{d}, #", $s, " * 3]"),
                        concat!("add {d}, {d}, #", $s, " * 4"),
                        "cmp {pa}, {end}",
                        "bne 2b",
                        pa = inout(reg) a.as_ptr() => _,
                        pb = inout(reg) b.as_ptr() => _,
                        d = inout(reg) d => _,
                        end = in(reg) a.as_ptr().add(4 * quads),
                        zz = in(reg) zz,
                        ra = out(reg) _,
                        rb = out(reg) _,
                        t0 = out(reg) _,
                        t1 = out(reg) _,
                        x = out(reg) _,
                        options(nostack),
                    )
                };
            }
            match ci2 {
                16 => pair_loop!("32"),
                32 => pair_loop!("64"),
                _ => pair_loop!("128"),
            }
        }
    }
}

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

/// One step of [`gemm1x4_row`]'s inner loop as assembly text: two words (four i16) of the column
/// (LDRD) against the same two words of each of the four weight rows (two LDM of four
/// registers, r0–r3: rows 0 and 1, then rows 2 and 3), 1 LDRD + 2 LDM + 8 SMLAD.
macro_rules! two_words {
    () => {
        concat!(
            "ldrd {a0}, {a1}, [{c}], #8\n",
            "ldm {w}!, {{r0, r1, r2, r3}}\n",
            "smlad {s0}, {a0}, r0, {s0}\n",
            "smlad {s0}, {a1}, r1, {s0}\n",
            "smlad {s1}, {a0}, r2, {s1}\n",
            "smlad {s1}, {a1}, r3, {s1}\n",
            "ldm {w}!, {{r0, r1, r2, r3}}\n",
            "smlad {s2}, {a0}, r0, {s2}\n",
            "smlad {s2}, {a1}, r1, {s2}\n",
            "smlad {s3}, {a0}, r2, {s3}\n",
            "smlad {s3}, {a1}, r3, {s3}",
        )
    };
}

/// Assembly text of [`RunTable::gemm1x4_row`]'s two loops: a position's start (its
/// weights' address; the biases as the four sums, from the [`QuadArgs`] at `{n}`).
macro_rules! position_start {
    () => {
        concat!("ldr {w}, [{n}, #4]\n", "ldrd {s0}, {s1}, [{n}, #16]\n", "ldrd {s2}, {s3}, [{n}, #24]")
    };
}

/// Assembly text: one run, `{n}` blocks of four words ([`two_words`] twice a block).
macro_rules! run_blocks {
    () => {
        concat!("3:\n", two_words!(), "\n", two_words!(), "\n", "subs {n}, {n}, #1\n", "bne 3b")
    };
}

/// Assembly text: a position's end — the four sums stored, the input pointer moved on by
/// `back`, back to `1:` until the last position's sums are written.
macro_rules! position_end {
    () => {
        concat!(
            "ldr {n}, [sp]\n",
            "ldr {a1}, [{n}, #32]\n",
            "strd {s0}, {s1}, [{a1}], #8\n",
            "strd {s2}, {s3}, [{a1}], #8\n",
            "str {a1}, [{n}, #32]\n",
            "ldr {a0}, [{n}, #36]\n",
            "add {c}, {c}, {a0}\n",
            "ldr {a0}, [{n}, #40]\n",
            "cmp {a1}, {a0}\n",
            "bne 1b",
        )
    };
}

/// [`RunTable::gemm1x4_row`]'s assembly with its operands: `{n}` the [`QuadArgs`] pointer
/// (then the block counter), `{c}` the input pointer, `{w}` the weights', `{a0}`/`{a1}` the
/// two input words, `{s0}`–`{s3}` the sums, r0–r3 the weights.
macro_rules! gemm_row_asm {
    ($args:expr, $($text:expr),+ $(,)?) => {
        core::arch::asm!(
            $($text,)+
            n = inout(reg) $args => _,
            c = out(reg) _,
            w = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            s0 = out(reg) _,
            s1 = out(reg) _,
            s2 = out(reg) _,
            s3 = out(reg) _,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
        )
    };
}

/// Most runs [`gemm1x4_row`] takes (one per kernel row and gap in its live taps: 7 for a
/// 7×7 kernel).
const MAX_RUNS: usize = 8;

/// What [`gemm1x4_row`]'s assembly reads and updates, through a pointer it keeps on the
/// stack (its loops need all thirteen allocatable registers).
#[repr(C)]
struct QuadArgs {
    /// 0: position 0's row.
    row: *const u32,
    /// 4: the quad's weights.
    w: *const u32,
    /// 8: the runs: (bytes from where the previous run's reads ended, or from `row` for the
    /// first, to where this one's start; blocks of four words).
    runs: *const [u32; 2],
    /// 12: one past the last run.
    runs_end: *const [u32; 2],
    /// 16: the four channels' biases.
    bias: [i32; 4],
    /// 32: where the next position's four sums go.
    acc: *mut i32,
    /// 36: bytes from where a position's last run ended to the next position's row
    /// (wrapping).
    back: u32,
    /// 40: one past the last position's sums.
    acc_end: *mut i32,
    /// 44: with a single run, its blocks of four words.
    blocks: u32,
}

/// Four output channels over `np` positions of one output row:
/// `acc[4·p + r] = bias[r] + Σ_(o, n) in runs dot(rows[o + p·step..][..n], weights of row r)`
/// (the four sums of a position side by side: [`requantize_words`] reads them four apart).
/// `w` holds the runs' weights one run after another, each run's four rows interleaved two
/// words at a time (for every two words of the run: two words of row 0, of row 1, of row 2,
/// of row 3; 4·n words per run). Every run must be a whole number of 4-word blocks.
///
/// One assembly loop does the whole row. Per run, 4 words a pass: 2 LDRD of the column, 4
/// LDM of four weight registers (r0–r3; rows 0 and 1, then rows 2 and 3), 16 SMLAD, SUBS and
/// BNE for 32 multiply-accumulates (an LDM of four registers takes 5 cycles on a Cortex-M4,
/// two LDRD 6). Around it 6 instructions a run and 14 a position: the input pointer stays in
/// its register from one position to the next (`back` moves it on), the rest of the
/// bookkeeping lives in a [`QuadArgs`] in memory and three words on the stack.
///
/// Returns `false` without writing anything when the shapes do not fit these rules (the
/// caller then takes the portable path).
pub fn gemm1x4_row(rows: &[u32], runs: &[(usize, usize)], step: usize, w: &[u32], bias: [i32; 4], np: usize, acc: &mut [i32]) -> bool {
    match RunTable::new(rows.len(), runs, step, np) {
        Some(t) => t.gemm1x4_row(rows, w, bias, acc),
        None => np == 0,
    }
}

/// The runs of one row shape as [`gemm1x4_row`]'s assembly reads them, checked once for
/// every quad of channels and every output row of a convolution.
pub struct RunTable {
    /// (bytes from where the previous run's reads ended, or from the row, to where this
    /// run's start; blocks of four words), `n` of them.
    table: [[u32; 2]; MAX_RUNS],
    n: usize,
    /// Weight words per quad of channels (4 per lane of every run).
    w_len: usize,
    /// Rows at least this long hold every position's reads.
    rows_len: usize,
    /// Positions (≥ 1).
    np: usize,
    /// Bytes from where a position's last run ends to the next position's row (wrapping).
    back: u32,
}

impl RunTable {
    /// The table of `runs` for `np ≥ 1` positions `step` words apart in rows of `rows_len`
    /// words; `None` when they do not fit [`gemm1x4_row`]'s rules.
    pub fn new(rows_len: usize, runs: &[(usize, usize)], step: usize, np: usize) -> Option<RunTable> {
        if np == 0 || runs.is_empty() || runs.len() > MAX_RUNS || rows_len > (u32::MAX / 8) as usize || step > (u32::MAX / 8) as usize {
            return None;
        }
        let mut t = RunTable { table: [[0; 2]; MAX_RUNS], n: runs.len(), w_len: 0, rows_len, np, back: 0 };
        let mut ended = 0usize;
        for (e, &(o, n)) in t.table.iter_mut().zip(runs) {
            let end = (np - 1).checked_mul(step).and_then(|x| x.checked_add(o)).and_then(|x| x.checked_add(n));
            if n == 0 || n % 4 != 0 || end.is_none_or(|e| e > rows_len) {
                return None;
            }
            // In bytes, wrapping: a later run may start before where the previous one ended.
            *e = [(4 * o as u32).wrapping_sub(4 * ended as u32), (n / 4) as u32];
            ended = o + n;
            t.w_len += 4 * n;
        }
        t.back = (4 * step as u32).wrapping_sub(4 * ended as u32);
        Some(t)
    }

    /// [`gemm1x4_row`] over this table; `false` (nothing written) when `rows`, `w` or `acc`
    /// is shorter than the table needs.
    pub fn gemm1x4_row(&self, rows: &[u32], w: &[u32], bias: [i32; 4], acc: &mut [i32]) -> bool {
        if rows.len() < self.rows_len || w.len() < self.w_len || acc.len() < 4 * self.np {
            return false;
        }
        let mut args = QuadArgs {
            row: rows.as_ptr(),
            w: w.as_ptr(),
            runs: self.table.as_ptr(),
            runs_end: self.table[self.n..].as_ptr(),
            bias,
            acc: acc.as_mut_ptr(),
            back: self.back,
            // SAFETY: in bounds (checked above: 4·np ≤ acc.len()).
            acc_end: unsafe { acc.as_mut_ptr().add(4 * self.np) },
            blocks: self.table[0][1],
        };
        if self.n == 1 {
            // One run (a 1×1 kernel, or taps side by side in one row): its offset moves the
            // start and `back` once, and each position is one loop with 14 instructions
            // around it, no run cursor.
            let start = self.table[0][0];
            args.row = rows.as_ptr().wrapping_byte_add(start as usize);
            args.back = self.back.wrapping_add(start);
            // SAFETY: as for the general loop below (a table of one run; `row` moved to where
            // the run starts, in bounds since `o + n <= rows.len()`). The assembly writes
            // `args` and `acc` and nothing else; it keeps the args pointer on the stack and
            // restores `sp`; the flags are clobbered.
            unsafe {
                gemm_row_asm!(
                    &mut args as *mut QuadArgs,
                    "sub sp, sp, #8",
                    "str {n}, [sp]",
                    "ldr {c}, [{n}]",
                    "1:",
                    position_start!(),
                    "ldr {n}, [{n}, #44]",
                    run_blocks!(),
                    position_end!(),
                    "add sp, sp, #8",
                );
            }
            return true;
        }
        // SAFETY: checked here and in `new`: for every position p < np and run (o, n),
        // `o + p·step + n <= rows.len()` (the reads of a run start at `row + 4·o` bytes, the
        // running sum of the deltas, and cover `n` words), n is a positive multiple of 4, the
        // runs' weights (4·n words each, read in order from `w` for every position) fit in `w`,
        // and `acc` holds the 4·np sums written; slices of u32 and i32 are word aligned (LDRD,
        // LDM and STRD need it). The assembly writes `args` (through its pointer) and `acc` and
        // nothing else; it keeps three words on the stack (the args pointer, the run cursor and
        // the runs' end) and restores `sp`; the flags are clobbered.
        unsafe {
            gemm_row_asm!(
                &mut args as *mut QuadArgs,
                // Stack: [sp] the args pointer, [sp, #8] the run cursor, [sp, #12] the runs' end.
                "sub sp, sp, #16",
                "str {n}, [sp]",
                "ldr {a1}, [{n}, #12]",
                "str {a1}, [sp, #12]",
                "ldr {c}, [{n}]",
                "1:",
                position_start!(),
                "ldr {a0}, [{n}, #8]",
                "2:",
                "ldrd {a1}, {n}, [{a0}], #8",
                "str {a0}, [sp, #8]",
                "add {c}, {c}, {a1}",
                run_blocks!(),
                "ldrd {a0}, {a1}, [sp, #8]",
                "cmp {a0}, {a1}",
                "bne 2b",
                position_end!(),
                "add sp, sp, #16",
            );
        }
        true
    }
}

/// Writes channel `co`'s `np` sums, every fourth of `acc` (from [`gemm1x4_row`]), to `out`
/// from element `first` through `spec`: [`requantize_words`] where it applies, else
/// [`OutSpec::emit`] one value at a time.
fn emit_every_fourth(acc: &[i32], np: usize, co: usize, first: usize, spec: &OutSpec, out: &mut [u8]) {
    match *spec {
        OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
            let (mult, shift) = (i32_at(quant, 2 * co), i32_at(quant, 2 * co + 1));
            let (lo, hi) = (act_min as i32, act_max as i32);
            let dst = &mut out[first..first + np];
            let sums = acc.iter().step_by(4);
            // As `emit_run_with`: the constants worked out once for the whole run.
            if let Some(r) = RoundingRequantizer::new(mult, shift) {
                if !requantize_words::<4>(acc, &r, zero_point, lo, hi, dst) {
                    for (o, &a) in dst.iter_mut().zip(sums) {
                        *o = (r.apply(a) + zero_point).clamp(lo, hi) as i8 as u8;
                    }
                }
            } else if let Some(r) = crate::quant::Requantizer::new(mult, shift) {
                for (o, &a) in dst.iter_mut().zip(sums) {
                    *o = (r.apply(a) + zero_point).clamp(lo, hi) as i8 as u8;
                }
            } else {
                for (o, &a) in dst.iter_mut().zip(sums) {
                    *o = crate::kernels::requantize(a, mult, shift, zero_point, act_min, act_max);
                }
            }
        }
        OutSpec::F32 { quant } => {
            let scale = f32_at(quant, co);
            for (o, &a) in out[4 * first..4 * (first + np)].chunks_exact_mut(4).zip(acc.iter().step_by(4)) {
                o.copy_from_slice(&(a as f32 * scale).to_le_bytes());
            }
        }
    }
}

/// The constants the assembly requantization needs from a [`RoundingRequantizer`] and the
/// output zero point: the multiplier, the high word of the constant with the zero point
/// folded in (`(h + zp·2^k) >> k = (h >> k) + zp`; an int8 zero point, as every validated
/// model has) and the final shift `k`. `None` for a `k` of 0 (`e = 1`, where the low word's
/// borrow differs) or so large that the folded zero point could overflow. With `e = k + 1 ≥ 2` the constant's low word is 2^30 and for
/// `x < 0` it is `c − 2^31`: low word 0xC000_0000, high word one less — what
/// [`requantize_word`] builds from the sign of `x`.
#[inline(always)]
fn smlal_constants(r: &RoundingRequantizer, zero_point: i32) -> Option<(i32, i32, u32)> {
    let (m, c, k) = r.parts();
    if k == 0 || k > 22 {
        return None;
    }
    // e ≥ 2: c = 2^30 + 2^(e+30), so its low word is 2^30.
    debug_assert_eq!(c as u32, 1 << 30);
    Some((m, (c >> 32) as i32 + (zero_point << k), k))
}

/// Assembly text: the int32 in register `$x` requantized into `$hi` (saturated to int8),
/// `$lo` scratch; reads the operands `{c_hi}`, `{m}` and `{k}` ([`smlal_constants`]). Six
/// instructions: AND and ORR (the constant's low word), ADD with ASR (its high word),
/// SMLAL, ASR, SSAT.
macro_rules! requantize_word {
    ($x:literal, $lo:literal, $hi:literal) => {
        concat!(
            "and ",
            $lo,
            ", ",
            $x,
            ", #0x80000000\n",
            "orr ",
            $lo,
            ", ",
            $lo,
            ", #0x40000000\n",
            "add ",
            $hi,
            ", {c_hi}, ",
            $x,
            ", asr #31\n",
            "smlal ",
            $lo,
            ", ",
            $hi,
            ", ",
            $x,
            ", {m}\n",
            "asr ",
            $hi,
            ", ",
            $hi,
            ", {k}\n",
            "ssat ",
            $hi,
            ", #8, ",
            $hi,
        )
    };
}

/// Assembly text: four accumulators `{s}` bytes apart from `{src}` requantized
/// ([`requantize_word`]) and packed into `{pk}` by BFI, lowest byte first.
macro_rules! four_values {
    () => {
        concat!(
            "ldr {x}, [{src}], #{s}\n",
            requantize_word!("{x}", "{lo}", "{pk}"),
            "\nldr {x}, [{src}], #{s}\n",
            requantize_word!("{x}", "{lo}", "{hi}"),
            "\nbfi {pk}, {hi}, #8, #8\n",
            "ldr {x}, [{src}], #{s}\n",
            requantize_word!("{x}", "{lo}", "{hi}"),
            "\nbfi {pk}, {hi}, #16, #8\n",
            "ldr {x}, [{src}], #{s}\n",
            requantize_word!("{x}", "{lo}", "{hi}"),
            "\nbfi {pk}, {hi}, #24, #8",
        )
    };
}

/// What [`requantize_quad`]'s assembly reads and updates, through a pointer in a register.
#[repr(C)]
struct QuadEmit {
    /// 0: the next channel's constants ([`smlal_constants`]: m, high word, k).
    consts: *const [i32; 3],
    /// 4: channels left.
    left: u32,
    /// 8: bytes from one channel's output row to the next's.
    plane: u32,
    /// 12: the next channel's first sum (the sums of a position four words apart).
    acc: *const i32,
    /// 16: the next channel's first output byte.
    out: *mut u8,
    /// 20: values a channel (a multiple of 4).
    wo: u32,
}

/// The `consts.len()` channels of one quad from [`gemm1x4_row`]'s interleaved sums
/// (`acc`, `4·wo` of them), channel `r`'s `wo` values to `out[first + r·plane..]`, each
/// through its cached constants ([`RowCache`]) as [`requantize_words_with`] computes them,
/// in one assembly loop: about 19 instructions a channel around the four-value passes (the
/// Rust loop over the channels spilled its state: about 60). `false` (nothing written)
/// unless every channel has constants, `wo` is a positive multiple of 4, and the slices
/// hold what it writes and reads.
#[inline(always)]
fn requantize_quad(acc: &[i32], consts: &[[i32; 3]], lo: i32, out: &mut [u8], first: usize, plane: usize) -> bool {
    let (nc, wo) = (consts.len(), acc.len() / 4);
    if nc == 0 || nc > 4 || wo == 0 || wo % 4 != 0 || !(-128..=127).contains(&lo) || consts.iter().any(|c| c[2] == 0) {
        return false;
    }
    if first.checked_add((nc - 1) * plane + wo).is_none_or(|end| end > out.len()) || plane > u32::MAX as usize {
        return false;
    }
    let mut args = QuadEmit {
        consts: consts.as_ptr(),
        left: nc as u32,
        plane: plane as u32,
        acc: acc.as_ptr(),
        out: out[first..].as_mut_ptr(),
        wo: wo as u32,
    };
    let zz = u32::from_ne_bytes([lo as i8 as u8; 4]);
    // SAFETY: channel r < nc reads sums r + 4·p (p < wo) of `acc` (4·wo long) and writes bytes
    // first + r·plane + p of `out`, in bounds (checked above); its constants are `consts[r]`.
    // The STR of four bytes needs no alignment on a Cortex-M with the DSP extension. The
    // assembly writes `args` (through its pointer) and `out` and nothing else; the flags and
    // GE bits are clobbered.
    unsafe {
        macro_rules! channels {
            ($($relu:literal),*) => {
                core::arch::asm!(
                    "1:",
                    "ldr {hi}, [{a}]",
                    "ldr {m}, [{hi}]",
                    "ldr {c_hi}, [{hi}, #4]",
                    "ldr {k}, [{hi}, #8]",
                    "add {hi}, {hi}, #12",
                    "str {hi}, [{a}]",
                    "ldr {src}, [{a}, #12]",
                    "add {hi}, {src}, #4",
                    "str {hi}, [{a}, #12]",
                    "ldr {out}, [{a}, #16]",
                    "ldr {hi}, [{a}, #8]",
                    "add {hi}, {out}, {hi}",
                    "str {hi}, [{a}, #16]",
                    "ldr {hi}, [{a}, #20]",
                    "add {end}, {out}, {hi}",
                    "2:",
                    four_values!(),
                    $($relu,)*
                    "str {pk}, [{out}], #4",
                    "cmp {out}, {end}",
                    "bne 2b",
                    "ldr {hi}, [{a}, #4]",
                    "subs {hi}, {hi}, #1",
                    "str {hi}, [{a}, #4]",
                    "bne 1b",
                    a = in(reg) &mut args as *mut QuadEmit,
                    zz = in(reg) zz,
                    s = const 16,
                    m = out(reg) _,
                    c_hi = out(reg) _,
                    k = out(reg) _,
                    src = out(reg) _,
                    out = out(reg) _,
                    end = out(reg) _,
                    x = out(reg) _,
                    lo = out(reg) _,
                    hi = out(reg) _,
                    pk = out(reg) _,
                    options(nostack),
                )
            };
        }
        if lo == -128 {
            // SSAT already clamps at −128: `zz` goes unused.
            channels!("/* {zz} */");
        } else {
            channels!("ssub8 {x}, {pk}, {zz}", "sel {pk}, {pk}, {zz}");
        }
    }
    true
}

/// `dst[i] = clamp(r.apply(acc[i]) + zero_point, lo, hi)`: [`requantize_words`] over
/// consecutive accumulators. Out of line (one copy in flash): the convolutions' hot
/// outputs go through [`requantize_words`]`::<4>` inlined in the four-channel path.
#[inline(never)]
pub fn requantize_run(acc: &[i32], r: &RoundingRequantizer, zero_point: i32, lo: i32, hi: i32, dst: &mut [u8]) -> bool {
    acc.len() == dst.len() && requantize_words::<1>(acc, r, zero_point, lo, hi, dst)
}

/// `dst[i] = clamp(r.apply(acc[i·STEP]) + zero_point, lo, hi)`: every `STEP`-th accumulator
/// (1, or 4 for [`gemm1x4_row`]'s interleaved sums), in about 9 instructions a value. Four
/// values a pass: each requantized in six instructions — the constant of
/// [`RoundingRequantizer`] built from the accumulator's sign (AND, ORR for the low word, ADD
/// with ASR for the high one), one SMLAL, one ASR, SSAT for the int8 range — packed into one
/// word by BFI, the lower clamp (a fused ReLU) taken on all four bytes at once by SSUB8 and
/// SEL, and one STR; the last `n mod 4` one at a time. The zero point is folded into the high
/// word (`(h + zp·2^k) >> k = (h >> k) + zp`). Returns `false` (nothing written) when the
/// constants do not suit it: an upper clamp other than 127, a final shift `k` of 0 (`e = 1`,
/// where the low word's borrow differs) or so large that the folded zero point overflows, or
/// too few accumulators.
pub fn requantize_words<const STEP: usize>(
    acc: &[i32],
    r: &RoundingRequantizer,
    zero_point: i32,
    lo: i32,
    hi: i32,
    dst: &mut [u8],
) -> bool {
    if hi != 127 || !(-128..=127).contains(&lo) {
        return false;
    }
    let Some(consts) = smlal_constants(r, zero_point) else {
        return false;
    };
    requantize_words_with::<STEP>(acc, consts, lo, dst)
}

/// [`requantize_words`] with its constants ([`smlal_constants`]) worked out: the upper clamp
/// 127 and `lo` in the int8 range (the caller checked them). `false` (nothing written) when
/// there are too few accumulators.
#[inline(always)]
fn requantize_words_with<const STEP: usize>(acc: &[i32], (m, c_hi, k): (i32, i32, u32), lo: i32, dst: &mut [u8]) -> bool {
    let n = dst.len();
    if n == 0 || acc.len() < (n - 1) * STEP + 1 {
        return false;
    }
    let (mut src, mut out) = (acc.as_ptr(), dst.as_mut_ptr());
    let quads = n / 4;
    if quads > 0 {
        // SAFETY: the loop reads accumulators `i·STEP` and writes bytes `i` for i < 4·quads ≤ n,
        // in bounds (checked above); the STR of four bytes needs no alignment on a Cortex-M
        // with the DSP extension (unaligned word stores are architectural there). SMLAL, SSAT,
        // BFI, SSUB8 and SEL touch only registers, the flags and the GE bits.
        unsafe {
            let end = out.add(4 * quads);
            let zz = u32::from_ne_bytes([lo as i8 as u8; 4]);
            macro_rules! quad_loop {
                ($($relu:literal),*) => {
                    core::arch::asm!(
                        "2:",
                        four_values!(),
                        $($relu,)*
                        "str {pk}, [{out}], #4",
                        "cmp {out}, {end}",
                        "bne 2b",
                        src = inout(reg) src,
                        out = inout(reg) out,
                        end = in(reg) end,
                        c_hi = in(reg) c_hi,
                        m = in(reg) m,
                        k = in(reg) k,
                        zz = in(reg) zz,
                        s = const 4 * STEP,
                        x = out(reg) _,
                        lo = out(reg) _,
                        hi = out(reg) _,
                        pk = out(reg) _,
                        options(nostack),
                    )
                };
            }
            if lo == -128 {
                // SSAT already clamps at −128: `zz` goes unused.
                quad_loop!("/* {zz} */");
            } else {
                quad_loop!("ssub8 {x}, {pk}, {zz}", "sel {pk}, {pk}, {zz}");
            }
        }
    }
    let rest = n - 4 * quads;
    if rest > 0 {
        // SAFETY: as above for the last `rest` values: reads `src` (accumulator 4·quads·STEP on)
        // `rest` times STEP apart and writes `rest` bytes from `out`, ending at `out + rest`
        // (one past the end of `dst`).
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {x}, [{src}], #{s}",
                requantize_word!("{x}", "{lo}", "{hi}"),
                "cmp {hi}, {amin}",
                "it lt",
                "movlt {hi}, {amin}",
                "strb {hi}, [{out}], #1",
                "cmp {out}, {end}",
                "bne 2b",
                src = inout(reg) src => _,
                out = inout(reg) out => _,
                end = in(reg) out.add(rest),
                c_hi = in(reg) c_hi,
                m = in(reg) m,
                k = in(reg) k,
                amin = in(reg) lo,
                s = const 4 * STEP,
                x = out(reg) _,
                lo = out(reg) _,
                hi = out(reg) _,
                options(nostack),
            );
        }
    }
    true
}

/// int8 addition, bit-exact with `reference::add`: each input's rescaled contribution looked
/// up in a 256-entry table (as the portable addition does) and the sum requantized, in one
/// assembly loop (`add_fused`) when the clamp is the int8 range; otherwise the sums of 256
/// elements at a time requantized by [`requantize_run`].
pub fn add(p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    let (m, shift) = p.output;
    let (lo, hi) = (p.act.0 as i32, p.act.1 as i32);
    let Some(r) = RoundingRequantizer::new(m, shift).filter(|_| out.len() >= 512 && hi == 127) else {
        return crate::kernels::portable::add(p, a, b, out);
    };
    let (ta, tb) = (crate::kernels::portable::add_table(p, 0), crate::kernels::portable::add_table(p, 1));
    if lo == -128 && add_fused(&ta, &tb, &r, p.output_zero_point, a, b, out) {
        return;
    }
    let mut sums = [0i32; 256];
    for ((o, a), b) in out.chunks_mut(256).zip(a.chunks(256)).zip(b.chunks(256)) {
        let s = &mut sums[..o.len()];
        for ((s, &x), &y) in s.iter_mut().zip(a).zip(b) {
            *s = ta[x as usize] + tb[y as usize];
        }
        if !requantize_run(s, &r, p.output_zero_point, lo, hi, o) {
            for (o, &v) in o.iter_mut().zip(s.iter()) {
                *o = (r.apply(v) + p.output_zero_point).clamp(lo, hi) as i8 as u8;
            }
        }
    }
}

/// One value of [`add_fused`]'s loop as assembly text: the two bytes (`b` at a fixed
/// distance from `a`), their table entries (the second table 256 words on), their sum
/// requantized into `$out`.
macro_rules! add_value {
    ($out:literal) => {
        concat!(
            "ldrb {y}, [{pa}, {db}]\n",
            "ldrb {x}, [{pa}], #1\n",
            "ldr {x}, [{t}, {x}, lsl #2]\n",
            "ldr {y}, [{tb}, {y}, lsl #2]\n",
            "add {x}, {x}, {y}\n",
            requantize_word!("{x}", "{lo}", $out),
        )
    };
}

/// The addition's lookups and [`requantize_run`]'s requantization in one assembly loop, for
/// the int8 range as its clamp (no fused ReLU): four values a pass, packed by BFI and stored
/// by one STR (12.5 instructions a value), the last `n mod 4` one at a time (14). The two
/// tables sit one after the other (a register points at each), `b` is read at a
/// fixed distance from `a`. Returns `false` (nothing written) when the constants do not suit
/// it (as for [`requantize_run`]) or the inputs are shorter than `out`.
fn add_fused(ta: &[i32; 256], tb: &[i32; 256], r: &RoundingRequantizer, zero_point: i32, a: &[u8], b: &[u8], out: &mut [u8]) -> bool {
    let n = out.len();
    if n == 0 || a.len() < n || b.len() < n {
        return false;
    }
    let Some((m, c_hi, k)) = smlal_constants(r, zero_point) else {
        return false;
    };
    let mut t = [0i32; 512];
    t[..256].copy_from_slice(ta);
    t[256..].copy_from_slice(tb);
    let (mut pa, mut dst) = (a.as_ptr(), out.as_mut_ptr());
    // `b`'s address relative to `a`'s (wrapping: only their sum is dereferenced).
    let db = (b.as_ptr() as usize).wrapping_sub(pa as usize);
    let quads = n / 4;
    if quads > 0 {
        // SAFETY: the loop reads bytes `a[i]` and `b[i]` (at `pa + i + db` = `b + i`) and
        // writes `out[i]` for i < 4·quads ≤ n, all in bounds (checked above; the STR of four
        // bytes needs no alignment on a core with the DSP extension); table indices are a
        // byte (0..=255) into `t`'s first 256 words and into its last 256. Flags are clobbered.
        unsafe {
            core::arch::asm!(
                "2:",
                add_value!("{pk}"),
                add_value!("{y}"),
                "bfi {pk}, {y}, #8, #8",
                add_value!("{y}"),
                "bfi {pk}, {y}, #16, #8",
                add_value!("{y}"),
                "bfi {pk}, {y}, #24, #8",
                "str {pk}, [{out}], #4",
                "cmp {out}, {end}",
                "bne 2b",
                pa = inout(reg) pa,
                db = in(reg) db,
                t = in(reg) t.as_ptr(),
                tb = in(reg) t[256..].as_ptr(),
                out = inout(reg) dst,
                end = in(reg) dst.add(4 * quads),
                c_hi = in(reg) c_hi,
                m = in(reg) m,
                k = in(reg) k,
                x = out(reg) _,
                y = out(reg) _,
                lo = out(reg) _,
                pk = out(reg) _,
                options(nostack),
            );
        }
    }
    let rest = n - 4 * quads;
    if rest > 0 {
        // SAFETY: as above for the last `rest` values (`pa` and `dst` continue where the
        // loop above stopped; the loop ends at `dst + rest`, one past the end of `out`).
        unsafe {
            core::arch::asm!(
                "2:",
                add_value!("{y}"),
                "strb {y}, [{out}], #1",
                "cmp {out}, {end}",
                "bne 2b",
                pa = inout(reg) pa => _,
                db = in(reg) db,
                t = in(reg) t.as_ptr(),
                tb = in(reg) t[256..].as_ptr(),
                out = inout(reg) dst => _,
                end = in(reg) dst.add(rest),
                c_hi = in(reg) c_hi,
                m = in(reg) m,
                k = in(reg) k,
                x = out(reg) _,
                y = out(reg) _,
                lo = out(reg) _,
                options(nostack),
            );
        }
    }
    true
}
