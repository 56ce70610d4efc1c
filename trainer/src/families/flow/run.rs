//! `edgegen train flow`: its arguments (saved as the run's config) and the whole job —
//! train, measure, export both graphs, golden vectors, samples, card.

use super::{export, training, FlowConfig};
use crate::families::training::{reproduce_command, save_config, CommonArgs};
use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen train flow`.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FlowArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Hidden channels of each coupling's network.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Residual 3x3 blocks in each coupling's network.
    #[arg(long, default_value_t = 1)]
    pub blocks: usize,
    /// Checkerboard couplings at full resolution, before the squeeze.
    #[arg(long, default_value_t = 3)]
    pub pre: usize,
    /// Channel couplings after the squeeze.
    #[arg(long, default_value_t = 3)]
    pub channel: usize,
    /// Checkerboard couplings after the channel ones (half resolution).
    #[arg(long, default_value_t = 3)]
    pub post: usize,
    /// Where the published artifacts go (never `models/` unless named).
    #[arg(long, default_value = "runs/flow-fmnist/model")]
    pub out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/flow-fmnist")]
    pub run_dir: PathBuf,
}

/// Trains and publishes a flow.
pub fn run(mut a: FlowArgs) -> Result<()> {
    a.common.resolve(1e-3)?;
    let opts = a.common.options(&a.run_dir)?;
    let g = opts.source.geometry();
    let cfg = FlowConfig::new()
        .with_channels(g.channels as usize)
        .with_height(g.height as usize)
        .with_width(g.width as usize)
        .with_hidden(a.hidden)
        .with_blocks(a.blocks)
        .with_pre(a.pre)
        .with_channel(a.channel)
        .with_post(a.post);
    cfg.check()?;
    let command = reproduce_command("flow", &a)?;
    save_config(&a.run_dir, &a)?;
    let (model, state, parts) = training::train(&cfg, &opts)?;
    if state.epoch < a.common.epochs {
        // --max-steps ended the session early: nothing is published until the run is done.
        return Ok(());
    }
    let model = burn::module::Module::valid(&model);
    eprintln!("measuring and publishing to {}", a.out.display());
    let test = parts.test.first(a.common.eval_count());
    let test_bpd = training::mean_bpd(&model, &test, a.common.seed);
    let mnist = match opts.source.is_fashion_mnist() {
        true => {
            let digits = crate::data::mnist_digits()?.first(a.common.eval_count());
            Some((training::mean_bpd(&model, &digits, a.common.seed), digits.len()))
        }
        false => None,
    };
    let dataset = a.common.dataset_note(true, &opts.source, parts.train.len());
    let architecture = serde_json::json!({
        "kind": "RealNVP: affine couplings (s = scale * tanh, per channel), checkerboard masks, a 2x2 squeeze, channel masks; logit transform alpha 0.05, uniform dequantization",
        "hidden": a.hidden, "blocks": a.blocks, "pre": a.pre, "channel": a.channel, "post": a.post,
    });
    let data = export::PublishData { test_bpd, test_images: test.len(), mnist, dataset: &dataset, source: &opts.source, architecture };
    export::publish(&model, &state, &command, Some(serde_json::to_value(&a)?), &a.out, &test, &data)?;
    match mnist {
        Some((m, _)) => println!("test {test_bpd:.4} bits/dim; MNIST {m:.4} bits/dim; {:.0} s of training", state.elapsed_seconds),
        None => println!("test {test_bpd:.4} bits/dim; {:.0} s of training", state.elapsed_seconds),
    }
    Ok(())
}
