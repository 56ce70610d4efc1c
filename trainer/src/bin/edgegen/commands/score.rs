//! `edgegen score`: one JSON line per image with bits/dim and the guard's verdict.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// IDX or PNG files.
    files: Vec<PathBuf>,
}

/// Runs `edgegen score`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::eval::score::score(&a.model.model, a.model.engine, &a.files)
}
