//! `edgegen score`: one JSON line per image with bits/dim and the guard's verdict.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Pictures (PNG, JPEG, BMP, TIFF, PGM/PPM; converted to the model's channels) or IDX
    /// image files (gray).
    files: Vec<PathBuf>,
    /// Resize pictures of another size to the model's (bilinear, aspect ratio not kept)
    /// instead of refusing them.
    #[arg(long)]
    resize: bool,
    /// Exit with status 3 when the guard rejects any frame (status 1 stays for errors).
    #[arg(long)]
    fail_on_reject: bool,
}

/// Exit status of `--fail-on-reject` when a frame was rejected.
pub const REJECTED: i32 = 3;

/// Runs `edgegen score`.
pub fn run(a: Args) -> Result<()> {
    let summary = edgegen_trainer::eval::score::score(&a.model.model, a.model.engine, &a.files, a.resize)?;
    if a.fail_on_reject && summary.rejected > 0 {
        eprintln!("{} of {} frames rejected", summary.rejected, summary.frames);
        std::process::exit(REJECTED);
    }
    Ok(())
}
