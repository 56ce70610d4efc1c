//! DCGAN network definitions (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, tanh};

/// Shape of the GAN.
#[derive(Config, Debug)]
pub struct GanConfig {
    /// Noise dimensions.
    #[config(default = 32)]
    pub latent: usize,
    /// Channels of the generator's 7×7 map (its 14×14 map has half as many).
    #[config(default = 64)]
    pub features: usize,
    /// Channels of the discriminator's first convolution (its second has twice as many).
    #[config(default = 32)]
    pub d_features: usize,
    /// Channels of a 28×28 feature map between the last transposed convolution and the
    /// image, which a 3×3 convolution then writes; 0 (the default): the transposed
    /// convolution writes the image directly.
    #[config(default = 0)]
    pub fine_features: usize,
    /// Strided convolutions in the discriminator: 2 (the default: 28 → 14 → 7) or 3 (a
    /// third, with four times `d_features` channels, reads the 7×7 map down to 3×3).
    #[config(default = 2)]
    pub d_layers: usize,
}

/// z `[B, latent]` → image `[B, 1, 28, 28]` in (-1, 1) (the network pixel scale).
#[derive(Module, Debug)]
pub struct Generator {
    /// latent → features×7×7.
    pub fc: Linear,
    /// BatchNorm over the 7×7 map's channels.
    pub bn0: BatchNorm,
    /// features→features/2, 4×4 transposed, stride 2: 7×7 → 14×14.
    pub deconv1: ConvTranspose2d,
    /// BatchNorm over features/2 channels.
    pub bn1: BatchNorm,
    /// features/2→1 (or → `fine_features`), 4×4 transposed, stride 2: 14×14 → 28×28, then
    /// tanh (or the fine layer).
    pub deconv2: ConvTranspose2d,
    /// With `fine_features` > 0: BatchNorm, ReLU and a 3×3 convolution to the image.
    pub fine: Option<Fine>,
}

/// The generator's optional 28×28 stage: BatchNorm over the last transposed convolution's
/// `fine_features` channels, ReLU, then a 3×3 convolution (padding 1) to one channel and tanh.
#[derive(Module, Debug)]
pub struct Fine {
    /// BatchNorm over the 28×28 map's channels.
    pub bn2: BatchNorm,
    /// fine_features→1, 3×3, stride 1, padding 1.
    pub conv3: Conv2d,
}

/// image `[B, 1, 28, 28]` → realness logit `[B, 1]`.
#[derive(Module, Debug)]
pub struct Discriminator {
    /// 1→d, 4×4, stride 2 (d = `d_features`, 32 by default).
    pub conv1: Conv2d,
    /// d→2d, 4×4, stride 2.
    pub conv2: Conv2d,
    /// With `d_layers` 3: 2d→4d, 4×4, stride 2, padding 1 (7×7 → 3×3).
    pub conv3: Option<Conv2d>,
    /// The last map flattened (2d×7×7, or 4d×3×3 with `conv3`) → 1.
    pub fc: Linear,
}

/// Generator and discriminator, checkpointed together.
#[derive(Module, Debug)]
pub struct Gan {
    /// The generator (what ships).
    pub generator: Generator,
    /// The discriminator.
    pub discriminator: Discriminator,
}

fn dcgan_init() -> Initializer {
    Initializer::Normal { mean: 0.0, std: 0.02 }
}

impl GanConfig {
    /// A freshly initialized GAN on `device` (DCGAN's N(0, 0.02) weights).
    pub fn init(&self, device: &Device) -> Gan {
        let (f, d) = (self.features, self.d_features);
        let h = f / 2;
        let n = self.fine_features;
        let out = if n > 0 { n } else { 1 };
        Gan {
            generator: Generator {
                fc: LinearConfig::new(self.latent, f * 49).with_initializer(dcgan_init()).init(device),
                bn0: BatchNormConfig::new(f).init(device),
                deconv1: ConvTranspose2dConfig::new([f, h], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_initializer(dcgan_init())
                    .init(device),
                bn1: BatchNormConfig::new(h).init(device),
                deconv2: ConvTranspose2dConfig::new([h, out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_initializer(dcgan_init())
                    .init(device),
                fine: (n > 0).then(|| Fine {
                    bn2: BatchNormConfig::new(n).init(device),
                    conv3: Conv2dConfig::new([n, 1], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(dcgan_init())
                        .init(device),
                }),
            },
            discriminator: Discriminator {
                conv1: Conv2dConfig::new([1, d], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(dcgan_init())
                    .init(device),
                conv2: Conv2dConfig::new([d, 2 * d], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(dcgan_init())
                    .init(device),
                conv3: (self.d_layers == 3).then(|| {
                    Conv2dConfig::new([2 * d, 4 * d], [4, 4])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(dcgan_init())
                        .init(device)
                }),
                fc: LinearConfig::new(if self.d_layers == 3 { 4 * d * 9 } else { 2 * d * 49 }, 1)
                    .with_initializer(dcgan_init())
                    .init(device),
            },
        }
    }
}

impl Generator {
    /// Images for a batch of noise vectors.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let h = self.pre_norm(z, 2);
        match &self.fine {
            Some(fine) => tanh(fine.conv3.forward(relu(fine.bn2.forward(h)))),
            None => tanh(h),
        }
    }

    /// The network up to layer `layer`'s BatchNorm: 0, the dense layer's 7×7 map; 1, the
    /// 14×14 map; 2, the last transposed convolution's 28×28 output (what the fine stage's
    /// BatchNorm normalizes, or the image before tanh without one).
    pub fn pre_norm(&self, z: Tensor<2>, layer: usize) -> Tensor<4> {
        let [b, _] = z.dims();
        let f = self.bn0.gamma.dims()[0];
        let h = self.fc.forward(z).reshape([b, f, 7, 7]);
        if layer == 0 {
            return h;
        }
        let h = self.deconv1.forward(relu(self.bn0.forward(h)));
        if layer == 1 {
            return h;
        }
        self.deconv2.forward(relu(self.bn1.forward(h)))
    }

    /// Number of BatchNorm layers (2, or 3 with the fine stage).
    pub fn batchnorms(&self) -> usize {
        if self.fine.is_some() {
            3
        } else {
            2
        }
    }

    /// BatchNorm `layer` (`0..batchnorms()`), the one applied to [`Generator::pre_norm`]'s output.
    pub fn batchnorm_mut(&mut self, layer: usize) -> &mut BatchNorm {
        match (layer, &mut self.fine) {
            (0, _) => &mut self.bn0,
            (1, _) => &mut self.bn1,
            (2, Some(fine)) => &mut fine.bn2,
            _ => panic!("generator has no BatchNorm {layer}"),
        }
    }

    /// Channels of the 28×28 map ahead of the final 3×3 convolution (0 without one).
    pub fn fine_features(&self) -> usize {
        self.fine.as_ref().map_or(0, |f| f.bn2.gamma.dims()[0])
    }

    /// Noise dimensions.
    pub fn latent(&self) -> usize {
        self.fc.weight.dims()[0]
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> usize {
        let [l, o] = self.fc.weight.dims();
        let f = o / 49;
        let h = self.bn1.gamma.dims()[0];
        let n = self.fine_features();
        l * o + f * h * 16 * 49 + h * n.max(1) * 16 * 196 + n * 9 * 784
    }
}

impl Discriminator {
    /// Realness logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let h = leaky_relu(self.conv1.forward(x), 0.2);
        let mut h = leaky_relu(self.conv2.forward(h), 0.2);
        if let Some(conv3) = &self.conv3 {
            h = leaky_relu(conv3.forward(h), 0.2);
        }
        let [b, c, hh, ww] = h.dims();
        self.fc.forward(h.reshape([b, c * hh * ww]))
    }
}
