//! PixelCNN training: exact negative log-likelihood on the shared loop of [`crate::families::training`].

use super::model::{PixelCnn, PixelCnnConfig};
use crate::families::checkpoint::TrainState;
use crate::families::loss::mixture_log_prob;
pub use crate::families::training::TrainOptions;
use anyhow::Result;
use burn::prelude::*;

/// Negative log-likelihood in nats per image `[B]`.
pub fn batch_loss(model: &PixelCnn, x: Tensor<4>) -> Tensor<1> {
    let params = model.forward(x.clone());
    mixture_log_prob(x, params, model.components()).neg()
}

/// Trains a PixelCNN on `opts.source`; returns the trained model, the training state and the
/// dataset's parts (the test part for the published figures).
pub fn train(cfg: &PixelCnnConfig, opts: &TrainOptions) -> Result<(PixelCnn, TrainState, crate::data::Parts)> {
    let device = opts.device.main()?.autodiff();
    device.seed(opts.seed);
    let parts = opts.source.load(opts.progress)?;
    let (train, valid) = crate::families::training::training_split(&parts, opts);
    let (model, state) = crate::families::training::fit(
        "pixelcnn",
        crate::families::training::Units::BitsPerDim,
        cfg.init(&device),
        opts,
        &train,
        |model, x, _, _, _| batch_loss(model, x),
        |model| super::eval::mean_bpd(model, &valid, false),
    )?;
    Ok((model, state, parts))
}
