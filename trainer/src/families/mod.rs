//! The model families, each in its own folder (`model.rs` in burn, `training.rs`, `export.rs`,
//! `run.rs` with its `train` arguments), the training loop and checkpoints they share, the
//! losses, and [`ModelFamily`]: the family a card names, one enum instead of strings in every
//! module.

pub mod checkpoint;
pub mod gan;
pub mod loss;
pub mod pixelcnn;
pub mod training;
pub mod vae;

use anyhow::Result;
use std::path::Path;

/// A published model's family (`card.json`'s `family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// Variational autoencoder: `encoder` and `decoder`.
    Vae,
    /// PixelCNN: `model`.
    Pixelcnn,
    /// DCGAN: `generator` (the discriminator stays on the host).
    Gan,
}

impl ModelFamily {
    /// Every family.
    pub const ALL: [ModelFamily; 3] = [ModelFamily::Vae, ModelFamily::Pixelcnn, ModelFamily::Gan];

    /// The name in cards and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::Vae => "vae",
            ModelFamily::Pixelcnn => "pixelcnn",
            ModelFamily::Gan => "gan",
        }
    }

    /// The compiled parts (ONNX and `.egm` stems); the first one holds the guard.
    pub fn parts(self) -> &'static [&'static str] {
        match self {
            ModelFamily::Vae => &["encoder", "decoder"],
            ModelFamily::Pixelcnn => &["model"],
            ModelFamily::Gan => &["generator"],
        }
    }

    /// True for the families with a likelihood (the guard's models).
    pub fn has_likelihood(self) -> bool {
        self != ModelFamily::Gan
    }

    /// The family of the model directory `dir` (from its card).
    pub fn of_dir(dir: &Path) -> Result<Self> {
        Ok(crate::export::card::Card::read(dir)?.model_family())
    }
}

impl std::fmt::Display for ModelFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
