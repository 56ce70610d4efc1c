//! One module per subcommand: its arguments and its `run`, nothing else. The work itself is in
//! the library (`edgegen_trainer`).

pub mod bench;
pub mod calibrate;
pub mod compile;
pub mod data;
pub mod demo;
pub mod eval;
pub mod inspect;
pub mod quantize;
pub mod sample;
pub mod score;
pub mod train;
