//! `edgegen eval ood`: how well each p(x)-based score separates Fashion-MNIST test images
//! (in distribution) from MNIST digits and from corrupted frames a real sensor produces.
//! Scores come from the int8 engines (the device path); higher means more anomalous.

use crate::data::{self, Images};
use crate::eval::score::{EngineKind, Loaded};
use anyhow::{ensure, Result};
use edgegen_runtime::guard::{ScoreKind, Statistics};
use edgegen_runtime::rng::Rng;
use serde_json::json;
use std::path::Path;

/// Kinds of corrupted frames, as a camera or sensor produces them.
pub const CORRUPTIONS: [&str; 10] =
    ["noise", "blur", "stuck-rows", "dead-columns", "saturation", "dead-sensor", "frozen-gray", "inverted", "salt-pepper", "shifted"];

/// Corrupts `img` with `kind` (deterministic for a given `rng` state).
pub fn corrupt(kind: &str, img: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = img.to_vec();
    let px = |v: i32| v.clamp(0, 255) as u8;
    match kind {
        "noise" => out.iter_mut().for_each(|p| *p = px(*p as i32 + (rng.normal() * 40.0) as i32)),
        "blur" => {
            for y in 0..28 {
                for x in 0..28 {
                    let (mut s, mut n) = (0i32, 0i32);
                    for dy in -1i32..=1 {
                        for dx in -1i32..=1 {
                            let (yy, xx) = (y as i32 + dy, x as i32 + dx);
                            if (0..28).contains(&yy) && (0..28).contains(&xx) {
                                s += img[(yy * 28 + xx) as usize] as i32;
                                n += 1;
                            }
                        }
                    }
                    out[y * 28 + x] = (s / n) as u8;
                }
            }
        }
        "stuck-rows" => (0..3).for_each(|_| {
            let r = rng.below(28) as usize;
            out[r * 28..(r + 1) * 28].fill(255);
        }),
        "dead-columns" => (0..3).for_each(|_| {
            let c = rng.below(28) as usize;
            (0..28).for_each(|r| out[r * 28 + c] = 0);
        }),
        "saturation" => out.iter_mut().for_each(|p| *p = px(*p as i32 * 3)),
        "dead-sensor" => out.fill(0),
        "frozen-gray" => out.fill(128),
        "inverted" => out.iter_mut().for_each(|p| *p = 255 - *p),
        "salt-pepper" => out.iter_mut().for_each(|p| {
            if rng.below(20) == 0 {
                *p = if rng.below(2) == 0 { 0 } else { 255 };
            }
        }),
        "shifted" => {
            out.fill(0);
            let (dy, dx) = (rng.below(7) as usize + 4, rng.below(7) as usize + 4);
            for y in dy..28 {
                for x in dx..28 {
                    out[y * 28 + x] = img[(y - dy) * 28 + x - dx];
                }
            }
        }
        _ => {}
    }
    out
}

/// AUROC (anomalies positive, higher score = more anomalous), by the rank statistic.
pub fn auroc(inliers: &[f64], outliers: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = inliers.iter().map(|&s| (s, false)).chain(outliers.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += avg_rank * all[i..j].iter().filter(|t| t.1).count() as f64;
        i = j;
    }
    let (p, n) = (outliers.len() as f64, inliers.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Average precision with anomalies as positives.
pub fn auprc(inliers: &[f64], outliers: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = inliers.iter().map(|&s| (s, false)).chain(outliers.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut ap) = (0f64, 0f64);
    for (k, &(_, pos)) in all.iter().enumerate() {
        if pos {
            tp += 1.0;
            ap += tp / (k + 1) as f64;
        }
    }
    ap / outliers.len().max(1) as f64
}

/// Fraction of anomalies accepted at the threshold that accepts 95% of inliers.
pub fn false_accept_at_95(inliers: &[f64], outliers: &[f64]) -> f64 {
    let mut s = inliers.to_vec();
    s.sort_by(f64::total_cmp);
    let t = s[((0.95 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    outliers.iter().filter(|&&o| o <= t).count() as f64 / outliers.len().max(1) as f64
}

/// The ROC curve (false-positive rate, true-positive rate) over all thresholds.
fn roc(inliers: &[f64], outliers: &[f64]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, bool)> = inliers.iter().map(|&s| (s, false)).chain(outliers.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut pts = vec![(0.0, 0.0)];
    for (_, pos) in all {
        if pos {
            tp += 1.0
        } else {
            fp += 1.0
        }
        pts.push((fp / inliers.len() as f64, tp / outliers.len() as f64));
    }
    pts
}

/// The in-distribution images, the named outlier sets, and the clean images the corrupted
/// sets were made from (see [`eval_sets`]).
pub type EvalSets = (Images, Vec<(String, Images)>, Images);

/// The evaluation sets: `count` Fashion-MNIST test images (in distribution), and the
/// outlier sets: `count` MNIST digits, then `count` corrupted test images (other images than
/// the inliers) per kind in [`CORRUPTIONS`].
/// Also returns the uncorrupted test images the corrupted sets were made from.
pub fn eval_sets(count: usize) -> Result<EvalSets> {
    eval_sets_of(&data::Source::FashionMnist, count, false)
}

/// The evaluation sets of a model whose images come from `source`: for Fashion-MNIST, as
/// [`eval_sets`]; for a folder, `count` test frames (in distribution) and `count` other test
/// frames per defect kind of [`super::defects::DEFECTS`] drawn on them.
pub fn eval_sets_of(source: &data::Source, count: usize, progress: bool) -> Result<EvalSets> {
    if !source.is_fashion_mnist() {
        let test = source.load(progress)?.test;
        let g = test.geometry()?;
        ensure!(test.len() >= 2, "{}: too few test frames to evaluate", source.describe());
        let pick = |seed: u64| data::permutation(test.len(), seed)[..count.min(test.len())].to_vec();
        let inliers = test.select(&pick(1));
        let base = test.select(&pick(3));
        let mut sets = Vec::new();
        for (k, kind) in super::defects::DEFECTS.iter().enumerate() {
            let mut rng = Rng::with_stream(4, k as u64);
            let pixels: Vec<u8> = (0..base.len()).flat_map(|i| super::defects::draw(kind, base.image(i), g, &mut rng)).collect();
            sets.push((kind.to_string(), Images { pixels, labels: None, ..base.clone() }));
        }
        return Ok((inliers, sets, base));
    }
    let test = data::fashion_mnist(data::Split::Test)?;
    let mnist = data::mnist_digits()?;
    let pick = |n: usize, seed: u64| data::permutation(n, seed)[..count.min(n)].to_vec();
    let inliers: Images = test.select(&pick(test.len(), 1));
    let mut sets: Vec<(String, Images)> = vec![("mnist".into(), mnist.select(&pick(mnist.len(), 2)))];
    let base = test.select(&pick(test.len(), 3));
    for (k, kind) in CORRUPTIONS.iter().enumerate() {
        let mut rng = Rng::with_stream(4, k as u64);
        let pixels: Vec<u8> = (0..base.len()).flat_map(|i| corrupt(kind, base.image(i), &mut rng)).collect();
        sets.push((kind.to_string(), Images::gray(28, 28, pixels)));
    }
    Ok((inliers, sets, base))
}

/// Runs the evaluation for the models in `dirs` on `count` images per set; writes a JSON
/// report and a ROC plot into `out`.
pub fn run(dirs: &[&Path], count: usize, out: &Path, progress: bool) -> Result<serde_json::Value> {
    ensure!(count >= 100, "--count must be at least 100");
    ensure!(!dirs.is_empty(), "give at least one model");
    let source = crate::export::card::Card::read(dirs[0])?.source();
    for d in &dirs[1..] {
        ensure!(
            crate::export::card::Card::read(d)?.source() == source,
            "{} and {} were trained on different images; evaluate them separately",
            dirs[0].display(),
            d.display()
        );
    }
    let (inliers, sets, base) = eval_sets_of(&source, count, progress)?;
    // The outlier set whose ROC curves are drawn.
    let roc_set = if source.is_fashion_mnist() { "mnist" } else { "stain" };
    // Corrupted frames identical to their source (a dead column over black background, say):
    // no score can flag them; the report counts them per kind.
    let unchanged = |set: &str, imgs: &Images| -> Option<usize> {
        (set != "mnist").then(|| (0..imgs.len().min(base.len())).filter(|&i| imgs.image(i) == base.image(i)).count())
    };
    let mut report = Vec::new();
    let mut curves = Vec::new();
    let mut guards = Vec::new();
    for dir in dirs {
        let model = Loaded::open(dir, EngineKind::Int8)?;
        let name = crate::export::card::card_name(dir, "model");
        let total = (inliers.len() * (sets.len() + 1)) as u64;
        let bar = crate::progress::bar(progress, total, "ood");
        let stats_all = |imgs: &Images| -> Result<Vec<Statistics>> {
            let r = crate::parallel::map(imgs.len(), |i| {
                bar.inc(1);
                model.statistics(imgs.image(i), i)
            });
            r.into_iter().collect()
        };
        let guard = model.guard();
        // Every score this model supports; the calibrated guard's with its stored constants.
        let kinds: Vec<ScoreKind> = ScoreKind::ALL
            .into_iter()
            .filter(|k| *k != ScoreKind::Combined || guard.map(|g| g.0) == Some(ScoreKind::Combined))
            .filter(|k| !k.needs_background() || model.background_dir().is_some())
            .collect();
        let params = guard.map(|g| g.1).unwrap_or_default();
        let pick = |st: &[Statistics], k: ScoreKind| -> Vec<f64> { st.iter().filter_map(|s| s.score(k, &params)).collect() };
        let inl = stats_all(&inliers)?;
        if let Some((gk, _, t)) = guard {
            let s = pick(&inl, gk);
            let frr = s.iter().filter(|&&v| v as f32 > t).count() as f64 / s.len().max(1) as f64;
            guards.push(
                json!({"model": name, "score": gk.name(), "threshold": t, "false_reject_on_these_inliers": crate::export::card::r4(frr)}),
            );
        }
        for (set, imgs) in &sets {
            let outl = stats_all(imgs)?;
            let unchanged_frames = unchanged(set, imgs);
            for &k in &kinds {
                let (a, b) = (pick(&inl, k), pick(&outl, k));
                let at_guard =
                    guard.filter(|g| g.0 == k).map(|g| b.iter().filter(|&&v| v as f32 <= g.2).count() as f64 / b.len().max(1) as f64);
                let row = json!({
                    "model": name, "score": k.name(), "outliers": set,
                    "auroc": crate::export::card::r4(auroc(&a, &b)),
                    "auprc": crate::export::card::r4(auprc(&a, &b)),
                    "false_accept_at_95": crate::export::card::r4(false_accept_at_95(&a, &b)),
                    "false_accept_at_guard": at_guard.map(crate::export::card::r4),
                    "unchanged_frames": unchanged_frames,
                });
                if set == roc_set && model.family() == crate::families::ModelFamily::Pixelcnn {
                    curves.push((format!("{name} {}", k.name()), roc(&a, &b)));
                }
                report.push(row);
            }
        }
        crate::progress::finish(&bar);
    }
    println!("{:<16} {:<22} {:<14} {:>7} {:>7} {:>9}", "model", "score", "outliers", "AUROC", "AUPRC", "FA@95%in");
    for r in &report {
        println!(
            "{:<16} {:<22} {:<14} {:>7.4} {:>7.4} {:>9.4}",
            r["model"].as_str().unwrap_or(""),
            r["score"].as_str().unwrap_or(""),
            r["outliers"].as_str().unwrap_or(""),
            r["auroc"].as_f64().unwrap_or(0.0),
            r["auprc"].as_f64().unwrap_or(0.0),
            r["false_accept_at_95"].as_f64().unwrap_or(0.0)
        );
    }
    let (in_distribution, outliers) = if source.is_fashion_mnist() {
        (
            format!("{} Fashion-MNIST test images", inliers.len()),
            format!("{count} MNIST digits; {count} corrupted Fashion-MNIST test images per kind"),
        )
    } else {
        (
            format!("{} test frames of {}", inliers.len(), source.describe()),
            format!("{} other test frames per defect kind, each with the defect drawn on it (trainer/src/eval/defects.rs)", base.len()),
        )
    };
    let models: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let doc = json!({
        "in_distribution": in_distribution,
        "outliers": outliers,
        "engine": "int8 (the device path)",
        "false_accept_at_95": "fraction of outliers accepted at the threshold that accepts 95% of in-distribution images",
        "false_accept_at_guard": "fraction of outliers the calibrated guard (threshold in the model file) accepts",
        "guards": guards,
        "results": report,
        "command": format!("cargo edgegen eval ood --models {} --count {count} --out {}", models.join(" "), out.display()),
    });
    data::write_atomic(&out.join("ood.json"), serde_json::to_string_pretty(&doc)?.as_bytes())?;
    plot_roc(&out.join(format!("roc-{roc_set}.png")), &curves)?;
    Ok(doc)
}

/// ROC curves (Fashion-MNIST vs MNIST) as a PNG: one gray level per curve, the diagonal
/// dotted.
fn plot_roc(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    const S: usize = 240;
    const M: usize = 20;
    let (w, h) = (S + 2 * M, S + 2 * M);
    let mut img = vec![255u8; w * h];
    let dot = |x: usize, y: usize, v: u8, img: &mut Vec<u8>| {
        if x < w && y < h {
            img[y * w + x] = v;
        }
    };
    for i in 0..=S {
        dot(M + i, M + S, 0, &mut img);
        dot(M, M + i, 0, &mut img);
        if i % 4 == 0 {
            dot(M + i, M + S - i, 160, &mut img);
        }
    }
    for (c, (_, pts)) in curves.iter().enumerate() {
        let v = (c as u32 * 150 / curves.len().max(1) as u32) as u8;
        let mut last: Option<(usize, usize)> = None;
        for &(fpr, tpr) in pts {
            let p = (M + (fpr * S as f64) as usize, M + S - (tpr * S as f64) as usize);
            if let Some(q) = last {
                let n = (p.0 as i64 - q.0 as i64).abs().max((p.1 as i64 - q.1 as i64).abs()).max(1);
                for t in 0..=n {
                    let x = q.0 as i64 + (p.0 as i64 - q.0 as i64) * t / n;
                    let y = q.1 as i64 + (p.1 as i64 - q.1 as i64) * t / n;
                    dot(x as usize, y as usize, v, &mut img);
                    dot(x as usize + 1, y as usize, v, &mut img);
                }
            }
            last = Some(p);
        }
    }
    crate::data::imageio::write_gray_png(path, w, h, &img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PIXELS;

    #[test]
    fn metrics_on_known_cases() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(auroc(&a, &[4.0, 5.0]), 1.0);
        assert_eq!(auroc(&a, &[0.0, 0.5]), 0.0);
        assert!((auroc(&[1.0, 2.0], &[1.0, 2.0]) - 0.5).abs() < 1e-12);
        assert_eq!(auprc(&a, &[4.0, 5.0]), 1.0);
        assert_eq!(false_accept_at_95(&a, &[4.0, 2.0]), 0.5);
    }

    #[test]
    fn corruptions_change_images_deterministically() {
        let img: Vec<u8> = (0..PIXELS).map(|i| (i % 200) as u8).collect();
        for kind in CORRUPTIONS {
            let a = corrupt(kind, &img, &mut Rng::new(1));
            assert_eq!(a, corrupt(kind, &img, &mut Rng::new(1)), "{kind}");
            assert_ne!(a, img, "{kind} left the image unchanged");
            assert_eq!(a.len(), PIXELS);
        }
    }
}
