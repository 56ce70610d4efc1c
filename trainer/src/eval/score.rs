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
pub fn sample(dir: &Path, engine: EngineKind, seed: u64, count: usize, out: &Path) -> Result<()> {
    ensure!((1..=1024).contains(&count), "--count must be in 1..=1024");
    let loaded = Loaded::open(dir, engine)?;
    let images = crate::parallel::map(count, |i| loaded.sample(seed + i as u64));
    let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let cols = (count as f64).sqrt().ceil() as usize;
    let g = loaded.geometry();
    let scale = (84 / g.height.max(g.width) as usize).max(1);
    crate::data::imageio::write_frame_grid(out, &images, g, cols, scale)?;
    println!("{count} {} samples (seeds {seed}..{}) -> {}", loaded.family(), seed + count as u64 - 1, out.display());
    Ok(())
}

/// The median and the 99th-percentile-minus-median of `v` (the Combined score's constants).
fn spread(v: &mut [f64]) -> (f32, f32) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let (m, hi) = (q(0.5), q(0.99));
    (m as f32, ((hi - m) as f32).max(1e-6))
}

/// `edgegen calibrate`: the guard's constants and threshold from the held-out validation
/// split (never the test set), stored in the model file and the card; reports the
/// false-reject rate it gives on the test set. `kind` defaults to `combined` for a PixelCNN
/// with a background model, else `complexity_corrected`.
pub fn calibrate(dir: &Path, false_reject: f32, kind: Option<ScoreKind>, progress: bool) -> Result<()> {
    ensure!(false_reject > 0.0 && false_reject < 0.5, "--false-reject must be in (0, 0.5)");
    let loaded = Loaded::open(dir, EngineKind::Int8)?;
    let family = loaded.family();
    let has_bg = loaded.background_dir().is_some();
    let kind = kind.unwrap_or(if has_bg { ScoreKind::Combined } else { ScoreKind::ComplexityCorrected });
    ensure!(
        !kind.needs_background() || has_bg,
        "the {} score needs a background model in {}-bg (train one with `--perturb`)",
        kind.name(),
        dir.display()
    );
    let stats_of = |images: &Images| -> Result<Vec<Statistics>> {
        let bar = crate::progress::bar(progress, images.len() as u64, "score");
        let s = crate::parallel::map(images.len(), |i| {
            bar.inc(1);
            loaded.statistics(images.image(i), i)
        });
        crate::progress::finish(&bar);
        s.into_iter().collect()
    };
    let parts = crate::export::card::Card::read(dir)?.source().load(progress)?;
    let valid = stats_of(&parts.validation)?;
    let mut params = [0f32; 4];
    if kind == ScoreKind::Combined {
        let (c0, s0) = spread(&mut valid.iter().map(|s| s.bpd - s.coder_bpd).collect::<Vec<_>>());
        let (c1, s1) = spread(&mut valid.iter().filter_map(|s| s.line_ratio).collect::<Vec<_>>());
        params = [c0, s0, c1, s1];
    }
    let score_all = |st: &[Statistics]| -> Result<Vec<f32>> {
        st.iter().map(|s| s.score(kind, &params).map(|v| v as f32).context("score needs the background model")).collect()
    };
    let mut v = score_all(&valid)?;
    let threshold = guard::calibrate_threshold(&mut v, false_reject).context("calibration scores are not finite")?;
    let t = score_all(&stats_of(&parts.test)?)?;
    let test_frr = t.iter().filter(|&&s| s > threshold).count() as f64 / t.len() as f64;
    let part = family.parts()[0];
    let path = dir.join(format!("{part}.egm"));
    let updated = crate::int8::quantize::set_guard(&std::fs::read(&path)?, kind as u8, threshold, false_reject, params)?;
    data::write_atomic(&path, &updated)?;
    let mut card = crate::export::card::Card::read(dir)?;
    card.device.guard = Some(crate::export::card::GuardCard {
        score: kind.name().to_string(),
        params: (kind == ScoreKind::Combined).then(|| crate::export::card::CombinedParams {
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
        engine: "int8".into(),
        threshold: crate::export::card::r4(threshold as f64),
        false_reject_target: (false_reject as f64 * 1e6).round() / 1e6,
        calibrated_on: "Fashion-MNIST validation split (last 5,000 training images)".into(),
        test_false_reject: crate::export::card::r4(test_frr),
        stored_in: format!("{part}.egm metadata"),
        command: format!("cargo edgegen calibrate --model {} --false-reject {false_reject}", dir.display()),
    });
    card.write(dir)?;
    println!(
        "{} threshold {threshold:.4} (false-reject target {false_reject}); test-set false-reject {:.2}%",
        kind.name(),
        test_frr * 100.0
    );
    Ok(())
}
