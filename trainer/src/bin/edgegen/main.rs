//! The `edgegen` command line: parses arguments and hands each subcommand to its module in
//! `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use commands::*;

/// edgegen: train generative image models, export them, and run them on the edge.
#[derive(Parser, Debug)]
#[command(name = "edgegen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Datasets: install them, or write the bundled demo frames.
    Data {
        #[command(subcommand)]
        action: data::Action,
    },
    /// Train a model family and publish its artifacts (ONNX, golden vectors, pictures, card).
    Train {
        #[command(subcommand)]
        family: train::Family,
    },
    /// Calibrate and quantize a published model to int8 (QDQ ONNX), then compile it.
    Quantize(quantize::Args),
    /// Compile a quantized model (from calibration.json) to flat model files (.egm).
    Compile(compile::Args),
    /// Score frames (pictures converted to the model's geometry, or IDX files): one JSON line
    /// per frame with bits/dim and the guard's verdict.
    Score(score::Args),
    /// Classify frames and check them with the guard: one JSON line per frame with the
    /// class, its probability, the guard's verdict, and a label only when the guard accepts.
    Classify(classify::Args),
    /// Draw samples from a model into a PNG grid.
    Sample(sample::Args),
    /// Calibrate the guard's threshold on the validation split and store it in the model file.
    Calibrate(calibrate::Args),
    /// Evaluations.
    Eval {
        #[command(subcommand)]
        what: eval::What,
    },
    /// Measure every engine's throughput on one model (one process, one thread).
    Bench(bench::Args),
    /// Export a compiled model for other runtimes: int8 TFLite (TFLite Micro, LiteRT, Vela).
    Export {
        #[command(subcommand)]
        what: export::What,
    },
    /// Print a compiled model file's contents; fails with a clear message on a malformed file.
    Inspect(inspect::Args),
    /// The main job: sample from the bundled models and score the bundled frames.
    Demo(demo::Args),
}

/// Dies quietly on a closed pipe (`edgegen score … | head`), as Unix tools do, instead of
/// panicking on the failed write: Rust ignores SIGPIPE by default.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default at the start of main, before any
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    restore_default_sigpipe();
    let result = match Cli::parse().command {
        Command::Data { action } => data::run(action),
        Command::Train { family } => train::run(family),
        Command::Quantize(a) => quantize::run(a),
        Command::Compile(a) => compile::run(a),
        Command::Score(a) => score::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Eval { what } => eval::run(what),
        Command::Bench(a) => bench::run(a),
        Command::Export { what } => export::run(what),
        Command::Inspect(a) => inspect::run(a),
        Command::Demo(a) => demo::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
