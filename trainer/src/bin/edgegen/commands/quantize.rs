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
    /// Seed choosing the calibration images.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs `edgegen quantize`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::int8::quantize_dir(&a.model, a.calibration, a.seed, !a.quiet)
}
