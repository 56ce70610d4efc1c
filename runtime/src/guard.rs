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
}

impl ScoreKind {
    /// Every kind, in order.
    pub const ALL: [ScoreKind; 5] =
        [ScoreKind::BitsPerDim, ScoreKind::ComplexityCorrected, ScoreKind::LikelihoodRatio, ScoreKind::LineRatio, ScoreKind::Combined];

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
        }
    }

    /// Whether the score needs the background model's per-pixel likelihoods.
    pub fn needs_background(self) -> bool {
        matches!(self, ScoreKind::LikelihoodRatio | ScoreKind::LineRatio | ScoreKind::Combined)
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
        let (background_bpd, line_ratio) = match background {
            Some(bg) if bg.len() == n && n == g.values() && model.len() == n => {
                let bg_total: f64 = bg.iter().map(|&v| v as f64).sum();
                // A pixel's ratio: summed over its channels, in channel order.
                let ratio = |p: usize| {
                    (0..g.channels as usize)
                        .map(|c| (bg[c * plane + p] as f64 - model[c * plane + p] as f64) / core::f64::consts::LN_2)
                        .sum::<f64>()
                };
                let rows = (0..height).map(|r| (0..width).map(|c| ratio(r * width + c)).sum::<f64>());
                let cols = (0..width).map(|c| (0..height).map(|r| ratio(r * width + c)).sum::<f64>());
                let worst = rows.chain(cols).fold(f64::NEG_INFINITY, f64::max);
                (Some(crate::likelihood::bits_per_dim(bg_total, n)), Some(worst))
            }
            _ => (None, None),
        };
        Statistics { bpd, coder_bpd, background_bpd, line_ratio }
    }

    /// The score of `kind` (`params`: the metadata's `guard_params`), or `None` when it
    /// needs a background model this image was not scored with, or `params` are unusable.
    pub fn score(&self, kind: ScoreKind, params: &[f32; 4]) -> Option<f64> {
        let cc = self.bpd - self.coder_bpd;
        Some(match kind {
            ScoreKind::BitsPerDim => self.bpd,
            ScoreKind::ComplexityCorrected => cc,
            ScoreKind::LikelihoodRatio => self.bpd - self.background_bpd?,
            ScoreKind::LineRatio => self.line_ratio?,
            ScoreKind::Combined => {
                let [c0, s0, c1, s1] = params.map(|v| v as f64);
                if !(s0 > 0.0 && s1 > 0.0 && c0.is_finite() && c1.is_finite() && s0.is_finite() && s1.is_finite()) {
                    return None;
                }
                ((cc - c0) / s0).max((self.line_ratio? - c1) / s1)
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

/// The int8 PixelCNN guard's scorer: the model, optionally the background model (for the
/// likelihood-ratio scores), one arena both run in turn, and the score kind and constants.
/// The per-value likelihoods of both models (two f32 buffers of `C·H·W` values) live at the
/// end of the arena, after the networks' part ([`PixelCnnScorer::arena_len`] counts them).
#[derive(Debug)]
pub struct PixelCnnScorer<'m, 'a> {
    model: crate::engine::PixelCnn<'m>,
    background: Option<crate::engine::PixelCnn<'m>>,
    arena: &'a mut [u8],
    pixels: &'a mut [f32],
    background_pixels: &'a mut [f32],
    kind: ScoreKind,
    params: [f32; 4],
    last: Option<Statistics>,
}

impl<'m, 'a> PixelCnnScorer<'m, 'a> {
    /// A scorer of `kind` over `model` (and `background` when `kind` needs it) using
    /// `arena` (at least [`PixelCnnScorer::arena_len`] bytes).
    pub fn new(
        model: crate::engine::PixelCnn<'m>,
        background: Option<crate::engine::PixelCnn<'m>>,
        arena: &'a mut [u8],
        kind: ScoreKind,
        params: [f32; 4],
    ) -> Result<Self, crate::Error> {
        if kind.needs_background() && background.is_none() {
            return Err(crate::Error::InvalidParameter("this guard score needs the background model"));
        }
        if background.as_ref().is_some_and(|b| b.geometry() != model.geometry()) {
            return Err(crate::Error::InvalidParameter("the background model has another image geometry"));
        }
        let need = Self::arena_len(&model, background.as_ref());
        if arena.len() < need {
            return Err(crate::Error::ArenaTooSmall { needed: need, got: arena.len() });
        }
        let net = Self::networks_len(&model, background.as_ref());
        let (arena, scratch) = arena.split_at_mut(net);
        let pad = scratch.as_ptr().align_offset(4).min(3);
        let values = model.geometry().values();
        let floats: &mut [f32] = bytemuck::try_cast_slice_mut(&mut scratch[pad..pad + 8 * values])
            .map_err(|_| crate::Error::InvalidParameter("arena alignment"))?;
        let (pixels, background_pixels) = floats.split_at_mut(values);
        Ok(PixelCnnScorer { model, background, arena, pixels, background_pixels, kind, params, last: None })
    }

    fn networks_len(model: &crate::engine::PixelCnn<'_>, background: Option<&crate::engine::PixelCnn<'_>>) -> usize {
        model.arena_len().max(background.map_or(0, |b| b.arena_len()))
    }

    /// Arena bytes the scorer needs: the larger of the two models' arenas, then two f32
    /// buffers of per-value likelihoods (and up to 3 bytes to align them).
    pub fn arena_len(model: &crate::engine::PixelCnn<'_>, background: Option<&crate::engine::PixelCnn<'_>>) -> usize {
        Self::networks_len(model, background) + 3 + 8 * model.geometry().values()
    }

    /// A guard with the score kind, constants and threshold calibrated into the model
    /// file's metadata (`None` when the file holds no calibrated guard, or it needs the
    /// background model and none is given).
    pub fn guard(
        model: crate::engine::PixelCnn<'m>,
        background: Option<crate::engine::PixelCnn<'m>>,
        arena: &'a mut [u8],
    ) -> Option<Guard<Self>> {
        let md = model.interpreter().model().metadata();
        let kind = ScoreKind::from_u8(md.guard_score)?;
        if md.guard_flags & 1 == 0 || !md.guard_threshold.is_finite() {
            return None;
        }
        let scorer = Self::new(model, background, arena, kind, md.guard_params).ok()?;
        Some(Guard::new(scorer, md.guard_threshold))
    }

    /// The score kind.
    pub fn kind(&self) -> ScoreKind {
        self.kind
    }

    /// The statistics of the last image scored.
    pub fn last(&self) -> Option<Statistics> {
        self.last
    }

    /// Statistics of `image` (runs the model, and the background model if there is one).
    pub fn statistics(&mut self, image: &[u8]) -> Result<Statistics, crate::Error> {
        self.model.log_prob_pixels(self.arena, image, self.pixels)?;
        let bg = match &self.background {
            Some(b) => {
                b.log_prob_pixels(self.arena, image, self.background_pixels)?;
                Some(&self.background_pixels[..])
            }
            None => None,
        };
        let s = Statistics::from_pixels(image, self.model.geometry(), self.pixels, bg);
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

    struct Fixed(f32);
    impl Scorer for Fixed {
        type Error = ();
        fn score(&mut self, _: &[u8]) -> Result<f32, ()> {
            Ok(self.0)
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
        let p = [0.0, 1.0, 0.0, 1.0];
        assert_eq!(s.score(ScoreKind::BitsPerDim, &p), Some(s.bpd));
        assert_eq!(s.score(ScoreKind::LikelihoodRatio, &p), Some(s.bpd - s.background_bpd.unwrap()));
        let cc = s.bpd - s.coder_bpd;
        assert_eq!(s.score(ScoreKind::Combined, &p), Some(cc.max(s.line_ratio.unwrap())));
        assert_eq!(s.score(ScoreKind::Combined, &[0.0, 0.0, 0.0, 1.0]), None, "zero spread");
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
