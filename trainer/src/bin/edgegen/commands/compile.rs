//! `edgegen compile`: compile a quantized model (from calibration.json) to flat model files
//! (.egm), optionally refusing one that does not fit a device.

use anyhow::Result;
use edgegen_trainer::int8::budget::{Budget, BOARDS};
use std::path::PathBuf;

/// Arguments of `edgegen compile`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory.
    #[arg(long)]
    model: PathBuf,
    /// Refuse (writing nothing) a model whose largest arena does not fit this much RAM: bytes,
    /// or with K/KiB, M/MiB (×1024) or KB/MB (×1000).
    #[arg(long)]
    ram: Option<String>,
    /// Refuse a model whose model files together do not fit this much flash (as --ram).
    #[arg(long)]
    flash: Option<String>,
    /// Refuse a model that does not fit this board's SRAM and flash: nucleo-l4r5zi,
    /// stm32f407, alif-e7-hp, mps2-an386, mps3-an547 (--ram/--flash override its numbers).
    #[arg(long)]
    board: Option<String>,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs `edgegen compile`.
pub fn run(a: Args) -> Result<()> {
    debug_assert_eq!(BOARDS.len(), 5, "the --board help lists every board");
    let budget = Budget::from_args(a.board.as_deref(), a.ram.as_deref(), a.flash.as_deref())?;
    edgegen_trainer::int8::compile_dir_within(&a.model, budget.as_ref(), !a.quiet)
}
