//! `edgegen train classifier`: its arguments (saved as the run's config) and the whole job —
//! train, export ONNX, golden vectors, test accuracy, card.

use super::{export, training, ClassifierConfig};
use crate::families::training::{reproduce_command, save_config, CommonArgs};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `edgegen train classifier`.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassifierArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Channels of the convolutions.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Units of the dense feature layer.
    #[arg(long, default_value_t = 64)]
    pub features: usize,
    /// Where the published artifacts go (never `models/` unless named).
    #[arg(long, default_value = "runs/classifier-fmnist/model")]
    pub out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/classifier-fmnist")]
    pub run_dir: PathBuf,
}

/// Trains and publishes a classifier.
pub fn run(mut a: ClassifierArgs) -> Result<()> {
    a.common.resolve(1e-3)?;
    let c = &a.common;
    let opts = c.options(&a.run_dir)?;
    if !opts.source.is_fashion_mnist() {
        bail!("edgegen train classifier needs labelled images: Fashion-MNIST (the default --data); a folder of frames has no labels");
    }
    let g = opts.source.geometry();
    let cfg = ClassifierConfig::new()
        .with_width(a.width)
        .with_features(a.features)
        .with_channels(g.channels as usize)
        .with_height(g.height as usize)
        .with_width_px(g.width as usize);
    cfg.check()?;
    let command = reproduce_command("classifier", &a)?;
    save_config(&a.run_dir, &a)?;
    let parts = opts.source.load(opts.progress)?;
    let (model, state) = training::train_on(&cfg, &opts, &parts)?;
    if state.epoch < a.common.epochs {
        return Ok(());
    }
    eprintln!("publishing to {}", a.out.display());
    std::fs::create_dir_all(&a.out)?;
    crate::export::onnx::save(&export::classifier_onnx(&model), &a.out.join("classifier.onnx"))?;
    export::write_golden(&model, &parts.test.first(Some(3)), &a.out)?;
    let test = parts.test.first(c.eval_count());
    let acc = training::accuracy(&model, &test)?;
    export::write_card(
        &model,
        acc,
        test.len(),
        &state,
        &command,
        Some(serde_json::to_value(&a)?),
        &c.dataset_note(true, &opts.source, parts.train.len()),
        &opts.source,
        &a.out,
    )?;
    println!("test accuracy {:.2}% on {} images; {:.0} s of training", 100.0 * acc, test.len(), state.elapsed_seconds);
    Ok(())
}
