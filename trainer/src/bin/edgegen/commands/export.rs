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
        /// Where the files go [default: the model directory's `tflite/`, or `tflite-npu/`
        /// with `--npu`].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Files an NPU runs whole: the f32 edges int8 (a latent input as the int8 tensor the
        /// engine quantizes it to, `mu`/`logvar` and the generator's image at their calibrated
        /// ranges, TANH int8); only mixture heads stay float. They differ from the engine at
        /// those edges by one more rounding.
        #[arg(long)]
        npu: bool,
    },
    /// A model file (`.egm` or `.tflite`) as a C source file: an aligned
    /// `const unsigned char NAME[]` and `const unsigned int NAME_len`, the form TFLite Micro's
    /// examples use, to compile into C firmware.
    CArray {
        /// The model file.
        #[arg(long)]
        file: PathBuf,
        /// The C file to write [default: the file's name with `.c`].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The array's name [default: from the file name, e.g. `model_egm`].
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs `edgegen export`.
pub fn run(what: What) -> Result<()> {
    match what {
        What::Tflite { model, out, npu } => {
            use edgegen_trainer::export::tflite::{export_dir, Edges};
            let out = out.unwrap_or_else(|| model.join(if npu { "tflite-npu" } else { "tflite" }));
            let report = export_dir(&model, &out, if npu { Edges::Int8 } else { Edges::Float })?;
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
        What::CArray { file, out, name } => {
            let out =
                out.unwrap_or_else(|| file.with_extension(format!("{}.c", file.extension().and_then(|e| e.to_str()).unwrap_or("bin"))));
            let name = match name {
                Some(n) => n,
                None => edgegen_trainer::export::c_array::identifier(&file)?,
            };
            let bytes = edgegen_trainer::export::c_array::write(&file, &out, &name)?;
            println!("{} -> {} ({bytes} bytes as `{name}`, `{name}_len`)", file.display(), out.display());
            Ok(())
        }
    }
}
