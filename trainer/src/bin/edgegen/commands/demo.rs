//! `edgegen demo`: the main job — sample from the bundled models and score the bundled frames.

use anyhow::Result;
use edgegen_trainer::demo::{self, DemoOptions};
use edgegen_trainer::eval::score::EngineKind;
use std::path::PathBuf;

/// Arguments of `edgegen demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory of bundled models.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Directory of bundled frames.
    #[arg(long, default_value = "models/frames")]
    frames: PathBuf,
    /// Where pictures are written.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Engine.
    #[arg(long, value_enum, default_value = "int8")]
    engine: EngineKind,
}

/// Runs `edgegen demo`.
pub fn run(a: Args) -> Result<()> {
    demo::run(&DemoOptions { models: a.models, frames: a.frames, out: a.out, engine: a.engine })
}
