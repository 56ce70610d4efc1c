//! GAN training: alternating Adam steps (lr 2e-4, β1 = 0.5) on the non-saturating loss with
//! one-sided label smoothing (real target 0.9), with the same progress, checkpoint and
//! `--resume` behaviour as the likelihood models.

use super::model::{Gan, GanConfig, Generator};
use crate::data::{self, Images};
use crate::families::checkpoint::{Checkpoint, TrainState};
use crate::families::loss::frames_to_tensor;
pub use crate::families::training::TrainOptions;
use anyhow::{bail, ensure, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, RunningState};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use edgegen_runtime::rng::Rng;
use std::time::Instant;

/// Stable `softplus(t) = ln(1 + e^t)`.
fn softplus<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    relu(t.clone()) + t.abs().neg().exp().log1p()
}

/// Real-label target of the discriminator (one-sided label smoothing).
pub const REAL_TARGET: f64 = 0.9;

/// Discriminator loss on real and fake logits (mean binary cross-entropy).
pub fn discriminator_loss(real: Tensor<2>, fake: Tensor<2>) -> Tensor<1> {
    let real_term = softplus(real.clone().neg()).mul_scalar(REAL_TARGET) + softplus(real).mul_scalar(1.0 - REAL_TARGET);
    real_term.mean() + softplus(fake).mean()
}

/// Non-saturating generator loss: −ln σ(D(G(z))).
pub fn generator_loss(fake: Tensor<2>) -> Tensor<1> {
    softplus(fake.neg()).mean()
}

fn noise(seed: u64, epoch: usize, step: usize, b: usize, latent: usize, device: &Device) -> Tensor<2> {
    let mut rng = Rng::with_stream(seed, ((epoch as u64) << 32) | step as u64);
    let mut v = vec![0f32; b * latent];
    rng.fill_normal(&mut v);
    Tensor::from_data(TensorData::new(v, [b, latent]), device)
}

/// The float tensors of a module (parameters and BatchNorm running statistics) in visiting
/// order, flattened and detached.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.dims().iter().product::<usize>();
        self.0.push(t.reshape([n]).detach());
    }
}

/// `ema ← β·ema + (1 − β)·source`, tensor by tensor in visiting order.
struct Blend {
    source: std::vec::IntoIter<Tensor<1>>,
    beta: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(src) = self.source.next() else { return param };
        let beta = self.beta;
        param.map(|t| {
            let dims = t.dims();
            (t.detach().mul_scalar(beta) + src.reshape(dims).mul_scalar(1.0 - beta)).detach()
        })
    }
}

/// Moves the exponential moving average `ema` (a generator on the inner device) towards
/// `current` with decay `beta`.
pub fn ema_update(ema: Generator, current: &Generator, beta: f64) -> Generator {
    let mut c = Collect(Vec::new());
    current.valid().visit(&mut c);
    ema.map(&mut Blend { source: c.0.into_iter(), beta })
}

/// Trains a GAN; returns it, the exponential moving average of its generator's weights
/// (`None` when `ema` is 0; Yazıcı et al. 2019: the averaged generator samples better than
/// the last iterate), the training state (history: epoch, mean D loss, mean G loss) and the
/// data it loaded.
///
/// `decay_from`: from this epoch on, both learning rates fall linearly to 0 at the last step
/// (a function of epoch and step, so `--resume` still reproduces the uninterrupted run).
pub fn train(
    cfg: &GanConfig,
    opts: &TrainOptions,
    ema: f64,
    decay_from: Option<usize>,
) -> Result<(Gan, Option<Gan>, TrainState, data::Parts)> {
    anyhow::ensure!(
        opts.device.0.len() == 1,
        "--device {}: the GAN's two-network loop trains on one device (the PixelCNN, VAE and classifier take several)",
        opts.device
    );
    let device = opts.device.main()?.autodiff();
    device.seed(opts.seed);
    let parts = opts.source.load(opts.progress)?;
    let (train, _) = crate::families::training::training_split(&parts, opts);
    let g = train.geometry()?;
    ensure!(
        (g.channels as usize, g.height as usize, g.width as usize) == (cfg.channels, cfg.height, cfg.width),
        "the GAN is shaped for {}x{}x{} frames, the data has {}x{}x{}",
        cfg.height,
        cfg.width,
        cfg.channels,
        g.height,
        g.width,
        g.channels
    );
    let adam = || AdamConfig::new().with_beta_1(0.5).with_beta_2(0.999).init();
    let mut gan = cfg.init(&device);
    let (mut opt_g, mut opt_d) = (adam(), adam());
    let ckpt = Checkpoint::new(&opts.run_dir);
    let mut state = TrainState::new(opts.seed, opts.epochs);
    // The averaged generator rides along in the checkpoint as a second `Gan` (its
    // discriminator is a copy, unused).
    let mut averaged: Option<Gan> = None;
    if opts.resume {
        // A checkpoint from before the average existed holds one module: the average then
        // starts from the resumed generator.
        let with_ema = ckpt.state()?.is_some_and(|s| s.files.len() == 4);
        let modules = if with_ema { vec![gan.clone(), gan.clone()] } else { vec![gan.clone()] };
        let Some((s, mut m, mut o)) = ckpt.load_all(modules, vec![opt_g, opt_d])? else {
            bail!("--resume: no checkpoint in {}", opts.run_dir.display());
        };
        eprintln!("resuming gan from {} at epoch {} step {}", opts.run_dir.display(), s.epoch + 1, s.step);
        opt_d = o.pop().expect("two optimizers");
        opt_g = o.pop().expect("two optimizers");
        if with_ema {
            averaged = m.pop().map(|a| a.valid());
        }
        gan = m.pop().expect("one module");
        state = s;
    }
    ensure!((0.0..1.0).contains(&ema), "--ema must be in [0, 1)");
    if ema > 0.0 && averaged.is_none() {
        averaged = Some(gan.valid());
    }
    if ema == 0.0 {
        averaged = None;
    }
    state.epochs = opts.epochs;
    let steps = train.len() / opts.batch;
    ensure!(steps > 0, "batch size {} exceeds the {} training images", opts.batch, train.len());
    let bar = crate::progress::bar(opts.progress, (steps * opts.epochs) as u64, "gan");
    bar.set_position((state.epoch * steps + state.step).min(steps * opts.epochs) as u64);
    let mut pixels = vec![0u8; opts.batch * g.values()];
    let mut labels = vec![0u8; opts.batch];
    let train_labels = match cfg.classes {
        0 => None,
        n => {
            let l = train.labels.as_deref().context("a conditional GAN needs labelled images (Fashion-MNIST)")?;
            ensure!(l.iter().all(|&y| (y as usize) < n), "the labels name more than --classes {n} classes");
            Some(l)
        }
    };
    let mut session_steps = 0usize;
    let latent = cfg.latent;
    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let order = data::permutation(train.len(), opts.seed.wrapping_add(epoch as u64));
        let started = Instant::now();
        // The epoch's loss sums: restored when a checkpoint interrupted the epoch.
        let (mut sum_d, mut sum_g, mut count) = match state.epoch_sums[..] {
            [d, g, n] if state.step > 0 => (d, g, n as usize),
            _ => (0f64, 0f64, 0usize),
        };
        for step in state.step..steps {
            let rows = &order[step * opts.batch..(step + 1) * opts.batch];
            fill_batch(&train, rows, &mut pixels);
            if let Some(l) = train_labels {
                for (y, &i) in labels.iter_mut().zip(rows) {
                    *y = l[i];
                }
            }
            let real = frames_to_tensor(&pixels, opts.batch, g, &device);

            // A conditional GAN draws its fakes of the real batch's classes (both steps), so
            // the classes appear as often as in the data.
            let lr = learning_rate(opts.lr, decay_from, opts.epochs, steps, epoch, step);
            let z = gan.generator.input(noise(opts.seed, epoch, 2 * step, opts.batch, latent, &device), &labels);
            let fake = gan.generator.forward(z).detach();
            let d_loss = discriminator_loss(gan.discriminator.forward(real, &labels), gan.discriminator.forward(fake, &labels));
            let ld: f32 = d_loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(d_loss.backward(), &gan.discriminator);
            gan.discriminator = opt_d.step(lr, gan.discriminator, grads);

            let z = gan.generator.input(noise(opts.seed, epoch, 2 * step + 1, opts.batch, latent, &device), &labels);
            let g_loss = generator_loss(gan.discriminator.forward(gan.generator.forward(z), &labels));
            let lg: f32 = g_loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(g_loss.backward(), &gan.generator);
            gan.generator = opt_g.step(lr, gan.generator, grads);
            if let Some(a) = averaged.as_mut() {
                a.generator = ema_update(a.generator.clone(), &gan.generator, ema);
            }

            ensure!(ld.is_finite() && lg.is_finite(), "gan diverged at epoch {} step {step}", epoch + 1);
            sum_d += ld as f64;
            sum_g += lg as f64;
            count += 1;
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} D {:.3} G {:.3}  {:.0} img/s",
                epoch + 1,
                opts.epochs,
                sum_d / count as f64,
                sum_g / count as f64,
                (count * opts.batch) as f64 / started.elapsed().as_secs_f64()
            ));
            session_steps += 1;
            let stop = opts.max_steps.is_some_and(|m| session_steps >= m);
            if ((step + 1) % opts.checkpoint_every == 0 || stop) && step + 1 < steps {
                state.step = step + 1;
                state.epoch_sums = vec![sum_d, sum_g, count as f64];
                state.add_elapsed();
                save(&ckpt, &mut state, &gan, averaged.as_ref(), &opt_g, &opt_d)?;
            }
            if stop && step + 1 < steps {
                crate::progress::finish(&bar);
                eprintln!("gan: stopped after {session_steps} steps at epoch {} step {}; continue with --resume", epoch + 1, step + 1);
                return Ok((gan, averaged, state, parts));
            }
        }
        let (d, g) = (sum_d / count.max(1) as f64, sum_g / count.max(1) as f64);
        state.history.push((epoch + 1, d, g));
        crate::progress::println(
            &bar,
            format!("gan epoch {:>3}: D loss {d:.4}, G loss {g:.4}, {:.0} s", epoch + 1, started.elapsed().as_secs_f64()),
        );
        state.epoch += 1;
        state.step = 0;
        state.epoch_sums.clear();
        state.add_elapsed();
        save(&ckpt, &mut state, &gan, averaged.as_ref(), &opt_g, &opt_d)?;
        if opts.max_steps.is_some_and(|m| session_steps >= m) && state.epoch < opts.epochs {
            crate::progress::finish(&bar);
            eprintln!("gan: stopped after {session_steps} steps at the end of epoch {}; continue with --resume", state.epoch);
            return Ok((gan, averaged, state, parts));
        }
    }
    crate::progress::finish(&bar);
    Ok((gan.valid(), averaged, state, parts))
}

/// The learning rate at `epoch`, `step` (of `steps` per epoch): `lr`, falling linearly from
/// epoch `decay_from` to 0 after the last step of epoch `epochs`.
pub fn learning_rate(lr: f64, decay_from: Option<usize>, epochs: usize, steps: usize, epoch: usize, step: usize) -> f64 {
    match decay_from {
        Some(from) if epoch >= from && epochs > from => {
            let done = ((epoch - from) * steps + step) as f64;
            lr * (1.0 - done / ((epochs - from) * steps) as f64)
        }
        _ => lr,
    }
}

/// Checkpoints the GAN, and its averaged generator when there is one.
fn save(
    ckpt: &Checkpoint,
    state: &mut TrainState,
    gan: &Gan,
    averaged: Option<&Gan>,
    opt_g: &burn::optim::ModuleOptimizer,
    opt_d: &burn::optim::ModuleOptimizer,
) -> Result<()> {
    match averaged {
        Some(a) => {
            let a = Gan { generator: a.generator.clone(), discriminator: gan.discriminator.valid() };
            ckpt.save_all(state, &[gan, &a], &[opt_g, opt_d])
        }
        None => ckpt.save_all(state, &[gan], &[opt_g, opt_d]),
    }
}

fn fill_batch(images: &Images, indices: &[usize], out: &mut [u8]) {
    let n = images.values();
    for (j, &idx) in indices.iter().enumerate() {
        out[j * n..(j + 1) * n].copy_from_slice(images.image(idx));
    }
}

/// Per-channel mean and (biased) variance of `[B, C, H, W]` activations, accumulated over
/// chunks in f64.
#[derive(Default)]
struct ChannelStats {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    count: f64,
}

impl ChannelStats {
    fn add(&mut self, h: &Tensor<4>) {
        let [b, c, hh, ww] = h.dims();
        let v = crate::families::loss::to_vec(h.clone());
        if self.sum.is_empty() {
            self.sum = vec![0.0; c];
            self.sum_sq = vec![0.0; c];
        }
        for (i, x) in v.iter().enumerate() {
            let ch = (i / (hh * ww)) % c;
            self.sum[ch] += *x as f64;
            self.sum_sq[ch] += (*x as f64) * (*x as f64);
        }
        self.count += (b * hh * ww) as f64;
    }

    fn state(&self, device: &Device) -> (RunningState<Tensor<1>>, RunningState<Tensor<1>>) {
        let mean: Vec<f32> = self.sum.iter().map(|s| (s / self.count) as f32).collect();
        let var: Vec<f32> =
            self.sum.iter().zip(&self.sum_sq).map(|(s, q)| (q / self.count - (s / self.count).powi(2)).max(0.0) as f32).collect();
        let c = mean.len();
        (
            RunningState::new(Tensor::from_data(TensorData::new(mean, [c]), device)),
            RunningState::new(Tensor::from_data(TensorData::new(var, [c]), device)),
        )
    }
}

/// Noise stream of the BatchNorm recalibration (apart from training's `(epoch << 32) | step`
/// streams and the FD's `Rng::new(seed)`).
const RECALIBRATION_STREAM: u64 = 0xB7C0_0000_0000_0000;

/// Replaces the BatchNorm running statistics of `generator` (an inference module) by the
/// exact statistics of its own activations over `samples` noise vectors, layer by layer.
///
/// The moving average of the weights also averages the running statistics, which were
/// measured under other weights; the averaged weights' own statistics are what inference
/// should normalize with (the population statistics BatchNorm's running averages estimate).
pub fn recalibrate_batchnorm(mut generator: Generator, samples: usize, seed: u64) -> Generator {
    if samples == 0 {
        return generator;
    }
    let device = crate::device::of(&generator);
    let latent = generator.latent();
    let mut rng = Rng::with_stream(seed, RECALIBRATION_STREAM);
    let mut z = vec![0f32; samples * latent];
    rng.fill_normal(&mut z);
    let chunk = 500;
    // Layer by layer: each layer's input comes through the layers already recalibrated.
    for layer in 0..generator.batchnorms() {
        let mut stats = ChannelStats::default();
        for i in (0..samples).step_by(chunk) {
            let rows = chunk.min(samples - i);
            let z = Tensor::<2>::from_data(TensorData::new(z[i * latent..(i + rows) * latent].to_vec(), [rows, latent]), &device);
            // A conditional generator's statistics over every class equally often.
            let labels: Vec<u8> = (i..i + rows).map(|j| (j % generator.classes.max(1)) as u8).collect();
            stats.add(&generator.pre_norm(generator.input(z, &labels), layer));
        }
        let (m, v) = stats.state(&device);
        let bn = generator.batchnorm_mut(layer);
        bn.running_mean = m;
        bn.running_var = v;
    }
    generator
}

/// Generates images for the noise of `seeds` (one z per seed from `Rng::new(seed)`), mapped
/// from the generator's (-1, 1) to 8-bit pixels; a conditional generator draws each seed's
/// class from the same stream after z (as the runtime's `Gan::sample` does).
pub fn generate(gan: &Gan, seeds: &[u64]) -> Vec<u8> {
    generate_class(gan, seeds, None)
}

/// [`generate`] with every image of class `class` (a conditional generator), or each
/// seed's own class (`None`).
pub fn generate_class(gan: &Gan, seeds: &[u64], class: Option<u8>) -> Vec<u8> {
    let generator = gan.generator.valid();
    let latent = generator.latent();
    let (c, h, w) = generator.image_dims();
    let mut out = Vec::with_capacity(seeds.len() * c * h * w);
    for chunk in seeds.chunks(500) {
        // The runtime's own input rule (`engine::seed_input`): noise, then the one-hot class.
        let n = generator.input_len();
        let mut z = vec![0f32; chunk.len() * n];
        for (i, &s) in chunk.iter().enumerate() {
            edgegen_runtime::engine::seed_input(s, latent, generator.classes, class.map(usize::from), &mut z[i * n..(i + 1) * n])
                .expect("the class is below the generator's classes");
        }
        let x = generator.forward(Tensor::from_data(TensorData::new(z, [chunk.len(), n]), &crate::device::of(&generator)));
        out.extend(crate::families::loss::to_vec(x).into_iter().map(edgegen_runtime::image::unscale_pixel));
    }
    out
}
