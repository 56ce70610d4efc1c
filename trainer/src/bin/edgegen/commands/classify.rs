//! `edgegen classify`: the class of each frame and the guard's verdict; a label only for the
//! frames the guard accepts.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen classify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The classifier's directory.
    #[arg(long, default_value = "models/classifier-fmnist")]
    model: PathBuf,
    /// The guard: a calibrated PixelCNN's directory.
    #[arg(long, default_value = "models/pixelcnn-fmnist")]
    guard: PathBuf,
    /// Engine.
    #[arg(long, value_enum, default_value = "int8")]
    engine: edgegen_trainer::eval::score::EngineKind,
    /// Pictures (PNG, JPEG, BMP, TIFF, PGM/PPM) or IDX image files.
    files: Vec<PathBuf>,
    /// Resize pictures of another size to the models' (bilinear) instead of refusing them.
    #[arg(long)]
    resize: bool,
    /// Exit with status 3 when the guard rejects any frame (status 1 stays for errors).
    #[arg(long)]
    fail_on_reject: bool,
}

/// Runs `edgegen classify`.
pub fn run(a: Args) -> Result<()> {
    let summary = edgegen_trainer::eval::classify::classify(&a.model, &a.guard, a.engine, &a.files, a.resize)?;
    if a.fail_on_reject && summary.rejected > 0 {
        eprintln!("{} of {} frames rejected: no label given", summary.rejected, summary.frames);
        std::process::exit(super::score::REJECTED);
    }
    Ok(())
}
