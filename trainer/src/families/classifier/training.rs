//! Classifier training: cross-entropy on the shared loop of [`crate::families::training`]
//! (Adam, checkpoints, `--resume`); the validation figure is the accuracy on the held-out
//! split.

use super::model::{Classifier, ClassifierConfig};
use crate::data::{self, Images};
use crate::families::checkpoint::TrainState;
use crate::families::loss::{frames_to_tensor, to_vec};
use crate::families::training::{TrainOptions, Units};
use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Per-image cross-entropy (nats) of `logits` `[B, classes]` against `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[u8], device: &Device) -> Tensor<1> {
    let [b, _] = logits.dims();
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), device);
    log_softmax(logits, 1).gather(1, idx).reshape([b]).neg()
}

/// Predicted classes of `images` (argmax of the logits; batches of 500).
pub fn predict(model: &Classifier, images: &Images) -> Result<Vec<usize>> {
    let model = model.valid();
    let g = images.geometry()?;
    let device = crate::device::of(&model);
    let (n, values) = (images.len(), images.values());
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let b = (n - start).min(500);
        let x = frames_to_tensor(&images.pixels[start * values..(start + b) * values], b, g, &device);
        let logits = to_vec(model.forward(x));
        let k = logits.len() / b;
        out.extend(logits.chunks(k).map(|l| (0..k).fold(0, |best, c| if l[c] > l[best] { c } else { best })));
    }
    Ok(out)
}

/// Fraction of `images` classified as labelled.
pub fn accuracy(model: &Classifier, images: &Images) -> Result<f64> {
    let labels = images.labels.as_ref().context("these images have no labels")?;
    let pred = predict(model, images)?;
    Ok(pred.iter().zip(labels).filter(|(p, l)| **p == **l as usize).count() as f64 / pred.len().max(1) as f64)
}

/// Trains a classifier on loaded `parts` (they must have labels).
pub fn train_on(cfg: &ClassifierConfig, opts: &TrainOptions, parts: &data::Parts) -> Result<(Classifier, TrainState)> {
    let device = opts.device.main()?.autodiff();
    device.seed(opts.seed);
    let (train, valid) = crate::families::training::training_split(parts, opts);
    let labels = train.labels.clone().context("the classifier needs labelled images (Fashion-MNIST); this source has no labels")?;
    anyhow::ensure!(labels.iter().all(|&l| (l as usize) < cfg.classes), "a label is outside the classifier's {} classes", cfg.classes);
    let (n, batch, seed) = (train.len(), opts.batch, opts.seed);
    crate::families::training::fit(
        "classifier",
        Units::CrossEntropy,
        cfg.init(&device),
        opts,
        &train,
        // The loop draws the batch of `step` from the epoch's permutation; the labels follow
        // the same order.
        |model, x, epoch, step, rows| {
            let order = data::permutation(n, seed.wrapping_add(epoch as u64));
            let y: Vec<u8> = order[step * batch..(step + 1) * batch][rows].iter().map(|&i| labels[i]).collect();
            let device = x.device();
            cross_entropy(model.forward(x), &y, &device)
        },
        |model| accuracy(model, &valid).unwrap_or(f64::NAN),
    )
}
