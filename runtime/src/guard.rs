//! The outlier-rejection guard: a threshold on a p(x)-based score, where a higher score
//! means more anomalous. The threshold is calibrated on held-out in-distribution images for
//! a target false-reject rate and stored in the model file's metadata.

use crate::model::Metadata;

/// Score kinds stored in the model file (`guard_score`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScoreKind {
    /// Raw bits/dim, −log₂ p(x) / 784.
    BitsPerDim = 1,
}

impl ScoreKind {
    /// From the metadata byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(ScoreKind::BitsPerDim),
            _ => None,
        }
    }

    /// Name for logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::BitsPerDim => "bits_per_dim",
        }
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
    /// The score of an 8-bit 28×28 image.
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

/// Raw bits/dim of the int8 PixelCNN as a score.
#[derive(Debug)]
pub struct PixelCnnBpd<'m, 'a> {
    engine: crate::engine::PixelCnn<'m>,
    arena: &'a mut [u8],
}

impl<'m, 'a> PixelCnnBpd<'m, 'a> {
    /// A scorer over `engine` using `arena` (at least `engine.arena_len()` bytes).
    pub fn new(engine: crate::engine::PixelCnn<'m>, arena: &'a mut [u8]) -> Self {
        PixelCnnBpd { engine, arena }
    }
}

impl Scorer for PixelCnnBpd<'_, '_> {
    type Error = crate::Error;
    fn score(&mut self, image: &[u8]) -> Result<f32, crate::Error> {
        let lp = self.engine.log_prob(self.arena, image)?;
        Ok(crate::likelihood::bits_per_dim(lp, image.len()) as f32)
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
