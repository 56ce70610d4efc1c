//! Helium (M-profile Vector Extension) kernels for Armv8.1-M cores such as the Cortex-M55
//! (feature `mve`, `target_arch = "arm"` only; the core must be named, `-C
//! target-cpu=cortex-m55`, so that the assembler takes MVE instructions).
//!
//! The convolutions that dominate the PixelCNN — stride 1, "same" padding, int8 outputs —
//! run on assembly row kernels: [`row`] computes two output positions × four output
//! channels a pass (`egm_mve_row8_<step>`), 16 input channels per step, each step two
//! `VLDRB` of the input, four of the weights and eight `VMLADAVA.S8` (16 multiply-accumulates
//! each into a general register), so every weight vector serves two positions; an odd last
//! position, or a position stride with no pair variant, takes the one-position kernel
//! ([`row4`]). The input is read as channel-last rows padded with the input's zero point —
//! each input row transposed once by a Helium scatter (`egm_mve_rowt`) into a ring of
//! kernel-height rows — so that `Σ (x − zp)·w = Σ x·w − zp·Σ w` holds with the correction
//! folded into the bias, exact in integers; kernel taps that are zero for every channel (a
//! PixelCNN's masked half) are left out. Everything else is the portable kernels'.
//! Bit-exact with `reference::conv2d` (the golden vectors and every scored frame of the
//! firmware on the Cortex-M55 check it).
#![allow(unsafe_code)]

use crate::kernels::dispatch::{KernelTable, PORTABLE};
use crate::kernels::{f32_at, i32_at, AddParams, ConvGeometry, OutSpec};

/// The table: the portable kernels with the Helium convolution (the transposed one as its
/// phases) and addition.
pub const TABLE: KernelTable = KernelTable {
    name: "arm-mve",
    conv2d: |g, x, w, b, s, o, _| conv2d(g, x, w, b, s, o),
    conv_transpose2d: |g, x, w, b, s, o, _| conv_transpose2d(g, x, w, b, s, o),
    add,
    ..PORTABLE
};

/// A transposed convolution as its phases, each run by the Helium [`conv2d`]
/// ([`crate::kernels::portable::conv::conv_transpose2d_phases`]); a kernel that is not a
/// multiple of its stride by the reference kernel (flash is scarcer than time for those).
fn conv_transpose2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    if !crate::kernels::portable::conv::conv_transpose2d_phases(g, input, weights, bias, spec, out, conv2d) {
        crate::kernels::reference::conv_transpose2d(g, input, weights, bias, spec, out)
    }
}

/// Most weight bytes (output channels × executed taps × input channels) packed on the stack
/// at a time: layers with more are run in passes of as many groups of four output channels
/// as fit (the bundled PixelCNN's largest layer needs 5,120, one pass).
const WPACK: usize = 6144;
/// Most bytes of padded channel-last input rows (kernel height × padded width × channels).
const ROWS: usize = 6144;
/// Most kernel taps.
const MAX_TAPS: usize = 49;
/// Most groups of four output channels (64 channels).
const MAX_GROUPS: usize = 16;
/// Most bytes of one output row's gathered taps (output width × taps × channels, in 16s),
/// kept in the rows' buffer (which the channel-last path uses instead).
const COLS: usize = ROWS / 2;
/// Bytes of the scratch row a group of fewer than four output channels writes (4 lanes ×
/// output width × 4 bytes for f32 outputs).
const SCRATCH: usize = 2048;

/// What [`row4`] needs of four output channels: their requantization as lane vectors
/// (TFLite's `MultiplyByQuantizedMultiplier` in the form of its NEON code: a left shift,
/// VQRDMULH, then the rounding right shift with its sign fix-up), their byte offsets in the
/// output, and their biases (the input zero point's correction folded in).
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
struct Group {
    lanes: Lanes,
    offsets: [u32; 4],
    bias: [i32; 4],
}

/// Four lanes' requantization, as [`requantize_q0`] reads it (byte offsets 0 to 95).
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
struct Lanes {
    multiplier: [i32; 4],
    left: [i32; 4],
    /// Minus the right shift (VRSHL shifts right by a negative amount).
    right: [i32; 4],
    zero_point: [i32; 4],
    act_min: [i32; 4],
    act_max: [i32; 4],
}

impl Lanes {
    /// Sets lane `j` to `(multiplier, shift)`, the output zero point and the clamp.
    fn set(&mut self, j: usize, multiplier: i32, shift: i32, zero_point: i32, act: (i8, i8)) {
        self.multiplier[j] = multiplier;
        self.left[j] = shift.max(0);
        self.right[j] = shift.min(0);
        self.zero_point[j] = zero_point;
        self.act_min[j] = act.0 as i32;
        self.act_max[j] = act.1 as i32;
    }
}

/// Assembly text: requantizes the four i32 lanes of q0 with the [`Lanes`] at register `$p`
/// (q1 and q2 scratch): `MultiplyByQuantizedMultiplier` in the form of TFLite's NEON code —
/// the left shift, VQRDMULH, the sign fix-up and the rounding right shift — then the zero
/// point and the clamp.
macro_rules! requantize_q0 {
    ($p:literal) => {
        concat!(
            "vldrw.u32 q1, [",
            $p,
            ", #16]\n",
            "vshl.s32 q0, q0, q1\n",
            "vldrw.u32 q1, [",
            $p,
            "]\n",
            "vqrdmulh.s32 q0, q0, q1\n",
            "vldrw.u32 q1, [",
            $p,
            ", #32]\n",
            "vand q2, q0, q1\n",
            "vshr.s32 q2, q2, #31\n",
            "vqadd.s32 q0, q0, q2\n",
            "vrshl.s32 q0, q0, q1\n",
            "vldrw.u32 q1, [",
            $p,
            ", #48]\n",
            "vadd.i32 q0, q0, q1\n",
            "vldrw.u32 q1, [",
            $p,
            ", #64]\n",
            "vmax.s32 q0, q0, q1\n",
            "vldrw.u32 q1, [",
            $p,
            ", #80]\n",
            "vmin.s32 q0, q0, q1",
        )
    };
}

core::arch::global_asm!(
    ".syntax unified",
    ".cpu cortex-m55",
    ".thumb",
    ".section .text.egm_mve_row4,\"ax\",%progbits",
    ".global egm_mve_row4",
    ".type egm_mve_row4,%function",
    ".thumb_func",
    // One output row of four channels. r0: the input at the first position (each position
    // `step` bytes further), r1: tap offsets (i32, bytes from the position), r2: taps,
    // r3: weights ([tap][block][channel of 4][16]); on the stack: [sp+36] blocks of 16
    // input channels, [sp+40] the `Group`, [sp+44] the output byte of the first position
    // (each position one byte further; the channels at the group's offsets from it),
    // [sp+48] positions, [sp+52] step. VMLADAVA takes even-numbered registers: the
    // accumulators live in r4, r6, r8, r10.
    "egm_mve_row4:",
    "push {{r4-r11, lr}}",
    "ldr r5, [sp, #36]",
    "3:",
    "ldr r7, [sp, #40]",
    "ldrd r4, r6, [r7, #112]",
    "ldrd r8, r10, [r7, #120]",
    "mov r12, r1",
    "mov r11, r3",
    "mov lr, r2",
    "1:",
    "ldr r9, [r12], #4",
    "add r9, r0, r9",
    "mov r7, r5",
    "2:",
    "vldrb.8 q0, [r9], #16",
    "vldrb.8 q1, [r11], #16",
    "vmladava.s8 r4, q0, q1",
    "vldrb.8 q2, [r11], #16",
    "vmladava.s8 r6, q0, q2",
    "vldrb.8 q1, [r11], #16",
    "vmladava.s8 r8, q0, q1",
    "vldrb.8 q2, [r11], #16",
    "vmladava.s8 r10, q0, q2",
    "subs r7, r7, #1",
    "bne 2b",
    "subs lr, lr, #1",
    "bne 1b",
    // Requantize the four accumulators as one vector (lane j = channel j: this two-lane VMOV
    // puts its first register in the lower lane) and scatter their bytes.
    "vmov q0[2], q0[0], r4, r8",
    "vmov q0[3], q0[1], r6, r10",
    "ldr r7, [sp, #40]",
    requantize_q0!("r7"),
    "vldrw.u32 q1, [r7, #96]",
    "ldr r9, [sp, #44]",
    "vstrb.32 q0, [r9, q1]",
    "adds r9, r9, #1",
    "str r9, [sp, #44]",
    "ldr r9, [sp, #52]",
    "add r0, r0, r9",
    "ldr r9, [sp, #48]",
    "subs r9, r9, #1",
    "str r9, [sp, #48]",
    "bne 3b",
    "pop {{r4-r11, pc}}",
    ".size egm_mve_row4, . - egm_mve_row4",
);

extern "C" {
    fn egm_mve_row4(
        x: *const i8,
        offsets: *const i32,
        taps: u32,
        w: *const i8,
        blocks: u32,
        group: *const Group,
        out: *mut u8,
        n: u32,
        step: u32,
    );
}

/// What the `egm_mve_row8_<step>` and `egm_mve_raw8_<step>` kernels read and update: the same as [`row4`]'s arguments, for
/// pairs of positions.
#[repr(C)]
struct Row8 {
    x: *const i8,
    offsets: *const i32,
    taps: u32,
    w: *const i8,
    blocks: u32,
    group: *const Group,
    /// The output byte of the pair's first position (advanced by 2 a pair).
    out: *mut u8,
    /// Pairs left (counted down).
    pairs: u32,
    /// Bytes from one position to the next (the variant's immediate).
    step: u32,
}

/// Assembly text of one `egm_mve_row8_<step>` variant: two output positions × four output
/// channels a pass, so every weight vector loaded serves two positions: per 16 input
/// channels two `VLDRB` of the input (the second position at the immediate offset `step`),
/// four of the weights and eight `VMLADAVA.S8` into the eight even-numbered registers (r0 to
/// r12 and lr). r0: the [`Row8`] (kept at [sp], the block count at [sp, #4]).
/// The pair kernel's stores (r7: the [`Group`], r9: the output, advanced past the pair):
/// `int8` requantizes each position's four lanes and scatters their bytes; `raw` scatters the
/// i32 accumulators themselves (4 bytes an output, for outputs written as f32).
macro_rules! row8_store {
    (int8) => {
        concat!(
            requantize_q0!("r7"),
            "\n",
            "vldrw.u32 q1, [r7, #96]\n",
            "vstrb.32 q0, [r9, q1]\n",
            "vmov q0, q3\n",
            requantize_q0!("r7"),
            "\n",
            "vldrw.u32 q1, [r7, #96]\n",
            "adds r9, r9, #1\n",
            "vstrb.32 q0, [r9, q1]\n",
            "adds r9, r9, #1",
        )
    };
    (raw) => {
        concat!("vldrw.u32 q1, [r7, #96]\n", "vstrw.32 q0, [r9, q1]\n", "adds r9, r9, #4\n", "vstrw.32 q3, [r9, q1]\n", "adds r9, r9, #4",)
    };
}

macro_rules! row8_asm {
    ($name:literal, $step:literal, $mode:ident) => {
        core::arch::global_asm!(
            ".syntax unified",
            ".cpu cortex-m55",
            ".thumb",
            concat!(".section .text.", $name, ",\"ax\",%progbits"),
            concat!(".global ", $name),
            concat!(".type ", $name, ",%function"),
            ".thumb_func",
            concat!($name, ":"),
            "push {{r4-r11, lr}}",
            "ldr r1, [r0, #16]",
            "push {{r0, r1}}",
            "ldr r5, [r0]",
            "3:",
            "ldr r7, [sp]",
            "ldr r1, [r7, #4]",
            "ldr r3, [r7, #8]",
            "ldr r11, [r7, #12]",
            "ldr r7, [r7, #20]",
            "ldrd r0, r2, [r7, #112]",
            "ldrd r4, r6, [r7, #120]",
            "ldrd r8, r10, [r7, #112]",
            "ldrd r12, lr, [r7, #120]",
            "2:",
            "ldr r9, [r1], #4",
            "add r9, r9, r5",
            "ldr r7, [sp, #4]",
            "1:",
            concat!("vldrb.8 q0, [r9, #", $step, "]"),
            "vldrb.8 q1, [r9], #16",
            "vldrb.8 q2, [r11], #16",
            "vmladava.s8 r0, q1, q2",
            "vmladava.s8 r8, q0, q2",
            "vldrb.8 q3, [r11], #16",
            "vmladava.s8 r2, q1, q3",
            "vmladava.s8 r10, q0, q3",
            "vldrb.8 q2, [r11], #16",
            "vmladava.s8 r4, q1, q2",
            "vmladava.s8 r12, q0, q2",
            "vldrb.8 q3, [r11], #16",
            "vmladava.s8 r6, q1, q3",
            "vmladava.s8 lr, q0, q3",
            "subs r7, r7, #1",
            "bne 1b",
            "subs r3, r3, #1",
            "bne 2b",
            // Position A's four channels in q0, B's in q3 (the first register of a two-lane
            // VMOV goes to the lower lane), then stored.
            "vmov q0[2], q0[0], r0, r4",
            "vmov q0[3], q0[1], r2, r6",
            "vmov q3[2], q3[0], r8, r12",
            "vmov q3[3], q3[1], r10, lr",
            "ldr r1, [sp]",
            "ldr r7, [r1, #20]",
            "ldr r9, [r1, #24]",
            row8_store!($mode),
            "str r9, [r1, #24]",
            "ldr r9, [r1, #32]",
            "add r5, r5, r9, lsl #1",
            "ldr r9, [r1, #28]",
            "subs r9, r9, #1",
            "str r9, [r1, #28]",
            "bne 3b",
            "add sp, sp, #8",
            "pop {{r4-r11, pc}}",
            concat!(".size ", $name, ", . - ", $name),
        );
    };
}

row8_asm!("egm_mve_row8_16", "16", int8);
row8_asm!("egm_mve_row8_32", "32", int8);
row8_asm!("egm_mve_row8_64", "64", int8);
row8_asm!("egm_mve_raw8_16", "16", raw);
row8_asm!("egm_mve_raw8_32", "32", raw);
row8_asm!("egm_mve_raw8_64", "64", raw);

core::arch::global_asm!(
    ".syntax unified",
    ".cpu cortex-m55",
    ".thumb",
    ".section .text.egm_mve_rowt,\"ax\",%progbits",
    ".global egm_mve_rowt",
    ".type egm_mve_rowt,%function",
    ".thumb_func",
    // One input row from planar to channel-last. r0: channel 0's row, r1: the destination
    // (position 0, channel 0), r2: channels, r3: width; [sp+20]: bytes from one channel's
    // plane to the next, [sp+24]: eight u16 offsets (lane x: x·channels). Per channel, eight
    // bytes a step widened to halfwords and scattered by VSTRB.16 (the last step predicated
    // by VCTP).
    "egm_mve_rowt:",
    "push {{r4-r7, lr}}",
    "ldr r4, [sp, #20]",
    "ldr r5, [sp, #24]",
    "vldrh.u16 q1, [r5]",
    "lsls r7, r2, #3",
    "mov r6, r2",
    "1:",
    "mov r5, r0",
    "mov r12, r1",
    "mov lr, r3",
    "2:",
    "vctp.16 lr",
    "vpstt",
    "vldrbt.u16 q0, [r5], #8",
    "vstrbt.16 q0, [r12, q1]",
    "add r12, r12, r7",
    "subs lr, lr, #8",
    "bgt 2b",
    "add r0, r0, r4",
    "adds r1, r1, #1",
    "subs r6, r6, #1",
    "bne 1b",
    "pop {{r4-r7, pc}}",
    ".size egm_mve_rowt, . - egm_mve_rowt",
);

extern "C" {
    fn egm_mve_row8_16(a: *mut Row8);
    fn egm_mve_row8_32(a: *mut Row8);
    fn egm_mve_row8_64(a: *mut Row8);
    fn egm_mve_raw8_16(a: *mut Row8);
    fn egm_mve_raw8_32(a: *mut Row8);
    fn egm_mve_raw8_64(a: *mut Row8);
    fn egm_mve_rowt(src: *const u8, dst: *mut i8, channels: u32, width: u32, plane: u32, offsets: *const u16);
}

/// How a row kernel writes its outputs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Requantized int8 bytes.
    Int8,
    /// The i32 accumulators (bias included), for the caller to scale into f32.
    Raw,
}

/// The pair kernel for positions `step` bytes apart, if there is one.
fn row8_for(step: usize, store: Store) -> Option<unsafe extern "C" fn(*mut Row8)> {
    match (step, store) {
        (16, Store::Int8) => Some(egm_mve_row8_16),
        (32, Store::Int8) => Some(egm_mve_row8_32),
        (64, Store::Int8) => Some(egm_mve_row8_64),
        (16, Store::Raw) => Some(egm_mve_raw8_16),
        (32, Store::Raw) => Some(egm_mve_raw8_32),
        (64, Store::Raw) => Some(egm_mve_raw8_64),
        _ => None,
    }
}

/// [`row4`] over `n` positions, two at a time where a pair kernel takes `step` (`Raw`: always
/// pairs, `n` even and a pair kernel for `step`, as [`helium`] checks).
///
/// # Safety
/// As [`row4`] (`Raw`: 4 output bytes a position and channel, at 4 times the offsets).
#[inline(always)]
unsafe fn row(
    x: *const i8,
    offsets: &[i32],
    w: *const i8,
    blocks: usize,
    group: &Group,
    out: *mut u8,
    n: usize,
    step: usize,
    store: Store,
) {
    let (pairs, f) = match row8_for(step, store) {
        Some(f) if n >= 2 => (n / 2, f),
        _ => (0, egm_mve_row8_16 as unsafe extern "C" fn(*mut Row8)),
    };
    if pairs > 0 {
        let mut a = Row8 {
            x,
            offsets: offsets.as_ptr(),
            taps: offsets.len() as u32,
            w,
            blocks: blocks as u32,
            group,
            out,
            pairs: pairs as u32,
            step: step as u32,
        };
        // SAFETY: the caller's bounds for positions 0..2·pairs ≤ n; the function follows
        // the AAPCS and writes only the output bytes and `a`.
        unsafe { f(&mut a) };
    }
    if 2 * pairs < n {
        let p = 2 * pairs;
        // SAFETY: the caller's bounds, from position p on.
        unsafe { row4(x.add(p * step), offsets, w, blocks, group, out.add(p), n - p, step) };
    }
}

/// Writes input row `iy` of every channel channel-last at `dst` (`ci` bytes a position).
///
/// # Safety
/// `src` holds `ci` planes of `plane` bytes, each with `wi` bytes from the row's start;
/// `dst` has `wi · ci` writable bytes; `ci ≤ 8191` (the offsets are u16).
#[inline(always)]
unsafe fn channel_last(src: *const u8, dst: *mut i8, ci: usize, wi: usize, plane: usize) {
    let offsets: [u16; 8] = core::array::from_fn(|x| (x * ci) as u16);
    // SAFETY: the caller's bounds; predicated-off lanes neither read nor write.
    unsafe { egm_mve_rowt(src, dst, ci as u32, wi as u32, plane as u32, offsets.as_ptr()) }
}

/// One output row of four channels: for each of `n` positions, `acc[j] = bias[j] + Σ_t Σ_c
/// x[p·step + offsets[t] + c] · w[t][c / 16][j][c % 16]`, requantized and written to
/// `out[p + group.offsets[j]]`.
///
/// # Safety
/// `taps ≥ 1`, `blocks ≥ 1`, `n ≥ 1`; every `x + p·step + offsets[t] .. + 16·blocks` is
/// readable, `w` holds `64·blocks·taps` bytes, and `out + p + group.offsets[j]` is writable
/// for every position and channel.
#[inline(always)]
unsafe fn row4(x: *const i8, offsets: &[i32], w: *const i8, blocks: usize, group: &Group, out: *mut u8, n: usize, step: usize) {
    // SAFETY: the caller's bounds; the function follows the AAPCS (callee-saved registers
    // pushed; q0–q2 are caller-saved) and writes only the output bytes.
    unsafe { egm_mve_row4(x, offsets.as_ptr(), offsets.len() as u32, w, blocks as u32, group, out, n as u32, step as u32) }
}

/// 2-D convolution, bit-exact with `reference::conv2d`: the Helium path where it applies,
/// the portable kernel elsewhere.
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    if !helium(g, input, weights, bias, spec, out) {
        crate::kernels::portable::conv2d(g, input, weights, bias, spec, out)
    }
}

/// The Helium convolution; false (and nothing written) when the layer is not one it takes.
/// Out of line, so its stack buffers are gone before the portable kernel's are taken.
#[inline(never)]
fn helium(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (stride, pad) = (g.stride, g.pad);
    let (store, quant, bytes) = match *spec {
        OutSpec::Int8 { quant, .. } => (Store::Int8, quant, 1),
        OutSpec::F32 { quant } => (Store::Raw, quant, 4),
    };
    let n_groups = co.div_ceil(4);
    if stride == 0
        || ci == 0
        || co == 0
        || ho == 0
        || wo == 0
        || kh == 0
        || kw == 0
        || pad >= kh
        || pad >= kw
        || (ho - 1) * stride + kh > hi + 2 * pad
        || (wo - 1) * stride + kw > wi + 2 * pad
        || kh * kw > MAX_TAPS
        || n_groups > MAX_GROUPS
        || input.len() < ci * hi * wi
        || out.len() < co * ho * wo * bytes
        || weights.len() < co * ci * kh * kw
        || bias.len() < 4 * co
        || quant.len() < co * if store == Store::Int8 { 8 } else { 4 }
        // A channel group short of four goes through a scratch row.
        || (co % 4 != 0 && 4 * wo * bytes > SCRATCH)
    {
        return false;
    }
    // The padded row: every position's window, `stride` columns apart.
    let wp = (wo - 1) * stride + kw;
    // The taps any channel uses (a masked kernel's lower half is zero everywhere).
    let mut taps = [(0usize, 0usize); MAX_TAPS];
    let mut n_taps = 0;
    for ky in 0..kh {
        for kx in 0..kw {
            let used = (0..co * ci).any(|i| weights[i * kh * kw + ky * kw + kx] != 0);
            if used {
                taps[n_taps] = (ky, kx);
                n_taps += 1;
            }
        }
    }
    let taps = &taps[..n_taps];
    // Input channels in 16s: channel-last rows, one tap after another. Fewer (a first layer
    // on a gray image): every position's taps × channels gathered into one vector row
    // (im2col), padded to 16s with the zero point (against zero weights).
    let im2col = ci % 16 != 0;
    let k = n_taps * ci;
    let kp = k.div_ceil(16) * 16;
    // Bytes of one group's packed weights.
    let (blocks, per_group, row_bytes) = if im2col { (kp / 16, 4 * kp, wp * ci) } else { (ci / 16, 4 * n_taps * ci, wp * ci) };
    let (row_taps, step) = if im2col { (1, kp) } else { (n_taps, stride * ci) };
    // One group's packed weights must fit; groups are packed as many at a time as fit.
    if n_taps == 0 || per_group > WPACK || if im2col { wo * kp > COLS } else { kh * row_bytes > ROWS } {
        return false;
    }
    let chunk = WPACK / per_group;
    // f32 outputs have only the pair kernels.
    if store == Store::Raw && (wo % 2 != 0 || row8_for(step, store).is_none()) {
        return false;
    }
    // Each channel's bias with the input zero point's correction folded in.
    let mut wpack = [0i8; WPACK];
    let mut bias0 = [0i32; 4 * MAX_GROUPS];
    let zp = g.input_zero_point;
    let weight = |o: usize, c: usize, (ky, kx): (usize, usize)| weights[((o * ci + c) * kh + ky) * kw + kx] as i8;
    for (o, b) in bias0[..co].iter_mut().enumerate() {
        let sum: i32 = weights[o * ci * kh * kw..(o + 1) * ci * kh * kw].iter().map(|&v| v as i8 as i32).sum();
        *b = i32_at(bias, o).wrapping_sub(zp.wrapping_mul(sum));
    }
    let plane = ho * wo;
    // Each group's requantization, in the lane form: where it is the definition (not the one
    // saturating multiplier, and shifts VSHL and VRSHL take), checked before anything is
    // written. A group short of four writes a scratch row (lane j at j·wo), copied out.
    if let OutSpec::Int8 { .. } = *spec {
        if (0..co).any(|o| i32_at(quant, 2 * o) == i32::MIN || !(-31..=31).contains(&i32_at(quant, 2 * o + 1))) {
            return false;
        }
    }
    let mut groups = [Group::default(); MAX_GROUPS];
    for (gi, grp) in groups[..n_groups].iter_mut().enumerate() {
        let lane_stride = if 4 * gi + 4 <= co { plane } else { wo };
        for j in 0..4 {
            let o = 4 * gi + j;
            if let OutSpec::Int8 { zero_point, act_min, act_max, .. } = *spec {
                let (m, sh) = if o < co { (i32_at(quant, 2 * o), i32_at(quant, 2 * o + 1)) } else { (1 << 30, 0) };
                grp.lanes.set(j, m, sh, zero_point, (act_min, act_max));
            }
            grp.offsets[j] = (j * lane_stride * bytes) as u32;
            grp.bias[j] = bias0[o];
        }
    }
    // Padded channel-last input rows.
    let mut rows = [0i8; ROWS];
    let mut scratch = [0u8; SCRATCH];
    let zp8 = zp.clamp(-128, 127) as i8;
    if zp != zp8 as i32 {
        return false;
    }
    // Each tap's bytes from the position (im2col: the one row of gathered taps, at 0). The
    // rows are a ring of `kh` slots, input row `iy` in slot `iy mod kh`, each converted once
    // and reused by the next output rows; the taps' offsets follow the slots. Input column
    // `ix` is padded column `ix + pad`; the padded row may end before the input does.
    let mut offsets = [0i32; MAX_TAPS];
    let cols_in = wi.min(wp.saturating_sub(pad));
    if !im2col {
        // The padding columns never change: the zero point once.
        rows[..kh * row_bytes].fill(zp8);
    }
    let (y0, y1) = (g.rows.0, g.rows.1.min(ho));
    // The groups `chunk` at a time, as many as `wpack` holds (a 3×3 layer of 32 → 32
    // channels needs 9,216 bytes in all: two passes over the rows).
    for g0 in (0..n_groups).step_by(chunk) {
        let g1 = (g0 + chunk).min(n_groups);
        // Weights as [group of 4 channels][tap][block][channel of 4][16] (im2col: one tap of
        // `kp` values; channels past `co` zero).
        let mut at = 0;
        for group in g0..g1 {
            for t in 0..row_taps {
                for block in 0..blocks {
                    for j in 0..4 {
                        let o = group * 4 + j;
                        let dst = &mut wpack[at..at + 16];
                        at += 16;
                        if o >= co {
                            dst.fill(0);
                            continue;
                        }
                        for (c, d) in dst.iter_mut().enumerate() {
                            let v = block * 16 + c;
                            *d = match im2col {
                                false => weight(o, v, taps[t]),
                                true if v < k => weight(o, v % ci, taps[v / ci]),
                                true => 0,
                            };
                        }
                    }
                }
            }
        }
        // Which input row each slot of the ring holds: none yet in this pass.
        let mut held = [isize::MIN; MAX_TAPS];
        for y in y0..y1 {
            if im2col {
                // Fewer than 16 channels: each position's taps straight from the input, in
                // order, each its `ci` channels (the zero point outside), then zero points up to
                // `kp`.
                let cols = &mut rows[ROWS - COLS..ROWS - COLS + wo * kp];
                cols.fill(zp8);
                for (t, &(ky, kx)) in taps.iter().enumerate() {
                    let iy = (y * stride + ky) as isize - pad as isize;
                    if iy < 0 || iy >= hi as isize {
                        continue;
                    }
                    // Positions whose column ix = x·stride + kx − pad lies in the input.
                    let x_lo = (pad.saturating_sub(kx)).div_ceil(stride);
                    let x_hi = if wi + pad > kx { ((wi + pad - kx - 1) / stride + 1).min(wo) } else { 0 };
                    for c in 0..ci {
                        let src = &input[c * hi * wi + iy as usize * wi..][..wi];
                        for x in x_lo..x_hi {
                            cols[x * kp + t * ci + c] = src[x * stride + kx - pad] as i8;
                        }
                    }
                }
            } else {
                for (t, &(ky, kx)) in taps.iter().enumerate() {
                    let iy = (y * stride + ky) as isize - pad as isize;
                    let slot = iy.rem_euclid(kh as isize) as usize;
                    offsets[t] = (slot * row_bytes + kx * ci) as i32;
                    if held[slot] == iy || cols_in == 0 {
                        continue;
                    }
                    held[slot] = iy;
                    let inner = &mut rows[slot * row_bytes + pad * ci..][..cols_in * ci];
                    if iy < 0 || iy >= hi as isize {
                        inner.fill(zp8);
                    } else {
                        // SAFETY: channel c's row iy is input[c·hi·wi + iy·wi ..][..wi] (ci·hi·wi
                        // ≤ input.len(), checked above) and `cols_in ≤ wi`; `inner` holds
                        // cols_in·ci bytes; 8·ci fits u16 (wp·ci ≤ ROWS).
                        unsafe { channel_last(input.as_ptr().add(iy as usize * wi), inner.as_mut_ptr(), ci, cols_in, hi * wi) };
                    }
                }
            }
            let src = if im2col { rows[ROWS - COLS..].as_ptr() } else { rows.as_ptr() };
            for (gi, grp) in groups[..n_groups].iter().enumerate().take(g1).skip(g0) {
                let w = wpack[(gi - g0) * per_group..].as_ptr();
                let whole = 4 * gi + 4 <= co;
                let dst = if whole { out[(4 * gi * plane + y * wo) * bytes..].as_mut_ptr() } else { scratch.as_mut_ptr() };
                // SAFETY: tap (ky, kx) of position x reads its row's slot at padded column
                // x·stride + kx, `ci` bytes: inside `rows` (slot < kh, x·stride + kx < wp); im2col
                // reads `kp` bytes at x·kp < COLS; `wpack` holds this group's `per_group =
                // row_taps · blocks · 64` bytes at (gi − g0)·per_group (g1 − g0 ≤ chunk =
                // WPACK / per_group); a whole group's output bytes
                // `((4·gi + j)·plane + y·wo + x)·bytes` lie inside `out` (checked: co·plane·bytes ≤
                // len), a partial one's `(j·wo + x)·bytes` inside `scratch` (4·wo·bytes ≤ SCRATCH).
                unsafe { row(src, &offsets[..row_taps], w, blocks, grp, dst, wo, step, store) };
                if !whole {
                    for j in 0..co - 4 * gi {
                        let at = ((4 * gi + j) * plane + y * wo) * bytes;
                        out[at..at + wo * bytes].copy_from_slice(&scratch[j * wo * bytes..(j + 1) * wo * bytes]);
                    }
                }
            }
            if store == Store::Raw {
                // This pass's accumulators to f32 in place: `acc · scale[c]`, as `OutSpec::emit`.
                for c in 4 * g0..(4 * g1).min(co) {
                    let scale = f32_at(quant, c);
                    for v in out[(c * plane + y * wo) * 4..(c * plane + (y + 1) * wo) * 4].chunks_exact_mut(4) {
                        let acc = i32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                        v.copy_from_slice(&(acc as f32 * scale).to_le_bytes());
                    }
                }
            }
        }
    }
    true
}

/// What [`egm_mve_add`] reads: both inputs' tables and the output's requantization.
#[repr(C, align(16))]
struct AddVec {
    ta: [i32; 256],
    tb: [i32; 256],
    lanes: Lanes,
}

core::arch::global_asm!(
    ".syntax unified",
    ".cpu cortex-m55",
    ".thumb",
    ".section .text.egm_mve_add,\"ax\",%progbits",
    ".global egm_mve_add",
    ".type egm_mve_add,%function",
    ".thumb_func",
    // r0: a, r1: b, r2: out, r3: groups of four values, [sp]: the `AddVec`. Four values a
    // step: both inputs' bytes widened to words, their table entries gathered, summed and
    // requantized as one vector, four bytes stored.
    "egm_mve_add:",
    "push {{r4-r6, lr}}",
    "ldr r4, [sp, #16]",
    "add r5, r4, #1024",
    "add r6, r4, #2048",
    "1:",
    "vldrb.u32 q0, [r0], #4",
    "vldrw.u32 q1, [r4, q0, uxtw #2]",
    "vldrb.u32 q0, [r1], #4",
    "vldrw.u32 q2, [r5, q0, uxtw #2]",
    "vadd.i32 q0, q1, q2",
    requantize_q0!("r6"),
    "vstrb.32 q0, [r2], #4",
    "subs r3, r3, #1",
    "bne 1b",
    "pop {{r4-r6, pc}}",
    ".size egm_mve_add, . - egm_mve_add",
);

extern "C" {
    fn egm_mve_add(a: *const u8, b: *const u8, out: *mut u8, groups: u32, p: *const AddVec);
}

/// int8 addition, bit-exact with `reference::add`: the portable kernel's tables, then four
/// values per step in MVE vectors.
pub fn add(p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    let n = out.len().min(a.len()).min(b.len());
    let (m, shift) = p.output;
    if n < 512 || m == i32::MIN || !(-31..=31).contains(&shift) {
        return crate::kernels::portable::add(p, a, b, out);
    }
    let mut v =
        AddVec { ta: crate::kernels::portable::add_table(p, 0), tb: crate::kernels::portable::add_table(p, 1), lanes: Lanes::default() };
    for j in 0..4 {
        v.lanes.set(j, m, shift, p.output_zero_point, p.act);
    }
    let groups = n / 4;
    // SAFETY: `a`, `b` and `out` hold at least `4·groups` bytes; the gathers index the
    // 256-entry tables by byte values; the function follows the AAPCS.
    unsafe { egm_mve_add(a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), groups as u32, &v) };
    let done = 4 * groups;
    if done < n {
        crate::kernels::portable::add(p, &a[done..n], &b[done..n], &mut out[done..n]);
    }
}
