//! VAE training: the negative ELBO (one reparameterized sample, analytic KL) on the shared
//! loop of [`crate::families::training`].

use super::model::{Vae, VaeConfig};
use crate::data::Images;
use crate::families::checkpoint::TrainState;
use crate::families::loss::{frames_to_tensor, kl_to_standard_normal, mixture_log_prob, to_vec};
pub use crate::families::training::TrainOptions;
use anyhow::Result;
use burn::prelude::*;
use edgegen_runtime::rng::Rng;

/// Loss of one batch: returns (loss tensor for backward, negative ELBO in nats per image).
pub fn batch_loss(model: &Vae, x: Tensor<4>, eps: Tensor<2>, k: usize) -> Tensor<1> {
    let (mu, logvar) = model.encoder.forward(x.clone());
    let z = mu.clone() + logvar.clone().mul_scalar(0.5).exp() * eps;
    let params = model.decoder.forward(z);
    let rec = mixture_log_prob(x, params, k);
    let kl = kl_to_standard_normal(mu, logvar);
    kl - rec
}

/// Standard normal noise for step `step` of `epoch`, from the runtime's generator, so a
/// resumed run draws exactly the noise the uninterrupted run would have.
fn step_noise(seed: u64, epoch: usize, step: usize, n: usize, device: &Device, shape: [usize; 2]) -> Tensor<2> {
    let mut rng = Rng::with_stream(seed, ((epoch as u64) << 32) | step as u64);
    let mut v = vec![0f32; n];
    rng.fill_normal(&mut v);
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Mean negative ELBO in bits/dim over `images` (one latent sample each, fixed noise).
pub fn validation_bpd(model: &Vae, images: &Images, seed: u64) -> f64 {
    let model = model.valid();
    let device = crate::device::of(&model);
    let k = model.decoder.components();
    let latent = model.decoder.latent();
    let mut total = 0f64;
    let (n, values) = (images.len(), images.values());
    let Ok(g) = images.geometry() else { return f64::NAN };
    for (i, start) in (0..n).step_by(500).enumerate() {
        let b = (n - start).min(500);
        let x = frames_to_tensor(&images.pixels[start * values..(start + b) * values], b, g, &device);
        let eps = step_noise(seed ^ 0xa11, usize::MAX >> 1, i, b * latent, &device, [b, latent]);
        total += to_vec(batch_loss(&model, x, eps, k)).iter().map(|&v| v as f64).sum::<f64>();
    }
    total / n as f64 / (values as f64 * std::f64::consts::LN_2)
}

/// Trains a VAE; returns the trained model and the training state (epochs, seconds, history).
pub fn train(cfg: &VaeConfig, opts: &TrainOptions) -> Result<(Vae, TrainState)> {
    train_on(cfg, opts, &opts.source.load(opts.progress)?)
}

/// [`train`] on already loaded `parts` of `opts.source`.
pub fn train_on(cfg: &VaeConfig, opts: &TrainOptions, parts: &crate::data::Parts) -> Result<(Vae, TrainState)> {
    let device = opts.device.main()?.autodiff();
    device.seed(opts.seed);
    let (train, valid) = crate::families::training::training_split(parts, opts);
    let (k, latent, batch, seed) = (cfg.components, cfg.latent, opts.batch, opts.seed);
    crate::families::training::fit(
        "vae",
        crate::families::training::Units::BitsPerDim,
        cfg.init(&device),
        opts,
        &train,
        // The step's noise for the whole batch, its rows for these images.
        |model, x, epoch, step, rows| {
            let eps = step_noise(seed, epoch, step, batch * latent, &x.device(), [batch, latent]);
            batch_loss(model, x, eps.narrow(0, rows.start, rows.len()), k)
        },
        |model| validation_bpd(model, &valid, seed),
    )
}
