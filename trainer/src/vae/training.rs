//! VAE training loop: Adam on the negative ELBO (single reparameterized sample, analytic KL),
//! with a progress bar, per-epoch validation, and checkpoints that `--resume` continues from
//! exactly where an interrupted run stopped.

use super::model::{Vae, VaeConfig};
use crate::checkpoint::{Checkpoint, TrainState};
use crate::data::{self, Images};
use crate::loss::{images_to_tensor, kl_to_standard_normal, mixture_log_prob, to_vec};
use anyhow::Result;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use edgegen_runtime::{image::PIXELS, rng::Rng};
use std::path::PathBuf;
use std::time::Instant;

/// Settings of one training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Epochs over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of initialization, shuffling and noise.
    pub seed: u64,
    /// Use only the first `limit` training images (quick runs and tests).
    pub limit: Option<usize>,
    /// Directory of checkpoints.
    pub run_dir: PathBuf,
    /// Continue from the checkpoint in `run_dir`.
    pub resume: bool,
    /// Steps between mid-epoch checkpoints.
    pub checkpoint_every: usize,
    /// Show a progress bar.
    pub progress: bool,
}

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
    let device = Device::flex();
    let k = model.decoder.components();
    let latent = model.decoder.latent();
    let mut total = 0f64;
    let n = images.len();
    for (i, start) in (0..n).step_by(500).enumerate() {
        let b = (n - start).min(500);
        let x = images_to_tensor(&images.pixels[start * PIXELS..(start + b) * PIXELS], b, &device);
        let eps = step_noise(seed ^ 0xa11, usize::MAX >> 1, i, b * latent, &device, [b, latent]);
        total += to_vec(batch_loss(&model, x, eps, k)).iter().map(|&v| v as f64).sum::<f64>();
    }
    total / n as f64 / (PIXELS as f64 * std::f64::consts::LN_2)
}

/// Trains a VAE; returns the trained model and the training state (epochs, seconds, history).
pub fn train(cfg: &VaeConfig, opts: &TrainOptions) -> Result<(Vae, TrainState)> {
    let device = Device::flex().autodiff();
    device.seed(opts.seed);
    let mut train = data::fashion_mnist(data::Split::Train)?;
    if let Some(limit) = opts.limit {
        train = train.slice(0..limit.min(train.len()));
    }
    let valid = data::fashion_mnist(data::Split::Validation)?;
    let valid = if opts.limit.is_some() { valid.slice(0..500) } else { valid };

    let mut model = cfg.init(&device);
    let mut optim = AdamConfig::new().init();
    let ckpt = Checkpoint::new(&opts.run_dir);
    let mut state = TrainState::new(opts.seed, opts.epochs);
    if opts.resume {
        if let Some((s, m, o)) = ckpt.load(model.clone(), optim)? {
            eprintln!("resuming from {} at epoch {} step {}", opts.run_dir.display(), s.epoch + 1, s.step);
            state = s;
            model = m;
            optim = o;
        } else {
            anyhow::bail!("--resume: no checkpoint in {}", opts.run_dir.display());
        }
    }
    state.epochs = opts.epochs;

    let k = cfg.components;
    let steps_per_epoch = train.len() / opts.batch;
    anyhow::ensure!(steps_per_epoch > 0, "batch size {} exceeds the {} training images", opts.batch, train.len());
    let bar = crate::progress::bar(opts.progress, (steps_per_epoch * opts.epochs) as u64, "vae");
    bar.set_position((state.epoch * steps_per_epoch + state.step) as u64);
    let mut batch_pixels = vec![0u8; opts.batch * PIXELS];

    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let order = data::permutation(train.len(), opts.seed.wrapping_add(epoch as u64));
        let started = Instant::now();
        let mut seen = 0usize;
        let mut running = 0f64;
        for step in state.step..steps_per_epoch {
            for (j, &idx) in order[step * opts.batch..(step + 1) * opts.batch].iter().enumerate() {
                batch_pixels[j * PIXELS..(j + 1) * PIXELS].copy_from_slice(train.image(idx));
            }
            let x = images_to_tensor(&batch_pixels, opts.batch, &device);
            let eps = step_noise(opts.seed, epoch, step, opts.batch * cfg.latent, &device, [opts.batch, cfg.latent]);
            let loss = batch_loss(&model, x, eps, k).mean().div_scalar(PIXELS as f64);
            let nats_per_dim: f32 = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opts.lr, model, grads);

            seen += opts.batch;
            let bpd = nats_per_dim as f64 / std::f64::consts::LN_2;
            running = if step == state.step { bpd } else { 0.98 * running + 0.02 * bpd };
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} nats/dim  {:.3} bits/dim  {:.0} img/s",
                epoch + 1,
                opts.epochs,
                nats_per_dim,
                running,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
            anyhow::ensure!(nats_per_dim.is_finite(), "training diverged at epoch {} step {step}: loss {nats_per_dim}", epoch + 1);
            if (step + 1) % opts.checkpoint_every == 0 && step + 1 < steps_per_epoch {
                state.step = step + 1;
                state.add_elapsed();
                ckpt.save(&mut state, &model, &optim)?;
            }
        }
        let val = validation_bpd(&model, &valid, opts.seed);
        state.history.push((epoch + 1, running, val));
        crate::progress::println(&bar, format!("epoch {:>3}: train {:.4} bits/dim, validation ELBO {:.4} bits/dim", epoch + 1, running, val));
        state.epoch += 1;
        state.step = 0;
        state.add_elapsed();
        ckpt.save(&mut state, &model, &optim)?;
    }
    bar.finish_and_clear();
    Ok((model, state))
}
