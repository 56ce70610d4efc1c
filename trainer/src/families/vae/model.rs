//! VAE network definitions (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Shape of the VAE: latent size and mixture components of the pixel distribution.
#[derive(Config, Debug)]
pub struct VaeConfig {
    /// Latent dimensions.
    #[config(default = 16)]
    pub latent: usize,
    /// Discretized logistic mixture components per pixel.
    #[config(default = 4)]
    pub components: usize,
}

/// Channels of the encoder's last feature map (7×7).
pub const FEATURES: usize = 64;

/// q(z|x): image `[B, 1, 28, 28]` on the network scale → `(mu, logvar)`, each `[B, latent]`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// 1→32, 4×4, stride 2, pad 1: 28×28 → 14×14.
    pub conv1: Conv2d,
    /// 32→64, 4×4, stride 2, pad 1: 14×14 → 7×7.
    pub conv2: Conv2d,
    /// Flattened features → mean.
    pub fc_mu: Linear,
    /// Flattened features → log-variance.
    pub fc_logvar: Linear,
}

/// p(x|z): latent `[B, latent]` → mixture head `[B, 3K, 28, 28]`.
#[derive(Module, Debug)]
pub struct Decoder {
    /// latent → 64×7×7.
    pub fc: Linear,
    /// 64→32, 4×4 transposed, stride 2, pad 1: 7×7 → 14×14.
    pub deconv1: ConvTranspose2d,
    /// 32→32, 4×4 transposed, stride 2, pad 1: 14×14 → 28×28.
    pub deconv2: ConvTranspose2d,
    /// 32→3K, 3×3, pad 1: the pixel distribution's parameters.
    pub head: Conv2d,
}

/// Encoder and decoder trained together.
#[derive(Module, Debug)]
pub struct Vae {
    /// q(z|x).
    pub encoder: Encoder,
    /// p(x|z).
    pub decoder: Decoder,
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn deconv(c_in: usize, c_out: usize, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [4, 4]).with_stride([2, 2]).with_padding([1, 1]).init(device)
}

impl VaeConfig {
    /// A freshly initialized VAE on `device`.
    pub fn init(&self, device: &Device) -> Vae {
        let flat = FEATURES * 7 * 7;
        Vae {
            encoder: Encoder {
                conv1: conv(1, 32, 4, 2, 1, device),
                conv2: conv(32, FEATURES, 4, 2, 1, device),
                fc_mu: LinearConfig::new(flat, self.latent).init(device),
                fc_logvar: LinearConfig::new(flat, self.latent).init(device),
            },
            decoder: Decoder {
                fc: LinearConfig::new(self.latent, flat).init(device),
                deconv1: deconv(FEATURES, 32, device),
                deconv2: deconv(32, 32, device),
                head: conv(32, 3 * self.components, 3, 1, 1, device),
            },
        }
    }
}

impl Encoder {
    /// `(mu, logvar)` for a batch of images on the network scale.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let h = relu(self.conv1.forward(x));
        let h = relu(self.conv2.forward(h));
        let [b, c, hh, ww] = h.dims();
        let h = h.reshape([b, c * hh * ww]);
        (self.fc_mu.forward(h.clone()), self.fc_logvar.forward(h))
    }
}

impl Decoder {
    /// Mixture head `[B, 3K, 28, 28]` for a batch of latents.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let h = relu(self.fc.forward(z)).reshape([b, FEATURES, 7, 7]);
        let h = relu(self.deconv1.forward(h));
        let h = relu(self.deconv2.forward(h));
        self.head.forward(h)
    }

    /// Mixture components K (the head has 3K channels).
    pub fn components(&self) -> usize {
        self.head.weight.dims()[0] / 3
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.fc.weight.dims()[0]
    }
}

/// Number of scalar parameters of a module.
pub fn param_count<M: Module>(m: &M) -> usize {
    m.num_params()
}

/// Multiply-accumulates per image of the encoder and decoder (convolutions count
/// `C_in · C_out · k² · H_out · W_out`, transposed convolutions `C_in · C_out · k² · H_in · W_in`).
pub fn macs(cfg_latent: usize, components: usize) -> (usize, usize) {
    let flat = FEATURES * 49;
    let enc = 32 * 16 * 14 * 14 + 32 * FEATURES * 16 * 7 * 7 + 2 * flat * cfg_latent;
    let dec = cfg_latent * flat + FEATURES * 32 * 16 * 7 * 7 + 32 * 32 * 16 * 14 * 14 + 32 * 3 * components * 9 * 28 * 28;
    (enc, dec)
}
