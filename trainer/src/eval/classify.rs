//! Classification that knows when not to answer: `edgegen classify` (the classifier's class
//! and the guard's verdict on each frame, a label only when the guard accepts) and
//! `edgegen eval selective` (accuracy on accepted frames, coverage, outliers that receive a
//! label, the accuracy–coverage curve).

use crate::data::Images;
use crate::eval::ood::{auroc, eval_sets_of, EvalSets};
use crate::eval::score::{read_frames, verdict, EngineKind, Loaded, ScoreSummary};
use crate::export::card::{r4, Card, FamilyCard};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::engine::Classification;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A classifier and the guard that decides whether its answer is given.
pub struct GuardedClassifier {
    classifier: Loaded,
    guard: Loaded,
    names: Vec<String>,
}

/// One frame's answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// The classifier's class and probability.
    pub class: Classification,
    /// The guard's score, threshold and verdict.
    pub score: f64,
    /// The calibrated threshold.
    pub threshold: f32,
    /// `score <= threshold`.
    pub accept: bool,
}

impl GuardedClassifier {
    /// Opens a classifier directory and a guard's (a calibrated PixelCNN) on `engine`.
    pub fn open(classifier: &Path, guard: &Path, engine: EngineKind) -> Result<Self> {
        let card = Card::read(classifier)?;
        let FamilyCard::Classifier(c) = &card.family else {
            bail!("{} is a {}, not a classifier (cargo edgegen train classifier)", classifier.display(), card.model_family());
        };
        let names = c.classes.clone();
        let classifier_l = Loaded::open(classifier, engine)?;
        let guard_l = Loaded::open(guard, engine)?;
        ensure!(
            guard_l.guard().is_some(),
            "{} holds no calibrated guard: run `cargo edgegen calibrate --model {}` first",
            guard.display(),
            guard.display()
        );
        ensure!(
            classifier_l.geometry() == guard_l.geometry(),
            "the classifier takes {} frames and the guard {}: they must see the same frames",
            classifier_l.geometry(),
            guard_l.geometry()
        );
        Ok(GuardedClassifier { classifier: classifier_l, guard: guard_l, names })
    }

    /// Class names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The frame geometry both take.
    pub fn geometry(&self) -> edgegen_runtime::image::Geometry {
        self.guard.geometry()
    }

    /// Classifies and checks one frame (`index` seeds the VAE guard's bound, as `score`).
    pub fn answer(&self, image: &[u8], index: usize) -> Result<Answer> {
        let stats = self.guard.statistics(image, index)?;
        let (score, threshold, accept) = verdict(&self.guard, &stats)?.context("the guard is not calibrated")?;
        Ok(Answer { class: self.classifier.classify(image)?, score, threshold, accept })
    }

    /// [`GuardedClassifier::answer`] for every frame of `images` (all cores).
    pub fn answer_all(&self, images: &Images, bar: &indicatif::ProgressBar) -> Result<Vec<Answer>> {
        let r = crate::parallel::map(images.len(), |i| {
            bar.inc(1);
            self.answer(images.image(i), i)
        });
        r.into_iter().collect()
    }
}

/// `edgegen classify`: one JSON line per frame with the class, its probability, the guard's
/// score, threshold and verdict, and `label` — the class name when the guard accepts, null
/// when it rejects.
pub fn classify(classifier: &Path, guard: &Path, engine: EngineKind, files: &[PathBuf], resize: bool) -> Result<ScoreSummary> {
    ensure!(!files.is_empty(), "give at least one picture or IDX file to classify");
    let gc = GuardedClassifier::open(classifier, guard, engine)?;
    let mut summary = ScoreSummary::default();
    for f in files {
        for (i, frame) in read_frames(f, gc.geometry(), resize)?.iter().enumerate() {
            let a = gc.answer(frame, i)?;
            let name = gc.names.get(a.class.class).cloned().unwrap_or_else(|| a.class.class.to_string());
            let line = json!({
                "file": f.display().to_string(),
                "index": i,
                "class": a.class.class,
                "name": name,
                "probability": r4(a.class.probability),
                "score": r4(a.score),
                "threshold": a.threshold,
                "accept": a.accept,
                "label": a.accept.then_some(name),
            });
            println!("{line}");
            summary.frames += 1;
            summary.rejected += !a.accept as usize;
        }
    }
    Ok(summary)
}

/// Points of the accuracy–coverage curve when frames are accepted in the order of `key`
/// (lowest first): (fraction accepted, accuracy on them), every 1% of the frames.
fn curve(key: &[f64], correct: &[bool]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..key.len()).collect();
    order.sort_by(|&a, &b| key[a].total_cmp(&key[b]));
    let n = order.len();
    let mut hits = 0usize;
    let mut points = Vec::new();
    let step = (n / 100).max(1);
    for (k, &i) in order.iter().enumerate() {
        hits += correct[i] as usize;
        if (k + 1) % step == 0 || k + 1 == n {
            points.push(((k + 1) as f64 / n as f64, hits as f64 / (k + 1) as f64));
        }
    }
    points
}

/// `edgegen eval selective`: the guarded classifier on `count` Fashion-MNIST test images and
/// the outlier sets of `eval ood`; writes `selective.json` and `accuracy-coverage.png` into
/// `out` and returns the report.
pub fn selective(classifier: &Path, guard: &Path, count: usize, out: &Path, progress: bool) -> Result<serde_json::Value> {
    ensure!(count >= 100, "--count must be at least 100");
    let gc = GuardedClassifier::open(classifier, guard, EngineKind::Int8)?;
    let source = Card::read(guard)?.source();
    ensure!(source.is_fashion_mnist(), "selective classification needs labelled test images: Fashion-MNIST models");
    let EvalSets { inliers, sets } = eval_sets_of(&source, count, progress)?;
    let labels = inliers.labels.clone().context("the test images have no labels")?;
    let total = (inliers.len() + sets.iter().map(|s| s.images.len()).sum::<usize>()) as u64;
    let bar = crate::progress::bar(progress, total, "selective");
    let inl = gc.answer_all(&inliers, &bar)?;
    let correct: Vec<bool> = inl.iter().zip(&labels).map(|(a, &l)| a.class.class == l as usize).collect();
    let n = inl.len();
    let accepted = inl.iter().filter(|a| a.accept).count();
    let hits_accepted = inl.iter().zip(&correct).filter(|(a, &c)| a.accept && c).count();
    let accuracy = correct.iter().filter(|&&c| c).count() as f64 / n as f64;
    let selective_accuracy = hits_accepted as f64 / accepted.max(1) as f64;
    let coverage = accepted as f64 / n as f64;
    let mut rows = Vec::new();
    let (mut outliers, mut labelled) = (0usize, 0usize);
    let inlier_scores: Vec<f64> = inl.iter().map(|a| a.score).collect();
    let inlier_doubt: Vec<f64> = inl.iter().map(|a| -a.class.probability).collect();
    for s in &sets {
        let a = gc.answer_all(&s.images, &bar)?;
        let got = a.iter().filter(|x| x.accept).count();
        outliers += a.len();
        labelled += got;
        let scores: Vec<f64> = a.iter().map(|x| x.score).collect();
        let doubt: Vec<f64> = a.iter().map(|x| -x.class.probability).collect();
        rows.push(json!({
            "outliers": s.name,
            "frames": a.len(),
            "labelled": r4(got as f64 / a.len().max(1) as f64),
            "guard_auroc": r4(auroc(&inlier_scores, &scores)),
            "classifier_confidence_auroc": r4(auroc(&inlier_doubt, &doubt)),
        }));
    }
    crate::progress::finish(&bar);
    let threshold = inl.first().map(|a| a.threshold).unwrap_or(f32::NAN);
    let by_guard = curve(&inlier_scores, &correct);
    let by_confidence = curve(&inlier_doubt, &correct);
    // Both gates: the frames the guard accepts, most confident first, then the rejected ones.
    let both: Vec<f64> = inl.iter().map(|a| -a.class.probability + if a.accept { 0.0 } else { 2.0 }).collect();
    let by_both = curve(&both, &correct);
    std::fs::create_dir_all(out)?;
    crate::eval::plot::accuracy_coverage(
        &out.join("accuracy-coverage.png"),
        &format!("Selective classification, {n} Fashion-MNIST test frames (int8)"),
        &[
            crate::eval::plot::Curve { label: "accepted by the guard's score (lowest first)".into(), points: by_guard },
            crate::eval::plot::Curve { label: "accepted by the classifier's confidence (highest first)".into(), points: by_confidence },
            crate::eval::plot::Curve { label: "the guard's accepted frames by confidence, then the rejected".into(), points: by_both },
        ],
        (coverage, selective_accuracy),
        &format!("calibrated guard: coverage {:.1}%, accuracy {:.2}%", 100.0 * coverage, 100.0 * selective_accuracy),
    )?;
    let report = json!({
        "classifier": crate::export::card::card_name(classifier, "classifier"),
        "guard": crate::export::card::card_name(guard, "guard"),
        "engine": "int8",
        "test_frames": n,
        "threshold": threshold,
        "accuracy_all_test_frames": r4(accuracy),
        "coverage": r4(coverage),
        "accuracy_on_accepted": r4(selective_accuracy),
        "outlier_frames": outliers,
        "outliers_labelled": r4(labelled as f64 / outliers.max(1) as f64),
        "per_set": rows,
        "command": format!("cargo edgegen eval selective --classifier {} --guard {} --count {count} --out {}", classifier.display(), guard.display(), out.display()),
        "note": "Every frame gets the classifier's class; the guard decides whether it is given (label). Coverage and accuracy on the test frames; 'labelled' is the fraction of each outlier set the guard accepts, so those frames get a label. AUROCs: the guard's score and the classifier's own confidence (1 - max softmax) as outlier scores.",
    });
    crate::data::write_atomic(&out.join("selective.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}
