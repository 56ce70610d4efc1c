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
    /// Seed choosing the calibration images.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs `edgegen quantize`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::int8::quantize_dir(&a.model, a.calibration, a.seed, a.ranges, !a.quiet)
}
