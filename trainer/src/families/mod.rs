//! The model families, each in its own folder (`model.rs` in burn, `training.rs`, `export.rs`,
//! `run.rs` with its `train` arguments), the training loop and checkpoints they share, the
//! losses, and [`ModelFamily`]: the family a card names, one enum instead of strings in every
//! module.

pub mod checkpoint;
pub mod classifier;
pub mod flow;
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
    /// Classifier: `classifier` (class logits; the guard's companion on the device).
    Classifier,
    /// Normalizing flow (RealNVP): `density` (image → z, log p) and `sampler` (z → image).
    Flow,
}

impl ModelFamily {
    /// Every family.
    pub const ALL: [ModelFamily; 5] =
        [ModelFamily::Vae, ModelFamily::Pixelcnn, ModelFamily::Gan, ModelFamily::Classifier, ModelFamily::Flow];

    /// The name in cards and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::Vae => "vae",
            ModelFamily::Pixelcnn => "pixelcnn",
            ModelFamily::Gan => "gan",
            ModelFamily::Classifier => "classifier",
            ModelFamily::Flow => "flow",
        }
    }

    /// The compiled parts (ONNX and `.egm` stems); the first one holds the guard.
    pub fn parts(self) -> &'static [&'static str] {
        match self {
            ModelFamily::Vae => &["encoder", "decoder"],
            ModelFamily::Pixelcnn => &["model"],
            ModelFamily::Gan => &["generator"],
            ModelFamily::Classifier => &["classifier"],
            ModelFamily::Flow => &["density", "sampler"],
        }
    }

    /// True for the families with a likelihood (the guard's models).
    pub fn has_likelihood(self) -> bool {
        matches!(self, ModelFamily::Vae | ModelFamily::Pixelcnn | ModelFamily::Flow)
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

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    /// All three families take 64×64 RGB frames on the host: the PixelCNN's mixture head, the
    /// VAE's posterior and head, the GAN's image and logit have the frame's shape, and the
    /// PixelCNN's likelihood of a batch is finite.
    #[test]
    fn every_family_takes_64x64_rgb_frames() {
        let device = Device::flex();
        device.seed(4);
        let (c, h, w, b) = (3usize, 64usize, 64usize, 2usize);
        let x = Tensor::<4>::zeros([b, c, h, w], &device);
        let pixelcnn = super::pixelcnn::model::PixelCnnConfig::new()
            .with_channels(12)
            .with_inner(6)
            .with_blocks(1)
            .with_components(2)
            .with_colours(c)
            .init(&device);
        let head = pixelcnn.forward(x.clone());
        assert_eq!(head.dims(), [b, c * 3 * 2, h, w]);
        let lp = crate::families::loss::to_vec(crate::families::loss::mixture_log_prob(x.clone(), head, 2));
        assert!(lp.len() == b && lp.iter().all(|v| v.is_finite() && *v < 0.0), "{lp:?}");
        let vae = super::vae::model::VaeConfig::new().with_latent(8).with_components(2).with_channels(c).with_height(h).with_width(w);
        let vae = vae.init(&device);
        let (mu, _) = vae.encoder.forward(x.clone());
        assert_eq!(mu.dims(), [b, 8]);
        assert_eq!(vae.decoder.forward(mu).dims(), [b, 3 * 2 * c, h, w]);
        let gan =
            super::gan::GanConfig::new().with_latent(8).with_features(16).with_d_features(4).with_channels(c).with_height(h).with_width(w);
        let gan_cfg = gan.clone().with_d_layers(gan.stages());
        gan_cfg.check().unwrap();
        let gan = gan_cfg.init(&device);
        let image = gan.generator.forward(Tensor::zeros([b, 8], &device));
        assert_eq!(image.dims(), [b, c, h, w]);
        assert_eq!(gan.discriminator.forward(image, &[]).dims(), [b, 1]);
    }
}
