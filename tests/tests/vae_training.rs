//! VAE training: a few steps lower the loss, and a resumed run continues exactly.
//! Needs Fashion-MNIST (`edgegen data fetch`; the test command installs it).

mod common;

use burn::module::Module;
use edgegen_trainer::families::loss::to_vec;
use edgegen_trainer::families::vae::training::{train, TrainOptions};
use edgegen_trainer::families::vae::VaeConfig;

fn opts(run_dir: std::path::PathBuf, epochs: usize, resume: bool) -> TrainOptions {
    TrainOptions {
        epochs,
        batch: 32,
        lr: 2e-3,
        cosine: false,
        seed: 5,
        limit: Some(1024),
        run_dir,
        resume,
        checkpoint_every: 3,
        progress: false,
        perturb: 0.0,
        weight_decay: 0.0,
        max_steps: None,
        source: edgegen_trainer::data::Source::FashionMnist,
        device: Default::default(),
    }
}

fn weights(m: &edgegen_trainer::families::vae::Vae) -> Vec<f32> {
    let m = m.valid();
    let mut v = to_vec(m.decoder.head.weight.val());
    v.extend(to_vec(m.encoder.fc_mu.weight.val()));
    v
}

#[test]
fn few_steps_lower_the_loss_and_resume_is_exact() {
    let cfg = VaeConfig::new().with_latent(8).with_components(2);
    let dir = common::temp_dir("vae-train");

    let (full, state) = train(&cfg, &opts(dir.join("full"), 2, false)).unwrap();
    assert_eq!(state.history.len(), 2);
    let (first_train, _) = (state.history[0].1, state.history[0].2);
    let (_, last_val) = (state.history[1].1, state.history[1].2);
    // Validation bits/dim after two short epochs must beat the untrained model's by a margin.
    let untrained = edgegen_trainer::families::vae::training::validation_bpd(
        &cfg.init(&burn::prelude::Device::flex()),
        &edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Validation).unwrap().slice(0..500),
        5,
    );
    assert!(last_val < untrained - 0.25, "validation {last_val} vs untrained {untrained} (first epoch train {first_train})");

    let (_, s1) = train(&cfg, &opts(dir.join("resumed"), 1, false)).unwrap();
    assert_eq!(s1.epoch, 1);
    let (resumed, s2) = train(&cfg, &opts(dir.join("resumed"), 2, true)).unwrap();
    assert_eq!(s2.epoch, 2);
    let d = common::max_abs_diff(&weights(&full), &weights(&resumed));
    assert!(d < 1e-5, "resumed run differs from the uninterrupted one by {d}");
    // Interrupted in the middle of an epoch (--max-steps: epoch 2, step 8 of 32, between two
    // checkpoints) and resumed: the same weights and the same history, the resumed epoch's
    // running loss included.
    let mut stopped = opts(dir.join("stopped"), 2, false);
    stopped.max_steps = Some(40);
    let (_, s3) = train(&cfg, &stopped).unwrap();
    assert_eq!((s3.epoch, s3.step, s3.history.len()), (1, 8, 1));
    let (again, s4) = train(&cfg, &opts(dir.join("stopped"), 2, true)).unwrap();
    let d = common::max_abs_diff(&weights(&full), &weights(&again));
    assert!(d < 1e-5, "a run stopped mid-epoch and resumed differs by {d}");
    common::assert_same_history(&s4.history, &state.history);
    // Only the last checkpoint is kept.
    let files = std::fs::read_dir(dir.join("resumed")).unwrap().count();
    assert_eq!(files, 3, "expected module, optimizer and state.json");
    std::fs::remove_dir_all(dir).ok();
}
