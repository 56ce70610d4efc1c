//! One module per subcommand: its arguments and its `run`, nothing else. The work itself is in
//! the library (`edgegen_trainer`).

pub mod bench;
pub mod calibrate;
pub mod classify;
pub mod compile;
pub mod data;
pub mod demo;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod quantize;
pub mod sample;
pub mod score;
pub mod train;

/// A model directory and the engine that runs it (the arguments `score` and `sample` share).
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Engine.
    #[arg(long, value_enum, default_value = "int8")]
    pub engine: edgegen_trainer::eval::score::EngineKind,
}
