//! `edgegen score`, `edgegen sample` and `edgegen calibrate`: the runtime's engines
//! ([`crate::engines`]) behind one command line.

use crate::data::{self, Images};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::guard::{self, ScoreKind, Statistics};
use serde_json::json;
use std::path::{Path, PathBuf};

pub use crate::engines::{background_dir, EngineKind, Loaded, VAE_K};

/// Reads every frame of a file as frames of geometry `g`: an IDX image file (optionally
/// gzipped; frames of `g`'s channels, of its size or resized to it with `resize`) or one picture (PNG,
/// JPEG, BMP, TIFF, PGM/PPM, converted to `g`'s channels; see [`crate::data::imageio`]).
/// Returns the frames, planar, one after another.
pub fn read_frames(path: &Path, g: edgegen_runtime::image::Geometry, resize: bool) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&[0, 0, 8, 3]) || bytes.starts_with(&[0, 0, 8, 4]) || bytes.starts_with(&[0x1f, 0x8b]) {
        let images = data::read_idx_images(path)?;
        let from = images.geometry().with_context(|| format!("{}", path.display()))?;
        ensure!(
            from.channels == g.channels,
            "{}: IDX frames have {} channels, the model takes {}",
            path.display(),
            from.channels,
            g.channels
        );
        if (from.height, from.width) != (g.height, g.width) && !resize {
            bail!(
                "{}: IDX frames are {}x{} (width x height), the model takes {}x{}: pass --resize to resize them",
                path.display(),
                from.width,
                from.height,
                g.width,
                g.height
            );
        }
        return (0..images.len()).map(|i| crate::data::imageio::resize_frame(images.image(i), from, g)).collect();
    }
    Ok(vec![crate::data::imageio::decode_frame(&bytes, g, resize).with_context(|| format!("{}", path.display()))?])
}

/// The guard's verdict on one image: (score, threshold, accept), when a guard is calibrated.
pub fn verdict(loaded: &Loaded, stats: &Statistics) -> Result<Option<(f64, f32, bool)>> {
    let Some((kind, params, threshold)) = loaded.guard() else { return Ok(None) };
    let score = stats.score(kind, &params).with_context(|| {
        if kind.needs_background() && stats.background_bpd.is_none() {
            format!("the calibrated {} guard needs the background model (a sibling `-bg` directory)", kind.name())
        } else {
            format!("the {} guard's constants in the model file are unusable ({params:?}); recalibrate", kind.name())
        }
    })?;
    Ok(Some((score, threshold, score as f32 <= threshold)))
}

/// `edgegen score`: one JSON line per image.
pub fn score(dir: &Path, engine: EngineKind, files: &[PathBuf], resize: bool) -> Result<ScoreSummary> {
    ensure!(!files.is_empty(), "give at least one picture or IDX file to score");
    let loaded = Loaded::open(dir, engine)?;
    let guard = loaded.guard();
    if guard.is_none() {
        eprintln!(
            "note: {} holds no calibrated guard; run `cargo edgegen calibrate --model {}` (accept is null)",
            dir.display(),
            dir.display()
        );
    }
    let g = loaded.geometry();
    let r4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    let mut summary = ScoreSummary::default();
    for f in files {
        for (i, frame) in read_frames(f, g, resize)?.iter().enumerate() {
            let stats = loaded.statistics(frame, i)?;
            let v = verdict(&loaded, &stats)?;
            let line = json!({
                "file": f.display().to_string(),
                "index": i,
                "bpd": r4(stats.bpd),
                "score_kind": guard.map(|g| g.0.name()),
                "score": v.map(|v| r4(v.0)),
                "threshold": v.map(|v| v.1),
                "accept": v.map(|v| v.2),
            });
            println!("{line}");
            summary.frames += 1;
            summary.rejected += v.is_some_and(|v| !v.2) as usize;
        }
    }
    Ok(summary)
}

/// What `edgegen score` saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    /// Frames scored.
    pub frames: usize,
    /// Frames the guard rejected.
    pub rejected: usize,
}

/// `edgegen sample`: `count` images from seeds `seed..seed+count` as a PNG grid.
pub fn sample(dir: &Path, engine: EngineKind, seed: u64, count: usize, class: Option<&str>, out: &Path) -> Result<()> {
    ensure!((1..=1024).contains(&count), "--count must be in 1..=1024");
    let loaded = Loaded::open(dir, engine)?;
    let g = loaded.geometry();
    let scale = (84 / g.height.max(g.width) as usize).max(1);
    let last = seed + count as u64 - 1;
    match ClassChoice::parse(dir, &loaded, class)? {
        ClassChoice::Drawn => {
            let images = crate::parallel::map(count, |i| loaded.sample(seed + i as u64));
            let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
            let cols = (count as f64).sqrt().ceil() as usize;
            crate::data::imageio::write_frame_grid(out, &images, g, cols, scale)?;
            println!("{count} {} samples (seeds {seed}..{last}) -> {}", loaded.family(), out.display());
        }
        ClassChoice::One(c, name) => {
            let images = crate::parallel::map(count, |i| loaded.sample_class(seed + i as u64, Some(c)).map(|(x, _)| x));
            let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
            let cols = (count as f64).sqrt().ceil() as usize;
            crate::data::imageio::write_frame_grid(out, &images, g, cols, scale)?;
            println!("{count} samples of class {c} ({name}) (seeds {seed}..{last}) -> {}", out.display());
        }
        ClassChoice::All(k) => {
            // One row per seed, one column per class: the same noise drawn as every class.
            let images = crate::parallel::map(count * k, |i| loaded.sample_class(seed + (i / k) as u64, Some(i % k)).map(|(x, _)| x));
            let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
            crate::data::imageio::write_frame_grid(out, &images, g, k, scale)?;
            println!("{count} rows (seeds {seed}..{last}) of all {k} classes -> {}", out.display());
        }
    }
    Ok(())
}

/// What `--class` asked of a conditional generator.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassChoice {
    /// No `--class`: each seed draws its own class (or the model has none).
    Drawn,
    /// One class: its index and name.
    One(usize, String),
    /// `--class all`: every class, a column each.
    All(usize),
}

/// Letters and digits of `s`, lowercased: how class names are compared (`t-shirt`,
/// `T-shirt/top` and `tshirt` meet).
fn class_key(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Resolves `--class` (a name, a unique start of one, an index, or `all`) against `names`.
pub fn resolve_class(text: &str, names: &[String]) -> Result<ClassChoice> {
    let listing = || names.iter().enumerate().map(|(i, n)| format!("{i} {n}")).collect::<Vec<_>>().join(", ");
    if text.eq_ignore_ascii_case("all") {
        return Ok(ClassChoice::All(names.len()));
    }
    if let Ok(i) = text.trim().parse::<usize>() {
        ensure!(i < names.len(), "--class {i}: the model has classes 0..{} ({})", names.len() - 1, listing());
        return Ok(ClassChoice::One(i, names[i].clone()));
    }
    let key = class_key(text);
    ensure!(!key.is_empty(), "--class {text:?}: give a class name or index ({})", listing());
    let exact: Vec<usize> = (0..names.len()).filter(|&i| class_key(&names[i]) == key).collect();
    let starts: Vec<usize> = (0..names.len()).filter(|&i| class_key(&names[i]).starts_with(&key)).collect();
    match (exact.as_slice(), starts.as_slice()) {
        ([i], _) | ([], [i]) => Ok(ClassChoice::One(*i, names[*i].clone())),
        ([], []) => bail!("--class {text:?} is not one of the model's classes: {}", listing()),
        _ => bail!(
            "--class {text:?} names several classes ({}); be more precise",
            starts.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl ClassChoice {
    /// `--class` for the model in `dir` (its class names from its card).
    pub fn parse(dir: &Path, loaded: &Loaded, class: Option<&str>) -> Result<ClassChoice> {
        let Some(text) = class else { return Ok(ClassChoice::Drawn) };
        let k = loaded.classes();
        ensure!(
            k > 0,
            "--class {text}: {} is a {} without classes; --class takes a conditional GAN (train gan --conditional)",
            dir.display(),
            loaded.family()
        );
        let names = match crate::export::card::Card::read(dir)?.family {
            crate::export::card::FamilyCard::Gan(g) => g.classes.unwrap_or_default(),
            _ => Vec::new(),
        };
        // A card without names (or another count) still takes indices.
        let names = if names.len() == k { names } else { (0..k).map(|i| format!("class {i}")).collect() };
        resolve_class(text, &names)
    }

    /// The one class asked for, if any.
    pub fn index(&self) -> Option<usize> {
        match self {
            ClassChoice::One(i, _) => Some(*i),
            _ => None,
        }
    }
}

/// `edgegen sample --interpolate A:B[,C:D…]`: one row of `steps` pictures per seed pair,
/// walking spherically from the first seed's latent to the second's, as a PNG grid.
pub fn interpolate(dir: &Path, engine: EngineKind, pairs: &[(u64, u64)], steps: usize, class: Option<&str>, out: &Path) -> Result<()> {
    ensure!((2..=64).contains(&steps), "--count must be in 2..=64 with --interpolate (pictures per row)");
    ensure!((1..=64).contains(&pairs.len()), "--interpolate takes 1 to 64 seed pairs");
    let loaded = Loaded::open(dir, engine)?;
    let choice = ClassChoice::parse(dir, &loaded, class)?;
    ensure!(!matches!(choice, ClassChoice::All(_)), "--class all draws a grid of samples; with --interpolate name one class");
    let mut images = Vec::new();
    for &(a, b) in pairs {
        images.extend(loaded.interpolate(a, b, steps, choice.index())?.concat());
    }
    let g = loaded.geometry();
    let scale = (84 / g.height.max(g.width) as usize).max(1);
    crate::data::imageio::write_frame_grid(out, &images, g, steps, scale)?;
    println!("{} rows of {steps} {} pictures between latents -> {}", pairs.len(), loaded.family(), out.display());
    Ok(())
}

/// Parses `A:B[,C:D…]` (seed pairs).
pub fn seed_pairs(text: &str) -> Result<Vec<(u64, u64)>> {
    text.split(',')
        .map(|p| {
            let (a, b) = p.split_once(':').with_context(|| format!("--interpolate: {p:?} is not SEED:SEED (e.g. 3:7)"))?;
            let seed = |s: &str| s.trim().parse::<u64>().with_context(|| format!("--interpolate: {s:?} is not a seed (a whole number)"));
            Ok((seed(a)?, seed(b)?))
        })
        .collect()
}

/// The median and the 99th-percentile-minus-median of `v` (the Combined score's constants).
fn spread(v: &mut [f64]) -> (f32, f32) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let (m, hi) = (q(0.5), q(0.99));
    (m as f32, ((hi - m) as f32).max(1e-6))
}

/// The median of `v` and the 99th percentile of `|v − median|` (a two-sided term's constants).
fn spread_two_sided(v: &[f64]) -> (f32, f32) {
    let (m, _) = spread(&mut v.to_vec());
    let mut d: Vec<f64> = v.iter().map(|&x| (x - m as f64).abs()).collect();
    d.sort_by(f64::total_cmp);
    let q = d[((0.99 * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1];
    (m, (q as f32).max(1e-6))
}

/// How the structural guard's latent density is fitted (`edgegen calibrate --vae`).
#[derive(Debug, Clone, Copy)]
pub struct LatentFit {
    /// Mixture components.
    pub components: usize,
    /// EM rounds at most.
    pub iterations: usize,
    /// Added to every covariance's diagonal (the latents are standardized first).
    pub regularization: f64,
    /// Seed of the k-means++ starts.
    pub seed: u64,
}

impl Default for LatentFit {
    fn default() -> Self {
        LatentFit { components: 8, iterations: 200, regularization: 1e-3, seed: 1 }
    }
}

/// Fits the structural guard's density on the posterior means `mus` of held-out frames and
/// encodes its guard block (`encoder_crc`: the VAE encoder file's checksum). Returns the
/// block and the latent scores of `mus` under it (the runtime's own computation).
pub fn fit_latent_block(mus: &[Vec<f32>], encoder_crc: u32, fit: &LatentFit, extra: &[(f32, f32)]) -> Result<(Vec<u8>, Vec<f64>)> {
    let d = mus.first().map_or(0, |m| m.len());
    ensure!(d > 0, "no posterior means to fit");
    let n = mus.len() as f64;
    let mean: Vec<f64> = (0..d).map(|j| mus.iter().map(|m| m[j] as f64).sum::<f64>() / n).collect();
    let inv_std: Vec<f64> = (0..d)
        .map(|j| {
            let v = mus.iter().map(|m| (m[j] as f64 - mean[j]).powi(2)).sum::<f64>() / n;
            1.0 / v.sqrt().max(1e-6)
        })
        .collect();
    // Standardized exactly as the device will: in f32 constants, f64 arithmetic.
    let (mean32, istd32): (Vec<f32>, Vec<f32>) = (mean.iter().map(|&v| v as f32).collect(), inv_std.iter().map(|&v| v as f32).collect());
    let z: Vec<Vec<f64>> = mus.iter().map(|m| (0..d).map(|j| (m[j] as f64 - mean32[j] as f64) * istd32[j] as f64).collect()).collect();
    let comps = super::gmm::fit(&z, fit.components, fit.iterations, fit.regularization, fit.seed)?;
    let packed: Vec<(f32, Vec<f32>, Vec<f32>)> = comps
        .iter()
        .map(|c| (c.constant() as f32, c.mean.iter().map(|&v| v as f32).collect(), c.l.iter().map(|&v| v as f32).collect()))
        .collect();
    let encode = |norm: (f32, f32)| guard::GuardBlock::encode(encoder_crc, norm, &mean32, &istd32, &packed, extra);
    let draft = encode((0.0, 1.0));
    let block = guard::GuardBlock::parse(&draft).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scores: Vec<f64> = mus.iter().map(|m| block.score(m).context("latent length")).collect::<Result<_>>()?;
    let norm = spread(&mut scores.clone());
    Ok((encode(norm), scores))
}

/// `edgegen calibrate`: the guard's constants and threshold from the held-out validation
/// split (never the test set), stored in the model file and the card; reports the
/// false-reject rate it gives on the test set. `kind` defaults to `structural` when a VAE
/// is given (`vae`: its directory, beside the model's), `combined` for a PixelCNN with a
/// background model, else `complexity_corrected`.
pub fn calibrate(
    dir: &Path,
    false_reject: f32,
    kind: Option<ScoreKind>,
    vae: Option<&Path>,
    fit: &LatentFit,
    progress: bool,
) -> Result<()> {
    ensure!(false_reject > 0.0 && false_reject < 0.5, "--false-reject must be in (0, 0.5)");
    let loaded = Loaded::open(dir, EngineKind::Int8)?;
    let family = loaded.family();
    let has_bg = loaded.background_dir().is_some();
    let kind = kind.unwrap_or(if vae.is_some() {
        ScoreKind::Evidence
    } else if has_bg {
        ScoreKind::Combined
    } else {
        ScoreKind::ComplexityCorrected
    });
    ensure!(
        !kind.needs_background() || has_bg,
        "the {} score needs a background model in {}-bg (train one with `--perturb`)",
        kind.name(),
        dir.display()
    );
    // The structural score's VAE: int8, beside the model (the card names it by directory).
    let vae = match (kind.needs_latent(), vae) {
        (true, None) => bail!("the {} score needs a VAE: `--vae DIR` (the int8 VAE trained on the same frames)", kind.name()),
        (true, Some(v)) => {
            ensure!(
                v.parent().map(|p| p.canonicalize().ok()) == dir.parent().map(|p| p.canonicalize().ok()),
                "--vae {} must sit beside {} (the card names it by directory)",
                v.display(),
                dir.display()
            );
            let l = Loaded::open(v, EngineKind::Int8)?;
            let crate::engines::Engines::VaeInt8(e) = l.engines() else { bail!("--vae {} is not a VAE", v.display()) };
            ensure!(
                e.geometry() == loaded.geometry(),
                "--vae {} takes {} frames, the model {}",
                v.display(),
                e.geometry(),
                loaded.geometry()
            );
            Some((v.to_path_buf(), e.clone()))
        }
        (false, _) => None,
    };
    // Every frame's statistics and (with a VAE) its posterior mean and reconstruction.
    let stats_of = |images: &Images| -> Result<(Vec<Statistics>, Vec<Vec<f32>>)> {
        let bar = crate::progress::bar(progress, images.len() as u64, "score");
        let s = crate::parallel::map(images.len(), |i| {
            bar.inc(1);
            match &vae {
                Some((_, e)) => loaded.statistics_with(images.image(i), i, Some((e, None))),
                None => Ok((loaded.statistics(images.image(i), i)?, Vec::new())),
            }
        });
        crate::progress::finish(&bar);
        Ok(s.into_iter().collect::<Result<Vec<_>>>()?.into_iter().unzip())
    };
    let parts = crate::export::card::Card::read(dir)?.source().load(progress)?;
    let (mut valid, valid_mus) = stats_of(&parts.validation)?;
    let mut params: guard::GuardParams = [0.0; 16];
    if matches!(kind, ScoreKind::Combined | ScoreKind::Structural | ScoreKind::Evidence) {
        let (c0, s0) = spread(&mut valid.iter().map(|s| s.bpd - s.coder_bpd).collect::<Vec<_>>());
        let (c1, s1) = spread(&mut valid.iter().filter_map(|s| s.line_ratio).collect::<Vec<_>>());
        params[..4].copy_from_slice(&[c0, s0, c1, s1]);
    }
    // The evidence guard's further terms (after the latent score), from the validation frames.
    let mut extra = Vec::new();
    if kind == ScoreKind::Evidence {
        let rec = |f: fn(&guard::Reconstruction) -> f64| valid.iter().filter_map(|s| s.reconstruction.as_ref().map(f)).collect::<Vec<_>>();
        extra.push(spread(&mut valid.iter().filter_map(|s| s.patch_ratio).collect::<Vec<_>>()));
        extra.push(spread(&mut rec(|r| r.bound_cc)));
        extra.push(spread(&mut rec(|r| r.ratio_line)));
        extra.push(spread(&mut rec(|r| r.ratio_patch)));
        extra.push(spread_two_sided(&valid.iter().map(|s| s.peak).collect::<Vec<_>>()));
        for (i, &(m, sp)) in extra.iter().enumerate() {
            params[6 + 2 * i] = m;
            params[7 + 2 * i] = sp;
        }
    }
    let mut block = None;
    let (mut test, test_mus) = stats_of(&parts.test)?;
    if let Some((_, e)) = &vae {
        let (bytes, scores) = fit_latent_block(&valid_mus, e.encoder_model().crc(), fit, &extra)?;
        let b = guard::GuardBlock::parse(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (m, sp) = b.norm();
        params[4] = m;
        params[5] = sp;
        for (s, l) in valid.iter_mut().zip(scores) {
            s.latent = Some(l);
        }
        for (s, mu) in test.iter_mut().zip(&test_mus) {
            s.latent = b.score(mu);
        }
        block = Some(bytes);
    }
    let score_all = |st: &[Statistics]| -> Result<Vec<f32>> {
        st.iter().map(|s| s.score(kind, &params).map(|v| v as f32).context("score needs the background model")).collect()
    };
    let mut v = score_all(&valid)?;
    let threshold = guard::calibrate_threshold(&mut v, false_reject).context("calibration scores are not finite")?;
    let t = score_all(&test)?;
    let test_frr = t.iter().filter(|&&s| s > threshold).count() as f64 / t.len() as f64;
    let part = family.parts()[0];
    let path = dir.join(format!("{part}.egm"));
    let meta4 = [params[0], params[1], params[2], params[3]];
    let updated = crate::int8::quantize::set_guard(&std::fs::read(&path)?, kind as u8, threshold, false_reject, meta4)?;
    // The guard block goes with the structural score (and a stale one goes away).
    let updated = edgegen_runtime::model::write::with_guard_block(&updated, block.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    data::write_atomic(&path, &updated)?;
    let mut card = crate::export::card::Card::read(dir)?;
    let source = card.source();
    card.device.guard = Some(crate::export::card::GuardCard {
        score: kind.name().to_string(),
        params: matches!(kind, ScoreKind::Combined | ScoreKind::Structural | ScoreKind::Evidence).then(|| crate::export::card::CombinedParams {
            cc_median: params[0] as f64,
            cc_spread: params[1] as f64,
            line_median: params[2] as f64,
            line_spread: params[3] as f64,
        }),
        background_model: loaded
            .background_dir()
            .filter(|_| kind.needs_background())
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string()),
        vae_model: vae.as_ref().and_then(|(p, _)| p.file_name()).map(|n| n.to_string_lossy().to_string()),
        latent: vae.as_ref().map(|(_, e)| crate::export::card::LatentCard {
            components: fit.components,
            latent: e.latent(),
            median: params[4] as f64,
            spread: params[5] as f64,
            fitted: format!(
                "Gaussian mixture by EM ({} rounds at most, k-means++ starts from seed {}, {} added to the covariances' diagonals) over the int8 encoder's standardized posterior means of the validation frames",
                fit.iterations, fit.seed, fit.regularization
            ),
        }),
        terms: (kind == ScoreKind::Evidence).then(|| {
            guard::EVIDENCE_TERMS
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), crate::export::card::r4(params[2 * i] as f64), crate::export::card::r4(params[2 * i + 1] as f64)))
                .collect()
        }),
        engine: "int8".into(),
        threshold: crate::export::card::r4(threshold as f64),
        false_reject_target: (false_reject as f64 * 1e6).round() / 1e6,
        calibrated_on: if source.is_fashion_mnist() {
            "Fashion-MNIST validation split (last 5,000 training images)".into()
        } else {
            format!("the validation part of {}", source.describe())
        },
        test_false_reject: crate::export::card::r4(test_frr),
        stored_in: if block.is_some() { format!("{part}.egm metadata and guard block") } else { format!("{part}.egm metadata") },
        command: match &vae {
            Some((p, _)) => format!(
                "cargo edgegen calibrate --model {} --vae {} --components {} --false-reject {false_reject}",
                dir.display(),
                p.display(),
                fit.components
            ),
            None => format!("cargo edgegen calibrate --model {} --false-reject {false_reject}", dir.display()),
        },
    });
    card.write(dir)?;
    println!(
        "{} threshold {threshold:.4} (false-reject target {false_reject}); test-set false-reject {:.2}%",
        kind.name(),
        test_frr * 100.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fitted block scores held-out points of its own distribution near its median and
    /// far points far above it, through the runtime's own parser.
    #[test]
    fn latent_block_is_fitted_and_normalized() {
        let mut rng = edgegen_runtime::rng::Rng::new(3);
        let mus: Vec<Vec<f32>> = (0..600).map(|i| vec![rng.normal() + if i % 2 == 0 { 5.0 } else { -5.0 }, 0.5 * rng.normal()]).collect();
        let fit = LatentFit { components: 2, ..Default::default() };
        let (bytes, scores) = fit_latent_block(&mus, 42, &fit, &[]).unwrap();
        let block = guard::GuardBlock::parse(&bytes).unwrap();
        assert_eq!((block.latent(), block.components(), block.encoder_crc()), (2, 2, 42));
        let (median, spread) = block.norm();
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[299] as f32 - median).abs() < 1e-3 && spread > 0.0, "{} vs {median}", sorted[299]);
        // Between the clusters and far off: well beyond the 99th percentile.
        for far in [[0.0f32, 0.0], [5.0, 6.0]] {
            assert!(block.score(&far).unwrap() > (median + 2.0 * spread) as f64, "{far:?}");
        }
        assert!(block.score(&[5.0, 0.0]).unwrap() < median as f64 + spread as f64);
    }

    #[test]
    fn class_names_resolve_by_name_start_index_or_all() {
        let names: Vec<String> = crate::eval::fd::CLASSES.iter().map(|s| s.to_string()).collect();
        let one = |t: &str| resolve_class(t, &names).unwrap();
        assert_eq!(one("sneaker"), ClassChoice::One(7, "Sneaker".into()));
        assert_eq!(one("Ankle-Boot"), ClassChoice::One(9, "Ankle boot".into()));
        assert_eq!(one("ankle"), ClassChoice::One(9, "Ankle boot".into()));
        assert_eq!(one("t-shirt"), ClassChoice::One(0, "T-shirt/top".into()));
        // "shirt" is a class of its own, though "T-shirt/top" holds it too.
        assert_eq!(one("SHIRT"), ClassChoice::One(6, "Shirt".into()));
        assert_eq!(one("3"), ClassChoice::One(3, "Dress".into()));
        assert_eq!(one("all"), ClassChoice::All(10));
        let err = |t: &str| resolve_class(t, &names).unwrap_err().to_string();
        assert!(err("t").contains("several classes") && err("t").contains("Trouser"), "{}", err("t"));
        assert!(err("10").contains("classes 0..9") && err("10").contains("9 Ankle boot"), "{}", err("10"));
        assert!(err("hat").contains("not one of the model's classes"), "{}", err("hat"));
        assert!(err("--").contains("give a class name or index"), "{}", err("--"));
    }
}
