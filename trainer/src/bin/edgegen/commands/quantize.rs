//! `edgegen quantize`: calibrate and quantize a published model to int8 (QDQ ONNX), then compile it.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory (with card.json and the f32 ONNX files).
    #[arg(long)]
    model: PathBuf,
    /// Training images used for calibration.
    #[arg(long, default_value_t = 1000)]
    calibration: usize,
    /// How each activation's range is chosen: `minmax` (the extremes seen) or
    /// `percentile:P` (the P-th and (100-P)-th percentiles, e.g. percentile:99.99).
    #[arg(long, default_value = "minmax")]
    ranges: edgegen_trainer::int8::quantize::RangeMethod,
    /// Refit a PixelCNN's mixture head to the int8 network's features: a per-channel
    /// scale and offset fitted by maximum likelihood on calibration images, folded into the
    /// last layer (its int8 weights unchanged) and kept in calibration.json. Lowers the int8
    /// bits/dim; off by default because it also moves the per-pixel likelihoods the guard's
    /// ratio terms compare with the background model (see docs/models.md).
    #[arg(long)]
    head_fit: bool,
    /// Seed choosing the calibration images.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs `edgegen quantize`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::int8::quantize_dir(&a.model, a.calibration, a.seed, a.ranges, a.head_fit, !a.quiet)
}
