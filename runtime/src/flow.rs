//! A normalizing flow (RealNVP) on the int8 engine, in mixed precision.
//!
//! Each affine coupling's network (3×3 convolutions, ReLU, residual adds) is a compiled
//! model file of family [`Family::FlowCoupling`] run by the int8 [`Interpreter`]: masked
//! values in (f32, quantized by its first op), the raw log-scale `ŝ` and shift `t` out
//! (`[2C, H, W]`, f32 from the last layer's int32 accumulators). Everything the int8 grid
//! would spoil stays in f32: the logit transform, `s = scale_c · tanh(ŝ)`, `exp(s)`, the
//! coupling's `x · exp(s) + t`, the log-determinant `Σ s` and the Gaussian's `−½ Σ z²`
//! (sums in f64). The transcendentals are `libm`'s, so every target computes the same bits.
//!
//! The couplings live in one **flow file** (`flow.egf`), read in place:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `EGFL` |
//! | 4..6 | version (1) |
//! | 6..8 | couplings `n` (1..=[`MAX_COUPLINGS`]) |
//! | 8..14 | image `C`, `H`, `W` (u16 each; `C` 1 or 3, `H` and `W` even) |
//! | 14..16 | couplings before the squeeze (`pre` ≤ `n`) |
//! | 16..20 | logit margin α (f32) |
//! | 20..24 | CRC-32 of bytes 24.. |
//! | 24..32 | reserved (0) |
//! | 32.. | `n` records of 16 bytes: mask (u8: 0 checkerboard even, 1 checkerboard odd, 2 first half of the channels, 3 second half), 3 zero bytes, then u32 offsets of the per-channel scales (`C'` f32), of the coupling's model file, and that file's length |
//!
//! Couplings `0..pre` act on `[C, H, W]`; then each 2×2 block becomes four channels (the
//! squeeze) and couplings `pre..n` act on `[4C, H/2, W/2]`. The latent is the last map.

use crate::crc32::crc32;
use crate::error::Error;
use crate::image::Geometry;
use crate::interpreter::Interpreter;
use crate::kernels::Kernels;
use crate::model::{DType, Family, Model};
use crate::rng::Rng;

/// The flow file's magic bytes.
pub const MAGIC: [u8; 4] = *b"EGFL";
/// The flow file version this runtime writes and reads.
pub const VERSION: u16 = 1;
/// Most couplings a flow file holds.
pub const MAX_COUPLINGS: usize = 32;
/// Header bytes.
pub const HEADER_LEN: usize = 32;
/// Bytes per coupling record.
pub const RECORD_LEN: usize = 16;

/// Which values a coupling keeps (and conditions on); the others are scaled and shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mask {
    /// Values with (row + column) even are kept.
    CheckerEven = 0,
    /// Values with (row + column) odd are kept.
    CheckerOdd = 1,
    /// The first half of the channels is kept.
    ChannelsFirst = 2,
    /// The second half of the channels is kept.
    ChannelsSecond = 3,
}

impl Mask {
    /// The mask of a stored code.
    pub fn from_u8(v: u8) -> Option<Mask> {
        [Mask::CheckerEven, Mask::CheckerOdd, Mask::ChannelsFirst, Mask::ChannelsSecond].get(v as usize).copied()
    }

    /// Whether the value at channel `c` of `channels`, row `y`, column `x` is kept.
    #[inline]
    pub fn keeps(self, c: usize, channels: usize, y: usize, x: usize) -> bool {
        match self {
            Mask::CheckerEven => (y + x).is_multiple_of(2),
            Mask::CheckerOdd => !(y + x).is_multiple_of(2),
            Mask::ChannelsFirst => c < channels / 2,
            Mask::ChannelsSecond => c >= channels / 2,
        }
    }
}

/// The shape of a flow: what the coupling arithmetic needs besides the networks.
pub trait Couplings {
    /// The image geometry.
    fn geometry(&self) -> Geometry;
    /// Couplings in all.
    fn count(&self) -> usize;
    /// Couplings before the squeeze.
    fn pre(&self) -> usize;
    /// The logit margin α.
    fn alpha(&self) -> f32;
    /// Coupling `k`'s mask.
    fn mask(&self, k: usize) -> Mask;
    /// Coupling `k`'s bound of the log-scale for channel `c`.
    fn scale(&self, k: usize, c: usize) -> f32;
    /// Runs coupling `k`'s network: `masked` (`[C', H', W']`, the kept values, zero
    /// elsewhere) → `out` (`[2C', H', W']`: `ŝ`, then `t`).
    fn run(&mut self, k: usize, masked: &[f32], out: &mut [f32]) -> Result<(), Error>;
}

/// `[C, H, W]` of the maps coupling `k` acts on, for image geometry `g` and `pre` couplings
/// before the squeeze.
pub fn stage_dims(g: Geometry, pre: usize, k: usize) -> [usize; 3] {
    let [c, h, w] = [g.channels as usize, g.height as usize, g.width as usize];
    if k < pre {
        [c, h, w]
    } else {
        [4 * c, h / 2, w / 2]
    }
}

/// f32 values the coupling arithmetic needs beside the networks' arena: 4 per image value.
pub fn scratch_len(g: Geometry) -> usize {
    4 * g.values()
}

/// `[C, H, W]` → `[4C, H/2, W/2]` (each 2×2 block becomes four channels, `4c + 2dy + dx`),
/// or back when `inverse`.
fn squeeze(g: Geometry, from: &[f32], to: &mut [f32], inverse: bool) {
    let [c, h, w] = [g.channels as usize, g.height as usize, g.width as usize];
    let (h2, w2) = (h / 2, w / 2);
    for ch in 0..c {
        for dy in 0..2 {
            for dx in 0..2 {
                let o = ch * 4 + dy * 2 + dx;
                for i in 0..h2 {
                    for j in 0..w2 {
                        let full = (ch * h + 2 * i + dy) * w + 2 * j + dx;
                        let half = (o * h2 + i) * w2 + j;
                        if inverse {
                            to[full] = from[half];
                        } else {
                            to[half] = from[full];
                        }
                    }
                }
            }
        }
    }
}

/// One coupling, forward (`x · exp(s) + t`, returning `Σ s`) or inverse (`(y − t) · exp(−s)`),
/// on `h` in place.
fn couple(f: &mut impl Couplings, k: usize, h: &mut [f32], masked: &mut [f32], out: &mut [f32], inverse: bool) -> Result<f64, Error> {
    let [c, hh, ww] = stage_dims(f.geometry(), f.pre(), k);
    let mask = f.mask(k);
    let n = c * hh * ww;
    for ch in 0..c {
        for y in 0..hh {
            for x in 0..ww {
                let i = (ch * hh + y) * ww + x;
                masked[i] = if mask.keeps(ch, c, y, x) { h[i] } else { 0.0 };
            }
        }
    }
    f.run(k, &masked[..n], &mut out[..2 * n])?;
    let mut logdet = 0f64;
    for ch in 0..c {
        let scale = f.scale(k, ch);
        for y in 0..hh {
            for x in 0..ww {
                if mask.keeps(ch, c, y, x) {
                    continue;
                }
                let i = (ch * hh + y) * ww + x;
                let s = scale * libm::tanhf(out[i]);
                let t = out[n + i];
                if inverse {
                    h[i] = (h[i] - t) * libm::expf(-s);
                } else {
                    h[i] = h[i] * libm::expf(s) + t;
                }
                logdet += s as f64;
            }
        }
    }
    Ok(logdet)
}

/// The scratch's three parts: the maps, a second map, the networks' outputs.
type Parts<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32]);

fn split(scratch: &mut [f32], d: usize) -> Result<Parts<'_>, Error> {
    if scratch.len() < 4 * d {
        return Err(Error::LengthMismatch { expected: 4 * d, got: scratch.len() });
    }
    let (h, rest) = scratch.split_at_mut(d);
    let (tmp, rest) = rest.split_at_mut(d);
    Ok((h, tmp, &mut rest[..2 * d]))
}

/// log p(image) in nats, the flow's density of the 8-bit image dequantized at the bin centre
/// (`v = (p + ½)/256`); the latent is left in `scratch[..D]`.
pub fn log_prob_with(f: &mut impl Couplings, image: &[u8], scratch: &mut [f32]) -> Result<f64, Error> {
    let g = f.geometry();
    g.check(image)?;
    let d = g.values();
    let (h, tmp, out) = split(scratch, d)?;
    let alpha = f.alpha();
    // y = logit(α + (1 − 2α) v); its log-determinant is −Σ (ln w + ln(1 − w)) + D ln(1 − 2α).
    let mut pre_sum = 0f64;
    for (y, &p) in h.iter_mut().zip(image) {
        let v = (p as f32 + 0.5) / 256.0;
        let w = alpha + (1.0 - 2.0 * alpha) * v;
        let (lw, l1w) = (libm::logf(w), libm::logf(1.0 - w));
        *y = lw - l1w;
        pre_sum += (lw + l1w) as f64;
    }
    let mut logdet = 0f64;
    for k in 0..f.count() {
        if k == f.pre() {
            squeeze(g, h, tmp, false);
            h.copy_from_slice(tmp);
        }
        logdet += couple(f, k, h, tmp, out, false)?;
    }
    if f.pre() == f.count() {
        squeeze(g, h, tmp, false);
        h.copy_from_slice(tmp);
    }
    let sq: f64 = h.iter().map(|&z| z as f64 * z as f64).sum();
    let dd = d as f64;
    let constant = dd * (libm::log(1.0 - 2.0 * alpha as f64) - libm::log(256.0) - 0.5 * libm::log(2.0 * core::f64::consts::PI));
    Ok(-0.5 * sq + logdet - pre_sum + constant)
}

/// The image of the latent in `scratch[..D]` (`[4C, H/2, W/2]`): the inverse couplings, the
/// inverse squeeze, the inverse logit, and each value's bin `min(⌊256 v⌋, 255)`.
pub fn decode_with(f: &mut impl Couplings, scratch: &mut [f32], out: &mut [u8]) -> Result<(), Error> {
    let g = f.geometry();
    g.check(out)?;
    let d = g.values();
    let (h, tmp, buf) = split(scratch, d)?;
    let (n, pre) = (f.count(), f.pre());
    if pre == n {
        squeeze(g, h, tmp, true);
        h.copy_from_slice(tmp);
    }
    for k in (0..n).rev() {
        couple(f, k, h, tmp, buf, true)?;
        // The forward pass squeezed just before coupling `pre`.
        if k == pre {
            squeeze(g, h, tmp, true);
            h.copy_from_slice(tmp);
        }
    }
    let alpha = f.alpha();
    for (o, &y) in out.iter_mut().zip(h.iter()) {
        let w = 1.0 / (1.0 + libm::expf(-y));
        let v = (w - alpha) / (1.0 - 2.0 * alpha);
        *o = libm::floorf(v * 256.0).clamp(0.0, 255.0) as u8;
    }
    Ok(())
}

/// One coupling of a flow file.
struct Stage<'m> {
    mask: Mask,
    scales: &'m [u8],
    net: Interpreter<'m>,
}

/// A flow file opened for the int8 engine (validated once, read in place).
pub struct Flow<'m> {
    geometry: Geometry,
    pre: usize,
    alpha: f32,
    count: usize,
    stages: [Option<Stage<'m>>; MAX_COUPLINGS],
    arena_len: usize,
    bytes: &'m [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(reason: &'static str) -> Error {
    Error::InvalidParameter(reason)
}

impl<'m> Flow<'m> {
    /// Opens and validates a flow file: header, checksum, every record's ranges, every
    /// coupling's model file (family, f32 input `[C', H', W']` of its stage, one f32 output
    /// `[2C', H', W']`) and mask.
    pub fn from_bytes(bytes: &'m [u8], kernels: Kernels) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { needed: HEADER_LEN as u32, got: bytes.len() as u32 });
        }
        if bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, 4);
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version, supported: VERSION });
        }
        let count = u16_at(bytes, 6) as usize;
        let (c, h, w) = (u16_at(bytes, 8), u16_at(bytes, 10), u16_at(bytes, 12));
        let pre = u16_at(bytes, 14) as usize;
        let alpha = f32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let stored = u32_at(bytes, 20);
        let computed = crc32(&bytes[24..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        if !(1..=MAX_COUPLINGS).contains(&count) || pre > count {
            return Err(bad("flow file: 1..=32 couplings, at most all of them before the squeeze"));
        }
        if !(c == 1 || c == 3) || h < 2 || w < 2 || h % 2 != 0 || w % 2 != 0 {
            return Err(bad("flow file: the image must have 1 or 3 channels and even sides"));
        }
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(bad("flow file: the logit margin must be in (0, 0.5)"));
        }
        let geometry = Geometry::new(c, h, w)?;
        let needed = HEADER_LEN + count * RECORD_LEN;
        if bytes.len() < needed {
            return Err(Error::Truncated { needed: needed as u32, got: bytes.len() as u32 });
        }
        let mut flow = Flow { geometry, pre, alpha, count, stages: core::array::from_fn(|_| None), arena_len: 0, bytes };
        for k in 0..count {
            let r = &bytes[HEADER_LEN + k * RECORD_LEN..][..RECORD_LEN];
            let mask = Mask::from_u8(r[0]).ok_or(bad("flow file: unknown coupling mask"))?;
            let [sc, sh, sw] = stage_dims(geometry, pre, k);
            if matches!(mask, Mask::ChannelsFirst | Mask::ChannelsSecond) && sc % 2 != 0 {
                return Err(bad("flow file: a channel mask needs an even channel count"));
            }
            let range = |off: u32, len: usize| -> Result<&'m [u8], Error> {
                let off = off as usize;
                bytes
                    .get(off..off.checked_add(len).ok_or(bad("flow file: range overflows"))?)
                    .ok_or(Error::Truncated { needed: (off + len) as u32, got: bytes.len() as u32 })
            };
            let scales = range(u32_at(r, 4), 4 * sc)?;
            if scales.chunks_exact(4).any(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()) {
                return Err(bad("flow file: a coupling's scale is not finite"));
            }
            let model = Model::from_bytes(range(u32_at(r, 8), u32_at(r, 12) as usize)?)?;
            if model.metadata().family != Family::FlowCoupling {
                return Err(Error::WrongFamily);
            }
            let input = model.input();
            let fits = |t: crate::model::Tensor, ch: usize| t.dtype == DType::F32 && t.dims.iter().map(|&d| d as usize).eq([ch, sh, sw]);
            if !fits(input, sc) || model.outputs().len() != 1 || !fits(model.tensor(model.outputs()[0] as usize), 2 * sc) {
                return Err(bad("flow file: a coupling network must map f32 [C,H,W] of its stage to f32 [2C,H,W]"));
            }
            let net = Interpreter::new(model, kernels);
            flow.arena_len = flow.arena_len.max(net.arena_len());
            flow.stages[k] = Some(Stage { mask, scales, net });
        }
        Ok(flow)
    }

    /// The image geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Arena bytes the coupling networks need (they run one after another in it).
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// f32 values of scratch the coupling arithmetic needs ([`scratch_len`]).
    pub fn scratch_len(&self) -> usize {
        scratch_len(self.geometry)
    }

    /// Values of the latent (as many as the image's).
    pub fn latent(&self) -> usize {
        self.geometry.values()
    }

    /// Couplings in the file.
    pub fn couplings(&self) -> usize {
        self.count
    }

    /// Couplings before the squeeze.
    pub fn pre(&self) -> usize {
        self.pre
    }

    /// Coupling `k`'s mask.
    pub fn mask(&self, k: usize) -> Option<Mask> {
        self.stages.get(k)?.as_ref().map(|s| s.mask)
    }

    /// Coupling `k`'s bound of the log-scale for channel `c` (0 outside the file).
    pub fn scale(&self, k: usize, c: usize) -> f32 {
        let Some(Some(s)) = self.stages.get(k) else { return 0.0 };
        s.scales.get(4 * c..4 * c + 4).map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Coupling `k`'s network.
    pub fn network(&self, k: usize) -> Option<&Interpreter<'m>> {
        self.stages.get(k)?.as_ref().map(|s| &s.net)
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &'m [u8] {
        self.bytes
    }

    /// log p(image) in nats at the bin centre (see [`log_prob_with`]); the latent is left in
    /// `scratch[..D]`.
    pub fn log_prob(&self, arena: &mut [u8], scratch: &mut [f32], image: &[u8]) -> Result<f64, Error> {
        log_prob_with(&mut Bound { flow: self, arena }, image, scratch)
    }

    /// The image of latent `z` (`D` values).
    pub fn decode(&self, arena: &mut [u8], scratch: &mut [f32], z: &[f32], out: &mut [u8]) -> Result<(), Error> {
        let d = self.latent();
        if z.len() != d {
            return Err(Error::LengthMismatch { expected: d, got: z.len() });
        }
        if scratch.len() < 4 * d {
            return Err(Error::LengthMismatch { expected: 4 * d, got: scratch.len() });
        }
        scratch[..d].copy_from_slice(z);
        decode_with(&mut Bound { flow: self, arena }, scratch, out)
    }

    /// The image for z ~ N(0, I) drawn from `Rng::new(seed)` (the same draw as the tract
    /// engine's): one pass of the inverse flow.
    pub fn sample(&self, arena: &mut [u8], scratch: &mut [f32], seed: u64, out: &mut [u8]) -> Result<(), Error> {
        let d = self.latent();
        if scratch.len() < 4 * d {
            return Err(Error::LengthMismatch { expected: 4 * d, got: scratch.len() });
        }
        Rng::new(seed).fill_normal(&mut scratch[..d]);
        decode_with(&mut Bound { flow: self, arena }, scratch, out)
    }
}

/// A flow with its arena: the [`Couplings`] the int8 engine runs.
struct Bound<'a, 'b, 'm> {
    flow: &'a Flow<'m>,
    arena: &'b mut [u8],
}

impl Couplings for Bound<'_, '_, '_> {
    fn geometry(&self) -> Geometry {
        self.flow.geometry
    }
    fn count(&self) -> usize {
        self.flow.count
    }
    fn pre(&self) -> usize {
        self.flow.pre
    }
    fn alpha(&self) -> f32 {
        self.flow.alpha
    }
    fn mask(&self, k: usize) -> Mask {
        self.flow.mask(k).unwrap_or(Mask::CheckerEven)
    }
    fn scale(&self, k: usize, c: usize) -> f32 {
        self.flow.scale(k, c)
    }
    fn run(&mut self, k: usize, masked: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let net = &self.flow.stages[k].as_ref().ok_or(bad("no such coupling"))?.net;
        if self.arena.len() < net.arena_len() {
            return Err(Error::ArenaTooSmall { needed: net.arena_len(), got: self.arena.len() });
        }
        net.set_input_f32(self.arena, masked)?;
        net.invoke(self.arena)?;
        net.output_f32(self.arena, 0, out)
    }
}

/// Writes a flow file (`std`): the header, the records, the scales and the coupling model
/// files (each 16-byte aligned), and the checksum.
#[cfg(feature = "std")]
pub fn write(geometry: Geometry, pre: usize, alpha: f32, couplings: &[(Mask, Vec<f32>, Vec<u8>)]) -> Result<std::vec::Vec<u8>, Error> {
    let n = couplings.len();
    if !(1..=MAX_COUPLINGS).contains(&n) || pre > n {
        return Err(bad("flow file: 1..=32 couplings, at most all of them before the squeeze"));
    }
    let mut b = vec![0u8; HEADER_LEN + n * RECORD_LEN];
    b[..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&(n as u16).to_le_bytes());
    for (i, v) in geometry.dims().iter().enumerate() {
        b[8 + 2 * i..10 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    b[14..16].copy_from_slice(&(pre as u16).to_le_bytes());
    b[16..20].copy_from_slice(&alpha.to_le_bytes());
    let align = |b: &mut std::vec::Vec<u8>| b.resize(b.len().next_multiple_of(16), 0);
    for (k, (mask, scales, model)) in couplings.iter().enumerate() {
        align(&mut b);
        let s_off = b.len() as u32;
        b.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
        align(&mut b);
        let m_off = b.len() as u32;
        b.extend_from_slice(model);
        let r = HEADER_LEN + k * RECORD_LEN;
        b[r] = *mask as u8;
        b[r + 4..r + 8].copy_from_slice(&s_off.to_le_bytes());
        b[r + 8..r + 12].copy_from_slice(&m_off.to_le_bytes());
        b[r + 12..r + 16].copy_from_slice(&(model.len() as u32).to_le_bytes());
    }
    let crc = crc32(&b[24..]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    Ok(b)
}
