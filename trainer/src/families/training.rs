//! The training loop shared by the likelihood models (VAE, PixelCNN): Adam on a per-image
//! loss in nats, a progress bar (loss, bits/dim, images/s), per-epoch validation, and
//! checkpoints that `--resume` continues from exactly where an interrupted run stopped
//! (the data order is a function of seed and epoch, and every step's noise of seed, epoch
//! and step, so a resumed run takes the same steps the uninterrupted run would have).

use crate::data::{self, Images};
use crate::families::checkpoint::{Checkpoint, TrainState};
use crate::families::loss::frames_to_tensor;
use anyhow::{bail, ensure, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use std::f64::consts::LN_2;
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
    /// Decay the learning rate along a half cosine to zero over the run.
    pub cosine: bool,
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
    /// Stop after this many steps of this session, with a checkpoint (`--resume` goes on).
    pub max_steps: Option<usize>,
    /// The images.
    pub source: data::Source,
    /// Where the training computation runs (`--device`): one device, or several that share
    /// each batch.
    pub device: crate::device::Devices,
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

/// Validation images of a `--limit` run.
pub const QUICK_VALIDATION: usize = 500;

/// Test images (and outlier images, and samples) a `--limit` run's published figures are
/// measured on unless `--eval-count` says otherwise: a smoke run ends in seconds.
pub const QUICK_EVAL: usize = 128;

/// The training and validation images of loaded `parts` for `opts` (the first `--limit`
/// training images; validation cut to [`QUICK_VALIDATION`] on `--limit` runs).
pub fn training_split(parts: &data::Parts, opts: &TrainOptions) -> (Images, Images) {
    let valid = if opts.limit.is_some() { parts.validation.first(Some(QUICK_VALIDATION)) } else { parts.validation.clone() };
    (parts.train.first(opts.limit), valid)
}

/// What a family's loss and validation figure are, for the progress bar and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// Per-image nats of a likelihood model: shown as bits/dim (validation too).
    BitsPerDim,
    /// Per-image cross-entropy of a classifier: shown in nats; validation is an accuracy.
    CrossEntropy,
}

/// Trains `model` (built on the first of `opts.device`, autodiff) with Adam to minimize the
/// mean of `loss`, which maps (model, images on the network scale, epoch, step, rows) to
/// per-image nats: `rows` are the rows of the step's batch the images are (all of them on one
/// device; each device's share with several), so per-step noise or labels can follow them.
/// `validate` gives the held-out figure after every epoch (bits/dim, or an accuracy: `units`).
///
/// With several devices every step is data parallel, as burn's own multi-device training
/// does it: the model is forked to each device, each computes the gradient of its share of
/// the batch mean, the gradients are moved to the first device and summed
/// (`GradientsAccumulator`), and the optimizer steps there — the same update as one device
/// on the whole batch, up to float summation order. The shares run one after another (a GPU
/// backend queues its work asynchronously, so devices overlap as far as the queue allows).
pub fn fit<M, L, V>(
    label: &str,
    units: Units,
    model: M,
    opts: &TrainOptions,
    train: &Images,
    loss: L,
    validate: V,
) -> Result<(M, TrainState)>
where
    M: Module + Clone,
    L: Fn(&M, Tensor<4>, usize, usize, std::ops::Range<usize>) -> Tensor<1>,
    V: Fn(&M) -> f64,
{
    let devices: Vec<Device> = opts.device.devices()?.into_iter().map(Device::autodiff).collect();
    let device = devices[0].clone();
    ensure!(opts.batch >= devices.len(), "--batch {} is smaller than the {} devices that share it", opts.batch, devices.len());
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
        if s.epoch >= opts.epochs {
            eprintln!("{label}: the run in {} has finished its {} epochs; publishing it", opts.run_dir.display(), s.epoch);
        } else {
            eprintln!("resuming {label} from {} at epoch {} step {}", opts.run_dir.display(), s.epoch + 1, s.step);
        }
        (state, model, optim) = (s, m, o);
    }
    state.epochs = opts.epochs;

    let steps_per_epoch = train.len() / opts.batch;
    ensure!(steps_per_epoch > 0, "batch size {} exceeds the {} training images", opts.batch, train.len());
    let bar = crate::progress::bar(opts.progress, (steps_per_epoch * opts.epochs) as u64, label);
    bar.set_position((state.epoch * steps_per_epoch + state.step).min(steps_per_epoch * opts.epochs) as u64);
    let (values, geometry) = (train.values(), train.geometry()?);
    let mut batch_pixels = vec![0u8; opts.batch * values];
    let mut session_steps = 0usize;

    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let order = data::permutation(train.len(), opts.seed.wrapping_add(epoch as u64));
        let started = Instant::now();
        let mut seen = 0usize;
        // The epoch's running loss: restored when a checkpoint interrupted the epoch, so the
        // history is the same whether or not the run was resumed.
        let mut running = if state.step > 0 { state.epoch_sums.first().copied().unwrap_or(f64::NAN) } else { f64::NAN };
        for step in state.step..steps_per_epoch {
            for (j, &idx) in order[step * opts.batch..(step + 1) * opts.batch].iter().enumerate() {
                batch_pixels[j * values..(j + 1) * values].copy_from_slice(train.image(idx));
            }
            perturb_pixels(&mut batch_pixels, opts.perturb, opts.seed, epoch, step);
            let per = if units == Units::BitsPerDim { values as f64 } else { 1.0 };
            let (nats_per_dim, grads) = if devices.len() == 1 {
                let x = frames_to_tensor(&batch_pixels, opts.batch, geometry, &device);
                let mean = loss(&model, x, epoch, step, 0..opts.batch).mean().div_scalar(per);
                let nats: f32 = mean.clone().into_scalar();
                (nats, GradientsParams::from_grads(mean.backward(), &model))
            } else {
                let mut acc = burn::optim::GradientsAccumulator::new();
                let mut nats = 0f32;
                for (i, d) in devices.iter().enumerate() {
                    let rows = i * opts.batch / devices.len()..(i + 1) * opts.batch / devices.len();
                    let share = if i == 0 { model.clone() } else { model.clone().fork(d) };
                    let x = frames_to_tensor(&batch_pixels[rows.start * values..rows.end * values], rows.len(), geometry, d);
                    // This share's part of the batch mean.
                    let part = loss(&share, x, epoch, step, rows).sum().div_scalar(per * opts.batch as f64);
                    let v: f32 = part.clone().into_scalar();
                    nats += v;
                    acc.accumulate(&model, GradientsParams::from_grads(part.backward(), &share).to_device(&device, &model));
                }
                (nats, acc.grads())
            };
            ensure!(nats_per_dim.is_finite(), "{label} diverged at epoch {} step {step}: loss {nats_per_dim}", epoch + 1);
            let lr = scheduled_lr(opts.lr, opts.cosine, epoch * steps_per_epoch + step, opts.epochs * steps_per_epoch);
            model = optim.step(lr, model, grads);

            seen += opts.batch;
            let bpd = nats_per_dim as f64 / std::f64::consts::LN_2;
            running = if running.is_nan() { bpd } else { 0.98 * running + 0.02 * bpd };
            bar.inc(1);
            let rate = seen as f64 / started.elapsed().as_secs_f64();
            bar.set_message(match units {
                Units::BitsPerDim => {
                    format!("epoch {}/{} loss {nats_per_dim:.4} nats/dim  {running:.3} bits/dim  {rate:.0} img/s", epoch + 1, opts.epochs)
                }
                Units::CrossEntropy => {
                    format!("epoch {}/{} cross-entropy {:.4} nats  {rate:.0} img/s", epoch + 1, opts.epochs, running * LN_2)
                }
            });
            session_steps += 1;
            let stop = opts.max_steps.is_some_and(|m| session_steps >= m);
            if ((step + 1) % opts.checkpoint_every == 0 || stop) && step + 1 < steps_per_epoch {
                state.step = step + 1;
                state.epoch_sums = if running.is_nan() { Vec::new() } else { vec![running] };
                state.add_elapsed();
                ckpt.save(&mut state, &model, &optim)?;
            }
            if stop && step + 1 < steps_per_epoch {
                crate::progress::finish(&bar);
                eprintln!("{label}: stopped after {session_steps} steps at epoch {} step {}; continue with --resume", epoch + 1, step + 1);
                return Ok((model, state));
            }
        }
        let val = validate(&model);
        // The history keeps the figure as shown: bits/dim, or cross-entropy in nats.
        state.history.push((epoch + 1, if units == Units::CrossEntropy { running * LN_2 } else { running }, val));
        let secs = started.elapsed().as_secs_f64();
        crate::progress::println(
            &bar,
            match units {
                Units::BitsPerDim => {
                    format!("{label} epoch {:>3}: train {running:.4} bits/dim, validation {val:.4} bits/dim, {secs:.0} s", epoch + 1)
                }
                Units::CrossEntropy => format!(
                    "{label} epoch {:>3}: train cross-entropy {:.4} nats, validation accuracy {:.2}%, {secs:.0} s",
                    epoch + 1,
                    running * LN_2,
                    100.0 * val
                ),
            },
        );
        state.epoch += 1;
        state.step = 0;
        state.epoch_sums.clear();
        state.add_elapsed();
        ckpt.save(&mut state, &model, &optim)?;
        if opts.max_steps.is_some_and(|m| session_steps >= m) && state.epoch < opts.epochs {
            crate::progress::finish(&bar);
            eprintln!("{label}: stopped after {session_steps} steps at the end of epoch {}; continue with --resume", state.epoch);
            return Ok((model, state));
        }
    }
    crate::progress::finish(&bar);
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

/// The learning rate of global step `step` of `total`: `lr`, or with `cosine` the half
/// cosine from `lr` down to zero (a function of the step alone, so a resumed run follows the
/// same curve).
pub fn scheduled_lr(lr: f64, cosine: bool, step: usize, total: usize) -> f64 {
    if !cosine || total == 0 {
        return lr;
    }
    lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos())
}

/// The arguments every `edgegen train <family>` takes. Saved with the run (`config.json`) and
/// turned back into the command that reproduces it ([`reproduce_command`]).
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CommonArgs {
    /// Epochs over the 55,000 training images.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam learning rate [default: 1e-3; 2e-4 for the GAN].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Decay the learning rate along a half cosine from --lr to zero over the whole run
    /// (all --epochs; a resumed run continues the same curve). VAE and PixelCNN.
    #[arg(long)]
    #[serde(default)]
    pub cosine: bool,
    /// Seed of initialization, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train on the first N images only (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub data: data::DataArgs,
    /// Continue the run in --run-dir from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Steps between mid-epoch checkpoints.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Replace this fraction of training pixels by uniform noise in every step: trains the
    /// background model of the likelihood-ratio score (Ren et al. 2019 use 0.1-0.3).
    #[arg(long, default_value_t = 0.0)]
    pub perturb: f64,
    /// Adam L2 weight decay (Ren et al. regularize the background model).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Measure the published figures (test bits/dim, outlier bits/dim, the GAN's FD) on the
    /// first N test images, N MNIST digits and N samples [default: all 10,000; with --limit,
    /// min(--limit, 128), so that a quick run ends in seconds].
    #[arg(long)]
    pub eval_count: Option<usize>,
    /// Train at most N steps in this session, then checkpoint and stop without publishing
    /// (continue with --resume): for time-boxed sessions.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Where to train: cpu (burn's flex backend), vulkan[:N|:cpu], wgpu[:N|:cpu] or cuda[:N];
    /// several, comma-separated (cuda:0,cuda:1), share each batch (data parallel). The GPU
    /// backends need a build with their cargo feature (docs/gpu.md). A checkpoint written on
    /// one device resumes on another.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Arguments that change how a run is carried out, never what it computes: left out of the
/// reproduce command.
const OPERATIONAL: [&str; 5] = ["resume", "checkpoint_every", "quiet", "max_steps", "device"];

impl CommonArgs {
    /// Checks the ranges clap cannot express; fills in the family's learning rate.
    pub fn resolve(&mut self, default_lr: f64) -> Result<()> {
        if self.epochs == 0 || self.batch == 0 || self.checkpoint_every == 0 || self.max_steps == Some(0) || self.eval_count == Some(0) {
            bail!("--epochs, --batch, --checkpoint-every, --max-steps and --eval-count must be positive");
        }
        if !(0.0..1.0).contains(&self.perturb) || !(0.0..1.0).contains(&self.weight_decay) {
            bail!("--perturb and --weight-decay must be in [0, 1)");
        }
        self.data.source()?;
        crate::device::Devices::parse(&self.device)?.devices()?;
        let lr = *self.lr.get_or_insert(default_lr);
        if !(lr > 0.0 && lr < 1.0) {
            bail!("--lr must be in (0, 1), got {lr}");
        }
        Ok(())
    }

    /// How many test images (and outlier images, and samples) the published figures are
    /// measured on: `--eval-count`, else min(`--limit`, [`QUICK_EVAL`]) on a `--limit` run, else all.
    pub fn eval_count(&self) -> Option<usize> {
        self.eval_count.or(self.limit.map(|l| l.min(QUICK_EVAL)))
    }

    /// The card's `dataset`: what the run trained on (`validation`: whether the family
    /// validates on the held-out images; `train_images`: how many training images the
    /// source has).
    pub fn dataset_note(&self, validation: bool, source: &data::Source, train_images: usize) -> String {
        let n = self.limit.map_or(train_images, |l| l.min(train_images));
        if source.is_fashion_mnist() {
            let held_out = if validation { "; last 5,000 held out for validation" } else { "" };
            return format!(
                "Fashion-MNIST (Debian dataset-fashion-mnist): trained on the first {} training images{held_out}",
                thousands(n)
            );
        }
        format!(
            "{}: trained on the first {} of its {} training frames; its validation and test parts held out",
            source.describe(),
            thousands(n),
            thousands(train_images)
        )
    }

    /// The loop's settings (after [`CommonArgs::resolve`]).
    pub fn options(&self, run_dir: &std::path::Path) -> Result<TrainOptions> {
        Ok(TrainOptions {
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr.unwrap_or(1e-3),
            cosine: self.cosine,
            seed: self.seed,
            limit: self.limit,
            run_dir: run_dir.to_path_buf(),
            resume: self.resume,
            checkpoint_every: self.checkpoint_every,
            progress: !self.quiet,
            perturb: self.perturb,
            weight_decay: self.weight_decay,
            max_steps: self.max_steps,
            source: self.data.source()?,
            device: crate::device::Devices::parse(&self.device)?,
        })
    }
}

/// `n` with a comma between groups of three digits: 55,000.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The command that reproduces a run from its arguments: `cargo edgegen train <family>`, then
/// every argument that affects the result (flags in alphabetical order, booleans only when
/// set, absent options left out), `--out` always and `--run-dir` where it is not the family's
/// default. Derived from the arguments' own fields, so a new argument appears in
/// every card without being typed twice.
pub fn reproduce_command<A: clap::Args + clap::FromArgMatches + serde::Serialize>(family: &str, args: &A) -> Result<String> {
    let defaults = {
        let matches = A::augment_args(clap::Command::new("edgegen")).try_get_matches_from(["edgegen"])?;
        serde_json::to_value(A::from_arg_matches(&matches)?)?
    };
    let serde_json::Value::Object(fields) = serde_json::to_value(args)? else {
        bail!("training arguments must serialize as an object");
    };
    let mut command = format!("cargo edgegen train {family}");
    for (name, value) in &fields {
        // `--out` always appears (where the artifacts land is part of the command); the
        // checkpoint directory only when it is not the family's default.
        let placement = name == "run_dir";
        if OPERATIONAL.contains(&name.as_str()) || (placement && defaults.get(name) == Some(value)) {
            continue;
        }
        let flag = format!(" --{}", name.replace('_', "-"));
        match value {
            serde_json::Value::Null | serde_json::Value::Bool(false) => {}
            serde_json::Value::Bool(true) => command += &flag,
            serde_json::Value::String(s) => command += &format!("{flag} {s}"),
            v => command += &format!("{flag} {v}"),
        }
    }
    Ok(command)
}

/// Writes the run's arguments to `run_dir/config.json` (atomically), beside its checkpoints.
pub fn save_config<A: serde::Serialize>(run_dir: &std::path::Path, args: &A) -> Result<()> {
    std::fs::create_dir_all(run_dir)?;
    data::write_atomic(&run_dir.join("config.json"), serde_json::to_string_pretty(args)?.as_bytes())
}

#[cfg(test)]
mod reproduce_tests {
    use super::*;

    #[test]
    fn cosine_schedule_runs_from_the_rate_to_zero() {
        assert_eq!(scheduled_lr(1e-3, false, 70, 100), 1e-3);
        assert_eq!(scheduled_lr(1e-3, true, 0, 100), 1e-3);
        assert!((scheduled_lr(1e-3, true, 50, 100) - 5e-4).abs() < 1e-15);
        assert!(scheduled_lr(1e-3, true, 99, 100) < 1e-6);
        assert!(scheduled_lr(1e-3, true, 30, 100) > scheduled_lr(1e-3, true, 31, 100));
    }
    use clap::{Args, FromArgMatches};

    fn parse<A: Args + FromArgMatches>(words: &[&str]) -> A {
        let matches = A::augment_args(clap::Command::new("edgegen")).try_get_matches_from(words).unwrap();
        A::from_arg_matches(&matches).unwrap()
    }

    /// The card's command, run again, gives the same arguments: for every family, with
    /// defaults, changed values, options, flags and output directories.
    #[test]
    fn reproduce_command_parses_back_to_the_same_arguments() {
        fn round_trip<A: Args + FromArgMatches + serde::Serialize>(family: &str, words: &[&str], fix: impl Fn(&mut A)) {
            let mut args: A = parse(words);
            fix(&mut args);
            let command = reproduce_command(family, &args).unwrap();
            let prefix = format!("cargo edgegen train {family}");
            let rest = command.strip_prefix(&prefix).unwrap_or_else(|| panic!("{command}"));
            let again: A = parse(&std::iter::once("edgegen").chain(rest.split_whitespace()).collect::<Vec<_>>());
            let mut expected = serde_json::to_value(&args).unwrap();
            for key in OPERATIONAL {
                expected[key] = serde_json::to_value(parse::<A>(&["edgegen"])).unwrap()[key].clone();
            }
            assert_eq!(serde_json::to_value(&again).unwrap(), expected, "{command}");
            assert!(!command.contains("--quiet") && !command.contains("--resume"), "{command}");
        }
        let lr = |c: &mut CommonArgs| c.resolve(1e-3).unwrap();
        round_trip::<crate::families::vae::run::VaeArgs>("vae", &["edgegen"], |a| lr(&mut a.common));
        round_trip::<crate::families::vae::run::VaeArgs>(
            "vae",
            &["edgegen", "--epochs", "3", "--limit", "64", "--quiet", "--latent", "8"],
            |a| lr(&mut a.common),
        );
        round_trip::<crate::families::pixelcnn::run::PixelCnnArgs>(
            "pixelcnn",
            &["edgegen", "--out", "models/x-bg", "--run-dir", "runs/x", "--perturb", "0.15", "--weight-decay", "0.0001", "--resume"],
            |a| lr(&mut a.common),
        );
        round_trip::<crate::families::classifier::run::ClassifierArgs>(
            "classifier",
            &["edgegen", "--width", "8", "--features", "32", "--cosine"],
            |a| lr(&mut a.common),
        );
        round_trip::<crate::families::gan::run::GanArgs>(
            "gan",
            &["edgegen", "--lr-decay-from", "16", "--ema", "0", "--d-layers", "3"],
            |a| a.common.resolve(2e-4).unwrap(),
        );
        let mut a: crate::families::vae::run::VaeArgs = parse(&["edgegen"]);
        a.common.resolve(1e-3).unwrap();
        let command = reproduce_command("vae", &a).unwrap();
        assert!(
            command.contains(" --lr 0.001") && command.contains(" --out runs/vae-fmnist/model") && !command.contains("--run-dir"),
            "{command}"
        );
    }

    /// A run that names no output never writes into `models/` (the bundled models).
    #[test]
    fn default_outputs_stay_out_of_models() {
        let vae: crate::families::vae::run::VaeArgs = parse(&["edgegen"]);
        let pixelcnn: crate::families::pixelcnn::run::PixelCnnArgs = parse(&["edgegen"]);
        let gan: crate::families::gan::run::GanArgs = parse(&["edgegen"]);
        let classifier: crate::families::classifier::run::ClassifierArgs = parse(&["edgegen"]);
        for out in [&vae.out, &pixelcnn.out, &gan.out, &classifier.out, &vae.run_dir, &pixelcnn.run_dir, &gan.run_dir, &classifier.run_dir]
        {
            assert!(out.starts_with("runs"), "{}", out.display());
        }
    }

    /// Published figures follow `--limit` unless `--eval-count` says otherwise.
    #[test]
    fn evaluation_follows_limit_or_eval_count() {
        let count = |words: &[&str]| parse::<CommonArgs>(words).eval_count();
        assert_eq!(count(&["edgegen"]), None, "a full run measures everything");
        assert_eq!(count(&["edgegen", "--limit", "64"]), Some(64));
        assert_eq!(count(&["edgegen", "--limit", "128"]), Some(QUICK_EVAL));
        assert_eq!(count(&["edgegen", "--limit", "4096"]), Some(QUICK_EVAL));
        assert_eq!(count(&["edgegen", "--limit", "64", "--eval-count", "2000"]), Some(2000));
        assert_eq!(count(&["edgegen", "--eval-count", "100"]), Some(100));
        let mut zero: CommonArgs = parse(&["edgegen", "--eval-count", "0"]);
        assert!(zero.resolve(1e-3).is_err());
        assert_eq!(thousands(55_000), "55,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
