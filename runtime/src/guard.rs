//! The outlier-rejection guard: a threshold on a p(x)-based score, where a higher score
//! means more anomalous. The threshold is calibrated on held-out in-distribution images for
//! a target false-reject rate and stored in the model file's metadata.

use crate::image::Geometry;
use crate::model::Metadata;

/// Score kinds stored in the model file (`guard_score`). Higher means more anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScoreKind {
    /// Raw bits/dim, −log₂ p(x) / (C·H·W).
    BitsPerDim = 1,
    /// Bits/dim minus a generic lossless coder's bits/pixel ([`crate::complexity`];
    /// Serrà et al. 2020).
    ComplexityCorrected = 2,
    /// Bits/dim minus the background model's bits/dim: the likelihood ratio of Ren et al.
    /// 2019 (the background PixelCNN is trained on perturbed images).
    LikelihoodRatio = 3,
    /// The worst line's likelihood ratio: the largest sum over one image row or column of
    /// the per-pixel ratio (summed over a pixel's channels), in bits (local defects: stuck
    /// rows, dead columns, cut-offs).
    LineRatio = 4,
    /// The guard's default: `max((cc − p0) / p1, (line − p2) / p3)` over the
    /// complexity-corrected bits/dim `cc` and the line ratio `line`, each normalized by its
    /// median `p0`/`p2` and its 99th-percentile-minus-median `p1`/`p3` on held-out
    /// in-distribution images (`guard_params`).
    Combined = 5,
    /// The structural guard: `Combined`'s two terms and a third, the negative log density
    /// of the VAE encoder's posterior mean under a Gaussian mixture fitted on held-out
    /// in-distribution frames ([`GuardBlock`]), normalized the same way: `max((cc − p0) /
    /// p1, (line − p2) / p3, (latent − p4) / p5)`. The latent term sees the whole frame
    /// (what the garment is, how it lies); the other two its pixels.
    Structural = 6,
    /// The evidence guard: eight statistics of one frame, each normalized by its median and
    /// 99th-percentile spread on held-out in-distribution frames as above, combined by a
    /// soft maximum `ln Σ exp(zᵢ)` (one clearly raised term decides, as in a maximum, and
    /// several moderately raised ones add up). The terms ([`EVIDENCE_TERMS`]): the
    /// complexity-corrected bits, the worst line and the worst patch of the per-pixel
    /// likelihood ratio, the latent score, the VAE's bound at its posterior mean
    /// (complexity-corrected), the worst line and patch of the per-pixel disagreement
    /// between the PixelCNN and the VAE's reconstruction ([`Reconstruction`]), and the
    /// frame's peak level (two-sided: exposure).
    Evidence = 7,
}

/// The evidence guard's terms, in [`GuardParams`] order (two constants each).
pub const EVIDENCE_TERMS: [&str; 8] =
    ["complexity_corrected", "line_ratio", "latent", "patch_ratio", "vae_bound_cc", "vae_ratio_line", "vae_ratio_patch", "peak_level"];

impl ScoreKind {
    /// Every kind, in order.
    pub const ALL: [ScoreKind; 7] = [
        ScoreKind::BitsPerDim,
        ScoreKind::ComplexityCorrected,
        ScoreKind::LikelihoodRatio,
        ScoreKind::LineRatio,
        ScoreKind::Combined,
        ScoreKind::Structural,
        ScoreKind::Evidence,
    ];

    /// From the metadata byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u8 == v)
    }

    /// Name for logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::BitsPerDim => "bits_per_dim",
            ScoreKind::ComplexityCorrected => "complexity_corrected",
            ScoreKind::LikelihoodRatio => "likelihood_ratio",
            ScoreKind::LineRatio => "line_ratio",
            ScoreKind::Combined => "combined",
            ScoreKind::Structural => "structural",
            ScoreKind::Evidence => "evidence",
        }
    }

    /// Whether the score needs the background model's per-pixel likelihoods.
    pub fn needs_background(self) -> bool {
        matches!(
            self,
            ScoreKind::LikelihoodRatio | ScoreKind::LineRatio | ScoreKind::Combined | ScoreKind::Structural | ScoreKind::Evidence
        )
    }

    /// Whether the score needs the VAE encoder's posterior and the model file's guard block.
    pub fn needs_latent(self) -> bool {
        matches!(self, ScoreKind::Structural | ScoreKind::Evidence)
    }

    /// Whether the score needs the VAE decoder's reconstruction at the posterior mean.
    pub fn needs_reconstruction(self) -> bool {
        self == ScoreKind::Evidence
    }
}

/// A guard's constants, (median, spread) pairs in [`EVIDENCE_TERMS`] order: the metadata's
/// four `guard_params` (complexity-corrected bits, line ratio), the guard block's latent
/// normalization, then the block's further terms; zeros where a score does not use them.
pub type GuardParams = [f32; 16];

/// Normalization pairs a guard block holds beyond the latent score's (the evidence guard's
/// terms after the third).
pub const EXTRA_TERMS: usize = EVIDENCE_TERMS.len() - 3;

/// The guard constants stored in a model file (metadata and guard block).
pub fn guard_params(model: &crate::model::Model<'_>) -> GuardParams {
    let md = model.metadata();
    let mut out = [0f32; 16];
    out[..4].copy_from_slice(&md.guard_params);
    if let Some(b) = model.guard_block() {
        let (m, s) = b.norm();
        out[4] = m;
        out[5] = s;
        for i in 0..b.extra_terms() {
            let (m, s) = b.extra_norm(i);
            out[6 + 2 * i] = m;
            out[7 + 2 * i] = s;
        }
    }
    out
}

/// Magic of the guard block.
pub const GUARD_MAGIC: [u8; 4] = *b"EGGB";

/// Most mixture components a guard block holds.
pub const MAX_COMPONENTS: usize = 16;

/// The structural guard's block at the end of a model file (version 3): a Gaussian mixture
/// over the standardized posterior mean of one VAE encoder, fitted on held-out
/// in-distribution frames, read in place. Little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `EGGB` |
/// | 4 | 1 | latent dimensions `d` (1..=64) |
/// | 5 | 1 | components `K` (1..=16) |
/// | 6 | 1 | further normalization pairs `E` (0, or [`EXTRA_TERMS`] for the evidence guard) |
/// | 7 | 1 | reserved (zero) |
/// | 8 | 4 | CRC-32 of the VAE encoder file it was fitted with (its header's checksum) |
/// | 12 | 8 | `f32` median and spread of the latent score on the held-out frames |
/// | 20 | 8·d | `f32` standardization: mean per dimension, then 1 / standard deviation |
/// | … | K × 4·(1 + d + d(d+1)/2) | per component: `f32 c` (log weight + log det L − d/2 · log 2π), `f32 mean[d]`, `f32 L[d(d+1)/2]` (lower triangle, row by row: precision = Lᵀ·L) |
/// | … | 8·E | `f32` median and spread of each further term on the held-out frames |
///
/// The latent score of a posterior mean μ: `z = (μ − mean) · inv_std`, then
/// `−log Σ_k exp(c_k − ½‖L_k (z − mean_k)‖²)`.
#[derive(Debug, Clone, Copy)]
pub struct GuardBlock<'a> {
    bytes: &'a [u8],
    latent: usize,
    components: usize,
    extra: usize,
}

impl<'a> GuardBlock<'a> {
    /// Bytes of a block of `latent` dimensions and `components` components (and no further
    /// normalization pairs; each adds 8).
    pub const fn len_for(latent: usize, components: usize) -> usize {
        20 + 8 * latent + components * 4 * (1 + latent + latent * (latent + 1) / 2)
    }

    /// Reads and checks a block (`b` is exactly the block).
    pub fn parse(b: &'a [u8]) -> Result<Self, &'static str> {
        if b.len() < 20 || b[..4] != GUARD_MAGIC {
            return Err("guard block without its magic");
        }
        let (latent, components, extra) = (b[4] as usize, b[5] as usize, b[6] as usize);
        if !(1..=crate::engine::MAX_LATENT).contains(&latent) || !(1..=MAX_COMPONENTS).contains(&components) || b[7] != 0 {
            return Err("guard block: latent dimensions or components out of range");
        }
        if extra != 0 && extra != EXTRA_TERMS {
            return Err("guard block: an unknown number of further guard terms");
        }
        if b.len() != Self::len_for(latent, components) + 8 * extra {
            return Err("guard block length does not match its dimensions");
        }
        if b[12..].chunks_exact(4).any(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()) {
            return Err("guard block holds a non-finite number");
        }
        Ok(GuardBlock { bytes: b, latent, components, extra })
    }

    /// Further normalization pairs the block holds (0, or [`EXTRA_TERMS`]).
    pub fn extra_terms(&self) -> usize {
        self.extra
    }

    /// Median and spread of further term `i` (`i < extra_terms()`) on the held-out frames.
    pub fn extra_norm(&self, i: usize) -> (f32, f32) {
        let at = (Self::len_for(self.latent, self.components) - 12) / 4 + 2 * i;
        (self.f(at), self.f(at + 1))
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Mixture components.
    pub fn components(&self) -> usize {
        self.components
    }

    /// The CRC-32 of the VAE encoder file the density was fitted with.
    pub fn encoder_crc(&self) -> u32 {
        u32::from_le_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }

    /// Median and spread of the latent score on the held-out frames.
    pub fn norm(&self) -> (f32, f32) {
        (self.f(0), self.f(1))
    }

    /// The `i`-th float after the CRC.
    fn f(&self, i: usize) -> f32 {
        let o = 12 + 4 * i;
        f32::from_le_bytes([self.bytes[o], self.bytes[o + 1], self.bytes[o + 2], self.bytes[o + 3]])
    }

    /// `x` standardized: `(x − mean) · inv_std` per dimension (`x` holds `latent` values).
    #[inline(always)]
    fn standardize(&self, x: &[f32]) -> [f64; crate::engine::MAX_LATENT] {
        let d = self.latent;
        let mut z = [0f64; crate::engine::MAX_LATENT];
        for j in 0..d {
            z[j] = (x[j] as f64 - self.f(2 + j) as f64) * self.f(2 + d + j) as f64;
        }
        z
    }

    /// Component `k`'s weighted log density at a standardized `z`: `c_k − ½‖L_k (z − mean_k)‖²`.
    #[inline(always)]
    fn component_term(&self, k: usize, z: &[f64; crate::engine::MAX_LATENT]) -> f64 {
        let d = self.latent;
        let base = 2 + 2 * d + k * (1 + d + d * (d + 1) / 2);
        let mut q = 0f64;
        let mut at = base + 1 + d;
        for i in 0..d {
            let mut y = 0f64;
            for j in 0..=i {
                y += self.f(at + j) as f64 * (z[j] - self.f(base + 1 + j) as f64);
            }
            at += i + 1;
            q += y * y;
        }
        self.f(base) as f64 - 0.5 * q
    }

    /// The latent score of a posterior mean (`None` for a wrong length).
    pub fn score(&self, mu: &[f32]) -> Option<f64> {
        if mu.len() != self.latent {
            return None;
        }
        let z = self.standardize(mu);
        // Streaming log-sum-exp over the components.
        let (mut max, mut acc) = (f64::NEG_INFINITY, 0f64);
        for k in 0..self.components {
            let w = self.component_term(k, &z);
            if w > max {
                acc = acc * libm::exp(max - w) + 1.0;
                max = w;
            } else {
                acc += libm::exp(w - max);
            }
        }
        Some(-(max + libm::log(acc)))
    }

    /// Component `k`'s weighted log density at `x` in the standardized space:
    /// `c_k − ½‖L_k (z − mean_k)‖²` with `z = (x − mean) · inv_std` (`None` for a wrong
    /// length or component). Add [`GuardBlock::log_jacobian`] for the density in `x`'s own
    /// units.
    pub fn component_log_density(&self, k: usize, x: &[f32]) -> Option<f64> {
        if x.len() != self.latent || k >= self.components {
            return None;
        }
        Some(self.component_term(k, &self.standardize(x)))
    }

    /// `Σ log inv_std`: the log Jacobian of the standardization, which turns a density over
    /// the standardized space into one over the raw vectors.
    pub fn log_jacobian(&self) -> f64 {
        let d = self.latent;
        (0..d).map(|j| libm::log(self.f(2 + d + j) as f64)).sum()
    }

    /// Encodes a block (the calibrator's side): `norm` (median, spread), the
    /// standardization `mean` and `inv_std`, and per component `(c, mean, L)`.
    #[cfg(feature = "std")]
    pub fn encode(
        encoder_crc: u32,
        norm: (f32, f32),
        mean: &[f32],
        inv_std: &[f32],
        components: &[(f32, Vec<f32>, Vec<f32>)],
        extra: &[(f32, f32)],
    ) -> Vec<u8> {
        let d = mean.len();
        let mut out = Vec::with_capacity(Self::len_for(d, components.len()) + 8 * extra.len());
        out.extend_from_slice(&GUARD_MAGIC);
        out.extend_from_slice(&[d as u8, components.len() as u8, extra.len() as u8, 0]);
        out.extend_from_slice(&encoder_crc.to_le_bytes());
        let mut put = |v: f32| out.extend_from_slice(&v.to_le_bytes());
        put(norm.0);
        put(norm.1);
        mean.iter().chain(inv_std).for_each(|&v| put(v));
        for (c, m, l) in components {
            put(*c);
            m.iter().chain(l).for_each(|&v| put(v));
        }
        for &(m, s) in extra {
            put(m);
            put(s);
        }
        out
    }
}

/// What the scores are computed from: one image's bits/dim under the model, the generic
/// coder's bits/pixel, and (with a background model) its bits/dim and line ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Statistics {
    /// Bits/dim under the model.
    pub bpd: f64,
    /// The lossless coder's bits/pixel ([`crate::complexity::bits_per_dim`]).
    pub coder_bpd: f64,
    /// Bits/dim under the background model.
    pub background_bpd: Option<f64>,
    /// Largest row or column sum of per-pixel `−log₂ p(x_i) + log₂ p_bg(x_i)` (bits).
    pub line_ratio: Option<f64>,
    /// The latent score: negative log density of the VAE encoder's posterior mean under the
    /// guard block's mixture ([`GuardBlock::score`]), when the guard has one.
    pub latent: Option<f64>,
    /// Largest sum over one patch (a square a quarter of the frame's side, every eighth of
    /// it) of the per-pixel `−log₂ p(x_i) + log₂ p_bg(x_i)` (bits), with a background model.
    pub patch_ratio: Option<f64>,
    /// The frame's brightest level (the mean over a pixel's channels).
    pub peak: f64,
    /// What the VAE's decoder says at the posterior mean, when the guard reads it.
    pub reconstruction: Option<Reconstruction>,
}

/// The VAE's evidence about a frame from one decoder pass at its posterior mean μ: how well
/// the global model explains the frame, and where the local model (the PixelCNN) explains
/// it much better than the global one — a part of the frame the latent cannot account for
/// (an object in the way, a garment turned the wrong way).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reconstruction {
    /// The one-sample bound at z = μ, complexity-corrected: `(−log p(x|μ) + KL(q(z|x) ‖
    /// N(0, I))) / (D ln 2)` minus the lossless coder's bits/pixel.
    pub bound_cc: f64,
    /// Largest row or column sum of the per-pixel `log₂ p(x_i) − log₂ p(x_i|μ)` (bits; the
    /// PixelCNN's likelihood against the reconstruction's).
    pub ratio_line: f64,
    /// Largest patch sum of the same (patches as [`Statistics::patch_ratio`]'s).
    pub ratio_patch: f64,
}

impl Reconstruction {
    /// One decoder pass of `vae` at the posterior mean of `posterior` (`(mu, logvar)` from
    /// its encoder), its per-value likelihoods written into `scratch`, and the terms against
    /// the PixelCNN's likelihoods `model`: what the evidence guard reads, on the device and on
    /// the host alike.
    pub fn of(
        vae: &crate::engine::Vae<'_>,
        arena: &mut [u8],
        image: &[u8],
        posterior: (&[f32], &[f32]),
        model: &[f32],
        scratch: &mut [f32],
        coder_bpd: f64,
    ) -> Result<Self, crate::Error> {
        vae.decode_log_prob_pixels(arena, posterior.0, image, scratch)?;
        let kl = crate::likelihood::kl_to_standard_normal(posterior.0, posterior.1)?;
        Ok(Self::from_pixels(vae.geometry(), model, scratch, kl, coder_bpd))
    }

    /// From the per-value log-likelihoods (nats, planar) of the PixelCNN (`model`) and of
    /// the decoder at μ (`reconstruction`), the posterior's KL to the prior (nats) and the
    /// coder's bits/pixel.
    pub fn from_pixels(g: Geometry, model: &[f32], reconstruction: &[f32], kl: f64, coder_bpd: f64) -> Self {
        let n = g.values();
        let total: f64 = reconstruction.iter().map(|&v| v as f64).sum();
        let ln2 = core::f64::consts::LN_2;
        let bound = crate::likelihood::bits_per_dim(total, n) + kl / (n as f64 * ln2);
        let diff = excess(g, model, reconstruction);
        let (w, h) = (g.width as usize, g.height as usize);
        Reconstruction {
            bound_cc: bound - coder_bpd,
            ratio_line: worst_line(w, h, &diff) / ln2,
            ratio_patch: worst_patch(w, h, &diff) / ln2,
        }
    }
}

/// Pixel `p`'s `a − b` in nats (per-value log-likelihoods, planar), summed over its channels
/// in channel order: the likelihood ratio's term and the reconstruction's disagreement's.
fn excess<'a>(g: Geometry, a: &'a [f32], b: &'a [f32]) -> impl Fn(usize) -> f64 + 'a {
    let (plane, channels) = (g.plane(), g.channels as usize);
    move |p| (0..channels).map(|c| a[c * plane + p] as f64 - b[c * plane + p] as f64).sum::<f64>()
}

/// The largest sum of `f(pixel)` over one row or one column of a `width`×`height` frame:
/// the rows' maximum, then the columns' (each sum folding from −0.0, in order, as `Sum for
/// f64` does). Two passes and no buffer: one copy of the code for any width.
#[inline(never)]
fn worst_line(width: usize, height: usize, f: &dyn Fn(usize) -> f64) -> f64 {
    let mut worst = f64::NEG_INFINITY;
    for r in 0..height {
        worst = worst.max((0..width).map(|c| f(r * width + c)).sum::<f64>());
    }
    (0..width).fold(worst, |w, c| w.max((0..height).map(|r| f(r * width + c)).sum::<f64>()))
}

/// The largest sum of `f(pixel)` over a patch: squares a quarter of the frame's side (at
/// least a pixel), placed every eighth of it, row by row, each summed row by row.
#[inline(never)]
fn worst_patch(width: usize, height: usize, f: &dyn Fn(usize) -> f64) -> f64 {
    let (ph, pw) = ((height / 4).max(1), (width / 4).max(1));
    let (sy, sx) = ((height / 8).max(1), (width / 8).max(1));
    let mut worst = f64::NEG_INFINITY;
    for y in (0..=height - ph).step_by(sy) {
        for x in (0..=width - pw).step_by(sx) {
            worst = worst.max((y..y + ph).map(|r| (x..x + pw).map(|c| f(r * width + c)).sum::<f64>()).sum::<f64>());
        }
    }
    worst
}

impl Statistics {
    /// From the per-value log-likelihoods (nats, planar order) of the model and optionally
    /// the background model, for an 8-bit image of geometry `g`.
    pub fn from_pixels(image: &[u8], g: Geometry, model: &[f32], background: Option<&[f32]>) -> Self {
        let n = image.len();
        let total: f64 = model.iter().map(|&v| v as f64).sum();
        let bpd = crate::likelihood::bits_per_dim(total, n);
        let (width, height, plane) = (g.width as usize, g.height as usize, g.plane());
        let coder_bpd = crate::complexity::bits_per_dim(image, width);
        let peak = if g.channels == 1 {
            image.iter().copied().max().unwrap_or(0) as f64
        } else {
            (0..plane).map(|p| (0..g.channels as usize).map(|c| image[c * plane + p] as u32).sum::<u32>()).max().unwrap_or(0) as f64
                / g.channels as f64
        };
        let (background_bpd, line_ratio) = match background {
            Some(bg) if bg.len() == n && n == g.values() && model.len() == n => {
                let bg_total: f64 = bg.iter().map(|&v| v as f64).sum();
                // The worst line in nats, turned into bits once, at the end.
                let worst = worst_line(width, height, &excess(g, bg, model)) / core::f64::consts::LN_2;
                (Some(crate::likelihood::bits_per_dim(bg_total, n)), Some(worst))
            }
            _ => (None, None),
        };
        Statistics { bpd, coder_bpd, background_bpd, line_ratio, latent: None, patch_ratio: None, peak, reconstruction: None }
    }

    /// Adds the patch ratio ([`Statistics::patch_ratio`]) from the same per-value
    /// likelihoods as [`Statistics::from_pixels`] (the evidence guard's term: the scorer
    /// computes it only for that score).
    pub fn with_patch_ratio(mut self, g: Geometry, model: &[f32], background: &[f32]) -> Self {
        let n = g.values();
        if background.len() == n && model.len() == n {
            self.patch_ratio =
                Some(worst_patch(g.width as usize, g.height as usize, &excess(g, background, model)) / core::f64::consts::LN_2);
        }
        self
    }

    /// The score of `kind` (`params`: [`guard_params`]), or `None` when it needs a
    /// background model or a latent score this image was not scored with, or `params` are
    /// unusable.
    pub fn score(&self, kind: ScoreKind, params: &GuardParams) -> Option<f64> {
        let cc = self.bpd - self.coder_bpd;
        Some(match kind {
            ScoreKind::BitsPerDim => self.bpd,
            ScoreKind::ComplexityCorrected => cc,
            ScoreKind::LikelihoodRatio => self.bpd - self.background_bpd?,
            ScoreKind::LineRatio => self.line_ratio?,
            ScoreKind::Combined | ScoreKind::Structural => {
                let [c0, s0, c1, s1, c2, s2] = [0, 1, 2, 3, 4, 5].map(|i| params[i] as f64);
                let usable = |c: f64, s: f64| s > 0.0 && c.is_finite() && s.is_finite();
                if !(usable(c0, s0) && usable(c1, s1)) {
                    return None;
                }
                let pixels = ((cc - c0) / s0).max((self.line_ratio? - c1) / s1);
                if kind == ScoreKind::Combined {
                    pixels
                } else if usable(c2, s2) {
                    pixels.max((self.latent? - c2) / s2)
                } else {
                    return None;
                }
            }
            ScoreKind::Evidence => {
                let r = self.reconstruction?;
                let x = [cc, self.line_ratio?, self.latent?, self.patch_ratio?, r.bound_cc, r.ratio_line, r.ratio_patch, self.peak];
                let mut z = [0f64; EVIDENCE_TERMS.len()];
                for (i, (z, &x)) in z.iter_mut().zip(&x).enumerate() {
                    let (c, s) = (params[2 * i] as f64, params[2 * i + 1] as f64);
                    if !(s > 0.0 && c.is_finite() && s.is_finite()) {
                        return None;
                    }
                    // Every term one-sided (higher = more anomalous) but the peak level:
                    // a frame too dark or too bright is as suspect.
                    *z = if i == EVIDENCE_TERMS.len() - 1 { libm::fabs(x - c) / s } else { (x - c) / s };
                }
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|&v| libm::exp(v - max)).sum();
                max + libm::log(sum)
            }
        })
    }
}

/// The guard's decision on one image.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Verdict {
    /// The score (higher = more anomalous).
    pub score: f32,
    /// The threshold it was compared with.
    pub threshold: f32,
    /// `score <= threshold`.
    pub accept: bool,
}

/// Something that scores an image (higher = more anomalous).
pub trait Scorer {
    /// The scorer's error.
    type Error;
    /// The score of an 8-bit image of the scorer's geometry.
    fn score(&mut self, image: &[u8]) -> Result<f32, Self::Error>;
}

/// A threshold on a scorer.
#[derive(Debug)]
pub struct Guard<S> {
    scorer: S,
    threshold: f32,
}

impl<S: Scorer> Guard<S> {
    /// A guard with an explicit threshold.
    pub fn new(scorer: S, threshold: f32) -> Self {
        Guard { scorer, threshold }
    }

    /// A guard with the threshold calibrated into a model file (`None` when the file holds
    /// no calibrated threshold for `kind`).
    pub fn from_metadata(scorer: S, metadata: &Metadata, kind: ScoreKind) -> Option<Self> {
        (metadata.guard_flags & 1 != 0 && metadata.guard_score == kind as u8 && metadata.guard_threshold.is_finite())
            .then(|| Guard::new(scorer, metadata.guard_threshold))
    }

    /// The scorer (e.g. for the statistics of the last image).
    pub fn scorer(&self) -> &S {
        &self.scorer
    }

    /// The threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Scores `image` and decides.
    pub fn check(&mut self, image: &[u8]) -> Result<Verdict, S::Error> {
        let score = self.scorer.score(image)?;
        Ok(Verdict { score, threshold: self.threshold, accept: score <= self.threshold })
    }
}

/// The int8 guard's scorer: the PixelCNN, optionally its background model (for the
/// likelihood-ratio scores) and a VAE (whose encoder's posterior the structural score
/// reads), one arena they run in turn, and the score kind and constants. The per-value
/// likelihoods of both PixelCNNs (two f32 buffers of `C·H·W` values) live at the end of the
/// arena, after the networks' part ([`PixelCnnScorer::arena_len`] counts them).
#[derive(Debug)]
pub struct PixelCnnScorer<'m, 'a> {
    model: crate::engine::PixelCnn<'m>,
    background: Option<crate::engine::PixelCnn<'m>>,
    vae: Option<crate::engine::Vae<'m>>,
    block: Option<GuardBlock<'m>>,
    arena: &'a mut [u8],
    pixels: &'a mut [f32],
    background_pixels: &'a mut [f32],
    kind: ScoreKind,
    params: GuardParams,
    last: Option<Statistics>,
}

impl<'m, 'a> PixelCnnScorer<'m, 'a> {
    /// A scorer of `kind` over `model` (and `background` when `kind` needs it; `vae` and the
    /// model file's guard block for the structural score) using `arena` (at least
    /// [`PixelCnnScorer::arena_len`] bytes).
    pub fn new(
        model: crate::engine::PixelCnn<'m>,
        background: Option<crate::engine::PixelCnn<'m>>,
        vae: Option<crate::engine::Vae<'m>>,
        arena: &'a mut [u8],
        kind: ScoreKind,
        params: GuardParams,
    ) -> Result<Self, crate::Error> {
        if kind.needs_background() && background.is_none() {
            return Err(crate::Error::InvalidParameter("this guard score needs the background model"));
        }
        if background.as_ref().is_some_and(|b| b.geometry() != model.geometry()) {
            return Err(crate::Error::InvalidParameter("the background model has another image geometry"));
        }
        let block = model.interpreter().model().guard_block();
        if kind.needs_latent() {
            let (Some(v), Some(b)) = (&vae, &block) else {
                return Err(crate::Error::InvalidParameter("the structural guard needs the VAE and the model file's guard block"));
            };
            if v.encoder_model().crc() != b.encoder_crc() || v.latent() != b.latent() {
                return Err(crate::Error::InvalidParameter("the guard block was fitted with another VAE encoder"));
            }
            if v.geometry() != model.geometry() {
                return Err(crate::Error::InvalidParameter("the VAE has another image geometry"));
            }
        }
        let need = Self::arena_len(&model, background.as_ref(), vae.as_ref());
        if arena.len() < need {
            return Err(crate::Error::ArenaTooSmall { needed: need, got: arena.len() });
        }
        let net = Self::networks_len(&model, background.as_ref(), vae.as_ref());
        let (arena, scratch) = arena.split_at_mut(net);
        let pad = scratch.as_ptr().align_offset(4).min(3);
        let values = model.geometry().values();
        let floats: &mut [f32] = bytemuck::try_cast_slice_mut(&mut scratch[pad..pad + 8 * values])
            .map_err(|_| crate::Error::InvalidParameter("arena alignment"))?;
        let (pixels, background_pixels) = floats.split_at_mut(values);
        Ok(PixelCnnScorer { model, background, vae, block, arena, pixels, background_pixels, kind, params, last: None })
    }

    fn networks_len(
        model: &crate::engine::PixelCnn<'_>,
        background: Option<&crate::engine::PixelCnn<'_>>,
        vae: Option<&crate::engine::Vae<'_>>,
    ) -> usize {
        model.arena_len().max(background.map_or(0, |b| b.arena_len())).max(vae.map_or(0, |v| v.arena_len()))
    }

    /// Arena bytes the scorer needs: the largest arena of its networks (the VAE: its
    /// encoder's or, for the evidence guard's reconstruction, its decoder's), then two f32 buffers of per-value likelihoods (and up to 3 bytes to align
    /// them).
    pub fn arena_len(
        model: &crate::engine::PixelCnn<'_>,
        background: Option<&crate::engine::PixelCnn<'_>>,
        vae: Option<&crate::engine::Vae<'_>>,
    ) -> usize {
        Self::networks_len(model, background, vae) + 3 + 8 * model.geometry().values()
    }

    /// A guard with the score kind, constants and threshold calibrated into the model
    /// file (`None` when the file holds no calibrated guard, or its score needs a model that
    /// is not given: the background model, or the VAE the guard block was fitted with).
    pub fn guard(
        model: crate::engine::PixelCnn<'m>,
        background: Option<crate::engine::PixelCnn<'m>>,
        vae: Option<crate::engine::Vae<'m>>,
        arena: &'a mut [u8],
    ) -> Option<Guard<Self>> {
        Self::calibrated(model, background, vae, arena).ok()
    }

    /// [`PixelCnnScorer::guard`] saying why not: [`crate::Error::NoGuard`] when the file
    /// holds no calibrated guard or its score needs the background model or the VAE and it
    /// is not given; otherwise [`PixelCnnScorer::new`]'s errors (a small arena, a VAE of
    /// another encoder or geometry, …).
    pub fn calibrated(
        model: crate::engine::PixelCnn<'m>,
        background: Option<crate::engine::PixelCnn<'m>>,
        vae: Option<crate::engine::Vae<'m>>,
        arena: &'a mut [u8],
    ) -> Result<Guard<Self>, crate::Error> {
        let file = *model.interpreter().model();
        let md = file.metadata();
        let kind = ScoreKind::from_u8(md.guard_score).ok_or(crate::Error::NoGuard)?;
        if md.guard_flags & 1 == 0 || !md.guard_threshold.is_finite() {
            return Err(crate::Error::NoGuard);
        }
        if (kind.needs_background() && background.is_none()) || (kind.needs_latent() && vae.is_none()) {
            return Err(crate::Error::NoGuard);
        }
        let scorer = Self::new(model, background, vae, arena, kind, guard_params(&file))?;
        Ok(Guard::new(scorer, md.guard_threshold))
    }

    /// The image geometry the scorer takes (the PixelCNN's).
    pub fn geometry(&self) -> crate::image::Geometry {
        self.model.geometry()
    }

    /// The score kind.
    pub fn kind(&self) -> ScoreKind {
        self.kind
    }

    /// The statistics of the last image scored.
    pub fn last(&self) -> Option<Statistics> {
        self.last
    }

    /// Statistics of `image` (runs the model, the background model if there is one, and the
    /// VAE's encoder when the score needs the latent term).
    pub fn statistics(&mut self, image: &[u8]) -> Result<Statistics, crate::Error> {
        self.model.log_prob_pixels(self.arena, image, self.pixels)?;
        let bg = match &self.background {
            Some(b) => {
                b.log_prob_pixels(self.arena, image, self.background_pixels)?;
                Some(&self.background_pixels[..])
            }
            None => None,
        };
        let g = self.model.geometry();
        let mut s = Statistics::from_pixels(image, g, self.pixels, bg);
        if let (true, Some(bg)) = (self.kind.needs_reconstruction(), bg) {
            s = s.with_patch_ratio(g, self.pixels, bg);
        }
        if let (true, Some(vae), Some(block)) = (self.kind.needs_latent(), &self.vae, &self.block) {
            let (mut mu, mut lv) = ([0f32; crate::engine::MAX_LATENT], [0f32; crate::engine::MAX_LATENT]);
            let l = vae.latent();
            vae.encode(self.arena, image, &mut mu, &mut lv)?;
            s.latent = block.score(&mu[..l]);
            if self.kind.needs_reconstruction() {
                // The background's per-value likelihoods are spent: the reconstruction's go there.
                let posterior = (&mu[..l], &lv[..l]);
                s.reconstruction =
                    Some(Reconstruction::of(vae, self.arena, image, posterior, self.pixels, self.background_pixels, s.coder_bpd)?);
            }
        }
        self.last = Some(s);
        Ok(s)
    }
}

impl Scorer for PixelCnnScorer<'_, '_> {
    type Error = crate::Error;
    fn score(&mut self, image: &[u8]) -> Result<f32, crate::Error> {
        let s = self.statistics(image)?;
        s.score(self.kind, &self.params).map(|v| v as f32).ok_or(crate::Error::InvalidParameter("guard constants are unusable"))
    }
}

/// One call, three answers ([`Guard::classify`]): the classifier's class and its
/// probability, and the guard's verdict on the same frame.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Answer {
    /// The most probable class (whatever the verdict: [`Answer::label`] is the answer to act on).
    pub class: usize,
    /// Its softmax probability p(y|x).
    pub probability: f64,
    /// The guard's verdict on the frame.
    pub verdict: Verdict,
}

impl Answer {
    /// The class, only when the guard accepts the frame: a classifier must name a class for
    /// every input, the guard says whether the frame is one the models know.
    pub fn label(&self) -> Option<usize> {
        self.verdict.accept.then_some(self.class)
    }
}

impl<'m> Guard<PixelCnnScorer<'m, '_>> {
    /// Classifies `image` and checks it: the guard scores the frame, then `classifier` runs
    /// in the networks' part of the guard's arena (it must fit: [`PixelCnnScorer::arena_len`]
    /// is at least the classifier's arena for the bundled models; a larger classifier gets
    /// [`crate::Error::ArenaTooSmall`]).
    pub fn classify(&mut self, classifier: &crate::engine::Classifier<'_>, image: &[u8]) -> Result<Answer, crate::Error> {
        let verdict = self.check(image)?;
        self.answer(classifier, image, verdict)
    }

    /// The second half of [`Guard::classify`], for a frame this guard has just checked
    /// (`verdict`): runs `classifier` in the guard's arena. Lets a caller time the two apart.
    pub fn answer(&mut self, classifier: &crate::engine::Classifier<'_>, image: &[u8], verdict: Verdict) -> Result<Answer, crate::Error> {
        if classifier.geometry() != self.scorer.model.geometry() {
            return Err(crate::Error::InvalidParameter("the classifier has another image geometry than the guard"));
        }
        let arena = &mut *self.scorer.arena;
        if classifier.arena_len() > arena.len() {
            return Err(crate::Error::ArenaTooSmall { needed: classifier.arena_len(), got: arena.len() });
        }
        let c = classifier.classify(arena, image)?;
        Ok(Answer { class: c.class, probability: c.probability, verdict })
    }
}

/// The threshold that rejects a fraction `false_reject` of `scores` (in-distribution
/// calibration scores): the `(1 − false_reject)` empirical quantile. Sorts `scores`.
pub fn calibrate_threshold(scores: &mut [f32], false_reject: f32) -> Option<f32> {
    if scores.is_empty() || !(0.0..1.0).contains(&false_reject) || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    scores.sort_unstable_by(f32::total_cmp);
    let keep = libm::ceilf((1.0 - false_reject) * scores.len() as f32) as usize;
    Some(scores[keep.clamp(1, scores.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guard constants: the given ones, then zeros.
    fn gp(v: &[f32]) -> GuardParams {
        let mut p = [0f32; 16];
        p[..v.len()].copy_from_slice(v);
        p
    }

    struct Fixed(f32);
    impl Scorer for Fixed {
        type Error = ();
        fn score(&mut self, _: &[u8]) -> Result<f32, ()> {
            Ok(self.0)
        }
    }

    /// The line ratio is the worst row or column sum of the per-pixel ratio in nats (a
    /// pixel's channels summed in order), rows first, turned into bits at the end: bit for
    /// bit, gray and colour, narrow and wide.
    #[test]
    fn line_ratio_is_the_worst_line_in_bits() {
        let mut rng = crate::rng::Rng::new(7);
        for g in [
            Geometry { channels: 1, height: 28, width: 28 },
            Geometry { channels: 3, height: 9, width: 31 },
            Geometry { channels: 1, height: 3, width: 300 },
        ] {
            let n = g.values();
            let mut noise = |scale: f32| (0..n).map(|_| -((rng.next_u32() % 1000) as f32) * scale).collect::<Vec<f32>>();
            let (fg, bg) = (noise(0.0137), noise(0.0121));
            let image = vec![0u8; n];
            let got = Statistics::from_pixels(&image, g, &fg, Some(&bg)).line_ratio.unwrap();
            let (h, w, plane) = (g.height as usize, g.width as usize, g.plane());
            let ratio = |p: usize| (0..g.channels as usize).map(|c| bg[c * plane + p] as f64 - fg[c * plane + p] as f64).sum::<f64>();
            let rows = (0..h).map(|r| (0..w).map(|c| ratio(r * w + c)).sum::<f64>());
            let cols = (0..w).map(|c| (0..h).map(|r| ratio(r * w + c)).sum::<f64>());
            let want = rows.chain(cols).fold(f64::NEG_INFINITY, f64::max) / core::f64::consts::LN_2;
            assert_eq!(got.to_bits(), want.to_bits(), "{g:?}");
        }
    }

    #[test]
    fn guard_accepts_at_or_below_threshold() {
        assert!(Guard::new(Fixed(3.0), 3.0).check(&[]).unwrap().accept);
        let v = Guard::new(Fixed(3.5), 3.0).check(&[]).unwrap();
        assert!(!v.accept && v.score == 3.5 && v.threshold == 3.0);
    }

    #[test]
    fn statistics_and_scores() {
        let image = [0u8; 16];
        // Model: −1 nat per pixel, except −9 nats on row 2 (pixels 8..12); background: −2.
        let model: [f32; 16] = core::array::from_fn(|i| if (8..12).contains(&i) { -9.0 } else { -1.0 });
        let bg = [-2.0f32; 16];
        let g = Geometry::new(1, 4, 4).unwrap();
        let s = Statistics::from_pixels(&image, g, &model, Some(&bg));
        let ln2 = core::f64::consts::LN_2;
        assert!((s.bpd - (12.0 + 36.0) / 16.0 / ln2).abs() < 1e-9);
        assert!((s.background_bpd.unwrap() - 2.0 / ln2).abs() < 1e-9);
        // Worst line: row 2, 4 × (9 − 2) nats.
        assert!((s.line_ratio.unwrap() - 28.0 / ln2).abs() < 1e-9);
        let p = gp(&[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(s.score(ScoreKind::BitsPerDim, &p), Some(s.bpd));
        assert_eq!(s.score(ScoreKind::LikelihoodRatio, &p), Some(s.bpd - s.background_bpd.unwrap()));
        let cc = s.bpd - s.coder_bpd;
        assert_eq!(s.score(ScoreKind::Combined, &p), Some(cc.max(s.line_ratio.unwrap())));
        assert_eq!(s.score(ScoreKind::Combined, &gp(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0])), None, "zero spread");
        // The structural score: the combined terms and the latent one, each normalized.
        assert_eq!(s.score(ScoreKind::Structural, &p), None, "no latent spread");
        assert_eq!(s.score(ScoreKind::Structural, &gp(&[0.0, 1.0, 0.0, 1.0, 1.0, 2.0])), None, "no latent score");
        let with_latent = Statistics { latent: Some(1000.0), ..s };
        assert_eq!(with_latent.score(ScoreKind::Structural, &gp(&[0.0, 1.0, 0.0, 1.0, 10.0, 2.0])), Some(495.0));
        assert_eq!(with_latent.score(ScoreKind::Structural, &gp(&[0.0, 1.0, 0.0, 1.0, 1000.0, 2.0])), Some(cc.max(s.line_ratio.unwrap())));
        let alone = Statistics::from_pixels(&image, g, &model, None);
        assert_eq!(alone.score(ScoreKind::LineRatio, &p), None);
        assert_eq!(alone.score(ScoreKind::ComplexityCorrected, &p), Some(cc));
        for k in ScoreKind::ALL {
            assert_eq!(ScoreKind::from_u8(k as u8), Some(k));
        }
        assert_eq!(ScoreKind::from_u8(0), None);
    }

    /// In colour, a pixel's line ratio sums its channels: two planes of 2×2, the excess in
    /// column 1 of plane 0 and row 0 of plane 1.
    #[test]
    fn line_ratio_sums_a_pixels_channels() {
        let g = Geometry::new(2, 2, 2).unwrap();
        let image = [0u8; 8];
        let model = [-1.0f32, -5.0, -1.0, -5.0, -3.0, -3.0, -1.0, -1.0];
        let bg = [-1.0f32; 8];
        let s = Statistics::from_pixels(&image, g, &model, Some(&bg));
        let ln2 = core::f64::consts::LN_2;
        // Column 1: 4 + 4 (plane 0) + 2 (plane 1, row 0) = 10 nats; row 0: 4 + 2 + 2 = 8.
        assert!((s.line_ratio.unwrap() - 10.0 / ln2).abs() < 1e-9, "{:?}", s.line_ratio);
        assert!(Statistics::from_pixels(&image, Geometry::new(1, 2, 2).unwrap(), &model, Some(&bg)).line_ratio.is_none());
    }

    /// The patch ratio is the worst square a quarter of the frame's side (every eighth):
    /// on 8×8, 2×2 squares at every pixel; the peak level is the brightest pixel.
    #[test]
    fn patch_ratio_and_peak_level() {
        let g = Geometry::new(1, 8, 8).unwrap();
        let mut model = [-1.0f32; 64];
        // One hot 2×2 square at (3, 4) and a hotter lone pixel at (0, 0): the square wins.
        for (y, x) in [(3, 4), (3, 5), (4, 4), (4, 5)] {
            model[y * 8 + x] = -4.0;
        }
        model[0] = -6.0;
        let mut image = [0u8; 64];
        image[9] = 200;
        let s = Statistics::from_pixels(&image, g, &model, Some(&[-1.0f32; 64]));
        assert_eq!(s.patch_ratio, None, "only on request");
        let s = s.with_patch_ratio(g, &model, &[-1.0f32; 64]);
        let ln2 = core::f64::consts::LN_2;
        assert!((s.patch_ratio.unwrap() - 12.0 / ln2).abs() < 1e-9, "{:?}", s.patch_ratio);
        assert_eq!(s.peak, 200.0);
        assert_eq!(Statistics::from_pixels(&image, g, &model, None).patch_ratio, None);
        // In colour the peak is the brightest pixel's mean over its channels.
        let c = Statistics::from_pixels(&[10, 250, 30, 90], Geometry::new(2, 1, 2).unwrap(), &[0.0; 4], None);
        assert_eq!(c.peak, 170.0);
    }

    /// The reconstruction's terms: the bound at μ less the coder's bits, and the worst line
    /// and patch of where the PixelCNN explains the frame better than the decoder.
    #[test]
    fn reconstruction_terms() {
        let g = Geometry::new(1, 8, 8).unwrap();
        let model = [-2.0f32; 64];
        let mut rec = [-2.0f32; 64];
        // Row 6 is 1 nat a pixel worse under the reconstruction; one pixel 5 more.
        for x in 0..8 {
            rec[6 * 8 + x] = -3.0;
        }
        rec[6 * 8 + 2] = -8.0;
        let ln2 = core::f64::consts::LN_2;
        let r = Reconstruction::from_pixels(g, &model, &rec, 6.4, 0.5);
        let total = 2.0 * 64.0 + 8.0 + 5.0;
        assert!((r.bound_cc - ((total + 6.4) / (64.0 * ln2) - 0.5)).abs() < 1e-9, "{r:?}");
        assert!((r.ratio_line - 13.0 / ln2).abs() < 1e-9, "{r:?}");
        // The worst 2×2 square holds the 6-nat pixel and one 1-nat neighbour in row 6.
        assert!((r.ratio_patch - 7.0 / ln2).abs() < 1e-9, "{r:?}");
    }

    /// The evidence score: `ln Σ exp(zᵢ)` of the eight normalized terms, the peak level's
    /// two-sided; `None` without a reconstruction or with an unusable constant.
    #[test]
    fn evidence_score_is_a_soft_maximum_of_the_normalized_terms() {
        let g = Geometry::new(1, 4, 4).unwrap();
        let mut s = Statistics::from_pixels(&[255u8; 16], g, &[-1.0f32; 16], Some(&[-1.0f32; 16])).with_patch_ratio(
            g,
            &[-1.0f32; 16],
            &[-1.0f32; 16],
        );
        s.latent = Some(3.0);
        let mut p = gp(&[]);
        for i in 0..EVIDENCE_TERMS.len() {
            p[2 * i + 1] = 1.0;
        }
        assert_eq!(s.score(ScoreKind::Evidence, &p), None, "no reconstruction");
        s.reconstruction = Some(Reconstruction { bound_cc: 2.0, ratio_line: -1.0, ratio_patch: 0.5 });
        let cc = s.bpd - s.coder_bpd;
        let (line, patch) = (s.line_ratio.unwrap(), s.patch_ratio.unwrap());
        // Peak level: median 250, spread 2.5 → |255 − 250| / 2.5 = 2 (and as far below).
        p[14] = 250.0;
        p[15] = 2.5;
        let z = [cc, line, 3.0, patch, 2.0, -1.0, 0.5, 2.0];
        let want = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        let got = s.score(ScoreKind::Evidence, &p).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let dark = Statistics { peak: 245.0, ..s };
        assert!((dark.score(ScoreKind::Evidence, &p).unwrap() - got).abs() < 1e-12, "two-sided");
        p[9] = 0.0;
        assert_eq!(s.score(ScoreKind::Evidence, &p), None, "zero spread");
        assert!(ScoreKind::Evidence.needs_reconstruction() && ScoreKind::Evidence.needs_latent() && ScoreKind::Evidence.needs_background());
        assert!(!ScoreKind::Structural.needs_reconstruction());
    }

    /// A block with the evidence guard's further pairs: read back in order, and into
    /// [`guard_params`]' slots after the latent pair; any other count is refused.
    #[cfg(feature = "std")]
    #[test]
    fn guard_block_holds_the_further_terms() {
        let comp = (0.0f32, vec![0.0f32], vec![1.0f32]);
        let extra: Vec<(f32, f32)> = (0..EXTRA_TERMS).map(|i| (i as f32, 10.0 + i as f32)).collect();
        let bytes = GuardBlock::encode(5, (1.0, 2.0), &[0.0], &[1.0], core::slice::from_ref(&comp), &extra);
        let b = GuardBlock::parse(&bytes).unwrap();
        assert_eq!((b.extra_terms(), b.norm()), (EXTRA_TERMS, (1.0, 2.0)));
        for (i, &e) in extra.iter().enumerate() {
            assert_eq!(b.extra_norm(i), e);
        }
        assert_eq!(
            GuardBlock::parse(&GuardBlock::encode(5, (1.0, 2.0), &[0.0], &[1.0], core::slice::from_ref(&comp), &[])).unwrap().extra_terms(),
            0
        );
        let two = GuardBlock::encode(5, (1.0, 2.0), &[0.0], &[1.0], &[comp], &extra[..2]);
        assert!(GuardBlock::parse(&two).is_err(), "two further pairs is no known guard");
        let mut short = bytes.clone();
        short.pop();
        assert!(GuardBlock::parse(&short).is_err());
    }

    /// A one-component block in two dimensions: the score is the Gaussian's negative log
    /// density after standardization; a malformed block is refused.
    #[cfg(feature = "std")]
    #[test]
    fn guard_block_scores_the_standardized_mixture() {
        // z = (mu − [1, 2]) · [1, 0.5]; one component at 0 with precision diag(1, 4) (L = diag(1, 2)).
        let ln_2pi = (2.0 * core::f64::consts::PI).ln();
        let c = (0.0 + 2f64.ln() - ln_2pi) as f32;
        let bytes = GuardBlock::encode(0xABCD, (3.0, 4.0), &[1.0, 2.0], &[1.0, 0.5], &[(c, vec![0.0, 0.0], vec![1.0, 0.0, 2.0])], &[]);
        assert_eq!(bytes.len(), GuardBlock::len_for(2, 1));
        let b = GuardBlock::parse(&bytes).unwrap();
        assert_eq!((b.latent(), b.components(), b.encoder_crc(), b.norm()), (2, 1, 0xABCD, (3.0, 4.0)));
        let mu = [2.0f32, 4.0];
        // z = (1, 1): quadratic form 1 + 4 = 5.
        let want = -(c as f64 - 2.5);
        assert!((b.score(&mu).unwrap() - want).abs() < 1e-6, "{:?} vs {want}", b.score(&mu));
        assert_eq!(b.score(&[1.0]), None);
        // Two identical components of half weight give the same density.
        let half = c - 2f32.ln();
        let two = GuardBlock::encode(0, (0.0, 1.0), &[1.0, 2.0], &[1.0, 0.5], &vec![(half, vec![0.0, 0.0], vec![1.0, 0.0, 2.0]); 2], &[]);
        assert!((GuardBlock::parse(&two).unwrap().score(&mu).unwrap() - want).abs() < 1e-5);
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(GuardBlock::parse(&bad).is_err());
        assert!(GuardBlock::parse(&bytes[..bytes.len() - 4]).is_err());
        let mut nan = bytes.clone();
        nan[24..28].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(GuardBlock::parse(&nan).is_err());
    }

    #[test]
    fn calibration_hits_the_false_reject_rate() {
        let mut s: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let t = calibrate_threshold(&mut s, 0.01).unwrap();
        let rejected = s.iter().filter(|&&v| v > t).count();
        assert_eq!(rejected, 10);
        assert!(calibrate_threshold(&mut [], 0.01).is_none());
        assert!(calibrate_threshold(&mut [1.0, f32::NAN], 0.01).is_none());
        assert!(calibrate_threshold(&mut [1.0], 1.5).is_none());
    }
}
