//! `edgegen score`: one JSON line per image with bits/dim and the guard's verdict.

use anyhow::Result;
use edgegen_trainer::eval::score::EngineKind;
use std::path::PathBuf;

/// Arguments of `edgegen score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory.
    #[arg(long)]
    model: PathBuf,
    /// Engine.
    #[arg(long, value_enum, default_value = "int8")]
    engine: EngineKind,
    /// IDX or PNG files.
    files: Vec<PathBuf>,
}

/// Runs `edgegen score`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::eval::score::score(&a.model, a.engine, &a.files)
}
