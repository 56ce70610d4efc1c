//! `edgegen inspect`: print a compiled model file's contents.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .egm model file, or a flow file (flow.egf).
    file: PathBuf,
}

/// Runs `edgegen inspect`: the file's contents, or a clear message on a malformed file.
pub fn run(a: Args) -> Result<()> {
    print!("{}", edgegen_trainer::int8::inspect(&a.file)?);
    Ok(())
}
