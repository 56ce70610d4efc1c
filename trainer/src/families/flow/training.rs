//! Flow training: the negative log-likelihood of uniformly dequantized pixels on the shared
//! loop of [`crate::families::training`].

use super::model::{Flow, FlowConfig};
use crate::data::Images;
use crate::families::checkpoint::TrainState;
use crate::families::loss::{frames_to_tensor, to_vec};
pub use crate::families::training::TrainOptions;
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use edgegen_runtime::rng::Rng;

/// Uniform dequantization noise `[B, C, H, W]` in [0, 1) from `(seed, stream)`.
pub fn dequantization(seed: u64, stream: u64, dims: [usize; 4], device: &Device) -> Tensor<4> {
    let mut rng = Rng::with_stream(seed, stream);
    let v: Vec<f32> = (0..dims.iter().product::<usize>()).map(|_| rng.uniform()).collect();
    Tensor::from_data(TensorData::new(v, dims), device)
}

/// Stream of the validation and test figures' dequantization noise (apart from the steps'
/// `(epoch << 32) | step` streams).
pub const EVAL_STREAM: u64 = 0xF10F_0000_0000_0000;

/// Mean bits/dim of `images` (one dequantization sample per value, `Rng::with_stream(seed,
/// EVAL_STREAM + chunk)`): the bound the flow reports.
pub fn mean_bpd(model: &Flow, images: &Images, seed: u64) -> f64 {
    let lp = log_probs(model, images, seed);
    let n = images.len().max(1) as f64;
    -lp.iter().sum::<f64>() / n / (images.values() as f64 * std::f64::consts::LN_2)
}

/// log p of every image (nats), dequantized as in [`mean_bpd`].
pub fn log_probs(model: &Flow, images: &Images, seed: u64) -> Vec<f64> {
    let device = crate::device::of(model);
    let Ok(g) = images.geometry() else { return vec![f64::NAN; images.len()] };
    let values = images.values();
    let mut out = Vec::with_capacity(images.len());
    for (i, start) in (0..images.len()).step_by(500).enumerate() {
        let b = (images.len() - start).min(500);
        let x = frames_to_tensor(&images.pixels[start * values..(start + b) * values], b, g, &device);
        let dims = x.dims();
        let u = dequantization(seed, EVAL_STREAM + i as u64, dims, &device);
        out.extend(to_vec(model.log_prob(x, u)).into_iter().map(f64::from));
    }
    out
}

/// Trains a flow on `opts.source`; returns the trained model, the training state and the
/// dataset's parts.
pub fn train(cfg: &FlowConfig, opts: &TrainOptions) -> Result<(Flow, TrainState, crate::data::Parts)> {
    let device = opts.device.main()?.autodiff();
    device.seed(opts.seed);
    let parts = opts.source.load(opts.progress)?;
    let (train, valid) = crate::families::training::training_split(&parts, opts);
    let (seed, batch) = (opts.seed, opts.batch);
    let (model, state) = crate::families::training::fit(
        "flow",
        crate::families::training::Units::BitsPerDim,
        cfg.init(&device),
        opts,
        &train,
        // The step's noise for the whole batch, its rows for these images.
        |model: &Flow, x, epoch, step, rows| {
            let [_, c, h, w] = x.dims();
            let u = dequantization(seed, ((epoch as u64) << 32) | step as u64, [batch, c, h, w], &x.device());
            model.log_prob(x, u.narrow(0, rows.start, rows.len())).neg()
        },
        |model| mean_bpd(&model.valid(), &valid, seed),
    )?;
    Ok((model, state, parts))
}
