//! `edgegen export tflite`.

use anyhow::Result;
use std::path::PathBuf;

/// What to export.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Every compiled part of a model (after `quantize`) as an int8 TFLite flatbuffer:
    /// `<part>.tflite` and `tflite.json` (inputs, outputs, operators, which run in float).
    Tflite {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Where the files go [default: the model directory's `tflite/`].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs `edgegen export`.
pub fn run(what: What) -> Result<()> {
    match what {
        What::Tflite { model, out } => {
            let out = out.unwrap_or_else(|| model.join("tflite"));
            let report = edgegen_trainer::export::tflite::export_dir(&model, &out)?;
            for (part, e) in report["parts"].as_object().into_iter().flatten() {
                println!(
                    "{}: {} bytes, {} operators ({} in float: {})",
                    out.join(format!("{part}.tflite")).display(),
                    e["bytes"],
                    e["ops"].as_array().map_or(0, |a| a.len()),
                    e["float_ops"].as_array().map_or(0, |a| a.len()),
                    e["float_ops"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
