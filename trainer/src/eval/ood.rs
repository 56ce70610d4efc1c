//! `edgegen eval ood`: how well each p(x)-based score separates Fashion-MNIST test images
//! (in distribution) from MNIST digits and from corrupted frames a real sensor produces.
//! Scores come from the int8 engines (the device path; a normalizing flow not yet quantized through tract in f32); higher means more anomalous.

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

/// Kinds of global, structural faults a camera produces: how it is mounted (rotated,
/// upside down, mirrored), what is in the way (a dark occluding patch), how it is exposed,
/// where it points and how far it is (translation is [`CORRUPTIONS`]' `shifted`; zoom).
pub const STRUCTURAL: [&str; 12] = [
    "rotated-90",
    "upside-down",
    "mirrored",
    "flipped",
    "occluded",
    "under-exposed",
    "over-exposed",
    "zoomed-in",
    "zoomed-out",
    "tilted",
    "half-covered",
    "ghosted",
];

/// The outlier sets the guard's design was chosen on (its statistics and how they combine:
/// the mean AUROC over these), for the structural guard and again for the evidence guard;
/// the others only report. `tilted`, `half-covered` and `ghosted` were added after the
/// structural guard's choice (docs/guard.md says what the evidence guard's choice saw).
pub const CHOSEN_ON: [&str; 12] = [
    "noise",
    "blur",
    "stuck-rows",
    "dead-columns",
    "saturation",
    "dead-sensor",
    "frozen-gray",
    "inverted",
    "salt-pepper",
    "rotated-90",
    "occluded",
    "under-exposed",
];

/// Samples the frame `img` (`side`×`side`, gray) at the source position `at(y, x)` of every
/// output pixel (nearest pixel; outside the frame: black, the background).
fn resample(img: &[u8], side: usize, at: impl Fn(f64, f64) -> (f64, f64)) -> Vec<u8> {
    let mut out = vec![0u8; side * side];
    for y in 0..side {
        for x in 0..side {
            let (sy, sx) = at(y as f64, x as f64);
            let (sy, sx) = (sy.round(), sx.round());
            if sy >= 0.0 && sx >= 0.0 && (sy as usize) < side && (sx as usize) < side {
                out[y * side + x] = img[sy as usize * side + sx as usize];
            }
        }
    }
    out
}

/// Applies the structural fault `kind` of [`STRUCTURAL`] to the 28×28 gray `img`
/// (deterministic for a given `rng` state); other kinds go to [`corrupt`].
pub fn structural(kind: &str, img: &[u8], rng: &mut Rng) -> Vec<u8> {
    const S: usize = 28;
    let c = (S as f64 - 1.0) / 2.0;
    let px = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    match kind {
        // A quarter turn, either way.
        "rotated-90" => {
            let cw = rng.below(2) == 0;
            resample(img, S, |y, x| if cw { (S as f64 - 1.0 - x, y) } else { (x, S as f64 - 1.0 - y) })
        }
        "upside-down" => resample(img, S, |y, x| (S as f64 - 1.0 - y, S as f64 - 1.0 - x)),
        "mirrored" => resample(img, S, |y, x| (y, S as f64 - 1.0 - x)),
        "flipped" => resample(img, S, |y, x| (S as f64 - 1.0 - y, x)),
        // Something dark in the way: a 10–14 pixel square, its centre in the middle half of the
        // frame (where the object is), dark gray with a little texture.
        "occluded" => {
            let mut out = img.to_vec();
            let side = 10 + rng.below(5) as usize;
            let (cy, cx) = (7 + rng.below(14) as usize, 7 + rng.below(14) as usize);
            let level = 10.0 + 30.0 * rng.uniform() as f64;
            for y in cy.saturating_sub(side / 2)..(cy + side.div_ceil(2)).min(S) {
                for x in cx.saturating_sub(side / 2)..(cx + side.div_ceil(2)).min(S) {
                    out[y * S + x] = px(level + 4.0 * rng.normal() as f64);
                }
            }
            out
        }
        // Exposure: a third to a half of the light; or the light doubled and a veil of 60–100.
        "under-exposed" => {
            let gain = 0.3 + 0.2 * rng.uniform() as f64;
            img.iter().map(|&p| px(p as f64 * gain)).collect()
        }
        "over-exposed" => {
            let veil = 60.0 + 40.0 * rng.uniform() as f64;
            img.iter().map(|&p| px(veil + p as f64 * 2.0)).collect()
        }
        // The camera 1.4–1.7× closer (the object's edges leave the frame) or 1.6–2× farther.
        "zoomed-in" => {
            let z = 1.4 + 0.3 * rng.uniform() as f64;
            resample(img, S, |y, x| (c + (y - c) / z, c + (x - c) / z))
        }
        "zoomed-out" => {
            let z = 1.0 / (1.6 + 0.4 * rng.uniform() as f64);
            resample(img, S, |y, x| (c + (y - c) / z, c + (x - c) / z))
        }
        // Mounted askew: turned 20–35 degrees either way.
        "tilted" => {
            let a = (20.0 + 15.0 * rng.uniform() as f64).to_radians() * if rng.below(2) == 0 { 1.0 } else { -1.0 };
            let (sin, cos) = a.sin_cos();
            resample(img, S, |y, x| (c + (y - c) * cos - (x - c) * sin, c + (y - c) * sin + (x - c) * cos))
        }
        // Half the lens covered: one half of the frame (top, bottom, left or right) dark.
        "half-covered" => {
            let mut out = img.to_vec();
            let side = rng.below(4);
            let level = 10.0 + 20.0 * rng.uniform() as f64;
            for y in 0..S {
                for x in 0..S {
                    let covered = match side {
                        0 => y < S / 2,
                        1 => y >= S / 2,
                        2 => x < S / 2,
                        _ => x >= S / 2,
                    };
                    if covered {
                        out[y * S + x] = px(level);
                    }
                }
            }
            out
        }
        // Double exposure (the object moved during it): the frame averaged with itself
        // shifted 4–8 pixels.
        "ghosted" => {
            let (dy, dx) = (4 + rng.below(5) as usize, 4 + rng.below(5) as usize);
            (0..S * S)
                .map(|i| {
                    let (y, x) = (i / S, i % S);
                    let shifted = if y >= dy && x >= dx { img[(y - dy) * S + x - dx] as f64 } else { 0.0 };
                    px((img[i] as f64 + shifted) / 2.0)
                })
                .collect()
        }
        other => corrupt(other, img, rng),
    }
}

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

/// What an outlier set tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Other content (MNIST digits for a garment model).
    Semantic,
    /// Pixel-level sensor faults ([`CORRUPTIONS`]).
    Pixel,
    /// Global, structural faults ([`STRUCTURAL`]).
    Structural,
    /// Defects drawn on frames of a folder's test part ([`super::defects::DEFECTS`]).
    Defect,
}

/// One outlier set.
pub struct OutlierSet {
    /// Its name (the corruption kind, or `mnist`).
    pub name: String,
    /// What it tests.
    pub group: Group,
    /// Its frames: those the corruption changed.
    pub images: Images,
    /// Frames the corruption left identical to their source (a dead column over black
    /// background, say), dropped from `images`: no score can flag them.
    pub unchanged: usize,
}

/// The evaluation sets: in-distribution frames and the outlier sets.
pub struct EvalSets {
    /// In-distribution frames.
    pub inliers: Images,
    /// The outlier sets.
    pub sets: Vec<OutlierSet>,
}

/// The frames of `base` with `f` applied (each set has its own random stream `stream`),
/// without those it left unchanged; and how many those were.
fn corrupted_set(base: &Images, stream: u64, f: impl Fn(&[u8], &mut Rng) -> Vec<u8>) -> (Images, usize) {
    let mut rng = Rng::with_stream(4, stream);
    let mut keep = Vec::with_capacity(base.len());
    let mut pixels = Vec::with_capacity(base.pixels.len());
    for i in 0..base.len() {
        let out = f(base.image(i), &mut rng);
        if out != base.image(i) {
            pixels.extend_from_slice(&out);
            keep.push(i);
        }
    }
    let unchanged = base.len() - keep.len();
    (Images { channels: base.channels, rows: base.rows, cols: base.cols, pixels, labels: None }, unchanged)
}

/// The evaluation sets: `count` Fashion-MNIST test images (in distribution), and the
/// outlier sets: `count` MNIST digits, then `count` corrupted test images (other images than
/// the inliers) per kind in [`CORRUPTIONS`] and [`STRUCTURAL`].
pub fn eval_sets(count: usize) -> Result<EvalSets> {
    eval_sets_of(&data::Source::FashionMnist, count, false)
}

/// The evaluation sets of a model whose images come from `source`: for Fashion-MNIST, as
/// [`eval_sets`]; for a folder, `count` test frames (in distribution) and `count` other test
/// frames per defect kind of [`super::defects::DEFECTS`] drawn on them.
pub fn eval_sets_of(source: &data::Source, count: usize, progress: bool) -> Result<EvalSets> {
    let mut sets = Vec::new();
    let mut add = |name: &str, group: Group, (images, unchanged): (Images, usize)| {
        sets.push(OutlierSet { name: name.to_string(), group, images, unchanged });
    };
    if !source.is_fashion_mnist() {
        let test = source.load(progress)?.test;
        let g = test.geometry()?;
        ensure!(test.len() >= 2, "{}: too few test frames to evaluate", source.describe());
        let pick = |seed: u64| data::permutation(test.len(), seed)[..count.min(test.len())].to_vec();
        let inliers = test.select(&pick(1));
        let base = test.select(&pick(3));
        for (k, kind) in super::defects::DEFECTS.iter().enumerate() {
            add(kind, Group::Defect, corrupted_set(&base, k as u64, |img, rng| super::defects::draw(kind, img, g, rng)));
        }
        return Ok(EvalSets { inliers, sets });
    }
    let test = data::fashion_mnist(data::Split::Test)?;
    let mnist = data::mnist_digits()?;
    let pick = |n: usize, seed: u64| data::permutation(n, seed)[..count.min(n)].to_vec();
    let inliers: Images = test.select(&pick(test.len(), 1));
    add("mnist", Group::Semantic, (mnist.select(&pick(mnist.len(), 2)), 0));
    let base = test.select(&pick(test.len(), 3));
    for (k, kind) in CORRUPTIONS.iter().enumerate() {
        add(kind, Group::Pixel, corrupted_set(&base, k as u64, |img, rng| corrupt(kind, img, rng)));
    }
    for (k, kind) in STRUCTURAL.iter().enumerate() {
        add(kind, Group::Structural, corrupted_set(&base, 100 + k as u64, |img, rng| structural(kind, img, rng)));
    }
    Ok(EvalSets { inliers, sets })
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
    let EvalSets { inliers, sets } = eval_sets_of(&source, count, progress)?;
    // ROC curves per outlier set (every model's scores), and the first guard's score
    // distributions and verdicts on example frames.
    let mut panels: Vec<super::plot::RocPanel> = sets
        .iter()
        .map(|s| super::plot::RocPanel { title: format!("{} ({} frames)", s.name, s.images.len()), curves: Vec::new() })
        .collect();
    let mut histograms: Vec<super::plot::HistogramPanel> = Vec::new();
    let mut examples: Vec<super::plot::ExampleRow> = Vec::new();
    let mut guard_score = String::new();
    let mut report = Vec::new();
    let mut guards = Vec::new();
    let mut inlier_row = None;
    for dir in dirs {
        // The int8 engines, but a flow not quantized yet (f32 through tract).
        let engine = match crate::families::ModelFamily::of_dir(dir)? {
            crate::families::ModelFamily::Flow if !dir.join(crate::int8::flow::FILE).exists() => EngineKind::Tract,
            _ => EngineKind::Int8,
        };
        let model = Loaded::open(dir, engine)?;
        let name = crate::export::card::card_name(dir, "model");
        let total = (inliers.len() + sets.iter().map(|s| s.images.len()).sum::<usize>()) as u64;
        let bar = crate::progress::bar(progress, total, "ood");
        let stats_all = |imgs: &Images| -> Result<Vec<Statistics>> {
            let r = crate::parallel::map(imgs.len(), |i| {
                bar.inc(1);
                model.statistics(imgs.image(i), i)
            });
            r.into_iter().collect()
        };
        let guard = model.guard();
        // The guard pictured: the first model's that has one.
        let pictured = guard.filter(|_| inlier_row.is_none());
        // Every score this model supports; the calibrated guard's with its stored constants.
        let kinds: Vec<ScoreKind> = ScoreKind::ALL
            .into_iter()
            .filter(|k| match k {
                // The normalized scores exist where the guard calibrated their constants.
                ScoreKind::Combined => {
                    matches!(guard.map(|g| g.0), Some(ScoreKind::Combined | ScoreKind::Structural | ScoreKind::Evidence))
                }
                ScoreKind::Structural => matches!(guard.map(|g| g.0), Some(ScoreKind::Structural | ScoreKind::Evidence)),
                ScoreKind::Evidence => guard.map(|g| g.0) == Some(ScoreKind::Evidence),
                _ => true,
            })
            .filter(|k| !k.needs_background() || model.background_dir().is_some())
            .collect();
        let params = guard.map(|g| g.1).unwrap_or_default();
        let pick = |st: &[Statistics], k: ScoreKind| -> Vec<f64> { st.iter().filter_map(|s| s.score(k, &params)).collect() };
        let inl = stats_all(&inliers)?;
        if let Some((gk, _, t)) = pictured {
            let n = inliers.len().min(EXAMPLES);
            let verdicts: Vec<bool> = inl[..n].iter().map(|s| s.score(gk, &params).is_some_and(|v| v as f32 <= t)).collect();
            let rejected = inl.iter().filter(|s| !s.score(gk, &params).is_some_and(|v| v as f32 <= t)).count();
            inlier_row = Some(super::plot::ExampleRow {
                title: format!("in distribution: {:.1}% rejected", 100.0 * rejected as f64 / inl.len().max(1) as f64),
                frames: (0..n).map(|i| inliers.image(i).to_vec()).collect(),
                accepted: verdicts,
            });
        }
        if let Some((gk, _, t)) = guard {
            let s = pick(&inl, gk);
            let frr = s.iter().filter(|&&v| v as f32 > t).count() as f64 / s.len().max(1) as f64;
            guards.push(
                json!({"model": name, "score": gk.name(), "threshold": t, "false_reject_on_these_inliers": crate::export::card::r4(frr)}),
            );
        }
        for (si, OutlierSet { name: set, group, images: imgs, unchanged }) in sets.iter().enumerate() {
            let outl = stats_all(imgs)?;
            // The first guard's pictures: its score's histogram and example verdicts.
            if let Some((gk, _, t)) = pictured {
                guard_score = format!("{name} {}", gk.name());
                histograms.push(super::plot::HistogramPanel {
                    title: set.to_string(),
                    inliers: pick(&inl, gk),
                    outliers: pick(&outl, gk),
                    threshold: t as f64,
                });
                let n = imgs.len().min(EXAMPLES);
                let verdicts: Vec<bool> = outl[..n].iter().map(|s| s.score(gk, &params).is_some_and(|v| v as f32 <= t)).collect();
                let accepted = outl.iter().filter(|s| s.score(gk, &params).is_some_and(|v| v as f32 <= t)).count();
                examples.push(super::plot::ExampleRow {
                    title: format!("{set}: {:.0}% accepted", 100.0 * accepted as f64 / outl.len().max(1) as f64),
                    frames: (0..n).map(|i| imgs.image(i).to_vec()).collect(),
                    accepted: verdicts,
                });
            }
            for &k in &kinds {
                let (a, b) = (pick(&inl, k), pick(&outl, k));
                let at_guard =
                    guard.filter(|g| g.0 == k).map(|g| b.iter().filter(|&&v| v as f32 <= g.2).count() as f64 / b.len().max(1) as f64);
                let row = json!({
                    "model": name, "score": k.name(), "outliers": set, "group": group, "frames": imgs.len(),
                    "auroc": crate::export::card::r4(auroc(&a, &b)),
                    "auprc": crate::export::card::r4(auprc(&a, &b)),
                    "false_accept_at_95": crate::export::card::r4(false_accept_at_95(&a, &b)),
                    "false_accept_at_guard": at_guard.map(crate::export::card::r4),
                    "unchanged_frames_dropped": unchanged,
                    "chose_the_guard": source.is_fashion_mnist() && CHOSEN_ON.contains(&set.as_str()),
                });
                let auc = auroc(&a, &b);
                let label = if dirs.len() > 1 { format!("{name} {} ({auc:.3})", k.name()) } else { format!("{} ({auc:.3})", k.name()) };
                panels[si].curves.push(super::plot::Curve { label, points: thin(&roc(&a, &b)) });
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
            format!("{count} MNIST digits; {count} corrupted Fashion-MNIST test images per kind, less those the corruption left unchanged (unchanged_frames_dropped)"),
        )
    } else {
        (
            format!("{} test frames of {}", inliers.len(), source.describe()),
            format!("{} other test frames per defect kind, each with the defect drawn on it (trainer/src/eval/defects.rs)", inliers.len()),
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
    super::plot::roc_panels(&out.join("roc.png"), &panels, 5)?;
    if !histograms.is_empty() {
        super::plot::histograms(&out.join("scores.png"), &format!("guard score ({guard_score})"), &histograms, 5)?;
        // The in-distribution frames first, then each outlier set.
        let rows: Vec<_> = inlier_row.into_iter().chain(examples).collect();
        super::plot::examples(&out.join("examples.png"), inliers.geometry()?, &rows)?;
    }
    Ok(doc)
}

/// Example frames per set in `examples.png`.
const EXAMPLES: usize = 10;

/// A ROC curve with at most ~400 points (every point where the slope changes matters less
/// than the picture's resolution).
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(400).max(1);
    let mut out: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
    if let Some(&last) = points.last() {
        out.push(last);
    }
    out
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

    #[test]
    fn structural_faults_move_the_object_not_the_pixels() {
        // An asymmetric object: a bright bar in the top-left quadrant.
        let mut img = vec![0u8; PIXELS];
        for y in 4..8 {
            for x in 4..14 {
                img[y * 28 + x] = 200;
            }
        }
        let at = |v: &[u8], y: usize, x: usize| v[y * 28 + x];
        let mut rng = Rng::new(1);
        let up = structural("upside-down", &img, &mut rng);
        assert_eq!((at(&up, 27 - 5, 27 - 5), at(&up, 5, 5)), (200, 0));
        let m = structural("mirrored", &img, &mut rng);
        assert_eq!((at(&m, 5, 27 - 5), at(&m, 5, 5)), (200, 0));
        let f = structural("flipped", &img, &mut rng);
        assert_eq!((at(&f, 27 - 5, 5), at(&f, 5, 5)), (200, 0));
        let r = structural("rotated-90", &img, &mut rng);
        assert_eq!(r.iter().filter(|&&p| p == 200).count(), 40, "a quarter turn keeps every pixel");
        assert_eq!(at(&r, 5, 5), 0);
        // Zooming out shrinks the bright area, zooming in grows it; exposure scales it.
        let count = |v: &[u8]| v.iter().filter(|&&p| p > 0).count();
        assert!(count(&structural("zoomed-out", &img, &mut rng)) < 40);
        assert!(count(&structural("zoomed-in", &img, &mut rng)) > 40);
        assert!(structural("under-exposed", &img, &mut rng).iter().all(|&p| p <= 100));
        assert!(structural("over-exposed", &img, &mut rng).iter().all(|&p| p >= 60));
        for kind in STRUCTURAL {
            let a = structural(kind, &img, &mut Rng::new(3));
            assert_eq!(a, structural(kind, &img, &mut Rng::new(3)), "{kind}");
            assert_eq!(a.len(), PIXELS);
            assert_ne!(a, img, "{kind} left the image unchanged");
        }
    }
}
