//! The device classifier (burn): a small convolutional network whose int8 form runs beside
//! the guard on the device. A 3×3 convolution at full resolution, then the VAE encoder's
//! 4×4 stride-2 stages down to at most 8×8, a dense layer of features and the class logits.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Shape of the classifier.
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    /// Classes.
    #[config(default = 10)]
    pub classes: usize,
    /// Channels of the convolutions.
    #[config(default = 32)]
    pub width: usize,
    /// Units of the dense feature layer.
    #[config(default = 64)]
    pub features: usize,
    /// Image channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Image height.
    #[config(default = 28)]
    pub height: usize,
    /// Image width.
    #[config(default = 28)]
    pub width_px: usize,
}

impl ClassifierConfig {
    /// Resolution stages (as the VAE's): `None` for frames no number of halvings fits.
    pub fn stages(&self) -> Option<usize> {
        crate::families::vae::model::stages(self.height, self.width_px)
    }

    /// Checks the shape.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (2..=255).contains(&self.classes) && (1..=256).contains(&self.width) && (1..=1024).contains(&self.features),
            "classifier: 2..=255 classes, 1..=256 channels, 1..=1024 features"
        );
        anyhow::ensure!(
            self.stages().is_some(),
            "classifier: {}x{} frames cannot be halved to at most 8x8 with every side even at each stage; resize them (--resize)",
            self.height,
            self.width_px
        );
        Ok(())
    }

    /// A freshly initialized classifier.
    pub fn init(&self, device: &Device) -> Classifier {
        let s = self.stages().expect("checked geometry");
        let mut convs =
            vec![Conv2dConfig::new([self.channels, self.width], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)];
        for _ in 0..s {
            convs.push(
                Conv2dConfig::new([self.width, self.width], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
        }
        let flat = self.width * (self.height >> s) * (self.width_px >> s);
        Classifier {
            convs,
            fc: LinearConfig::new(flat, self.features).init(device),
            out: LinearConfig::new(self.features, self.classes).init(device),
            geometry: [self.channels, self.height, self.width_px],
        }
    }
}

/// The classifier: image `[B, C, H, W]` on the network scale → class logits `[B, classes]`.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The 3×3 convolution, then one 4×4 stride-2 convolution per stage, each with a ReLU.
    pub convs: Vec<Conv2d>,
    /// Flattened feature map → features (ReLU).
    pub fc: Linear,
    /// Features → class logits.
    pub out: Linear,
    /// Frames it classifies: channels, height, width.
    #[module(skip)]
    pub geometry: [usize; 3],
}

impl Classifier {
    /// The dense features `[B, features]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for c in &self.convs {
            h = relu(c.forward(h));
        }
        let [b, c, hh, ww] = h.dims();
        relu(self.fc.forward(h.reshape([b, c * hh * ww])))
    }

    /// Class logits `[B, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.out.forward(self.features(x))
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.out.weight.dims()[1]
    }
}
