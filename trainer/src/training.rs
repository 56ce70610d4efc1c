//! The training loop shared by the likelihood models (VAE, PixelCNN): Adam on a per-image
//! loss in nats, a progress bar (loss, bits/dim, images/s), per-epoch validation, and
//! checkpoints that `--resume` continues from exactly where an interrupted run stopped
//! (the data order is a function of seed and epoch, and every step's noise of seed, epoch
//! and step, so a resumed run takes the same steps the uninterrupted run would have).

use crate::checkpoint::{Checkpoint, TrainState};
use crate::data::{self, Images};
use crate::loss::images_to_tensor;
use anyhow::{bail, ensure, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use edgegen_runtime::image::PIXELS;
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
    /// Fraction of training pixels replaced by uniform random values in every step (0 for
    /// ordinary training; > 0 trains the background model of the likelihood-ratio score,
    /// Ren et al. 2019). The noise is a function of seed, epoch and step, so `--resume`
    /// still reproduces the uninterrupted run.
    pub perturb: f64,
    /// L2 weight decay of Adam (0 for none).
    pub weight_decay: f64,
}

/// Replaces each pixel of `pixels` with probability `rate` by a uniform value in 0..=255.
pub fn perturb_pixels(pixels: &mut [u8], rate: f64, seed: u64, epoch: usize, step: usize) {
    if rate <= 0.0 {
        return;
    }
    let mut rng = edgegen_runtime::rng::Rng::with_stream(seed ^ 0x9e37_79b9_7f4a_7c15, ((epoch as u64) << 32) | step as u64);
    for p in pixels {
        if (rng.uniform() as f64) < rate {
            *p = rng.below(256) as u8;
        }
    }
}

/// The training and validation images for `opts` (validation cut to 500 on `--limit` runs).
pub fn datasets(opts: &TrainOptions) -> Result<(Images, Images)> {
    let mut train = data::fashion_mnist(data::Split::Train)?;
    if let Some(limit) = opts.limit {
        train = train.slice(0..limit.min(train.len()));
    }
    let valid = data::fashion_mnist(data::Split::Validation)?;
    let valid = if opts.limit.is_some() { valid.slice(0..500) } else { valid };
    Ok((train, valid))
}

/// Trains `model` (built on an autodiff device) with Adam to minimize the mean of `loss`,
/// which maps (model, images on the network scale `[B,1,28,28]`, epoch, step) to per-image
/// nats `[B]`. `validate` gives bits/dim on held-out images after every epoch.
pub fn fit<M, L, V>(label: &str, model: M, opts: &TrainOptions, train: &Images, loss: L, validate: V) -> Result<(M, TrainState)>
where
    M: Module + Clone,
    L: Fn(&M, Tensor<4>, usize, usize) -> Tensor<1>,
    V: Fn(&M) -> f64,
{
    let device = Device::flex().autodiff();
    let mut model = model;
    let mut adam = AdamConfig::new();
    if opts.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(opts.weight_decay as f32)));
    }
    let mut optim = adam.init();
    let ckpt = Checkpoint::new(&opts.run_dir);
    let mut state = TrainState::new(opts.seed, opts.epochs);
    if opts.resume {
        let Some((s, m, o)) = ckpt.load(model.clone(), optim)? else {
            bail!("--resume: no checkpoint in {}", opts.run_dir.display());
        };
        eprintln!("resuming {label} from {} at epoch {} step {}", opts.run_dir.display(), s.epoch + 1, s.step);
        (state, model, optim) = (s, m, o);
    }
    state.epochs = opts.epochs;

    let steps_per_epoch = train.len() / opts.batch;
    ensure!(steps_per_epoch > 0, "batch size {} exceeds the {} training images", opts.batch, train.len());
    let bar = crate::progress::bar(opts.progress, (steps_per_epoch * opts.epochs) as u64, label);
    bar.set_position((state.epoch * steps_per_epoch + state.step).min(steps_per_epoch * opts.epochs) as u64);
    let mut batch_pixels = vec![0u8; opts.batch * PIXELS];

    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let order = data::permutation(train.len(), opts.seed.wrapping_add(epoch as u64));
        let started = Instant::now();
        let mut seen = 0usize;
        let mut running = f64::NAN;
        for step in state.step..steps_per_epoch {
            for (j, &idx) in order[step * opts.batch..(step + 1) * opts.batch].iter().enumerate() {
                batch_pixels[j * PIXELS..(j + 1) * PIXELS].copy_from_slice(train.image(idx));
            }
            perturb_pixels(&mut batch_pixels, opts.perturb, opts.seed, epoch, step);
            let x = images_to_tensor(&batch_pixels, opts.batch, &device);
            let mean = loss(&model, x, epoch, step).mean().div_scalar(PIXELS as f64);
            let nats_per_dim: f32 = mean.clone().into_scalar();
            ensure!(nats_per_dim.is_finite(), "{label} diverged at epoch {} step {step}: loss {nats_per_dim}", epoch + 1);
            let grads = GradientsParams::from_grads(mean.backward(), &model);
            model = optim.step(opts.lr, model, grads);

            seen += opts.batch;
            let bpd = nats_per_dim as f64 / std::f64::consts::LN_2;
            running = if running.is_nan() { bpd } else { 0.98 * running + 0.02 * bpd };
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} nats/dim  {:.3} bits/dim  {:.0} img/s",
                epoch + 1,
                opts.epochs,
                nats_per_dim,
                running,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
            if (step + 1) % opts.checkpoint_every == 0 && step + 1 < steps_per_epoch {
                state.step = step + 1;
                state.add_elapsed();
                ckpt.save(&mut state, &model, &optim)?;
            }
        }
        let val = validate(&model);
        state.history.push((epoch + 1, running, val));
        crate::progress::println(
            &bar,
            format!(
                "{label} epoch {:>3}: train {running:.4} bits/dim, validation {val:.4} bits/dim, {:.0} s",
                epoch + 1,
                started.elapsed().as_secs_f64()
            ),
        );
        state.epoch += 1;
        state.step = 0;
        state.add_elapsed();
        ckpt.save(&mut state, &model, &optim)?;
    }
    bar.finish_and_clear();
    Ok((model, state))
}

#[cfg(test)]
mod tests {
    use super::perturb_pixels;

    #[test]
    fn perturbation_is_seeded_and_hits_its_rate() {
        let clean: Vec<u8> = (0..100_000).map(|i| (i % 7) as u8).collect();
        let mut a = clean.clone();
        perturb_pixels(&mut a, 0.0, 1, 0, 0);
        assert_eq!(a, clean, "rate 0 leaves images alone");
        perturb_pixels(&mut a, 0.15, 1, 2, 3);
        let mut b = clean.clone();
        perturb_pixels(&mut b, 0.15, 1, 2, 3);
        assert_eq!(a, b, "same seed, epoch and step: same noise");
        let mut c = clean.clone();
        perturb_pixels(&mut c, 0.15, 1, 2, 4);
        assert_ne!(a, c, "another step: other noise");
        // A replaced pixel keeps its value with probability 1/256.
        let changed = a.iter().zip(&clean).filter(|(x, y)| x != y).count() as f64 / clean.len() as f64;
        assert!((changed - 0.15 * 255.0 / 256.0).abs() < 0.005, "changed {changed}");
    }
}
