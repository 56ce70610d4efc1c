//! The one definition of log p(x) in edgegen.
//!
//! Every model family ends in the same pixel distribution: a mixture of `K` discretized
//! logistics per pixel (PixelCNN++, Salimans et al. 2017) over the 256 values of an 8-bit
//! pixel, on the scale of [`crate::image::scale_pixel`]. A network head emits `3K` planes per
//! image channel: for a `C × H × W` image (planar, `P = H·W` values per channel), parameter
//! `j` of sub-pixel `p` of channel `c` is `params[3K·P·c + j·P + p]` ([`head_index`]):
//!
//! | channels | meaning |
//! |---|---|
//! | `0..K` | mixture logits |
//! | `K..2K` | component means (pixel scale, -1..1) |
//! | `2K..3K` | component log-scales (clamped below at [`LOG_SCALE_MIN`]) |
//!
//! Value 0 owns the whole left tail and 255 the right tail, so the 256 probabilities sum to
//! one and log p(x) of an 8-bit image is an honest (negative) code length. The bin
//! probability uses the cancellation-free identity
//! `σ(a) − σ(b) = σ(a) · σ(−b) · (1 − e^{b−a})`.
//!
//! On top of that: the Gaussian pieces of a VAE (KL, log densities), the ELBO, the
//! importance-weighted bound, and bits per dimension. The trainer's evaluation calls these
//! functions on its forward-pass outputs, the host engines call them on tract's outputs, and
//! the firmware calls them on the int8 interpreter's outputs.
//!
//! All arithmetic uses `f32` per pixel with `libm` (pure Rust, identical on every target) and
//! `f64` sums, so results are bit-identical between a workstation and a Cortex-M.

use crate::{image::scale_pixel, Error};
use core::f64::consts::LN_2;

/// Lower clamp of every log-scale, as in PixelCNN++ (scale ≥ e^-7 ≈ 0.0009, a ninth of a
/// pixel bin), which keeps densities bounded.
pub const LOG_SCALE_MIN: f32 = -7.0;

/// Half the width of one pixel bin on the network scale (1/255).
const HALF_BIN: f32 = 1.0 / 255.0;

/// ln(2π), for Gaussian log densities.
const LN_2PI: f32 = 1.837_877_1;

/// `f32::max` (IEEE maxNum: a NaN operand gives the other) as `libm::fmaxf` computes it,
/// inline: on the Cortex-M4, whose FPU has no `VMAXNM`, `f32::max` is a call to `fmaxf`
/// (about 30 instructions; 23,520 calls a guard frame).
#[inline(always)]
pub fn fmax(x: f32, y: f32) -> f32 {
    if x.is_nan() || x < y {
        y
    } else {
        x
    }
}

/// Numerically stable `ln σ(t) = −softplus(−t)`.
#[inline]
pub fn log_sigmoid(t: f32) -> f32 {
    if t >= 0.0 {
        -libm::log1pf(libm::expf(-t))
    } else {
        t - libm::log1pf(libm::expf(t))
    }
}

/// log-probability (nats) that one discretized logistic with `mean` and `log_scale` assigns
/// to 8-bit value `x`.
#[inline]
pub fn discretized_logistic_log_prob(x: u8, mean: f32, log_scale: f32) -> f32 {
    let log_scale = fmax(log_scale, LOG_SCALE_MIN);
    let inv_s = libm::expf(-log_scale);
    let centered = scale_pixel(x) - mean;
    let plus_in = inv_s * (centered + HALF_BIN);
    let min_in = inv_s * (centered - HALF_BIN);
    match x {
        0 => log_sigmoid(plus_in),
        255 => log_sigmoid(-min_in),
        _ => {
            let width = plus_in - min_in;
            log_sigmoid(plus_in) + log_sigmoid(-min_in) + libm::logf(-libm::expm1f(-width))
        }
    }
}

/// `ln Σ exp(v)` of a non-empty slice, stable for large magnitudes. Returns −∞ for an empty
/// slice.
pub fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, fmax);
    if !max.is_finite() {
        return max;
    }
    let sum: f32 = values.iter().map(|&v| libm::expf(v - max)).sum();
    max + libm::logf(sum)
}

/// `ln Σ exp(v)` over `f64` values (used for importance weights).
pub fn log_sum_exp_f64(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = values.iter().map(|&v| libm::exp(v - max)).sum();
    max + libm::log(sum)
}

/// Largest mixture the per-pixel routines accept (stack buffers are sized by it).
pub const MAX_COMPONENTS: usize = 16;

/// Where mixture parameters are read from: a float slice on the host, or the little-endian
/// f32 bytes of an interpreter's output tensor in the arena on the device (no copy).
pub trait Params {
    /// Parameter `i`.
    fn at(&self, i: usize) -> f32;
    /// Number of parameters.
    fn count(&self) -> usize;
}

impl Params for [f32] {
    #[inline]
    fn at(&self, i: usize) -> f32 {
        self[i]
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// f32 values stored as little-endian bytes (an arena tensor).
#[derive(Debug, Clone, Copy)]
pub struct LeF32<'a>(pub &'a [u8]);

impl Params for LeF32<'_> {
    #[inline]
    fn at(&self, i: usize) -> f32 {
        let b = &self.0[4 * i..4 * i + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn count(&self) -> usize {
        self.0.len() / 4
    }
}

/// log-probability (nats) of 8-bit value `x` under a `K`-component mixture whose parameters
/// for this pixel are read as `params.at(at + c * stride)` for channel `c` in `0..3K`.
pub fn mixture_log_prob_at<P: Params + ?Sized>(x: u8, params: &P, at: usize, k: usize, stride: usize) -> f32 {
    debug_assert!((1..=MAX_COMPONENTS).contains(&k));
    let mut logits = [0f32; MAX_COMPONENTS];
    for (j, l) in logits.iter_mut().enumerate().take(k) {
        *l = params.at(at + j * stride);
    }
    let log_norm = log_sum_exp(&logits[..k]);
    let mut terms = [0f32; MAX_COMPONENTS];
    for j in 0..k {
        let mean = params.at(at + (k + j) * stride);
        let log_scale = params.at(at + (2 * k + j) * stride);
        terms[j] = logits[j] - log_norm + discretized_logistic_log_prob(x, mean, log_scale);
    }
    log_sum_exp(&terms[..k])
}

/// Where sub-pixel `i` (planar: `i = c · plane + p`) finds its first mixture parameter in a
/// head of `3K` planes per channel: `3K · plane · c + p`; its `j`-th is `plane · j` further.
#[inline]
pub fn head_index(i: usize, k: usize, plane: usize) -> usize {
    (i / plane) * 3 * k * plane + i % plane
}

/// Checks that `params` holds `3K` planes of `plane` values per channel of `image` and that
/// `K` is supported.
fn check_mixture_shape<P: Params + ?Sized>(image: &[u8], params: &P, k: usize, plane: usize) -> Result<(), Error> {
    if k == 0 || k > MAX_COMPONENTS {
        return Err(Error::InvalidParameter("mixture components must be in 1..=16"));
    }
    if plane == 0 || !image.len().is_multiple_of(plane) {
        return Err(Error::InvalidParameter("an image must be whole planes of the geometry"));
    }
    let expected = 3 * k * image.len();
    if params.count() != expected {
        return Err(Error::LengthMismatch { expected, got: params.count() });
    }
    Ok(())
}

/// log p(image) in nats under a planar mixture head (`3K` planes of `plane` values per
/// channel of the image; layout in the module docs). Equal bit for bit to summing
/// [`mixture_log_prob_at`] over the sub-pixels (in f64, in order); computed [`BATCH`] values
/// at a time so the transcendental functions run through [`crate::vmath`].
pub fn mixture_image_log_prob<P: Params + ?Sized>(image: &[u8], params: &P, k: usize, plane: usize) -> Result<f64, Error> {
    mixture_image_total(image, params, k, plane, None)
}

/// [`mixture_image_log_prob`], also writing each sub-pixel's log probability (nats) into
/// `out` (same length as `image`). The total is summed in the same order, so it is identical.
pub fn mixture_image_log_prob_pixels<P: Params + ?Sized>(
    image: &[u8],
    params: &P,
    k: usize,
    plane: usize,
    out: &mut [f32],
) -> Result<f64, Error> {
    if out.len() != image.len() {
        return Err(Error::LengthMismatch { expected: image.len(), got: out.len() });
    }
    mixture_image_total(image, params, k, plane, Some(out))
}

/// The body of both: one copy (out of line) whether or not the values are kept.
#[inline(never)]
fn mixture_image_total<P: Params + ?Sized>(
    image: &[u8],
    params: &P,
    k: usize,
    plane: usize,
    mut out: Option<&mut [f32]>,
) -> Result<f64, Error> {
    check_mixture_shape(image, params, k, plane)?;
    let mut total = -0.0f64; // as `Sum for f64` starts
    let mut lp = [0f32; BATCH];
    for (c, channel) in image.chunks(plane).enumerate() {
        for (b, xs) in channel.chunks(BATCH).enumerate() {
            mixture_log_prob_batch(xs, params, 3 * k * plane * c + b * BATCH, k, plane, &mut lp);
            for &v in &lp[..xs.len()] {
                total += v as f64;
            }
            if let Some(o) = out.as_deref_mut() {
                o[c * plane + b * BATCH..][..xs.len()].copy_from_slice(&lp[..xs.len()]);
            }
        }
    }
    Ok(total)
}

/// Pixels per batch of the likelihood's transcendental functions.
pub const BATCH: usize = 16;

/// [`log_sum_exp`] of `values[j][l]` over `j`, for each lane `l < n`, bit for bit.
fn log_sum_exp_batch(values: &[[f32; BATCH]], n: usize) -> [f32; BATCH] {
    let mut max = [f32::NEG_INFINITY; BATCH];
    for (l, m) in max.iter_mut().enumerate().take(n) {
        *m = values.iter().map(|v| v[l]).fold(f32::NEG_INFINITY, fmax);
    }
    let mut e = [[0f32; BATCH]; MAX_COMPONENTS];
    for (e, v) in e.iter_mut().zip(values) {
        for l in 0..n {
            e[l] = v[l] - max[l];
        }
        crate::vmath::expf(&mut e[..n]);
    }
    let mut log_sum = [0f32; BATCH];
    for (l, s) in log_sum.iter_mut().enumerate().take(n) {
        *s = e[..values.len()].iter().map(|e| e[l]).sum();
    }
    crate::vmath::logf(&mut log_sum[..n]);
    let mut out = [0f32; BATCH];
    for l in 0..n {
        out[l] = if !max[l].is_finite() { max[l] } else { max[l] + log_sum[l] };
    }
    out
}

/// [`log_sigmoid`] of each of the first `n` lanes, bit for bit.
fn log_sigmoid_batch(t: &[f32; BATCH], n: usize) -> [f32; BATCH] {
    let mut v = [0f32; BATCH];
    for l in 0..n {
        v[l] = if t[l] >= 0.0 { -t[l] } else { t[l] };
    }
    crate::vmath::expf(&mut v[..n]);
    crate::vmath::log1pf(&mut v[..n]);
    for l in 0..n {
        v[l] = if t[l] >= 0.0 { -v[l] } else { t[l] - v[l] };
    }
    v
}

/// [`mixture_log_prob_at`] for pixels `first..first + xs.len()` (at most [`BATCH`]) into
/// `out`, bit for bit, with the exponentials and `log1p`s of all lanes batched.
fn mixture_log_prob_batch<P: Params + ?Sized>(xs: &[u8], params: &P, first: usize, k: usize, stride: usize, out: &mut [f32]) {
    let n = xs.len().min(BATCH).min(out.len());
    let mut logits = [[0f32; BATCH]; MAX_COMPONENTS];
    for (j, row) in logits.iter_mut().enumerate().take(k) {
        for (l, v) in row[..n].iter_mut().enumerate() {
            *v = params.at(first + l + j * stride);
        }
    }
    let log_norm = log_sum_exp_batch(&logits[..k], n);
    let mut terms = [[0f32; BATCH]; MAX_COMPONENTS];
    for j in 0..k {
        // discretized_logistic_log_prob, lane by lane.
        let mut inv_s = [0f32; BATCH];
        let mut centered = [0f32; BATCH];
        for l in 0..n {
            let mean = params.at(first + l + (k + j) * stride);
            let log_scale = fmax(params.at(first + l + (2 * k + j) * stride), LOG_SCALE_MIN);
            inv_s[l] = -log_scale;
            centered[l] = scale_pixel(xs[l]) - mean;
        }
        crate::vmath::expf(&mut inv_s[..n]);
        let (mut plus_in, mut neg_min_in, mut min_in) = ([0f32; BATCH], [0f32; BATCH], [0f32; BATCH]);
        for l in 0..n {
            plus_in[l] = inv_s[l] * (centered[l] + HALF_BIN);
            min_in[l] = inv_s[l] * (centered[l] - HALF_BIN);
            neg_min_in[l] = -min_in[l];
        }
        let (lp, lm) = (log_sigmoid_batch(&plus_in, n), log_sigmoid_batch(&neg_min_in, n));
        // ln(1 − e^−width) of the interior values (computed for every lane, used for those).
        let mut bin = [0f32; BATCH];
        for l in 0..n {
            if !matches!(xs[l], 0 | 255) {
                bin[l] = -libm::expm1f(-(plus_in[l] - min_in[l]));
            }
        }
        crate::vmath::logf(&mut bin[..n]);
        for l in 0..n {
            let dlp = match xs[l] {
                0 => lp[l],
                255 => lm[l],
                _ => lp[l] + lm[l] + bin[l],
            };
            terms[j][l] = logits[j][l] - log_norm[l] + dlp;
        }
    }
    let r = log_sum_exp_batch(&terms[..k], n);
    out[..n].copy_from_slice(&r[..n]);
}

/// Draws one 8-bit value from the mixture at one pixel (parameters read as in
/// [`mixture_log_prob_at`]): a component by its softmax weight, then a logistic deviate from
/// it, rounded to the nearest bin and clamped to 0..=255.
pub fn mixture_sample_at<P: Params + ?Sized>(params: &P, at: usize, k: usize, stride: usize, rng: &mut crate::rng::Rng) -> u8 {
    debug_assert!((1..=MAX_COMPONENTS).contains(&k));
    let mut logits = [0f32; MAX_COMPONENTS];
    for (j, l) in logits.iter_mut().enumerate().take(k) {
        *l = params.at(at + j * stride);
    }
    let log_norm = log_sum_exp(&logits[..k]);
    let u = rng.uniform();
    let mut acc = 0f32;
    let mut chosen = k - 1;
    for (j, &l) in logits[..k].iter().enumerate() {
        acc += libm::expf(l - log_norm);
        if u < acc {
            chosen = j;
            break;
        }
    }
    let mean = params.at(at + (k + chosen) * stride);
    let log_scale = fmax(params.at(at + (2 * k + chosen) * stride), LOG_SCALE_MIN);
    let v = rng.uniform();
    let deviate = mean + libm::expf(log_scale) * (libm::logf(v) - libm::log1pf(-v));
    crate::image::unscale_pixel(deviate)
}

/// Samples a whole image from a planar mixture head (every sub-pixel independently, as a
/// VAE decoder's output distribution is; `plane` values per channel).
pub fn mixture_sample_image<P: Params + ?Sized>(
    params: &P,
    k: usize,
    plane: usize,
    rng: &mut crate::rng::Rng,
    out: &mut [u8],
) -> Result<(), Error> {
    check_mixture_shape(out, params, k, plane)?;
    for (i, o) in out.iter_mut().enumerate() {
        *o = mixture_sample_at(params, head_index(i, k, plane), k, plane, rng);
    }
    Ok(())
}

/// The mean image of a planar mixture head: per sub-pixel, the softmax-weighted mean, mapped
/// to 0..=255. A deterministic picture of what the model expects (used for reconstructions).
pub fn mixture_mean_image<P: Params + ?Sized>(params: &P, k: usize, plane: usize, out: &mut [u8]) -> Result<(), Error> {
    check_mixture_shape(out, params, k, plane)?;
    for (i, o) in out.iter_mut().enumerate() {
        let at = head_index(i, k, plane);
        let mut logits = [0f32; MAX_COMPONENTS];
        for (j, l) in logits.iter_mut().enumerate().take(k) {
            *l = params.at(at + j * plane);
        }
        let log_norm = log_sum_exp(&logits[..k]);
        let mean: f32 = (0..k).map(|j| libm::expf(logits[j] - log_norm) * params.at(at + (k + j) * plane)).sum();
        *o = crate::image::unscale_pixel(mean);
    }
    Ok(())
}

/// KL(q ‖ N(0, I)) in nats for a diagonal Gaussian q with means `mu` and log-variances `logvar`.
pub fn kl_to_standard_normal(mu: &[f32], logvar: &[f32]) -> Result<f64, Error> {
    if mu.len() != logvar.len() {
        return Err(Error::LengthMismatch { expected: mu.len(), got: logvar.len() });
    }
    Ok(mu.iter().zip(logvar).map(|(&m, &lv)| 0.5 * (m * m + libm::expf(lv) - 1.0 - lv) as f64).sum())
}

/// ln N(z; 0, I) in nats.
pub fn standard_normal_log_pdf(z: &[f32]) -> f64 {
    z.iter().map(|&v| (-0.5 * (v * v + LN_2PI)) as f64).sum()
}

/// ln N(z; mu, diag(exp(logvar))) in nats.
pub fn diag_gaussian_log_pdf(z: &[f32], mu: &[f32], logvar: &[f32]) -> Result<f64, Error> {
    if z.len() != mu.len() || z.len() != logvar.len() {
        return Err(Error::LengthMismatch { expected: z.len(), got: mu.len().min(logvar.len()) });
    }
    Ok(z.iter()
        .zip(mu)
        .zip(logvar)
        .map(|((&z, &m), &lv)| {
            let d = z - m;
            (-0.5 * (d * d * libm::expf(-lv) + lv + LN_2PI)) as f64
        })
        .sum())
}

/// Draws z = mu + exp(logvar / 2) · ε with ε ~ N(0, I) from `rng` into `z`.
pub fn reparameterize(mu: &[f32], logvar: &[f32], rng: &mut crate::rng::Rng, z: &mut [f32]) -> Result<(), Error> {
    if mu.len() != logvar.len() || mu.len() != z.len() {
        return Err(Error::LengthMismatch { expected: mu.len(), got: z.len().min(logvar.len()) });
    }
    for ((z, &m), &lv) in z.iter_mut().zip(mu).zip(logvar) {
        *z = m + libm::expf(0.5 * lv) * rng.normal();
    }
    Ok(())
}

/// Log importance weight of one latent sample for a VAE:
/// ln p(x|z) + ln p(z) − ln q(z|x), in nats.
pub fn importance_log_weight(log_px_given_z: f64, z: &[f32], mu: &[f32], logvar: &[f32]) -> Result<f64, Error> {
    Ok(log_px_given_z + standard_normal_log_pdf(z) - diag_gaussian_log_pdf(z, mu, logvar)?)
}

/// The importance-weighted bound (Burda et al. 2016) from `k` log weights:
/// ln (1/k Σ w_i) ≤ ln p(x), in nats. It tightens towards ln p(x) as k grows; k = 1 is an
/// unbiased estimate of the ELBO.
pub fn iwae_bound(log_weights: &[f64]) -> Result<f64, Error> {
    if log_weights.is_empty() {
        return Err(Error::InvalidParameter("the importance-weighted bound needs k >= 1 samples"));
    }
    Ok(log_sum_exp_f64(log_weights) - libm::log(log_weights.len() as f64))
}

/// Spherical interpolation between latents `a` and `b` at `t` ∈ [0, 1] into `out` (White
/// 2016, "Sampling Generative Networks"): for Gaussian latents it keeps the interpolants at
/// the norms the prior puts its mass on, where a straight line passes near the origin. Falls
/// back to the straight line when `a` and `b` are (anti)parallel or one is zero. `t = 0` gives
/// `a` and `t = 1` gives `b` exactly.
pub fn slerp(a: &[f32], b: &[f32], t: f32, out: &mut [f32]) -> Result<(), Error> {
    if a.len() != b.len() || out.len() != a.len() {
        return Err(Error::LengthMismatch { expected: a.len(), got: b.len().min(out.len()) });
    }
    if t == 0.0 || t == 1.0 {
        out.copy_from_slice(if t == 0.0 { a } else { b });
        return Ok(());
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    let cos = if na > 0.0 && nb > 0.0 { (dot / libm::sqrt(na * nb)).clamp(-1.0, 1.0) } else { 1.0 };
    let omega = libm::acos(cos);
    let sin = libm::sin(omega);
    let t = t as f64;
    let (wa, wb) = if sin.abs() < 1e-6 { (1.0 - t, t) } else { (libm::sin((1.0 - t) * omega) / sin, libm::sin(t * omega) / sin) };
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (wa * x as f64 + wb * y as f64) as f32;
    }
    Ok(())
}

/// Bits per dimension of a log-likelihood: −ln p / (dims · ln 2). Lower is better.
pub fn bits_per_dim(log_p_nats: f64, dims: usize) -> f64 {
    -log_p_nats / (dims as f64 * LN_2)
}

#[cfg(test)]
mod tests {
    /// Spherical interpolation: the ends exactly, unit vectors stay on the unit sphere in
    /// between (a straight line would dip to 0.71 at the middle), parallel ones fall back to
    /// the line, bad lengths are refused.
    #[test]
    fn slerp_walks_the_sphere() {
        let (a, b) = ([1.0f32, 0.0, 0.0], [0.0f32, 1.0, 0.0]);
        let mut z = [0f32; 3];
        super::slerp(&a, &b, 0.0, &mut z).unwrap();
        assert_eq!(z, a);
        super::slerp(&a, &b, 1.0, &mut z).unwrap();
        assert_eq!(z, b);
        for t in [0.25f32, 0.5, 0.9] {
            super::slerp(&a, &b, t, &mut z).unwrap();
            let norm = z.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "t {t}: norm {norm}");
        }
        super::slerp(&a, &b, 0.5, &mut z).unwrap();
        assert!((z[0] - z[1]).abs() < 1e-7 && (z[0] - 0.5f32.sqrt()).abs() < 1e-6);
        super::slerp(&a, &[2.0, 0.0, 0.0], 0.5, &mut z).unwrap();
        assert_eq!(z, [1.5, 0.0, 0.0]);
        assert!(super::slerp(&a, &b[..2], 0.5, &mut z).is_err());
    }

    /// The batched image functions equal the per-pixel definition bit for bit, on random
    /// parameters from tame to extreme (±∞, NaN, huge), all pixel values and odd lengths.
    #[test]
    fn batched_image_log_prob_equals_per_pixel_definition() {
        let mut rng = crate::rng::Rng::new(5);
        for case in 0..300 {
            let k = 1 + rng.below(16) as usize;
            // `plane` values per channel, 1 to 3 channels.
            let plane = 1 + rng.below(100) as usize;
            let n = plane * (1 + rng.below(3) as usize);
            let image: Vec<u8> = (0..n)
                .map(|_| match rng.below(4) {
                    0 => 0,
                    1 => 255,
                    _ => rng.below(256) as u8,
                })
                .collect();
            let params: Vec<f32> = (0..3 * k * n)
                .map(|_| match rng.below(40) {
                    0 => f32::INFINITY,
                    1 => f32::NEG_INFINITY,
                    2 => f32::NAN,
                    3 => (rng.uniform() - 0.5) * 400.0,
                    4 => f32::from_bits(rng.next_u32()),
                    _ => (rng.uniform() - 0.5) * 6.0,
                })
                .collect();
            let want: Vec<f32> = (0..n).map(|i| mixture_log_prob_at(image[i], &params[..], head_index(i, k, plane), k, plane)).collect();
            let want_total: f64 = want.iter().map(|&v| v as f64).sum();
            let mut got = vec![0f32; n];
            let total = mixture_image_log_prob_pixels(&image, &params[..], k, plane, &mut got).unwrap();
            let total2 = mixture_image_log_prob(&image, &params[..], k, plane).unwrap();
            // Bit for bit, except that a NaN's sign bit is not compared: IEEE arithmetic does
            // not define it, and it depends on whether the CPU or the compiler produced it.
            for p in 0..n {
                assert!(
                    got[p].to_bits() == want[p].to_bits() || (got[p].is_nan() && want[p].is_nan()),
                    "case {case} pixel {p}: {} vs {}",
                    got[p],
                    want[p]
                );
            }
            let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(same(total, want_total), "case {case}: {total} vs {want_total}");
            assert!(same(total2, want_total), "case {case}: {total2} vs {want_total}");
        }
    }

    use super::*;
    use crate::rng::Rng;

    fn probs_sum(mean: f32, log_scale: f32) -> f64 {
        (0..=255u8).map(|x| libm::exp(discretized_logistic_log_prob(x, mean, log_scale) as f64)).sum()
    }

    #[test]
    fn discretized_logistic_is_a_distribution() {
        for &(m, s) in &[(0.0, 0.0), (-0.9, -3.0), (0.95, -6.9), (0.3, 2.0), (-2.0, -1.0), (0.0, -9.0)] {
            let total = probs_sum(m, s);
            assert!((total - 1.0).abs() < 2e-4, "mean {m} log_scale {s}: sum {total}");
        }
    }

    #[test]
    fn discretized_logistic_matches_cdf_difference() {
        let sigmoid = |t: f64| 1.0 / (1.0 + (-t).exp());
        for x in [1u8, 17, 128, 200, 254] {
            for &(m, s) in &[(0.1f32, -2.0f32), (-0.5, -4.0), (0.7, 0.5)] {
                let inv_s = (-(s as f64)).exp();
                let c = scale_pixel(x) as f64 - m as f64;
                // Difference taken on the side of the mean where it does not cancel.
                let p = if c > 0.0 {
                    sigmoid(-inv_s * (c - 1.0 / 255.0)) - sigmoid(-inv_s * (c + 1.0 / 255.0))
                } else {
                    sigmoid(inv_s * (c + 1.0 / 255.0)) - sigmoid(inv_s * (c - 1.0 / 255.0))
                };
                let got = discretized_logistic_log_prob(x, m, s) as f64;
                assert!((got - p.ln()).abs() < 1e-3, "x {x}: {got} vs {}", p.ln());
            }
        }
    }

    #[test]
    fn mixture_reduces_to_single_component_and_sums_to_one() {
        // Two identical components equal one component.
        let x = 77u8;
        let single = discretized_logistic_log_prob(x, 0.2, -2.5);
        let params = [0.3f32, 0.3, 0.2, 0.2, -2.5, -2.5];
        let mixed = mixture_log_prob_at(x, &params[..], 0, 2, 1);
        assert!((single - mixed).abs() < 1e-5);
        let params = [1.0f32, -1.0, 0.5, -0.5, -3.0, -1.0];
        let total: f64 = (0..=255u8).map(|x| libm::exp(mixture_log_prob_at(x, &params[..], 0, 2, 1) as f64)).sum();
        assert!((total - 1.0).abs() < 2e-4, "{total}");
    }

    #[test]
    fn image_log_prob_checks_shapes() {
        let image = [0u8; 4];
        assert_eq!(mixture_image_log_prob(&image, &[0.0f32; 11][..], 1, 4), Err(Error::LengthMismatch { expected: 12, got: 11 }));
        assert!(mixture_image_log_prob(&image, &[0.0f32; 12][..], 0, 4).is_err());
        assert!(mixture_image_log_prob(&image, &[0.0f32; 12][..], 1, 4).is_ok());
        assert!(mixture_image_log_prob(&image, &[0.0f32; 12][..], 1, 2).is_ok(), "two channels of 2");
        assert!(mixture_image_log_prob(&image, &[0.0f32; 12][..], 1, 3).is_err(), "not whole planes");
        assert!(mixture_image_log_prob(&image, &[0.0f32; 12][..], 1, 0).is_err());
        assert_eq!((head_index(5, 2, 4), head_index(1, 2, 4)), (3 * 2 * 4 + 1, 1));
    }

    #[test]
    fn samples_follow_the_mixture() {
        // A sharp component at pixel value 200 with weight ~0.88 and one at 20.
        let params = [2.0f32, 0.0, scale_pixel(200), scale_pixel(20), -7.0, -7.0];
        let mut rng = Rng::new(3);
        let n = 20_000;
        let mut near_200 = 0;
        for _ in 0..n {
            let v = mixture_sample_at(&params[..], 0, 2, 1, &mut rng);
            assert!((v as i32 - 200).abs() <= 3 || (v as i32 - 20).abs() <= 3, "{v}");
            near_200 += ((v as i32 - 200).abs() <= 3) as usize;
        }
        let frac = near_200 as f64 / n as f64;
        let expected = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((frac - expected).abs() < 0.01, "{frac} vs {expected}");
    }

    #[test]
    fn gaussian_pieces_agree() {
        let mu = [0.5f32, -1.0, 0.0];
        let logvar = [0.0f32, -1.0, 1.0];
        // KL(q||p) = E_q[ln q - ln p]: Monte Carlo check.
        let mut rng = Rng::new(11);
        let mut z = [0f32; 3];
        let n = 100_000;
        let mut acc = 0f64;
        for _ in 0..n {
            reparameterize(&mu, &logvar, &mut rng, &mut z).unwrap();
            acc += diag_gaussian_log_pdf(&z, &mu, &logvar).unwrap() - standard_normal_log_pdf(&z);
        }
        let kl = kl_to_standard_normal(&mu, &logvar).unwrap();
        assert!((acc / n as f64 - kl).abs() < 0.02, "{} vs {kl}", acc / n as f64);
        assert!((standard_normal_log_pdf(&[0.0]) - (-0.918_938_5)).abs() < 1e-6);
    }

    #[test]
    fn iwae_and_bits_per_dim() {
        let w = [-10.0f64, -10.0, -10.0, -10.0];
        assert!((iwae_bound(&w).unwrap() + 10.0).abs() < 1e-12);
        let w = [-1.0f64, -3.0];
        let exact = ((-1.0f64).exp() + (-3.0f64).exp()).ln() - 2f64.ln();
        assert!((iwae_bound(&w).unwrap() - exact).abs() < 1e-12);
        assert!(iwae_bound(&[]).is_err());
        assert!((bits_per_dim(-(784.0 * LN_2), 784) - 1.0).abs() < 1e-12);
    }
}
